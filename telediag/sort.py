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

from telediag.allocator import small_pages
from telediag.chunks import take_rows
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


#: Integer columns whose values span fewer than this many (and not many more than the
#: rows) are coded through a lookup table over the span (linear time) instead of a
#: sort.
_SPAN = 1 << 22


def _integer_codes(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """:func:`_sorted_dictionary_codes` of an integer column's values as text, without
    writing every row as text: the distinct numbers are found, written and put in text
    order (``"126" < "13"``), and each row looks up its number's place."""
    valid = None if arr.null_count == 0 else np.asarray(arr.is_valid().to_numpy(False), bool)
    values = np.asarray(pc.fill_null(arr, 0).to_numpy(zero_copy_only=False)).astype(np.int64)
    present = values if valid is None else values[valid]
    if present.size == 0:
        return np.full(values.shape[0], -1, dtype=np.int32), pa.array([], pa.string())
    low, high = int(present.min()), int(present.max())
    if valid is not None:
        values[~valid] = low  # a filler in range; its code is made -1 below
    if high - low < min(_SPAN, 32 * values.shape[0] + 1024):
        seen = np.zeros(high - low + 1, dtype=bool)
        seen[present - low] = True
        distinct = np.flatnonzero(seen) + low
        place = np.cumsum(seen, dtype=np.int64) - 1  # number -> its place among distinct
        index = place[values - low]
    else:
        distinct = np.unique(present)
        index = np.searchsorted(distinct, values)
    labels = [str(v) for v in distinct.tolist()]
    by_text = sorted(range(len(labels)), key=labels.__getitem__)
    rank = np.empty(len(labels), dtype=np.int32)
    rank[by_text] = np.arange(len(labels), dtype=np.int32)
    codes = rank[index]
    if valid is not None:
        codes[~valid] = -1
    return codes, pa.array([labels[i] for i in by_text], pa.string())


def _value_codes(taken: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Codes (-1 for null) and their dictionary of the values of a column, as text:
    integers through their distinct numbers, normalized dictionaries as they are, other
    values written as text and encoded."""
    if pa.types.is_integer(taken.type):
        return _integer_codes(taken)
    if pa.types.is_dictionary(taken.type) and taken.type.value_type == pa.string():
        # Normalized dictionaries hold distinct values only: their codes are used as
        # they are (values no row here has only widen the dictionary).
        return _sorted_dictionary_codes(taken, taken)
    if not pa.types.is_string(taken.type):
        taken = taken.cast(pa.string())
    return _sorted_dictionary_codes(taken)


def code_of(dictionary: pa.Array, value: str) -> int:
    """The code of ``value`` in a dictionary from :meth:`SortedRecords.codes` (-2 when
    absent, which matches no code, not even the -1 of null)."""
    found = pc.index(dictionary, value).as_py()
    return -2 if found is None or found < 0 else int(found)


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
        taken = take_rows(arr, self.order[positions])
        if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type):
            return np.asarray(
                pc.fill_null(pc.cast(taken, pa.float64()), np.nan).to_numpy(zero_copy_only=False)
            )
        return np.asarray(taken.to_numpy(zero_copy_only=False))

    def codes(self, name: str, positions: np.ndarray) -> tuple[np.ndarray, pa.Array]:
        """Integer codes (-1 for null) and their dictionary for a string column."""
        column = self.table[name]
        rows = self.order[positions]
        if not pa.types.is_dictionary(column.type) and rows.size * 16 >= len(column):
            return self._codes_in_row_order(column, rows)
        return _value_codes(take_rows(column, rows))

    @staticmethod
    def _codes_in_row_order(
        column: pa.ChunkedArray, rows: np.ndarray
    ) -> tuple[np.ndarray, pa.Array]:
        """:meth:`codes` for many rows of a text column: the values are gathered in
        table order (a pass through the column, where a gather in sorted order jumps
        about gigabytes of text) and encoded there; then only the integer codes are put
        in the order asked for. The codes depend on the values alone, so they are the
        same either way."""
        wanted = np.zeros(len(column), dtype=bool)
        wanted[rows] = True  # rows are distinct: the sort order is a permutation
        taken = column.filter(pa.array(wanted))
        if isinstance(taken, pa.ChunkedArray):
            taken = taken.combine_chunks()
        codes, dictionary = _value_codes(taken)
        # The place of each asked row among the rows in table order.
        in_order = np.flatnonzero(wanted)
        kind = np.int64 if len(column) >= 2**31 else np.int32
        place = np.empty(len(column), dtype=kind)
        place[in_order] = np.arange(in_order.size, dtype=kind)
        return codes[place[rows]], dictionary

    def record_ids(self, positions: np.ndarray) -> pa.Array:
        """The record ids at sorted positions; generated ones where the input had none."""
        rows = self.order[positions]
        given = take_rows(self.table["record_id"], rows)
        if given.null_count == 0:
            return given
        missing = np.flatnonzero(np.asarray(given.is_null().to_numpy(zero_copy_only=False)))
        generated = self.normalized.raw.generated_ids(rows[missing])
        filled = np.asarray(given.to_pylist(), dtype=object)
        filled[missing] = generated.to_pylist()
        return pa.array(filled, type=pa.string())

    def positions_of(self, mask: np.ndarray) -> np.ndarray:
        """Sorted positions of the table rows where ``mask`` holds (set-aside rows, which
        have no position, are skipped), in sorted order.

        A rule's filter usually keeps a small share of the month: then the kept rows are
        looked up in the inverse of the sort order and their few positions sorted, which
        costs far less than gathering the whole mask in sorted order.
        """
        kept = np.flatnonzero(mask)
        if kept.size * 8 >= len(self):
            return np.flatnonzero(mask[self.order]).astype(np.int64)
        key = "position_of_row"
        if key not in self._cache:
            # Four bytes a row where positions fit (half the memory of the month's rows).
            kind = np.int32 if len(self) < 2**31 else np.int64
            inverse = np.full(mask.shape[0], -1, dtype=kind)
            inverse[self.order] = np.arange(len(self), dtype=kind)
            self._cache[key] = inverse
        found = np.asarray(self._cache[key])[kept]
        found = found[found >= 0].astype(np.int64)
        found.sort()
        return found

    def msisdn_values(self) -> np.ndarray:
        """The subscriber numbers as an object array indexed by subscriber code (cached)."""
        key = "msisdn_values"
        if key not in self._cache:
            self._cache[key] = np.asarray(self.msisdns.to_pylist(), dtype=object)
        return np.asarray(self._cache[key])

    def subscriber_bounds(self) -> np.ndarray:
        """Start of each subscriber's run of sorted positions, plus the end."""
        key = "subscriber_bounds"
        if key not in self._cache:
            change = np.flatnonzero(np.diff(self.subscriber)) + 1
            self._cache[key] = np.concatenate([[0], change, [len(self)]]).astype(np.int64)
        return np.asarray(self._cache[key])


#: Rows per bucket below which one plain argsort is as fast as splitting.
_BUCKET_ROWS = 1 << 20


def _argsort_packed(key: np.ndarray) -> np.ndarray:
    """The permutation that sorts ``key`` (equal keys in any order), by a plain sort.
    ``key`` (int64) is used up: the result may be written over it.

    numpy's vectorized ``sort`` of 64-bit integers is several times faster than its
    ``argsort``: when the key's range and the row numbers fit in 64 bits together, each
    row number rides in the low bits of its key and comes out of the sort in place.
    """
    n = key.shape[0]
    if n < 2:
        return np.arange(n, dtype=np.int64)
    low = int(key.min())
    span = int(key.max()) - low
    index_bits = (n - 1).bit_length()
    if span.bit_length() + index_bits > 64:
        return np.argsort(key)
    packed = key.view(np.uint64)
    if low:
        key -= low
    packed <<= np.uint64(index_bits)
    packed |= np.arange(n, dtype=np.uint64)
    packed.sort()
    packed &= np.uint64((1 << index_bits) - 1)
    return packed.view(np.int64)


def _sort_with_keys(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the permutation that sorts ``key``, the sorted keys), by one plain sort of the
    key with the row number in its low bits. ``key`` (int64, not negative, with room for
    the row number in 64 bits) is used up: the sorted keys are written over it."""
    n = key.shape[0]
    index_bits = max(1, (n - 1).bit_length())
    packed = key.view(np.uint64)
    packed <<= np.uint64(index_bits)
    for lo in range(0, n, _STEP):  # the row numbers, without a month-sized arange
        packed[lo : lo + _STEP] |= np.arange(lo, min(n, lo + _STEP), dtype=np.uint64)
    packed.sort()
    perm = (packed & np.uint64((1 << index_bits) - 1)).view(np.int64)
    packed >>= np.uint64(index_bits)
    return perm, packed.view(np.int64)


def _argsort_by_subscriber_ranges(
    key: np.ndarray, codes: np.ndarray, threads: int = 2
) -> np.ndarray:
    """``np.argsort(key)`` for a key whose high bits are the subscriber code, faster.

    The rows are first split by ranges of subscriber code (a stable sort on a small
    integer, linear time); each range is then sorted on its own, in two threads (numpy
    releases the GIL while sorting). Ranges small enough to stay in cache keep the cost
    linear in the number of rows, where one large argsort grows faster.
    """
    n = key.shape[0]
    buckets = min(255, n // _BUCKET_ROWS)
    if buckets < 2 or int(key.max()).bit_length() + (n - 1).bit_length() <= 64:
        return _argsort_packed(key)
    top = int(codes.max()) + 1
    bucket = (codes.astype(np.int64) * buckets // top).astype(np.uint8)
    order = np.argsort(bucket, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(bucket, minlength=buckets))])
    grouped = key[order]

    def sort_one(i: int) -> np.ndarray:
        lo, hi = bounds[i], bounds[i + 1]
        return np.asarray(order[lo:hi][_argsort_packed(grouped[lo:hi])])

    if threads > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            parts = list(pool.map(sort_one, range(buckets)))
    else:
        parts = [sort_one(i) for i in range(buckets)]
    return np.concatenate(parts)


def _break_ties(normalized: Normalized, rows: np.ndarray, tied: np.ndarray) -> np.ndarray:
    """Order rows of equal (subscriber, time) by record id, so the order, and every
    result built on it, does not depend on the order the rows were read in.

    ``rows`` are table rows in sorted order (reordered in place); ``tied[i]`` says row
    i + 1 has the same subscriber and time as row i. Ties are rare (one subscriber, two
    records in the same millisecond), so only they are looked at.
    """
    same = np.flatnonzero(tied)
    if same.size == 0:
        return rows
    at = np.unique(np.concatenate([same, same + 1]))
    # A run of equal keys starts where a position is not tied to the one before it.
    starts = np.ones(at.size, dtype=bool)
    starts[at > 0] = ~tied[at[at > 0] - 1]
    group = np.cumsum(starts)
    ids = take_rows(normalized.table["record_id"], rows[at])
    if ids.null_count:
        ids = pc.coalesce(ids, normalized.raw.generated_ids(rows[at]))
    text = np.asarray(ids.to_pylist(), dtype=object).astype(str)
    rows[at] = rows[at][np.lexsort((text, group))]
    return rows


#: Rows per slice of the element-wise steps below: temporaries stay small.
_STEP = 1 << 20


def _whole_seconds(ms: np.ndarray, t0: int = 0) -> bool:
    """Are all these millisecond counts, less ``t0``, whole seconds? (In slices.)"""
    r = t0 % 1000
    return not any((ms[i : i + _STEP] % 1000 != r).any() for i in range(0, ms.shape[0], _STEP))


def _pack(times: np.ndarray, t0: int, unit: int, codes: np.ndarray, time_bits: int) -> np.ndarray:
    """The sort key, written over ``times``: the subscriber code in the high bits, the
    time (from ``t0``, in ``unit`` ms) in the ``time_bits`` low bits."""
    for lo in range(0, times.shape[0], _STEP):
        part = times[lo : lo + _STEP]
        part -= t0
        if unit > 1:
            part //= unit
        part |= codes[lo : lo + _STEP].astype(np.int64) << time_bits
    return times


def sort_records(normalized: Normalized, threads: int = 2) -> SortedRecords:
    """Sort the usable rows by (subscriber, time, record id); see :func:`_sort_records`.
    Its arrays are written about once: they are made without huge pages (see
    :func:`telediag.allocator.small_pages`)."""
    with small_pages():
        return _sort_records(normalized, threads)


def _sort_records(normalized: Normalized, threads: int = 2) -> SortedRecords:
    """Sort the usable rows by (subscriber, time, record id); one sort of a packed key
    does the work, in up to ``threads`` threads.

    Every array of the size of the month is a fresh allocation that the machine must
    fault in, so the key is built and sorted in place and nothing is gathered twice.
    """
    valid = normalized.valid
    valid_rows = None if valid.all() else np.flatnonzero(valid).astype(np.int64)
    table = normalized.table
    codes, msisdns = _sorted_dictionary_codes(table["msisdn"], normalized.encoded.get("msisdn"))
    # Set-aside rows may have no time; they are dropped below, so 0 is only a filler.
    times = np.asarray(
        pc.fill_null(pc.cast(table["start_time"], pa.int64()), 0).to_numpy(zero_copy_only=False),
        dtype=np.int64,
    )
    if valid_rows is not None:
        codes = codes[valid_rows]
        times = times[valid_rows]
    if codes.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return SortedRecords(normalized, empty, empty.astype(np.int32), empty, msisdns)
    t0 = int(times.min())
    unit = 1000 if _whole_seconds(times, t0) else 1
    code_bits = max(1, int(codes.max()).bit_length())
    time_bits = max(1, ((int(times.max()) - t0) // unit).bit_length())
    sorted_key = None
    key_bits = code_bits + time_bits  # a key of at most 63 bits stays a positive int64
    if key_bits <= 63 and key_bits + (codes.size - 1).bit_length() <= 64:
        # The usual case: the key is built over the times (a copy only where they are
        # Arrow's memory) and comes out of one sort with the subscriber and time of
        # every position.
        key = _pack(times if times.flags.writeable else times.copy(), t0, unit, codes, time_bits)
        del times
        perm, sorted_key = _sort_with_keys(key)
    elif key_bits <= 63:  # the row numbers do not fit beside the key
        key = _pack(times.copy(), t0, unit, codes, time_bits)
        perm = _argsort_by_subscriber_ranges(key, codes, threads)
    else:  # more than 63 bits: fall back to a two-key sort
        key = times
        perm = np.lexsort((times, codes))
    del key
    if sorted_key is not None:
        # The sorted keys hold each position's subscriber and time: read them there
        # rather than gathering both through the permutation.
        # In slices: no month-sized temporary at the peak of the sort.
        subscriber = np.empty(sorted_key.shape[0], dtype=np.int32)
        for lo in range(0, sorted_key.shape[0], _STEP):
            part = sorted_key[lo : lo + _STEP]
            subscriber[lo : lo + _STEP] = part >> time_bits
            part &= (1 << time_bits) - 1
            if unit > 1:
                part *= unit
            part += t0
        time_ms = sorted_key
    else:
        subscriber, time_ms = codes[perm], times[perm]
    tied = (subscriber[1:] == subscriber[:-1]) & (time_ms[1:] == time_ms[:-1])
    rows = perm if valid_rows is None else valid_rows[perm]
    return SortedRecords(
        normalized=normalized,
        order=_break_ties(normalized, rows, tied),
        subscriber=subscriber,
        time_ms=time_ms,
        msisdns=msisdns,
    )
