"""Step 1: read Parquet files, Parquet directories or CSV into one Arrow table.

Reading does no validation beyond "the required columns exist": types and values are
checked, and bad rows set aside, by :mod:`telediag.normalize`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from telediag.chunks import plain
from telediag.colmap import ColumnMap, MapStats, load_column_map
from telediag.conform import as_text as key_text
from telediag.conform import check_unique, conform
from telediag.csvread import dialect_of, header_names, is_csv, read_csv
from telediag.devices import plausible_imei
from telediag.errors import InputError
from telediag.memory import is_in_memory, to_arrow
from telediag.schema import COLUMNS, IDENTIFIERS, REQUIRED

#: A path, or a table in memory: pandas DataFrame, Arrow table, batch or stream, or any
#: object with ``__arrow_c_stream__`` (polars, DuckDB).
Source: TypeAlias = "str | Path | pa.Table | Any"
Sources: TypeAlias = "Source | Sequence[Source]"


@dataclass(frozen=True)
class RawInput:
    """The concatenated input, with enough bookkeeping to name any row's origin."""

    table: pa.Table
    #: One entry per input file: the name used in generated record ids, unique within
    #: the input (a file given by itself: its stem; a file found in a directory: its
    #: path below that directory without the suffix, e.g. ``date=2008-06-12/part-0``).
    stems: list[str] = field(default_factory=list)
    #: Row offset of each file in ``table`` (same length as ``stems``).
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    files: list[str] = field(default_factory=list)
    #: Row number within its file of each table row, when only some rows were read.
    local_rows: np.ndarray | None = None
    #: Time formats the column map declares (None: only unambiguous formats).
    time_formats: tuple[str, ...] | None = None
    #: Input name -> the column map layout it was read with (maps with layouts only).
    layouts: dict[str, str] = field(default_factory=dict)
    #: Canonical column -> rows where the map's alternatives gave different values.
    disagreements: dict[str, int] = field(default_factory=dict)
    #: What the reader noticed about the input (identifiers held as numbers).
    warnings: list[str] = field(default_factory=list)

    @property
    def num_rows(self) -> int:
        """Rows read, before any is set aside."""
        return int(self.table.num_rows)

    def generated_ids(self, rows: np.ndarray) -> pa.Array:
        """``<file name>:<row number>`` for table rows (row numbers count from 0 per file).

        The file names of :attr:`stems` differ from each other, so the ids are unique
        across the whole input.
        """
        rows = np.asarray(rows, dtype=np.int64)
        which = np.searchsorted(self.offsets, rows, side="right") - 1
        local = rows - self.offsets[which] if self.local_rows is None else self.local_rows[rows]
        stems = pa.array(self.stems, type=pa.string())
        prefix = pc.take(stems, pa.array(which))
        return pc.binary_join_element_wise(
            prefix, pa.array(local.astype(str).tolist(), type=pa.string()), ":"
        )


def expand_sources(sources: Sources) -> list[Path | pa.Table]:
    """Turn the user's inputs into a flat list of files (directories expand to Parquet parts)."""
    return [item for item, _ in _expand(sources)]


def _expand(sources: Sources) -> list[tuple[Path | pa.Table, str]]:
    """Each input file (or table) with the name its generated record ids start with.

    A file given by itself is named by its stem; a file found in a directory by its
    path below the directory, so that ``date=2008-06-11/part-0.parquet`` and
    ``date=2008-06-12/part-0.parquet`` (as Spark and Hive write them) differ. Names that
    would still repeat (two files of the same stem given side by side) fall back to the
    whole path.
    """
    items: Iterable[Source] = (
        [sources] if isinstance(sources, (str, Path)) or is_in_memory(sources) else list(sources)
    )
    out: list[tuple[Path | pa.Table, str]] = []
    for n, item in enumerate(items):
        if is_in_memory(item):
            out.append((to_arrow(item, f"<table {n}>"), f"table{n}"))
            continue
        if not isinstance(item, (str, Path)):
            raise InputError(
                f"cannot read a {type(item).__name__}: give a path, a pandas DataFrame, an "
                "Arrow table or stream, or an object with __arrow_c_stream__"
            )
        path = Path(item)
        if path.is_dir():
            parts = sorted(
                p for p in path.rglob("*") if p.suffix == ".parquet" and p.is_file()
            ) or sorted(p for p in path.rglob("*") if is_csv(p) and p.is_file())
            if not parts:
                raise InputError(f"{path}: directory holds no .parquet or .csv files")
            out.extend((p, _without_suffix(p.relative_to(path).as_posix())) for p in parts)
        elif path.is_file():
            out.append((path, path.stem))
        else:
            raise InputError(f"{path}: no such file or directory")
    if not out:
        raise InputError("no input given")
    counts = Counter(name for _, name in out)
    if len(counts) < len(out):
        repeated = {name for name, count in counts.items() if count > 1}
        out = [
            (
                item,
                _without_suffix(item.as_posix())
                if name in repeated and isinstance(item, Path)
                else name,
            )
            for item, name in out
        ]
    return out


def labelled_sources(sources: Sources) -> list[tuple[Path | pa.Table, str]]:
    """Each input file (or table) with the name its generated record ids start with."""
    return _expand(sources)


def _without_suffix(name: str) -> str:
    for suffix in (".csv.gz", ".parquet", ".csv", ".txt"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _wanted_source_columns(
    available: Sequence[str], wanted: set[str] | None, cmap: ColumnMap | None
) -> list[str] | None:
    """Source columns to read: the wanted canonical ones, through the map if there is one."""
    if wanted is None:
        return None
    names = set(wanted) | set(REQUIRED) | {"record_id"}
    if cmap is not None:
        names = cmap.sources_for(names)
    return [c for c in available if c in names]


#: Text columns of a few distinct values (labels, not identifiers), read from Parquet
#: as dictionaries: that skips building millions of short strings, and normalization
#: then checks each distinct value once. Identifiers are read as text: Parquet gives a
#: dictionary per batch, and with a subscriber, handset or peer per row those are
#: nearly as large as the text and slower to read.
FEW_VALUES: tuple[str, ...] = (
    "record_type",
    "direction",
    "status",
    "mms_event",
    "apn",
    "server_ip",
    "app_protocol",
    "host",
)


def dictionary_columns(schema: pa.Schema, names: list[str], cmap: ColumnMap | None) -> list[str]:
    """The :data:`FEW_VALUES` columns among ``names`` that the file holds as text."""
    if cmap is not None:  # a map's expressions read source columns as they are
        return []
    types = {f.name: f.type for f in schema}
    return [
        c
        for c in FEW_VALUES
        if c in names and (pa.types.is_string(types[c]) or pa.types.is_large_string(types[c]))
    ]


def _read_parquet(path: Path, wanted: set[str] | None, cmap: ColumnMap | None) -> pa.Table:
    try:
        schema = pq.read_schema(path)
        cols = _wanted_source_columns(schema.names, wanted, cmap)
        names = schema.names if cols is None else cols
        # No pre-buffering: it holds every column chunk of the file's row groups in
        # memory on top of the decoded table (300 MB more peak for a 10M-row month).
        return pq.read_table(
            path,
            columns=cols,
            read_dictionary=dictionary_columns(schema, names, cmap),
            pre_buffer=False,
        )
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: cannot read Parquet: {exc}") from None


def _read_csv(path: Path, wanted: set[str] | None, cmap: ColumnMap | None) -> pa.Table:
    """CSV is read as text throughout (see :mod:`telediag.csvread`)."""
    return read_csv(
        path,
        cmap.csv if cmap is not None else None,
        lambda header: _wanted_source_columns(header, wanted, cmap),
    )


@dataclass(frozen=True)
class SubscriberFilter:
    """Read only one subscriber's rows, plus every row of the handsets they used.

    The handsets' other rows let rules that follow a handset across subscribers (a SIM
    swap) see their evidence.
    """

    msisdn: str
    follow_handsets: bool = True


def _key_columns(item: Path | pa.Table, cmap: ColumnMap | None) -> pa.Table:
    """msisdn and imei of every row of one input (cheap: two columns)."""
    wanted = {"msisdn", "imei"}
    if isinstance(item, pa.Table):
        table = item
    else:  # a Parquet file read without a column map: just the two key columns
        try:
            names = pq.read_schema(item).names
            table = pq.read_table(item, columns=[c for c in names if c in wanted])
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{item}: cannot read Parquet: {exc}") from None
    if cmap is not None:
        table = cmap.apply(table, zone="UTC")  # only the key columns are read from it
    if "msisdn" not in table.column_names:
        raise InputError(f"{item}: missing required column 'msisdn'")
    # As normalization writes numbers as text (13800000001.0 is 13800000001), so that
    # the investigation picks the very rows a scan uses.
    where = str(item) if isinstance(item, Path) else "input"
    cols = {"msisdn": pc.utf8_trim_whitespace(key_text("msisdn", where, table["msisdn"]))}
    if "imei" in table.column_names:
        # Only a plausible IMEI is a handset to follow; a blank or a placeholder such as
        # 000000000000000 would pull in every subscriber that shares it.
        imei = pc.utf8_trim_whitespace(key_text("imei", where, table["imei"]))
        cols["imei"] = pc.if_else(
            pc.fill_null(plausible_imei(imei), False), imei, pa.scalar(None, pa.string())
        )
    else:
        cols["imei"] = pa.nulls(table.num_rows, pa.string())
    return pa.table(cols)


def _selected_rows(keys: list[pa.Table], only: SubscriberFilter) -> list[np.ndarray]:
    own = [np.asarray(pc.fill_null(pc.equal(k["msisdn"], only.msisdn), False)) for k in keys]
    if not only.follow_handsets:
        return [np.flatnonzero(m) for m in own]
    handsets = pa.chunked_array(
        [k["imei"].filter(pa.array(m)).combine_chunks() for k, m in zip(keys, own, strict=True)],
        type=pa.string(),
    )
    handsets = pc.unique(handsets.drop_null())
    out = []
    for k, m in zip(keys, own, strict=True):
        same_handset = np.asarray(pc.fill_null(pc.is_in(k["imei"], handsets), False))
        out.append(np.flatnonzero(m | same_handset))
    return out


def _by_row_group(item: Path | pa.Table, cmap: ColumnMap | None) -> bool:
    """Can some rows of this input be read without reading all of it?"""
    return isinstance(item, Path) and item.suffix.lower() == ".parquet" and cmap is None


def _read_whole(item: Path, columns: set[str] | None, cmap: ColumnMap | None) -> pa.Table:
    """An input read in full, before any column map is applied."""
    if is_csv(item):
        return _read_csv(item, columns, cmap)
    return _read_parquet(item, columns, cmap)


def _read_rows(item: Path, rows: np.ndarray, columns: set[str] | None) -> pa.Table:
    """Only the row groups of a Parquet file that hold ``rows``, then just those rows."""
    try:
        pf = pq.ParquetFile(item)
        sizes = np.array([pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        groups = np.unique(np.searchsorted(starts, rows, side="right") - 1)
        cols = _wanted_source_columns(pf.schema_arrow.names, columns, None)
        part = pf.read_row_groups(list(groups), columns=cols)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{item}: cannot read Parquet: {exc}") from None
    # Row numbers inside the concatenation of the row groups read.
    part_starts = np.concatenate([[0], np.cumsum(sizes[groups])[:-1]])
    group_of = np.searchsorted(starts, rows, side="right") - 1
    local = rows - starts[group_of] + part_starts[np.searchsorted(groups, group_of)]
    return part.take(pa.array(local))


def read_input(
    sources: Sources,
    column_map: ColumnMap | str | Path | None = None,
    columns: set[str] | None = None,
    only: SubscriberFilter | None = None,
    tz: str | None = None,
) -> RawInput:
    """Read every input into one table of canonical column names.

    ``columns`` limits reading to the canonical columns the selected rules need (the
    required ones and ``record_id`` are always read). A missing required column is an
    :class:`InputError` naming the file and the column. ``tz`` is the scan's zone (see
    :meth:`ColumnMap.apply`; default UTC).
    """
    base = load_column_map(column_map) if isinstance(column_map, (str, Path)) else column_map
    tables: list[pa.Table] = []
    stems: list[str] = []
    files: list[str] = []
    labelled = _expand(sources)
    items = [item for item, _ in labelled]
    stats = MapStats()
    layouts: dict[str, str] = {}
    warnings: list[str] = []
    maps = [_item_map(item, n, base, layouts) for n, item in enumerate(items)]
    selected: list[np.ndarray] | None = None
    # Inputs that cannot be read a row group at a time (CSV, or anything behind a column
    # map) are read once, in full, and both the key pass and the row pick use that copy.
    whole: dict[int, pa.Table] = {}
    if only is not None:
        wanted = None if columns is None else columns | {"msisdn", "imei"}
        for n, item in enumerate(items):
            if isinstance(item, Path) and not _by_row_group(item, maps[n]):
                whole[n] = _read_whole(item, wanted, maps[n])
        keys = [_key_columns(whole.get(n, item), maps[n]) for n, item in enumerate(items)]
        selected = _selected_rows(keys, only)
    for n, (item, stem) in enumerate(labelled):
        cmap = maps[n]
        name = f"<table {n}>" if isinstance(item, pa.Table) else str(item)
        if selected is not None:
            rows = selected[n]
            if isinstance(item, pa.Table):
                table = item.take(pa.array(rows))
            elif n in whole:
                table = whole[n].take(pa.array(rows))
            else:
                table = _read_rows(item, rows, columns)
        elif isinstance(item, pa.Table):
            table = item
            if columns is not None:
                keep = _wanted_source_columns(table.column_names, columns, cmap)
                table = table.select(keep if keep is not None else table.column_names)
        elif is_csv(item):
            table = _read_csv(item, columns, cmap)
        else:
            table = _read_parquet(item, columns, cmap)
        read_names = set(COLUMNS) | (cmap.source_columns() if cmap else set())
        check_unique(table.column_names, read_names, name)
        if isinstance(item, pa.Table):
            warnings.extend(_number_identifiers(table, cmap, name))
        if cmap is not None:
            try:
                table = cmap.apply(table, stats, zone=tz or "UTC")
            except InputError as exc:  # the map names the column; the file is named here
                raise InputError(f"{name}{exc}") from None
        missing = [c for c in REQUIRED if c not in table.column_names]
        if missing:
            raise InputError(f"{name}: missing required column {missing[0]!r}")
        tables.append(conform(table, name))
        stems.append(stem)
        files.append(name)
    sizes = np.array([t.num_rows for t in tables], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    combined = _concat(tables)
    local_rows = None if selected is None else np.concatenate(selected).astype(np.int64)
    return RawInput(
        table=combined,
        stems=stems,
        offsets=offsets,
        files=files,
        local_rows=local_rows,
        time_formats=base.time_formats() if base is not None else None,
        layouts=layouts,
        disagreements=dict(stats.disagreements),
        warnings=warnings,
    )


def _item_map(
    item: Path | pa.Table, n: int, base: ColumnMap | None, layouts: dict[str, str]
) -> ColumnMap | None:
    """The column map for one input: the base map, or the layout its columns call for."""
    if base is None or not base.layouts:
        return base
    if isinstance(item, pa.Table):
        names, label = item.column_names, f"<table {n}>"
    elif is_csv(item):
        names, label = header_names(item, dialect_of(item, base.csv)), str(item)
    else:
        try:
            names, label = pq.read_schema(item).names, str(item)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{item}: cannot read Parquet: {exc}") from None
    chosen, layout = base.for_input(names, label)
    layouts[label] = layout or "(base map)"
    return chosen


def _number_identifiers(table: pa.Table, cmap: ColumnMap | None, name: str) -> list[str]:
    """A warning for each source column of an identifier that an in-memory table holds
    as numbers: whoever read the file (``pd.read_csv``, ``pl.read_csv``) may have dropped
    leading zeros and ``+`` (``00447700900123`` becomes ``447700900123``, another
    number). The column is named as the table has it, with the identifier it makes."""
    out = []
    for column in IDENTIFIERS:
        sources = sorted(cmap.sources_for({column})) if cmap is not None else [column]
        for source in sources:
            if source not in table.column_names:
                continue
            t = table[source].type
            if pa.types.is_dictionary(t):
                t = t.value_type
            if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
                label = repr(source) if source == column else f"{source!r} ({column})"
                out.append(
                    f"{name}: column {label} holds numbers ({t}), so leading zeros and '+' "
                    "may have been lost when the file was read; read identifiers as text "
                    "(pd.read_csv(..., dtype=str), pl.read_csv(..., infer_schema=False)) "
                    "or give telediag the file itself"
                )
    return out


def _same_kinds(tables: list[pa.Table]) -> list[pa.Table]:
    """Tables from several inputs that hold a column in different types, one of them a
    dictionary (a categorical frame and a text one, dictionaries of other index widths):
    that column as its values in all of them, so that they concatenate as they are
    rather than through text."""
    types: dict[str, set[pa.DataType]] = {}
    for t in tables:
        for f in t.schema:
            types.setdefault(f.name, set()).add(f.type)
    mixed = {
        name
        for name, seen in types.items()
        if len(seen) > 1 and any(pa.types.is_dictionary(t) for t in seen)
    }
    if not mixed:
        return tables
    return [
        pa.table(
            [plain(c) if n in mixed else c for n, c in zip(t.column_names, t.columns, strict=True)],
            names=t.column_names,
        )
        for t in tables
    ]


def _concat(tables: list[pa.Table]) -> pa.Table:
    if len(tables) == 1:
        return tables[0]
    tables = _same_kinds(tables)
    names: list[str] = []
    for t in tables:
        names.extend(c for c in t.column_names if c not in names)
    aligned = []
    for t in tables:
        cols = {}
        for c in names:
            cols[c] = t[c] if c in t.column_names else pa.nulls(t.num_rows, pa.null())
        aligned.append(pa.table(cols))
    try:
        return pa.concat_tables(aligned, promote_options="permissive")
    except pa.ArrowException:
        # Parts disagree on a column's type (e.g. int in one file, text in another):
        # fall back to text, which normalization parses row by row.
        text = [pa.table({c: key_text(c, "input", t[c]) for c in t.column_names}) for t in aligned]
        return pa.concat_tables(text, promote_options="permissive")
