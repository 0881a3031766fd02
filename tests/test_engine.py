"""Engine behaviour: broken rules, empty input, thresholds as data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

import telediag
from telediag.conditions import Condition
from telediag.detectors import segments as sg


def _sms_table(n: int = 40, length: int = 126) -> pa.Table:
    times = pd.date_range("2008-06-12 01:00", periods=n, freq="90s", tz="UTC")
    return pa.table(
        {
            "record_id": [f"r{i}" for i in range(n)],
            "record_type": ["sms"] * n,
            "direction": ["mo"] * n,
            "start_time": pa.array(times),
            "msisdn": ["13800000001"] * n,
            "peer_number": ["13911112222"] * n,
            "sms_length": pa.array([length] * n, type=pa.int32()),
        }
    )


def test_a_rule_that_raises_is_reported_and_others_stand(
    catalog: list[telediag.Rule], monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from telediag.detectors.periodic import PeriodicDetector

    def boom(self, ctx, positions, params):  # type: ignore[no-untyped-def]
        raise RuntimeError("detector exploded")

    monkeypatch.setattr(PeriodicDetector, "detect", boom)
    result = telediag.scan(_sms_table(), rules=catalog)
    assert [e.rule_id for e in result.errors] == ["TD002"]
    assert "detector exploded" in result.errors[0].message
    assert list(result.findings["rule_id"]) == ["TD001"]


def test_empty_input_gives_no_findings(catalog: list[telediag.Rule]) -> None:
    result = telediag.scan(_sms_table(0), rules=catalog)
    assert result.findings.empty
    assert result.errors == []
    assert list(result.findings.columns[:10]) == [
        "finding_id",
        "rule_id",
        "root_cause",
        "msisdn",
        "first_seen",
        "last_seen",
        "record_count",
        "charge",
        "confidence",
        "summary",
    ]


def test_finding_ids_are_stable_and_summary_has_numbers(catalog: list[telediag.Rule]) -> None:
    a = telediag.scan(_sms_table(), rules=catalog)
    b = telediag.scan(_sms_table(), rules=catalog)
    assert list(a.findings["finding_id"]) == list(b.findings["finding_id"])
    summary = a.findings["summary"].iloc[0]
    assert summary.startswith("40 SMS to 13911112222")
    assert "126 characters" in summary and "median gap 90 s" in summary


def test_threshold_just_below_does_not_fire(catalog: list[telediag.Rule]) -> None:
    assert len(telediag.scan(_sms_table(30), rules=catalog).findings) == 1
    assert telediag.scan(_sms_table(29), rules=catalog).findings.empty


def test_conditions_judge_measures() -> None:
    values = pd.Series([1.0, 5.0, np.nan, 10.0])
    assert list(Condition(min=5).mask(values)) == [False, True, False, True]
    assert list(Condition.model_validate([1.0, 10.0]).mask(values)) == [True, False, False, True]
    assert list(Condition(is_null=True).mask(values)) == [False, False, True, False]
    text = pd.Series(["POP3_DNS", "imap", None, "HTTP"])
    assert list(Condition(prefix=["pop3", "IMAP"]).mask(text)) == [True, True, False, False]


def test_segment_reductions_match_pandas() -> None:
    rng = np.random.default_rng(3)
    seg = np.sort(rng.integers(0, 50, 2000))
    values = rng.normal(size=2000)
    codes = rng.integers(-1, 6, 2000)
    starts = sg.starts_where_changed([seg], seg.size)
    ids = sg.segment_ids(starts, seg.size)
    frame = pd.DataFrame({"s": ids, "v": values, "c": codes})
    nseg = starts.size
    np.testing.assert_allclose(sg.seg_median(values, ids, nseg), frame.groupby("s")["v"].median())
    assert list(sg.seg_nunique(codes, ids, nseg)) == list(
        frame[frame.c >= 0].groupby("s")["c"].nunique().reindex(range(nseg), fill_value=0)
    )
    _, top = sg.seg_mode(codes, ids, nseg)
    expected = frame.groupby("s")["c"].agg(lambda s: s.value_counts().max())
    assert list(top) == list(expected)


def test_bucketed_argsort_equals_plain_argsort(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from telediag import sort as sort_mod

    monkeypatch.setattr(sort_mod, "_BUCKET_ROWS", 1000)
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 3000, 20_000).astype(np.int32)
    times = rng.integers(0, 10**9, 20_000)
    key = (codes.astype(np.int64) << 30) | times
    got = sort_mod._argsort_by_subscriber_ranges(key, codes)
    assert np.array_equal(key[got], np.sort(key))
    assert sorted(got.tolist()) == list(range(20_000))
