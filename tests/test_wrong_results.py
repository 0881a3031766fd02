"""Regression tests for results that were wrong without any error (issue 9).

Each test reproduces one point through the public API (telediag.scan,
telediag.investigate, the command line) and fails on the code before the fix.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import telediag
from telediag.cli import main
from telediag.numbers import HomeCountry, classify_numbers
from telediag.partition import linked_groups, part_of_rows
from telediag.policy import load_policy
from telediag.read import read_input

from .conftest import FIXTURES, RULES

TZ = "Asia/Shanghai"


# -- 1. record ids across the files of one input ------------------------------------------


def _hourly_parts(tmp_path: Path, ids: str) -> tuple[Path, pd.DataFrame]:
    """The TD001 phonebook burst as a Hive-style directory, one ``part-0`` per hour.

    ``ids`` is ``"none"`` (no record_id column) or ``"restart"`` (explicit ids that
    start again in every file, as a daily export numbers them).
    """
    frame = pd.read_csv(FIXTURES / "TD001" / "phonebook-forward.csv", dtype=str)
    frame["start_time"] = pd.to_datetime(frame["start_time"])
    frame["sms_length"] = pd.to_numeric(frame["sms_length"])
    frame["charge"] = pd.to_numeric(frame["charge"])
    hour = frame["start_time"].dt.strftime("%Y-%m-%dT%H")
    root = tmp_path / "cdrs"
    for value, part in frame.groupby(hour, sort=True):
        part = part.reset_index(drop=True)
        if ids == "none":
            part = part.drop(columns=["record_id"])
        else:
            part["record_id"] = [f"r{i}" for i in range(len(part))]
        folder = root / f"hour={value}"
        folder.mkdir(parents=True)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), folder / "part-0.parquet")
    return root, frame


def test_generated_ids_are_unique_across_a_partitioned_directory(tmp_path: Path) -> None:
    root, frame = _hourly_parts(tmp_path, "none")
    result = telediag.scan(root, tz=TZ, select=["TD001"])
    assert len(result.findings) == 1
    ids = list(result.findings["record_ids"].iloc[0])
    assert len(ids) == 40 and len(set(ids)) == 40
    assert ids[0] == "hour=2008-06-12T09/part-0:0"
    assert ids[-1] == "hour=2008-06-12T10/part-0:9"
    inv = telediag.investigate(root, "13800000001", tz=TZ)
    assert [f.rule_id for f in inv.findings] == ["TD001"]
    assert inv.findings[0].evidence == ids
    shown = [r.start_time.replace(tzinfo=None) for r in inv.findings[0].evidence_records]
    burst = frame[frame["record_id"].str.match(r"b\d\d")]["start_time"]
    assert shown == list(burst)


def test_finding_id_is_the_same_whole_or_in_parts(tmp_path: Path) -> None:
    root, frame = _hourly_parts(tmp_path, "none")
    whole = tmp_path / "whole.parquet"
    table = pa.Table.from_pandas(frame.drop(columns=["record_id"]), preserve_index=False)
    pq.write_table(table, whole)
    in_parts = telediag.scan(root, tz=TZ).findings
    at_once = telediag.scan(whole, tz=TZ).findings
    assert len(at_once) == 1
    assert list(in_parts["finding_id"]) == list(at_once["finding_id"])
    with_ids = tmp_path / "with-ids.csv"
    frame.to_csv(with_ids, index=False)
    assert list(telediag.scan(with_ids, tz=TZ).findings["finding_id"]) == list(
        at_once["finding_id"]
    )


def test_explicit_ids_that_restart_per_file_are_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, frame = _hourly_parts(tmp_path, "restart")
    result = telediag.scan(root, tz=TZ, select=["TD001"])
    warnings = result.report.to_dict()["warnings"]
    assert len(warnings) == 1 and "record_id" in warnings[0] and "'r0'" in warnings[0]
    out = tmp_path / "f.csv"
    assert main(["scan", str(root), "--out", str(out), "--tz", TZ]) == 0
    assert "warning: record_id is not unique" in capsys.readouterr().out
    inv = telediag.investigate(root, "13800000001", tz=TZ)
    assert [f.rule_id for f in inv.findings] == ["TD001"]
    found = inv.findings[0]
    assert len(found.evidence_records) == 40
    assert [r.record_id for r in found.evidence_records] == found.evidence
    burst = frame[frame["record_id"].str.match(r"b\d\d")]["start_time"]
    shown = [r.start_time.replace(tzinfo=None) for r in found.evidence_records]
    assert shown == list(burst)
    assert int(inv.records["evidence"].sum()) == 40


def test_files_of_the_same_stem_side_by_side_get_distinct_ids(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "record_type": ["sms"],
            "direction": ["mo"],
            "start_time": ["2008-07-01 10:00"],
            "msisdn": ["1380"],
        }
    )
    for day in ("a", "b"):
        (tmp_path / day).mkdir()
        frame.to_csv(tmp_path / day / "export.csv", index=False)
    raw = read_input([tmp_path / "a" / "export.csv", tmp_path / "b" / "export.csv"])
    ids = raw.generated_ids(np.array([0, 1])).to_pylist()
    assert len(set(ids)) == 2 and ids[0].endswith("a/export:0")


# -- 2. local time across daylight saving --------------------------------------------------


def _mail(msisdn: str, times: pd.DatetimeIndex, prefix: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "record_id": [f"{prefix}{i}" for i in range(len(times))],
            "record_type": "data",
            "direction": "mo",
            "start_time": times,
            "msisdn": msisdn,
            "server_ip": "10.0.0.25",
            "server_port": 110,
            "app_protocol": "POP3",
            "bytes_up": 600,
            "bytes_down": 1500,
        }
    )


def _night_count(result: telediag.ScanResult, msisdn: str) -> int:
    f = result.findings
    row = f[(f["msisdn"] == msisdn) & (f["rule_id"] == "TD002")]
    assert len(row) == 1
    return int(json.loads(row["measures"].iloc[0])["night_count"])


def test_local_hour_uses_each_records_own_offset() -> None:
    """In Berlin a July 04:30Z record is 06:30 local (summer time), not night."""
    poller = _mail(
        "4915100000001",
        pd.date_range("2008-07-01 03:10", periods=30, freq="20min", tz="UTC"),
        "p",
    )
    local_hours = poller["start_time"].dt.tz_convert("Europe/Berlin").dt.hour
    expected = int((local_hours < 6).sum())
    alone = telediag.scan(pa.Table.from_pandas(poller), tz="Europe/Berlin", select=["TD002"])
    assert _night_count(alone, "4915100000001") == expected
    # Another subscriber polls in January and in December (winter time both ends).
    winter_times = pd.date_range("2008-01-05 10:00", periods=30, freq="30min", tz="UTC").append(
        pd.date_range("2008-12-20 10:00", periods=30, freq="30min", tz="UTC")
    )
    winter = _mail("4915100000002", winter_times, "w")
    both = pd.concat([poller, winter], ignore_index=True)
    with_other = telediag.scan(pa.Table.from_pandas(both), tz="Europe/Berlin", select=["TD002"])
    mine = with_other.findings[with_other.findings["msisdn"] == "4915100000001"]
    f_alone = alone.findings.drop(columns=["record_ids"]).reset_index(drop=True)
    f_other = mine.drop(columns=["record_ids"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(f_alone, f_other)
    assert _night_count(with_other, "4915100000001") == expected


# -- 3. blank strings and placeholder IMEIs ------------------------------------------------


def _sim_swap_frame() -> pd.DataFrame:
    return pd.read_csv(FIXTURES / "TD004" / "resent-under-new-sim.csv", dtype=str)


def _as_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write text columns as they are ("" stays ""), times and numbers typed."""
    frame = frame.copy()
    frame["start_time"] = pd.to_datetime(frame["start_time"])
    for col in ("duration_s", "charge", "mms_size", "sms_length"):
        if col in frame.columns:
            frame[col] = pd.to_numeric(frame[col])
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


@pytest.mark.parametrize("placeholder", ["", "   ", "000000000000000", "0000000012345678", "12345"])
def test_blank_or_placeholder_imeis_do_not_link_subscribers(
    tmp_path: Path, placeholder: str
) -> None:
    frame = _sim_swap_frame().fillna("")
    assert len(telediag.scan(_as_parquet(frame, tmp_path / "real.parquet"), tz=TZ).findings)
    frame["imei"] = placeholder
    path = _as_parquet(frame, tmp_path / "blank.parquet")
    result = telediag.scan(path, tz=TZ)
    assert list(result.findings["rule_id"]) == []
    assert result.report.rows_used == 5 and result.report.set_aside == {}
    inv = telediag.investigate(path, "13800000402", tz=TZ)
    assert inv.input["rows_read"] == 3  # no other subscriber's rows through the "handset"
    assert inv.overview.handsets == []
    assert part_of_rows(pq.read_table(path), 1).tolist() == [0] * 5


def test_placeholder_imeis_do_not_put_everyone_in_one_part() -> None:
    n = 400
    table = pa.table(
        {
            "msisdn": [f"1380000{i:04d}" for i in range(n)],
            "imei": ["", "000000000000000", " ", None] * (n // 4),
        }
    )
    label, _ = linked_groups(table["msisdn"], table["imei"])
    assert len(set(label.tolist())) == n  # nobody is linked to anybody
    parts = np.bincount(part_of_rows(table, 4), minlength=4)
    assert parts.max() < n / 2
    linked = pa.table({"msisdn": ["a", "b", "c"], "imei": ["35201401000017"] * 2 + [""]})
    label, _ = linked_groups(linked["msisdn"], linked["imei"])
    assert label.tolist() == [0, 0, 2]


def test_blank_strings_are_null_in_every_string_column(tmp_path: Path) -> None:
    frame = _sim_swap_frame().fillna("")
    frame.loc[2, "status"] = " "  # blank status: not given, so ok
    frame.loc[2, "peer_number"] = ""
    frame["apn"] = ""
    frame.loc[1, "mms_event"] = "submit"
    frame.loc[0, "mms_event"] = "  "
    frame.loc[4, "record_id"] = ""
    path = _as_parquet(frame, tmp_path / "blanks.parquet")
    result = telediag.scan(path, tz=TZ)
    assert result.report.set_aside == {}
    assert result.report.rows_used == 5
    assert list(result.findings["rule_id"]) == ["TD004"]
    table = result.normalized.table if result.normalized is not None else None
    assert table is not None
    for col in ("status", "peer_number", "apn", "mms_event", "record_id"):
        values = table[col].to_pylist()
        assert "" not in values and " " not in values and "  " not in values, col
    assert table["status"].to_pylist()[2] is None
    assert table["apn"].null_count == 5
    inv = telediag.investigate(path, "13800000402", tz=TZ)
    assert inv.records["record_id"].iloc[-1] == "blanks:4"  # a blank id is generated
    blank = tmp_path / "blank-fields.parquet"
    frame.loc[3, "msisdn"] = "  "
    frame.loc[4, "record_type"] = ""
    frame.loc[2, "direction"] = " "
    rep = telediag.scan(_as_parquet(frame, blank), tz=TZ).report
    assert rep.set_aside == {
        "missing msisdn": 1,
        "missing record_type": 1,
        "missing direction": 1,
    }


# -- 4. out-of-range and non-integral numbers ----------------------------------------------


def _reasons(result: telediag.ScanResult) -> dict[str, str]:
    """Record id -> reason of each row the scan set aside."""
    return dict(result.rejects().to_pandas().set_index("record_id")["reason"].to_dict())


def _data_rows(n: int) -> dict[str, object]:
    return {
        "record_id": [f"d{i}" for i in range(n)],
        "record_type": ["data"] * n,
        "direction": ["mo"] * n,
        "start_time": pd.date_range("2008-07-01", periods=n, freq="min", tz="UTC"),
        "msisdn": ["13800000001"] * n,
    }


def test_numbers_out_of_range_or_not_integral_are_set_aside_not_cast() -> None:
    table = pa.table(
        {
            **_data_rows(8),
            "status_code": pa.array([2000, 2**32 + 200, None, 7, 7, 7, 7, 7], pa.int64()),
            "bytes_up": pa.array([10.0, 20.0, 1.7, float("nan"), 3e19, float("inf"), -5.0, 30.0]),
            "visited_mcc": pa.array([460] * 7 + [46_000_000_000], pa.int64()),
        }
    )
    result = telediag.scan(table)
    rep = result.report
    assert rep.set_aside == {
        "out-of-range status_code": 1,
        "non-integral bytes_up": 1,
        "out-of-range bytes_up": 2,
        "negative bytes_up": 1,
        "out-of-range visited_mcc": 1,
    }
    assert rep.rows_used == 2  # d0, and d3 whose NaN volume reads as not given
    rejects = _reasons(result)
    assert rejects == {
        "d1": "out-of-range status_code",
        "d2": "non-integral bytes_up",
        "d4": "out-of-range bytes_up",
        "d5": "out-of-range bytes_up",
        "d6": "negative bytes_up",
        "d7": "out-of-range visited_mcc",
    }
    assert result.normalized is not None
    kept = result.normalized.table.to_pandas().set_index("record_id")
    assert kept.loc["d0", "bytes_up"] == 10 and pd.isna(kept.loc["d3", "bytes_up"])


def test_numbers_in_text_are_checked_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "text.csv"
    path.write_text(
        "record_id,record_type,direction,start_time,msisdn,status_code,bytes_up,visited_mcc,"
        "server_port,sms_class,duration_s\n"
        "t0,data,mo,2008-07-01 10:00,1380,2000,10,460,80,,1.5\n"
        "t1,data,mo,2008-07-01 10:01,1380,4294967496,10,460,80,,\n"
        "t2,data,mo,2008-07-01 10:02,1380,,1.7,460,80,,\n"
        "t3,data,mo,2008-07-01 10:03,1380,,1e400,460,80,,\n"
        "t4,data,mo,2008-07-01 10:04,1380,,12.0,46000000000,80,,\n"
        "t5,data,mo,2008-07-01 10:05,1380,,12,4600,80,,\n"
        "t6,data,mo,2008-07-01 10:06,1380,,12,460,70000,,\n"
        "t7,sms,mo,2008-07-01 10:07,1380,,,460,,9,\n"
        "t8,voice,mo,2008-07-01 10:08,1380,,,460,,,inf\n"
    )
    result = telediag.scan(path)
    rejects = _reasons(result)
    assert rejects == {
        "t1": "out-of-range status_code",
        "t2": "non-integral bytes_up",
        "t3": "out-of-range bytes_up",
        "t4": "out-of-range visited_mcc",
        "t5": "out-of-range visited_mcc",
        "t6": "out-of-range server_port",
        "t7": "out-of-range sms_class",
        "t8": "out-of-range duration_s",
    }
    assert result.report.rows_used == 1


# -- 5. what is checked does not depend on the rules selected ------------------------------


def test_every_contract_column_is_checked_whatever_the_selection(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(
        "record_id,record_type,direction,start_time,msisdn,duration_s,bytes_up,sms_length\n"
        "v1,voice,mo,2008-07-01 10:00,1380,-5,,\n"
        "v2,voice,mo,2008-07-01 10:01,1380,60,,\n"
        "d1,data,mo,2008-07-01 10:02,1380,30,-1,\n"
        "s1,sms,mo,2008-07-01 10:03,1380,,,x\n"
    )
    expected = {"negative duration_s": 1, "negative bytes_up": 1, "unparseable sms_length": 1}
    reports = [
        telediag.scan(path, select=select).report
        for select in (["TD001"], ["TD002"], ["TD009"], None)
    ]
    for rep in reports:
        assert rep.set_aside == expected
        assert rep.rows_used == 1


# -- 8. home country and numbers -----------------------------------------------------------


def test_zeros_are_not_international_and_the_bare_foreign_form_is() -> None:
    numbers = [
        "0000000000",
        "000",
        "00",
        "43664684000",
        "+43664684000",
        "0043664684000",
        "13800000001",
        "12125551234",
        "4008123123",
        "10086",
        "03711234567",
    ]
    frame = classify_numbers(numbers)
    assert frame["international"].tolist() == [
        False,
        False,
        False,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
        False,
    ]
    assert frame["region"].tolist()[3] == "AT"
    assert frame["country_code"].isna().tolist()[:3] == [True, True, True]


def test_td007_raises_confidence_for_the_bare_trap_number() -> None:
    table = pa.table(
        {
            **_data_rows(3),
            "record_type": ["csd"] * 3,
            "peer_number": ["43664684000", "0000000000", "000"],
            "charge": [2.5, 1.0, 1.0],
        }
    )
    found = telediag.scan(table, select=["TD007"]).findings
    assert found["group"].tolist() == ["43664684000"]
    assert found["confidence"].tolist() == [0.95]


def test_td009_roaming_is_judged_from_the_home_country(tmp_path: Path) -> None:
    src = FIXTURES / "TD009" / "dual-band-in-ottawa.csv"
    at_home_in_china = telediag.scan(src, tz=TZ, select=["TD009"])
    assert at_home_in_china.findings["record_ids"].map(list).tolist() == [["h2", "h3", "h4"]]
    canadian = telediag.scan(src, tz=TZ, select=["TD009"], home=HomeCountry(region="CA"))
    assert canadian.findings.empty  # MCC 302 is home for a Canadian operator
    in_the_us = tmp_path / "us.csv"
    frame = pd.read_csv(src, dtype=str)
    frame["visited_mcc"] = frame["visited_mcc"].replace({"302": "310"})
    frame.to_csv(in_the_us, index=False)
    abroad = telediag.scan(in_the_us, tz=TZ, select=["TD009"], home=HomeCountry(region="CA"))
    assert abroad.findings["record_ids"].map(list).tolist() == [["h2", "h3", "h4"]]
    assert abroad.findings["group"].tolist() == ["310"]


# -- 9. the shipped 3GPP TS 32.298 column map ----------------------------------------------


def test_3gpp_map_reads_causes_as_the_standard_defines_them(tmp_path: Path) -> None:
    cmap = Path(__file__).resolve().parent.parent / "column-maps" / "3gpp-ts32298.yaml"
    rows = [
        # record type, cause for term (CS) or for record closing (PS), expected status
        ("moCallRecord", "causeForTerm", "0", "ok"),  # normalRelease
        ("moCallRecord", "causeForTerm", "1", "ok"),  # partialRecord: the call goes on
        ("moCallRecord", "causeForTerm", "2", "ok"),  # partialRecordCallReestablishment
        ("moCallRecord", "causeForTerm", "3", "failed"),  # unsuccessfulCallAttempt
        ("mtCallRecord", "causeForTerm", "4", "failed"),  # abnormal release
        ("mtCallRecord", "causeForTerm", "stableCallAbnormalTermination", "failed"),
        ("moCallRecord", "causeForTerm", "5", "ok"),  # cAMELInitCallRelease
        ("moCallRecord", "causeForTerm", "partialRecord", "ok"),
        ("egsnPDPRecord", "causeForRecClosing", "16", "ok"),  # volumeLimit
        ("egsnPDPRecord", "causeForRecClosing", "17", "ok"),  # timeLimit
        ("pGWRecord", "causeForRecClosing", "rATChange", "ok"),
        ("sGWRecord", "causeForRecClosing", "4", "failed"),  # abnormalRelease
        ("sgsnPDPRecord", "causeForRecClosing", "54", "failed"),  # positionMethodFailure
    ]
    header = "recordType,servedMSISDN,recordOpeningTime,seizureTime,causeForTerm,causeForRecClosing"
    lines = [header]
    for i, (kind, column, cause, _) in enumerate(rows):
        ps = column == "causeForRecClosing"
        when = f"2008-07-01 10:{i:02d}:00"
        lines.append(
            f"{kind},8613800000001,{when if ps else ''},{'' if ps else when},"
            f"{'' if ps else cause},{cause if ps else ''}"
        )
    lines.append("mtSMSRecord,8613800000001,,,,")  # times below: deliveryTime only
    path = tmp_path / "cdr.csv"
    path.write_text("\n".join(lines) + "\n")
    frame = pd.read_csv(path, dtype=str)
    frame["deliveryTime"] = [None] * len(rows) + ["2008-07-01 11:00:00"]
    frame.to_csv(path, index=False)
    result = telediag.scan(path, column_map=cmap)
    assert result.report.set_aside == {}
    assert result.normalized is not None
    statuses = result.normalized.table["status"].to_pylist()
    assert statuses == [expected for *_, expected in rows] + [None]


def test_3gpp_map_reads_numbered_record_types(tmp_path: Path) -> None:
    cmap = Path(__file__).resolve().parent.parent / "column-maps" / "3gpp-ts32298.yaml"
    path = tmp_path / "numbered.csv"
    path.write_text(
        "recordType,servedMSISDN,seizureTime,originationTime,deliveryTime,recordOpeningTime\n"
        "0,8613800000001,2008-07-01 10:00,,,\n"
        "1,8613800000001,2008-07-01 10:01,,,\n"
        "6,8613800000001,,2008-07-01 10:02,,\n"
        "7,8613800000001,,,2008-07-01 10:03,\n"
        "84,8613800000001,,,,2008-07-01 10:04\n"
        "85,8613800000001,,,,2008-07-01 10:05\n"
    )
    result = telediag.scan(path, column_map=cmap)
    assert result.report.set_aside == {}
    assert result.normalized is not None
    table = result.normalized.table
    kinds = list(zip(table["record_type"].to_pylist(), table["direction"].to_pylist(), strict=True))
    assert kinds == [
        ("voice", "mo"),
        ("voice", "mt"),
        ("sms", "mo"),
        ("sms", "mt"),
        ("data", "mo"),
        ("data", "mo"),
    ]


# -- 6. investigation periods --------------------------------------------------------------


def test_period_filter_updates_the_input_report() -> None:
    src = FIXTURES / "TD001" / "phonebook-forward.csv"
    inv = telediag.investigate(src, "13800000001", start="2008-06-12", end="2008-06-12", tz=TZ)
    assert inv.overview.records == 42
    assert inv.input["rows_read"] == 44
    assert inv.input["rows_used"] == 42
    assert inv.input["rows_outside_period"] == 2
    assert inv.input["rows_set_aside"] == 0 and inv.input["set_aside"] == {}


def _calls(tmp_path: Path, local_times: list[str], zone: str) -> Path:
    stamps = pd.DatetimeIndex(local_times).tz_localize(zone, ambiguous=True)
    frame = pd.DataFrame(
        {
            "record_id": [f"c{i}" for i in range(len(stamps))],
            "record_type": "voice",
            "direction": "mo",
            "start_time": stamps.tz_convert("UTC"),
            "msisdn": "4915100000009",
            "peer_number": "4915100000001",
            "duration_s": 61.0,
        }
    )
    path = tmp_path / "calls.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


def test_to_date_covers_the_whole_local_day_on_the_autumn_change(tmp_path: Path) -> None:
    path = _calls(
        tmp_path,
        ["2008-10-25 23:30", "2008-10-26 00:10", "2008-10-26 23:30", "2008-10-27 00:10"],
        "Europe/Berlin",
    )
    inv = telediag.investigate(
        path, "4915100000009", start="2008-10-26", end="2008-10-26", tz="Europe/Berlin"
    )
    assert list(inv.records["record_id"]) == ["c1", "c2"]
    assert inv.period.end is not None and inv.period.end.isoformat() == "2008-10-27T00:00:00+01:00"


def test_from_a_midnight_that_does_not_exist(tmp_path: Path) -> None:
    path = _calls(tmp_path, ["2018-11-03 23:30", "2018-11-04 01:30"], "America/Sao_Paulo")
    inv = telediag.investigate(
        path, "4915100000009", start="2018-11-04", end="2018-11-04", tz="America/Sao_Paulo"
    )
    assert list(inv.records["record_id"]) == ["c1"]
    assert inv.period.start is not None
    assert inv.period.start.isoformat() == "2018-11-04T01:00:00-02:00"


def test_bad_complaint_date_is_refused_before_any_rule_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _calls(tmp_path, ["2008-07-01 10:00"], "UTC")
    # Checked first: before the input is even opened, so before any rule runs.
    with pytest.raises(telediag.InputError, match="complaint date 'yesterday'"):
        telediag.investigate(tmp_path / "absent.parquet", "1", complaint_date="yesterday")
    code = main(["investigate", str(path), "--msisdn", "4915100000009", "--complaint-date", "x"])
    assert code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_voice_duration_is_shown_in_reports(tmp_path: Path) -> None:
    path = _calls(tmp_path, ["2008-07-01 10:00"], "UTC")
    inv = telediag.investigate(path, "4915100000009")
    assert inv.records["duration_s"].tolist() == [61.0]


# -- 7. policy weekend days ----------------------------------------------------------------


@pytest.mark.parametrize(
    "weekend", ["[saturday, sunday]", "[Saturday, Sunday]", "[SAT, sun]", "[Sat, Sun]"]
)
def test_weekend_day_names_as_people_write_them(tmp_path: Path, weekend: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(f"deadlines: {{acknowledge: 1, weekend: {weekend}}}\n")
    policy = load_policy(path)
    # Friday 2008-06-13: one working day later is Monday, never Saturday or Sunday.
    assert policy.deadlines.due(dt.date(2008, 6, 13))["acknowledge"] == dt.date(2008, 6, 16)


def test_friday_saturday_weekend(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("deadlines: {acknowledge: 1, weekend: [friday, saturday]}\n")
    due = load_policy(path).deadlines.due(dt.date(2008, 6, 12))  # a Thursday
    assert due["acknowledge"] == dt.date(2008, 6, 15)  # Sunday is a working day


@pytest.mark.parametrize(
    ("weekend", "message"),
    [
        ("[mon, tue, wed, thu, fri, sat, sun]", "at least one working day"),
        ("[saturday, funday]", "'funday' is not a day of the week"),
    ],
)
def test_impossible_weekends_are_refused_in_one_line(
    tmp_path: Path, weekend: str, message: str
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(f"deadlines: {{weekend: {weekend}}}\n")
    with pytest.raises(telediag.TelediagError, match=message) as info:
        load_policy(path)
    assert "\n" not in str(info.value) and "deadlines.weekend" in str(info.value)


# -- 10. the catalog refuses what the engine cannot run; one schema per output -------------


def _rules_dir(tmp_path: Path, rule_id: str, old: str, new: str) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    text = (RULES / f"{rule_id}.yaml").read_text(encoding="utf-8")
    assert old in text
    (folder / f"{rule_id}.yaml").write_text(text.replace(old, new), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("group_by: [peer_number]", "group_by: [peer_country]"),
        ("mode_of: sms_length", "mode_of: handset_model"),
    ],
)
def test_derived_columns_in_detector_params_are_refused(tmp_path: Path, old: str, new: str) -> None:
    folder = _rules_dir(tmp_path, "TD001", old, new)
    with pytest.raises(telediag.RuleFileError, match=r"TD001\.yaml: detector.*derived"):
        telediag.load_rules(folder)


def test_every_finding_field_can_be_used_in_an_explanation(tmp_path: Path) -> None:
    folder = _rules_dir(
        tmp_path,
        "TD001",
        "Between {first_seen} and {last_seen} your phone",
        "{handset_change_before_s:.0f} s after a handset change (known quirk: "
        "{handset_quirk}), between {first_seen} and {last_seen} your phone",
    )
    src = FIXTURES / "TD001" / "phonebook-forward.csv"
    inv = telediag.investigate(src, "13800000001", tz=TZ, rules=folder)
    assert inv.rule_errors == []
    assert [f.rule_id for f in inv.findings] == ["TD001"]
    # The new handset first appears on 2008-06-11 07:00, the burst starts 06-12 09:00.
    assert inv.findings[0].explanation.en.startswith("93600 s after a handset change")


def test_measures_are_the_same_in_scan_and_investigate() -> None:
    src = FIXTURES / "TD001" / "phonebook-forward.csv"
    scanned = json.loads(telediag.scan(src, tz=TZ).findings["measures"].iloc[0])
    inv = telediag.investigate(src, "13800000001", tz=TZ)
    assert inv.findings[0].measures == scanned


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_findings_files_have_one_schema_found_or_not(tmp_path: Path, suffix: str) -> None:
    found = tmp_path / f"found{suffix}"
    none = tmp_path / f"none{suffix}"
    evidence = tmp_path / f"evidence{suffix}"
    no_evidence = tmp_path / f"no-evidence{suffix}"
    src = FIXTURES / "TD001" / "phonebook-forward.csv"
    quiet = FIXTURES / "TD001" / "chat-with-friend.csv"
    assert main(["scan", str(src), "--out", str(found), "--evidence", str(evidence), "-q"]) == 0
    assert main(["scan", str(quiet), "--out", str(none), "--evidence", str(no_evidence), "-q"]) == 0
    if suffix == ".parquet":
        assert pq.read_schema(none) == pq.read_schema(found)
        assert pq.read_schema(none).field("record_ids").type == pa.list_(pa.string())
        assert pq.read_schema(no_evidence) == pq.read_schema(evidence)
    else:
        assert none.read_text().splitlines()[0] == found.read_text().splitlines()[0]
        header = no_evidence.read_text().splitlines()[0]
        assert header == evidence.read_text().splitlines()[0]


def test_unsigned_numbers_beyond_the_signed_range_are_set_aside() -> None:
    table = pa.table(
        {**_data_rows(3), "bytes_up": pa.array([10, 2**63 + 5, 2**64 - 1], pa.uint64())}
    )
    result = telediag.scan(table)
    assert result.report.set_aside == {"out-of-range bytes_up": 2}
    assert result.report.rows_used == 1
    rejects = _reasons(result)
    assert rejects == {"d1": "out-of-range bytes_up", "d2": "out-of-range bytes_up"}


def _float_identifier_month(tmp_path: Path, column: str) -> Path:
    """The TD001 fixture with one identifier column written as floats (13800000001.0),
    as pandas writes a column of numbers."""
    frame = pd.read_csv(FIXTURES / "TD001" / "phonebook-forward.csv", dtype=str)
    frame[column] = frame[column].astype(float)
    path = tmp_path / f"float-{column}.parquet"
    frame.to_parquet(path)
    return path


@pytest.mark.parametrize("column", ["msisdn", "peer_number"])
def test_float_identifiers_read_alike_in_memory_in_buckets_and_in_a_store(
    tmp_path: Path, column: str
) -> None:
    """Review: integral floats became 1.3800000001e+10 in buckets and stores, which is a
    fraction's spelling, so every row was set aside there (in memory: 13800000001)."""
    from telediag.store import prepare

    month = _float_identifier_month(tmp_path, column)
    whole = telediag.scan(month, tz=TZ)
    assert len(whole.findings) == 1 and whole.report.set_aside == {}
    prepare([month], tmp_path / "store", tz=TZ)
    for other in (telediag.scan(month, tz=TZ, buckets=3), telediag.scan(tmp_path / "store")):
        assert other.report.set_aside == whole.report.set_aside
        assert other.findings["finding_id"].tolist() == whole.findings["finding_id"].tolist()
        assert other.findings["msisdn"].tolist() == ["13800000001"]
        assert sorted(other.evidence["record_id"]) == sorted(whole.evidence["record_id"])


def test_a_fraction_with_blanks_around_it_is_set_aside_in_every_identifier() -> None:
    """Review: the fraction check trimmed msisdn but not peer_number, imsi or imei, so
    " 13700000002.5 " passed where "13700000002.5" was set aside."""
    rows = _data_rows(4)
    rows["peer_number"] = ["13700000002.5", " 13700000002.5 ", "13700000002", None]
    rows["imsi"] = [None, None, " 460001234500001.5 ", None]
    rows["imei"] = [None, None, None, " 3.52014010000017e+14\t"]
    result = telediag.scan(pa.table(rows))
    reasons = _reasons(result)
    assert reasons == {
        "d0": "non-integral peer_number",
        "d1": "non-integral peer_number",
        "d2": "non-integral imsi",
        "d3": "non-integral imei",
    }
