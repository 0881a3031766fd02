"""Times read through a column map: durations from a start and an end time, zone
names, compact fields and their widths, typed timestamps, and the ISO layouts read
without a declaration (found by the review of issue 10)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import telediag
from telediag.colmap import ColumnMap, load_column_map
from telediag.errors import ColumnMapError
from telediag.normalize import Normalized, normalize
from telediag.read import read_input
from telediag.timeparse import UNAMBIGUOUS_FORMATS, parse_text, parse_timestamps

from .test_times import _reasons

ROOT = Path(__file__).resolve().parent.parent


def _norm(source: object, cmap: ColumnMap | dict | None, tz: str = "UTC") -> Normalized:
    m = cmap if cmap is None or isinstance(cmap, ColumnMap) else ColumnMap.model_validate(cmap)
    norm = normalize(read_input(source, column_map=m, tz=tz), tz=tz)
    rep = norm.report
    assert rep.rows_read == rep.rows_used + rep.rows_set_aside
    return norm


def _by_id(norm: Normalized, column: str) -> dict[str, object]:
    t = norm.table
    return dict(zip(t["record_id"].to_pylist(), t[column].to_pylist(), strict=True))


def _utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# --- 1. durations are differences of instants -------------------------------------

DATED = {
    "times": {"formats": ["%Y-%m-%d %H:%M:%S"]},
    "columns": {"duration_s": {"start": "begin", "end": "finish"}, "start_time": "begin"},
}


def test_duration_across_a_clock_change_is_the_time_that_passed(tmp_path: Path) -> None:
    p = tmp_path / "calls.csv"
    p.write_text(
        "record_id,record_type,direction,msisdn,begin,finish\n"
        "spring,voice,mo,1,2026-03-29 00:50:00,2026-03-29 02:10:00\n"  # GMT -> BST
        "autumn,voice,mo,1,2026-10-25 00:50:00,2026-10-25 02:10:00\n"  # BST -> GMT
        "summer,voice,mo,1,2026-07-01 00:50:00,2026-07-01 02:10:00\n"
        "gap,voice,mo,1,2026-03-29 00:50:00,2026-03-29 01:30:00\n"  # end skipped
        "overlap,voice,mo,1,2026-10-25 00:20:00,2026-10-25 01:30:00\n",  # end repeated
        encoding="utf-8",
    )
    norm = _norm(p, DATED, tz="Europe/London")
    durations = _by_id(norm, "duration_s")
    assert durations["spring"] == 1200.0  # 00:50Z to 01:10Z
    assert durations["autumn"] == 8400.0  # 23:50Z to 02:10Z
    assert durations["summer"] == 4800.0
    assert _reasons(norm) == {
        "gap": "nonexistent local duration_s",
        "overlap": "ambiguous local duration_s",
    }
    # In UTC the same rows are plain wall-clock differences.
    utc = _by_id(_norm(p, DATED, tz="UTC"), "duration_s")
    assert utc == {
        "spring": 4800.0,
        "autumn": 4800.0,
        "summer": 4800.0,
        "gap": 2400.0,
        "overlap": 4200.0,
    }


def test_times_of_day_take_the_rows_date_and_still_cross_midnight(tmp_path: Path) -> None:
    p = tmp_path / "calls.csv"
    p.write_text(
        "id,msisdn,day,begin,finish\n"
        "spring,1,2026-03-29,00:50:00,02:10:00\n"
        "autumn,1,2026-10-25,00:50:00,02:10:00\n"
        "midnight,1,2026-07-01,23:59:30,00:01:00\n"
        "night,1,2026-03-28,23:30:00,02:30:00\n"  # across midnight and into GMT->BST
        "plain,1,2026-07-01,10:00:00,10:00:42\n",
        encoding="utf-8",
    )
    cmap = {
        "times": {"formats": ["%Y-%m-%d %H:%M:%S", "%H:%M:%S"]},
        "columns": {
            "record_id": "id",
            "start_time": {"date": "day", "time": "begin"},
            "duration_s": {"start": "begin", "end": "finish"},
        },
        "constants": {"record_type": "voice", "direction": "mo"},
    }
    london = _by_id(_norm(p, cmap, tz="Europe/London"), "duration_s")
    assert london == {
        "spring": 1200.0,
        "autumn": 8400.0,
        "midnight": 90.0,
        "night": 7200.0,
        "plain": 42.0,
    }
    shanghai = _by_id(_norm(p, cmap, tz="Asia/Shanghai"), "duration_s")
    assert shanghai == {
        "spring": 4800.0,
        "autumn": 4800.0,
        "midnight": 90.0,
        "night": 10800.0,
        "plain": 42.0,
    }


def test_shipped_vendor_map_duration_follows_the_clock_change(tmp_path: Path) -> None:
    src = ROOT / "column-maps/samples/vendor-moc-mtc/MTC_20080302.csv"
    header = src.read_text(encoding="utf-8").splitlines()[0]
    p = tmp_path / "MTC_20081026.csv"
    cols = header.split(",")
    row = dict.fromkeys(cols, "")
    row.update(
        CDR_ID="dst1",
        SERVED_NUMBER="13800000701",
        CALLER="+8613900000001",
        IMEI="35201401000017",
        CALL_TYPE="MTC",
        START_DATE="26/10/2008",
        START_TIME="00:30:00",
        END_TIME="02:30:00",
        BEARER="SPEECH",
        CHARGE="0.00",
    )
    p.write_text(header + "\n" + ",".join(row[c] for c in cols) + "\n", encoding="utf-8")
    cmap = load_column_map(ROOT / "column-maps/vendor-moc-mtc.yaml")
    norm = _norm(p, cmap, tz="Europe/London")
    assert norm.table["duration_s"].to_pylist() == [10800.0]  # 23:30Z to 02:30Z


def test_a_missing_start_or_end_gives_no_duration_and_the_row_is_used(tmp_path: Path) -> None:
    p = tmp_path / "calls.csv"
    p.write_text(
        "record_id,record_type,direction,msisdn,begin,finish\n"
        "open,voice,mo,1,2026-07-01 00:50:00,\n"
        "both,voice,mo,1,2026-07-01 00:50:00,2026-07-01 00:51:00\n"
        "bad,voice,mo,1,2026-07-01 00:50:00,later\n",
        encoding="utf-8",
    )
    norm = _norm(p, DATED)
    assert _by_id(norm, "duration_s") == {"open": None, "both": 60.0, "bad": None}
    assert _reasons(norm) == {"bad": "unparseable duration_s"}
    assert norm.rejects()["duration_s"].to_pylist() == ["2026-07-01 00:50:00 .. later"]


def test_shipped_vendor_map_keeps_a_call_without_its_end(tmp_path: Path) -> None:
    src = ROOT / "column-maps/samples/vendor-moc-mtc/MTC_20080302.csv"
    p = tmp_path / src.name
    p.write_text(
        src.read_text(encoding="utf-8")
        + "m9,13800000701,+8613900000001,35201401000017,MTC,14/03/2008,18:30:00,,SPEECH,0.00\n",
        encoding="utf-8",
    )
    norm = _norm(p, load_column_map(ROOT / "column-maps/vendor-moc-mtc.yaml"), "Asia/Shanghai")
    assert norm.report.set_aside == {}
    assert _by_id(norm, "duration_s")["m9"] is None


def test_typed_timestamps_as_start_and_end_are_used_as_they_are() -> None:
    t0 = pd.to_datetime(["2026-07-01 10:00:00", "2026-07-01 11:00:00"]).tz_localize("UTC")
    frame = pd.DataFrame(
        {
            "record_type": ["voice", "voice"],
            "direction": ["mo", "mo"],
            "msisdn": ["1", "2"],
            "t0": t0,
            "t1": t0 + pd.to_timedelta([90, 30], unit="s"),
        }
    )
    cmap = {
        "times": {"formats": ["%Y-%m-%d %H:%M:%S"]},
        "columns": {"start_time": "t0", "duration_s": {"start": "t0", "end": "t1"}},
    }
    norm = _norm(frame, cmap, tz="Asia/Shanghai")
    assert norm.report.set_aside == {}
    assert norm.table["duration_s"].to_pylist() == [90.0, 30.0]
    # Naive timestamps are local to the zone, like naive text.
    frame["t0"] = pd.to_datetime(["2026-03-29 00:50:00", "2026-07-01 00:50:00"])
    frame["t1"] = pd.to_datetime(["2026-03-29 02:10:00", "2026-07-01 02:10:00"])
    norm = _norm(frame, cmap, tz="Europe/London")
    assert norm.table["duration_s"].to_pylist() == [1200.0, 4800.0]


# --- 2. zone names -----------------------------------------------------------------


def test_a_zone_name_field_is_refused_when_the_map_is_read(tmp_path: Path) -> None:
    m = tmp_path / "zname.yaml"
    m.write_text('times:\n  formats: ["%Y-%m-%d %H:%M:%S %Z"]\n', encoding="utf-8")
    with pytest.raises(ColumnMapError) as err:
        load_column_map(m)
    message = str(err.value)
    assert message.startswith(f"{m}: times.formats: ")
    assert "%Z" in message and "%z" in message
    assert "\n" not in message


def test_a_literal_utc_name_reads_as_utc_whatever_the_zone(tmp_path: Path) -> None:
    p = tmp_path / "in.csv"
    p.write_text(
        "record_id,record_type,direction,start_time,msisdn\n"
        "a,sms,mo,2008-07-01 10:00:00 UTC,1\n"
        "b,sms,mo,2008-07-01 10:00:00 CST,1\n",
        encoding="utf-8",
    )
    cmap = {"times": {"formats": ["%Y-%m-%d %H:%M:%S UTC"]}}
    norm = _norm(p, cmap, tz="Asia/Shanghai")
    assert _by_id(norm, "start_time")["a"] == _utc("2008-07-01 10:00")
    assert _reasons(norm) == {"b": "unparseable start_time"}


# --- 3. compact fields have their full width ----------------------------------------


def test_compact_text_shorter_than_its_pattern_is_unparseable() -> None:
    got = parse_text(pa.array(["12345", "012345", "1 2345", " 12345"]), None, ["%H%M%S"])
    assert got.times.to_pylist()[1] == pd.Timestamp("1900-01-01 01:23:45").to_pydatetime()
    assert list(got.why) == [1, 0, 1, 1]
    # The default compact layout, and a compact run inside a longer pattern.
    got = parse_text(pa.array(["2008060912345", "20080609012345"]), "UTC")
    assert got.times.to_pylist() == [None, _utc("2008-06-09 01:23:45").to_pydatetime()]
    got = parse_text(
        pa.array(["20080609 12345", "20080609 012345", "2008069 012345"]), "UTC", ["%Y%m%d %H%M%S"]
    )
    assert got.times.to_pylist() == [None, _utc("2008-06-09 01:23:45").to_pydatetime(), None]
    # Separated fields may still be unpadded.
    got = parse_text(pa.array(["3/1/2014 7:05:00"]), "UTC", ["%d/%m/%Y %H:%M:%S"])
    assert got.times.to_pylist() == [_utc("2014-01-03 07:05").to_pydatetime()]


def test_numbers_are_padded_to_the_compact_width() -> None:
    values = pa.chunked_array([pa.array([12345, 153000, None, 1234567], pa.int64())])
    got = parse_timestamps(values, "UTC", ["%H%M%S"])
    assert got.times.to_pylist()[:3] == [
        pd.Timestamp("1900-01-01 01:23:45", tz="UTC").to_pydatetime(),
        pd.Timestamp("1900-01-01 15:30:00", tz="UTC").to_pydatetime(),
        None,
    ]
    assert list(got.why) == [0, 0, 0, 1]  # seven digits do not fit six
    # A year never lost a leading zero: numbers are not padded into year 0.
    epoch_like = pa.chunked_array([pa.array([1215000000, 20080609012345], pa.int64())])
    got = parse_timestamps(epoch_like, "UTC")
    assert got.times.to_pylist() == [None, _utc("2008-06-09 01:23:45").to_pydatetime()]
    frame = pd.DataFrame({"d": [1215000, 20080609], "t": [12345, 12345]})
    cmap = ColumnMap.model_validate(
        {
            "times": {"formats": ["%Y%m%d %H%M%S"]},
            "columns": {"start_time": {"date": "d", "time": "t"}},
        }
    )
    joined = cmap.apply(pa.Table.from_pandas(frame), zone="UTC")["start_time"].to_pylist()
    assert joined == ["1215000 012345", "20080609 012345"]
    # Day-first compact dates did lose theirs.
    got = parse_timestamps(pa.chunked_array([pa.array([1072008])]), "UTC", ["%d%m%Y"])
    assert got.times.to_pylist() == [_utc("2008-07-01").to_pydatetime()]


def test_a_csv_read_by_pandas_gives_the_same_times_as_the_file(tmp_path: Path) -> None:
    f = tmp_path / "sw.dat"
    f.write_text(
        "HDR;SWITCH07;20080612;BILLING EXPORT\n"
        "v1;13800000001;460001234500001;35283500000011;11;1;20080609;012345;60000;137;40;\n"
        "v2;13800000001;460001234500001;35283500000011;11;1;20080609;021530;60000;137;40;\n"
        "v3;13800000001;460001234500001;35283500000011;11;1;20080609;153000;60000;137;40;\n"
        "v4;13800000001;460001234500001;35283500000011;11;1;20080609;090000;;137;40;\n"
        "TRL;4\n",
        encoding="utf-8",
    )
    m = ROOT / "column-maps/switch-headerless.yaml"
    cmap = load_column_map(m)
    assert cmap.csv is not None and cmap.csv.names is not None
    frame = pd.read_csv(
        f, sep=";", header=None, names=cmap.csv.names, skiprows=1, skipfooter=1, engine="python"
    )
    assert frame["call_time"].dtype == np.int64
    from_file = _norm(f, cmap, tz="Asia/Shanghai")
    from_frame = _norm(frame, cmap, tz="Asia/Shanghai")
    expected = [_utc(t) for t in ("2008-06-08 17:23:45", "2008-06-08 18:15:30")]
    assert from_file.table["start_time"].to_pylist()[:2] == expected
    assert from_frame.table["start_time"].to_pylist() == from_file.table["start_time"].to_pylist()
    assert from_frame.report.set_aside == from_file.report.set_aside == {}


# --- 6. ISO layouts the docs name, and the fast path for them ----------------------


def test_iso_layouts_named_in_the_docs_read_without_a_declaration() -> None:
    got = parse_text(
        pa.array(["2026-07-08 03:53+02:00", "20260708T035300Z", "20260708T055300+0200"]),
        "Asia/Shanghai",
    )
    assert got.times.to_pylist() == [
        _utc("2026-07-08 01:53").to_pydatetime(),
        _utc("2026-07-08 03:53").to_pydatetime(),
        _utc("2026-07-08 03:53").to_pydatetime(),
    ]


@pytest.mark.parametrize(
    "values",
    [
        ["2008-07-01 00:00:04.850", "2008-07-01T00:00:05.5", "2008-07-01 00:00:06"],
        ["2008-07-01 00:00:04.850Z", "2008-07-01T00:00:05.5+08:00", "2008-07-01 00:00:06-01:00"],
        ["2008-07-01 00:00:04.850", "2008-07-01 00:00:05Z", "20080701000006.250"],
        ["2008-07-01 00:00:04,850", "2008-07-01 00:00:04.123456", "2008-07-01 10"],
        ["2026-03-29 01:30:00.500", "2026-10-25 01:30:00.500", "2026-07-01 01:30:00.500"],
        ["2008-07-01T10:00:00+0800", "2008-07-01T10:00:00.5+08", "2008-07-01T10:00:00-00:00"],
        ["2008-W27-2T10:00:00", "2008-07-01T10:00:00z", "2008-07-01 10:00:00."],
        ["2008-07-01 24:00:00", "2008-07-01  10:00:00", "2008-07-01T10:00:00 Z"],
    ],
)
def test_iso_fast_path_reads_as_the_formats_do(values: list[str]) -> None:
    many = pa.array(values * 2000)  # long enough for the whole-column paths
    fast = parse_text(many, "Europe/London")
    # The same formats declared: no fast path, one strptime pass per format.
    slow = parse_text(pa.array(values), "Europe/London", list(UNAMBIGUOUS_FORMATS))
    assert fast.times.to_pylist()[: len(values)] == slow.times.to_pylist()
    assert list(fast.why[: len(values)]) == list(slow.why)
    for value in values:  # each value alone (all ISO, or not)
        alone = parse_text(pa.array([value] * 50), "Europe/London")
        assert alone.times[0] == slow.times[values.index(value)]


def test_iso_fractions_cost_about_what_whole_seconds_cost() -> None:
    base = np.datetime64("2008-07-01T00:00:00") + np.arange(300_000) * np.timedelta64(7, "s")
    whole = pa.array(np.datetime_as_string(base, unit="s").astype(object)).cast(pa.string())
    frac = pa.array(
        np.datetime_as_string(base + np.timedelta64(850, "ms"), unit="ms").astype(object)
    ).cast(pa.string())
    frac = pa.compute.replace_substring(frac, "T", " ")

    def best(values: pa.Array) -> float:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            parse_timestamps(pa.chunked_array([values]), "Asia/Shanghai")
            times.append(time.perf_counter() - t)
        return min(times)

    got = parse_timestamps(pa.chunked_array([frac]), "Asia/Shanghai")
    assert got.times[0].as_py() == _utc("2008-06-30 16:00:00.850").to_pydatetime()
    assert best(frac) < 3 * best(whole) + 0.05


def test_scan_api_reads_durations_in_the_scan_zone(tmp_path: Path) -> None:
    p = tmp_path / "calls.csv"
    p.write_text(
        "record_id,record_type,direction,msisdn,begin,finish\n"
        "spring,voice,mo,1,2026-03-29 00:50:00,2026-03-29 02:10:00\n",
        encoding="utf-8",
    )
    r = telediag.scan(p, tz="Europe/London", column_map=ColumnMap.model_validate(DATED))
    assert r.normalized.table["duration_s"].to_pylist() == [1200.0]


def test_a_prepared_store_reads_durations_in_its_zone(tmp_path: Path) -> None:
    from telediag.store import prepare, subscriber_input

    p = tmp_path / "calls.csv"
    p.write_text(
        "record_id,record_type,direction,msisdn,begin,finish\n"
        "spring,voice,mo,1,2026-03-29 00:50:00,2026-03-29 02:10:00\n"
        "autumn,voice,mo,1,2026-10-25 00:50:00,2026-10-25 02:10:00\n",
        encoding="utf-8",
    )
    cmap = ColumnMap.model_validate(DATED)
    prepare([p], tmp_path / "store", column_map=cmap, tz="Europe/London", buckets=2)
    table = subscriber_input(tmp_path / "store", "1")[0].table
    got = dict(zip(table["record_id"].to_pylist(), table["duration_s"].to_pylist(), strict=True))
    assert got == {"spring": 1200.0, "autumn": 8400.0}


def test_a_time_of_day_paired_with_a_whole_time_is_not_a_duration(tmp_path: Path) -> None:
    p = tmp_path / "calls.csv"
    p.write_text(
        "record_id,record_type,direction,msisdn,begin,finish\n"
        "mixed,voice,mo,1,2026-07-01 10:00:00,10:01:00\n"
        "dated,voice,mo,1,2026-07-01 10:00:00,2026-07-01 10:01:00\n",
        encoding="utf-8",
    )
    cmap = {**DATED, "times": {"formats": ["%Y-%m-%d %H:%M:%S", "%H:%M:%S"]}}
    norm = _norm(p, cmap, tz="Europe/London")
    assert _reasons(norm) == {"mixed": "unparseable duration_s"}
    assert _by_id(norm, "duration_s") == {"mixed": None, "dated": 60.0}
