"""Reading and normalization: types, time zones, column maps, rows set aside."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import telediag
from telediag.colmap import load_column_map
from telediag.normalize import normalize
from telediag.read import read_input
from telediag.schema import COLUMNS

from .conftest import ROOT

CSV = """record_id,record_type,direction,start_time,msisdn,duration_s,bytes_up,peer_number
r1,voice,mo,2008-07-01 10:00:00,13800000001,60,,+8613900000001
r2,SMS,MO,2008-07-01 10:05:00,13800000001,,,013900000001
r3,fax,mo,2008-07-01 10:06:00,13800000001,,,
r4,sms,mo,not a time,13800000001,,,
r5,sms,mo,2008-07-01 10:07:00,,,,
r6,data,mo,2008-07-01 10:08:00,13800000002,-5,100,
r7,data,mo,2008-07-01 10:09:00,13800000002,30,-1,
r8,data,mo,2008-07-01T02:10:00Z,13800000002,30,abc,
r9,data,sideways,2008-07-01 10:11:00,13800000002,30,10,
"""


def _csv(tmp_path: Path, text: str = CSV, name: str = "in.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_rows_breaking_the_contract_are_set_aside_with_reasons(tmp_path: Path) -> None:
    norm = normalize(read_input(_csv(tmp_path)), tz="Asia/Shanghai")
    rep = norm.report
    assert rep.rows_read == 9
    assert rep.rows_used == 2
    assert rep.set_aside == {
        "unknown record_type": 1,
        "unparseable start_time": 1,
        "missing msisdn": 1,
        "negative duration_s": 1,
        "negative bytes_up": 1,
        "unparseable bytes_up": 1,
        "unknown direction": 1,
    }
    rejects = norm.rejects().to_pandas()
    assert list(rejects.columns[:2]) == ["reason", "record_id"]
    assert dict(zip(rejects["record_id"], rejects["reason"], strict=True)) == {
        "r3": "unknown record_type",
        "r4": "unparseable start_time",
        "r5": "missing msisdn",
        "r6": "negative duration_s",
        "r7": "negative bytes_up",
        "r8": "unparseable bytes_up",
        "r9": "unknown direction",
    }
    # The raw value that failed is kept for the investigator.
    assert rejects.loc[rejects["record_id"] == "r4", "start_time"].item() == "not a time"


def test_types_case_and_time_zone(tmp_path: Path) -> None:
    norm = normalize(read_input(_csv(tmp_path)), tz="Asia/Shanghai")
    table = norm.table
    assert table.schema.names == list(COLUMNS)
    for name, typ in COLUMNS.items():
        got = table[name].type
        if pa.types.is_dictionary(got):
            # Dictionary-encoded text: a row costs an index, filters judge distinct values.
            assert got.value_type == typ, name
            distinct = table[name].drop_null().unique()
            assert len(table[name].chunk(0).dictionary) == len(distinct), name
        else:
            assert got == typ, name
    assert all(pa.types.is_dictionary(table[c].type) for c in ("msisdn", "record_type"))
    assert table["record_type"][1].as_py() == "sms"
    assert table["direction"][1].as_py() == "mo"
    # Naive 10:00 in Shanghai is 02:00 UTC; an explicit Z is taken as given.
    assert table["start_time"][0].as_py() == pd.Timestamp("2008-07-01 02:00", tz="UTC")
    assert table["start_time"][7].as_py() == pd.Timestamp("2008-07-01 02:10", tz="UTC")
    # Phone numbers keep their '+' and leading zero.
    assert table["peer_number"][0].as_py() == "+8613900000001"
    assert table["peer_number"][1].as_py() == "013900000001"
    # Absent optional columns read as all-null.
    assert table["imei"].null_count == 9


def test_generated_record_ids_name_file_and_row(tmp_path: Path) -> None:
    text = "record_type,direction,start_time,msisdn\n" + "\n".join(
        f"sms,mo,2008-07-01 10:0{i}:00,1380000000{i % 2}" for i in range(4)
    )
    result = telediag.scan(_csv(tmp_path, text, "july.csv"), rules=[])
    ids = result.records.record_ids(pd.RangeIndex(4).to_numpy())  # type: ignore[union-attr]
    assert sorted(ids.to_pylist()) == ["july:0", "july:1", "july:2", "july:3"]


def test_missing_required_column_names_file_and_column(tmp_path: Path) -> None:
    p = _csv(tmp_path, "record_type,direction,start_time\nsms,mo,2008-07-01 10:00:00\n")
    with pytest.raises(telediag.InputError, match=r"in\.csv: missing required column 'msisdn'"):
        read_input(p)


def test_unreadable_inputs_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(telediag.InputError, match="no such file"):
        read_input(tmp_path / "nope.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(telediag.InputError, match=r"bad\.parquet: cannot read Parquet"):
        read_input(bad)
    with pytest.raises(telediag.InputError, match="unknown time zone"):
        normalize(read_input(_csv(tmp_path)), tz="Mars/Olympus")


def test_directory_of_parquet_parts_and_unknown_columns_kept_out(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "record_type": ["sms", "voice", "data"],
            "direction": ["mo", "mt", "mo"],
            "start_time": pd.to_datetime(["2008-07-01 10:00"] * 3),
            "msisdn": ["1", "2", "3"],
            "operator_note": ["x", "y", "z"],
        }
    )
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(pa.Table.from_pandas(frame.iloc[:2]), folder / "a.parquet")
    pq.write_table(pa.Table.from_pandas(frame.iloc[2:]), folder / "b.parquet")
    raw = read_input(folder)
    assert raw.num_rows == 3
    assert raw.stems == ["a", "b"]
    assert "operator_note" not in raw.table.column_names
    assert raw.generated_ids(pd.Series([0, 1, 2]).to_numpy()).to_pylist() == [
        "a:0",
        "a:1",
        "b:0",
    ]


def test_column_map_for_3gpp_names(tmp_path: Path) -> None:
    text = (
        "recordType,servedMSISDN,servedIMEI,recordOpeningTime,calledNumber,callingNumber,"
        "dataVolumeGPRSUplink,dataVolumeGPRSDownlink,callDuration\n"
        "moCallRecord,8613800000001,35201401000017,2008-07-01 10:00:00,13900000001,,,,61\n"
        "mtSMSRecord,8613800000001,35201401000017,2008-07-01 10:01:00,,10086,,,\n"
        "egsnPDPRecord,8613800000001,35201401000017,2008-07-01 10:02:00,,,120,4000,30\n"
        "weirdRecord,8613800000001,35201401000017,2008-07-01 10:03:00,,,,,\n"
    )
    cmap = ROOT / "column-maps" / "3gpp-ts32298.yaml"
    norm = normalize(read_input(_csv(tmp_path, text), column_map=cmap))
    t = norm.table.to_pandas()
    assert list(t["record_type"]) == ["voice", "sms", "data", "weirdrecord"]
    assert list(t["direction"][:3]) == ["mo", "mt", "mo"]
    assert list(t["peer_number"][:2]) == ["13900000001", "10086"]
    assert t["bytes_down"][2] == 4000
    assert t["duration_s"][0] == 61.0
    assert norm.report.set_aside == {"unknown record_type": 1}


def test_bad_column_map_names_file_and_field(tmp_path: Path) -> None:
    p = tmp_path / "map.yaml"
    p.write_text("columns:\n  msisdn_number: servedMSISDN\n", encoding="utf-8")
    with pytest.raises(telediag.ColumnMapError, match=r"map\.yaml: columns: .*msisdn_number"):
        read_input(_csv(tmp_path), column_map=p)


def test_column_map_on_a_column_with_no_values() -> None:
    """A record kind column that is empty (no rows, or only nulls) maps to text nulls."""
    cmap = load_column_map(ROOT / "column-maps" / "3gpp-ts32298.yaml")
    for n in (0, 2):
        table = pa.table(
            {"recordType": pa.nulls(n, pa.string()), "servedMSISDN": pa.nulls(n, pa.string())}
        )
        mapped = cmap.apply(table, zone="UTC")
        assert mapped["record_type"].type == pa.string()
        assert mapped["record_type"].null_count == n


def test_normalized_keeps_only_the_rows_set_aside_as_read() -> None:
    """The month as read is not held beside the canonical table: only the rows set aside
    stay as read, and rejects() gives them with their reasons and ids as before."""
    raw = read_input(
        pa.table(
            {
                "record_type": ["sms", "telex", "sms", "voice"],
                "direction": ["mo", "mo", "sideways", "mt"],
                "start_time": ["2008-07-01 10:00:00"] * 4,
                "msisdn": ["13800000001", "13800000001", " 13800000002 ", "13800000003"],
            }
        )
    )
    normalized = normalize(raw)
    assert normalized.raw.table.num_rows == 2
    assert normalized.raw.table.schema == raw.table.schema
    rejects = normalized.rejects().to_pylist()
    assert [(r["reason"], r["record_id"], r["msisdn"]) for r in rejects] == [
        ("unknown record_type", "table0:1", "13800000001"),
        ("unknown direction", "table0:2", " 13800000002 "),
    ]
    clean = normalize(
        read_input(pa.table({c: raw.table[c] for c in raw.table.column_names}).slice(0, 1))
    )
    assert clean.raw.table.num_rows == 0 and clean.rejects().num_rows == 0


def test_a_tsv_file_is_tab_separated_unless_a_map_says_otherwise(tmp_path: Path) -> None:
    """A ``.tsv`` (compressed or not) without a map's csv block is read with tabs, as
    its ending says; it ended in "missing required column 'record_type'"."""
    import gzip

    source = (ROOT / "fixtures" / "cdr" / "TD001" / "phonebook-forward.csv").read_text()
    expected = telediag.scan(ROOT / "fixtures" / "cdr" / "TD001" / "phonebook-forward.csv")
    plain = tmp_path / "month.tsv"
    plain.write_text(source.replace(",", "\t"), encoding="utf-8")
    packed = tmp_path / "day.tsv.gz"
    packed.write_bytes(gzip.compress(source.replace(",", "\t").encode()))
    for path in (plain, packed):
        got = telediag.scan(path)
        assert list(got.findings["finding_id"]) == list(expected.findings["finding_id"])
        assert got.report.rows_used == expected.report.rows_used == 44
    bucketed = telediag.scan(plain, buckets=2)
    assert list(bucketed.findings["finding_id"]) == list(expected.findings["finding_id"])
    # A map's own csv block decides: commas declared, the tabs are one column.
    cmap = tmp_path / "map.yaml"
    cmap.write_text("csv: {delimiter: ','}\n", encoding="utf-8")
    with pytest.raises(telediag.InputError, match="missing required column"):
        telediag.scan(plain, column_map=cmap)
