"""Column maps: read an operator's own column names and values without code.

A column map is a small YAML file::

    columns:            # canonical name: source column (or a list: first non-null wins)
      msisdn: servedMSISDN
      peer_number: [calledNumber, callingNumber]
    record_kinds:       # one source column whose values set several canonical columns
      source: recordType
      values:
        moCallRecord: {record_type: voice, direction: mo}
    values:             # value translation per canonical column
      status: {"0": ok, "1": failed}
    constants:          # a canonical column that the feed lacks, set to one value
      direction: mo
    scale:              # multiply a numeric column, e.g. milliseconds to seconds
      duration_s: 0.001

Nothing in a map is executed; it only renames, coalesces and translates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from telediag.errors import ColumnMapError
from telediag.schema import COLUMNS
from telediag.yamlfile import load_yaml_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecordKinds(_Strict):
    """One source column whose values decide several canonical columns at once."""

    source: str
    values: dict[str, dict[str, str]]
    #: What to do with a value not listed: keep it as the record_type (so it is set aside
    #: as unknown, with its value visible) rather than guessing.

    @field_validator("values")
    @classmethod
    def _targets_are_canonical(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for raw, targets in v.items():
            unknown = sorted(set(targets) - set(COLUMNS))
            if unknown:
                raise ValueError(f"value {raw!r} sets unknown column(s) {unknown}")
        return v


class ColumnMap(_Strict):
    """How to turn one operator's feed into the canonical record table."""

    name: str = ""
    description: str = ""
    columns: dict[str, str | list[str]] = Field(default_factory=dict)
    record_kinds: RecordKinds | None = None
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    constants: dict[str, str | int | float] = Field(default_factory=dict)
    scale: dict[str, float] = Field(default_factory=dict)

    @field_validator("columns", "values", "constants", "scale")
    @classmethod
    def _keys_are_canonical(cls, v: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(v) - set(COLUMNS))
        if unknown:
            raise ValueError(
                f"unknown canonical column(s) {unknown}; expected names from the contract"
            )
        return v

    def source_columns(self) -> set[str]:
        """Every source column name the map reads."""
        names: set[str] = set()
        for src in self.columns.values():
            names.update([src] if isinstance(src, str) else src)
        if self.record_kinds is not None:
            names.add(self.record_kinds.source)
        return names

    def apply(self, table: pa.Table) -> pa.Table:
        """Return ``table`` with canonical columns built from the source columns.

        Source columns the map does not mention are kept as they are.
        """
        out: dict[str, pa.ChunkedArray] = {}
        consumed: set[str] = set()
        for canonical, src in self.columns.items():
            sources = [src] if isinstance(src, str) else list(src)
            present = [s for s in sources if s in table.column_names]
            if not present:
                continue
            arrays = [_as_string_if_mixed(table[s], table, present) for s in present]
            out[canonical] = arrays[0] if len(arrays) == 1 else pc.coalesce(*arrays)
            consumed.update(present)
        if self.record_kinds is not None and self.record_kinds.source in table.column_names:
            kinds = self.record_kinds
            raw = table[kinds.source].cast(pa.string())
            targets = sorted({col for t in kinds.values.values() for col in t})
            for col in targets:
                mapping = {k: t[col] for k, t in kinds.values.items() if col in t}
                fallback = raw if col == "record_type" else None
                mapped = translate(raw, mapping, fallback)
                out[col] = pc.coalesce(mapped, out[col]) if col in out else mapped
            consumed.add(kinds.source)
        for col, value in self.constants.items():
            if col not in out and col not in table.column_names:
                out[col] = pa.chunked_array([pa.array(np.full(table.num_rows, value))])
        columns = {n: table[n] for n in table.column_names if n not in consumed and n not in out}
        columns.update(out)
        for col, mapping in self.values.items():
            if col in columns:
                columns[col] = translate(columns[col].cast(pa.string()), mapping, columns[col])
        for col, factor in self.scale.items():
            if col in columns:
                arr = columns[col]
                if not pa.types.is_floating(arr.type) and not pa.types.is_integer(arr.type):
                    arr = pc.cast(arr, pa.float64(), safe=False)
                columns[col] = pc.multiply(pc.cast(arr, pa.float64()), factor)
        return pa.table(columns)


def _as_string_if_mixed(arr: pa.ChunkedArray, table: pa.Table, names: list[str]) -> pa.ChunkedArray:
    """Coalescing columns of different types needs one type: fall back to strings."""
    types = {table[n].type for n in names}
    return arr if len(types) == 1 else arr.cast(pa.string())


def translate(
    raw: pa.ChunkedArray, mapping: dict[str, str], fallback: pa.ChunkedArray | None
) -> pa.ChunkedArray:
    """Translate string values through ``mapping``, working on the distinct values only.

    Values not in the mapping take ``fallback`` (the original value) or null.
    """
    encoded = pc.dictionary_encode(raw.combine_chunks())
    dictionary = encoded.dictionary.to_pylist()
    translated = pa.array(
        [mapping.get(v) if v is not None else None for v in dictionary], type=pa.string()
    )
    mapped = pc.take(translated, encoded.indices)
    if fallback is not None:
        mapped = pc.coalesce(mapped, fallback.combine_chunks().cast(pa.string()))
    return pa.chunked_array([mapped])


def load_column_map(path: str | Path) -> ColumnMap:
    """Read and validate a column map YAML file; errors name the file and the field."""
    return load_yaml_model(path, ColumnMap, ColumnMapError, "column map")
