"""Regression tests for results that were wrong without any error (issue 9).

Each test reproduces one point through the public API (telediag.scan,
telediag.investigate, the command line) and fails on the code before the fix.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import telediag
from telediag.cli import main

from .conftest import FIXTURES

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
