"""Bucketed scans give exactly what a one-piece scan gives (telediag.buckets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import telediag
from telediag import engine
from telediag.buckets import (
    bucket_of,
    combine,
    key_hash,
    scan_bucket,
    scan_in_buckets,
    split_rules,
    split_table,
    with_record_ids,
)
from telediag.context import ScanSettings
from telediag.read import read_input
from tests.test_properties import (
    SETTINGS,
    T0,
    background,
    inject_phonebook,
    shared_handset_mms,
    to_table,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cdr"


def month(seed: int, n: int) -> pd.DataFrame:
    """Background traffic on shared handsets, a phonebook burst, a SIM swap re-send
    (TD004), and rows that break the contract."""
    rng = np.random.default_rng(seed)
    frame, _ = inject_phonebook(background(seed, n, 25), seed, 40)
    frame["imei"] = [f"3520140100{v:04d}" for v in rng.integers(0, 12, len(frame))]
    frame.loc[rng.random(len(frame)) < 0.1, "imei"] = None
    swap = pd.DataFrame(
        {
            "record_id": ["swap-a", "swap-b", "swap-c"],
            "record_type": "mms",
            "direction": "mo",
            "start_time": [T0 + pd.Timedelta(days=d) for d in (1, 1, 3)],
            "msisdn": ["13800007001", "13800007001", " 13800007002 "],
            "peer_number": "13999990000",
            "imei": "35201401999999",
            "status": ["failed", "failed", "ok"],
            "mms_event": "submit",
            "mms_size": 40960,
        }
    )
    bad = pd.DataFrame(
        {
            "record_id": ["bad-1", "bad-2", "bad-3"],
            "record_type": ["sms", "fax", "sms"],
            "direction": "mo",
            "start_time": [T0, T0, pd.NaT],
            "msisdn": [None, "13800000001", "13800000002"],
        }
    )
    frame = pd.concat([frame, swap, bad], ignore_index=True)
    # Same-second records of one subscriber: the order between them must not depend on
    # the order they were read in.
    dup = frame[frame["record_type"] == "sms"].head(3).copy()
    dup["record_id"] = [f"tie-{i}" for i in range(len(dup))]
    return pd.concat([frame, dup], ignore_index=True)


def pieces(frame: pd.DataFrame, seed: int, count: int) -> list[pa.Table]:
    """The frame cut into ``count`` files at random, each in a random row order."""
    rng = np.random.default_rng(seed + 99)
    which = rng.integers(0, count, len(frame))
    out = []
    for p in range(count):
        part = frame[which == p].sample(frac=1.0, random_state=seed + p)
        out.append(to_table(part.reset_index(drop=True)))
    return [t for t in out if t.num_rows] or [to_table(frame)]


def assert_same(whole: telediag.ScanResult, parts: telediag.buckets.BucketResult) -> None:
    pd.testing.assert_frame_equal(whole.findings, parts.findings)
    pd.testing.assert_frame_equal(whole.evidence, parts.evidence)
    assert whole.report.to_dict() == parts.report.to_dict()
    assert [str(e) for e in whole.errors] == [str(e) for e in parts.errors]
    want = whole.rejects().sort_by("record_id")
    assert want.equals(parts.rejects.select(want.column_names))


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 500),
    files=st.integers(1, 4),
    buckets=st.integers(1, 9),
)
def test_any_split_and_bucket_count_gives_the_one_piece_findings(
    catalog: list[telediag.Rule], seed: int, n: int, files: int, buckets: int
) -> None:
    frame = month(seed, n)
    whole = telediag.scan(to_table(frame), rules=catalog)
    assert ("TD004", "13800007002") in {(r.rule_id, r.msisdn) for r in whole.findings.itertuples()}
    raw = read_input(pieces(frame, seed, files))
    result = scan_in_buckets(raw, catalog, ScanSettings(), buckets)
    whole.report.files = list(raw.files)
    assert_same(whole, result)


@SETTINGS
@given(seed=st.integers(0, 10_000), n=st.integers(20, 300), buckets=st.integers(1, 6))
def test_handsets_passed_around_give_the_same_resends_in_buckets(
    catalog: list[telediag.Rule], seed: int, n: int, buckets: int
) -> None:
    """Twelve subscribers passing five handsets around: TD004's stints and re-sends
    come out the same when handset rows are cut into IMEI buckets."""
    frame = pd.concat([shared_handset_mms(seed, n), background(seed, 50, 12)], ignore_index=True)
    whole = telediag.scan(to_table(frame), rules=catalog)
    raw = read_input(pieces(frame, seed, 3))
    whole.report.files = list(raw.files)
    assert_same(whole, scan_in_buckets(raw, catalog, ScanSettings(), buckets))


@pytest.mark.parametrize("buckets", [1, 2, 5])
def test_every_fixture_file_gives_the_same_findings_in_buckets(
    catalog: list[telediag.Rule], buckets: int
) -> None:
    files = sorted(FIXTURES.glob("*/*.csv"))
    assert files
    for path in files:
        whole = telediag.scan(path, rules=catalog)
        assert_same(whole, scan_in_buckets(read_input(path), catalog, ScanSettings(), buckets))


def test_generated_ids_survive_bucketing(catalog: list[telediag.Rule]) -> None:
    frame = month(3, 200).drop(columns=["record_id"])
    tables = pieces(frame, 3, 3)
    whole = telediag.scan(tables, rules=catalog)
    assert whole.evidence["record_id"].str.startswith("table").all()
    assert_same(whole, scan_in_buckets(read_input(tables), catalog, ScanSettings(), 4))


def test_a_rule_failing_in_one_bucket_fails_as_in_one_piece(
    catalog: list[telediag.Rule], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = engine.run_rule

    def flaky(rule, records, *args, **kwargs):  # type: ignore[no-untyped-def]
        if rule.id == "TD001" and "13800009999" in records.msisdns.to_pylist():
            raise RuntimeError("boom")
        return real(rule, records, *args, **kwargs)

    monkeypatch.setattr(engine, "run_rule", flaky)
    frame = month(5, 300)
    whole = telediag.scan(to_table(frame), rules=catalog)
    assert [e.rule_id for e in whole.errors] == ["TD001"]
    assert "TD001" not in set(whole.findings["rule_id"])
    result = scan_in_buckets(read_input(to_table(frame)), catalog, ScanSettings(), 6)
    assert_same(whole, result)


def test_handset_buckets_report_nothing_and_keep_only_rows_with_an_imei(
    catalog: list[telediag.Rule],
) -> None:
    table = with_record_ids(read_input(to_table(month(1, 100))))
    by_subscriber, by_handset = split_rules(catalog)
    assert [r.id for r in by_handset] == ["TD004"]
    assert len(by_subscriber) + 1 == len(catalog)
    cut = split_table(table, 3, "handset")
    assert sum(t.num_rows for t in cut) == table["imei"].drop_null().length()
    parts = [scan_bucket(t, by_handset, ScanSettings(), key="handset") for t in cut]
    assert all(p.report.rows_read == 0 and p.rejects.num_rows == 0 for p in parts)
    found = combine(parts).findings
    assert list(zip(found["rule_id"], found["msisdn"], strict=True)) == [("TD004", "13800007002")]


def test_bucket_depends_on_the_trimmed_key_alone() -> None:
    keys = pa.array(["13800000001", " 13800000001 ", "13800000002", None, "8613800000001"])
    h = key_hash(keys)
    assert h[0] == h[1] != h[2]
    assert h[3] == 0
    # The same values elsewhere, in another order, in chunks: the same hashes.
    again = key_hash(pa.chunked_array([["8613800000001", "x"], ["13800000002", "13800000001"]]))
    assert list(again[[0, 2, 3]]) == [h[4], h[2], h[0]]
    # Pinned: buckets written to disk by one version are read by the next.
    assert int(key_hash(pa.array(["13800000001"]))[0]) == 10664854102584828293
    assert bucket_of(keys, 1).tolist() == [0] * 5


def test_buckets_spread_subscribers_evenly() -> None:
    keys = pa.array([f"1380{i:07d}" for i in range(20_000)])
    counts = np.bincount(bucket_of(keys, 16), minlength=16)
    assert counts.min() > 20_000 / 16 * 0.9


def reference_hash(text: str) -> int:
    """FNV-1a 64 of the trimmed UTF-8 bytes, then MurmurHash3's finalizer, one value
    at a time in plain Python (what a cluster engine may re-implement)."""
    mask = (1 << 64) - 1
    h = 0xCBF29CE484222325
    for byte in text.strip().encode():
        h = ((h ^ byte) * 0x100000001B3) & mask
    for mult in (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53):
        h = ((h ^ (h >> 33)) * mult) & mask
    return h ^ (h >> 33)


@given(st.lists(st.text(max_size=30), max_size=40))
def test_key_hash_matches_the_plain_definition(values: list[str]) -> None:
    got = key_hash(pa.array(values, type=pa.string()))
    assert [int(v) for v in got] == [reference_hash(v) for v in values]


def test_placeholder_imeis_stay_out_of_the_handset_buckets(catalog: list[telediag.Rule]) -> None:
    """A placeholder IMEI on most rows (blank, all zeros, trimmed or not) names no
    handset: no handset bucket takes those rows, and the findings do not change."""
    frame = month(12, 500)
    rng = np.random.default_rng(3)
    common = rng.random(len(frame)) < 0.6
    common &= ~frame["record_id"].astype(str).str.startswith("swap").to_numpy()
    frame.loc[common, "imei"] = rng.choice(
        ["000000000000000", " 00000000000000", "", "  "], common.sum()
    )
    raw = read_input(to_table(frame))
    table = with_record_ids(raw)
    cut = split_table(table, 3, "handset")
    kept = sum(t.num_rows for t in cut)
    plausible = frame["imei"].notna() & ~common
    assert kept == int(plausible.sum())
    assert not any(t["imei"].is_null().to_numpy(zero_copy_only=False).any() for t in cut)
    whole = telediag.scan(to_table(frame), rules=catalog)
    parts = scan_in_buckets(raw, catalog, ScanSettings(), 3)
    pd.testing.assert_frame_equal(whole.findings, parts.findings)
    pd.testing.assert_frame_equal(whole.evidence, parts.evidence)
    assert "TD004" in set(whole.findings["rule_id"])


@given(
    width=st.integers(1, 16),
    n=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
    pad=st.booleans(),
)
def test_keys_of_one_width_hash_as_in_the_general_path(
    width: int, n: int, seed: int, pad: bool
) -> None:
    """The fixed-width path of key_hash (no hash table) gives the general path's hashes,
    and keys with blanks to trim go the general path and hash as their trimmed text."""
    from telediag.buckets import key_hash

    rng = np.random.default_rng(seed)
    values = ["".join(chr(c) for c in rng.integers(33, 127, width)) for _ in range(n)]
    if pad:
        values = [f" {v}" for v in values]
    fast = key_hash(pa.array(values))
    # A null among them sends the same keys down the general path.
    general = key_hash(pa.array([*values, None]))[:n]
    assert fast.tolist() == general.tolist()
    assert key_hash(pa.array([v.strip() for v in values])).tolist() == fast.tolist()


def test_keys_that_are_all_null_hash_to_zero() -> None:
    from telediag.buckets import key_hash

    assert key_hash(pa.array([None, None], pa.string())).tolist() == [0, 0]
