"""Column maps: read an operator's own layout without code.

A column map is a small YAML file; ``docs/column-maps.md`` explains every key. Version 1
maps (``columns`` as names or lists of names, ``record_kinds``, ``values``,
``constants``, ``scale``) keep their meaning. Version 2 adds:

- ``csv:`` the dialect (delimiter, header or positional ``names``, quote, null markers,
  lines to skip at either end, encoding); compressed files are read by their ending;
- ``times:`` the time formats, tried in order (``strptime`` patterns, ``epoch_s``,
  ``epoch_ms``);
- a column written as an object: a source with its own value map (and a ``default``
  for unlisted values), a ``scale``, a ``constant``, a ``date`` and a ``time`` column
  combined, or a duration from a ``start`` and an ``end`` time;
- a list of such objects: alternatives in precedence order (the first that gives a
  value wins; rows where two of them disagree are counted in the input report);
- ``layouts:`` alternatives for files whose headers differ, chosen per file by the
  columns it has.

Nothing in a map is executed; it only renames, combines and translates. Applying a map
works on any Arrow table or batch, so it can run file by file or batch by batch.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from telediag.conform import as_text
from telediag.csvread import CsvDialect
from telediag.errors import ColumnMapError, InputError
from telediag.schema import (
    COLUMNS,
    DIRECTIONS,
    MMS_EVENTS,
    NUMERIC_COLUMNS,
    RECORD_TYPES,
    STATUSES,
)
from telediag.timeparse import (
    AMBIGUOUS,
    EPOCH_FORMATS,
    NONEXISTENT,
    durations,
    parse_timestamps,
    parse_wall,
    part_widths,
)
from telediag.timeutil import utc_offsets_ms
from telediag.yamlfile import load_yaml_model

#: How a derived duration whose start or end the zone's clock change skips or repeats
#: is shown (normalization sets such rows aside with their own reason).
DURATION_NOTES: dict[int, str] = {
    NONEXISTENT: " (nonexistent local time)",
    AMBIGUOUS: " (ambiguous local time)",
}

#: The values an enumerated canonical column may be mapped to.
ALLOWED_VALUES: dict[str, tuple[str, ...]] = {
    "record_type": RECORD_TYPES,
    "direction": DIRECTIONS,
    "status": STATUSES,
    "mms_event": MMS_EVENTS,
}


def _as_key(v: object) -> object:
    """Value-map keys may be written as numbers in YAML (``1: mo``): they mean the text."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float)):
        return str(v)
    return v


Key = Annotated[str, BeforeValidator(_as_key)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_targets(column: str, mapping: dict[str, str]) -> None:
    allowed = ALLOWED_VALUES.get(column)
    if allowed is None:
        return
    for raw, target in mapping.items():
        if target not in allowed:
            raise ValueError(
                f"{column}: {raw!r} maps to {target!r}, which is not one of {', '.join(allowed)}"
            )


class RecordKinds(_Strict):
    """One source column whose values decide several canonical columns at once.

    A value not listed is kept as the record_type (so it is set aside as unknown, with
    its value visible) rather than guessed.
    """

    source: str
    values: dict[Key, dict[str, str]]

    @field_validator("values")
    @classmethod
    def _targets_are_canonical(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for raw, targets in v.items():
            unknown = sorted(set(targets) - set(COLUMNS))
            if unknown:
                raise ValueError(f"value {raw!r} sets unknown column(s) {unknown}")
            for col, target in targets.items():
                _check_targets(col, {raw: target})
        return v


class Times(_Strict):
    """How time text is read."""

    #: strptime patterns (and ``epoch_s``/``epoch_ms``) tried in order.
    formats: list[str] = Field(default_factory=list)

    @field_validator("formats")
    @classmethod
    def _formats_are_patterns(cls, v: list[str]) -> list[str]:
        for fmt in v:
            if fmt not in EPOCH_FORMATS and "%" not in fmt:
                raise ValueError(
                    f"{fmt!r} is neither a strptime pattern (with % fields) nor one of "
                    f"{sorted(EPOCH_FORMATS)}"
                )
            if "%Z" in fmt:
                raise ValueError(
                    f"{fmt!r}: %Z (a zone name) cannot be read safely, since a name such as "
                    "CST stands for several offsets: use %z for an offset (+0800, -05:00, Z), "
                    "write a UTC name as literal text ('... UTC'), or leave the name out "
                    "and give the zone with --tz"
                )
        return v


class Column(_Strict):
    """One way to obtain a canonical column (the object form of ``columns:`` entries)."""

    #: A source column, or several: the first non-null value wins.
    source: str | list[str] | None = None
    #: Source value -> canonical value.
    values: dict[Key, str] | None = None
    #: What a value not in ``values`` becomes; without it the value is kept as read (so an
    #: enumerated column sets the row aside as unknown, showing the value).
    default: str | None = None
    #: Multiply the (numeric) value: 0.001 for milliseconds, 1024 for kilobytes...
    scale: float | None = None
    #: The same value on every row (e.g. the direction of a file of outgoing calls).
    constant: str | int | float | None = None
    #: A date column and a time-of-day column, read together as ``"<date> <time>"``.
    date: str | None = None
    time: str | None = None
    #: A duration in seconds from a start and an end time of the same row (a call
    #: that crosses midnight when both are times of day counts as ending the next day).
    start: str | None = None
    end: str | None = None

    @model_validator(mode="after")
    def _one_origin(self) -> Column:
        origins = [
            self.source is not None,
            self.constant is not None,
            self.date is not None or self.time is not None,
            self.start is not None or self.end is not None,
        ]
        if sum(origins) != 1:
            raise ValueError("give exactly one of: source, constant, date + time, start + end")
        if (self.date is None) != (self.time is None):
            raise ValueError("date and time go together")
        if (self.start is None) != (self.end is None):
            raise ValueError("start and end go together")
        if self.default is not None and self.values is None:
            raise ValueError("default is for values not listed in 'values'")
        if isinstance(self.source, list) and not self.source:
            raise ValueError("source: give at least one column")
        return self

    def sources(self) -> list[str]:
        """The source columns this reads."""
        if self.source is not None:
            return [self.source] if isinstance(self.source, str) else list(self.source)
        return [c for c in (self.date, self.time, self.start, self.end) if c is not None]


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def _spec(v: object) -> object:
    """Read a ``columns:`` entry, so that a mistake is reported for the form meant."""
    if isinstance(v, (str, Column)):
        return v
    if isinstance(v, dict):
        try:
            return Column.model_validate(v)
        except ValidationError as exc:
            raise ValueError(_first_error(exc)) from None
    if isinstance(v, list) and v:
        return [_spec(item) if isinstance(item, dict) else item for item in v]
    raise ValueError(
        "expected a source column name, a list of them, or an object "
        "(source/values/default/scale, constant, date + time, start + end)"
    )


ColumnEntry = str | Column
ColumnSpec = Annotated[str | Column | list[ColumnEntry], BeforeValidator(_spec)]


def _entries(spec: ColumnSpec) -> list[Column]:
    """Any ``columns:`` entry as a list of alternatives (a list of names is one
    alternative that coalesces them, as in version 1)."""
    if isinstance(spec, str):
        return [Column(source=spec)]
    if isinstance(spec, Column):
        return [spec]
    if all(isinstance(e, str) for e in spec):
        return [Column(source=[str(e) for e in spec])]
    return [Column(source=e) if isinstance(e, str) else e for e in spec]


def _check_columns(columns: dict[str, ColumnSpec]) -> None:
    for col, spec in columns.items():
        for entry in _entries(spec):
            if entry.values is not None:
                _check_targets(col, entry.values)
            if entry.default is not None:
                _check_targets(col, {"(default)": entry.default})
            if entry.start is not None and col != "duration_s":
                raise ValueError(f"{col}: start + end give duration_s only")
            if entry.scale is not None:
                _check_scaled(col)


def _check_scaled(col: str) -> None:
    if col not in NUMERIC_COLUMNS:
        raise ValueError(f"{col}: scale is for number columns ({', '.join(NUMERIC_COLUMNS)})")


def _scaled_are_numbers(v: dict[str, float]) -> dict[str, float]:
    for col in v:
        _check_scaled(col)
    return v


class Layout(_Strict):
    """An alternative for the files whose header differs (e.g. incoming vs outgoing)."""

    name: str
    #: Columns the file's header must have for this layout to apply.
    when: list[str] = Field(default_factory=list)
    #: A file-name pattern (``*_in_*.csv``) the file must match, if given.
    files: str | None = None
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    constants: dict[str, str | int | float] = Field(default_factory=dict)
    values: dict[str, dict[Key, str]] = Field(default_factory=dict)
    scale: dict[str, float] = Field(default_factory=dict)

    @field_validator("columns", "values", "constants", "scale")
    @classmethod
    def _keys_are_canonical(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _canonical_keys(v)

    @field_validator("scale")
    @classmethod
    def _scale_numbers(cls, v: dict[str, float]) -> dict[str, float]:
        return _scaled_are_numbers(v)

    @field_validator("values")
    @classmethod
    def _values_are_allowed(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for col, mapping in v.items():
            _check_targets(col, mapping)
        return v

    @field_validator("columns")
    @classmethod
    def _columns_are_consistent(cls, v: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
        _check_columns(v)
        return v

    @model_validator(mode="after")
    def _says_when(self) -> Layout:
        if not self.when and self.files is None:
            raise ValueError(f"layout {self.name!r}: give 'when' (columns) or 'files' (pattern)")
        return self


def _canonical_keys(v: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(v) - set(COLUMNS))
    if unknown:
        raise ValueError(f"unknown canonical column(s) {unknown}; expected names from the contract")
    return v


class ColumnMap(_Strict):
    """How to turn one operator's feed into the canonical record table."""

    version: int = Field(default=2, ge=1, le=2)
    name: str = ""
    description: str = ""
    csv: CsvDialect | None = None
    times: Times = Field(default_factory=Times)
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    record_kinds: RecordKinds | None = None
    values: dict[str, dict[Key, str]] = Field(default_factory=dict)
    constants: dict[str, str | int | float] = Field(default_factory=dict)
    scale: dict[str, float] = Field(default_factory=dict)
    layouts: list[Layout] = Field(default_factory=list)

    @field_validator("columns", "values", "constants", "scale")
    @classmethod
    def _keys_are_canonical(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _canonical_keys(v)

    @field_validator("scale")
    @classmethod
    def _scale_numbers(cls, v: dict[str, float]) -> dict[str, float]:
        return _scaled_are_numbers(v)

    @field_validator("values")
    @classmethod
    def _values_are_allowed(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for col, mapping in v.items():
            _check_targets(col, mapping)
        return v

    @field_validator("columns")
    @classmethod
    def _columns_are_consistent(cls, v: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
        _check_columns(v)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ColumnMap:
        names = [layout.name for layout in self.layouts]
        dup = [n for n, c in Counter(names).items() if c > 1]
        if dup:
            raise ValueError(f"layouts: {dup[0]!r} is named twice")
        return self

    def time_formats(self) -> tuple[str, ...] | None:
        """The declared time formats, or None for the unambiguous defaults."""
        return tuple(self.times.formats) or None

    def for_input(self, names: list[str], filename: str = "") -> tuple[ColumnMap, str | None]:
        """The map for one input with these column names: the first layout whose
        ``when`` columns are all there (and whose ``files`` pattern matches) merged over
        the base map, and that layout's name (None: the base map alone)."""
        present = set(names)
        for layout in self.layouts:
            if not set(layout.when) <= present:
                continue
            if layout.files is not None and not fnmatch.fnmatch(Path(filename).name, layout.files):
                continue
            return self.with_layout(layout.name), layout.name
        return self, None

    def with_layout(self, name: str | None) -> ColumnMap:
        """The map with the named layout merged over the base (None: the base alone)."""
        for layout in self.layouts:
            if layout.name == name:
                return self.model_copy(
                    update={
                        "columns": {**self.columns, **layout.columns},
                        "constants": {**self.constants, **layout.constants},
                        "values": {**self.values, **layout.values},
                        "scale": {**self.scale, **layout.scale},
                        "layouts": [],
                    }
                )
        return self

    def source_columns(self) -> set[str]:
        """Every source column name the map (and its layouts) reads."""
        names: set[str] = set()
        for spec in self.columns.values():
            for entry in _entries(spec):
                names.update(entry.sources())
        for layout in self.layouts:
            for spec in layout.columns.values():
                for entry in _entries(spec):
                    names.update(entry.sources())
        if self.record_kinds is not None:
            names.add(self.record_kinds.source)
        return names

    def sources_for(self, canonical: set[str]) -> set[str]:
        """Source columns needed to make these canonical columns (columns the map does not
        mention are read under their canonical names)."""
        names = set(canonical)
        specs = [self.columns, *(layout.columns for layout in self.layouts)]
        for columns in specs:
            for col, spec in columns.items():
                if col in canonical:
                    for entry in _entries(spec):
                        names.update(entry.sources())
        kinds = self.record_kinds
        if kinds is not None:
            targets = {c for t in kinds.values.values() for c in t} | {"record_type"}
            if targets & canonical:
                names.add(kinds.source)
        return names

    def apply(
        self, table: pa.Table | pa.RecordBatch, stats: MapStats | None = None, *, zone: str
    ) -> pa.Table:
        """Return ``table`` with canonical columns built from the source columns.

        Works on a whole table or one record batch (rows do not depend on each other;
        use :meth:`for_input` first to pick the layout of a file). Source columns the
        map does not mention are kept as they are. ``stats``, if given, counts rows
        whose alternatives disagree. ``zone`` is the scan's zone: a duration from a
        start and an end time is the time that passed between them there.
        """
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        n = table.num_rows
        out: dict[str, pa.ChunkedArray] = {}
        #: Values as read, for rows no alternative could translate (set aside as unknown).
        as_read: dict[str, list[pa.ChunkedArray]] = {}
        consumed: set[str] = set()
        for canonical, spec in self.columns.items():
            made = self._column(canonical, spec, table, consumed, stats, zone)
            if made is not None:
                out[canonical], as_read[canonical] = made
        if self.record_kinds is not None and self.record_kinds.source in table.column_names:
            kinds = self.record_kinds
            raw = as_text(kinds.source, "", table[kinds.source])
            targets = sorted({col for t in kinds.values.values() for col in t})
            for col in targets:
                mapping = {k: t[col] for k, t in kinds.values.items() if col in t}
                mapped = translate(raw, mapping, None)
                # The map's own entry for a column decides; the record kind fills the
                # rest; an unlisted kind is kept as the record type (set aside).
                out[col] = pc.coalesce(out[col], mapped) if col in out else mapped
                if col == "record_type":
                    as_read.setdefault(col, []).append(raw)
            consumed.add(kinds.source)
        for col, raws in as_read.items():
            if raws:
                parts = [out[col], *raws]
                if len({a.type for a in parts}) > 1:  # scaled numbers beside text: text
                    parts = [as_text(col, "", a) for a in parts]
                out[col] = pc.coalesce(*parts)
        for col, value in self.constants.items():
            if col not in out and col not in table.column_names:
                out[col] = pa.chunked_array([pa.array(np.full(n, value))])
        columns = {c: table[c] for c in table.column_names if c not in consumed and c not in out}
        columns.update(out)
        for col, mapping in self.values.items():
            if col in columns:
                text = as_text(col, "", columns[col])
                columns[col] = translate(text, mapping, text)
        for col, factor in self.scale.items():
            if col in columns:
                columns[col] = scale_column(columns[col], factor)
        return pa.table(columns)

    def _column(
        self,
        canonical: str,
        spec: ColumnSpec,
        table: pa.Table,
        consumed: set[str],
        stats: MapStats | None,
        zone: str,
    ) -> tuple[pa.ChunkedArray, list[pa.ChunkedArray]] | None:
        """A column's value where some alternative gives one (null elsewhere), and the
        values as read of the alternatives that translate (last resort, kept so that an
        unlisted value is set aside showing itself)."""
        entries = _entries(spec)
        made: list[tuple[Column, pa.ChunkedArray, pa.ChunkedArray | None]] = []
        for entry in entries:
            got = self._entry(canonical, entry, table, consumed, zone)
            if got is not None:
                made.append((entry, *got))
        if not made:
            return None
        values = [_same_type(v, [m[1] for m in made]) for _, v, _ in made]
        result = values[0] if len(values) == 1 else pc.coalesce(*values)
        signals = isinstance(spec, list) and any(not isinstance(e, str) for e in spec)
        if stats is not None and signals:
            stats.count_disagreements(canonical, values)
        raws = [r for e, _, r in made if r is not None and e.default is None]
        if not isinstance(result, pa.ChunkedArray):
            result = pa.chunked_array([result])
        return result, raws

    def _entry(
        self, canonical: str, entry: Column, table: pa.Table, consumed: set[str], zone: str
    ) -> tuple[pa.ChunkedArray, pa.ChunkedArray | None] | None:
        """One alternative's values (null where it has none) and its raw text, or None
        when its source columns are not in the table."""
        n = table.num_rows
        if entry.constant is not None:
            return pa.chunked_array([pa.array(np.full(n, entry.constant))]), None
        present = [s for s in entry.sources() if s in table.column_names]
        if entry.date is not None or entry.start is not None:
            if len(present) < 2:
                return None
            consumed.update(present)
            if entry.date is not None:
                return self._date_and_time(table, str(entry.date), str(entry.time)), None
            return self._duration(table, str(entry.start), str(entry.end), zone), None
        if not present:
            return None
        consumed.update(present)
        arrays = [table[s] for s in present]
        if len(arrays) > 1:
            arrays = [_same_type(a, arrays, n) for a, n in zip(arrays, present, strict=True)]
        value = arrays[0] if len(arrays) == 1 else pc.coalesce(*arrays)
        if not isinstance(value, pa.ChunkedArray):
            value = pa.chunked_array([value])
        raw = None
        if entry.values is not None:
            raw = as_text(present[0] if len(present) == 1 else canonical, "", value)
            value = translate(raw, dict(entry.values), None)
            if entry.default is not None:
                value = pc.if_else(raw.is_valid(), pc.coalesce(value, entry.default), value)
        if entry.scale is not None:
            value = scale_column(value, entry.scale)
            if raw is not None:  # an unlisted value kept as read is a number to scale too
                raw = scale_column(raw, entry.scale)
        return value, raw

    def _date_and_time(self, table: pa.Table, date: str, time: str) -> pa.ChunkedArray:
        """``"<date> <time>"`` text; numbers (a reader dropped their leading zeros) are
        padded to the width the patterns give each part (see :func:`part_widths`)."""
        widths = part_widths(self.time_formats())
        parts = []
        for name, width in ((date, widths[0]), (time, widths[1])):
            arr = table[name]
            text = pc.utf8_trim_whitespace(as_text(name, "", arr))
            numeric = pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)
            if numeric and width is not None:
                text = pc.utf8_lpad(text, width, "0")
            parts.append(text)
        return pc.binary_join_element_wise(parts[0], parts[1], " ")

    def _duration(self, table: pa.Table, begin: str, finish: str, zone: str) -> pa.ChunkedArray:
        """Seconds from start to end (see :func:`telediag.timeparse.durations`); null
        where either is missing; text where a given time does not parse, or the zone's
        clock change skips or repeats it (so the row is set aside, showing both times)."""
        formats = self.time_formats()
        start, end = table[begin], table[finish]
        walls = []
        for name, arr in ((begin, start), (finish, end)):
            try:
                if pa.types.is_boolean(arr.type):
                    raise TypeError(f"values of type {arr.type} are not times")
                walls.append(parse_wall(arr, formats))
            except TypeError as exc:
                raise InputError(f": column {name!r}: {exc}") from None
        anchor = lambda: self._start_local_ms(table, zone)  # noqa: E731 (only when needed)
        seconds, why = durations(walls[0], walls[1], zone, anchor)
        result = pa.array(seconds, pa.float64(), mask=np.isnan(seconds))
        if not why.any():
            return pa.chunked_array([result])
        a = as_text(begin, "", start)
        b = as_text(finish, "", end)
        shown = pc.binary_join_element_wise(pc.fill_null(a, ""), pc.fill_null(b, ""), " .. ")
        notes = np.array(["", "", *DURATION_NOTES.values()], dtype=object)
        codes = np.array([0, 1, *DURATION_NOTES], dtype=np.int8)
        note = pa.array(notes[np.searchsorted(codes, why)], pa.string())
        shown = pc.binary_join_element_wise(shown, note, "")
        text = pc.if_else(pa.array(why != 0), shown, pc.cast(result, pa.string()))
        return text if isinstance(text, pa.ChunkedArray) else pa.chunked_array([text])

    def _start_local_ms(self, table: pa.Table, zone: str) -> np.ndarray | None:
        """Each row's start_time as a local reading in ``zone`` (ms; NaN where it has
        none): the day that times of day without a date belong to."""
        spec = self.columns.get("start_time")
        if spec is not None:
            made = self._column("start_time", spec, table, set(), None, zone)
            column = made[0] if made is not None else None
        else:
            column = table["start_time"] if "start_time" in table.column_names else None
        if column is None:
            return None
        try:
            parsed = parse_timestamps(column, zone, self.time_formats())
        except TypeError:
            return None
        ok = np.asarray(parsed.times.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        ms = np.asarray(
            pc.fill_null(pc.cast(parsed.times, pa.int64()), 0).to_numpy(zero_copy_only=False)
        )
        local = np.full(len(ms), np.nan)
        local[ok] = ms[ok] + utc_offsets_ms(ms[ok], zone)
        return local


class MapStats:
    """What applying a map found, summed over files and batches."""

    def __init__(self) -> None:
        #: Canonical column -> rows where two alternatives gave different values.
        self.disagreements: Counter[str] = Counter()

    def count_disagreements(self, column: str, values: list[pa.ChunkedArray]) -> None:
        if len(values) < 2:
            return
        first = values[0]
        differ = None
        for other in values[1:]:
            d = pc.fill_null(pc.not_equal(first, other), False)
            differ = d if differ is None else pc.or_(differ, d)
        count = int(pc.sum(pc.cast(differ, pa.int64())).as_py() or 0)
        if count:
            self.disagreements[column] += count


def _same_type(
    arr: pa.ChunkedArray, group: list[pa.ChunkedArray], name: str = ""
) -> pa.ChunkedArray:
    """Coalescing columns of different types needs one type: fall back to text."""
    types = {a.type for a in group}
    if len(types) == 1:
        return arr
    return as_text(name, "", arr)


def scale_column(arr: pa.ChunkedArray, factor: float) -> pa.ChunkedArray:
    """Multiply a column by ``factor``.

    Text that is not a number stays as it was read, so that normalization sets its row
    aside as unparseable and the set-aside row shows the value; the other values become
    their scaled numbers written as text (exactly: shortest round-trip form).
    """
    if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type):
        return pc.multiply(pc.cast(arr, pa.float64()), factor)
    if pa.types.is_null(arr.type):
        return arr.cast(pa.float64())
    try:
        text = as_text("", "", arr)
    except Exception:  # not text at all: leave it for conform() to reject by name
        return arr
    try:
        return pc.multiply(pc.cast(text, pa.float64()), factor)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    trimmed = pc.utf8_trim_whitespace(text)
    numeric = pc.match_substring_regex(trimmed, NUMBER_PATTERN)
    numbers = pc.if_else(numeric, trimmed, pa.scalar(None, pa.string()))
    scaled = pc.multiply(pc.cast(numbers, pa.float64()), factor)
    return pc.if_else(numeric, pc.cast(scaled, pa.string()), text)


#: A decimal number as text (what a cast to float64 accepts, less inf and nan).
NUMBER_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def translate(
    raw: pa.ChunkedArray, mapping: dict[str, str], fallback: pa.ChunkedArray | None
) -> pa.ChunkedArray:
    """Translate string values through ``mapping``, working on the distinct values only.

    Values not in the mapping take ``fallback`` (the original value) or null.
    """
    combined = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
    is_dict = pa.types.is_dictionary(combined.type)
    encoded = combined if is_dict else pc.dictionary_encode(combined)
    keys = pa.array(list(mapping), type=pa.string())
    targets = pa.array(list(mapping.values()), type=pa.string())
    translated = pc.take(targets, pc.index_in(encoded.dictionary.cast(pa.string()), keys))
    mapped = pc.take(translated, encoded.indices)
    if fallback is not None:
        back = fallback.combine_chunks() if isinstance(fallback, pa.ChunkedArray) else fallback
        mapped = pc.coalesce(mapped, back.cast(pa.string()))
    return pa.chunked_array([mapped])


def load_column_map(path: str | Path) -> ColumnMap:
    """Read and validate a column map YAML file; errors name the file and the field."""
    return load_yaml_model(path, ColumnMap, ColumnMapError, "column map", text_keys=True)
