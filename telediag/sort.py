"""Step 3: sort once by subscriber and time.

The canonical table stays in read order. What gets sorted is one packed integer key per
usable row (subscriber code in the high bits, time in the low bits), with one
``argsort``. Every rule then works on *sorted positions*: a rule's records are the
positions where its filter holds, already grouped by subscriber and ordered by time, and
only the columns it needs are gathered for them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from telediag.normalize import Normalized


def _sorted_dictionary_codes(
    arr: pa.ChunkedArray | pa.Array, encoded: pa.DictionaryArray | None = None
) -> tuple[np.ndarray, pa.Array]:
    """Integer codes for a string column whose order follows the values' sort order.

    Codes that follow value order make the sort, and so every result, independent of the
    order the rows were read in. Nulls get code -1. ``encoded`` reuses an encoding made
    earlier.
    """
    if encoded is None:
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
        encoded = pc.dictionary_encode(arr)
    dictionary = encoded.dictionary
    if len(dictionary) == 0:
        return np.full(len(encoded), -1, dtype=np.int32), dictionary
    rank = np.empty(len(dictionary), dtype=np.int32)
    order = np.asarray(pc.array_sort_indices(dictionary))
    rank[order] = np.arange(len(dictionary), dtype=np.int32)
    idx = encoded.indices
    if idx.null_count == 0:
        out = rank[np.asarray(idx.to_numpy(zero_copy_only=False))]
    else:
        codes = np.asarray(pc.fill_null(idx, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        out = np.where(codes >= 0, rank[np.maximum(codes, 0)], -1).astype(np.int32)
    return out, dictionary.take(pa.array(order))


@dataclass
class SortedRecords:
    """The usable rows, sorted by subscriber then time, with per-column caches."""

    normalized: Normalized
    #: Table row of each sorted position.
    order: np.ndarray
    #: Subscriber code of each sorted position (index into ``msisdns``).
    subscriber: np.ndarray
    #: Start time of each sorted position, epoch milliseconds (UTC).
    time_ms: np.ndarray
    msisdns: pa.Array
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def table(self) -> pa.Table:
        """The canonical table in read order (includes set-aside rows)."""
        return self.normalized.table

    def __len__(self) -> int:
        return int(self.order.shape[0])

    def column(self, name: str, positions: np.ndarray) -> np.ndarray:
        """Values of a numeric or boolean column at sorted positions (floats carry NaN)."""
        arr = self.table[name]
        rows = self.order[positions]
        taken = arr.take(pa.array(rows))
        if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type):
            return np.asarray(
                pc.fill_null(pc.cast(taken, pa.float64()), np.nan).to_numpy(zero_copy_only=False)
            )
        return np.asarray(taken.to_numpy(zero_copy_only=False))

    def codes(self, name: str, positions: np.ndarray) -> tuple[np.ndarray, pa.Array]:
        """Integer codes (-1 for null) and their dictionary for a string column."""
        rows = self.order[positions]
        taken = self.table[name].take(pa.array(rows))
        if not pa.types.is_string(taken.type):
            taken = taken.cast(pa.string())
        return _sorted_dictionary_codes(taken)

    def record_ids(self, positions: np.ndarray) -> pa.Array:
        """The record ids at sorted positions; generated ones where the input had none."""
        rows = self.order[positions]
        given = self.table["record_id"].take(pa.array(rows)).combine_chunks()
        if given.null_count == 0:
            return given
        missing = np.flatnonzero(np.asarray(given.is_null().to_numpy(zero_copy_only=False)))
        generated = self.normalized.raw.generated_ids(rows[missing])
        filled = np.asarray(given.to_pylist(), dtype=object)
        filled[missing] = generated.to_pylist()
        return pa.array(filled, type=pa.string())

    def subscriber_bounds(self) -> np.ndarray:
        """Start of each subscriber's run of sorted positions, plus the end."""
        key = "subscriber_bounds"
        if key not in self._cache:
            change = np.flatnonzero(np.diff(self.subscriber)) + 1
            self._cache[key] = np.concatenate([[0], change, [len(self)]]).astype(np.int64)
        return np.asarray(self._cache[key])


#: Rows per bucket below which one plain argsort is as fast as splitting.
_BUCKET_ROWS = 1 << 20


def _argsort_by_subscriber_ranges(key: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``np.argsort(key)`` for a key whose high bits are the subscriber code, faster.

    The rows are first split by ranges of subscriber code (a stable sort on a small
    integer, linear time); each range is then sorted on its own, in two threads (numpy
    releases the GIL while sorting). Ranges small enough to stay in cache keep the cost
    linear in the number of rows, where one large argsort grows faster.
    """
    n = key.shape[0]
    buckets = min(255, n // _BUCKET_ROWS)
    if buckets < 2:
        return np.argsort(key)
    top = int(codes.max()) + 1
    bucket = (codes.astype(np.int64) * buckets // top).astype(np.uint8)
    order = np.argsort(bucket, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(bucket, minlength=buckets))])
    grouped = key[order]

    def sort_one(i: int) -> np.ndarray:
        lo, hi = bounds[i], bounds[i + 1]
        return np.asarray(order[lo:hi][np.argsort(grouped[lo:hi])])

    with ThreadPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(sort_one, range(buckets)))
    return np.concatenate(parts)


def sort_records(normalized: Normalized) -> SortedRecords:
    """Sort the usable rows by (subscriber, time) with one argsort of a packed key."""
    valid_rows = np.flatnonzero(normalized.valid).astype(np.int64)
    table = normalized.table
    codes_all, msisdns = _sorted_dictionary_codes(table["msisdn"], normalized.encoded.get("msisdn"))
    # Set-aside rows may have no time; they are dropped below, so 0 is only a filler.
    times_all = np.asarray(
        pc.fill_null(pc.cast(table["start_time"], pa.int64()), 0).to_numpy(zero_copy_only=False),
        dtype=np.int64,
    )
    if valid_rows.size < codes_all.size:
        codes = codes_all[valid_rows]
        times = times_all[valid_rows]
    else:
        codes, times = codes_all, times_all
    if codes.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return SortedRecords(normalized, empty, empty.astype(np.int32), empty, msisdns)
    t0 = int(times.min())
    span = int(times.max()) - t0
    code_bits = max(1, int(codes.max()).bit_length())
    time_bits = max(1, span.bit_length())
    if code_bits + time_bits <= 63:
        key = (codes.astype(np.int64) << time_bits) | (times - t0)
        perm = _argsort_by_subscriber_ranges(key, codes)
    else:  # more than 63 bits: fall back to a two-key sort
        perm = np.lexsort((times, codes))
    return SortedRecords(
        normalized=normalized,
        order=valid_rows[perm],
        subscriber=codes[perm],
        time_ms=times[perm],
        msisdns=msisdns,
    )
