"""In-memory inputs: pandas DataFrames, Arrow tables, batches and streams, and anything
that speaks the Arrow C stream protocol (``__arrow_c_stream__``: polars, DuckDB).

Each becomes one Arrow table; the column map and normalization then treat it exactly
as they treat a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pandas as pd
import pyarrow as pa

from telediag.errors import InputError


def is_in_memory(obj: object) -> bool:
    """Whether ``obj`` is a table held in memory rather than a path."""
    return (
        isinstance(obj, (pa.Table, pa.RecordBatch, pa.RecordBatchReader, pd.DataFrame, Mapping))
        or hasattr(obj, "__arrow_c_stream__")
        or hasattr(obj, "__arrow_c_array__")
        or _is_lazy(obj)
    )


def _is_lazy(obj: object) -> bool:
    """A polars LazyFrame: a query that gives a table once collected."""
    return type(obj).__name__ == "LazyFrame" and callable(getattr(obj, "collect", None))


def describe(obj: object, n: int) -> str:
    """How messages name an in-memory input: its kind and position among the inputs."""
    return f"<{type(obj).__name__} {n}>"


def to_arrow(obj: Any, where: str) -> pa.Table:
    """One Arrow table from any in-memory input, with view types (polars' string_view)
    as their plain forms, which every Arrow kernel takes."""
    return _without_views(_to_arrow(obj, where), where)


#: View layouts and the plain layouts every kernel takes.
_PLAIN = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}


def _without_views(table: pa.Table, where: str) -> pa.Table:
    if not any(t in _PLAIN for t in table.schema.types):
        return table
    try:
        return table.cast(
            pa.schema([f.with_type(_PLAIN.get(f.type, f.type)) for f in table.schema])
        )
    except (pa.ArrowException, ValueError) as exc:
        raise InputError(f"{where}: cannot read as a table: {exc}") from None


def _to_arrow(obj: Any, where: str) -> pa.Table:
    try:
        if isinstance(obj, pa.Table):
            return obj
        if isinstance(obj, pa.RecordBatch):
            return pa.Table.from_batches([obj])
        if isinstance(obj, pa.RecordBatchReader):
            return obj.read_all()
        if isinstance(obj, pd.DataFrame):
            return _from_pandas(obj, where)
        if isinstance(obj, Mapping):  # columns by name, read as pandas reads them
            return _from_pandas(pd.DataFrame(obj), where)
        if _is_lazy(obj):
            try:
                obj = obj.collect()
            except Exception as exc:  # polars' own errors: the query, not the input, failed
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise InputError(
                    f"{where}: the LazyFrame's query failed: {type(exc).__name__}: {first}"
                ) from None
        if hasattr(obj, "__arrow_c_stream__"):
            return pa.RecordBatchReader.from_stream(obj).read_all()
        return pa.table(obj)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise InputError(f"{where}: cannot read as a table: {exc}") from None


def _from_pandas(frame: pd.DataFrame, where: str) -> pa.Table:
    """A DataFrame as Arrow; object columns mixing kinds of values become text."""
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise InputError(f"{where}: column {dup!r} appears {names.count(dup)} times")
    arrays = []
    for col in frame.columns:
        series = frame[col]
        try:
            arrays.append(pa.Array.from_pandas(series))
        except (pa.ArrowException, TypeError, ValueError):
            # Mixed kinds (numbers and text, say): keep each value's text, so that
            # normalization sets aside what does not parse. Only on this rare path.
            text = [None if _missing(v) else _text(v) for v in series.tolist()]
            arrays.append(pa.array(text, type=pa.string()))
    return pa.table(arrays, names=names)


def _text(value: object) -> str:
    """A value as the text it stands for: a whole float by its digits (13800000001.0 is
    the number 13800000001, as a column of floats reads), anything else as ``str``."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2.0**53:
        return str(int(value))
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return str(int(value))
    return str(value)


def _missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False
