"""In-memory inputs: pandas, Arrow tables and streams, polars, any __arrow_c_stream__."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import telediag
from telediag.colmap import ColumnMap

from .conftest import FIXTURES

TZ = "Asia/Shanghai"
SOURCE = FIXTURES / "TD001" / "phonebook-forward.csv"


def _as_text() -> pa.Table:
    return pacsv.read_csv(
        SOURCE, convert_options=pacsv.ConvertOptions(auto_dict_encode=False, column_types={})
    )


def _findings(source: Any, **kwargs: Any) -> list[tuple[str, str, int]]:
    result = telediag.scan(source, tz=TZ, **kwargs)
    rep = result.report
    assert rep.rows_read == rep.rows_used + rep.rows_set_aside
    f = result.findings
    return sorted(zip(f["rule_id"], f["msisdn"], f["record_count"], strict=True))


class StreamOnly:
    """Anything that exports the Arrow C stream protocol and nothing else."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self._table.__arrow_c_stream__(requested_schema)


def test_every_in_memory_kind_gives_the_findings_of_the_file() -> None:
    expected = _findings(SOURCE)
    assert expected  # the fixture is a true case
    # pandas guesses numbers: msisdn, imei and peer_number arrive as int64.
    frame = pd.read_csv(SOURCE)
    assert frame["msisdn"].dtype == "int64"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for source in (
        frame,
        table,
        table.to_batches()[0],
        pa.RecordBatchReader.from_batches(table.schema, table.to_batches()),
        pl.from_pandas(frame),
        StreamOnly(table),
        [frame.iloc[:10], frame.iloc[10:]],
    ):
        assert _findings(source) == expected, type(source).__name__


def test_a_column_map_applies_to_in_memory_tables() -> None:
    frame = pd.read_csv(SOURCE, dtype=str).rename(
        columns={"msisdn": "servedMSISDN", "start_time": "eventTime", "record_type": "kind"}
    )
    frame["kind"] = frame["kind"].str.upper()
    cmap = ColumnMap(
        columns={"msisdn": "servedMSISDN", "start_time": "eventTime", "record_type": "kind"},
        values={"record_type": {"SMS": "sms"}},
    )
    expected = _findings(SOURCE)
    assert _findings(frame, column_map=cmap) == expected
    assert _findings(pl.from_pandas(frame), column_map=cmap) == expected
    inv = telediag.investigate(frame, "13800000001", tz=TZ, column_map=cmap)
    assert [f.rule_id for f in inv.findings] == ["TD001"]


def test_identifiers_from_numeric_columns_lose_no_digits() -> None:
    frame = pd.DataFrame(
        {
            "record_type": ["sms", "sms"],
            "direction": ["mo", "mo"],
            "start_time": ["2008-07-01 10:00:00", "2008-07-01 10:01:00"],
            "msisdn": [13800000001.0, None],  # pandas makes a float column of it
            "imei": [352014010000170, 352014010000171],
        }
    )
    result = telediag.scan(frame, rules=[])
    table = result.normalized.table  # type: ignore[union-attr]
    assert table["msisdn"].to_pylist() == ["13800000001", None]
    assert table["imei"].to_pylist() == ["352014010000170", "352014010000171"]
    assert result.report.set_aside == {"missing msisdn": 1}


def test_object_columns_mixing_numbers_and_text_are_read_as_text() -> None:
    frame = pd.DataFrame(
        {
            "record_type": ["sms", "sms"],
            "direction": ["mo", "mo"],
            "start_time": [pd.Timestamp("2008-07-01 10:00"), "not a time"],
            "msisdn": ["13800000001", 13800000002],
            "sms_length": ["x", 12],
        }
    )
    result = telediag.scan(frame)  # every rule: sms_length is read
    assert result.report.rows_used == 0
    assert result.report.set_aside == {"unparseable start_time": 1, "unparseable sms_length": 1}


def test_things_that_are_not_tables_are_one_line_errors() -> None:
    with pytest.raises(telediag.InputError, match="cannot read a int"):
        telediag.scan([3], rules=[])
    frame = pd.DataFrame([[1, 2]], columns=["msisdn", "msisdn"])
    with pytest.raises(telediag.InputError, match="column 'msisdn' appears 2 times"):
        telediag.scan(frame, rules=[])


def test_duckdb_relation() -> None:
    duckdb = pytest.importorskip("duckdb")  # installed with the bench extra
    frame = pd.read_csv(SOURCE)
    con = duckdb.connect()
    con.register("cdr", frame)
    relation = con.sql("select * from cdr")
    assert _findings(relation) == _findings(SOURCE)


def test_a_mapped_source_of_bytes_that_are_not_text_is_named() -> None:
    table = pa.table(
        {
            "kind": pa.array([b"\xffsms"], pa.binary()),
            "direction": ["mo"],
            "start_time": ["2008-07-01 10:00:00"],
            "msisdn": ["1"],
        }
    )
    cmap = ColumnMap(columns={"record_type": {"source": "kind", "values": {"SMS": "sms"}}})
    with pytest.raises(telediag.InputError, match=r"^<table 0>: column 'kind': not UTF-8 text"):
        telediag.scan(table, column_map=cmap, rules=[])


def _blank_one(frame: pd.DataFrame) -> pd.DataFrame:
    """pd.read_csv of an export with one blank msisdn: the column becomes float64."""
    extra = frame.iloc[:1].copy()
    extra["record_id"], extra["msisdn"] = "zz", float("nan")
    return pd.concat([frame, extra], ignore_index=True)


def test_an_integral_float_in_a_mixed_object_column_keeps_its_digits() -> None:
    """Review i10 #4: str(13800000001.0) wrote a subscriber that exists nowhere."""
    frame = pd.read_csv(SOURCE, dtype=str)
    frame["msisdn"] = frame["msisdn"].astype(object)
    frame.loc[frame.index[::2], "msisdn"] = 13800000001.0  # floats among strings
    assert _findings(frame) == _findings(SOURCE)


KINDS = [
    "pandas-float",
    "pandas-int",
    "pandas-object",
    "pandas-string",
    "arrow",
    "reader",
    "polars",
    "duckdb",
]


def _source_of_kind(kind: str) -> Any:
    """The TD001 fixture as ``kind`` holds it, the msisdn column in that kind's type."""
    if kind == "pandas-int":  # no blank: pd.read_csv gives int64
        frame = pd.read_csv(SOURCE)
        assert frame["msisdn"].dtype == "int64"
        return frame
    frame = _blank_one(pd.read_csv(SOURCE))
    assert frame["msisdn"].dtype == "float64"
    if kind == "pandas-float":
        return frame
    if kind == "pandas-object":  # floats, ints and text in one column
        mixed = frame["msisdn"].astype(object)
        mixed[::3] = [None if pd.isna(v) else int(v) for v in mixed[::3]]
        mixed[1::3] = [None if pd.isna(v) else str(int(v)) for v in mixed[1::3]]
        return frame.assign(msisdn=mixed)
    if kind == "pandas-string":
        return frame.assign(msisdn=frame["msisdn"].astype("Int64").astype("string"))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if kind == "arrow":
        return table
    if kind == "reader":
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    if kind == "polars":
        return pl.from_pandas(frame)
    import duckdb

    return duckdb.from_arrow(table)


@pytest.mark.parametrize("kind", KINDS)
def test_investigate_finds_what_scan_finds_whatever_the_column_types(kind: str) -> None:
    """Review i10 #5: a float64 msisdn read by the investigation's key pass as 1.38e+10.
    Scan and investigate agree for every kind of in-memory input."""
    scanned = telediag.scan(_source_of_kind(kind), tz=TZ)
    assert sorted(set(scanned.findings["msisdn"])) == ["13800000001"]
    _accounted(scanned)
    # A stream is read once: each call gets its own.
    inv = telediag.investigate(_source_of_kind(kind), "13800000001", tz=TZ)
    assert [f.rule_id for f in inv.findings] == list(scanned.findings["rule_id"])
    assert inv.input["rows_read"] == inv.input["rows_used"] + inv.input["rows_set_aside"]


def test_a_list_column_through_a_map_is_one_line(tmp_path: Path) -> None:
    """Review i10 #9a: a list column as a mapped source ended in ArrowNotImplementedError."""
    from telediag.cli import main

    table = pa.table(
        {
            "record_type": ["sms"],
            "direction": ["mo"],
            "msisdn": ["138"],
            "start_time": ["2008-07-01 10:00:00"],
            "tags": pa.array([["x"]]),
        }
    )
    cmap = tmp_path / "map.yaml"
    cmap.write_text("columns:\n  peer_number: {source: tags, values: {x: y}}\n")
    with pytest.raises(telediag.TelediagError, match="tags") as info:
        telediag.scan(table, column_map=cmap)
    assert "\n" not in str(info.value)
    path = tmp_path / "list.parquet"
    import pyarrow.parquet as pq

    pq.write_table(table, path)
    for args in (
        ["scan", str(path), "--out", str(tmp_path / "f.csv")],
        ["columns", "check", str(path)],
    ):
        assert main([*args, "--column-map", str(cmap)]) == 2


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--to", "9999-12-31"),
        ("--from", "2300-01-01"),
        ("--from", "0001-01-01"),
        ("--to", "2262-04-12"),
    ],
)
def test_a_far_off_period_bound_is_one_line(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review i9 #1: far-off dates gave a raw OverflowError."""
    from telediag.cli import main

    code = main(["investigate", str(SOURCE), "--msisdn", "13800000001", option, value])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and value in err and "2200-12-31" in err
    assert option in err  # the option to correct is named, not only the date


def _kinds(**columns: Any) -> pa.Table:
    n = len(next(iter(columns.values())))
    base = {
        "record_type": ["sms"] * n,
        "direction": ["mo"] * n,
        "msisdn": ["13800000001"] * n,
        "start_time": ["2008-07-01 10:00:00"] * n,
    }
    return pa.table({**base, **columns})


def test_whole_decimals_are_read_exactly() -> None:
    """Review i9 #3: decimals went through float64, so 2**53 + 1 became 2**53."""
    from decimal import Decimal

    big = Decimal(2**53 + 1)
    table = _kinds(bytes_up=pa.array([Decimal(160), big, None], pa.decimal128(20, 1)))
    result = telediag.scan(table)
    assert result.normalized.table["bytes_up"].to_pylist() == [160, 2**53 + 1, None]
    _accounted(result)
    half = _kinds(bytes_up=pa.array([Decimal(160), Decimal("1.5")], pa.decimal128(20, 1)))
    assert _accounted(telediag.scan(half)).set_aside == {"non-integral bytes_up": 1}
    huge = _kinds(bytes_up=pa.array([Decimal(160), Decimal(2**70)], pa.decimal128(38, 0)))
    result = telediag.scan(huge)
    assert _accounted(result).set_aside == {"out-of-range bytes_up": 1}
    assert result.normalized.table["bytes_up"].to_pylist() == [160, None]


def _accounted(result: Any) -> Any:
    """The input report, once its rows are accounted for (read = used + set aside)."""
    report = result.report
    assert report.rows_read == report.rows_used + sum(report.set_aside.values())
    return report


def test_true_and_false_in_a_number_column_are_one_line() -> None:
    """Review i9: a boolean column was read as 1 and 0 without a word."""
    with pytest.raises(telediag.InputError, match="column 'bytes_up' holds bool values"):
        telediag.scan(_kinds(bytes_up=[True, False]))


def test_a_blank_number_in_a_csv_is_no_value(tmp_path: Path) -> None:
    """Review i9 #4: '  ' was set aside as unparseable while '' read as null."""
    path = tmp_path / "blank.csv"
    path.write_text(
        "record_id,record_type,direction,start_time,msisdn,duration_s,charge\n"
        "r1,voice,mo,2008-07-01 10:00:00,13800000001,  ,0.1\n"
        "r2,voice,mo,2008-07-01 10:01:00,13800000001,,\n"
        "r3,voice,mo,2008-07-01 10:02:00,13800000001,60, \n"
        "r4,voice,mo,2008-07-01 10:03:00,13800000001,6x,\n"
    )
    result = telediag.scan(path)
    assert _accounted(result).set_aside == {"unparseable duration_s": 1}
    assert result.normalized.table["duration_s"].to_pylist() == [None, None, 60, None]


def test_identifiers_read_as_numbers_are_warned_of() -> None:
    """Review i10 #6: pd.read_csv turns 00447700900123 into 447700900123, another number;
    the report says so, and reading the identifiers as text keeps the finding."""
    from .conftest import ROOT

    sample = ROOT / "column-maps" / "samples" / "research-handset-log.csv"
    cmap = ROOT / "column-maps" / "research-handset-log.yaml"
    from_file = telediag.scan(sample, column_map=cmap, tz="Europe/London")
    assert list(from_file.findings["rule_id"]) == ["TD010"]
    _accounted(from_file)
    assert from_file.report.warnings == []
    guessed = telediag.scan(pd.read_csv(sample), column_map=cmap, tz="Europe/London")
    _accounted(guessed)
    assert any("leading zeros" in w and "dtype=str" in w for w in guessed.report.warnings)
    named = [w.split(" holds ")[0] for w in guessed.report.warnings]
    # Each column named as the frame has it, with the canonical column it makes.
    assert named == [
        "<table 0>: column 'user' (msisdn)",
        "<table 0>: column 'contact' (peer_number)",
    ]
    frame = _blank_one(pd.read_csv(SOURCE))  # no map: the canonical names themselves
    warned = [w.split(" holds ")[0] for w in _accounted(telediag.scan(frame, tz=TZ)).warnings]
    assert warned == [f"<table 0>: column {c!r}" for c in ("msisdn", "peer_number", "imsi", "imei")]
    as_text = telediag.scan(pd.read_csv(sample, dtype=str), column_map=cmap, tz="Europe/London")
    assert list(as_text.findings["rule_id"]) == ["TD010"]
    _accounted(as_text)
    assert as_text.report.warnings == []


@pytest.mark.parametrize("column", ["msisdn", "peer_number", "imsi", "imei"])
@pytest.mark.parametrize("mixed", [False, True])
def test_a_fraction_in_an_identifier_is_set_aside(column: str, mixed: bool) -> None:
    """Review i10 #4: 13800000001.5 is no identifier; it was kept as '13800000001.5'
    (mixed object column) or '1.38000000015e+10' (float column), a subscriber or peer
    that exists nowhere. Whole floats keep their digits, the fraction is set aside."""
    values: list[Any] = [13800000001.0, 13800000001.5, 13800000002.0]
    if mixed:
        values[2] = "13800000002"
    frame = pd.DataFrame({"record_type": ["sms"] * 3, "direction": "mo", "msisdn": "13800000009"})
    frame["start_time"] = "2008-07-01 10:00:00"
    frame[column] = pd.Series(values, dtype=object if mixed else "float64")
    result = telediag.scan(frame)
    report = _accounted(result)
    assert report.set_aside == {f"non-integral {column}": 1} and report.rows_read == 3
    kept = result.normalized.table.filter(pa.array(result.normalized.valid))[column]
    expected = ["13800000001", "13800000002"]
    if column == "imei":  # a 11-digit number is no handset: normalization drops it
        expected = [None, None]
    assert kept.to_pylist() == expected


NESTED = {
    "list": pa.array([["x"]], pa.list_(pa.string())),
    "struct": pa.array([{"a": "x"}], pa.struct([("a", pa.string())])),
}
NESTED_MAPS = {
    "values": "columns:\n  peer_number: {source: tags, values: {x: y}}\n",
    "alternatives": "columns:\n  peer_number: [tags, msisdn]\n",
    "date-time": "columns:\n  start_time: {date: tags, time: start_time}\n",
    "start-end": "columns:\n  duration_s: {start: tags, end: start_time}\n",
    "record-kinds": "record_kinds:\n  source: tags\n  values:\n    x: {direction: mo}\n",
}


@pytest.mark.parametrize("kind", sorted(NESTED))
@pytest.mark.parametrize("form", sorted(NESTED_MAPS))
def test_a_nested_source_column_is_one_line_naming_column_and_type(
    kind: str, form: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review i10 #9a: a list or struct column used through a map ended in
    ArrowNotImplementedError; now one line naming the column and its type, exit 2."""
    from telediag.cli import main

    table = pa.table(
        {
            "record_type": ["sms"],
            "direction": ["mo"],
            "msisdn": ["138"],
            "start_time": ["2008-07-01 10:00:00"],
            "tags": NESTED[kind],
        }
    )
    cmap = tmp_path / "map.yaml"
    cmap.write_text(NESTED_MAPS[form])
    with pytest.raises(telediag.InputError) as info:
        telediag.scan(table, column_map=cmap)
    message = str(info.value)
    assert "\n" not in message and "'tags'" in message and kind in message
    import pyarrow.parquet as pq

    path = tmp_path / "nested.parquet"
    pq.write_table(table, path)
    for args in (
        ["scan", str(path), "--out", str(tmp_path / "f.csv")],
        ["columns", "check", str(path)],
    ):
        capsys.readouterr()
        assert main([*args, "--column-map", str(cmap)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "'tags'" in err and kind in err and str(path) in err


def test_dotted_numbers_in_a_text_file_are_no_fraction(tmp_path: Path) -> None:
    """Only the shapes a float writes are set aside as non-integral: a number written
    with a separator in a text export ('+86.13800000001', '0044.7700900123') is kept."""
    path = tmp_path / "dotted.csv"
    path.write_text(
        "record_id,record_type,direction,start_time,msisdn,peer_number\n"
        "r1,sms,mo,2008-07-01 10:00:00,13800000001,+86.13800000002\n"
        "r2,sms,mo,2008-07-01 10:01:00,13800000001,0044.7700900123\n"
        "r3,sms,mo,2008-07-01 10:02:00,13800000001,1.38000000015e+10\n"
    )
    result = telediag.scan(path)
    assert _accounted(result).set_aside == {"non-integral peer_number": 1}
    kept = result.normalized.table.filter(pa.array(result.normalized.valid))["peer_number"]
    assert kept.to_pylist() == ["+86.13800000002", "0044.7700900123"]


def test_a_polars_lazy_frame_and_a_dict_of_columns_are_tables() -> None:
    """A LazyFrame is collected, a dict of columns is a table: the findings of the file
    (a dict's keys were taken for file names, a LazyFrame raised polars' TypeError)."""
    expected = _findings(SOURCE)
    frame = pd.read_csv(SOURCE, dtype=str)
    assert _findings(pl.from_pandas(frame).lazy()) == expected
    assert _findings(frame.to_dict("list")) == expected
    assert _findings([frame.iloc[:10].to_dict("list"), frame.iloc[10:]]) == expected
    with pytest.raises(telediag.InputError, match=r"^<table 0>: cannot read as a table: "):
        telediag.scan({"msisdn": [1, 2], "record_type": ["sms"]}, rules=[])


def test_a_lazy_frame_whose_query_fails_is_one_line() -> None:
    lazy = pl.LazyFrame({"msisdn": ["1"]}).with_columns(pl.col("missing") + 1)
    with pytest.raises(telediag.InputError, match=r"^<table 0>: the LazyFrame's query failed: "):
        telediag.scan(lazy, rules=[])
