"""Evaluate a rule's record filter over the canonical table with Arrow compute.

Conditions on contract columns run over whole columns and are cached (rules share them:
"SMS, mobile-originated" is asked by several). Conditions on derived columns run only on
the rows that already passed the contract-column conditions, so a costly lookup (number
classification, TAC lookup) sees a few thousand rows, not the whole month.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from telediag.catalog import RecordFilter
from telediag.chunks import encode, narrow, take_rows
from telediag.conditions import Condition, whole_number
from telediag.context import ScanSettings
from telediag.derived import DERIVED_COLUMNS, derive
from telediag.normalize import ENUMS, enum_text


def _fits(value: int | None, typ: pa.DataType) -> bool:
    """Can a column of this integer type hold the value?"""
    if value is None:
        return False
    info = np.iinfo(typ.to_pandas_dtype())
    return int(info.min) <= value <= int(info.max)


def _typed_values(values: list[Any], arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The values of a condition in the column's type. For an integer column, values it
    cannot hold (1.5, a number beyond its range) are left out: they match no row, where
    a cast would have cut or wrapped them onto values that are there."""
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pa.array([str(v) for v in values], type=t)
    if pa.types.is_boolean(t):
        return pa.array([bool(v) for v in values], type=t)
    if pa.types.is_integer(t):
        return pa.array([w for w in map(whole_number, values) if _fits(w, t)], type=t)
    try:
        return pa.array(values).cast(t)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.array(values, type=pa.float64()).cast(t, safe=False)


def integer_values(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None]:
    """An integer column as numpy values (anything in null slots) and its validity
    (None when nothing is null), read chunk by chunk from Arrow's buffers."""
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    dtype = np.dtype(arr.type.to_pandas_dtype())
    values = [
        np.frombuffer(c.buffers()[1], dtype=dtype, count=len(c) + c.offset)[c.offset :]
        if len(c)
        else np.zeros(0, dtype=dtype)
        for c in chunks
    ]
    joined = np.concatenate(values) if values else np.zeros(0, dtype=dtype)
    if arr.null_count == 0:
        return joined, None
    valid = [np.asarray(c.is_valid().to_numpy(zero_copy_only=False)) for c in chunks]
    return joined, np.concatenate(valid)


def _among(values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``np.isin`` for a few wanted values, by comparisons (``isin`` builds a lookup
    table or sorts, several times slower for a handful of values)."""
    if wanted.size > 8:
        return np.isin(values, wanted)
    hit = np.zeros(values.shape[0], dtype=bool)
    for value in wanted:
        hit |= values == value
    return hit


def _integer_mask(cond: Condition, arr: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
    """``cond`` over an integer column with numpy (several times faster than Arrow's
    set lookup for a handful of values); None where the condition asks for more."""
    if not pa.types.is_integer(arr.type) or cond.prefix is not None:
        return None
    sets = [v for v in (cond.equals, cond.in_, cond.not_in) if v is not None]
    typed = [_typed_values(v if isinstance(v, list) else [v], arr) for v in sets]
    if any(t.null_count for t in typed):
        return None  # Arrow's lookup matches a null to a null: left to it
    values, valid = integer_values(arr)
    ok = np.ones(values.shape[0], dtype=bool) if valid is None else valid.copy()
    if cond.is_null:
        # Only null rows pass "is null", and a null fails every other test.
        others = sets or cond.min is not None or cond.max is not None
        return np.zeros(values.shape[0], dtype=bool) if others else ~ok
    wanted = iter(typed)
    if cond.equals is not None:
        ok &= _among(values, next(wanted).to_numpy())
    if cond.in_ is not None:
        ok &= _among(values, next(wanted).to_numpy())
    if cond.not_in is not None:
        ok &= ~_among(values, next(wanted).to_numpy())
    if cond.min is not None:
        ok &= values >= cond.min
    if cond.max is not None:
        ok &= values <= cond.max
    return ok


def condition_mask(cond: Condition, arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Boolean numpy mask of ``cond`` over an Arrow column; null fails all but is_null."""
    fast = _integer_mask(cond, arr)
    if fast is not None:
        return fast
    n = len(arr)
    ok: Any = pa.array(np.ones(n, dtype=bool))
    if cond.is_null is not None:
        ok = pc.and_(ok, arr.is_null() if cond.is_null else arr.is_valid())
    if cond.equals is not None:
        ok = pc.and_(ok, pc.is_in(arr, _typed_values([cond.equals], arr)))
    if cond.in_ is not None:
        ok = pc.and_(ok, pc.is_in(arr, _typed_values(cond.in_, arr)))
    if cond.not_in is not None:
        ok = pc.and_(
            ok, pc.and_(arr.is_valid(), pc.invert(pc.is_in(arr, _typed_values(cond.not_in, arr))))
        )
    if cond.prefix is not None:
        text = arr if pa.types.is_string(arr.type) else arr.cast(pa.string())
        hit: Any = pa.array(np.zeros(n, dtype=bool))
        for p in cond.prefix:
            hit = pc.or_(hit, pc.fill_null(pc.starts_with(text, p, ignore_case=True), False))
        ok = pc.and_(ok, hit)
    if cond.min is not None:
        ok = pc.and_(ok, pc.greater_equal(arr, cond.min))
    if cond.max is not None:
        ok = pc.and_(ok, pc.less_equal(arr, cond.max))
    return np.asarray(pc.fill_null(ok, False).to_numpy(zero_copy_only=False), dtype=bool)


def code_values(encoded: pa.DictionaryArray) -> np.ndarray:
    """The codes of a dictionary array as numpy integers, -1 for null."""
    codes = encoded.indices
    if codes.null_count:
        codes = pc.fill_null(codes, -1)
    return np.asarray(codes.to_numpy(zero_copy_only=False))


def judge_codes(cond: Condition, dictionary: pa.Array, codes: np.ndarray) -> np.ndarray:
    """The condition judged once per value of ``dictionary``, then looked up for every
    row's code (-1 for null)."""
    per_value = condition_mask(cond, dictionary)
    on_null = bool(condition_mask(cond, pa.nulls(1, dictionary.type))[0])
    hits = np.flatnonzero(per_value)
    if hits.size == 0:
        return codes < 0 if on_null else np.zeros(codes.shape[0], dtype=bool)
    if hits.size <= 4 and not on_null:
        # A few matching values (a record type, a status): compare the codes, which
        # costs far less than a lookup through every row.
        mask = codes == hits[0]
        for code in hits[1:]:
            mask |= codes == code
        return mask
    lookup = np.append(per_value, on_null)  # code -1 reads the last entry
    return np.asarray(lookup[codes], dtype=bool)


def dictionary_condition_mask(cond: Condition, encoded: pa.DictionaryArray) -> np.ndarray:
    """The condition judged once per distinct value, then looked up for every row."""
    return judge_codes(cond, encoded.dictionary, code_values(encoded))


#: A condition not yet judged over the whole month is judged on the rows still kept
#: when they are fewer than one in this many (gathering a row costs several times
#: judging one in a column scan).
SUBSET_SHARE = 16


class FilterEvaluator:
    """Evaluates record filters over one table, caching whole-column condition masks.

    Text columns are judged on their distinct values (a month has millions of rows but
    a handful of record types, statuses or protocol labels) and the answer is looked up
    per row; the encodings made while normalizing are reused.
    """

    def __init__(
        self,
        table: pa.Table,
        settings: ScanSettings,
        encoded: dict[str, pa.DictionaryArray] | None = None,
    ) -> None:
        self.table = table
        self.settings = settings
        self._encoded: dict[str, pa.DictionaryArray] = dict(encoded or {})
        self._cache: dict[tuple[str, str], np.ndarray] = {}
        self._codes: dict[str, np.ndarray] = {}

    def _encoding(self, column: str) -> pa.DictionaryArray:
        if column not in self._encoded:
            self._encoded[column] = narrow(encode(self.table[column]))
        return self._encoded[column]

    def _code_values(self, column: str) -> np.ndarray:
        """The column's codes as numpy integers (-1 for null), made once: every
        condition on the column then reads them as they are."""
        if column not in self._codes:
            self._codes[column] = code_values(self._encoding(column))
        return self._codes[column]

    def _base(self, column: str, cond: Condition) -> np.ndarray:
        """The condition's mask over every row. Cached packed, eight rows a byte: a
        month's catalog asks a score of conditions, 10 MB each per 10M rows unpacked."""
        key = (column, cond.model_dump_json())
        n = self.table.num_rows
        if key not in self._cache:
            arr = self.table[column]
            # "Given or not" needs no encoding of a column of many distinct values
            # (message ids): its validity says it.
            only_nulls = cond.model_dump(exclude_none=True).keys() == {"is_null"}
            if pa.types.is_dictionary(arr.type) or (
                pa.types.is_string(arr.type) and (column in self._encoded or not only_nulls)
            ):
                dictionary = self._encoding(column).dictionary
                mask = judge_codes(cond, dictionary, self._code_values(column))
            else:
                mask = condition_mask(cond, arr)
            self._cache[key] = np.packbits(mask)
        return np.unpackbits(self._cache[key], count=n).view(bool)

    def _at(self, column: str, cond: Condition, rows: np.ndarray) -> np.ndarray:
        """The condition on the given table rows only (not cached): for a condition
        asked after others have already kept a small share of the month."""
        if column in self._codes:
            dictionary = self._encoded[column].dictionary
            return judge_codes(cond, dictionary, self._codes[column][rows])
        taken = take_rows(self.table[column], rows)
        if pa.types.is_dictionary(taken.type):
            return dictionary_condition_mask(cond, taken)
        return condition_mask(cond, taken)

    def _narrow(self, mask: np.ndarray, column: str, cond: Condition) -> None:
        """``mask &= condition`` in place: over the whole column (cached for the other
        rules) unless few rows are left to judge, then on those rows only."""
        if (column, cond.model_dump_json()) not in self._cache:
            kept = np.count_nonzero(mask)
            if kept * SUBSET_SHARE < mask.shape[0]:
                if kept:
                    rows = np.flatnonzero(mask)
                    mask[rows] = self._at(column, cond, rows)
                return
        mask &= self._base(column, cond)

    def mask(self, flt: RecordFilter) -> np.ndarray:
        """Which table rows (read order) pass the filter."""
        n = self.table.num_rows
        return self._mask(flt, np.ones(n, dtype=bool))

    def _mask(self, flt: RecordFilter, within: np.ndarray) -> np.ndarray:
        mask = within.copy()
        derived = []
        for column, cond in flt.where.items():
            if column in DERIVED_COLUMNS:
                derived.append((column, cond))
            else:
                self._narrow(mask, column, cond)
        for column, cond in derived:
            rows = np.flatnonzero(mask)
            if rows.size == 0:
                break
            values = derive(column, self.table, rows, self.settings)
            mask[rows] = condition_mask(cond, values)
        if flt.any_of:
            anyhit = np.zeros_like(mask)
            for sub in flt.any_of:
                anyhit |= self._mask(sub, mask & ~anyhit)
            mask &= anyhit
        if flt.not_ is not None:
            mask &= ~self._mask(flt.not_, mask)
        return mask


def possible_mask(flt: RecordFilter, table: pa.Table) -> np.ndarray:
    """Which rows of ``table``, as read (after the column map, before normalization), may
    pass ``flt`` once normalized: a superset of the rows it passes then.

    A condition on an enumerated column (:data:`telediag.normalize.ENUMS`: record type,
    direction, status, MMS event) is judged on the value as normalization will read it,
    exactly as :class:`FilterEvaluator` judges it then; any other condition is taken to
    hold (``not`` turns what is only possible into nothing certain). A row that
    normalization sets aside may be marked: it passes no filter later, and marking it
    costs only its handset's rows.
    """
    encoded: dict[str, list[tuple[pa.Array, np.ndarray]]] = {}
    possible, _ = _judge_as_read(flt, table, encoded)
    return possible


def _label_chunks(column: pa.ChunkedArray | pa.Array) -> list[tuple[pa.Array, np.ndarray]]:
    """An enumerated column as read, chunk by chunk: its distinct values as
    normalization reads them (:func:`telediag.normalize.enum_text`; two may read
    alike) and each row's code among them (-1: null). A dictionary chunk (Parquet labels
    are read so) keeps its own dictionary: nothing is unified or re-encoded."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    found = []
    for chunk in chunks:
        if not pa.types.is_dictionary(chunk.type):
            if not pa.types.is_string(chunk.type):
                chunk = chunk.cast(pa.string())
            chunk = pc.dictionary_encode(chunk)
        values = chunk.dictionary
        if values.type != pa.string():
            values = values.cast(pa.string())
        found.append((enum_text(values), code_values(chunk)))
    return found


def judged_as_read(flt: RecordFilter) -> set[str]:
    """The columns :func:`possible_mask` reads to judge ``flt`` (its enumerated ones)."""
    found = {c for c in flt.where if c in ENUMS}
    for sub in [*flt.any_of, *([flt.not_] if flt.not_ is not None else [])]:
        found |= judged_as_read(sub)
    return found


def _judge_as_read(
    flt: RecordFilter, table: pa.Table, encoded: dict[str, list[tuple[pa.Array, np.ndarray]]]
) -> tuple[np.ndarray, np.ndarray]:
    """(may pass, surely passes) per row of ``table`` as read; see :func:`possible_mask`."""
    n = table.num_rows
    possible = np.ones(n, dtype=bool)
    certain = np.ones(n, dtype=bool)
    for column, cond in flt.where.items():
        # Bounds on a label are left to the scan, which reports them as the rule's error.
        if column not in ENUMS or cond.min is not None or cond.max is not None:
            certain[:] = False
            continue
        if column not in encoded:
            values = table[column] if column in table.column_names else pa.nulls(n, pa.string())
            encoded[column] = _label_chunks(values)
        try:
            parts = [judge_codes(cond, labels, codes) for labels, codes in encoded[column]]
        except (pa.ArrowException, ValueError, TypeError):  # the same: the scan says so
            certain[:] = False
            continue
        mask = np.concatenate(parts) if parts else np.zeros(n, dtype=bool)
        possible &= mask
        certain &= mask
    if flt.any_of:
        some_possible = np.zeros(n, dtype=bool)
        some_certain = np.zeros(n, dtype=bool)
        for sub in flt.any_of:
            p, c = _judge_as_read(sub, table, encoded)
            some_possible |= p
            some_certain |= c
        possible &= some_possible
        certain &= some_certain
    if flt.not_ is not None:
        p, c = _judge_as_read(flt.not_, table, encoded)
        possible &= ~c
        certain &= ~p
    return possible, certain
