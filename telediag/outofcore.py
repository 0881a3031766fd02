"""Months larger than memory: spill the input into buckets, then scan bucket by bucket.

One streaming pass reads the input a batch at a time (Parquet row groups, CSV blocks),
applies the column map, fills in the record ids and appends every row to the spill file
of its subscriber bucket (see :mod:`telediag.buckets`), and marks the handsets the
handset rules may need (:class:`telediag.buckets.HandsetMarks`; TD004: those with a
failed MMS submit). The subscriber buckets are then scanned, up to ``workers`` at a
time; each writes the rows it used of the marked handsets, with the handset rules'
columns, into handset buckets, and its spill files are removed. Together the subscriber
buckets also tell the handsets on which the handset rules may find something (TD004: a
failed MMS submit there, and MMS submits from two subscribers), which are few; only
their rows are scanned. Copying every row with an IMEI to a handset bucket in the first
pass instead nearly doubled the spill (0.82 GB -> 1.5 GB at 10M rows) and its time, and
gathering the rows from the spill files after the subscriber buckets read every spilled
row twice. At no point does more than a batch of the input, plus the buckets being
scanned, sit in memory.

The spill files are Arrow IPC streams compressed with LZ4, written with pyarrow directly:
a spill file is read back once, whole, by the same program, so the format that costs
least to write and to read wins (no Parquet encoding). Label columns
(:data:`telediag.read.FEW_VALUES`) stay dictionaries, as the in-memory reader holds
them: they are gathered as small integers, and a stream, unlike an IPC file, may carry
each batch's own dictionary. At 10M rows that made the spill 15% smaller and the whole
scan 10% faster. The
bucket hash must be telediag's own (:func:`telediag.buckets.bucket_of`, the one a cluster
engine uses too), which an SQL engine's partitioned ``COPY`` would not compute. The
directory is removed when the scan ends, whether it succeeded, failed or was
interrupted.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from telediag.allocator import streaming_decay
from telediag.buckets import (
    BucketResult,
    HandsetMarks,
    KeySet,
    bucket_of,
    combine,
    handset_rows,
    key_hash,
    scan_bucket,
    split_rules,
    with_record_ids,
)
from telediag.catalog import Rule
from telediag.chunks import plain
from telediag.colmap import ColumnMap, MapStats
from telediag.conform import conform
from telediag.context import ScanSettings
from telediag.csvread import is_csv, iter_csv
from telediag.engine import pick_seeds
from telediag.errors import InputError, TelediagError
from telediag.flight import Flight, through_ctrl_c
from telediag.normalize import (
    duplicate_id_message,
    explicit_ids,
    order_rejects,
    repeated_ids,
    with_columns,
)
from telediag.read import (
    FEW_VALUES,
    RawInput,
    _concat,
    _item_map,
    _number_identifiers,
    _wanted_source_columns,
    dictionary_columns,
)
from telediag.schema import COLUMNS, REQUIRED

#: Peak memory of an in-memory scan per input row, all stages included (measured on
#: the benchmark month: about 0.4 GB per million rows), with a margin.
BYTES_PER_ROW = 500
#: Memory the interpreter and its libraries take before any row is read.
BASE_BYTES = 300 * 2**20
#: Rows per batch of the spill pass: large enough that each bucket's slice of a batch
#: is a reasonable IPC record batch (tiny ones compress badly and cost per-batch
#: overhead), small enough that a few batches in flight stay well inside any budget.
#: Larger batches were slower, not faster: gathering a batch in bucket order jumps
#: across it (with 52 buckets, 10M rows spilled in 13.5 s with batches of 512k rows,
#: 15.4 s with 1.7M, at twice the memory).
BATCH_ROWS = 1 << 19
#: Fewest rows per batch of the spill pass, whatever the budget.
MIN_BATCH_ROWS = 1 << 14
#: Memory the spill pass holds per row of a batch: the batch itself, the next one read
#: ahead, its copy ordered by bucket and (for a store) the handset rows' copy (measured
#: peak, with a margin).
SPILL_BYTES_PER_ROW = 1000
#: Text bytes per gzip byte of a CSV, when the gzip trailer cannot say (measured on
#: a 2M-row CSV export, 68 MB gzipped: about 3.5x; compressors do 3-10x on CSV).
GZIP_RATIO = 4
#: CSV rows per byte of file, to estimate a CSV's rows without reading it.
CSV_BYTES_PER_ROW = 120

_T = TypeVar("_T")
_K = TypeVar("_K")

_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str) -> int:
    """``2GB``, ``512M``, ``1.5 GiB`` or a number of bytes, as bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if m is None:
        raise TelediagError(f"cannot read memory size {text!r} (write e.g. 2GB or 512MB)")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def available_memory() -> int:
    """Bytes of RAM available now (MemAvailable), or the physical RAM if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def default_budget() -> int:
    """Half of the memory available now: room for the page cache and other programs."""
    return available_memory() // 2


def estimate_rows(sources: Sequence[object]) -> int:
    """Rows of the input, from Parquet footers and text file sizes (nothing is read; a
    file that cannot be opened is left to the reader, which names the problem)."""
    total = 0
    for item in sources:
        if isinstance(item, pa.Table):
            total += item.num_rows
        elif isinstance(item, Path) and item.suffix.lower() == ".parquet":
            try:
                total += pq.ParquetFile(item).metadata.num_rows
            except (OSError, pa.ArrowException):
                total += item.stat().st_size // CSV_BYTES_PER_ROW + 1
        elif isinstance(item, Path) and item.is_file():
            total += text_bytes(item) // CSV_BYTES_PER_ROW + 1
    return total


def text_bytes(path: Path) -> int:
    """Bytes of a text file once decompressed. A gzip file records its size (modulo
    2**32) in its last four bytes; text compresses at least twofold, which settles
    how many times the size wrapped around. A file of several gzip members records
    only its last member's size: when that is too small and no wrap-around is possible,
    CSV's usual ratio (:data:`GZIP_RATIO`) stands in. Other files: their size on disk."""
    size = path.stat().st_size
    if not path.name.lower().endswith(".gz") or size < 18:
        return size
    try:
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            total = int.from_bytes(f.read(4), "little")
    except OSError:
        return size * GZIP_RATIO
    if total >= 2 * size:
        return total
    if size * GZIP_RATIO < 2**32:  # too small to have wrapped: several members
        return size * GZIP_RATIO
    while total < 2 * size:
        total += 2**32
    return total


#: Bytes a row takes in the spill files of a scan whose label columns come as
#: dictionaries (Parquet read without a column map), to judge how much of the page cache
#: a spill will want: 63 on the 10M benchmark month, 51 at 1M (LZ4 IPC).
SPILL_FILE_BYTES_PER_ROW = 65
#: The same when the labels come as text (CSV, a column map, tables): 100 on 300k
#: synthetic rows, against 59 from the same rows as Parquet.
SPILL_FILE_BYTES_PER_TEXT_ROW = 100
#: The share of the memory left beside a scan that input and spill files may take in the
#: page cache before the input's pages are dropped.
PAGE_CACHE_SHARE = 0.75


def spill_bytes_per_row(
    sources: Sequence[object], cmap: ColumnMap | None, handsets: bool = False
) -> int:
    """What a row of ``sources`` will take in the spill files: label columns stay
    dictionaries only from Parquet read without a map, and a spill with handset buckets
    (a store's) holds every row twice (1.97x measured)."""
    coded = cmap is None and all(isinstance(s, Path) and not _is_csv(s) for s in sources)
    per_row = SPILL_FILE_BYTES_PER_ROW if coded else SPILL_FILE_BYTES_PER_TEXT_ROW
    return per_row * (2 if handsets else 1)


def crowds_page_cache(
    sources: Sequence[object],
    rows: int,
    per_row: int = SPILL_FILE_BYTES_PER_ROW,
    budget: int = 0,
) -> bool:
    """Would the input files and the spill files take more than
    :data:`PAGE_CACHE_SHARE` of the memory available now beside the scan? The scan's
    ``budget`` counts up to half the available memory (the default budget): a budget is
    a ceiling, and one larger than the memory does not leave less room than that.
    Then each input file's pages are dropped from the page cache once the spill pass
    has read it (:func:`forget_cached`): the scan reads an input once, and the room is
    better left to the spill files, which are read back.

    On the 24 GB benchmark machine (22.3 GB available), a store prepared from 100M rows
    (4.2 GB of Parquet, 14.5 GB of spill) read a third of its spill back from disk when
    the input's pages stayed: dropped. A 100M scan under ``--memory 3GB`` (6.3 GB of
    spill) keeps them, and the next scan of the month reads it from memory: the spill
    pass took 65.6-66.5 s so, and 68.7-78.0 s reading the month from disk (when half
    the available memory was the limit, with a stale 85 bytes a row)."""
    inputs = 0
    for item in sources:
        if isinstance(item, Path):
            with contextlib.suppress(OSError):
                inputs += item.stat().st_size
    available = available_memory()
    room = (available - min(max(budget, 0), available // 2)) * PAGE_CACHE_SHARE
    return inputs + rows * per_row > room


def forget_cached(path: Path) -> None:
    """Ask the kernel to drop ``path``'s pages from the page cache (where it can)."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        advise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def can_stream(sources: Sequence[object], cmap: ColumnMap | None = None) -> bool:
    """Can the spill pass read these inputs a batch at a time? Parquet files, CSV files
    (in the column map's dialect, each through its layout) and Arrow tables; other kinds
    of input are scanned in memory."""
    return all(
        isinstance(item, pa.Table)
        or (isinstance(item, Path) and (item.suffix.lower() == ".parquet" or _is_csv(item)))
        for item in sources
    )


def fits_in_memory(rows: int, budget: int) -> bool:
    """Would a one-piece scan of ``rows`` rows stay within ``budget`` bytes?"""
    return BASE_BYTES + rows * BYTES_PER_ROW <= budget


#: The least memory any scan takes, whatever the budget: the interpreter with its
#: libraries (about 150 MB) and the spill pass's smallest batches in flight, measured at
#: 440-450 MB on the benchmark machine with 400 MB and 256 MB budgets.
MIN_BUDGET = 512 * 2**20


def budget_warning(budget: int) -> str | None:
    """One line when ``budget`` is below what a scan needs whatever it is told."""
    if budget >= MIN_BUDGET:
        return None
    return (
        f"--memory {budget / 2**20:.0f}MB is below the {MIN_BUDGET // 2**20}MB a scan "
        "needs whatever its budget (the interpreter, its libraries and one input batch); "
        "it runs with the smallest batches and buckets but may use that much"
    )


def spill_batch_rows(budget: int | None) -> int:
    """Rows per batch of the spill pass: :data:`BATCH_ROWS`, fewer when the budget,
    after what the interpreter takes, could not hold the batches in flight."""
    if budget is None:
        return BATCH_ROWS
    room = (budget - BASE_BYTES) // SPILL_BYTES_PER_ROW
    return int(min(BATCH_ROWS, max(MIN_BATCH_ROWS, room)))


def plan_buckets(rows: int, budget: int, workers: int) -> int:
    """Buckets so that ``workers`` buckets scanned at once stay within the budget."""
    per_worker = max(budget - BASE_BYTES, 64 * 2**20) / max(1, workers)
    # A bucket's rows vary around the mean; aim at two thirds of the share.
    needed = rows * BYTES_PER_ROW / (per_worker * 2 / 3)
    return max(workers, math.ceil(needed))


class BucketProgress(Protocol):
    """Progress of a bucketed scan: a phase, its total, and what is done."""

    def phase(self, name: str, rows: int, buckets: int) -> None: ...
    def advance(self, rows: int, buckets: int = 0) -> None: ...
    def close(self) -> None: ...


def _is_csv(path: Path) -> bool:
    return is_csv(path)


def _batches(
    item: Path | pa.Table, wanted: set[str], cmap: ColumnMap | None, rows: int = BATCH_ROWS
) -> Iterator[pa.Table]:
    """The input ``rows`` rows at a time (CSV: blocks of about as many), before the
    column map."""
    if isinstance(item, pa.Table):
        keep = _wanted_source_columns(item.column_names, wanted, cmap)
        table = item.select(keep if keep is not None else item.column_names)
        yield table.slice(0, 0)
        for batch in table.to_batches(max_chunksize=rows):
            yield pa.Table.from_batches([batch])
        return
    try:
        if _is_csv(item):
            dialect = cmap.csv if cmap is not None else None
            yield from iter_csv(
                item,
                dialect,
                lambda names: _wanted_source_columns(names, wanted, cmap),
                block_size=min(1 << 30, max(1 << 20, rows * CSV_BYTES_PER_ROW)),
            )
        else:
            meta = pq.read_metadata(item)  # the footer, read once
            schema = meta.schema.to_arrow_schema()
            cols = _wanted_source_columns(schema.names, wanted, cmap)
            names = cols if cols is not None else schema.names
            pf = pq.ParquetFile(
                item, metadata=meta, read_dictionary=dictionary_columns(schema, names, cmap)
            )
            yield pf.schema_arrow.empty_table().select(names)
            for batch in pf.iter_batches(batch_size=rows, columns=cols):
                yield pa.Table.from_batches([batch])
    except (OSError, pa.ArrowException) as exc:
        kind = "CSV" if isinstance(item, Path) and _is_csv(item) else "Parquet"
        raise InputError(f"{item}: cannot read {kind}: {exc}") from None


#: Seconds the spill pass waits, when it stops, for the batch being read ahead.
READ_AHEAD_WAIT = 30.0


def _prefetch(items: Iterator[pa.Table], pool: ThreadPoolExecutor) -> Iterator[pa.Table]:
    """The same items, the next one read in ``pool`` (one thread) while the caller works
    on the current one (decoding and partitioning overlap; both release the GIL)."""
    ahead = pool.submit(next, items, None)
    try:
        while True:
            item = ahead.result()
            if item is None:
                return
            ahead = pool.submit(next, items, None)
            yield item
    finally:
        # The reader is idle when the caller goes on, but a read that never ends (a
        # second Ctrl-C cut the reader pool's shut-down short) must not hang the exit.
        if not ahead.cancel():
            wait([ahead], timeout=READ_AHEAD_WAIT)


#: The spill key of the given record ids, partitioned by their own hash.
ID_KEY = "record_id"
#: The spill key of the rows subscriber buckets hand on to the handset buckets.
HANDED = "handed"


@dataclass
class Spilled:
    """Where each bucket's rows went, and what was read."""

    directory: Path
    buckets: int
    files: list[str] = field(default_factory=list)
    #: (key, bucket) -> spill files and their row count.
    parts: dict[tuple[str, int], list[Path]] = field(default_factory=dict)
    rows: dict[tuple[str, int], int] = field(default_factory=dict)
    rows_read: int = 0
    #: Input name -> the column map layout it was read with (maps with layouts only).
    layouts: dict[str, str] = field(default_factory=dict)
    #: Canonical column -> rows where the map's alternatives gave different values.
    disagreements: dict[str, int] = field(default_factory=dict)
    #: What the reader noticed about in-memory inputs (identifiers held as numbers).
    warnings: list[str] = field(default_factory=list)
    #: The contract columns the inputs had, in the order first seen.
    columns: list[str] = field(default_factory=list)

    def add(self, other: Spilled) -> None:
        """Take in the files of ``other`` (spilled into the same buckets elsewhere)."""
        for slot, paths in other.parts.items():
            self.parts.setdefault(slot, []).extend(paths)
            self.rows[slot] = self.rows.get(slot, 0) + other.rows.get(slot, 0)


def _take(table: pa.Table, indices: pa.Array, pool: ThreadPoolExecutor | None) -> pa.Table:
    """``table.take(indices)``, its columns gathered by the threads of ``pool`` (Arrow
    gathers one column at a time, and releases the GIL while it does)."""
    if pool is None or table.num_columns < 2:
        return table.take(indices)
    columns = list(pool.map(lambda c: pc.take(c, indices), table.columns))
    return pa.Table.from_arrays(columns, schema=table.schema)


def _bucket_order(which: np.ndarray, buckets: int, within: np.ndarray | None) -> np.ndarray:
    """Row order by bucket, and with ``within`` (one 64-bit hash per row) by its high
    bits inside a bucket, so that a subscriber's rows of a batch lie together in the
    spill: LZ4 then finds its number, IMSI and IMEI repeated (the spill of the 10M
    month into 6 buckets: 20% smaller, compressed in 28% less time). The order within
    a bucket is of no consequence to its scan, which sorts by subscriber and time."""
    n = which.size
    bucket_bits = max(1, (buckets - 1).bit_length())
    row_bits = max(1, (n - 1).bit_length())
    if within is None or bucket_bits + row_bits > 48:
        # A stable sort of small integers is a radix sort (linear) in numpy.
        small = which.astype(np.int16) if buckets <= 1 << 15 else which
        return np.asarray(np.argsort(small, kind="stable"))
    # Bucket in the top bits, then the hash's high bits, then the row number: one
    # vectorized sort of 64-bit keys, the row read back from the low bits.
    hash_bits = 64 - bucket_bits - row_bits
    key = which.astype(np.uint64) << np.uint64(64 - bucket_bits)
    key |= (within >> np.uint64(64 - hash_bits)) << np.uint64(row_bits)
    key |= np.arange(n, dtype=np.uint64)
    key.sort()
    return np.asarray(key & np.uint64((1 << row_bits) - 1), dtype=np.int64)


class _Writers:
    """One IPC stream per bucket for the input file being read, and a new one when a
    batch's schema differs from the stream's (a label column held as a dictionary in one
    batch and as text in the next, see :func:`_spill_form`)."""

    def __init__(
        self, spilled: Spilled, key: str, n: int, pool: ThreadPoolExecutor | None = None
    ) -> None:
        self.spilled, self.key, self.n = spilled, key, n
        self.buckets = spilled.buckets
        self.open: dict[int, tuple[pa.ipc.RecordBatchStreamWriter, pa.Schema]] = {}
        self.options = pa.ipc.IpcWriteOptions(compression="lz4", use_threads=False)
        self.pool = pool

    def write(
        self,
        table: pa.Table,
        which: np.ndarray,
        rows: np.ndarray | None = None,
        within: np.ndarray | None = None,
    ) -> None:
        """Append ``rows`` of ``table`` (default: all), whose buckets are ``which``, to
        their buckets' files, in one gather ordered by bucket, and within a bucket by
        the high bits of ``within`` (64-bit key hashes) if given."""
        if which.size == 0:
            return
        counts = np.bincount(which, minlength=self.buckets)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        if rows is None and within is None and np.count_nonzero(counts) == 1:
            ordered = table  # one bucket, rows in their order: nothing to gather
        else:
            order = _bucket_order(which, self.buckets, within)
            ordered = _take(table, pa.array(order if rows is None else rows[order]), self.pool)
        pieces: list[tuple[pa.ipc.RecordBatchStreamWriter, pa.Table]] = []
        for b in np.flatnonzero(counts):
            part = ordered.slice(int(bounds[b]), int(counts[b]))
            slot = (self.key, int(b))
            writer, schema = self.open.get(int(b), (None, None))
            if writer is not None and schema is not None and not schema.equals(part.schema):
                writer.close()
                writer = None
            if writer is None:
                paths = self.spilled.parts.setdefault(slot, [])
                name = f"{self.key}-{int(b):05d}-{self.n:05d}-{len(paths):03d}.arrow"
                path = self.spilled.directory / name
                writer = pa.ipc.new_stream(path, part.schema, options=self.options)
                self.open[int(b)] = (writer, part.schema)
                paths.append(path)
            pieces.append((writer, part))
            self.spilled.rows[slot] = self.spilled.rows.get(slot, 0) + int(counts[b])
        # Each bucket's piece compressed and written by a thread of the pool: one task
        # per piece, where Arrow's own threads would take one per buffer.
        if self.pool is not None and len(pieces) > 1:
            for _ in self.pool.map(lambda piece: piece[0].write_table(piece[1]), pieces):
                pass
        else:
            for writer, part in pieces:
                writer.write_table(part)

    def close(self) -> None:
        for writer, _ in self.open.values():
            writer.close()
        self.open.clear()

    def write_all(self, table: pa.Table, which: np.ndarray, flight: Flight | None = None) -> None:
        """:meth:`write` ``table`` as all these writers will hold, then :meth:`close`;
        with ``flight``, no file once the scan has given up."""
        if flight is not None:
            flight.go_on()
        try:
            self.write(table, which)
        finally:
            self.close()


def spill(
    sources: Sequence[tuple[Path | pa.Table, str]],
    directory: Path,
    buckets: int,
    columns: set[str],
    handsets: bool,
    cmap: ColumnMap | None = None,
    progress: BucketProgress | None = None,
    workers: int = 1,
    batch_rows: int = BATCH_ROWS,
    *,
    zone: str,
    forget_inputs: bool = False,
    marks: HandsetMarks | None = None,
) -> Spilled:
    """Read every input once, ``batch_rows`` rows at a time, and write its rows into
    bucket spill files (with ``workers`` > 1, the next batch is read while the current
    one is written).

    Every row goes to its subscriber bucket with ``columns``. With ``handsets``, every row
    with an IMEI also goes, with the same columns, to its handset bucket (a handset
    bucket then sets aside the same rows as their subscriber buckets). With
    ``forget_inputs``, each input file's pages are dropped from the page cache once it
    has been read (see :func:`crowds_page_cache`). ``marks`` learns, from every batch,
    the handsets the handset rules may need the rows of.
    """
    spilled = Spilled(directory=directory, buckets=buckets)
    stats = MapStats()
    # Threads made once for the whole pass, not for every batch and every input.
    with contextlib.ExitStack() as stack:
        takers = reader = None
        if workers > 1:
            takers = stack.enter_context(ThreadPoolExecutor(max_workers=workers))
            reader = stack.enter_context(ThreadPoolExecutor(max_workers=1))
        for n, (item, stem) in enumerate(sources):
            name = f"<table {n}>" if isinstance(item, pa.Table) else str(item)
            spilled.files.append(name)
            # The map for this input: the layout its header calls for (as read_input has it).
            item_map = _item_map(item, n, cmap, spilled.layouts)
            if isinstance(item, pa.Table):  # as read_input warns about them
                spilled.warnings.extend(_number_identifiers(item, item_map, name))
            writers = {
                key: _Writers(spilled, key, n, takers) for key in ("subscriber", "handset", ID_KEY)
            }
            try:
                batches = _batches(item, columns, item_map, batch_rows)
                spilled.rows_read += _spill_input(
                    _prefetch(batches, reader) if reader else batches,
                    name,
                    stem,
                    n,
                    item_map,
                    stats,
                    writers,
                    handsets,
                    progress,
                    zone,
                    marks,
                )
            finally:
                for writer in writers.values():
                    writer.close()
            if forget_inputs and isinstance(item, Path):
                forget_cached(item)
    spilled.disagreements = dict(stats.disagreements)
    return spilled


def _spill_input(
    batches: Iterator[pa.Table],
    name: str,
    stem: str,
    n: int,
    cmap: ColumnMap | None,
    stats: MapStats,
    writers: dict[str, _Writers],
    handsets: bool,
    progress: BucketProgress | None,
    zone: str,
    marks: HandsetMarks | None = None,
) -> int:
    """Spill the batches of input ``n`` (named ``name``); its rows read."""
    buckets = writers["subscriber"].spilled.buckets
    row0 = 0
    for i, raw in enumerate(batches):
        table = cmap.apply(raw, stats, zone=zone) if cmap is not None else raw
        if i == 0:
            missing = [c for c in REQUIRED if c not in table.column_names]
            if missing:
                raise InputError(f"{name}: missing required column {missing[0]!r}")
        # Conformed as read_input conforms (integral floats as whole numbers...), before
        # any key is hashed: a subscriber's rows meet in one bucket whichever file and
        # type they came in.
        table = _spill_form(conform(table, name), buckets)
        known = writers["subscriber"].spilled.columns
        known.extend(c for c in table.column_names if c not in known)
        rows = table.num_rows
        if rows == 0:
            continue
        if marks is not None:
            marks.add(table, name)
        local = np.arange(row0, row0 + rows, dtype=np.int64)
        part = RawInput(table, [stem], np.zeros(1, np.int64), [name], local_rows=local)
        if "record_id" in table.column_names:  # given ids, to find repeats across buckets
            given = explicit_ids(table["record_id"]).combine_chunks()
            given = given.filter(given.is_valid())
            writers[ID_KEY].write(pa.table({"record_id": given}), bucket_of(given, buckets))
        table = with_record_ids(part)
        row0 += rows
        hashes = key_hash(table["msisdn"])
        writers["subscriber"].write(
            table, (hashes % np.uint64(buckets)).astype(np.int32), within=hashes
        )
        if handsets:
            keep = handset_rows(table, name)
            if keep.any():  # gathered once, with the bucket order: no filtered copy
                picked = np.flatnonzero(keep)
                which = bucket_of(table["imei"].take(pa.array(picked)), buckets)
                writers["handset"].write(table, which, picked)
        if progress is not None:
            progress.advance(rows)
    return row0


def repeated_id_warning(
    spilled: Spilled,
    earlier: Callable[[int], list[pa.ChunkedArray]] | None = None,
    keep: Callable[[int, pa.ChunkedArray], None] | None = None,
    workers: int = 1,
) -> str | None:
    """The input's warning about repeated record ids, found across subscriber buckets: the
    given ids were spilled a second time by their own hash, so every repeat of an id
    lies in one id bucket. ``earlier`` gives an id bucket's ids read before (a store's
    earlier parts), and ``keep`` receives the new ones. Id buckets are checked
    ``workers`` at a time (at 100M rows, 52 of them took 4.8 s one by one), and their
    spill files are removed as they are read."""

    flight = Flight()

    def check(b: int) -> pa.StructArray | None:
        with flight.task():  # ``keep`` may write files: the caller's clean-up waits
            paths = spilled.parts.pop((ID_KEY, b), [])
            spilled.rows.pop((ID_KEY, b), None)
            new = _read_bucket(paths)["record_id"] if paths else None
            _remove(paths)
            if new is not None and keep is not None:
                flight.go_on()  # not a file more once the caller has given up
                keep(b, new)
            ids = [*(earlier(b) if earlier is not None else [])]
            if new is not None:
                ids.append(new)
            if not ids:
                return None
            repeats = repeated_ids(
                pa.chunked_array([c for a in ids for c in a.chunks], pa.string())
            )
            return repeats if len(repeats) else None

    # On an error or Ctrl-C, buckets not started are dropped and the ones running stop
    # before writing; those writing are waited for, through further Ctrl-C.
    with flight.pool(workers) as pool:
        found = [r for r in pool.map(check, range(spilled.buckets)) if r is not None]
    if not found:
        return None
    return duplicate_id_message(pa.concat_arrays(found))


#: A label column stays a dictionary in the spill while every bucket's copy of the
#: batch's dictionary adds at most this share of the batch's rows.
DICTIONARY_SHARE = 1 / 8


def _spill_form(table: pa.Table, buckets: int) -> pa.Table:
    """The batch's columns as spill files hold them. A label column (:data:`FEW_VALUES`)
    that came as a dictionary of text stays one, with 32-bit indices, while its values
    are few: each bucket's piece of the batch carries the whole dictionary, so
    ``buckets`` copies of it must stay under :data:`DICTIONARY_SHARE` of the rows.
    Other dictionaries become the values they stand for. (A dictionary holding a null
    entry, which Arrow cannot merge, arrives here as its values: see
    :func:`telediag.conform.conform_column`.)"""
    columns = []
    changed = False
    room = max(1, table.num_rows) * DICTIONARY_SHARE / max(1, buckets)
    for name, column in zip(table.column_names, table.columns, strict=True):
        t = column.type
        if pa.types.is_dictionary(t):
            changed = True
            keep = (
                name in FEW_VALUES
                and pa.types.is_string(t.value_type)
                and all(len(c.dictionary) <= room for c in column.chunks)
            )
            labels = pa.dictionary(pa.int32(), pa.string())
            column = column.cast(labels) if keep else plain(column)
        columns.append(column)
    return pa.table(columns, names=table.column_names) if changed else table


#: Spill files are read by the thread that asks, not by Arrow's threads one buffer each:
#: buckets are read by several threads at once, and a bucket's pieces are small (52
#: buckets of the 10M month: 1.15 s -> 0.73 s to read the handset rules' columns).
_READ = pa.ipc.IpcReadOptions(use_threads=False)


def _read_bucket(paths: Sequence[Path]) -> pa.Table:
    """A bucket's spill files as one table."""
    if not paths:
        return pa.table({})
    tables = []
    for path in paths:
        with pa.OSFile(str(path), "rb") as f:
            tables.append(pa.ipc.open_stream(f, options=_READ).read_all())
    return _concat(tables)


@streaming_decay()
def scan_out_of_core(
    sources: Sequence[tuple[Path | pa.Table, str]],
    rules: Sequence[Rule],
    settings: ScanSettings,
    *,
    columns: set[str],
    handset_columns: set[str],
    cmap: ColumnMap | None = None,
    budget: int | None = None,
    workers: int = 1,
    buckets: int | None = None,
    spill_dir: str | Path | None = None,
    progress: BucketProgress | None = None,
    timings: dict[str, float] | None = None,
) -> BucketResult:
    """Spill the input into subscriber buckets and scan them, ``workers`` buckets at a
    time; then gather the rows of the handsets the handset rules may find something on
    into handset buckets, and scan those.

    ``columns`` are the contract columns the subscriber rules need, ``handset_columns``
    those of the handset rules. The spill directory is made under ``spill_dir`` (default:
    the system's temporary directory) and removed before returning or raising.
    """
    timings = timings if timings is not None else {}
    budget = budget if budget is not None else default_budget()
    by_subscriber, by_handset = split_rules(rules)
    items = [item for item, _ in sources]
    rows = estimate_rows(items)
    n_buckets = buckets or plan_buckets(rows, budget, workers)
    directory = spill_directory(spill_dir)
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    flight = Flight()
    try:
        started = time.perf_counter()
        if progress is not None:
            progress.phase("partitioning", rows, 0)
        marks = HandsetMarks(by_handset) if by_handset else None
        spilled = spill(
            sources,
            directory,
            n_buckets,
            columns | (handset_columns if by_handset else set()),
            False,
            cmap,
            progress,
            workers,
            spill_batch_rows(budget),
            zone=settings.tz,
            forget_inputs=crowds_page_cache(
                items, rows, spill_bytes_per_row(items, cmap), budget=budget
            ),
            marks=marks,
        )
        warning = repeated_id_warning(spilled, workers=workers)
        timings["partition"] = time.perf_counter() - started

        started = time.perf_counter()
        by_sub = list(range(n_buckets))
        if progress is not None:
            progress.phase("scanning buckets", sum(spilled.rows.values()), n_buckets)
        marked = marks.keys() if marks is not None else None
        # The rows of the marked handsets, handed on by the subscriber buckets as they
        # are scanned: one file each.
        handed = Spilled(directory=spilled.directory, buckets=n_buckets)
        hand_columns = handset_columns | {"record_id", "msisdn", "imei"}

        def one(b: int) -> tuple[BucketResult, Spilled | None]:
            paths = spilled.parts.get(("subscriber", b), [])
            table = _read_bucket(paths)
            if table.num_columns == 0:
                table = _empty_input()
            seeds = by_handset or None
            result = scan_bucket(table, by_subscriber, settings, key="subscriber", seed_rules=seeds)
            kept = None
            if by_handset:
                with flight.task():  # writes files: the clean-up waits for it
                    kept = Spilled(directory=spilled.directory, buckets=n_buckets)
                    writers = _Writers(kept, HANDED, b)
                    aside = result.aside
                    _keep_handset_rows(table, aside, marked, hand_columns, writers, b, flight)
            _remove(paths)
            return result, kept

        done: dict[int, BucketResult] = {}
        for b, (result, kept) in _each_done(pool, one, by_sub):
            done[b] = result
            if kept is not None:
                handed.add(kept)
            if progress is not None:
                progress.advance(spilled.rows.get(("subscriber", b), 0), 1)
        results = [done[b] for b in by_sub]
        timings["scan buckets"] = time.perf_counter() - started
        if by_handset:
            started = time.perf_counter()
            tallies = [done[b].seeds for b in by_sub]
            results.extend(
                _scan_handsets(
                    handed, tallies, by_handset, settings, budget, workers, pool, flight, progress
                )
            )
            timings["scan handsets"] = time.perf_counter() - started
        combined = combine(results)
        # Columns of the input that no bucket's rows set aside had (a file with no row).
        given = ["reason", *(c for c in spilled.columns if c in COLUMNS)]
        combined.rejects = order_rejects(with_columns(combined.rejects, given))
        combined.report.files = spilled.files
        combined.report.warnings = [*spilled.warnings, *([warning] if warning else [])]
        combined.report.layouts = dict(spilled.layouts)
        combined.report.disagreements = dict(spilled.disagreements)
        return combined
    except BaseException as exc:
        flight.stop.set()
        if isinstance(exc, OSError):
            raise spill_error(exc, directory) from None
        raise
    finally:
        # On an error or Ctrl-C, buckets not started are dropped. The scans running
        # finish on their own while the spill directory is removed below (they only
        # read); one writing handset rows is waited for, the others stop before writing.
        pool.shutdown(wait=False, cancel_futures=True)
        flight.land()
        try:
            through_ctrl_c(lambda: shutil.rmtree(directory, ignore_errors=True))
        finally:
            if progress is not None:
                progress.close()


def _each_done(
    pool: ThreadPoolExecutor, work: Callable[[_K], _T], items: Sequence[_K]
) -> Iterator[tuple[_K, _T]]:
    """``work`` on every item in ``pool``: (item, result) as each finishes."""
    futures = {pool.submit(work, item): item for item in items}
    for future in as_completed(futures):
        yield futures[future], future.result()


def _remove(paths: Sequence[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _keep_handset_rows(
    table: pa.Table,
    aside: np.ndarray,
    among: KeySet | None,
    columns: set[str],
    writers: _Writers,
    slot: int,
    flight: Flight | None = None,
) -> None:
    """Write the rows of a subscriber bucket (``table``, as it was scanned) whose handset
    is among ``among`` (None: any handset), except the rows it set aside (``aside``,
    row numbers), with ``columns``, to bucket ``slot`` of ``writers``."""
    keep = None
    if among is not None and "imei" in table.column_names:
        # A superset, read from the IMEIs as numbers where they are: the rows of other
        # handsets it lets through are dropped with the handsets no rule needs.
        keep = among.may_contain(table["imei"])
    if keep is None:
        keep = handset_rows(table, among=among)
    keep[aside] = False
    if not keep.any():
        return
    part = table.select([c for c in table.column_names if c in columns])
    part = part.filter(pa.array(keep)).combine_chunks()
    writers.write_all(part, np.full(part.num_rows, slot, dtype=np.int32), flight)


def _scan_handsets(
    handed: Spilled,
    tallies: Sequence[list[pa.Table] | None],
    rules: Sequence[Rule],
    settings: ScanSettings,
    budget: int,
    workers: int,
    pool: ThreadPoolExecutor,
    flight: Flight,
    progress: BucketProgress | None,
) -> list[BucketResult]:
    """The handset rules' results. ``handed`` holds, per subscriber bucket, the rows it
    handed on: those of the handsets marked while spilling
    (:class:`telediag.buckets.HandsetMarks`). Of them, the rows of the handsets the
    rules may find something on, as the subscriber buckets' ``tallies`` tell together
    (:func:`telediag.engine.pick_seeds`), are sorted into handset buckets, as many as
    the rows handed on need (not as many as there were subscriber buckets: their files
    would be buckets x buckets), and scanned.

    A handset rule reads every record of a handset it follows and nothing of the others,
    so its findings are those of a scan of every handset: the rows of a handset left out
    could not have made a candidate.
    """
    seeds = None
    if all(t is not None for t in tallies):
        seeds = KeySet(pick_seeds([t for t in tallies if t is not None], rules))
    sources = sorted(b for _, b in handed.parts)
    total = sum(handed.rows.values())
    if total == 0:
        return []
    # Buckets as for a month of that many rows (handset rows carry fewer columns).
    n_hand = plan_buckets(total, budget, workers)
    if progress is not None:
        progress.phase("sorting handset records", total, len(sources))
    split = Spilled(directory=handed.directory, buckets=n_hand)

    def sort_out(b: int) -> Spilled:
        with flight.task():  # writes files: the clean-up waits for it
            out = Spilled(directory=handed.directory, buckets=n_hand)
            paths = handed.parts[(HANDED, b)]
            table = _read_bucket(paths)
            _remove(paths)
            if seeds is not None:
                table = table.filter(pa.array(handset_rows(table, among=seeds)))
            if table.num_rows:
                which = bucket_of(table["imei"], n_hand)
                _Writers(out, "handset", b).write_all(table, which, flight)
            return out

    for b, out in _each_done(pool, sort_out, sources):
        split.add(out)
        if progress is not None:
            progress.advance(handed.rows.get((HANDED, b), 0), 1)
    jobs = sorted(h for _, h in split.parts)
    if progress is not None:
        progress.phase("scanning handset buckets", sum(split.rows.values()), len(jobs))

    def one(h: int) -> BucketResult:
        paths = sorted(split.parts[("handset", h)])  # in subscriber bucket order
        table = _read_bucket(paths)
        _remove(paths)
        return scan_bucket(table, rules, settings, key="handset")

    results: dict[int, BucketResult] = {}
    for h, result in _each_done(pool, one, jobs):
        results[h] = result
        if progress is not None:
            progress.advance(split.rows.get(("handset", h), 0), 1)
    return [results[h] for h in jobs]


def spill_error(exc: OSError, directory: Path) -> InputError:
    """One line for an error of the file system while spilling or writing a store."""
    text = str(exc)
    if exc.errno == errno.ENOSPC or "No space left" in text:
        return InputError(
            f"{directory}: no space left for spill files; give --spill-dir a place with "
            "more room (the spill takes about the size of the input)"
        )
    where = exc.filename or directory
    return InputError(f"{where}: {exc.strerror or text}")


def spill_directory(spill_dir: str | Path | None) -> Path:
    """A fresh directory for spill files; an unusable place is one line, not a traceback."""
    try:
        return Path(tempfile.mkdtemp(prefix="telediag-spill-", dir=spill_dir))
    except OSError as exc:
        raise InputError(f"cannot make a spill directory in {spill_dir}: {exc.strerror}") from None


def _empty_input() -> pa.Table:
    """A bucket with no rows (the input's other columns join its rejects after
    :func:`combine`, see :func:`scan_out_of_core`)."""
    return pa.table({c: pa.array([], type=pa.string()) for c in (*REQUIRED, "record_id")})
