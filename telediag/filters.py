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
from telediag.chunks import encode, narrow
from telediag.conditions import Condition
from telediag.context import ScanSettings
from telediag.derived import DERIVED_COLUMNS, derive


def _typed_values(values: list[Any], arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pa.array([str(v) for v in values], type=t)
    if pa.types.is_boolean(t):
        return pa.array([bool(v) for v in values], type=t)
    try:
        return pa.array(values).cast(t)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.array(values, type=pa.float64()).cast(t, safe=False)


def condition_mask(cond: Condition, arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Boolean numpy mask of ``cond`` over an Arrow column; null fails all but is_null."""
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


def dictionary_condition_mask(cond: Condition, encoded: pa.DictionaryArray) -> np.ndarray:
    """The condition judged once per distinct value, then looked up for every row."""
    dictionary = encoded.dictionary
    per_value = condition_mask(cond, dictionary)
    on_null = condition_mask(cond, pa.nulls(1, dictionary.type))[0]
    hits = np.flatnonzero(per_value)
    if hits.size <= 4 and not on_null:
        # A few matching values (a record type, a status): compare the codes, which
        # costs far less than a lookup through every row (nulls never match here).
        codes = encoded.indices
        if codes.null_count:
            codes = pc.fill_null(codes, -1)
        values = np.asarray(codes.to_numpy(zero_copy_only=False))
        mask = np.zeros(values.shape[0], dtype=bool)
        for code in hits:
            mask |= values == code
        return mask
    lookup = np.append(per_value, on_null)
    indices = pc.fill_null(encoded.indices, len(dictionary)).to_numpy(zero_copy_only=False)
    return np.asarray(lookup[indices], dtype=bool)


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

    def _encoding(self, column: str) -> pa.DictionaryArray:
        if column not in self._encoded:
            self._encoded[column] = narrow(encode(self.table[column]))
        return self._encoded[column]

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
                mask = dictionary_condition_mask(cond, self._encoding(column))
            else:
                mask = condition_mask(cond, arr)
            self._cache[key] = np.packbits(mask)
        return np.unpackbits(self._cache[key], count=n).view(bool)

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
                mask &= self._base(column, cond)
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
