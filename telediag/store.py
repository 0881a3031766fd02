"""A prepared month: the input normalized once, bucketed and sorted, as plain Parquet.

``telediag prepare INPUT... --out STORE`` writes::

    STORE/manifest.json                          what is in the store (below)
    STORE/subscriber/bucket=00007/part-00000.parquet
    STORE/handset/bucket=00003/part-00000.parquet
    STORE/rejects/part-00000.parquet

- ``subscriber/``: every usable row, in the contract's columns and types, in the
  subscriber bucket of its msisdn (:func:`telediag.buckets.bucket_of`), sorted by
  msisdn, time and record id, in row groups small enough that the msisdn statistics
  of a row group lead a reader straight to one subscriber's rows.
- ``handset/``: the usable rows that have an IMEI, with the columns the handset rules
  and an investigation need, in the handset bucket of the IMEI, sorted by IMEI.
- ``rejects/``: the rows set aside, as read, with their reason.
- ``manifest.json``: format and version, bucket count, time zone, column map, the
  input report (rows read, used, set aside by reason) and one entry per part.

Spark, DuckDB and pandas read the directories as they are (``bucket`` is a Hive-style
partition column). Preparing more input into an existing store (a new day) adds one
part to each bucket and adds its counts to the report; nothing already written is
rewritten. Record ids are filled in when the store is written, so a scan of the store
and a scan of its input give the same findings.
"""

from __future__ import annotations

import errno
import json
import math
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from telediag.allocator import streaming_decay
from telediag.buckets import (
    KEY_COLUMN,
    BucketResult,
    Key,
    bucket_of,
    combine,
    key_hash,
    scan_bucket,
    split_rules,
    sum_reports,
)
from telediag.catalog import Rule
from telediag.chunks import plain_table
from telediag.colmap import ColumnMap
from telediag.context import ScanSettings
from telediag.errors import InputError
from telediag.flight import Flight, through_ctrl_c
from telediag.normalize import (
    InputReport,
    Normalized,
    as_text,
    normalize,
    order_rejects,
    with_columns,
)
from telediag.outofcore import (
    BASE_BYTES,
    BYTES_PER_ROW,
    BucketProgress,
    _each_done,
    _read_bucket,
    _remove,
    can_stream,
    crowds_page_cache,
    default_budget,
    estimate_rows,
    plan_buckets,
    repeated_id_warning,
    spill,
    spill_batch_rows,
    spill_bytes_per_row,
    spill_directory,
    spill_error,
)
from telediag.read import RawInput, _concat, labelled_sources
from telediag.schema import COLUMNS
from telediag.sort import _sorted_dictionary_codes, sort_records

FORMAT = "telediag-store"
VERSION = 1
MANIFEST = "manifest.json"
#: Rows per Parquet row group: a subscriber's rows are found by reading about one.
ROW_GROUP_ROWS = 16_384
#: Rows per bucket aimed at when the store is made.
BUCKET_ROWS = 1_000_000
#: Columns kept in handset buckets besides the handset rules' own.
HANDSET_KEEP: frozenset[str] = frozenset(
    {
        "record_id",
        "record_type",
        "direction",
        "start_time",
        "msisdn",
        "imsi",
        "imei",
        "status",
        "charge",
        "peer_number",
    }
)


@dataclass
class Manifest:
    """What a store holds."""

    buckets: int
    tz: str
    column_map: str | None
    report: InputReport
    parts: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "buckets": self.buckets,
            "tz": self.tz,
            "column_map": self.column_map,
            "report": self.report.to_dict(),
            "parts": self.parts,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        rep = data["report"]
        report = InputReport(
            files=list(rep["files"]),
            rows_read=int(rep["rows_read"]),
            rows_used=int(rep["rows_used"]),
            set_aside={str(k): int(v) for k, v in rep["set_aside"].items()},
            layouts={str(k): str(v) for k, v in rep.get("layouts", {}).items()},
            disagreements={str(k): int(v) for k, v in rep.get("disagreements", {}).items()},
            warnings=[str(w) for w in rep.get("warnings", [])],
        )
        return cls(
            buckets=int(data["buckets"]),
            tz=str(data["tz"]),
            column_map=data.get("column_map"),
            report=report,
            parts=list(data.get("parts", [])),
        )


def is_store(path: str | Path | object) -> bool:
    """Is ``path`` a directory written by :func:`prepare`?"""
    return isinstance(path, (str, Path)) and (Path(path) / MANIFEST).is_file()


def store_path(source: object) -> Path | None:
    """The store ``source`` names (a store path, or a list holding only one), if any."""
    if isinstance(source, (list, tuple)) and len(source) == 1:
        source = source[0]
    if is_store(source):
        return Path(str(source))
    if isinstance(source, (list, tuple)) and any(is_store(s) for s in source):
        raise InputError("a store is scanned on its own, not with other inputs")
    return None


def store_zone(store: str | Path, tz: str | None) -> str:
    """The store's time zone; another one asked for is refused (its naive times were
    read in the store's zone when it was prepared)."""
    zone = load_manifest(store).tz
    if tz is not None and tz != zone:
        raise InputError(f"{store}: the store's times were read in {zone}, not {tz}")
    return zone


def load_manifest(store: str | Path) -> Manifest:
    """The manifest of a store; an :class:`InputError` if it is not one telediag reads."""
    path = Path(store) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the store's manifest: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{path}: not a telediag store manifest")
    if data.get("version") != VERSION:
        raise InputError(f"{path}: store version {data.get('version')!r}, expected {VERSION}")
    return Manifest.from_json(data)


def _bucket_dir(store: Path, key: str, b: int) -> Path:
    return store / key / f"bucket={b:05d}"


def _sorted_valid(normalized: Normalized, key: str) -> pa.Table:
    """The usable rows sorted by ``key`` (msisdn or IMEI), time and record id."""
    if key == "msisdn":
        order = sort_records(normalized, threads=1).order
    else:
        rows = np.flatnonzero(normalized.valid)
        table = normalized.table
        codes, _ = _sorted_dictionary_codes(table[key].take(pa.array(rows)))
        times = table["start_time"].take(pa.array(rows)).cast(pa.int64())
        ids = table["record_id"].take(pa.array(rows))
        id_codes, _ = _sorted_dictionary_codes(ids)
        t = np.asarray(times.to_numpy(zero_copy_only=False), dtype=np.int64)
        order = rows[np.lexsort((id_codes, t, codes))]
    # Text as text: the store's schema does not depend on how a column was held.
    return plain_table(normalized.table.take(pa.array(order)))


def _store_error(exc: OSError, store: Path, spill: Path) -> InputError:
    """One line for an error of the file system while preparing: a full disk under the
    store is not one under the spill directory (``--spill-dir`` would not help)."""
    full = exc.errno == errno.ENOSPC or "No space left" in str(exc)
    where = Path(exc.filename) if exc.filename else None
    if where is not None and spill not in where.parents:
        if full:
            return InputError(f"{store}: no space left to write the store; free room there")
        return InputError(f"{where}: {exc.strerror or exc}")
    if where is None and full:  # a write that does not say where
        return InputError(
            f"no space left on the device (the store in {store}, spill files in {spill})"
        )
    return spill_error(exc, spill)


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=ROW_GROUP_ROWS, write_statistics=True)


@streaming_decay()
def prepare(
    inputs: Sequence[str | Path],
    out: str | Path,
    *,
    column_map: ColumnMap | str | Path | None = None,
    tz: str | None = None,
    rules: Sequence[Rule] | None = None,
    buckets: int | None = None,
    memory: int | None = None,
    workers: int = 1,
    spill_dir: str | Path | None = None,
    progress: BucketProgress | None = None,
) -> Manifest:
    """Write ``inputs`` into the store ``out``, creating it or adding a part to it."""
    from telediag.colmap import load_column_map

    store = Path(out)
    del rules  # kept in the signature: the store holds every column for any catalog
    cmap = load_column_map(column_map) if isinstance(column_map, (str, Path)) else column_map
    labelled = labelled_sources(list(inputs))
    items = [item for item, _ in labelled]
    if not can_stream(items, cmap):
        raise InputError(
            "prepare reads Parquet and CSV files and tables; convert other inputs first"
        )
    if store.exists() and not store.is_dir():
        raise InputError(f"{store}: exists and is not a directory; give a store directory")
    existing = load_manifest(store) if is_store(store) else None
    if existing is None and store.exists() and any(store.iterdir()):
        raise InputError(f"{store}: exists and is not a telediag store")
    created = not store.exists()
    if existing is not None and tz is not None and tz != existing.tz:
        raise InputError(f"{store}: the store's times were read in {existing.tz}, not {tz}")
    zone = existing.tz if existing is not None else (tz or "UTC")
    rows = estimate_rows(items)
    budget = memory or default_budget()  # judged once, for every choice below
    if existing is not None:
        n_buckets = existing.buckets
    else:
        n_buckets = buckets or max(
            plan_buckets(rows, budget, workers), math.ceil(rows / BUCKET_ROWS), 1
        )
    part = len(existing.parts) if existing is not None else 0
    name = f"part-{part:05d}.parquet"
    # Every contract column: a handset bucket sets aside exactly the rows the subscriber
    # buckets do, and any later catalog finds the columns it needs.
    handset_columns = set(COLUMNS)
    directory = spill_directory(spill_dir)
    written: list[Path] = []
    try:
        started = time.perf_counter()
        if progress is not None:
            progress.phase("partitioning", rows, 0)
        spilled = spill(
            labelled,
            directory,
            n_buckets,
            set(COLUMNS),
            True,
            cmap,
            progress,
            workers,
            spill_batch_rows(budget),
            zone=zone,
            forget_inputs=crowds_page_cache(
                items,
                rows,
                spill_bytes_per_row(items, cmap, handsets=True),
                budget,
            ),
        )

        # The given record ids are kept by their own hash (ids/bucket=N), so a day added
        # later is checked for repeats against the whole month, reading one bucket at a time.
        def earlier(b: int) -> list[pa.ChunkedArray]:
            if existing is None:
                return []
            files = _part_files(store, "ids", b, existing)
            return [_read_store_file(f)["record_id"] for f in files]

        def keep(b: int, ids: pa.ChunkedArray) -> None:
            path = _bucket_dir(store, "ids", b) / name
            _write(pa.table({"record_id": ids}), path)
            written.append(path)

        warning = repeated_id_warning(spilled, earlier, keep, workers)
        reports: list[InputReport] = []
        rejects: list[pa.Table] = []
        given: set[str] = set()  # the contract columns the input had
        jobs = sorted(spilled.parts)
        if progress is not None:
            progress.phase("writing buckets", sum(spilled.rows.values()), len(jobs))
        formats = cmap.time_formats() if cmap is not None else None
        # Buckets are written ``at_once`` at a time (their files are their own); the
        # reports and rejects are gathered in bucket order, whichever finishes first.
        at_once = store_plan(rows, n_buckets, budget, workers)[0]

        flight = Flight()

        def one(job: tuple[str, int]) -> tuple[InputReport, pa.Table | None, set[str]]:
            """Normalize, sort and write one bucket; its input report, its rows set
            aside (None: none), and the contract columns it had."""
            with flight.task():  # stops here too once prepare has given up
                key, b = job
                raw = _read_bucket(spilled.parts[job])
                had = {c for c in raw.column_names if c in COLUMNS}
                normalized = normalize(
                    RawInput(raw, ["bucket"], np.zeros(1, np.int64), time_formats=formats),
                    tz=zone,
                    threads=1 if at_once > 1 else 2,
                )
                flight.go_on()
                table = _sorted_valid(normalized, "msisdn" if key == "subscriber" else "imei")
                if key != "subscriber":
                    table = table.select([c for c in table.column_names if c in handset_columns])
                flight.go_on()
                if table.num_rows:
                    target = _bucket_dir(store, key, b) / name
                    try:
                        _write(table, target)
                    except OSError as exc:  # say where: the store, not the spill
                        exc.filename = exc.filename or str(target)
                        raise
                _remove(spilled.parts[job])
                aside = normalized.rejects() if normalized.report.rows_set_aside else None
                return normalized.report, aside, had

        done: dict[tuple[str, int], tuple[InputReport, pa.Table | None, set[str]]] = {}
        # Every file a bucket may write, so that a failure in any bucket removes what
        # the others wrote meanwhile.
        written.extend(_bucket_dir(store, key, b) / name for key, b in jobs)
        with flight.pool(at_once) as pool:
            for job, outcome in _each_done(pool, one, jobs):
                done[job] = outcome
                if progress is not None:
                    progress.advance(spilled.rows[job], 1)
        for job in jobs:
            if job[0] == "subscriber":
                bucket_report, aside, had = done[job]
                given.update(had)
                reports.append(bucket_report)
                if aside is not None:
                    rejects.append(aside)
        report = sum_reports(reports)
        report.files = spilled.files
        report.warnings = [warning] if warning else []
        report.layouts = dict(spilled.layouts)
        report.disagreements = dict(spilled.disagreements)
        # Every column the input had, also those of files with no row.
        given.update(c for c in spilled.columns if c in COLUMNS)
        if rejects:
            table = pa.concat_tables(rejects, promote_options="permissive")
            table = order_rejects(with_columns(table, ["reason", *sorted(given)]))
            path = store / "rejects" / name
            _write(table, path)
            written.append(path)
        entry = {
            "part": part,
            "file": name,
            "files": spilled.files,
            "rows_read": report.rows_read,
            "rows_used": report.rows_used,
            "columns": sorted(given),
            "seconds": round(time.perf_counter() - started, 3),
        }
        if existing is None:
            manifest = Manifest(
                buckets=n_buckets,
                tz=zone,
                column_map=str(column_map) if isinstance(column_map, (str, Path)) else None,
                report=report,
                parts=[entry],
            )
        else:
            manifest = existing
            manifest.report = sum_reports([existing.report, report])
            manifest.report.warnings = report.warnings  # checked against the whole store
            manifest.parts.append(entry)
        store.mkdir(parents=True, exist_ok=True)  # a month of no row writes no bucket
        tmp = store / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(store / MANIFEST)  # the new part counts only once this lands
        written.clear()
        return manifest
    except OSError as exc:  # a place that cannot be written, a full disk
        raise _store_error(exc, store, directory) from None
    finally:

        def clean_up() -> None:
            _remove(written)  # a failed prepare leaves the store as it was
            if created and not (store / MANIFEST).is_file():  # nor a half-made new store
                shutil.rmtree(store, ignore_errors=True)
            shutil.rmtree(directory, ignore_errors=True)

        try:
            through_ctrl_c(clean_up)
        finally:
            if progress is not None:
                progress.close()


def _read_store_file(path: Path, **options: Any) -> pa.Table:
    """One Parquet file of a store (``pq.read_table`` options), or one line naming it when
    it cannot be read (a damaged or foreign file)."""
    try:
        return pq.read_table(path, **options)
    except (OSError, pa.ArrowException) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        reason = reason.split(f"'{path}': ", 1)[-1]  # Arrow's message names the file too
        raise InputError(
            f"{path}: cannot read this file of the store ({reason}); prepare the store again"
        ) from None


def _part_files(store: Path, key: str, b: int, manifest: Manifest) -> list[Path]:
    """The bucket's files of the parts the manifest lists (a part being written by a
    prepare still running is not listed yet)."""
    folder = _bucket_dir(store, key, b)
    names = [p["file"] for p in manifest.parts]
    return [folder / n for n in names if (folder / n).is_file()]


def read_store_bucket(
    store: str | Path, key: Key, b: int, columns: list[str] | None = None
) -> pa.Table:
    """All rows of one bucket of a store."""
    root = Path(store)
    manifest = load_manifest(root)
    files = _part_files(root, key, b, manifest)
    tables = [_read_store_file(f, columns=columns) for f in files]
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="permissive")


def subscriber_input(
    store: str | Path, msisdn: str, follow_handsets: bool = True
) -> tuple[RawInput, dict[str, int]]:
    """One subscriber's rows, plus the rows of the handsets they used, read through the
    buckets and the row-group statistics: a few row groups, whatever the month's size.

    The store keeps rows set aside apart (``rejects/``); the same rows an investigation
    of the input would read and set aside are counted here, by reason."""
    from telediag.read import _key_columns

    root = Path(store)
    manifest = load_manifest(root)
    number = str(msisdn).strip()
    b = int(bucket_of(pa.array([number]), manifest.buckets)[0])
    own = [
        _read_store_file(f, filters=pc.field("msisdn") == number)
        for f in _part_files(root, "subscriber", b, manifest)
    ]
    tables = [t for t in own if t.num_rows]
    # The rejects' keys read as an input's are (trimmed msisdn, plausible IMEI only).
    rejects = store_rejects(root)
    keys = _key_columns(rejects, None) if "msisdn" in rejects.column_names else None
    own_rejects = (
        np.zeros(rejects.num_rows, bool)
        if keys is None
        else np.asarray(pc.fill_null(pc.equal(keys["msisdn"], number), False), dtype=bool)
    )
    taken = own_rejects.copy()
    if follow_handsets and (tables or own_rejects.any()):
        found = [t["imei"] for t in tables]
        if keys is not None:
            found.append(keys["imei"].filter(pa.array(own_rejects)).combine_chunks())
        imeis = pc.unique(pa.chunked_array(found, type=pa.string()).drop_null())
        if len(imeis):
            which = bucket_of(imeis, manifest.buckets)
            for hb in np.unique(which):
                wanted = imeis.filter(pa.array(which == hb))
                cond = pc.field("imei").isin(wanted) & (pc.field("msisdn") != number)
                for f in _part_files(root, "handset", int(hb), manifest):
                    part = _read_store_file(f, filters=cond)
                    if part.num_rows:
                        tables.append(part)
            if keys is not None:
                taken |= np.asarray(pc.fill_null(pc.is_in(keys["imei"], imeis), False))
    aside = Counter(rejects["reason"].filter(pa.array(taken)).to_pylist())
    if not tables:
        empty = {c: pa.array([], type=t) for c, t in COLUMNS.items()}
        tables = [pa.table(empty)]
    table = _concat(tables)
    # The store holds every contract column; an investigation must still know which ones
    # the input had (a column the feed lacks leaves a rule unable to check, while a null
    # in a column it has may mean something, such as visited_mcc null = at home).
    given = set().union(*(part.get("columns", COLUMNS) for part in manifest.parts))
    table = table.select([c for c in table.column_names if c in given])
    # Which layout each file was read with holds for any subscriber; disagreements were
    # counted over the month's rows, so they are told as the month's.
    month = manifest.report
    warnings = [
        f"the column map's signals disagreed on {n} row(s) of the month for {column} "
        "(counted when the store was prepared, not per subscriber)"
        for column, n in sorted(month.disagreements.items())
    ]
    raw = RawInput(
        table=table,
        stems=["store"],
        offsets=np.zeros(1, np.int64),
        files=[str(root)],
        layouts=dict(month.layouts),
        warnings=warnings,
    )
    return raw, dict(aside)


def store_rejects(store: str | Path) -> pa.Table:
    """The rows set aside while preparing the store, ordered by record id."""
    root = Path(store)
    manifest = load_manifest(root)
    files = [root / "rejects" / p["file"] for p in manifest.parts]
    # Text throughout (stores made before rejects were all text may hold typed parts).
    tables = [
        pa.table({c: as_text(t[c]) for c in t.column_names})
        for t in (_read_store_file(f) for f in files if f.is_file())
    ]
    if not tables:  # no row set aside: the columns a scan of the input would show
        given = set().union(*(part.get("columns", COLUMNS) for part in manifest.parts))
        names = ["reason", "record_id", *(c for c in COLUMNS if c in given and c != "record_id")]
        return pa.table({c: pa.array([], pa.string()) for c in names})
    given = set().union(*(part.get("columns", COLUMNS) for part in manifest.parts))
    table = pa.concat_tables(tables, promote_options="permissive")
    return order_rejects(with_columns(table, ["reason", *(c for c in COLUMNS if c in given)]))


def store_plan(rows: int, buckets: int, budget: int, workers: int) -> tuple[int, int]:
    """(buckets scanned at once, parts each bucket is scanned in) for a store of
    ``rows`` rows in ``buckets`` buckets, so that the scans in flight fit ``budget``.

    A store's buckets were sized when it was prepared, perhaps under a larger budget: a
    bucket too large for this one is scanned in parts, cut by a finer hash of its key
    (every subscriber, or handset, lands whole in one part).
    """
    room = max(budget - BASE_BYTES, 64 * 2**20)
    # Buckets vary around the mean: allow half as much again.
    need = math.ceil(rows / max(1, buckets) * 1.5) * BYTES_PER_ROW
    parts = max(1, math.ceil(need / room))
    at_once = max(1, min(workers, int(room // max(1, math.ceil(need / parts)))))
    return at_once, parts


def _split_bucket(table: pa.Table, key: Key, buckets: int, parts: int) -> list[pa.Table]:
    """One store bucket cut into ``parts`` by the key's hash (the bucket number being
    the hash modulo ``buckets``, the part is the next digit in base ``buckets``)."""
    if parts <= 1:
        return [table]
    which = (key_hash(table[KEY_COLUMN[key]]) // np.uint64(buckets)) % np.uint64(parts)
    which = which.astype(np.int64)
    return [table.filter(pa.array(which == p)) for p in range(parts)]


def scan_store(
    store: str | Path,
    rules: Sequence[Rule],
    settings: ScanSettings,
    *,
    workers: int = 1,
    budget: int | None = None,
    progress: BucketProgress | None = None,
    timings: dict[str, float] | None = None,
) -> BucketResult:
    """Scan a store bucket by bucket: no read of the raw input, no spill. Up to
    ``workers`` buckets run at once, fewer (and large buckets in parts) when ``budget``
    (bytes; default: :func:`~telediag.outofcore.default_budget`) calls for it."""

    root = Path(store)
    manifest = load_manifest(root)
    by_subscriber, by_handset = split_rules(rules)
    jobs: list[tuple[Key, int]] = [("subscriber", b) for b in range(manifest.buckets)]
    if by_handset:
        jobs += [("handset", b) for b in range(manifest.buckets)]
    at_once, parts = store_plan(
        manifest.report.rows_read,
        manifest.buckets,
        budget if budget is not None else default_budget(),
        workers,
    )
    started = time.perf_counter()
    if progress is not None:
        progress.phase("scanning buckets", manifest.report.rows_used, len(jobs))

    def one(job: tuple[Key, int]) -> tuple[BucketResult, int]:
        key, b = job
        table = read_store_bucket(root, key, b)
        if table.num_rows == 0:
            return _none(), 0
        chosen = by_subscriber if key == "subscriber" else by_handset
        rows = table.num_rows if key == "subscriber" else 0
        pieces = _split_bucket(table, key, manifest.buckets, parts)
        del table
        found = []
        while pieces:  # one part at a time; each is let go once scanned
            piece = pieces.pop(0)
            found.append(scan_bucket(piece, chosen, settings, key=key, workers=1))
            del piece
        return (found[0] if len(found) == 1 else combine(found)), rows

    results: dict[tuple[Key, int], BucketResult] = {}
    pool = ThreadPoolExecutor(max_workers=at_once)
    try:
        for job, (result, rows) in _each_done(pool, one, jobs):
            results[job] = result
            if progress is not None:
                progress.advance(rows, 1)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if progress is not None:
            progress.close()
    combined = combine(results[j] for j in jobs)
    combined.report = manifest.report
    combined.rejects = store_rejects(root)
    if timings is not None:
        timings["scan buckets"] = time.perf_counter() - started
    return combined


def _none() -> BucketResult:
    from telediag.findings import empty_evidence, empty_findings

    return BucketResult(
        findings=empty_findings(),
        evidence=empty_evidence(),
        report=InputReport(files=[], rows_read=0, rows_used=0),
    )
