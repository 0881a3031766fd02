"""Column map version 2: dialects, times, value maps, precedence, derived columns,
units and layouts; strict validation that names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

import telediag
from telediag.colmap import ColumnMap, load_column_map
from telediag.normalize import Normalized, normalize
from telediag.read import read_input
from telediag.views.summary import scan_summary


def _norm(source: Path | list[Path], cmap: ColumnMap | dict, tz: str = "UTC") -> Normalized:
    m = cmap if isinstance(cmap, ColumnMap) else ColumnMap.model_validate(cmap)
    norm = normalize(read_input(source, column_map=m), tz=tz)
    rep = norm.report
    assert rep.rows_read == rep.rows_used + rep.rows_set_aside
    return norm


def _col(norm: Normalized, name: str) -> list[object]:
    return norm.table[name].to_pylist()


HEADERLESS = (
    "CDR EXPORT 2026-07-08 SWITCH7\n"  # a banner line
    "0013800000001;1;11;20260708;035300;60000;'+8613900000001'\n"
    "0013800000001;2;22;20260708;035400;;'10086'\n"
    "0013800000002;1;21;20260708;035500;;\\N\n"
    "TRAILER;3\n"
)
HEADERLESS_MAP = {
    "csv": {
        "delimiter": ";",
        "header": False,
        "names": ["msisdn", "dir", "service", "day", "clock", "dur_ms", "peer"],
        "quote": "'",
        "null_values": ["", "\\N"],
        "skip_rows": 1,
        "skip_footer": 1,
    },
    "times": {"formats": ["%Y%m%d %H%M%S"]},
    "columns": {
        "start_time": {"date": "day", "time": "clock"},
        "direction": {"source": "dir", "values": {1: "mo", 2: "mt"}},
        "record_type": {"source": "service", "values": {11: "voice", 21: "sms", 22: "sms"}},
        "duration_s": {"source": "dur_ms", "scale": 0.001},
        "peer_number": "peer",
    },
}


def test_headerless_semicolon_file_with_banner_and_trailer(tmp_path: Path) -> None:
    p = tmp_path / "switch7.dat"
    p.write_text(HEADERLESS, encoding="utf-8")
    norm = _norm(p, HEADERLESS_MAP, tz="Asia/Shanghai")
    assert norm.report.rows_read == 3
    assert norm.report.rows_used == 3
    assert _col(norm, "msisdn") == ["0013800000001", "0013800000001", "0013800000002"]
    assert _col(norm, "record_type") == ["voice", "sms", "sms"]
    assert _col(norm, "direction") == ["mo", "mt", "mo"]
    assert _col(norm, "duration_s") == [60.0, None, None]
    assert _col(norm, "peer_number") == ["+8613900000001", "10086", None]
    assert pd.Timestamp(_col(norm, "start_time")[0]) == pd.Timestamp(
        "2026-07-07 19:53:00", tz="UTC"
    )


@pytest.mark.parametrize("ending", [".csv.gz", ".csv.bz2", ".csv.zst"])
def test_compressed_and_gb18030_files_with_spaced_names(tmp_path: Path, ending: str) -> None:
    text = (
        " 主叫号码 , record_type ,direction, start_time \n"
        "13800000001,sms,mo,2026-07-08 03:53:00\n"
        "13800000002,sms,mt,2026-07-08 03:54:00\n"
    )
    p = tmp_path / f"export{ending}"
    codec = {".csv.gz": "gzip", ".csv.bz2": "bz2", ".csv.zst": "zstd"}[ending]
    with pa.output_stream(str(p), compression=codec) as out:
        out.write(text.encode("gb18030"))
    assert p.read_bytes()[:2] != b" \xd6"  # compressed on disk
    norm = _norm(p, {"csv": {"encoding": "gb18030"}, "columns": {"msisdn": "主叫号码"}})
    assert _col(norm, "msisdn") == ["13800000001", "13800000002"]
    assert norm.report.rows_used == 2


def test_unlisted_values_keep_or_default(tmp_path: Path) -> None:
    p = tmp_path / "codes.csv"
    p.write_text(
        "msisdn,start_time,svc,dir\n1,2026-07-08 03:53:00,11,1\n1,2026-07-08 03:54:00,99,3\n",
        encoding="utf-8",
    )
    kept = _norm(
        p,
        {
            "columns": {
                "record_type": {"source": "svc", "values": {11: "voice"}},
                "direction": {"source": "dir", "values": {1: "mo", 2: "mt"}, "default": "mo"},
            }
        },
    )
    assert _col(kept, "direction") == ["mo", "mo"]
    # Without a default the unlisted value is kept, and the row set aside with it.
    assert kept.report.set_aside == {"unknown record_type": 1}
    assert kept.rejects()["record_type"].to_pylist() == ["99"]


def test_precedence_between_two_signals_counts_disagreements(tmp_path: Path) -> None:
    p = tmp_path / "two-signals.csv"
    p.write_text(
        "msisdn,start_time,kind,svc_dir\n"
        "1,2026-07-08 03:53:00,MOC,1\n"  # agree
        "1,2026-07-08 03:54:00,MTC,1\n"  # disagree: the record type wins
        "1,2026-07-08 03:55:00,,2\n"  # only the service code
        "1,2026-07-08 03:56:00,SMS-MO,\n",
        encoding="utf-8",
    )
    cmap = {
        "columns": {
            "record_type": {"constant": "voice"},
            "direction": [
                {"source": "kind", "values": {"MOC": "mo", "MTC": "mt", "SMS-MO": "mo"}},
                {"source": "svc_dir", "values": {1: "mo", 2: "mt"}},
            ],
        }
    }
    norm = _norm(p, cmap)
    assert _col(norm, "direction") == ["mo", "mt", "mt", "mo"]
    assert norm.report.rows_used == 4
    assert norm.report.disagreements == {"direction": 1}
    result = telediag.scan(p, column_map=ColumnMap.model_validate(cmap), rules=[])
    summary = scan_summary(result)
    assert "1 rows where the map's sources for direction disagree (first one used)" in summary


def test_duration_from_start_and_end_across_midnight(tmp_path: Path) -> None:
    p = tmp_path / "calls.csv"
    p.write_text(
        "msisdn,day,begin,finish\n"
        "1,20260708,23:59:30,00:01:00\n"
        "1,20260708,10:00:00,10:00:42\n"
        "1,20260708,10:00:00,soon\n",
        encoding="utf-8",
    )
    cmap = {
        "times": {"formats": ["%Y%m%d %H:%M:%S", "%H:%M:%S"]},
        "columns": {
            "start_time": {"date": "day", "time": "begin"},
            "duration_s": {"start": "begin", "end": "finish"},
        },
        "constants": {"record_type": "voice", "direction": "mo"},
    }
    norm = _norm(p, cmap)
    assert _col(norm, "duration_s") == [90.0, 42.0, None]
    assert norm.report.set_aside == {"unparseable duration_s": 1}
    assert norm.rejects()["duration_s"].to_pylist() == ["10:00:00 .. soon"]


def test_units_milliseconds_kilobytes_cents(tmp_path: Path) -> None:
    p = tmp_path / "units.csv"
    p.write_text(
        "msisdn,record_type,direction,start_time,ms,kb_up,fen\n"
        "1,data,mo,2026-07-08 03:53:00,1500,2,125\n",
        encoding="utf-8",
    )
    cmap = {
        "columns": {
            "duration_s": {"source": "ms", "scale": 0.001},
            "bytes_up": {"source": "kb_up", "scale": 1024},
            "charge": {"source": "fen", "scale": 0.01},
        }
    }
    norm = _norm(p, cmap)
    assert _col(norm, "duration_s") == [1.5]
    assert _col(norm, "bytes_up") == [2048]
    assert _col(norm, "charge") == [1.25]


def test_one_map_for_incoming_and_outgoing_files_with_different_headers(tmp_path: Path) -> None:
    out = tmp_path / "moc_20260708.csv"
    out.write_text(
        "CallingParty,CalledParty,Seized\n13800000001,13900000001,2026-07-08 03:53:00\n",
        encoding="utf-8",
    )
    inc = tmp_path / "mtc_20260708.csv"
    inc.write_text(
        "ServedParty,OtherParty,Seized,Kind\n13800000001,13900000002,2026-07-08 03:54:00,SMS\n",
        encoding="utf-8",
    )
    cmap = {
        "columns": {"start_time": "Seized", "record_type": {"constant": "voice"}},
        "layouts": [
            {
                "name": "outgoing",
                "when": ["CallingParty"],
                "columns": {"msisdn": "CallingParty", "peer_number": "CalledParty"},
                "constants": {"direction": "mo"},
            },
            {
                "name": "incoming",
                "when": ["ServedParty"],
                "columns": {
                    "msisdn": "ServedParty",
                    "peer_number": "OtherParty",
                    "record_type": {"source": "Kind", "values": {"SMS": "sms"}},
                },
                "constants": {"direction": "mt"},
            },
        ],
    }
    norm = _norm([out, inc], cmap)
    assert _col(norm, "direction") == ["mo", "mt"]
    assert _col(norm, "record_type") == ["voice", "sms"]
    assert _col(norm, "peer_number") == ["13900000001", "13900000002"]
    assert norm.report.layouts == {str(out): "outgoing", str(inc): "incoming"}


def test_pruning_reads_every_source_the_map_needs(tmp_path: Path) -> None:
    p = tmp_path / "pruned.csv"
    p.write_text(
        "who,kind,when_day,when_clock,b,e,unused\n1,SMS,20260708,035300,035300,035330,x\n",
        encoding="utf-8",
    )
    cmap = ColumnMap.model_validate(
        {
            "times": {"formats": ["%Y%m%d %H%M%S", "%H%M%S"]},
            "columns": {
                "msisdn": "who",
                "record_type": {"source": "kind", "values": {"SMS": "sms"}},
                "start_time": {"date": "when_day", "time": "when_clock"},
                "duration_s": {"start": "b", "end": "e"},
            },
            "constants": {"direction": "mo"},
        }
    )
    raw = read_input(p, column_map=cmap, columns={"duration_s"})
    assert raw.table["duration_s"].to_pylist() == [30.0]
    raw = read_input(p, column_map=cmap, columns=set())
    assert "duration_s" not in raw.table.column_names


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colums: {}\n", r"colums: Extra inputs are not permitted"),
        (
            "columns:\n  direction: {source: d, values: {1: out}}\n",
            r"columns: direction: '1' maps to 'out', which is not one of mo, mt",
        ),
        ("columns:\n  msisdn: {source: a, constant: b}\n", r"columns\.msisdn: .*exactly one of"),
        ("csv: {encoding: klingon}\n", r"csv\.encoding: .*unknown encoding 'klingon'"),
        ("csv: {header: false}\n", r"csv: .*needs 'names'"),
        ("csv: {delimiter: ';;'}\n", r"csv\.delimiter: .*one character"),
        ("times: {formats: [yyyymmdd]}\n", r"times\.formats: .*strptime"),
        ("layouts:\n  - {name: a}\n", r"layouts\.0: .*'when'"),
        ("values:\n  direction: {I: incoming}\n", r"values: direction: 'I' maps to 'incoming'"),
        # A scale multiplies numbers: on a text column it made a number of an enumerated
        # value, and the map raised Arrow's coalesce error (found by test_robust).
        (
            "columns:\n  direction: {source: d, scale: 0.0}\n",
            r"columns: direction: scale is for number columns \(duration_s, ",
        ),
        ("scale: {msisdn: 10}\n", r"scale: msisdn: scale is for number columns"),
        (
            "layouts:\n  - {name: a, when: [x], scale: {imei: 2}}\n",
            r"layouts\.0\.scale: imei: scale is for number columns",
        ),
    ],
)
def test_bad_maps_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "bad-map.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(telediag.ColumnMapError, match=r"bad-map\.yaml: " + message):
        load_column_map(p)


def test_version_1_maps_still_load_and_numbers_as_value_keys() -> None:
    cmap = ColumnMap.model_validate(
        {
            "columns": {"msisdn": "a", "peer_number": ["b", "c"]},
            "values": {"status": {0: "ok", "1": "failed"}},
            "constants": {"direction": "mo"},
            "scale": {"duration_s": 0.001},
        }
    )
    assert cmap.values["status"] == {"0": "ok", "1": "failed"}
    assert cmap.source_columns() == {"a", "b", "c"}


def test_a_map_applies_batch_by_batch_as_to_the_whole_table(tmp_path: Path) -> None:
    p = tmp_path / "switch7.dat"
    p.write_text(HEADERLESS, encoding="utf-8")
    cmap = ColumnMap.model_validate(HEADERLESS_MAP)
    from telediag.csvread import read_csv

    table = read_csv(p, cmap.csv, lambda names: None)
    whole = cmap.apply(table, zone="UTC")
    parts = [cmap.apply(batch, zone="UTC") for batch in table.to_batches(max_chunksize=1)]
    import pyarrow as pa

    assert pa.concat_tables(parts).equals(whole)


def test_a_scaled_number_column_with_a_value_map(tmp_path: Path) -> None:
    """Values the map lists are translated, then scaled; unlisted ones are kept as read
    and scaled too (a number), or set aside when they are no number. The map raised
    Arrow's coalesce error (number and text), found by test_robust."""
    p = tmp_path / "coded.csv"
    p.write_text(
        "id,msisdn,record_type,direction,start_time,ms\n"
        "a,1,voice,mo,2026-07-08 03:53:00,x\n"
        "b,1,voice,mo,2026-07-08 03:54:00,1500\n"
        "c,1,voice,mo,2026-07-08 03:55:00,abc\n",
        encoding="utf-8",
    )
    for values, expected in (({"x": "2000"}, [2.0, 1.5]), ({}, [1.5])):
        cmap = {
            "columns": {
                "record_id": "id",
                "duration_s": {"source": "ms", "values": values, "scale": 0.001},
            }
        }
        norm = _norm(p, cmap)
        used = norm.table.filter(pa.array(norm.valid))
        assert used["duration_s"].to_pylist() == expected
        rejects = norm.rejects().to_pylist()
        assert [(r["record_id"], r["reason"]) for r in rejects] == [
            *([] if values else [("a", "unparseable duration_s")]),
            ("c", "unparseable duration_s"),
        ]
