"""The Spark engine gives what the local scan gives: findings, evidence, accounting,
rejects and rule errors. One local[2] session serves every test (starting Spark is the
slow part)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

import telediag
from telediag import spark as ts
from telediag.cli import main
from telediag.read import read_input

from .conftest import FIXTURES, ROOT, RULES

TZ = "Asia/Shanghai"


@pytest.fixture(scope="session")
def spark() -> Any:
    """PySpark comes with the test extra; Spark's local mode needs Java (.ci/run installs
    it), so these tests run in CI rather than skip."""
    session = ts.session("local[2]")
    yield session
    session.stop()


def _plain(values: pd.Series) -> list[Any]:
    """Values with every kind of missing (None, NaN, NA) as None."""
    return [None if pd.isna(v) else v for v in values.astype(object)]


def _same_findings(local: telediag.ScanResult, got: telediag.ScanResult) -> None:
    """Every column of every finding, and the evidence, as the local scan has them."""
    assert len(got.findings) == len(local.findings)
    a, b = local.findings, got.findings
    for col in a.columns:
        if col == "record_ids":
            assert [list(v) for v in a[col]] == [list(v) for v in b[col]]
        else:
            assert _plain(a[col]) == _plain(b[col]), col
    assert str(b["first_seen"].dtype) == "datetime64[ms, UTC]"
    pd.testing.assert_frame_equal(
        local.evidence.reset_index(drop=True),
        got.evidence.reset_index(drop=True),
        check_dtype=False,
    )


def test_local_mode_runs_this_interpreter(spark: Any) -> None:
    assert spark.sparkContext.pythonExec == sys.executable


def test_fixtures_give_the_local_findings(spark: Any) -> None:
    files = sorted(FIXTURES.glob("*/*.csv"))
    local = telediag.scan(files, rules=RULES, tz=TZ)
    assert len(local.findings) >= 11
    frame = spark.createDataFrame(read_input(files).table)
    result = ts.scan(frame, rules=RULES, tz=TZ, buckets=3)
    got = result.to_local()
    _same_findings(local, got)
    assert result.errors == []
    assert result.report.rows_read == local.report.rows_read
    assert result.report.rows_used == local.report.rows_used
    # Counted over every bucket; of the ids repeated most, both name the least.
    assert result.report.warnings == local.report.warnings
    result.unpersist()


def _month(tmp_path: Path) -> Path:
    """A small generated month, without record ids, in two Parquet files of many row
    groups (so that Spark reads each file in several splits)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from generate import generate_month
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    table = generate_month(40_000, seed=5, cases_per_million=100).drop_columns(["record_id"])
    folder = tmp_path / "month"
    folder.mkdir()
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), folder / "part-a.parquet", row_group_size=2_000)
    pq.write_table(table.slice(half), folder / "part-b.parquet", row_group_size=2_000)
    return folder


def test_generated_month_gives_the_local_findings_and_ids(spark: Any, tmp_path: Path) -> None:
    folder = _month(tmp_path)
    local = telediag.scan(folder, tz=TZ)
    assert {rid.split(":")[0] for rid in local.evidence["record_id"]} == {"part-a", "part-b"}
    spark.conf.set("spark.sql.files.maxPartitionBytes", "200k")
    try:
        frame = ts.read(spark, str(folder))
        assert frame.rdd.getNumPartitions() > 2
        result = ts.scan(frame, tz=TZ, buckets=4)
        got = result.to_local()
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert set(local.findings["rule_id"]) >= {"TD001", "TD002", "TD004", "TD007"}
    _same_findings(local, got)
    assert result.report.rows_read == 40_000
    assert result.report.rows_used == local.report.rows_used
    result.unpersist()


BAD_CSV = """record_id,record_type,direction,start_time,msisdn,duration_s,bytes_up,peer_number
r1,voice,mo,2008-07-01 10:00:00,13800000001,60,,+8613900000001
r2,SMS,MO,2008-07-01 10:05:00, 13800000001 ,,,013900000001
r3,fax,mo,2008-07-01 10:06:00,13800000001,,,
r4,sms,mo,2008-07-01 10:06:30,13800000001,,,
,sms,mo,not a time,13800000001,,,
r6,data,mo,2008-07-01 10:08:00,13800000002,-5,100,
r7,data,mo,2008-07-01 10:09:00,13800000002,30,-1,""
r8,data,mo,2008-07-01T02:10:00Z,13800000002,30,abc,
r9,data,sideways,2008-07-01 10:11:00,13800000002,30,10,
"""


def test_cli_accounting_rejects_and_outputs(spark: Any, tmp_path: Path) -> None:
    """Through the command line: CSV read by Spark, rows set aside counted over every
    bucket and written beside the findings, with the ids a local scan gives them."""
    src = tmp_path / "bad.csv"
    src.write_text(BAD_CSV, encoding="utf-8")
    fixture = FIXTURES / "TD001" / "phonebook-forward.csv"
    out, rejects, evidence = (tmp_path / n for n in ("f.parquet", "r.parquet", "e.csv"))
    code = main(
        [
            "scan",
            str(src),
            str(fixture),
            "--engine",
            "spark",
            "--master",
            "local[2]",
            "--tz",
            TZ,
            "--out",
            str(out),
            "--rejects",
            str(rejects),
            "--evidence",
            str(evidence),
        ]
    )
    assert code == 0
    local = telediag.scan([src, fixture], tz=TZ)
    got = pd.read_parquet(out)
    assert list(got["finding_id"]) == list(local.findings["finding_id"])
    assert str(got["first_seen"].dtype).startswith("datetime64") and got["first_seen"].dt.tz
    ev = pd.concat(pd.read_csv(p, dtype=str) for p in sorted(evidence.glob("part-*.csv")))
    assert list(ev["record_id"]) == list(local.evidence["record_id"])
    want = local.rejects().to_pandas().sort_values("record_id").reset_index(drop=True)
    have = pq.read_table(rejects).to_pandas().reset_index(drop=True)
    assert list(have.columns) == list(want.columns)
    pd.testing.assert_frame_equal(have, want, check_dtype=False)
    assert dict(zip(have["record_id"], have["reason"], strict=True))["bad:4"] == (
        "unparseable start_time"
    )


def test_rule_error_leaves_the_other_rules_standing(spark: Any) -> None:
    rules = telediag.load_rules(RULES)
    broken = [
        r.model_copy(update={"summary": "{no_such_measure}"}) if r.id == "TD001" else r
        for r in rules
    ]
    files = sorted(FIXTURES.glob("TD00[12]/*.csv"))
    local = telediag.scan(files, rules=broken, tz=TZ)
    assert [e.rule_id for e in local.errors] == ["TD001"]
    frame = spark.createDataFrame(read_input(files).table)
    result = ts.scan(frame, rules=broken, tz=TZ, buckets=2)
    assert [(e.rule_id, e.message) for e in result.errors] == [
        (e.rule_id, e.message) for e in local.errors
    ]
    got = result.to_local()
    assert set(got.findings["rule_id"]) == {"TD002"}
    _same_findings(local, got)
    result.unpersist()


def test_column_map_applies_on_spark(spark: Any, tmp_path: Path) -> None:
    text = (
        "recordType,servedMSISDN,servedIMEI,recordOpeningTime,calledNumber,callingNumber,"
        "dataVolumeGPRSUplink,dataVolumeGPRSDownlink,callDuration\n"
        "moCallRecord,8613800000001,35201401000017,2008-07-01 10:00:00,13900000001,,,,61\n"
        "mtSMSRecord,8613800000001,35201401000017,2008-07-01 10:01:00,,10086,,,\n"
        "egsnPDPRecord,8613800000001,35201401000017,2008-07-01 10:02:00,,,120,4000,30\n"
        "weirdRecord,8613800000001,35201401000017,2008-07-01 10:03:00,,,,,\n"
        "moCallRecord,8613800000001,35201401000017,2008-07-01 10:04:00,139001,139002,,,5\n"
    )
    src = tmp_path / "feed.csv"
    src.write_text(text, encoding="utf-8")
    base = (ROOT / "column-maps" / "3gpp-ts32298.yaml").read_text(encoding="utf-8")
    cmap = tmp_path / "map.yaml"
    # Alternatives written as objects: rows where they disagree are counted.
    cmap.write_text(
        base.replace(
            "  peer_number: [calledNumber, callingNumber,",
            "  peer_number: [{source: calledNumber}, {source: callingNumber}, "
            "{source: [calledNumber, callingNumber,",
        ).replace("connectedNumber]", "connectedNumber]}]"),
        encoding="utf-8",
    )
    local = telediag.scan(src, column_map=cmap)
    result = ts.scan(ts.read(spark, str(src)), column_map=cmap, buckets=2)
    assert result.report.set_aside == local.report.set_aside == {"unknown record_type": 1}
    # The called and calling numbers both given and different: counted, not set aside.
    assert local.report.disagreements == {"peer_number": 1}
    assert result.report.disagreements == local.report.disagreements
    rejects = result.rejects_table()
    assert rejects.column("record_type").to_pylist() == ["weirdRecord"]
    assert (
        rejects.column("record_id").to_pylist() == local.rejects().column("record_id").to_pylist()
    )
    result.unpersist()


def test_missing_pyspark_or_bad_input_is_one_line(spark: Any, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(
        [
            "scan",
            str(tmp_path / "nope.parquet"),
            "--engine",
            "spark",
            "--out",
            str(tmp_path / "f.parquet"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.parquet" in err


def _same_scan(local: telediag.ScanResult, result: ts.SparkScanResult) -> None:
    _same_findings(local, result.to_local())
    for key in ("rows_read", "rows_used", "set_aside", "disagreements", "warnings"):
        assert getattr(result.report, key) == getattr(local.report, key), key
    assert result.rejects_table().to_pylist() == local.rejects().to_pylist()


def test_csv_and_parquet_together_read_naive_csv_times_in_the_zone(
    spark: Any, tmp_path: Path
) -> None:
    """Review i13 #1: the CSV's text times met the Parquet's timestamps in one column."""
    csv = FIXTURES / "TD001" / "phonebook-forward.csv"
    parquet = _month(tmp_path) / "part-a.parquet"
    local = telediag.scan([csv, parquet], rules=RULES, tz=TZ)
    assert "13800000001" in set(local.findings["msisdn"])
    result = ts.scan(ts.read(spark, [str(csv), str(parquet)]), rules=RULES, tz=TZ, buckets=3)
    _same_scan(local, result)
    result.unpersist()


NULLS_CSV = """record_id,record_type,direction,start_time,msisdn,duration_s,status,imei
n1,voice,mo,2008-07-01 10:00:00,NULL,60,,
n2,voice,mo,2008-07-01 10:01:00,13800000001,NA,,
n3,sms,mo,2008-07-01 10:02:00,13800000001,,N/A,
n4,sms,mo,not a time,13800000001,,,
n5,sms,mo,also not,13800000001,,,
n6,sms,mo,2008-07-01 10:03:00,13800000001,,nan,NULL
"""


def test_spark_reads_csv_null_spellings_as_the_local_reader(spark: Any, tmp_path: Path) -> None:
    """Review i13 #2a."""
    path = tmp_path / "nulls.csv"
    path.write_text(NULLS_CSV, encoding="utf-8")
    local = telediag.scan(path, rules=RULES, tz=TZ)
    assert local.report.set_aside == {"missing msisdn": 1, "unparseable start_time": 2}
    result = ts.scan(ts.read(spark, str(path)), rules=RULES, tz=TZ, buckets=2)
    _same_scan(local, result)
    result.unpersist()


def test_a_column_maps_csv_dialect_reaches_spark(spark: Any, tmp_path: Path) -> None:
    """Review i13 #2b: delimiter, no header, names, quote, encoding and the file ending."""
    rows = [
        "r1;sms;mo;01/07/2008 10:00:00;13800000001;短信",
        "r2;sms;mo;13/07/2008 10:01:00;13800000001;NULL",
        "r3;fax;mo;01/07/2008 10:02:00;13800000002;x",
    ]
    path = tmp_path / "feed.dat"
    path.write_bytes(("\n".join(rows) + "\n").encode("gb18030"))
    cmap = tmp_path / "map.yaml"
    cmap.write_text(
        "version: 2\ntimes: {formats: ['%d/%m/%Y %H:%M:%S']}\n"
        "csv:\n  delimiter: ';'\n  header: false\n  encoding: gb18030\n"
        "  names: [record_id, record_type, direction, start_time, msisdn, note]\n",
        encoding="utf-8",
    )
    local = telediag.scan(path, rules=RULES, tz=TZ, column_map=cmap)
    assert local.report.rows_read == 3 and local.report.set_aside == {"unknown record_type": 1}
    assert local.normalized.table["start_time"].to_pylist()[1].day == 13
    frame = ts.read(spark, str(path), cmap)
    result = ts.scan(frame, rules=RULES, tz=TZ, column_map=cmap, buckets=2)
    _same_scan(local, result)
    result.unpersist()


def test_a_dialect_spark_cannot_read_is_refused_in_one_line(spark: Any) -> None:
    maps = ROOT / "column-maps"
    with pytest.raises(telediag.TelediagError, match="skip_rows") as info:
        ts.read(
            spark, str(maps / "samples" / "switch-headerless.dat"), maps / "switch-headerless.yaml"
        )
    assert "\n" not in str(info.value)


def test_spark_trims_subscribers_as_normalization_does(spark: Any, tmp_path: Path) -> None:
    """Review i13 #3: U+001C..U+001F are whitespace to Arrow, so to the buckets too."""
    lines = (FIXTURES / "TD001" / "phonebook-forward.csv").read_text().splitlines()
    head = lines[0].split(",")
    at = head.index("msisdn")
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        cells = line.split(",")
        cells[at] += "\x1c" if i % 2 else "\x1f"
        out.append(",".join(cells))
    path = tmp_path / "ctrl.csv"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    local = telediag.scan(path, rules=RULES, tz=TZ)
    assert list(local.findings["rule_id"]) == ["TD001"]
    result = ts.scan(ts.read(spark, str(path)), rules=RULES, tz=TZ, buckets=50)
    _same_scan(local, result)
    result.unpersist()


def test_a_file_spark_cannot_read_is_named_in_one_line(spark: Any, tmp_path: Path) -> None:
    """Review i13 #4: not Parquet, through the API and the command line."""
    bad = tmp_path / "notes.parquet"
    bad.write_text("not parquet at all\n")
    with pytest.raises(telediag.TelediagError, match=r"notes\.parquet") as info:
        ts.read(spark, str(bad)).count()
    assert "\n" not in str(info.value) and "o1" not in str(info.value)
    code = main(["scan", str(bad), "--engine", "spark", "--out", str(tmp_path / "f.parquet")])
    assert code == 2


def test_csv_outputs_are_standard_csv_with_the_local_values(spark: Any, tmp_path: Path) -> None:
    """Spark's CSV parts quote as RFC 4180 does (a quote doubled, not backslashed), so a
    standard CSV reader gets the local scan's values: the JSON of measures and record
    ids, summaries with commas, and the same instants."""
    import csv
    import json

    fixture = FIXTURES / "TD005" / "nokia-fetches-78-times.csv"
    outputs = {}
    for engine in ("local", "spark"):
        out = tmp_path / f"{engine}.csv"
        argv = ["scan", str(fixture), "--tz", TZ, "--out", str(out), "-q"]
        if engine == "spark":
            argv += ["--engine", "spark", "--master", "local[2]"]
        assert main(argv) == 0
        files = sorted(out.glob("part-*.csv")) if out.is_dir() else [out]
        rows = []
        for f in files:
            with f.open(newline="", encoding="utf-8") as handle:
                rows += list(csv.DictReader(handle))
        outputs[engine] = rows
    local, spark_rows = outputs["local"], outputs["spark"]
    assert local and len(spark_rows) == len(local)
    for want, have in zip(local, spark_rows, strict=True):
        assert have.keys() == want.keys()
        for key, value in want.items():
            if key in ("measures", "record_ids"):
                assert json.loads(have[key]) == json.loads(value), key
            elif key in ("first_seen", "last_seen"):
                assert pd.Timestamp(have[key]) == pd.Timestamp(value), key
            else:
                assert have[key] == value, key


@pytest.mark.parametrize("ending", [".csv", ".jsonl"])
def test_rejects_files_keep_the_values_as_written(spark: Any, tmp_path: Path, ending: str) -> None:
    """Spark's CSV writer trims values and its JSON writer drops null fields by default;
    the set-aside rows keep their spaces and every key, as in the local rejects file."""
    import csv
    import json

    src = tmp_path / "spaces.csv"
    src.write_text(
        "record_id,record_type,direction,start_time,msisdn,duration_s,peer_number\n"
        "r1,voice,mo,2008-07-01 10:00:00, 13800000002 ,abc,  1390 \n"
        'r2,voice,mo,2008-07-01 10:00:00,13800000002,x,"a ""q"", b"\n'
        "r3,voice,mo,2008-07-01 10:00:00,13800000002,y,\n",
        encoding="utf-8",
    )
    outputs = {}
    for engine in ("local", "spark"):
        rejects = tmp_path / f"{engine}-rejects{ending}"
        argv = ["scan", str(src), "--out", str(tmp_path / f"{engine}{ending}"), "-q"]
        argv += ["--rejects", str(rejects)]
        if engine == "spark":
            argv += ["--engine", "spark", "--master", "local[2]"]
        assert main(argv) == 0
        files = sorted(rejects.glob("part-*")) if rejects.is_dir() else [rejects]
        rows: list[dict[str, Any]] = []
        for f in files:
            with f.open(newline="", encoding="utf-8") as handle:
                if ending == ".csv":
                    rows += list(csv.DictReader(handle))
                else:
                    rows += [json.loads(line) for line in handle]
        outputs[engine] = rows
    local = outputs["local"]
    assert [r["msisdn"] for r in local] == [" 13800000002 ", "13800000002", "13800000002"]
    assert outputs["spark"] == local


def test_a_csv_directory_whose_files_order_columns_differently(spark: Any, tmp_path: Path) -> None:
    """Spark takes one header per read and puts every other file's fields under it by
    position; each file's own header names its columns, as in the local scan."""
    fixture = pd.read_csv(
        FIXTURES / "TD001" / "phonebook-forward.csv", dtype=str, keep_default_na=False
    )
    folder = tmp_path / "month"
    folder.mkdir()
    fixture.to_csv(folder / "a.csv", index=False)
    moved = fixture[list(reversed(fixture.columns))].copy()
    moved["record_id"] = "b" + moved["record_id"]
    moved["msisdn"] = "139" + moved["msisdn"].str[3:]
    moved.to_csv(folder / "b.csv", index=False)
    local = telediag.scan(folder, tz=TZ)
    assert set(local.findings["msisdn"]) == {fixture["msisdn"][0], moved["msisdn"].iloc[0]}
    got = ts.scan(ts.read(spark, str(folder)), tz=TZ).to_local()
    _same_findings(local, got)


def test_header_names_with_stray_spaces_are_trimmed_as_locally(spark: Any, tmp_path: Path) -> None:
    lines = (FIXTURES / "TD001" / "phonebook-forward.csv").read_text().splitlines()
    header = ",".join(f" {name}  " for name in lines[0].split(","))
    path = tmp_path / "spaced.csv"
    path.write_text("\n".join([header, *lines[1:]]) + "\n", encoding="utf-8")
    local = telediag.scan(path, tz=TZ)
    assert len(local.findings) == 1
    _same_findings(local, ts.scan(ts.read(spark, str(path)), tz=TZ).to_local())


def test_csv_files_of_one_remote_style_input_with_other_headers_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spark: Any
) -> None:
    """Where the files cannot be listed beforehand (here a glob, as on a cluster's store),
    a file whose header differs from the first is a one-line error, not misplaced fields."""
    fixture = pd.read_csv(
        FIXTURES / "TD001" / "phonebook-forward.csv", dtype=str, keep_default_na=False
    )
    fixture.to_csv(tmp_path / "a.csv", index=False)
    fixture[list(reversed(fixture.columns))].to_csv(tmp_path / "b.csv", index=False)
    out = tmp_path / "f.parquet"
    argv = ["scan", str(tmp_path / "*.csv"), "--engine", "spark", "--master", "local[2]"]
    assert main([*argv, "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("telediag: error: the Spark job failed: CSV header does not conform")
    assert "give each layout's files as an input of their own" in err


def test_a_map_with_layouts_reads_each_file_with_its_own(spark: Any, tmp_path: Path) -> None:
    """One map for the incoming and outgoing exports of a switch (files whose headers
    differ): each file is read with the layout its header calls for, as locally, in a
    directory or named one by one; the report names the layout of each file."""
    import shutil

    maps = ROOT / "column-maps"
    folder = tmp_path / "switch"
    shutil.copytree(maps / "samples" / "vendor-moc-mtc", folder)
    # A second outgoing subscriber, in a second file of the outgoing layout.
    (folder / "MOC_20080303.csv").write_text(
        "CDR_ID,A_NUMBER,B_NUMBER,IMEI,CALL_TYPE,DIR,START_DATE,START_TIME,END_TIME,"
        "BEARER,CHARGE\n"
        "e1,13800000702,13700000001,35201401000099,MOC,T,03/03/2008,09:00:00,09:01:00,"
        "SPEECH,0.40\n",
        encoding="utf-8",
    )
    cmap = maps / "vendor-moc-mtc.yaml"
    files = sorted(str(p) for p in folder.glob("*.csv"))
    for given in ([str(folder)], files):
        local = telediag.scan(given, column_map=cmap, tz="Europe/London")
        assert local.report.disagreements == {"direction": 2}
        result = ts.scan(
            ts.read(spark, given, column_map=cmap), column_map=cmap, tz="Europe/London"
        )
        _same_scan(local, result)
        named = {Path(k).name: v for k, v in result.report.layouts.items()}
        assert named == {Path(k).name: v for k, v in local.report.layouts.items()}
        assert named == {
            "MOC_20080302.csv": "outgoing",
            "MOC_20080303.csv": "outgoing",
            "MTC_20080302.csv": "incoming",
        }
        result.unpersist()


def test_a_map_with_layouts_needs_the_files_read_by_telediag(spark: Any) -> None:
    maps = ROOT / "column-maps"
    frame = spark.read.options(header=True).csv(
        str(maps / "samples" / "vendor-moc-mtc" / "MOC_20080302.csv")
    )
    with pytest.raises(telediag.TelediagError, match=r"telediag\.spark\.read"):
        ts.scan(frame, column_map=maps / "vendor-moc-mtc.yaml")


def test_a_parquet_directory_whose_files_have_other_columns(spark: Any, tmp_path: Path) -> None:
    """Spark takes one file's schema for a directory and drops the columns only other
    files have (here the IMEIs TD004 follows); every file's columns are read, as locally."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    text = {c: pa.string() for c in ("record_id", "msisdn", "imsi", "imei", "peer_number")}
    options = pacsv.ConvertOptions(column_types=text)
    folder = tmp_path / "month"
    folder.mkdir()
    first = pacsv.read_csv(FIXTURES / "TD001" / "phonebook-forward.csv", convert_options=options)
    pq.write_table(first.drop_columns(["imei", "imsi"]), folder / "a.parquet")
    swap = pacsv.read_csv(FIXTURES / "TD004" / "resent-under-new-sim.csv", convert_options=options)
    pq.write_table(swap, folder / "b.parquet")
    local = telediag.scan(folder, tz=TZ)
    assert sorted(local.findings["rule_id"]) == ["TD001", "TD004"]
    result = ts.scan(ts.read(spark, str(folder)), tz=TZ)
    _same_scan(local, result)
    result.unpersist()


def test_a_prepared_store_is_refused_in_one_line(
    spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store holds each row in a subscriber and a handset bucket, and its rows set aside
    apart: read as plain input it would count rows twice. Spark says so instead."""
    from telediag.store import prepare

    store = tmp_path / "store"
    prepare([FIXTURES / "TD001" / "phonebook-forward.csv"], store)
    argv = ["scan", str(store), "--engine", "spark", "--master", "local[2]", "-q"]
    assert main([*argv, "--out", str(tmp_path / "f.parquet")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        f"telediag: error: {store}: a prepared store; scan it with the local engine "
        f"(telediag scan {store}), or give Spark the files it was prepared from"
    )


@pytest.mark.parametrize("kind", ["csv", "headerless", "parquet"])
def test_layouts_chosen_by_file_name_in_a_directory(spark: Any, tmp_path: Path, kind: str) -> None:
    """Layouts told apart by their file-name pattern alone (same columns): each file of a
    directory gets its own, as locally, not the one the directory's name would match."""
    import pyarrow as pa

    folder = tmp_path / "switch"
    folder.mkdir()
    header = "id,number,other,day,kind,chars"
    rows = {
        "out_0801": ["o1,13800000001,13911112222,2008-06-12 09:00:00,sms,126"],
        "in_0801": ["i1,13800000001,13911112222,2008-06-12 09:05:00,sms,20"],
    }
    for stem, lines in rows.items():
        text = "\n".join([header, *lines]) + "\n"
        if kind == "csv":
            (folder / f"{stem}.csv").write_text(text, encoding="utf-8")
        elif kind == "headerless":
            (folder / f"{stem}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            import io

            import pyarrow.csv as pacsv

            table = pacsv.read_csv(
                io.BytesIO(text.encode()),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in header.split(",")}
                ),
            )
            pq.write_table(table, folder / f"{stem}.parquet")
    cmap = tmp_path / "map.yaml"
    dialect = f"csv: {{header: false, names: [{header}]}}\n" if kind == "headerless" else ""
    cmap.write_text(
        dialect + "columns: {record_id: id, msisdn: number, peer_number: other, start_time: day,\n"
        "          record_type: kind, sms_length: chars}\n"
        "layouts:\n"
        "  - {name: outgoing, files: 'out_*', constants: {direction: mo}}\n"
        "  - {name: incoming, files: 'in_*', constants: {direction: mt}}\n",
        encoding="utf-8",
    )
    local = telediag.scan(folder, column_map=cmap)
    assert sorted(local.report.layouts.values()) == ["incoming", "outgoing"]
    assert local.report.rows_used == 2
    # The directory as it is, and as a glob (as on a cluster's store, where the files
    # are not listed beforehand and each row's file name tells its layout).
    ending = "parquet" if kind == "parquet" else "csv"
    for given in (str(folder), str(folder / f"*.{ending}")):
        result = ts.scan(ts.read(spark, given, column_map=cmap), column_map=cmap)
        _same_scan(local, result)
        named = {Path(k).name: v for k, v in result.report.layouts.items()}
        assert named == {Path(k).name: v for k, v in local.report.layouts.items()}
        result.unpersist()


def test_tsv_files_are_tab_separated_as_locally(spark: Any, tmp_path: Path) -> None:
    source = (FIXTURES / "TD001" / "phonebook-forward.csv").read_text(encoding="utf-8")
    folder = tmp_path / "month"
    folder.mkdir()
    (folder / "a.tsv").write_text(source.replace(",", "\t"), encoding="utf-8")
    lines = source.splitlines()
    other = [lines[0], *(line.replace("13800000001", "13800000009") for line in lines[1:])]
    (folder / "b.csv").write_text("\n".join(other) + "\n", encoding="utf-8")
    local = telediag.scan(folder, tz=TZ)
    assert len(local.findings) == 2
    for given in (str(folder), str(folder / "a.tsv")):
        want = local if given == str(folder) else telediag.scan(given, tz=TZ)
        result = ts.scan(ts.read(spark, given), tz=TZ)
        _same_scan(want, result)
        result.unpersist()


def test_a_file_without_rows_is_still_a_file_read(spark: Any, tmp_path: Path) -> None:
    """The report counts the files read, those without a row too, as the local scan."""
    fixture = FIXTURES / "TD001" / "phonebook-forward.csv"
    empty = tmp_path / "empty.csv"
    empty.write_text(fixture.read_text(encoding="utf-8").splitlines()[0] + "\n")
    local = telediag.scan([fixture, empty], tz=TZ)
    result = ts.scan(ts.read(spark, [str(fixture), str(empty)]), tz=TZ)
    assert len(result.report.files) == len(local.report.files) == 2
    assert {Path(f).name for f in result.report.files} == {fixture.name, empty.name}
    _same_scan(local, result)
    result.unpersist()


def test_float_subscriber_numbers_read_as_locally(spark: Any, tmp_path: Path) -> None:
    """Review: Spark handed float msisdns to the engine unconformed (1.3800000001e+10,
    a fraction's spelling), so every row was set aside."""
    frame = pd.read_csv(FIXTURES / "TD001" / "phonebook-forward.csv", dtype=str)
    frame["msisdn"] = frame["msisdn"].astype(float)
    path = tmp_path / "float.parquet"
    frame.to_parquet(path)
    local = telediag.scan(path, tz=TZ)
    assert len(local.findings) == 1
    result = ts.scan(ts.read(spark, str(path)), tz=TZ)
    _same_scan(local, result)
    result.unpersist()


@pytest.mark.parametrize("ending", [".tsv", ".csv.gz"])
def test_a_directory_of_other_text_endings_is_read_as_text(
    spark: Any, tmp_path: Path, ending: str
) -> None:
    """Review: a local directory was taken for CSV only when it held '*.csv' files."""
    import gzip

    source = (FIXTURES / "TD001" / "phonebook-forward.csv").read_text(encoding="utf-8")
    folder = tmp_path / "month"
    folder.mkdir()
    if ending == ".tsv":
        (folder / "a.tsv").write_text(source.replace(",", "\t"), encoding="utf-8")
    else:
        (folder / "a.csv.gz").write_bytes(gzip.compress(source.encode("utf-8")))
    local = telediag.scan(folder, tz=TZ)
    assert len(local.findings) == 1
    result = ts.scan(ts.read(spark, str(folder)), tz=TZ)
    _same_scan(local, result)
    result.unpersist()


def test_files_found_by_a_glob_are_named_as_in_their_directory(spark: Any, tmp_path: Path) -> None:
    """Review: generated record ids of files found by a glob began with '../'."""
    frame = pd.read_csv(FIXTURES / "TD001" / "phonebook-forward.csv", dtype=str)
    frame = frame.drop(columns=["record_id"])
    folder = tmp_path / "p"
    folder.mkdir()
    frame.iloc[:20].to_parquet(folder / "a.parquet")
    frame.iloc[20:].to_parquet(folder / "b.parquet")
    local = telediag.scan(folder, tz=TZ)
    assert sorted(local.evidence["record_id"])[0] == "a:10"
    result = ts.scan(ts.read(spark, str(folder / "*.parquet")), tz=TZ)
    _same_scan(local, result)
    result.unpersist()


def test_an_unparseable_value_in_a_scaled_column_is_one_row_set_aside(
    spark: Any, tmp_path: Path
) -> None:
    """Review: a scaled text column with one value that is no number failed the Spark job
    (the map's type was taken from an empty table: a float); locally it is one row set
    aside. The same with layouts, where another layout keeps the column as text."""
    frame = pd.read_csv(FIXTURES / "TD001" / "phonebook-forward.csv", dtype=str)
    plain = frame.rename(columns={"charge": "charge_fen"})
    plain["charge_fen"] = "10"
    plain.loc[3, "charge_fen"] = "abc"
    plain.loc[5, "charge_fen"] = "-"
    plain.to_csv(tmp_path / "b.csv", index=False)
    scaled = tmp_path / "b.yaml"
    scaled.write_text(
        "version: 2\ncolumns:\n  charge: {source: charge_fen, values: {'-': '0'}, scale: 0.01}\n"
    )
    folder = tmp_path / "lay"
    folder.mkdir()
    base = frame.iloc[:22].copy()
    base.loc[3, "charge"] = "abc"
    base.to_csv(folder / "base.csv", index=False)
    fen = frame.iloc[22:].rename(columns={"charge": "charge_fen"})
    fen["charge_fen"] = "10"
    fen.to_csv(folder / "fen.csv", index=False)
    layouts = tmp_path / "lay.yaml"
    layouts.write_text(
        "version: 2\ncolumns:\n  charge: charge\nlayouts:\n  - name: fen\n"
        "    when: [charge_fen]\n    columns:\n      charge: {source: charge_fen, scale: 0.01}\n"
    )
    for given, cmap in ((tmp_path / "b.csv", scaled), (folder, layouts)):
        local = telediag.scan(given, tz=TZ, column_map=cmap)
        assert local.report.set_aside == {"unparseable charge": 1}
        result = ts.scan(ts.read(spark, str(given), column_map=cmap), tz=TZ, column_map=cmap)
        _same_scan(local, result)
        result.unpersist()


def test_a_relative_glob_names_files_below_the_working_directory(tmp_path: Path) -> None:
    """Review: '*.parquet' (no directory part) named its files below '/'."""
    here = Path.cwd()
    keys = [f"*.parquet{ts._SEP}file:{here}/a.parquet", f"d/*.parquet{ts._SEP}{here}/d/b.parquet"]
    assert ts._id_names(keys) == {keys[0]: "a", keys[1]: "b"}
    assert ts._glob_base("/data/*/x.parquet") == "/data"
    assert ts._glob_base("/*.parquet") == "/"


def test_nan_in_a_scaled_text_column_is_no_value_as_locally(spark: Any, tmp_path: Path) -> None:
    """Review: a number made from text travels as text, and NaN became 'nan', which an
    integer column set aside as unparseable (locally NaN is no value)."""
    import pyarrow as pa

    pq.write_table(
        pa.table(
            {
                "id": ["m1", "m2", "m3"],
                "rt": ["mms"] * 3,
                "dir": ["mo"] * 3,
                "ts": ["2008-06-12 10:00:00", "2008-06-12 10:05:00", "2008-06-12 10:10:00"],
                "a": ["13800000001"] * 3,
                "size_kb": ["1", "NaN", "2"],
            }
        ),
        tmp_path / "in.parquet",
    )
    cmap = tmp_path / "map.yaml"
    cmap.write_text(
        "version: 2\ncolumns:\n  record_id: id\n  record_type: rt\n  direction: dir\n"
        "  start_time: ts\n  msisdn: a\n  mms_size: {source: size_kb, scale: 1024}\n"
    )
    local = telediag.scan(tmp_path / "in.parquet", tz=TZ, column_map=cmap)
    assert local.report.rows_used == 3
    frame = ts.read(spark, str(tmp_path / "in.parquet"), column_map=cmap)
    got = ts.scan(frame, tz=TZ, column_map=cmap)
    _same_scan(local, got)
    got.unpersist()


def test_float_and_text_subscriber_parts_are_one_subscriber(spark: Any, tmp_path: Path) -> None:
    """Review: parts disagreeing on msisdn's type were joined as Spark's text of the
    float (1.3800001101E10), which split one subscriber in two."""
    src = pd.read_csv(FIXTURES / "TD011" / "handset-sends-flash.csv", dtype=str)
    folder = tmp_path / "in"
    folder.mkdir()
    first = src.iloc[:2].copy()
    first["msisdn"] = first["msisdn"].astype(float)
    first.to_parquet(folder / "a.parquet")
    src.iloc[2:].to_parquet(folder / "b.parquet")
    local = telediag.scan(folder, tz=TZ)
    assert local.findings["msisdn"].tolist() == ["13800001101"]
    got = ts.scan(ts.read(spark, str(folder)), tz=TZ)
    _same_scan(local, got)
    got.unpersist()
