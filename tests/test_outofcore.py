"""Out-of-core scans: spilled buckets give the in-memory findings, and leave no files."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import telediag
from telediag.cli import main
from telediag.errors import InputError, TelediagError
from telediag.outofcore import parse_size, plan_buckets
from tests.test_buckets import month, pieces
from tests.test_properties import T0, to_table

from .conftest import FIXTURES


def write_parts(tmp_path: Path, frame: pd.DataFrame, files: int, csv: bool = False) -> Path:
    folder = tmp_path / "month"
    folder.mkdir(parents=True)
    for i, table in enumerate(pieces(frame, 11, files)):
        if csv:
            pacsv.write_csv(table, folder / f"part-{i}.csv")
        else:
            pq.write_table(table, folder / f"part-{i}.parquet", row_group_size=50)
    return folder


def assert_same(a: telediag.ScanResult, b: telediag.ScanResult) -> None:
    pd.testing.assert_frame_equal(a.findings, b.findings)
    pd.testing.assert_frame_equal(a.evidence, b.evidence)
    assert a.report.to_dict() == b.report.to_dict()
    assert [str(e) for e in a.errors] == [str(e) for e in b.errors]
    assert a.rejects().schema == b.rejects().schema
    assert a.rejects().to_pylist() == b.rejects().to_pylist()


@pytest.mark.parametrize(
    ("files", "n_buckets", "csv"), [(1, 1, False), (3, 4, False), (2, 3, True)]
)
def test_spilled_buckets_give_the_in_memory_findings(
    tmp_path: Path, catalog: list[telediag.Rule], files: int, n_buckets: int, csv: bool
) -> None:
    folder = write_parts(tmp_path, month(21, 600), files, csv)
    spill = tmp_path / "spill"
    spill.mkdir()
    whole = telediag.scan(folder, rules=catalog)
    assert "partition" not in whole.timings
    parts = telediag.scan(folder, rules=catalog, buckets=n_buckets, spill_dir=spill, workers=2)
    assert "partition" in parts.timings
    assert_same(whole, parts)
    assert whole.report.rows_read == 600 + 40 + 3 + 3 + 3
    assert whole.rejects().num_rows == 3
    assert list(spill.iterdir()) == []


def test_a_small_budget_scans_out_of_core(tmp_path: Path, catalog: list[telediag.Rule]) -> None:
    folder = write_parts(tmp_path, month(4, 300), 2)
    small = telediag.scan(folder, rules=catalog, memory="1MB", spill_dir=tmp_path)
    assert "partition" in small.timings
    assert_same(telediag.scan(folder, rules=catalog), small)


def test_column_map_applies_to_every_spilled_batch(
    tmp_path: Path, catalog: list[telediag.Rule]
) -> None:
    frame = month(8, 300).rename(columns={"msisdn": "subscriber", "imei": "handset"})
    folder = write_parts(tmp_path, frame, 2, csv=True)
    cmap = tmp_path / "map.yaml"
    cmap.write_text("columns:\n  msisdn: subscriber\n  imei: handset\n")
    whole = telediag.scan(folder, rules=catalog, column_map=cmap)
    assert "TD004" in set(whole.findings["rule_id"])
    assert_same(whole, telediag.scan(folder, rules=catalog, column_map=cmap, buckets=3))


def test_spill_files_are_removed_on_error(tmp_path: Path, catalog: list[telediag.Rule]) -> None:
    folder = write_parts(tmp_path, month(2, 100), 2)
    pq.write_table(pa.table({"msisdn": ["1"]}), folder / "part-9.parquet")
    spill = tmp_path / "spill"
    spill.mkdir()
    with pytest.raises(InputError, match=r"part-9.parquet: missing required column"):
        telediag.scan(folder, rules=catalog, buckets=2, spill_dir=spill)
    assert list(spill.iterdir()) == []


def test_spill_files_are_removed_on_ctrl_c(
    tmp_path: Path, catalog: list[telediag.Rule], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_parts(tmp_path, month(2, 100), 2)
    spill = tmp_path / "spill"
    spill.mkdir()
    seen: list[int] = []

    def interrupted(*args: object, **kwargs: object) -> None:
        seen.append(len(list(next(spill.iterdir()).iterdir())))
        raise KeyboardInterrupt

    import telediag.outofcore as ooc

    monkeypatch.setattr(ooc, "scan_bucket", interrupted)
    with pytest.raises(KeyboardInterrupt):
        telediag.scan(folder, rules=catalog, buckets=3, spill_dir=spill, workers=1)
    assert seen and seen[0] > 0  # the spill files existed while buckets were scanned
    assert list(spill.iterdir()) == []


def test_cli_memory_budget_gives_the_same_output(tmp_path: Path) -> None:
    folder = write_parts(tmp_path, month(6, 400), 3)
    outs = []
    for extra in ([], ["--memory", "1MB", "--workers", "2", "--spill-dir", str(tmp_path)]):
        out = tmp_path / f"f{len(outs)}.parquet"
        rejects = tmp_path / f"r{len(outs)}.csv"
        code = main(
            ["scan", str(folder), "--out", str(out), "--rejects", str(rejects), "-q", *extra]
        )
        assert code == 0
        outs.append((pd.read_parquet(out), rejects.read_text()))
    pd.testing.assert_frame_equal(outs[0][0], outs[1][0])
    assert outs[0][1] == outs[1][1]
    assert len(outs[0][0]) > 0


def test_memory_sizes_and_bucket_plans() -> None:
    assert parse_size("2GB") == 2 * 2**30
    assert parse_size("512 MiB") == 512 * 2**20
    assert parse_size("1000") == 1000
    with pytest.raises(TelediagError, match="cannot read memory size"):
        parse_size("lots")
    assert plan_buckets(1000, 2**40, 4) == 4
    more = plan_buckets(100_000_000, 3 * 2**30, 2)
    assert more > plan_buckets(10_000_000, 3 * 2**30, 2) > 2


def test_bad_memory_option_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    table_path = Path(__file__).resolve().parent.parent / "fixtures/cdr/TD001/phonebook-forward.csv"
    code = main(["scan", str(table_path), "--out", "/tmp/x.parquet", "--memory", "lots"])
    assert code == 2
    assert "cannot read memory size 'lots'" in capsys.readouterr().err


def test_tables_in_memory_can_be_bucketed(catalog: list[telediag.Rule]) -> None:
    table = to_table(month(9, 200))
    assert_same(telediag.scan(table, rules=catalog), telediag.scan(table, rules=catalog, buckets=2))


def test_progress_bar_shows_buckets_rows_and_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_parts(tmp_path, month(3, 200), 2)
    out = tmp_path / "f.parquet"
    args = ["scan", str(folder), "--out", str(out), "-q", "--progress", "--buckets", "3"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "partitioning" in err and "scanning buckets" in err
    assert re.search(r"\b(\d+)/\1 buckets", err)
    assert re.search(r"[\d,]+/[\d,]+ rows .* rows/s .* left", err)


def test_an_unusable_spill_directory_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review i11 #9."""
    folder = write_parts(tmp_path, month(2, 50), 1)
    args = ["scan", str(folder), "--out", str(tmp_path / "f.parquet"), "-q", "--buckets", "2"]
    assert main([*args, "--spill-dir", str(tmp_path / "missing")]) == 2
    assert "cannot make a spill directory" in capsys.readouterr().err


def _late_csv(path: Path) -> None:
    """Five records of a new subscriber as a CSV day, one of them of an unknown type."""
    path.write_text(
        "record_id,record_type,direction,start_time,msisdn,charge\n"
        + "".join(
            f"late-{i},{'fax' if i == 2 else 'sms'},mo,2008-07-20 10:0{i}:00,13812340000,0.1\n"
            for i in range(5)
        )
    )


@pytest.mark.parametrize("n_buckets", [2, 4])
def test_inputs_whose_types_differ_give_the_in_memory_rejects(
    tmp_path: Path, catalog: list[telediag.Rule], n_buckets: int
) -> None:
    """Review i11 #8: typed Parquet plus a CSV day, and a text column in one file."""
    folder = write_parts(tmp_path, month(7, 300), 2)
    _late_csv(folder / "late.csv")
    text = month(8, 50)
    text["msisdn"] = "13899990000"
    text["sms_length"] = text["sms_length"].map(lambda v: None if v != v else f"{v:g}")
    text.loc[text.index[:2], "record_type"] = "telex"
    pq.write_table(pa.Table.from_pandas(text, preserve_index=False), folder / "text.parquet")
    whole = telediag.scan(folder, rules=catalog)
    assert whole.rejects().num_rows >= 3 + 1 + 2
    assert_same(whole, telediag.scan(folder, rules=catalog, buckets=n_buckets))


def test_rows_set_aside_with_one_record_id_keep_the_input_order(
    tmp_path: Path, catalog: list[telediag.Rule]
) -> None:
    """Review i11 #6a: repeated record ids of rows set aside come out in input order."""
    frame = month(9, 200)
    dup = pd.DataFrame(
        {
            "record_id": "dup",
            "record_type": "fax",
            "direction": "mo",
            "start_time": frame["start_time"].iloc[0],
            "msisdn": ["13800000011", "13800000022", "13800000033", "13800000044"],
        }
    )
    folder = write_parts(tmp_path, pd.concat([frame, dup], ignore_index=True), 1)
    whole = telediag.scan(folder, rules=catalog)
    for n in (2, 4, 7):
        assert_same(whole, telediag.scan(folder, rules=catalog, buckets=n))


def test_blank_record_ids_get_the_same_generated_ids_in_every_mode(
    tmp_path: Path, catalog: list[telediag.Rule]
) -> None:
    """A blank record id is no id: the row gets ``<file>:<row>`` whether the scan is whole
    or in buckets (buckets named it ``bucket:<row>``), as evidence and as a reject."""
    frame = month(12, 300)
    frame.loc[frame.index[::7], "record_id"] = "  "
    frame.loc[frame.index[::11], "record_id"] = ""
    folder = write_parts(tmp_path, frame, 1)
    whole = telediag.scan(folder, rules=catalog)
    assert any(rid.startswith("part-0:") for rid in whole.evidence["record_id"])
    assert not any(rid.startswith("bucket") for rid in whole.rejects()["record_id"].to_pylist())
    for n in (2, 5):
        assert_same(whole, telediag.scan(folder, rules=catalog, buckets=n))


def test_a_gzipped_csv_is_sized_by_its_text_not_its_compressed_bytes(
    tmp_path: Path, catalog: list[telediag.Rule]
) -> None:
    """A .csv.gz holds several times its size in text: sized from the compressed bytes
    it looked small enough to scan in memory under any budget."""
    import gzip

    from telediag.outofcore import estimate_rows, fits_in_memory

    plain = tmp_path / "m.csv"
    pacsv.write_csv(to_table(month(8, 3000)), plain)
    packed = tmp_path / "m.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert packed.stat().st_size * 3 < plain.stat().st_size
    assert estimate_rows([packed]) == estimate_rows([plain])
    budget = 300 * 2**20 + estimate_rows([plain]) * 500 - 1
    assert not fits_in_memory(estimate_rows([packed]), budget)
    small = telediag.scan(packed, rules=catalog, memory=budget, spill_dir=tmp_path)
    assert "partition" in small.timings
    assert_same(telediag.scan(packed, rules=catalog, memory="4GB"), small)


def test_empty_buckets_run_no_rules(
    tmp_path: Path, catalog: list[telediag.Rule], monkeypatch: pytest.MonkeyPatch
) -> None:
    """More buckets than subscribers: the empty ones cost no catalog run, and the
    result is still the one-piece scan's."""
    from telediag import buckets as buckets_mod

    folder = write_parts(tmp_path, month(5, 200), 2)
    whole = telediag.scan(folder, rules=catalog)
    calls: list[int] = []
    real = buckets_mod.run_catalog

    def counted(records, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(records))
        return real(records, *args, **kwargs)

    monkeypatch.setattr(buckets_mod, "run_catalog", counted)
    parts = telediag.scan(folder, rules=catalog, buckets=60, spill_dir=tmp_path)
    assert_same(whole, parts)
    assert calls and min(calls) > 0


def test_the_spill_batches_shrink_with_the_budget(
    tmp_path: Path, catalog: list[telediag.Rule], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spill pass holds a few batches at once: under a small budget they are small
    (a fixed 512k-row batch alone took ~450 MB whatever --memory said)."""
    from telediag import outofcore

    assert outofcore.spill_batch_rows(2 * 2**30) == outofcore.BATCH_ROWS
    sizes = [outofcore.spill_batch_rows(m * 2**20) for m in (1, 256, 400, 600, 800, 1024)]
    assert sizes == sorted(sizes) and sizes[0] == outofcore.MIN_BATCH_ROWS
    assert sizes[3] * outofcore.SPILL_BYTES_PER_ROW <= 300 * 2**20
    seen: list[int] = []
    real = outofcore._batches

    def recorded(item, wanted, cmap, rows=outofcore.BATCH_ROWS):  # type: ignore[no-untyped-def]
        seen.append(rows)
        return real(item, wanted, cmap, rows)

    monkeypatch.setattr(outofcore, "_batches", recorded)
    monkeypatch.setattr(outofcore, "MIN_BATCH_ROWS", 40)
    folder = write_parts(tmp_path, month(6, 300), 2)
    small = telediag.scan(folder, rules=catalog, memory="1MB", spill_dir=tmp_path)
    assert seen == [40, 40]
    assert_same(telediag.scan(folder, rules=catalog), small)


def test_a_budget_below_the_floor_is_said_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The interpreter and one batch take ~450 MB whatever --memory says: a smaller
    budget is warned about on stderr, and the scan still runs out of core."""
    folder = write_parts(tmp_path, month(7, 200), 2)
    out = tmp_path / "f.parquet"
    assert main(["scan", str(folder), "--out", str(out), "--memory", "256MB", "-q"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: --memory 256MB is below the 512MB") == 1
    assert out.exists()
    assert main(["scan", str(folder), "--out", str(out), "--memory", "2GB", "-q"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_gzip_of_several_members_is_sized_by_the_usual_ratio(tmp_path: Path) -> None:
    """Only the last member's size is in the trailer: a small last member must not make
    a large file look small, nor stand for a wrap-around past 4 GiB."""
    import gzip

    from telediag.outofcore import GZIP_RATIO, text_bytes

    text = b"".join(b"r%06d,sms,mo,2008-07-01T00:00:00Z,13800000001\n" % i for i in range(20000))
    path = tmp_path / "two.csv.gz"
    path.write_bytes(gzip.compress(text) + gzip.compress(b"last,row\n"))
    assert text_bytes(path) == path.stat().st_size * GZIP_RATIO
    one = tmp_path / "one.csv.gz"
    one.write_bytes(gzip.compress(text))
    assert text_bytes(one) == len(text)


def test_an_imei_column_that_is_not_text_is_named_alike_out_of_core(tmp_path: Path) -> None:
    path = tmp_path / "m.parquet"
    pq.write_table(
        pa.table(
            {
                "record_type": ["sms"],
                "direction": ["mo"],
                "start_time": ["2008-07-01T00:00:00Z"],
                "msisdn": ["13800000001"],
                "imei": pa.array([b"\xff\xfe"], pa.binary()),
            }
        ),
        path,
    )
    messages = []
    for kwargs in ({}, {"buckets": 2, "spill_dir": tmp_path}):
        with pytest.raises(InputError) as caught:
            telediag.scan(path, **kwargs)  # type: ignore[arg-type]
        messages.append(str(caught.value))
    assert messages[0] == messages[1] == f"{path}: column 'imei': not UTF-8 text (b'\\xff\\xfe')"


@pytest.mark.parametrize("column", ["bytes_down", "duration_s"])
def test_handset_buckets_leave_out_the_rows_set_aside_by_columns_they_do_not_read(
    tmp_path: Path, column: str
) -> None:
    """Handset buckets get only the columns of the handset rules (TD004); a row set
    aside for a value in another column must still be left out there, as in memory."""
    import pandas as pd

    frame = pd.read_csv(FIXTURES / "TD004" / "resent-under-new-sim.csv", dtype=str)
    whole = telediag.scan(frame, tz="Asia/Shanghai")
    assert len(whole.findings) == 1
    evidence = set(whole.evidence["record_id"])
    # Break one evidence row in a column TD004 does not read.
    frame[column] = frame.get(column, pd.Series([None] * len(frame), dtype=object))
    row = frame.index[frame["record_id"].isin(evidence)][0]
    frame.loc[row, column] = "not a number"
    path = tmp_path / "month.csv"
    frame.to_csv(path, index=False)
    memory = telediag.scan(path, tz="Asia/Shanghai")
    assert memory.report.set_aside == {f"unparseable {column}": 1}
    for buckets in (1, 3):
        split = telediag.scan(path, tz="Asia/Shanghai", buckets=buckets)
        assert split.report.set_aside == memory.report.set_aside
        assert split.findings["finding_id"].tolist() == memory.findings["finding_id"].tolist()
        pd.testing.assert_frame_equal(
            split.evidence.reset_index(drop=True), memory.evidence.reset_index(drop=True)
        )


def test_many_buckets_and_a_large_budget_read_csv_in_blocks_arrow_takes(tmp_path: Path) -> None:
    """Review: batches grown for 600 buckets asked the CSV reader for a block beyond
    its 32-bit size (a raw OverflowError)."""
    src = FIXTURES / "TD004" / "resent-under-new-sim.csv"
    whole = telediag.scan(src, tz="Asia/Shanghai")
    split = telediag.scan(src, tz="Asia/Shanghai", buckets=600, memory="20GB")
    assert split.findings["finding_id"].tolist() == whole.findings["finding_id"].tolist()


def _gathered_out_of_core(
    path: Path,
    memory: telediag.ScanResult,
    monkeypatch: pytest.MonkeyPatch,
    buckets: int,
) -> tuple[telediag.ScanResult, pa.Table]:
    """``path`` scanned out of core in ``buckets`` buckets, checked to give the findings
    and evidence of ``memory`` (its one-piece scan), and the rows it handed to handset
    buckets, as it handed them."""
    from telediag import outofcore

    handed: list[pa.Table] = []
    real = outofcore.scan_bucket

    def recorded(table, rules, settings, *, key, **kw):  # type: ignore[no-untyped-def]
        if key == "handset":
            handed.append(table)
        return real(table, rules, settings, key=key, **kw)

    monkeypatch.setattr(outofcore, "scan_bucket", recorded)
    split = telediag.scan(path, tz="Asia/Shanghai", buckets=buckets, memory="1GB")
    pd.testing.assert_frame_equal(split.findings, memory.findings)
    pd.testing.assert_frame_equal(split.evidence, memory.evidence)
    return split, pa.concat_tables(handed)


def _handset(k: int) -> str:
    """The IMEI of copy ``k`` of TD004's fixture (:func:`_td004_copies`)."""
    return f"352014{k:08d}1"


def _td004_copies(
    copies: int,
    imei: Callable[[int], str] = _handset,
    edit: Callable[[int, pd.DataFrame], pd.DataFrame] | None = None,
    frame: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """TD004's fixture (or ``frame``) repeated ``copies`` times: copy ``k``, changed
    first by ``edit(k, copy)`` if given, on handset ``imei(k)``, with record ids and
    subscribers of its own."""
    if frame is None:
        frame = pd.read_csv(FIXTURES / "TD004" / "resent-under-new-sim.csv", dtype=str)
    parts = []
    for k in range(copies):
        part = frame.copy() if edit is None else edit(k, frame.copy())
        part["record_id"] = [f"{k}-{r}" for r in part["record_id"]]
        part["imei"] = imei(k)
        part["msisdn"] = [f"1{k:04d}{m[-6:]}" for m in part["msisdn"]]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _went_out_on_odd(k: int, part: pd.DataFrame) -> pd.DataFrame:
    """Odd copies: the MMS went out the first time (nothing failed on the handset)."""
    if k % 2:
        part["status"] = part["status"].replace("failed", "ok")
    return part


def test_handset_buckets_gather_only_the_used_rows_of_handsets_a_rule_may_follow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handset buckets are gathered after the subscriber buckets, from their spill files:
    only the handsets where TD004 may find something (a failed MMS submit, and MMS from
    two subscribers), and
    only the rows their subscriber buckets used. A row set aside there (an unreadable
    byte count, a column the handset rules do not read) would move the new SIM's arrival
    a day earlier and lose the finding if it were gathered."""

    frame = pd.read_csv(FIXTURES / "TD004" / "resent-under-new-sim.csv", dtype=str)
    early = frame.iloc[[2]].copy()  # the new SIM on the handset the day before, unreadable
    early["record_id"] = "c0"
    early["start_time"] = "2008-06-17 09:00:00"
    early["bytes_down"] = "bad"
    frame = pd.concat([frame, early], ignore_index=True)
    # 20 handsets with the failed MMS, 20 where it went out.
    month = _td004_copies(40, edit=_went_out_on_odd, frame=frame)
    path = tmp_path / "month.csv"
    month.to_csv(path, index=False)
    memory = telediag.scan(path, tz="Asia/Shanghai")
    assert memory.report.set_aside == {"unparseable bytes_down": 40}
    assert (memory.findings["rule_id"] == "TD004").sum() == 20
    _, gathered = _gathered_out_of_core(path, memory, monkeypatch, buckets=8)
    failed_on = {_handset(k) for k in range(0, 40, 2)}
    assert set(gathered["imei"].to_pylist()) == failed_on
    assert gathered.num_rows == 20 * 5  # every used row of those handsets, once
    assert not any(r.endswith("-c0") for r in gathered["record_id"].to_pylist())


def test_handsets_with_one_mms_sender_are_not_gathered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TD004 needs a failed MMS submit on the handset and MMS submits there from two
    subscribers. Subscriber buckets count, per handset, the subscribers that sent MMS
    from it and the failures, and the counts of all buckets are added up before the
    handsets are chosen: a handset where only the old SIM sent MMS (its failure stayed
    in the outbox, no SIM came after, or the next one only made calls) is not gathered,
    whichever buckets its subscribers fell in."""

    def one_sender(k: int, part: pd.DataFrame) -> pd.DataFrame:
        if 20 <= k < 40:  # the old SIM alone
            return part[part["msisdn"] == "13800000401"]
        if k >= 40:  # the next SIM only calls
            return part[~part["record_id"].isin(["c2", "c3"])]
        return part

    path = tmp_path / "month.csv"
    _td004_copies(60, edit=one_sender).to_csv(path, index=False)
    memory = telediag.scan(path, tz="Asia/Shanghai")
    assert (memory.findings["rule_id"] == "TD004").sum() == 20
    _, gathered = _gathered_out_of_core(path, memory, monkeypatch, buckets=8)
    assert set(gathered["imei"].to_pylist()) == {_handset(k) for k in range(20)}
    assert gathered.num_rows == 20 * 5


def _sims_and_handsets(seed: int, n: int, sims: int, handsets: int, mms: float) -> pd.DataFrame:
    """``n`` records of ``sims`` subscribers on ``handsets`` handsets over two months,
    a share ``mms`` of them MMS submits (half failed) to two recipients of two sizes."""
    rng = np.random.default_rng(seed)
    kind = np.where(rng.random(n) < mms, "mms", rng.choice(["voice", "sms"], size=n))
    return pd.DataFrame(
        {
            "record_id": [f"sh{seed}-{i}" for i in range(n)],
            "record_type": kind,
            "direction": "mo",
            "start_time": T0 + pd.to_timedelta(rng.integers(0, 60 * 86400, n), unit="s"),
            "msisdn": [f"1380001{v:04d}" for v in rng.integers(0, sims, n)],
            "peer_number": [f"1390000{v:04d}" for v in rng.integers(0, 2, n)],
            "imei": [f"3520140199{v:04d}" for v in rng.integers(0, handsets, n)],
            "status": np.where(kind == "mms", rng.choice(["ok", "failed"], size=n), None),
            "mms_event": np.where(kind == "mms", "submit", None),
            "mms_size": np.where(kind == "mms", rng.choice([20480, 40960], size=n), None),
            "sms_length": np.where(kind == "sms", 70, -1),
        }
    )


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(5, 80),
    sims=st.integers(1, 5),
    handsets=st.integers(1, 6),
    mms=st.floats(0.05, 0.7),
    buckets=st.integers(1, 6),
)
def test_handsets_passed_around_give_the_same_resends_out_of_core(
    seed: int, n: int, sims: int, handsets: int, mms: float, buckets: int
) -> None:
    """SIMs moving between handsets, with few MMS: the handsets chosen from the
    subscriber buckets' counts, added up, lose no re-send out of core."""
    table = to_table(_sims_and_handsets(seed, n, sims, handsets, mms))
    whole = telediag.scan([table], select=["TD004"])
    split = telediag.scan([table], select=["TD004"], buckets=buckets)
    pd.testing.assert_frame_equal(split.findings, whole.findings)
    pd.testing.assert_frame_equal(split.evidence, whole.evidence)


def test_two_handset_rules_of_one_id_each_get_their_handsets(tmp_path: Path) -> None:
    """Review: the handsets each rule may find something on were counted by rule id, so
    of two rules given with one id (a list of rules is not checked for repeats) the
    second's counts replaced the first's, and out of core the first rule's re-send was
    lost. They are now kept by the rule's place in the list."""
    td004 = telediag.load_rules(select=["TD004"])[0]
    sms = td004.model_copy(
        update={
            "records": td004.records.model_validate({"record_type": "sms", "direction": "mo"}),
            "detector": td004.detector.model_validate(
                {"kind": "handover", "params": {"match_on": ["peer_number"]}}
            ),
            "name": "sms-resent-after-sim-swap",
        }
    )
    mms = pd.read_csv(FIXTURES / "TD004" / "resent-under-new-sim.csv", dtype=str)
    texts = pd.DataFrame(
        {
            "record_id": ["s1", "s2"],
            "record_type": "sms",
            "direction": "mo",
            "start_time": ["2008-06-16 13:00:00", "2008-06-18 10:02:10"],
            "msisdn": ["13800000501", "13800000502"],
            "imei": "35201401000090",
            "peer_number": "13900000599",
            "status": ["failed", "ok"],
            "charge": ["0.00", "0.10"],
        }
    )
    path = tmp_path / "month.csv"
    pd.concat([mms, texts], ignore_index=True).to_csv(path, index=False)
    whole = telediag.scan(path, [td004, sms], tz="Asia/Shanghai")
    assert sorted(tuple(ids) for ids in whole.findings["record_ids"]) == [
        ("a2", "c2"),
        ("s1", "s2"),
    ]
    split = telediag.scan(path, [td004, sms], tz="Asia/Shanghai", buckets=2)
    pd.testing.assert_frame_equal(split.findings, whole.findings)
    pd.testing.assert_frame_equal(split.evidence, whole.evidence)


@pytest.mark.parametrize("marks", [True, False])
@pytest.mark.parametrize("seeds", ["any handset", "failing"])
def test_handset_rules_without_seeds_get_every_used_handset_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeds: str, marks: bool
) -> None:
    """A detector that cannot name its handsets from the subscriber buckets (seeds None),
    or whose seeds fail on a bucket, makes the scan hand on every used row of the
    handsets marked while spilling (those with a failed MMS submit); one that marks
    none either (no ``SEED_RECORDS``), every used row that has a handset: slower, the
    same findings."""
    from telediag.detectors.handover import HandoverDetector

    month = _td004_copies(
        12,
        imei=lambda k: _handset(k) if k < 10 else "000000000000000",
        edit=_went_out_on_odd,
    )
    month.loc[0, "start_time"] = "not a time"  # set aside: never gathered
    path = tmp_path / "month.csv"
    month.to_csv(path, index=False)
    memory = telediag.scan(path, tz="Asia/Shanghai")

    def no_seeds(self, ctx, positions, params):  # type: ignore[no-untyped-def]
        if seeds == "failing":
            raise RuntimeError("no seeds here")
        return None

    monkeypatch.setattr(HandoverDetector, "seeds", no_seeds)
    if not marks:
        monkeypatch.setattr(HandoverDetector, "SEED_RECORDS", None)
    split, gathered = _gathered_out_of_core(path, memory, monkeypatch, buckets=5)
    assert split.errors == memory.errors == []
    # Five rows on each real handset (placeholders name no handset): the five with a
    # failed MMS, or all ten; less the row set aside.
    assert gathered.num_rows == (5 if marks else 10) * 5 - 1
    assert "0-a1" not in gathered["record_id"].to_pylist()


def test_warnings_about_number_identifiers_reach_a_bucketed_scan() -> None:
    """Review: an Arrow table with numbers for msisdn warned in memory, not in buckets."""
    rows = 3
    table = pa.table(
        {
            "record_id": [f"n{i}" for i in range(rows)],
            "record_type": ["sms"] * rows,
            "direction": ["mo"] * rows,
            "start_time": ["2008-07-01T10:00:00Z"] * rows,
            "msisdn": pa.array([13800000001] * rows, pa.int64()),
        }
    )
    whole = telediag.scan([table])
    assert len(whole.report.warnings) == 1
    for buckets in (1, 3):
        assert telediag.scan([table], buckets=buckets).report.warnings == whole.report.warnings


def test_label_dictionaries_of_any_index_width_spill_like_text(
    catalog: list[telediag.Rule],
) -> None:
    """Spill files keep label columns as dictionaries (one index width, each batch its
    own dictionary) and other dictionaries as their values: the findings are those of
    the same table with every column as text."""
    frame = month(12, 400)
    plain = to_table(frame)
    coded = plain
    for name, index in (("record_type", pa.int8()), ("status", pa.int16()), ("msisdn", pa.int8())):
        i = coded.column_names.index(name)
        values = pc.dictionary_encode(coded[name].combine_chunks())
        small = pa.DictionaryArray.from_arrays(values.indices.cast(index), values.dictionary)
        coded = coded.set_column(i, name, pa.chunked_array([small]))
    whole = telediag.scan(plain, rules=catalog)
    assert len(whole.findings)
    assert_same(whole, telediag.scan(coded, rules=catalog, buckets=3))


def test_a_bucket_read_from_dictionary_and_text_inputs_keeps_its_other_types(
    tmp_path: Path,
) -> None:
    from telediag.outofcore import _read_bucket

    times = pa.array([0, 1], pa.timestamp("ms", tz="UTC"))
    labels = pa.array(["sms", "voice"])
    paths = []
    for n, kind in enumerate((labels.dictionary_encode(), labels)):
        table = pa.table({"record_type": kind, "start_time": times})
        path = tmp_path / f"part-{n}.arrow"
        with pa.ipc.new_stream(path, table.schema) as writer:
            writer.write_table(table)
        paths.append(path)
    read = _read_bucket(paths)
    assert read.schema.field("record_type").type == pa.string()
    assert read.schema.field("start_time").type == times.type
    assert read["record_type"].to_pylist() == ["sms", "voice", "sms", "voice"]


def test_the_page_cache_is_judged_beside_the_scan_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a machine with 22.3 GB available, a 100M-row month of 4.2 GB of Parquet keeps
    its input pages under a 3 GB scan (6.5 GB of spill fits beside it), but not for a
    store (a second copy of every row in the spill), nor as 13.7 GB of CSV (labels
    spilled as text), nor under the default budget of half the memory. A budget above the memory
    leaves the room of the default, not none: a small month stays cached."""
    from telediag import outofcore

    month = tmp_path / "month.parquet"
    with open(month, "wb") as f:
        f.truncate(4_200_000_000)  # sparse: the size without the bytes
    as_csv = tmp_path / "month.csv"  # the same month as a mediation system's CSV
    with open(as_csv, "wb") as f:
        f.truncate(13_700_000_000)
    available = 22_300_000_000
    monkeypatch.setattr(outofcore, "available_memory", lambda: available)
    rows, budget = 100_000_000, 3 * 2**30

    def crowds(source: Path, handsets: bool = False, memory: int = budget) -> bool:
        per_row = outofcore.spill_bytes_per_row([source], None, handsets)
        return outofcore.crowds_page_cache([source], rows, per_row, budget=memory)

    assert outofcore.spill_bytes_per_row([month], None) == outofcore.SPILL_FILE_BYTES_PER_ROW
    assert not crowds(month)
    assert crowds(month, handsets=True)
    assert crowds(as_csv)
    assert crowds(month, memory=available // 2)
    assert crowds(month, memory=40 * 2**30)  # as the default budget: too big for 37.5%
    small = tmp_path / "day.parquet"
    small.write_bytes(b"x" * 100_000)
    assert not outofcore.crowds_page_cache([small], 1_000, budget=64 * 2**30)
    # A column map gives the labels as text, whatever the file.
    from telediag.colmap import load_column_map

    cmap = load_column_map(Path(__file__).parent.parent / "column-maps" / "3gpp-ts32298.yaml")
    per_text_row = outofcore.SPILL_FILE_BYTES_PER_TEXT_ROW
    assert outofcore.spill_bytes_per_row([month], cmap) == per_text_row
    assert outofcore.spill_bytes_per_row([pa.table({"a": [1]})], None) == per_text_row


def test_input_pages_leave_the_page_cache_only_when_the_spill_would_crowd_it(
    tmp_path: Path, catalog: list[telediag.Rule], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each input file read by the spill pass is dropped from the page cache when input
    and spill together would crowd the memory available (see crowds_page_cache), and
    only then; the findings are the same either way."""
    import os

    from telediag import outofcore

    folder = write_parts(tmp_path, month(5, 200), 2)
    files = sorted(folder.iterdir())
    advised: list[str] = []
    real = os.posix_fadvise

    def record(fd: int, offset: int, length: int, advice: int) -> None:
        assert advice == os.POSIX_FADV_DONTNEED
        advised.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", record)
    roomy = telediag.scan(folder, rules=catalog, buckets=2)
    assert advised == []
    size = sum(f.stat().st_size for f in files)
    monkeypatch.setattr(outofcore, "available_memory", lambda: size)
    assert outofcore.crowds_page_cache(files, 0)
    crowded = telediag.scan(folder, rules=catalog, buckets=2)
    assert sorted(advised) == [str(f) for f in files]
    assert_same(roomy, crowded)
    outofcore.forget_cached(tmp_path / "no such file")  # nothing to forget: no error


def _labelled_rows(n: int, msisdns: list[str], kinds: pa.Array, first: str) -> pa.Table:
    return pa.table(
        {
            "record_id": [f"{first}-{i}" for i in range(n)],
            "record_type": kinds,
            "direction": ["mo"] * n,
            "start_time": [f"2024-01-01 00:{i % 60:02d}:00" for i in range(n)],
            "msisdn": [msisdns[i % len(msisdns)] for i in range(n)],
        }
    )


def test_a_label_dictionary_holding_a_null_entry_spills(catalog: list[telediag.Rule]) -> None:
    """Review: a dictionary with a null entry (dictionary_encode with null_encoding=
    "encode") was kept in the spill, and a bucket of two such chunks raised ArrowInvalid
    ("Cannot yet unify dictionaries with nulls") where the in-memory scan set the rows
    aside."""
    n = 20000
    kinds = pc.dictionary_encode(pa.array(["sms", None] * (n // 2)), null_encoding="encode")
    one = _labelled_rows(n, [f"1380000{i:04d}" for i in range(50)], kinds, "r")
    whole = telediag.scan(one, rules=catalog)
    assert whole.report.set_aside == {"missing record_type": n // 2}
    assert_same(whole, telediag.scan(one, rules=catalog, buckets=2, memory="1MB"))


def test_a_label_of_many_values_is_spilled_as_text_and_may_change_kind_between_batches(
    catalog: list[telediag.Rule],
) -> None:
    """Review: each bucket's piece of a batch carried the batch's whole dictionary, so a
    label of many distinct values (hosts) made the spill grow with the bucket count. Such
    a column is spilled as text; a batch of few values after it stays a dictionary, and
    the bucket's spill file changes with it."""
    from telediag.outofcore import _spill_form

    many = pa.table({"host": pa.array([f"h{i}.example" for i in range(4000)]).dictionary_encode()})
    few = pa.table({"host": pa.array(["a.example", "b.example"] * 2000).dictionary_encode()})
    assert _spill_form(many, buckets=32).schema.field("host").type == pa.string()
    assert pa.types.is_dictionary(_spill_form(few, buckets=32).schema.field("host").type)
    subs = [f"1390000{i:04d}" for i in range(40)]
    parts = [
        _labelled_rows(4000, subs, pa.array(["sms", "voice"] * 2000).dictionary_encode(), "a"),
        _labelled_rows(
            4000, subs, pa.array([f"t{i}" for i in range(4000)]).dictionary_encode(), "b"
        ),
        _labelled_rows(4000, subs, pa.array(["sms", "data"] * 2000).dictionary_encode(), "c"),
    ]
    mixed = pa.concat_tables(parts)  # three chunks, each with its own dictionary
    whole = telediag.scan(mixed, rules=catalog)
    assert whole.report.set_aside == {"unknown record_type": 4000}
    assert_same(whole, telediag.scan(mixed, rules=catalog, buckets=32, memory="1MB"))


@settings(max_examples=60, deadline=None)
@given(
    buckets=st.integers(1, 70),
    hashes=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=300),
    hashed=st.booleans(),
)
def test_spill_order_groups_buckets_then_hashes(
    buckets: int, hashes: list[int], hashed: bool
) -> None:
    """The spill writes a batch's rows bucket by bucket and, given the key hashes, a
    subscriber's rows together inside its bucket: every row once, buckets in order, and
    within a bucket the hashes' high bits in order (rows of one hash keep their order)."""
    from telediag.outofcore import _bucket_order

    within = np.array(hashes, dtype=np.uint64)
    which = (within % np.uint64(buckets)).astype(np.int32)
    order = _bucket_order(which, buckets, within if hashed else None)
    assert sorted(order.tolist()) == list(range(len(hashes)))
    assert (np.diff(which[order]) >= 0).all()
    same = which[order][1:] == which[order][:-1]
    if hashed:
        top = within[order] >> np.uint64(32)
        assert (top[1:][same] >= top[:-1][same]).all()
        tie = same & (within[order][1:] == within[order][:-1])
        assert (order[1:][tie] > order[:-1][tie]).all()
    else:  # stable: rows in their order within a bucket
        assert (order[1:][same] > order[:-1][same]).all()


def _failing_handsets_month(tmp_path: Path, copies: int) -> Path:
    """TD004's fixture repeated on ``copies`` handsets of their own, as one CSV."""
    path = tmp_path / "month.csv"
    _td004_copies(copies).to_csv(path, index=False)
    return path


def test_ctrl_c_while_handset_rows_are_put_aside_waits_for_the_writers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review (of the gathering this replaced): a Ctrl-C while handset rows were written
    removed the spill directory while a writer still ran, which then wrote its files
    into it (or during the removal, leaving them). Subscriber buckets now put their
    handset rows aside as they are scanned; the scan waits for those writing, and the
    buckets not started do not start."""
    import threading
    import time

    from telediag import outofcore

    path = _failing_handsets_month(tmp_path, 60)
    running = {"now": 0}
    lock = threading.Lock()
    real = outofcore._keep_handset_rows

    def slow(*args, **kw):  # type: ignore[no-untyped-def]
        with lock:
            running["now"] += 1
        try:
            time.sleep(0.3)
            return real(*args, **kw)
        finally:
            with lock:
                running["now"] -= 1

    monkeypatch.setattr(outofcore, "_keep_handset_rows", slow)

    class Interrupt:
        phase_name = ""

        def phase(self, name: str, rows: int, buckets: int) -> None:
            self.phase_name = name

        def advance(self, rows: int, buckets: int = 0) -> None:
            if self.phase_name == "scanning buckets":
                raise KeyboardInterrupt

        def close(self) -> None:
            pass

    spill = tmp_path / "spill"
    spill.mkdir()
    with pytest.raises(KeyboardInterrupt):
        telediag.scan(
            path,
            tz="Asia/Shanghai",
            buckets=8,
            workers=2,
            spill_dir=spill,
            bucket_progress=Interrupt(),
        )
    assert running["now"] == 0  # no writer outlives the scan
    time.sleep(0.5)
    assert list(spill.rglob("*")) == []


def test_subscriber_buckets_put_aside_the_rows_of_handsets_marked_while_spilling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spill pass marks the handsets that carry a failed MMS submit, judged on the
    rows as read (labels in any case and padding, as normalization reads them). Each
    subscriber bucket, as it is scanned, puts aside the rows of those handsets only, so
    no spill file is read twice; the handsets with two MMS senders are then scanned."""
    from telediag import outofcore

    def spelled(k: int, part: pd.DataFrame) -> pd.DataFrame:
        if k % 3 == 1:  # the MMS went out: nothing failed on this handset
            part["status"] = part["status"].replace("failed", "ok")
        elif k % 3 == 2:  # failed, written as another system would
            part["status"] = part["status"].replace("failed", " FAILED ")
            part["record_type"] = part["record_type"].str.upper()
        return part

    # Padded IMEIs: the key is the trimmed text.
    month = _td004_copies(30, imei=lambda k: f" {_handset(k)}", edit=spelled)
    path = tmp_path / "month.csv"
    month.to_csv(path, index=False)
    memory = telediag.scan(path, tz="Asia/Shanghai")
    assert (memory.findings["rule_id"] == "TD004").sum() == 20

    put_aside: list[str] = []
    read_twice: list[Path] = []
    real_keep, real_read = outofcore._keep_handset_rows, outofcore._read_bucket
    seen: set[Path] = set()

    def keep(table, aside, among, columns, writers, slot, flight=None):  # type: ignore[no-untyped-def]
        rows = outofcore.handset_rows(table, among=among)
        put_aside.extend(table["imei"].filter(pa.array(rows)).to_pylist())
        return real_keep(table, aside, among, columns, writers, slot, flight)

    def read(paths):  # type: ignore[no-untyped-def]
        read_twice.extend(p for p in paths if p in seen)
        seen.update(paths)
        return real_read(paths)

    monkeypatch.setattr(outofcore, "_keep_handset_rows", keep)
    monkeypatch.setattr(outofcore, "_read_bucket", read)
    _, gathered = _gathered_out_of_core(path, memory, monkeypatch, buckets=6)
    failed = {f" {_handset(k)}" for k in range(30) if k % 3 != 1}
    assert set(put_aside) == failed
    assert len(put_aside) == 20 * 5  # every row of those handsets, once
    assert read_twice == []
    assert set(gathered["imei"].to_pylist()) == failed


def test_a_key_set_finds_exactly_its_keys_whatever_their_hashes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Handsets are looked up by hash first and then by text, so two IMEIs that share a
    hash are told apart (here every key hashes alike)."""
    from telediag import buckets

    keys = pa.array(["352014000000011", "352014000000029", None, "352014000000011"])
    values = pa.array(["352014000000029", "352014000000037", None, "352014000000011", ""])
    expected = [True, False, False, True, False]
    assert buckets.KeySet(keys).contains(values).tolist() == expected
    monkeypatch.setattr(buckets, "key_hash", lambda v: np.zeros(len(v), dtype=np.uint64))
    same = buckets.KeySet(keys)
    assert len(same) == 2
    assert same.contains(values).tolist() == expected
    assert buckets.KeySet(pa.array([], pa.string())).contains(values).tolist() == [False] * 5


@settings(max_examples=100, deadline=None)
@given(
    keys=st.lists(st.from_regex(r"0?[1-9][0-9]{13,14}", fullmatch=True), max_size=6),
    values=st.lists(
        st.one_of(
            st.none(),
            st.from_regex(r"0?[1-9][0-9]{13,14}", fullmatch=True),
            st.from_regex(r" ?[0-9]{1,3}[a-z]? ?", fullmatch=True),
        ),
        max_size=12,
    ),
    reuse=st.booleans(),
)
def test_a_key_set_read_as_numbers_keeps_every_key_it_holds(
    keys: list[str], values: list[str | None], reuse: bool
) -> None:
    """The lookup of IMEIs as numbers (what a subscriber bucket hands on) may let other
    values through (``0352...`` reads as ``352...``), never hold one back; values that
    do not read as numbers send the lookup to the text."""
    from telediag.buckets import KeySet

    if reuse and keys:
        values = [*values, keys[0], f"0{keys[-1]}"]
    found = KeySet(pa.array(keys, pa.string()))
    column = pa.array(values, pa.string())
    exact = found.contains(column)
    assert exact.tolist() == [v is not None and v.strip() in set(keys) for v in values]
    maybe = found.may_contain(pa.chunked_array([column]))
    if maybe is None:
        assert any(v is not None and not v.isdigit() for v in values)
    else:
        assert not (exact & ~maybe).any()


@pytest.mark.parametrize("seeds", ["counted", "any handset"])
def test_handsets_that_read_as_the_same_number_stay_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeds: str
) -> None:
    """IMEIs are looked up as numbers while subscriber buckets are scanned, so the rows
    of ``0352...`` are handed on with those of the failing ``352...``; they are dropped
    with the handsets no rule needs (or, when the rule names none, scanned as the whole
    handset they are), and the findings are those of the one-piece scan."""
    from telediag.detectors.handover import HandoverDetector

    frame = pd.read_csv(FIXTURES / "TD004" / "resent-under-new-sim.csv", dtype=str)
    twin = frame.copy()
    twin["record_id"] = "t" + twin["record_id"]
    twin["msisdn"] = [f"1390{m[-7:]}" for m in twin["msisdn"]]
    twin["status"] = twin["status"].replace("failed", "ok")
    imei = frame["imei"].dropna().iloc[0]
    twin["imei"] = "0" + imei
    path = tmp_path / "month.csv"
    pd.concat([frame, twin], ignore_index=True).to_csv(path, index=False)
    memory = telediag.scan(path, tz="Asia/Shanghai")
    assert (memory.findings["rule_id"] == "TD004").sum() == 1
    if seeds == "any handset":
        monkeypatch.setattr(HandoverDetector, "seeds", lambda *a, **k: None)
    _, gathered = _gathered_out_of_core(path, memory, monkeypatch, buckets=3)
    handed = set(gathered["imei"].to_pylist())
    assert handed == ({imei} if seeds == "counted" else {imei, "0" + imei})


def _td004_variant(records: dict[str, object], rule_id: str = "TD904") -> telediag.Rule:
    """TD004 with another record filter, as a rule file would give it."""
    td004 = telediag.load_rules(select=["TD004"])[0]
    return td004.model_copy(
        update={
            "id": rule_id,
            "name": f"{rule_id.lower()}-variant",
            "records": td004.records.model_validate(records),
        }
    )


@pytest.mark.parametrize(
    ("records", "drop"),
    [
        ({"mms_size": {"min": 1}}, None),
        ({}, None),
        ({"peer_number": {"prefix": ["139"]}, "mms_size": {"min": 1}}, None),
        ({"not": {"mms_event": "fetch"}}, "mms_event"),
    ],
)
def test_a_handset_rule_whose_filter_names_no_label_of_the_input_keeps_its_findings(
    tmp_path: Path, records: dict[str, object], drop: str | None
) -> None:
    """Review: a handset rule whose record filter judged no label column of the input
    (only other columns, none at all, or a label the file lacks) marked no handset while
    spilling (the rows to judge were taken from a table of no columns, so none), and out
    of core its re-send was lost without a word."""
    frame = pd.read_csv(FIXTURES / "TD004" / "resent-under-new-sim.csv", dtype=str)
    if drop is not None:
        frame = frame.drop(columns=[drop])
    path = tmp_path / "month.csv"
    frame.to_csv(path, index=False)
    rules = [_td004_variant(records)]
    whole = telediag.scan(path, rules, tz="Asia/Shanghai")
    assert len(whole.findings) == 1
    split = telediag.scan(path, rules, tz="Asia/Shanghai", buckets=2, memory="1GB")
    pd.testing.assert_frame_equal(split.findings, whole.findings)
    pd.testing.assert_frame_equal(split.evidence, whole.evidence)


def test_a_handset_rule_that_cannot_judge_a_label_fails_alone_out_of_core(
    tmp_path: Path, catalog: list[telediag.Rule]
) -> None:
    """Review: a handset rule asking a label for a number (``status: {min: 1}``) is an
    error of that rule in a one-piece scan, the others' findings standing; out of core it
    stopped the whole scan with a raw Arrow error while handsets were marked."""
    frame = pd.read_csv(FIXTURES / "TD004" / "resent-under-new-sim.csv", dtype=str)
    text = {"record_id": "x1", "record_type": "sms", "direction": "mo", "status": "failed"}
    extra = pd.DataFrame([{**frame.iloc[0].to_dict(), **text}])
    path = tmp_path / "month.csv"
    pd.concat([frame, extra], ignore_index=True).to_csv(path, index=False)
    rules = [*catalog, _td004_variant({"record_type": "mms", "status": {"min": 1}})]
    whole = telediag.scan(path, rules, tz="Asia/Shanghai")
    assert [e.rule_id for e in whole.errors] == ["TD904"]
    assert len(whole.findings) == 1
    split = telediag.scan(path, rules, tz="Asia/Shanghai", buckets=2, memory="1GB")
    pd.testing.assert_frame_equal(split.findings, whole.findings)
    assert [e.rule_id for e in split.errors] == ["TD904"]


@pytest.mark.parametrize("column", ["status", "handset_model"])
def test_a_broken_handset_rule_is_reported_when_no_handset_is_marked(
    tmp_path: Path, catalog: list[telediag.Rule], column: str
) -> None:
    """Review: with no failed MMS in the month, no handset is marked while spilling and
    no row reaches a handset bucket; a handset rule whose filter cannot be judged (a
    bound on a label, or on a derived text column) then never ran out of core, and its
    error, reported by the one-piece scan, was lost. The subscriber buckets judge the
    handset rules' filters anyway (to count their handsets) and now report that error."""
    frame = pd.read_csv(FIXTURES / "TD004" / "resent-under-new-sim.csv", dtype=str)
    frame["status"] = frame["status"].replace("failed", "ok")
    path = tmp_path / "month.csv"
    frame.to_csv(path, index=False)
    rules = [*catalog, _td004_variant({"record_type": "mms", column: {"min": 1}})]
    whole = telediag.scan(path, rules, tz="Asia/Shanghai")
    assert [e.rule_id for e in whole.errors] == ["TD904"]
    for buckets in (1, 3):
        split = telediag.scan(path, rules, tz="Asia/Shanghai", buckets=buckets, memory="1GB")
        assert [str(e) for e in split.errors] == [str(e) for e in whole.errors]
        pd.testing.assert_frame_equal(split.findings, whole.findings)


def test_handset_buckets_do_not_follow_the_subscriber_buckets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: the handset rows each subscriber bucket handed on were spread over as many
    handset buckets as there were subscriber buckets (files: buckets squared; 512
    buckets wrote 38,173 files), and how many handset scans there were, and so the order
    of findings that share an id, changed with the bucket count. Handset buckets are now
    as many as the rows handed on need, whatever the subscriber buckets."""
    from telediag import outofcore

    frame = pd.read_csv(FIXTURES / "TD004" / "resent-under-new-sim.csv", dtype=str)
    parts = []
    for k in range(8):
        imei = f"352014{(k * 7919) % 10000:04d}00001"
        part = frame.copy()
        part["record_id"] = f"{k}-" + part["record_id"]
        part["imei"] = imei  # the same records seen on eight handsets: one finding id
        parts.append(part)
    path = tmp_path / "month.csv"
    pd.concat(parts, ignore_index=True).to_csv(path, index=False)
    whole = telediag.scan(path, tz="Asia/Shanghai", select=["TD004"])
    assert len(whole.findings) == 8 and whole.findings["finding_id"].nunique() == 1
    scans: list[int] = []
    files: list[int] = []
    real_scan, real_writers = outofcore.scan_bucket, outofcore._Writers.write

    def scan(table, rules, settings, *, key, **kw):  # type: ignore[no-untyped-def]
        if key == "handset":
            scans.append(table.num_rows)
        return real_scan(table, rules, settings, key=key, **kw)

    def write(self, table, which, rows=None, within=None):  # type: ignore[no-untyped-def]
        if self.key != "subscriber" and self.key != outofcore.ID_KEY:
            files.append(len(np.unique(which)))
        return real_writers(self, table, which, rows, within)

    monkeypatch.setattr(outofcore, "scan_bucket", scan)
    monkeypatch.setattr(outofcore._Writers, "write", write)
    counts: set[int] = set()
    for buckets in (5, 11, 13, 64):
        scans.clear()
        files.clear()
        split = telediag.scan(
            path, tz="Asia/Shanghai", select=["TD004"], buckets=buckets, memory="1GB"
        )
        pd.testing.assert_frame_equal(split.findings, whole.findings)
        pd.testing.assert_frame_equal(split.evidence, whole.evidence)
        assert sum(scans) == 8 * 5
        counts.add(len(scans))
        # A file per subscriber bucket handing rows on, then one per handset bucket.
        assert sum(files) <= 2 + 2 * len(scans)
    assert len(counts) == 1


def test_findings_columns_keep_one_type_in_every_mode(tmp_path: Path) -> None:
    """Review: a bucket whose findings all had no known handset held ``handset_model`` as
    objects (None) while a one-piece scan held it as text (NaN), so the two findings
    tables differed in type. Text columns are now text however many values are missing."""
    frames = []
    for f in sorted((FIXTURES / "TD002").glob("*.csv")):
        frame = pd.read_csv(f, dtype=str)
        frame["record_id"] = f.stem + frame["record_id"]
        frames.append(frame)
    path = tmp_path / "td002.csv"
    pd.concat(frames).to_csv(path, index=False)
    whole = telediag.scan(path, tz="Asia/Shanghai", select=["TD002"])
    assert whole.findings["handset_model"].isna().any()
    assert whole.findings["handset_model"].notna().any()
    for buckets in (1, 5):
        split = telediag.scan(path, tz="Asia/Shanghai", select=["TD002"], buckets=buckets)
        pd.testing.assert_frame_equal(split.findings, whole.findings)


def test_rejects_of_a_month_with_no_rows_show_its_columns(tmp_path: Path) -> None:
    """Review: a CSV with a header and no rows gave, out of core, rejects with only the
    required columns; in memory they have every column of the header."""
    frame = pd.read_csv(FIXTURES / "TD004" / "resent-under-new-sim.csv", dtype=str)
    path = tmp_path / "empty.csv"
    frame.iloc[:0].to_csv(path, index=False)
    whole = telediag.scan(path, tz="Asia/Shanghai")
    assert whole.rejects().schema.names == ["reason", *frame.columns]
    for buckets in (1, 3):
        split = telediag.scan(path, tz="Asia/Shanghai", buckets=buckets)
        assert split.rejects().schema == whole.rejects().schema


def test_rejects_show_the_columns_of_every_file_in_every_mode(tmp_path: Path) -> None:
    """Review: a column only a file with no row had (or only files none of whose rows
    were set aside) was missing from the rejects out of core and from a store."""
    from telediag.store import prepare

    frame = pd.read_csv(FIXTURES / "TD004" / "resent-under-new-sim.csv", dtype=str)
    empty, rows = tmp_path / "empty.csv", tmp_path / "rows.csv"
    frame.iloc[:0].to_csv(empty, index=False)  # the only file with mms_event, mms_size
    rest = frame.drop(columns=["mms_event", "mms_size"])
    rest.loc[0, "start_time"] = "not a time"
    rest.to_csv(rows, index=False)
    sources = [str(empty), str(rows)]
    whole = telediag.scan(sources, tz="UTC").rejects()
    assert {"mms_event", "mms_size"} <= set(whole.column_names) and whole.num_rows == 1
    for buckets in (1, 3):
        assert telediag.scan(sources, tz="UTC", buckets=buckets).rejects().equals(whole)
    store = tmp_path / "store"
    prepare(sources, store, tz="UTC", buckets=2)
    assert telediag.scan(str(store)).rejects().equals(whole)


def test_a_second_ctrl_c_while_the_spill_is_removed_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: a Ctrl-C, then a second one while the spill directory was being removed,
    stopped the removal half way and left spill files."""
    import os

    path = _failing_handsets_month(tmp_path, 30)
    calls = {"n": -1}
    real_unlink = os.unlink

    def unlink(*args, **kw):  # type: ignore[no-untyped-def]
        if calls["n"] >= 0:
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt  # the second Ctrl-C, during the removal
        return real_unlink(*args, **kw)

    class Interrupt:
        name = ""

        def phase(self, name: str, rows: int, buckets: int) -> None:
            self.name = name

        def advance(self, rows: int, buckets: int = 0) -> None:
            if self.name == "scanning buckets":
                calls["n"] = 0
                raise KeyboardInterrupt  # the first Ctrl-C

        def close(self) -> None:
            pass

    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.raises(KeyboardInterrupt):
        telediag.scan(
            path, tz="UTC", buckets=8, workers=1, spill_dir=spill, bucket_progress=Interrupt()
        )
    monkeypatch.undo()
    assert calls["n"] >= 2
    assert list(spill.rglob("*")) == []


def test_stopping_the_spill_pass_does_not_wait_forever_for_a_read_ahead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review: after a second Ctrl-C, closing the read-ahead waited for a batch read that
    never ended, and the process hung. The wait is now bounded."""
    import threading
    from concurrent.futures import Future

    from telediag import outofcore

    class Stuck:
        """A reader pool whose second read never ends."""

        def __init__(self) -> None:
            self.n = 0

        def submit(self, fn, *args):  # type: ignore[no-untyped-def]
            self.n += 1
            future: Future[object] = Future()
            future.set_running_or_notify_cancel()
            if self.n == 1:
                future.set_result(fn(*args))
            return future

    monkeypatch.setattr(outofcore, "READ_AHEAD_WAIT", 0.2)
    reading = outofcore._prefetch(iter([pa.table({"a": [1]})] * 3), Stuck())  # type: ignore[arg-type]
    assert next(reading).num_rows == 1
    closing = threading.Thread(target=reading.close, daemon=True)
    closing.start()
    closing.join(5)
    assert not closing.is_alive()


def test_repeated_ids_are_found_with_id_buckets_checked_in_threads(tmp_path: Path) -> None:
    """Id buckets are checked two at a time: repeats lying in different id buckets and
    different subscriber buckets give the warning of the one-piece scan."""
    rows = 400
    frame = pd.DataFrame(
        {
            "record_id": [f"r{i % 150}" if i % 3 == 0 else f"u{i}" for i in range(rows)],
            "record_type": "sms",
            "direction": "mo",
            "start_time": "2008-07-01 10:00:00",
            "msisdn": [f"1380000{i % 37:04d}" for i in range(rows)],
        }
    )
    path = tmp_path / "month.csv"
    frame.to_csv(path, index=False)
    whole = telediag.scan(path)
    assert whole.report.warnings and "id(s) occur more than once" in whole.report.warnings[0]
    for buckets in (1, 9):
        split = telediag.scan(path, buckets=buckets, workers=2)
        assert split.report.warnings == whole.report.warnings
