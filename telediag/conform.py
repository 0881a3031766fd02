"""Bring any column an input hands us to a type normalization can read, or say why not.

Files and in-memory tables (pandas, Arrow, polars) can carry any Arrow type in any
column. Normalization parses text, numbers and timestamps; everything else is turned
into one of those here, or rejected with one line naming the input, the column and
the offending type or value. Works on one table or one batch at a time.
"""

from __future__ import annotations

import contextlib

import pyarrow as pa
import pyarrow.compute as pc

from telediag.errors import InputError
from telediag.schema import COLUMNS

#: Largest integer a float64 holds exactly: identifiers beyond it were already damaged.
_EXACT = 2.0**53


def _bad_text(name: str, where: str, arr: pa.ChunkedArray) -> InputError:
    for chunk in arr.chunks:
        for value in pc.unique(chunk).to_pylist():
            if isinstance(value, bytes):
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError:
                    return InputError(f"{where}: column {name!r}: not UTF-8 text ({value[:12]!r})")
    return InputError(f"{where}: column {name!r}: not UTF-8 text")


def as_text(name: str, where: str, arr: pa.ChunkedArray) -> pa.ChunkedArray:
    """Text of a column; integral floats lose their ``.0`` (numbers read by pandas)."""
    t = arr.type
    if pa.types.is_string(t):
        return arr
    if pa.types.is_floating(t):
        finite = pc.and_(pc.is_finite(arr), pc.less_equal(pc.abs(arr), _EXACT))
        whole = pc.and_(finite, pc.equal(pc.floor(arr), arr))
        ints = pc.cast(pc.if_else(whole, arr, 0.0), pa.int64()).cast(pa.string())
        return pc.if_else(whole, ints, arr.cast(pa.string()))
    if pa.types.is_nested(t) or pa.types.is_union(t) or pa.types.is_map(t):
        raise InputError(f"{where}: column {name!r} holds {t} values, which cannot be read as text")
    try:
        return arr.cast(pa.string())
    except pa.ArrowInvalid:
        raise _bad_text(name, where, arr) from None
    except pa.ArrowNotImplementedError:
        raise InputError(
            f"{where}: column {name!r} holds {t} values, which cannot be read as text"
        ) from None


def _unsupported(name: str, where: str, t: pa.DataType) -> InputError:
    return InputError(f"{where}: column {name!r} holds {t} values, which are not {COLUMNS[name]}")


def conform_column(name: str, arr: pa.ChunkedArray, where: str) -> pa.ChunkedArray:
    """One contract column in a type normalization reads (text, number or time)."""
    t = arr.type
    if pa.types.is_dictionary(t) and any(c.dictionary.null_count for c in arr.chunks):
        # A null among the values (null_encoding="encode"): Arrow cannot merge such
        # dictionaries, so the column is read as the values it stands for.
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_dictionary(t):
        if pa.types.is_large_string(t.value_type) or pa.types.is_string_view(t.value_type):
            # Text as pandas 3 writes it: the same dictionary over plain text.
            with contextlib.suppress(pa.ArrowInvalid):  # a dictionary past 2 GB of text
                arr = arr.cast(pa.dictionary(t.index_type, pa.string()))
        if not pa.types.is_string(arr.type.value_type):
            arr = arr.cast(arr.type.value_type)
        if pa.types.is_dictionary(arr.type):
            return arr  # dictionary-encoded text: normalization reads it as it is
        t = arr.type
    if pa.types.is_null(t):
        return arr
    if pa.types.is_nested(t) or pa.types.is_union(t) or pa.types.is_map(t):
        raise _unsupported(name, where, t)
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return arr.cast(pa.string())
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return as_text(name, where, arr)
    target = COLUMNS[name]
    if name == "start_time":
        if pa.types.is_boolean(t) or pa.types.is_time(t) or pa.types.is_duration(t):
            raise _unsupported(name, where, t)
        if pa.types.is_decimal(t):
            return arr.cast(pa.float64())
        return arr
    if pa.types.is_string(target):
        if pa.types.is_temporal(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t):
            return arr.cast(pa.string())
        return as_text(name, where, arr)
    # A numeric contract column.
    if pa.types.is_boolean(t):  # true/false is no count, size or charge
        raise _unsupported(name, where, t)
    if pa.types.is_decimal(t):
        if pa.types.is_integer(target):
            try:  # exact when every value is a whole number in range (the usual case)
                return arr.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
            # Otherwise as text: normalization sets aside the fractions and the values
            # out of range, row by row.
            return pc.replace_substring_regex(arr.cast(pa.string()), r"\.0+$", "")
        return arr.cast(pa.float64())
    if pa.types.is_temporal(t):
        raise _unsupported(name, where, t)
    return arr


def conform(table: pa.Table, where: str, *, keep_others: bool = False) -> pa.Table:
    """The table's contract columns conformed; other columns are left out, or kept as
    they are with ``keep_others`` (a bucket's row positions, say)."""
    return pa.table(
        {
            n: conform_column(n, table[n], where) if n in COLUMNS else table[n]
            for n in table.column_names
            if keep_others or n in COLUMNS
        }
    )


def check_unique(names: list[str], used: set[str] | None, where: str) -> None:
    """A column name that appears twice is an error when it is read (which one was
    meant cannot be told); ``used`` None means every name is read."""
    seen: set[str] = set()
    for n in names:
        if n in seen and (used is None or n in used):
            raise InputError(f"{where}: column {n!r} appears {names.count(n)} times")
        seen.add(n)
