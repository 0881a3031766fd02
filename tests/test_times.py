"""One time rule for every input format: offsets honoured, local gaps and overlaps set
aside with their own reason, text parsed only with declared or unambiguous formats."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from telediag.colmap import ColumnMap
from telediag.errors import InputError
from telediag.normalize import Normalized, normalize
from telediag.read import read_input

HEAD = "record_id,record_type,direction,start_time,msisdn,duration_s\n"


def _rows(times: list[str]) -> str:
    return HEAD + "".join(f"r{i},sms,mo,{t},138000000{i:02d},\n" for i, t in enumerate(times))


def _scan_csv(
    tmp_path: Path, text: str, tz: str = "UTC", cmap: ColumnMap | None = None
) -> Normalized:
    p = tmp_path / "in.csv"
    p.write_text(text, encoding="utf-8")
    norm = normalize(read_input(p, column_map=cmap), tz=tz)
    rep = norm.report
    assert rep.rows_read == rep.rows_used + rep.rows_set_aside
    return norm


def _reasons(norm: Normalized) -> dict[str, str]:
    rejects = norm.rejects().to_pandas()
    return dict(zip(rejects["record_id"], rejects["reason"], strict=True))


def _utc(norm: Normalized) -> list[pd.Timestamp | None]:
    return [None if v is None else pd.Timestamp(v) for v in norm.table["start_time"].to_pylist()]


def test_clock_change_gap_and_overlap_are_set_aside_with_their_own_reasons(
    tmp_path: Path,
) -> None:
    text = _rows(
        [
            "2026-03-29 01:59:59",  # just before the spring gap (CET)
            "2026-03-29 02:30:00",  # skipped by the clock
            "2026-03-29 03:00:00",  # first time after the gap (CEST)
            "2026-10-25 02:30:00",  # repeated in autumn
            "2026-10-25 03:00:00",  # after the overlap (CET)
        ]
    )
    norm = _scan_csv(tmp_path, text, tz="Europe/Berlin")
    assert _reasons(norm) == {
        "r1": "nonexistent local start_time",
        "r3": "ambiguous local start_time",
    }
    times = _utc(norm)
    assert times[0] == pd.Timestamp("2026-03-29 00:59:59", tz="UTC")
    assert times[2] == pd.Timestamp("2026-03-29 01:00:00", tz="UTC")
    assert times[4] == pd.Timestamp("2026-10-25 02:00:00", tz="UTC")


def test_parquet_naive_times_follow_the_same_rule(tmp_path: Path) -> None:
    local = pd.to_datetime(
        ["2026-03-29 01:59:59", "2026-03-29 02:30:00", "2026-10-25 02:30:00", "2026-07-01 12:00:00"]
    )
    frame = pd.DataFrame(
        {
            "record_id": ["r0", "r1", "r2", "r3"],
            "record_type": "sms",
            "direction": "mo",
            "start_time": local,
            "msisdn": "13800000001",
        }
    )
    path = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    norm = normalize(read_input(path), tz="Europe/Berlin")
    assert _reasons(norm) == {
        "r1": "nonexistent local start_time",
        "r2": "ambiguous local start_time",
    }
    # Nothing collapses onto the last instant before the gap.
    assert _utc(norm)[1] is None
    assert _utc(norm)[3] == pd.Timestamp("2026-07-01 10:00", tz="UTC")


def test_offsets_mixed_within_a_column_are_honoured_row_by_row(tmp_path: Path) -> None:
    text = _rows(
        ["Wed Sep 15 19:17:44 +0100 2010", "Mon Dec 13 09:00:00 +0000 2010", "2010-09-15 19:17:44"]
    )
    norm = _scan_csv(tmp_path, text, tz="Europe/London")
    assert _utc(norm) == [
        pd.Timestamp("2010-09-15 18:17:44", tz="UTC"),
        pd.Timestamp("2010-12-13 09:00:00", tz="UTC"),
        pd.Timestamp("2010-09-15 18:17:44", tz="UTC"),  # naive, read in BST
    ]
    assert norm.report.rows_used == 3


def test_day_month_order_is_never_guessed(tmp_path: Path) -> None:
    text = _rows(["12/06/2008 10:00:00", "13/06/2008 10:00:00", "2008-06-14 10:00:00"])
    norm = _scan_csv(tmp_path, text)
    # Undeclared: the ambiguous layout is set aside, whatever the day; the ISO row is used.
    assert _reasons(norm) == {"r0": "unparseable start_time", "r1": "unparseable start_time"}
    declared = ColumnMap(times={"formats": ["%d/%m/%Y %H:%M:%S"]})
    norm = _scan_csv(tmp_path, text, cmap=declared)
    assert _utc(norm) == [
        pd.Timestamp("2008-06-12 10:00", tz="UTC"),
        pd.Timestamp("2008-06-13 10:00", tz="UTC"),
        None,  # only the declared formats are used
    ]
    month_first = ColumnMap(times={"formats": ["%m/%d/%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S"]})
    norm = _scan_csv(tmp_path, text, cmap=month_first)
    assert _utc(norm) == [
        pd.Timestamp("2008-12-06 10:00", tz="UTC"),
        None,
        pd.Timestamp("2008-06-14 10:00", tz="UTC"),
    ]


def test_compact_iso_fractions_unpadded_and_epochs(tmp_path: Path) -> None:
    text = _rows(
        [
            "20260708035300",
            "2026-07-08T03:53:00.250Z",
            '"2026-07-08 03:53:00,5"',
            "2026-7-8 3:53:00",
            "Jul 08 2026 03:53:00",
        ]
    )
    norm = _scan_csv(tmp_path, text, tz="Asia/Shanghai")
    assert _utc(norm) == [
        pd.Timestamp("2026-07-07 19:53:00", tz="UTC"),
        pd.Timestamp("2026-07-08 03:53:00.250", tz="UTC"),
        pd.Timestamp("2026-07-07 19:53:00.500", tz="UTC"),
        pd.Timestamp("2026-07-07 19:53:00", tz="UTC"),
        pd.Timestamp("2026-07-07 19:53:00", tz="UTC"),
    ]
    epochs = ColumnMap(times={"formats": ["epoch_ms", "%d.%m.%Y %H:%M"]})
    norm = _scan_csv(tmp_path, _rows(["1783482780000", "08.07.2026 03:53"]), cmap=epochs)
    assert _utc(norm) == [
        pd.Timestamp("2026-07-08 03:53:00", tz="UTC"),
        pd.Timestamp("2026-07-08 03:53:00", tz="UTC"),
    ]
    seconds = ColumnMap(times={"formats": ["epoch_s"]})
    norm = _scan_csv(tmp_path, _rows(["1783482780.5", "yesterday"]), cmap=seconds)
    assert _utc(norm) == [pd.Timestamp("2026-07-08 03:53:00.500", tz="UTC"), None]
    assert _reasons(norm) == {"r1": "unparseable start_time"}


def test_time_formats_must_be_patterns() -> None:
    with pytest.raises(ValueError, match="neither a strptime pattern"):
        ColumnMap(times={"formats": ["dd/mm/yyyy"]})


def test_scale_on_text_with_a_bad_value_sets_that_row_aside(tmp_path: Path) -> None:
    text = HEAD.replace("duration_s", "dur_ms") + (
        "r0,voice,mo,2008-07-01 10:00:00,13800000001,61500\n"
        "r1,voice,mo,2008-07-01 10:01:00,13800000001,12kB\n"
        "r2,voice,mo,2008-07-01 10:02:00,13800000001,\n"
    )
    cmap = ColumnMap(columns={"duration_s": "dur_ms"}, scale={"duration_s": 0.001})
    norm = _scan_csv(tmp_path, text, cmap=cmap)
    assert _reasons(norm) == {"r1": "unparseable duration_s"}
    assert norm.table["duration_s"].to_pylist() == [61.5, None, None]
    assert norm.rejects()["duration_s"].to_pylist() == ["12kB"]  # as read


def test_numeric_epoch_columns_in_memory() -> None:
    frame = pd.DataFrame(
        {
            "record_type": ["sms"] * 3,
            "direction": ["mo"] * 3,
            "start_time": [1783482780000, 1783482781500, None],
            "msisdn": ["1", "2", "3"],
        }
    )
    frame["start_time"] = frame["start_time"].astype("Int64")
    norm = normalize(read_input(frame, column_map=ColumnMap(times={"formats": ["epoch_ms"]})))
    assert _utc(norm) == [
        pd.Timestamp("2026-07-08 03:53:00", tz="UTC"),
        pd.Timestamp("2026-07-08 03:53:01.500", tz="UTC"),
        None,
    ]
    assert norm.report.set_aside == {"missing start_time": 1}
    # Undeclared, a number is text to the formats: 20260708035300 is a compact time.
    frame["start_time"] = pd.array([20260708035300, 3, None], dtype="Int64")
    norm = normalize(read_input(frame))
    assert _utc(norm)[0] == pd.Timestamp("2026-07-08 03:53:00", tz="UTC")
    assert norm.report.set_aside == {"unparseable start_time": 1, "missing start_time": 1}


def test_declared_formats_keep_their_precedence_whatever_the_values(tmp_path: Path) -> None:
    # Most values read only month-first; 03/01/2014 reads both ways and the first
    # declared format (day-first) decides it.
    times = [f"01/{13 + i % 15}/2014 10:{i // 60 % 60:02d}:{i % 60:02d}" for i in range(2500)]
    times.insert(1, "03/01/2014 10:00:00")  # (not in the every-other-value sample)
    formats = ["%d/%m/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S"]
    cmap = ColumnMap(times={"formats": formats})
    norm = _scan_csv(tmp_path, _rows(times), cmap=cmap)
    assert _utc(norm)[1] == pd.Timestamp("2014-01-03 10:00", tz="UTC")
    assert _utc(norm)[0] == pd.Timestamp("2014-01-13 10:00", tz="UTC")


def test_in_memory_duplicated_names_that_are_read(tmp_path: Path) -> None:
    table = pa.table(
        [pa.array(["sms"]), pa.array(["mo"]), pa.array(["2014-01-03 10:00:00"]),
         pa.array(["1"]), pa.array(["2"])],
        names=["record_type", "direction", "start_time", "msisdn", "msisdn"],
    )  # fmt: skip
    cmap = ColumnMap(columns={"peer_number": "record_type"})
    with pytest.raises(InputError, match=r"<table 0>: column 'msisdn' appears 2 times"):
        read_input(table, column_map=cmap)


def test_compact_times_with_an_offset_read_without_a_declaration(tmp_path: Path) -> None:
    norm = _scan_csv(tmp_path, _rows(["20080701100000+0800", "20080701100000-0100"]))
    assert _utc(norm) == [
        pd.Timestamp("2008-07-01 02:00", tz="UTC"),
        pd.Timestamp("2008-07-01 11:00", tz="UTC"),
    ]
