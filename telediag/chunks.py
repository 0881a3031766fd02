"""Work on columns split in many chunks (a Parquet month comes in dozens of batches)
without joining their chunks into one copy first.

Gathering a few rows (:func:`take_rows`):
``ChunkedArray.take`` joins every chunk into one array before gathering, so taking a
few hundred rows of a ten-million-row string column (77 Parquet batches) copies the
whole column first: about 0.08 s a call, and the rules make dozens of such calls. Here
each chunk gives its own rows, and the pieces are put back in the order asked for. A
take of a large share of the column is left to Arrow, which then does about as well.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_Column = TypeVar("_Column", pa.Array, pa.ChunkedArray)

#: Below this share of a column's rows, rows are gathered chunk by chunk.
SMALL_SHARE = 1 / 16


def take_rows(column: pa.ChunkedArray | pa.Array, rows: np.ndarray) -> pa.Array:
    """``column.take(rows)`` as one array (``rows``: int64 positions in ``column``)."""
    rows = np.asarray(rows, dtype=np.int64)
    if isinstance(column, pa.Array):
        return column.take(pa.array(rows))
    if column.num_chunks == 1:
        return column.chunk(0).take(pa.array(rows))
    if column.num_chunks == 0 or rows.size >= len(column) * SMALL_SHARE:
        taken = column.take(pa.array(rows))
        return taken.combine_chunks() if isinstance(taken, pa.ChunkedArray) else taken
    lengths = np.fromiter((len(c) for c in column.chunks), dtype=np.int64, count=column.num_chunks)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    which = np.searchsorted(starts, rows, side="right") - 1
    ordered = bool(rows.size < 2 or (np.diff(which) >= 0).all())
    order = None if ordered else np.argsort(which, kind="stable")
    by_chunk = which if order is None else which[order]
    local = (rows if order is None else rows[order]) - starts[by_chunk]
    cuts = np.searchsorted(by_chunk, np.arange(column.num_chunks + 1))
    pieces = [
        column.chunk(c).take(pa.array(local[cuts[c] : cuts[c + 1]]))
        for c in range(column.num_chunks)
        if cuts[c + 1] > cuts[c]
    ]
    joined = pa.concat_arrays(pieces) if pieces else pa.array([], type=column.type)
    if order is None:
        return joined
    back = np.empty_like(order)
    back[order] = np.arange(order.size, dtype=order.dtype)
    return joined.take(pa.array(back))


def text_bytes(chunk: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The value offsets of a string or binary array (int64, from 0 at its first value)
    and a view of its values' bytes, back to back (no copy; a slice reads its own)."""
    n = len(chunk)
    wide = pa.types.is_large_string(chunk.type) or pa.types.is_large_binary(chunk.type)
    offsets_buf, data_buf = chunk.buffers()[1:3]
    if n == 0 or offsets_buf is None:
        return np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.uint8)
    offsets = np.frombuffer(
        offsets_buf,
        dtype=np.int64 if wide else np.int32,
        count=n + 1,
        offset=chunk.offset * (8 if wide else 4),
    ).astype(np.int64)
    lo, hi = int(offsets[0]), int(offsets[-1])
    if data_buf is None or hi == lo:
        return offsets - lo, np.zeros(0, dtype=np.uint8)
    return offsets - lo, np.frombuffer(data_buf, dtype=np.uint8, count=hi - lo, offset=lo)


def plain(arr: _Column) -> _Column:
    """A dictionary column as the values it stands for (others as they are): what
    string functions, pandas and writers of text need."""
    if pa.types.is_dictionary(arr.type):
        return arr.cast(arr.type.value_type)
    return arr


def plain_table(table: pa.Table) -> pa.Table:
    """The table with its dictionary columns as the values they stand for (for pandas,
    where they would become categoricals that group and sort by code, and for files
    whose schema must not depend on how a column was held in memory)."""
    if not any(pa.types.is_dictionary(t) for t in table.schema.types):
        return table
    return pa.table({c: plain(table[c]) for c in table.column_names})


def unify(column: pa.ChunkedArray | pa.DictionaryArray) -> pa.DictionaryArray:
    """A dictionary column (chunks with dictionaries of their own, as Parquet batches
    come) as one array over one dictionary of distinct values."""
    if isinstance(column, pa.Array):
        return column
    if column.num_chunks == 0:
        empty = pa.array([], type=column.type.value_type)
        return pa.DictionaryArray.from_arrays(pa.array([], type=column.type.index_type), empty)
    if column.num_chunks == 1:
        return column.chunk(0)
    unified = column.unify_dictionaries()
    dictionary = unified.chunk(0).dictionary
    kind = _index_type(len(dictionary))  # narrowed chunk by chunk: one small copy
    indices = pa.concat_arrays([c.indices.cast(kind) for c in unified.chunks])
    return pa.DictionaryArray.from_arrays(indices, dictionary)


def encode(column: pa.ChunkedArray | pa.Array) -> pa.DictionaryArray:
    """``pc.dictionary_encode(column.combine_chunks())``, without the combined copy of
    the values: the chunks are encoded with one memo table, so they share a dictionary,
    and only their integer indices are joined. A dictionary column is unified (see
    :func:`unify`), not encoded again."""
    if pa.types.is_dictionary(column.type):
        return unify(column)
    if isinstance(column, pa.Array):
        return pc.dictionary_encode(column)
    if column.num_chunks <= 1:
        whole = column.chunk(0) if column.num_chunks else pa.array([], type=column.type)
        return pc.dictionary_encode(whole)
    parts = pc.dictionary_encode(column)
    if parts.num_chunks == 0:  # every chunk was empty
        return pc.dictionary_encode(pa.array([], type=column.type))
    first = parts.chunk(0).dictionary
    if any(len(c.dictionary) != len(first) for c in parts.chunks):
        parts = parts.unify_dictionaries()
        first = parts.chunk(0).dictionary
    indices = pa.concat_arrays([c.indices for c in parts.chunks])
    return pa.DictionaryArray.from_arrays(indices, first)


def narrow(encoded: pa.DictionaryArray) -> pa.DictionaryArray:
    """The same encoding with the narrowest index type its dictionary allows (a column
    of a few distinct values then costs one byte a row, not four). Room is left for
    one code past the dictionary, which lookups use for null."""
    kind = _index_type(len(encoded.dictionary))
    if kind == encoded.indices.type:
        return encoded
    return pa.DictionaryArray.from_arrays(encoded.indices.cast(kind), encoded.dictionary)


def _index_type(size: int) -> pa.DataType:
    """The narrowest index type for a dictionary of ``size`` values, with room for one
    code past it."""
    for kind in (pa.int8(), pa.int16()):
        if size < np.iinfo(kind.to_pandas_dtype()).max:
            return kind
    return pa.int32()
