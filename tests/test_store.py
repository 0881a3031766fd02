"""Prepared stores: the same findings as the input, appends, and one-subscriber reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import telediag
from telediag.cli import main
from telediag.errors import InputError
from telediag.store import load_manifest, prepare, subscriber_input
from tests.test_buckets import month
from tests.test_outofcore import assert_same, write_parts
from tests.test_properties import T0

from .conftest import FIXTURES


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return month(31, 800)


def test_scanning_the_store_gives_the_inputs_findings(
    tmp_path: Path, catalog: list[telediag.Rule], frame: pd.DataFrame
) -> None:
    folder = write_parts(tmp_path, frame, 3)
    store = tmp_path / "store"
    manifest = prepare([folder], store, rules=catalog, buckets=4, tz="Asia/Shanghai")
    assert manifest.buckets == 4
    assert manifest.report.rows_read == len(frame)
    whole = telediag.scan(folder, rules=catalog, tz="Asia/Shanghai")
    again = telediag.scan(store, rules=catalog)  # the store's time zone is the default
    assert_same(whole, again)
    assert {"TD001", "TD004"} <= set(again.findings["rule_id"])
    # Plain Parquet: pandas reads a bucket directory as it is.
    used = pd.read_parquet(store / "subscriber")
    assert len(used) == whole.report.rows_used


def test_appending_a_day_adds_a_part_and_rewrites_nothing(
    tmp_path: Path, catalog: list[telediag.Rule], frame: pd.DataFrame
) -> None:
    early = frame[frame["start_time"] < T0 + pd.Timedelta(days=3)]
    late = frame.drop(early.index)
    first = write_parts(tmp_path / "a", early, 2)
    second = write_parts(tmp_path / "b", late, 1)
    store = tmp_path / "store"
    prepare([first], store, rules=catalog, buckets=3)
    before = {p: p.stat().st_mtime_ns for p in store.rglob("*.parquet")}
    manifest = prepare([second], store, rules=catalog)
    assert [p["part"] for p in manifest.parts] == [0, 1]
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert manifest.report.rows_read == len(frame)
    whole = telediag.scan([first, second], rules=catalog)
    assert_same(whole, telediag.scan(store, rules=catalog))
    with pytest.raises(InputError, match="read in UTC, not Asia/Shanghai"):
        prepare([second], store, rules=catalog, tz="Asia/Shanghai")


def test_store_rows_are_sorted_with_row_group_statistics(
    tmp_path: Path, catalog: list[telediag.Rule], frame: pd.DataFrame
) -> None:
    store = tmp_path / "store"
    prepare([write_parts(tmp_path, frame, 1)], store, rules=catalog, buckets=2)
    for path in (store / "subscriber").rglob("*.parquet"):
        meta = pq.ParquetFile(path).metadata
        col = meta.schema.to_arrow_schema().get_field_index("msisdn")
        stats = [meta.row_group(i).column(col).statistics for i in range(meta.num_row_groups)]
        assert all(s is not None and s.has_min_max for s in stats)
        values = pq.read_table(path, columns=["msisdn"])["msisdn"].to_pylist()
        assert values == sorted(values)


def test_one_subscriber_is_read_with_the_rows_of_their_handsets(
    tmp_path: Path, catalog: list[telediag.Rule], frame: pd.DataFrame
) -> None:
    store = tmp_path / "store"
    prepare([write_parts(tmp_path, frame, 2)], store, rules=catalog, buckets=5)
    raw, _ = subscriber_input(store, " 13800007002 ")
    numbers = set(raw.table["msisdn"].to_pylist())
    assert "13800007002" in numbers
    assert "13800007001" in numbers  # the previous SIM in the same handset
    assert raw.table["msisdn"].to_pylist().count("13800007002") == 1


@pytest.mark.parametrize("msisdn", ["13800007002", "13800009999"])
def test_investigating_the_store_matches_the_input(
    tmp_path: Path, catalog: list[telediag.Rule], frame: pd.DataFrame, msisdn: str
) -> None:
    folder = write_parts(tmp_path, frame, 2)
    store = tmp_path / "store"
    prepare([folder], store, rules=catalog, buckets=3, tz="Asia/Shanghai")
    a = telediag.investigate(folder, msisdn, rules=catalog, tz="Asia/Shanghai")
    b = telediag.investigate(store, msisdn, rules=catalog)
    assert len(a.findings) == 1
    pd.testing.assert_frame_equal(a.findings_frame(), b.findings_frame())
    assert [r.rule_id for r in a.ruled_out] == [r.rule_id for r in b.ruled_out]


def test_cli_prepare_then_scan_and_investigate(tmp_path: Path, frame: pd.DataFrame) -> None:
    folder = write_parts(tmp_path, frame, 2)
    store = tmp_path / "store"
    assert main(["prepare", str(folder), "--out", str(store), "--buckets", "2", "-q"]) == 0
    assert load_manifest(store).buckets == 2
    out = tmp_path / "f.parquet"
    rejects = tmp_path / "r.csv"
    assert main(["scan", str(store), "--out", str(out), "--rejects", str(rejects), "-q"]) == 0
    assert set(pd.read_parquet(out)["rule_id"]) >= {"TD001", "TD004"}
    assert rejects.read_text().count("\n") == 1 + 3
    report = tmp_path / "inv.json"
    args = ["investigate", str(store), "--msisdn", "13800007002", "--out", str(report)]
    assert main(args) == 0
    data = json.loads(report.read_text())
    assert [f["rule_id"] for f in data["findings"]] == ["TD004"]


def test_prepare_refuses_a_directory_that_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    case = Path(__file__).resolve().parent.parent / "fixtures/cdr/TD001/phonebook-forward.csv"
    with pytest.raises(InputError, match="not a telediag store"):
        prepare([case], tmp_path / "other")


def test_a_failing_rule_fails_alike_in_memory_out_of_core_and_on_a_store(
    tmp_path: Path,
    catalog: list[telediag.Rule],
    frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from telediag import engine

    folder = write_parts(tmp_path, frame, 2)
    store = tmp_path / "store"
    prepare([folder], store, rules=catalog, buckets=3)
    real = engine.run_rule

    def flaky(rule, records, *args, **kwargs):  # type: ignore[no-untyped-def]
        if rule.id == "TD001" and "13800009999" in records.msisdns.to_pylist():
            raise RuntimeError("boom")
        return real(rule, records, *args, **kwargs)

    monkeypatch.setattr(engine, "run_rule", flaky)
    whole = telediag.scan(folder, rules=catalog)
    assert [str(e) for e in whole.errors] == ["TD001: RuntimeError: boom"]
    assert "TD001" not in set(whole.findings["rule_id"])
    assert "TD004" in set(whole.findings["rule_id"])
    assert_same(whole, telediag.scan(folder, rules=catalog, buckets=4, workers=2))
    assert_same(whole, telediag.scan(store, rules=catalog))


def test_a_row_set_aside_is_not_evidence_in_a_handset_bucket(
    tmp_path: Path, catalog: list[telediag.Rule], frame: pd.DataFrame
) -> None:
    """Review i11 #1: the re-sent MMS breaks the contract in a column TD004 does not read."""
    broken = frame.copy()
    broken.loc[broken["record_id"] == "swap-c", "bytes_up"] = -1
    folder = write_parts(tmp_path, broken, 2)
    store = tmp_path / "store"
    prepare([folder], store, rules=catalog, buckets=3)
    whole = telediag.scan(folder, rules=catalog)
    assert "TD004" not in set(whole.findings["rule_id"])
    assert_same(whole, telediag.scan(folder, rules=catalog, buckets=3))
    assert_same(whole, telediag.scan(store, rules=catalog))


def test_a_store_refuses_another_time_zone(
    tmp_path: Path, catalog: list[telediag.Rule], frame: pd.DataFrame
) -> None:
    """Review i11 #4."""
    store = tmp_path / "store"
    prepare([write_parts(tmp_path, frame, 1)], store, rules=catalog, buckets=2, tz="UTC")
    with pytest.raises(InputError, match="read in UTC, not Asia/Shanghai"):
        telediag.scan(store, rules=catalog, tz="Asia/Shanghai")
    with pytest.raises(InputError, match="read in UTC, not Asia/Shanghai"):
        telediag.investigate(store, "13800007002", rules=catalog, tz="Asia/Shanghai")


@pytest.mark.parametrize("msisdn", ["13800000001", "13800007002"])
def test_investigating_the_store_counts_the_rows_set_aside_as_the_input_does(
    tmp_path: Path, catalog: list[telediag.Rule], frame: pd.DataFrame, msisdn: str
) -> None:
    """Review i11 #5: the store keeps set-aside rows apart; an investigation from it still
    reports the subscriber's (and their handsets') rows set aside, as one from the input."""
    broken = frame.copy()
    # A broken row of the second subscriber, on the handset of the SIM swap: followed
    # through the handset from 13800007001's investigation.
    extra = broken[broken["record_id"] == "swap-c"].copy()
    extra["record_id"], extra["record_type"] = "swap-d", "telex"
    broken = pd.concat([broken, extra], ignore_index=True)
    folder = write_parts(tmp_path, broken, 2)
    store = tmp_path / "store"
    prepare([folder], store, rules=catalog, buckets=3, tz="Asia/Shanghai")
    a = telediag.investigate(folder, msisdn, rules=catalog, tz="Asia/Shanghai")
    b = telediag.investigate(store, msisdn, rules=catalog)
    keys = ("rows_read", "rows_used", "rows_set_aside", "set_aside")
    assert {k: a.input[k] for k in keys} == {k: b.input[k] for k in keys}
    assert a.input["rows_set_aside"] >= 1
    assert a.input["rows_read"] == a.input["rows_used"] + a.input["rows_set_aside"]


def test_a_store_warns_of_record_ids_repeated_across_parts_and_buckets(
    tmp_path: Path, catalog: list[telediag.Rule], frame: pd.DataFrame
) -> None:
    """A record id given twice, once in the month and once in a day added later, to two
    subscribers (two buckets): the store's report warns as a scan of both inputs does."""
    month_dir = write_parts(tmp_path, frame, 2)
    day = frame.iloc[:3].copy()
    day["msisdn"] = "13877770000"
    day["record_id"] = ["late-1", "late-2", str(frame["record_id"].iloc[5])]
    day_dir = tmp_path / "day"
    day_dir.mkdir()
    day.to_parquet(day_dir / "day.parquet", index=False)
    store = tmp_path / "store"
    prepare([month_dir], store, rules=catalog, buckets=4)
    assert load_manifest(store).report.warnings == []
    prepare([day_dir], store, rules=catalog)
    whole = telediag.scan([month_dir, day_dir], rules=catalog)
    assert whole.report.warnings and "1 id(s)" in whole.report.warnings[0]
    assert telediag.scan(store, rules=catalog).report.warnings == whole.report.warnings
    assert_same(whole, telediag.scan([month_dir, day_dir], rules=catalog, buckets=3))


def test_an_empty_store_writes_the_rejects_columns_of_its_input(
    tmp_path: Path, catalog: list[telediag.Rule], frame: pd.DataFrame
) -> None:
    """Review i11 #6b: no row set aside still gives the input's columns, as text."""
    clean = frame[frame["record_id"].str.startswith("bad-") == False]  # noqa: E712
    folder = write_parts(tmp_path, clean.reset_index(drop=True), 1)
    store = tmp_path / "store"
    prepare([folder], store, rules=catalog, buckets=2)
    whole = telediag.scan(folder, rules=catalog)
    stored = telediag.scan(store, rules=catalog)
    assert whole.rejects().num_rows == stored.rejects().num_rows == 0
    assert whole.rejects().schema == stored.rejects().schema


def test_a_full_disk_ends_in_one_line_and_leaves_nothing_behind(
    tmp_path: Path,
    catalog: list[telediag.Rule],
    frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review i11 #9: a full disk while spilling or writing a store."""
    import errno

    from telediag import outofcore

    folder = write_parts(tmp_path, frame, 2)
    spill = tmp_path / "spill"
    spill.mkdir()

    def full(self: object, table: object, which: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outofcore._Writers, "write", full)
    with pytest.raises(InputError, match="no space left for spill files"):
        telediag.scan(folder, rules=catalog, buckets=2, spill_dir=spill)
    assert list(spill.iterdir()) == []
    store = tmp_path / "store"
    with pytest.raises(InputError, match="no space left"):
        prepare([folder], store, rules=catalog, buckets=2, spill_dir=spill)
    assert not store.exists() and list(spill.iterdir()) == []
    assert main(["prepare", str(folder), "--out", str(store), "-q"]) == 2
    assert not store.exists()


def test_prepare_refuses_a_file_as_the_store(tmp_path: Path, frame: pd.DataFrame) -> None:
    folder = write_parts(tmp_path, frame, 1)
    target = tmp_path / "a.parquet"
    target.write_bytes(b"x")
    with pytest.raises(InputError, match="exists and is not a directory"):
        prepare([folder], target)


def test_a_store_scan_keeps_to_the_budget(
    tmp_path: Path,
    catalog: list[telediag.Rule],
    frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Buckets sized for a larger budget: under a small one fewer run at once and each
    is scanned in parts (whole subscribers, whole handsets), with the same findings."""
    from telediag import store as store_mod
    from telediag.store import store_plan

    mb = 2**20
    assert store_plan(10_000_000, 4, 64 * 2**30, 2) == (2, 1)
    assert store_plan(10_000_000, 4, 3 * 2**30, 2) == (1, 1)
    assert store_plan(10_000_000, 4, 2 * 2**30, 2) == (1, 2)
    at_once, parts = store_plan(10_000_000, 4, 600 * mb, 2)
    assert at_once == 1 and parts > 2
    folder = write_parts(tmp_path, frame, 2)
    store = tmp_path / "store"
    prepare([folder], store, rules=catalog, buckets=2, tz="Asia/Shanghai")
    whole = telediag.scan(folder, rules=catalog, tz="Asia/Shanghai")
    sizes: list[int] = []
    real = store_mod.scan_bucket

    def recorded(table, *args, **kwargs):  # type: ignore[no-untyped-def]
        sizes.append(table.num_rows)
        return real(table, *args, **kwargs)

    monkeypatch.setattr(store_mod, "scan_bucket", recorded)
    monkeypatch.setattr(store_mod, "BYTES_PER_ROW", 2**20)  # each row "needs" 1 MB
    small = telediag.scan(store, rules=catalog, memory="400MB", workers=2)
    assert len(sizes) > 4  # 2 subscriber and up to 2 handset buckets, each in parts
    assert_same(whole, small)


def test_investigating_a_store_names_the_layouts_and_the_months_disagreements(
    tmp_path: Path, catalog: list[telediag.Rule]
) -> None:
    """The store keeps which layout each file was read with, and how many rows of the
    month had disagreeing signals: an investigation from it reports both (the count as
    the month's, since the store keeps no per-row note of it)."""
    from .conftest import ROOT

    maps = ROOT / "column-maps"
    files = sorted((maps / "samples" / "vendor-moc-mtc").glob("*.csv"))
    cmap = maps / "vendor-moc-mtc.yaml"
    store = tmp_path / "store"
    prepare(files, store, rules=catalog, column_map=cmap, tz="Europe/London")
    a = telediag.investigate(files, "13800000701", column_map=cmap, tz="Europe/London")
    b = telediag.investigate(store, "13800000701")
    assert a.input["layouts"] == {str(files[0]): "outgoing", str(files[1]): "incoming"}
    assert b.input["layouts"] == a.input["layouts"]
    assert a.input["disagreements"] == {"direction": 1}
    assert not b.input.get("disagreements")
    assert b.input["warnings"] == [
        "the column map's signals disagreed on 1 row(s) of the month for direction "
        "(counted when the store was prepared, not per subscriber)"
    ]


def test_buckets_written_in_parallel_give_the_same_store_and_a_failure_leaves_it_as_it_was(
    tmp_path: Path,
    catalog: list[telediag.Rule],
    frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """prepare writes its buckets in threads: the store scans as one written bucket by
    bucket, and when one bucket's file cannot be written, the files the other buckets
    wrote meanwhile are removed with it (the store keeps its earlier parts only)."""
    import errno
    import threading
    import time

    from telediag import store as store_mod

    early = frame[frame["start_time"] < T0 + pd.Timedelta(days=3)]
    first = write_parts(tmp_path / "a", early, 2)
    second = write_parts(tmp_path / "b", frame.drop(early.index), 1)
    one, two = tmp_path / "one", tmp_path / "two"
    prepare([first], one, rules=catalog, buckets=5, workers=1)
    prepare([first], two, rules=catalog, buckets=5, workers=2)
    assert_same(telediag.scan(one, rules=catalog), telediag.scan(two, rules=catalog))
    before = sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    manifest = (two / "manifest.json").read_text()

    real = store_mod._write
    calls: list[int] = []
    lock = threading.Lock()

    def failing(table: object, path: Path) -> None:
        if "ids" in path.parts:  # record ids are written before the buckets
            real(table, path)  # type: ignore[arg-type]
            return
        with lock:
            calls.append(1)
            n = len(calls)
        if n == 4:
            time.sleep(0.3)  # the other thread writes its bucket meanwhile
            raise OSError(errno.ENOSPC, "No space left on device")
        real(table, path)  # type: ignore[arg-type]

    monkeypatch.setattr(store_mod, "_write", failing)
    # The store's disk is full, not the spill's: --spill-dir would not help.
    with pytest.raises(InputError, match="no space left to write the store") as err:
        prepare([second], two, rules=catalog, workers=2)
    assert "spill" not in str(err.value)
    assert len(calls) >= 4
    assert sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file()) == before
    assert (two / "manifest.json").read_text() == manifest


@pytest.mark.parametrize("writer", ["bucket", "ids"])
def test_a_second_ctrl_c_while_writers_finish_leaves_the_store_as_it_was(
    tmp_path: Path,
    catalog: list[telediag.Rule],
    frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    writer: str,
) -> None:
    """Review: after a first Ctrl-C, prepare waits for the files being written; a second
    one cut that wait short, the clean-up ran, and a file written afterwards stayed in
    the store. A bucket's file was picked up by the next part's manifest entry; an ids
    file (id buckets are checked in threads, each writing its ids into the store) kept a
    new store from being made there, and made a later day see repeats that were not
    there."""
    import signal
    import threading
    import time

    from telediag import store as store_mod

    early = frame[frame["start_time"] < T0 + pd.Timedelta(days=3)]
    first = write_parts(tmp_path / "a", early, 2)
    second = write_parts(tmp_path / "b", frame.drop(early.index), 1)
    store = tmp_path / "store"
    prepare([first], store, rules=catalog, buckets=5, workers=1)
    before = sorted(p.relative_to(store) for p in store.rglob("*") if p.is_file())
    manifest = (store / "manifest.json").read_text()

    real = store_mod._write
    main_thread = threading.main_thread().ident
    calls: list[int] = []
    lock = threading.Lock()
    writing = threading.Event()

    def interrupted(table: object, path: Path) -> None:
        if ("ids" in path.parts) != (writer == "ids"):  # not the writers under test
            real(table, path)  # type: ignore[arg-type]
            return
        with lock:
            calls.append(1)
            n = len(calls)
        if n == 1:  # the first Ctrl-C, as the main thread sees it, once another
            writing.wait(5)  # file is being written
            raise KeyboardInterrupt
        writing.set()
        time.sleep(0.3)  # the main thread now waits for this file
        assert main_thread is not None
        signal.pthread_kill(main_thread, signal.SIGINT)  # the second Ctrl-C
        time.sleep(0.3)
        real(table, path)  # type: ignore[arg-type]

    monkeypatch.setattr(store_mod, "_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare([second], store, rules=catalog, workers=2)
    time.sleep(0.8)  # a writer left running would write by now
    assert sorted(p.relative_to(store) for p in store.rglob("*") if p.is_file()) == before
    assert (store / "manifest.json").read_text() == manifest


def test_a_month_with_no_rows_prepares_an_empty_store(tmp_path: Path) -> None:
    """Review: prepare of a CSV with a header and no rows failed on writing the manifest
    into a store directory no bucket had made."""
    from telediag.store import prepare as prep

    frame = pd.read_csv(FIXTURES / "TD004" / "resent-under-new-sim.csv", dtype=str)
    path = tmp_path / "empty.csv"
    frame.iloc[:0].to_csv(path, index=False)
    store = tmp_path / "store"
    prep([str(path)], store, tz="UTC")
    whole = telediag.scan(str(path), tz="UTC")
    scanned = telediag.scan(str(store))
    assert len(scanned.findings) == 0 and scanned.report.rows_read == 0
    assert scanned.rejects().schema == whole.rejects().schema


@pytest.mark.parametrize("damaged", ["ids", "subscriber", "handset", "rejects"])
def test_a_damaged_store_file_is_one_line(
    tmp_path: Path, catalog: list[telediag.Rule], frame: pd.DataFrame, damaged: str
) -> None:
    """Review: a store file that is not Parquet any more gave a raw ArrowInvalid
    traceback when a day was added to the store; scanning and investigating it did
    too. Each now names the file."""
    from telediag.buckets import bucket_of

    early = frame[frame["start_time"] < T0 + pd.Timedelta(days=3)].copy()
    early.loc[early.index[0], "start_time"] = pd.NaT  # set aside: the store has rejects
    first = write_parts(tmp_path / "a", early, 2)
    second = write_parts(tmp_path / "b", frame.drop(early.index), 1)
    store = tmp_path / "store"
    prepare([first], store, rules=catalog, buckets=3, workers=2)
    victim = sorted((store / damaged).rglob("*.parquet"))[0]
    victim.write_bytes(b"not parquet")
    message = rf"{re.escape(str(victim))}: cannot read this file of the store"
    if damaged == "ids":
        before = sorted(p for p in store.rglob("*") if p.is_file())
        with pytest.raises(InputError, match=message):
            prepare([second], store, rules=catalog, workers=2)
        assert sorted(p for p in store.rglob("*") if p.is_file()) == before  # nothing added
        return
    with pytest.raises(InputError, match=message):
        telediag.scan(store, rules=catalog)
    if damaged == "handset":
        return
    numbers = early["msisdn"].dropna().astype(str).unique()
    # A subscriber of the damaged bucket (the first one).
    number = next(n for n in numbers if bucket_of(pa.array([n]), 3)[0] == 0)
    with pytest.raises(InputError, match=message):
        telediag.investigate(store, msisdn=number)
