"""Properties that hold for any input, checked with hypothesis.

- shuffling the rows, or adding columns the contract does not know, changes nothing;
- scanning subscriber-disjoint parts separately and concatenating gives the same
  findings (for rules that do not follow handsets across subscribers);
- a pattern injected into random background traffic is found, with exactly its records.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import telediag

T0 = pd.Timestamp("2008-07-01", tz="UTC")
SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def background(seed: int, n: int, subscribers: int) -> pd.DataFrame:
    """Random ordinary traffic: SMS of varied length to varied peers, web sessions."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(["sms", "data", "voice"], size=n, p=[0.5, 0.3, 0.2])
    return pd.DataFrame(
        {
            "record_id": [f"bg{seed}-{i}" for i in range(n)],
            "record_type": kind,
            "direction": np.where(rng.random(n) < 0.6, "mo", "mt"),
            "start_time": T0 + pd.to_timedelta(rng.integers(0, 7 * 86400, n), unit="s"),
            "msisdn": [f"1380000{v:04d}" for v in rng.integers(0, subscribers, n)],
            "peer_number": [f"1390000{v:04d}" for v in rng.integers(0, 500, n)],
            "sms_length": np.where(kind == "sms", rng.integers(1, 161, n), -1),
            "server_ip": [f"10.1.{a}.{b}" for a, b in rng.integers(0, 4, (n, 2))],
            "server_port": rng.choice([80, 443, 110, 53], size=n),
            "app_protocol": rng.choice(["HTTP", "HTTPS", "POP3", "DNS"], size=n),
            "bytes_up": rng.integers(100, 5000, n),
            "bytes_down": rng.integers(100, 90000, n),
            "imei": "35201401000017",
        }
    )


def to_table(frame: pd.DataFrame) -> pa.Table:
    frame = frame.copy()
    frame["sms_length"] = frame["sms_length"].where(frame["sms_length"] >= 0)
    return pa.Table.from_pandas(frame, preserve_index=False)


def inject_phonebook(frame: pd.DataFrame, seed: int, count: int) -> tuple[pd.DataFrame, list[str]]:
    rng = np.random.default_rng(seed + 1)
    start = T0 + pd.Timedelta(days=2)
    gaps = rng.integers(60, 181, count)
    times = start + pd.to_timedelta(np.concatenate([[0], np.cumsum(gaps[:-1])]), unit="s")
    ids = [f"inj-{i}" for i in range(count)]
    burst = pd.DataFrame(
        {
            "record_id": ids,
            "record_type": "sms",
            "direction": "mo",
            "start_time": times,
            "msisdn": "13800009999",
            "peer_number": "13999999999",
            "sms_length": 126,
            "server_ip": None,
            "server_port": 0,
            "app_protocol": None,
            "bytes_up": 0,
            "bytes_down": 0,
            "imei": "86091200000015",
        }
    )
    return pd.concat([frame, burst], ignore_index=True), ids


def key(result: telediag.ScanResult) -> list[tuple[str, str, tuple[str, ...], float, str]]:
    f = result.findings
    return sorted(
        (r.rule_id, r.msisdn, tuple(sorted(r.record_ids)), r.confidence, r.finding_id)
        for r in f.itertuples()
    )


@SETTINGS
@given(seed=st.integers(0, 10_000), n=st.integers(50, 600), count=st.integers(30, 80))
def test_shuffle_and_extra_columns_change_nothing(
    catalog: list[telediag.Rule], seed: int, n: int, count: int
) -> None:
    frame, _ = inject_phonebook(background(seed, n, 20), seed, count)
    base = telediag.scan(to_table(frame), rules=catalog)
    shuffled = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    shuffled["operator_note"] = "x"
    shuffled["cell_id"] = np.arange(len(shuffled))
    again = telediag.scan(to_table(shuffled), rules=catalog)
    assert key(base) == key(again)


@SETTINGS
@given(seed=st.integers(0, 10_000), n=st.integers(50, 600), count=st.integers(30, 80))
def test_subscriber_disjoint_parts_give_the_same_findings(
    catalog: list[telediag.Rule], seed: int, n: int, count: int
) -> None:
    rules = [r for r in catalog if not r.cross_subscriber]
    frame, _ = inject_phonebook(background(seed, n, 20), seed, count)
    whole = telediag.scan(to_table(frame), rules=rules)
    part_of = frame["msisdn"].map(lambda m: int(m) % 3)
    parts = [
        telediag.scan(to_table(frame[part_of == p].reset_index(drop=True)), rules=rules)
        for p in range(3)
    ]
    combined = sorted(k for r in parts for k in key(r))
    assert key(whole) == combined


@SETTINGS
@given(seed=st.integers(0, 10_000), n=st.integers(0, 800), count=st.integers(30, 120))
def test_injected_phonebook_forwarding_is_found(
    catalog: list[telediag.Rule], seed: int, n: int, count: int
) -> None:
    frame, ids = inject_phonebook(background(seed, n, 30), seed, count)
    result = telediag.scan(to_table(frame), rules=catalog)
    hits = result.findings[result.findings["root_cause"] == "anti_theft_sms_forwarding"]
    assert [(r.msisdn, list(r.record_ids)) for r in hits.itertuples()] == [("13800009999", ids)]


@SETTINGS
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 400),
    period=st.sampled_from([300, 600, 900, 1800]),
)
def test_injected_mail_polling_is_found(
    catalog: list[telediag.Rule], seed: int, n: int, period: int
) -> None:
    rng = np.random.default_rng(seed)
    count = 40
    times = T0 + pd.to_timedelta(np.arange(count) * period + rng.integers(-10, 11, count), unit="s")
    ids = [f"poll-{i}" for i in range(count)]
    polls = pd.DataFrame(
        {
            "record_id": ids,
            "record_type": "data",
            "direction": "mo",
            "start_time": times,
            "msisdn": "13800008888",
            "peer_number": None,
            "sms_length": -1,
            "server_ip": "211.138.24.66",
            "server_port": 110,
            "app_protocol": "POP3_DNS",
            "bytes_up": 380 + rng.integers(-5, 6, count),
            "bytes_down": 820,
            "imei": None,
        }
    )
    frame = pd.concat([background(seed, n, 30), polls], ignore_index=True)
    result = telediag.scan(to_table(frame), rules=catalog)
    hits = result.findings[result.findings["root_cause"] == "mail_polling"]
    assert [(r.msisdn, list(r.record_ids)) for r in hits.itertuples()] == [("13800008888", ids)]


@SETTINGS
@given(seed=st.integers(0, 10_000), n=st.integers(50, 400), parts=st.integers(2, 4))
def test_handset_linked_parts_keep_every_finding(
    catalog: list[telediag.Rule], seed: int, n: int, parts: int
) -> None:
    """With parts from telediag.partition, even cross-subscriber rules find the same."""
    from telediag.partition import part_of_rows

    rng = np.random.default_rng(seed)
    frame = background(seed, n, 20)
    frame["imei"] = [f"3520140100{v:04d}" for v in rng.integers(0, 15, len(frame))]
    swap = pd.DataFrame(
        {
            "record_id": ["swap-a", "swap-c"],
            "record_type": "mms",
            "direction": "mo",
            "start_time": [T0 + pd.Timedelta(days=1), T0 + pd.Timedelta(days=3)],
            "msisdn": ["13800007001", "13800007002"],
            "peer_number": "13999990000",
            "sms_length": -1,
            "server_ip": None,
            "server_port": 0,
            "app_protocol": None,
            "bytes_up": 0,
            "bytes_down": 0,
            "imei": "35201401999999",
            "status": ["failed", "ok"],
            "mms_event": "submit",
            "mms_size": 40960,
        }
    )
    frame = pd.concat([frame, swap], ignore_index=True)
    whole = telediag.scan(to_table(frame), rules=catalog)
    assert ("TD004", "13800007002") in {(r.rule_id, r.msisdn) for r in whole.findings.itertuples()}
    part = part_of_rows(to_table(frame), parts)
    pieces = [
        telediag.scan(to_table(frame[part == p].reset_index(drop=True)), rules=catalog)
        for p in range(parts)
    ]
    assert key(whole) == sorted(k for r in pieces for k in key(r))


def test_linked_groups_follow_chains() -> None:
    from telediag.partition import linked_groups

    msisdn = pa.array(["a", "b", "b", "c", "d", "e"])
    h1, h2, h3 = "35201401000017", "35201401000025", "86091200000015"
    imei = pa.array([h1, h1, h2, h2, h3, None])
    label, values = linked_groups(msisdn, imei)
    group = dict(zip(values.to_pylist(), label.tolist(), strict=True))
    assert group["a"] == group["b"] == group["c"]
    assert len({group["a"], group["d"], group["e"]}) == 3


def shared_handset_mms(seed: int, n: int) -> pd.DataFrame:
    """MMS submits, calls and SMS by 12 subscribers passing 5 handsets around over two
    months, many failed, to few recipients of few sizes: many re-send look-alikes."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(["mms", "voice", "sms"], size=n, p=[0.6, 0.2, 0.2])
    return pd.DataFrame(
        {
            "record_id": [f"hs{seed}-{i}" for i in range(n)],
            "record_type": kind,
            "direction": "mo",
            "start_time": T0 + pd.to_timedelta(rng.integers(0, 90 * 86400, n), unit="s"),
            "msisdn": [f"1380000{v:04d}" for v in rng.integers(0, 12, n)],
            "peer_number": [f"1390000{v:04d}" for v in rng.integers(0, 3, n)],
            "sms_length": np.where(kind == "sms", 70, -1),
            "server_ip": None,
            "server_port": 0,
            "app_protocol": None,
            "bytes_up": 0,
            "bytes_down": 0,
            "imei": np.where(
                rng.random(n) < 0.9,
                np.array([f"3520140188{v:04d}" for v in rng.integers(0, 5, n)], dtype=object),
                None,
            ),
            "status": np.where(kind == "mms", rng.choice(["ok", "failed"], size=n), None),
            "mms_event": np.where(kind == "mms", "submit", None),
            "mms_size": np.where(kind == "mms", rng.choice([20480, 40960, 61440], size=n), None),
        }
    )


@SETTINGS
@given(seed=st.integers(0, 10_000), n=st.integers(20, 300))
def test_handset_rule_is_the_same_on_any_table_holding_the_handsets_rows(
    catalog: list[telediag.Rule], seed: int, n: int
) -> None:
    """TD004 reads only records carrying the IMEI: scanning each handset's rows alone (a
    bucket of rows hashed by IMEI) gives exactly the findings of the whole table."""
    td004 = [r for r in catalog if r.id == "TD004"]
    frame = pd.concat([shared_handset_mms(seed, n), background(seed, 50, 12)], ignore_index=True)
    whole = telediag.scan(to_table(frame), rules=td004)
    buckets = []
    for imei in frame["imei"].dropna().unique():
        rows = frame[frame["imei"] == imei].reset_index(drop=True)
        buckets.append(telediag.scan(to_table(rows), rules=td004))
    assert key(whole) == sorted(k for r in buckets for k in key(r))
