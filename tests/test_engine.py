"""Engine behaviour: broken rules, empty input, thresholds as data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

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


@pytest.mark.parametrize("time_bits", [30, 45])  # one packed sort; ranges sorted apart
def test_bucketed_argsort_equals_plain_argsort(monkeypatch, time_bits: int) -> None:  # type: ignore[no-untyped-def]
    from telediag import sort as sort_mod

    monkeypatch.setattr(sort_mod, "_BUCKET_ROWS", 1000)
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 3000, 20_000).astype(np.int32)
    times = rng.integers(0, 1 << time_bits, 20_000)
    times[1::2] = times[::2]  # ties (on codes that happen to match)
    key = (codes.astype(np.int64) << time_bits) | times
    got = sort_mod._argsort_by_subscriber_ranges(key.copy(), codes)
    assert np.array_equal(key[got], np.sort(key))
    assert sorted(got.tolist()) == list(range(20_000))


def _measures(rule_id: str, fixture: str, msisdn: str) -> pd.DataFrame:
    """Every measure of every candidate of one subscriber, with its group label."""
    from telediag.context import ScanSettings
    from telediag.engine import run_rule
    from telediag.filters import FilterEvaluator
    from telediag.findings import _group_labels

    from .conftest import FIXTURES

    rule = next(r for r in telediag.load_rules() if r.id == rule_id)
    result = telediag.scan(FIXTURES / fixture, rules=[rule], tz="Asia/Shanghai")
    records = result.records
    assert records is not None and result.normalized is not None
    settings = ScanSettings(tz="Asia/Shanghai")
    evaluator = FilterEvaluator(records.table, settings, result.normalized.encoded)
    outcome = run_rule(rule, records, evaluator, settings, keep_all=True)
    m = outcome.candidates.measures.assign(group=_group_labels(outcome.candidates))
    code = records.msisdns.to_pylist().index(msisdn)
    return m[m["subscriber"] == code].set_index("group")


def test_daily_rhythm_measures_by_hand() -> None:
    # Texts on 2, 7, 11 (twice), 18, 24 and 30 October: 6 days of the 29 from first to last.
    m = _measures("TD010", "TD010/friend-abroad-now-and-then.csv", "13800001005")
    row = m.loc["+14165550123"]
    assert (row["count"], row["active_days"], row["longest_day_run"]) == (7, 6, 1)
    assert row["day_share"] == 6 / 29
    assert row["mode_share"] == 1 / 7
    # One report a day on 1-14 November except the 4th, 5th and 9th: 11 of 14 days, the
    # longest run 10-14 November.
    m = _measures("TD010", "TD010/reports-with-days-off.csv", "13800001004")
    row = m.loc["0046701112233"]
    assert (row["active_days"], row["longest_day_run"], row["day_share"]) == (11, 5, 11 / 14)


def test_rejection_period_measures_by_hand() -> None:
    # The newspaper: rejected 1-4 and 6-8 September, accepted on the 5th. Friends in that
    # period (2, 3, 5, 6, 7 September): five MMS from four friends; three friends' MMS
    # were refused (one of them twice), one friend's got through.
    m = _measures("TD008", "TD008/memory-full-newspaper-dominates.csv", "13800000805")
    news = m.loc["10658000"]
    assert news["rejected_since_first_share"] == 7 / 8
    assert (news["others_in_period"], news["others_failed_share"]) == (5, 3 / 4)
    # Blocked from the 7th: 8 rejections of the 8 issues since; friends' MMS on the 8th,
    # 10th, 12th and 14th (at noon, the newspaper's last at 07:30 on the 14th: 3 within).
    m = _measures("TD008", "TD008/blocked-from-mid-month.csv", "13800000804")
    news = m.loc["10658000"]
    assert (news["rejected_count"], news["count"], news["rejected_since_first_share"]) == (8, 14, 1)
    assert (news["others_in_period"], news["others_failed_share"]) == (3, 0)


def test_resend_measures_by_hand() -> None:
    # C's first record on the handset: a call at 09:00; the re-send at 09:05:30, C's first
    # MMS there, 20 days 20:01:30 after A's last failed try (13:04 on 2 June).
    m = _measures("TD004", "TD004/sim-arrives-three-weeks-later.csv", "13800000432")
    row = m.loc["13900000491 / 51200"]
    assert (row["failed_count"], row["resend_rank"], row["after_arrival_s"]) == (2, 1, 330)
    assert row["delay_s"] == 20 * 86400 + 20 * 3600 + 90
    assert row["previous_msisdn"] == "13800000431"
    # C used another handset before: the arrival is C's first record on *this* handset,
    # the re-send itself.
    m = _measures("TD004", "TD004/resent-seven-weeks-after-failure.csv", "13800000442")
    row = m.loc["13900000481 / 73400"]
    assert (row["resend_rank"], row["after_arrival_s"]) == (1, 0)
    assert row["delay_s"] == 48 * 86400 + 22 * 3600 + 50 * 60
    # By hand, days later: the fourth MMS of C on the handset, 97 h after its first call.
    m = _measures("TD004", "TD004/same-picture-sent-again-days-after-swap.csv", "13800000462")
    row = m.loc["13900000461 / 44000"]
    assert (row["failed_count"], row["resend_rank"], row["after_arrival_s"]) == (1, 4, 97 * 3600)


def test_resend_is_measured_from_the_sims_first_arrival_after_the_failure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SIMs swapped back and forth: C came back the evening of A's failure and sent ten MMS
    of its own; weeks later A's SIM is in for one call, then C sends the same picture by
    hand. C's arrival after the failure is 1 June 19:00, not 25 June: no re-send."""
    head = "record_id,record_type,direction,start_time,duration_s,msisdn,imei,peer_number,"
    head += "status,charge,mms_event,mms_size"
    imei = "35201401000017"
    rows = [
        head,
        f"c0,voice,mo,2008-06-01 08:00:00,60,13800000502,{imei},13700000001,,0.20,,",
        f"a1,mms,mo,2008-06-01 10:00:00,,13800000501,{imei},13900000499,failed,0.00,submit,48213",
        f"c1,voice,mo,2008-06-01 19:00:00,60,13800000502,{imei},13700000001,,0.20,,",
    ]
    for d in range(2, 12):
        rows.append(
            f"m{d},mms,mo,2008-06-{d:02d} 12:00:00,,13800000502,{imei},1370000{d:04d},ok,0.50,"
            f"submit,{10000 + d}"
        )
    rows += [
        f"a2,voice,mo,2008-06-25 09:00:00,60,13800000501,{imei},13700000009,,0.20,,",
        f"c2,mms,mo,2008-06-25 10:00:00,,13800000502,{imei},13900000499,ok,0.50,submit,48213",
    ]
    path = tmp_path / "pingpong.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    rule = [r for r in telediag.load_rules() if r.id == "TD004"]
    assert len(telediag.scan(path, rules=rule, tz="Asia/Shanghai").findings) == 0


def test_no_rejection_means_no_period() -> None:
    """With no rejection there is no period to count other senders in: n/a, not 0."""
    m = _measures("TD008", "TD008/newspaper-blocked.csv", "13800000801")
    friend = m.loc["13900000801"]
    assert friend["rejected_count"] == 0
    assert np.isnan(friend["others_in_period"]) and np.isnan(friend["others_failed_share"])


def test_two_blocked_senders_are_both_found(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two senders on the block list: each one's rejections are not a full memory for the
    other, since every person's MMS got through."""
    head = "record_id,record_type,direction,start_time,msisdn,imei,peer_number,status,"
    rows = [head + "status_code,charge,mms_event,mms_size"]
    who = "13800000809,35484400000010"
    for d in range(1, 11):
        rows.append(
            f"n{d},mms,mt,2008-09-{d:02d} 07:30:00,{who},10658000,rejected,2000,0,deliver,600"
        )
        rows.append(
            f"w{d},mms,mt,2008-09-{d:02d} 08:00:00,{who},10658111,rejected,2000,0,deliver,200"
        )
        if d % 2 == 0:
            rows.append(
                f"f{d},mms,mt,2008-09-{d:02d} 19:00:00,{who},1390000{d:04d},ok,,0,deliver,300"
            )
    path = tmp_path / "two-blocked.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    rule = [r for r in telediag.load_rules() if r.id == "TD008"]
    found = telediag.scan(path, rules=rule, tz="Asia/Shanghai").findings
    assert sorted(found["group"]) == ["10658000", "10658111"]
