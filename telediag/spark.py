"""The same scan on a Spark cluster, for months kept in a data lake.

Spark reads the month (Parquet or CSV, any file system the cluster has: ``hdfs://``,
``s3a://``), applies the column map batch by batch over Arrow, gives every row its record
id, and shuffles the rows into buckets. Each bucket then goes through the very same
engine as a local scan, over Arrow (``groupBy(...).applyInArrow``), in one Python call
per bucket: there is no row-by-row Python.

Rules are cut as in a bucketed local scan: subscriber-keyed rules run on buckets of rows
hashed by the trimmed msisdn, which also give the input accounting and the rejects;
handset-keyed rules (``cross_subscriber``, TD004) run on buckets of the rows that carry an
IMEI, hashed by it. Both cuts travel in one shuffle.

Every bucket returns one Arrow table holding, row by row, its findings, evidence,
rejects, input counts and rule errors (a ``_kind`` column tells them apart). That table
is cached once; the findings, evidence and rejects are views of it, and the counts and
errors are summed on the driver. A rule that fails in any bucket loses all its findings,
as when it fails in a one-piece scan; the others stand.

Record ids are what make finding ids equal to a local scan's: an input without
``record_id`` gets ``<file stem>:<row number in the file>``, computed here from Spark's
file metadata (which split of which file a row came from, and its place in the split).

Python::

    from telediag.spark import scan
    result = scan(spark.read.parquet("s3a://lake/cdr/2008-07"), tz="Asia/Shanghai")
    result.findings, result.evidence, result.rejects  # Spark DataFrames
    result.report, result.errors  # summed input accounting; rules that failed
"""

from __future__ import annotations

import codecs
import fnmatch
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import unquote, urlparse

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from telediag.buckets import sort_findings
from telediag.catalog import Rule
from telediag.colmap import ColumnMap, load_column_map
from telediag.context import ScanSettings
from telediag.csvread import CsvDialect
from telediag.engine import RuleError
from telediag.errors import InputError, TelediagError
from telediag.findings import EVIDENCE_COLUMNS, FINDING_COLUMNS, empty_evidence, empty_findings
from telediag.normalize import REASONS, InputReport, order_rejects
from telediag.read import _wanted_source_columns
from telediag.scan import CONTRACT_COLUMNS, ScanResult, _resolve_rules
from telediag.schema import COLUMNS, REQUIRED

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

Key = Literal["subscriber", "handset"]

#: Rows per bucket when the caller does not choose: about half a gigabyte of memory in
#: the Python worker that scans it (the engine needs about 0.4 GB per million rows).
ROWS_PER_BUCKET = 1_000_000

#: Spark's CSV reader turns an unquoted empty field into this, then into null, while a
#: quoted empty field stays an empty string: the same as the local CSV reader.
_CSV_NULL = "\u0000telediag-null\u0000"

_SESSION_TZ = "spark.sql.session.timeZone"

#: Encodings Spark's CSV reader takes without its legacy Java-charsets setting.
_SPARK_CHARSETS = frozenset(
    ("iso8859-1", "latin-1", "ascii", "utf-16", "utf-16-be", "utf-16-le", "utf-32", "utf-8")
)

#: Whitespace at either end as Arrow's utf8_trim_whitespace has it: Unicode's, and the
#: separators U+001C..U+001F, which Java's ``\s`` leaves.
_TRIM = r"(?U)^[\s\x{1C}-\x{1F}]+|[\s\x{1C}-\x{1F}]+$"

#: Columns added to the input for record ids and buckets; never part of the result.
_FILE, _BLOCK, _MONO, _PASS, _BUCKET = "_td_file", "_td_block", "_td_mono", "_td_pass", "_td_bucket"
_PASSES: tuple[Key, Key] = ("subscriber", "handset")

#: Prefixes of the union table's columns that belong to one kind of row.
_EV, _RJ, _RP, _ER = "ev_", "rj_", "rp_", "er_"


class SparkError(TelediagError):
    """Spark is missing, or refused the input."""


# ---------------------------------------------------------------------------------------
# The bucket side: runs in the executors' Python workers. Plain Arrow and pandas only.


@dataclass
class _Part:
    """What one bucket gave (the fields of ``buckets.BucketResult``)."""

    findings: pd.DataFrame
    evidence: pd.DataFrame
    report: InputReport
    errors: list[RuleError]
    rejects: pa.Table


def _scan_part(table: pa.Table, rules: Sequence[Rule], settings: ScanSettings, key: Key) -> _Part:
    """The engine on one bucket: the only place that calls it (the bucketed scan's
    :func:`telediag.buckets.scan_bucket`, which every large scan shares).

    ``table`` holds contract columns after the column map, before normalization, with
    every record id filled in. A subscriber bucket reports its rows and rejects; a
    handset bucket holds copies of rows counted elsewhere and reports neither.
    """
    from telediag.buckets import scan_bucket

    part = scan_bucket(table, list(rules), settings, key=key, workers=1)
    return _Part(part.findings, part.evidence, part.report, part.errors, part.rejects)


def _finding_fields() -> list[tuple[str, pa.DataType]]:
    """The findings table's columns with their Arrow types on Spark (times in
    microseconds, Spark's unit; the list of record ids as a list of strings)."""
    template = empty_findings()
    fields: list[tuple[str, pa.DataType]] = []
    for name in FINDING_COLUMNS:
        dtype = template[name].dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            fields.append((name, pa.timestamp("us", tz="UTC")))
        elif pd.api.types.is_object_dtype(dtype):
            fields.append((name, pa.list_(pa.string())))
        elif pd.api.types.is_integer_dtype(dtype):
            fields.append((name, pa.int64()))
        elif pd.api.types.is_float_dtype(dtype):
            fields.append((name, pa.float64()))
        else:
            fields.append((name, pa.string()))
    return fields


def union_schema(reject_fields: Sequence[tuple[str, pa.DataType]]) -> pa.Schema:
    """The Arrow schema every bucket returns: one ``_kind`` column, then the columns of
    findings, evidence, rejects (``reject_fields``: the input's columns), counts and errors.
    """
    ts = pa.timestamp("us", tz="UTC")
    fields: list[tuple[str, pa.DataType]] = [("_kind", pa.string())]
    fields += _finding_fields()
    fields += [(_EV + "record_id", pa.string()), (_EV + "start_time", ts)]
    fields += [(_EV + "record_type", pa.string())]
    fields += [(_RJ + "reason", pa.string()), (_RJ + "record_id", pa.string())]
    fields += [(_RJ + name, t) for name, t in reject_fields if name != "record_id"]
    fields += [(_RP + "item", pa.string()), (_RP + "count", pa.int64())]
    fields += [(_ER + "message", pa.string()), (_ER + "detail", pa.string())]
    fields += [(_ER + "bucket", pa.int64())]
    return pa.schema(fields)


def _rows(kind: str, n: int, columns: dict[str, Any], schema: pa.Schema) -> pa.Table:
    """``n`` rows of one kind: the given columns cast to the schema, nulls elsewhere."""
    arrays = []
    for f in schema:
        if f.name == "_kind":
            arrays.append(pa.array([kind] * n, type=pa.string()))
        elif f.name in columns:
            value = columns[f.name]
            arr = value if isinstance(value, (pa.Array, pa.ChunkedArray)) else pa.array(value)
            arrays.append(arr.cast(f.type))
        else:
            arrays.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _frame_columns(frame: pd.DataFrame, names: Sequence[str]) -> dict[str, pa.ChunkedArray]:
    table = pa.Table.from_pandas(frame[list(names)], preserve_index=False)
    return {n: table[n] for n in names}


def encode_part(part: _Part, bucket: int, schema: pa.Schema) -> pa.Table:
    """One bucket's result as rows of the union schema."""
    pieces: list[pa.Table] = []
    if len(part.findings):
        cols = _frame_columns(part.findings, FINDING_COLUMNS)
        pieces.append(_rows("finding", len(part.findings), cols, schema))
    if len(part.evidence):
        ev = _frame_columns(part.evidence, EVIDENCE_COLUMNS)
        rule_of = dict(zip(part.findings["finding_id"], part.findings["rule_id"], strict=True))
        rule_ids = part.evidence["finding_id"].map(rule_of)
        cols = {
            "finding_id": ev["finding_id"],
            "rule_id": pa.array(rule_ids.astype(object), type=pa.string()),
            _EV + "record_id": ev["record_id"],
            _EV + "start_time": ev["start_time"],
            _EV + "record_type": ev["record_type"],
        }
        pieces.append(_rows("evidence", len(part.evidence), cols, schema))
    rejects = part.rejects
    if rejects.num_columns and rejects.num_rows:
        cols = {}
        for name in rejects.column_names:
            target = _RJ + name
            if target in schema.names:
                arr = rejects[name]
                if pa.types.is_dictionary(arr.type):
                    arr = arr.cast(arr.type.value_type)
                cols[target] = arr
        pieces.append(_rows("reject", rejects.num_rows, cols, schema))
    rep = part.report
    if rep.rows_read:
        items = ["rows_read", "rows_used", *(f"set_aside:{r}" for r in rep.set_aside)]
        counts = [rep.rows_read, rep.rows_used, *rep.set_aside.values()]
        cols = {_RP + "item": items, _RP + "count": pa.array(counts, type=pa.int64())}
        pieces.append(_rows("report", len(items), cols, schema))
    if part.errors:
        cols = {
            "rule_id": [e.rule_id for e in part.errors],
            _ER + "message": [e.message for e in part.errors],
            _ER + "detail": [e.detail for e in part.errors],
            _ER + "bucket": pa.array([bucket] * len(part.errors), type=pa.int64()),
        }
        pieces.append(_rows("error", len(part.errors), cols, schema))
    if not pieces:
        return schema.empty_table()
    return pa.concat_tables(pieces)


def bucket_function(
    subscriber_rules: Sequence[Rule],
    handset_rules: Sequence[Rule],
    settings: ScanSettings,
    schema: pa.Schema,
) -> Callable[[tuple[Any, ...], pa.Table], pa.Table]:
    """The function Spark calls once per bucket, with the bucket's (pass, number) key."""
    sub_rules, hs_rules = list(subscriber_rules), list(handset_rules)

    def run(key: tuple[Any, ...], table: pa.Table) -> pa.Table:
        which = _PASSES[int(key[0].as_py())]
        bucket = int(key[1].as_py())
        rows = table.drop_columns([c for c in (_PASS, _BUCKET) if c in table.column_names])
        rules = sub_rules if which == "subscriber" else hs_rules
        started = time.perf_counter()
        part = _scan_part(rows, rules, settings, which)
        out = encode_part(part, bucket, schema)
        # The bucket's cost, for sizing a cluster: one row per bucket and pass.
        cost = {
            _RP + "item": [f"bucket_ms:{which}"],
            _RP + "count": pa.array([round((time.perf_counter() - started) * 1000)], pa.int64()),
        }
        return pa.concat_tables([out, _rows("report", 1, cost, schema)])

    return run


def mapped_schema(cmap: ColumnMap, source: pa.Schema, keep: Sequence[str]) -> pa.Schema:
    """The Arrow schema a column map gives for a source schema: contract columns present
    after the map, then the ``keep`` columns passed through; columns of no type are text."""
    out = cmap.apply(source.empty_table(), zone="UTC")  # types only
    fields = []
    for name in [*(c for c in out.column_names if c in COLUMNS), *keep]:
        t = out.schema.field(name).type if name in out.column_names else pa.string()
        if pa.types.is_null(t) or (_number(t) and _from_text(cmap, source, name)):
            # A number made from text (a scaled column) is text when one of its values
            # is no number: that row is set aside by normalization, as locally. So the
            # column travels as text, which normalization parses back to the same number.
            t = pa.string()
        fields.append(pa.field(name, t))
    return pa.schema(fields)


def _number(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def _from_text(cmap: ColumnMap, source: pa.Schema, name: str) -> bool:
    """Is the canonical column ``name`` made from a text column of ``source``?"""
    types = {f.name: f.type for f in source}
    return any(
        pa.types.is_string(types[c]) or pa.types.is_large_string(types[c])
        for c in cmap.sources_for({name})
        if c in types
    )


def _as_type(arr: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    """A mapped column in the type Spark was told. A float sent as text keeps NaN as no
    value (null), as normalization reads a NaN (not as the text 'nan')."""
    if pa.types.is_floating(arr.type) and target == pa.string():
        nan = pc.is_nan(arr)
        if pc.any(nan).as_py():
            arr = pc.if_else(nan, pa.scalar(None, arr.type), arr)
    return arr.cast(target)


def map_function(cmap: ColumnMap, schema: pa.Schema, zone: str) -> Callable[[Any], Any]:
    """mapInArrow's function: the column map on each batch (in the scan's ``zone``),
    cast to ``schema``."""

    from telediag.colmap import MapStats

    def run(batches: Any) -> Any:
        for batch in batches:
            stats = MapStats()
            mapped = cmap.apply(pa.Table.from_batches([batch]), stats, zone=zone)
            n = mapped.num_rows
            # The batch's disagreement counts ride on its first row, for the driver to sum.
            note = json.dumps(dict(stats.disagreements)) if stats.disagreements else None
            cols = [
                pa.array([note] + [None] * (n - 1) if n else [], type=pa.string())
                if f.name == _DISAGREE
                else _as_type(mapped[f.name], f.type)
                for f in schema
            ]
            yield from pa.Table.from_arrays(cols, schema=schema).to_batches()

    return run


# ---------------------------------------------------------------------------------------
# The driver side.


def _require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkError("--engine spark needs PySpark: pip install 'telediag[spark]'") from None


def _use_this_interpreter(spark: SparkSession) -> None:
    """In local mode, let Python workers run this very interpreter (which has telediag
    and pyarrow) unless the user chose one; a cluster's executors keep their own."""
    sc = spark.sparkContext
    chosen = sc.getConf().get("spark.pyspark.python") or os.environ.get("PYSPARK_PYTHON")
    if (sc.master or "").startswith("local") and chosen in (None, sys.executable):
        sc.pythonExec = sys.executable


def session(master: str | None = None, app_name: str = "telediag") -> SparkSession:
    """A Spark session for a scan: the running one, or a new one on ``master`` (default
    ``local[*]`` when not run through spark-submit). Times are handled in UTC."""
    _require_pyspark()
    from pyspark.sql import SparkSession

    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # started by spark-submit
    if master is None and not submitted:
        master = "local[*]"
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
        if master.startswith("local"):
            # One machine: the workers run this interpreter, and a few shuffle
            # partitions do (Spark's default of 200 is for clusters).
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            builder = builder.config("spark.sql.shuffle.partitions", "8")
    try:
        spark = (
            builder.config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate()
        )
    except Exception as exc:  # no Java, a bad master URL: one line, not a JVM trace
        raise SparkError(f"cannot start Spark: {_first_line(exc)}") from None
    _use_this_interpreter(spark)
    return spark


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_local(path: str) -> bool:
    scheme = urlparse(path).scheme
    return scheme in ("", "file") or len(scheme) == 1  # a Windows drive letter


def _local_path(path: str) -> str:
    """A ``file:`` URI as the path a local scan would print; other URIs as they are."""
    parsed = urlparse(path)
    return unquote(parsed.path) if parsed.scheme == "file" else path


def _glob_base(given: str) -> str:
    """A path as given, or for a glob its leading directories without a glob character
    (``/data/p/*.parquet`` -> ``/data/p``)."""
    if not any(ch in given for ch in "*?["):
        return given
    parts = given.split("/")
    fixed = []
    for part in parts:
        if any(ch in part for ch in "*?["):
            break
        fixed.append(part)
    if not fixed:  # "*.parquet": the working directory
        return "."
    return "/".join(fixed) or "/"


def _id_names(keys: list[str]) -> dict[str, str]:
    """The name each file's generated record ids start with, as the local reader gives
    it: a file named by itself by its stem, a file found in a directory by its path
    below the directory (without the ending), and where names still repeat, the whole
    path. ``keys`` are ``<input as given><_SEP><file Spark read>``."""
    from telediag.read import _without_suffix

    def path_of(text: str, local: bool) -> str:
        p = unquote(urlparse(text).path) if urlparse(text).scheme else text
        return os.path.abspath(p) if local else p

    first: dict[str, str] = {}
    whole: dict[str, str] = {}
    for key in keys:
        given, file = key.split(_SEP, 1)
        local = _is_local(file)
        file_path = path_of(file, local)
        # Files a glob found are named below the glob's fixed directory, as the files of
        # that directory would be.
        root = path_of(_glob_base(given), local) if given else file_path
        if root.rstrip("/") == file_path or not given:
            first[key] = PurePosixPath(file_path).stem
            whole[key] = _without_suffix(PurePosixPath(given or file_path).as_posix())
        else:
            below = os.path.relpath(file_path, root)
            first[key] = _without_suffix(below)
            whole[key] = _without_suffix((PurePosixPath(_glob_base(given)) / below).as_posix())
    counts: dict[str, int] = {}
    for name in first.values():
        counts[name] = counts.get(name, 0) + 1
    return {k: whole[k] if counts[first[k]] > 1 else first[k] for k in keys}


def _kind_of(path: str) -> str:
    """``csv`` or ``parquet``, from the ending as the local reader judges it (a local
    directory: from what it holds)."""
    from telediag.csvread import CSV_ENDINGS, is_csv

    lower = path.lower().rstrip("/")
    for ending in (".gz", ".bz2", ".zst"):
        lower = lower.removesuffix(ending)
    if lower.endswith(CSV_ENDINGS):
        return "csv"
    if _is_local(path):
        p = Path(_local_path(path))
        if not p.exists() and not any(ch in path for ch in "*?["):  # a glob: Spark's own
            raise InputError(f"{path}: no such file or directory")
        # As the local reader: any ending it reads as text (.tsv, .csv.gz, .txt...).
        texts = p.is_dir() and any(is_csv(f) and f.is_file() for f in p.rglob("*"))
        if texts and not any(p.rglob("*.parquet")):
            return "csv"
    return "parquet"


def java_message(exc: BaseException) -> str:
    """The reason of a failed Spark call in one line: the innermost Java cause's message
    (without its error class and SQL state), else the first line of the Python error."""
    java = getattr(exc, "java_exception", None)
    message = None
    try:
        while java is not None:
            text = java.getMessage()
            if text:
                message = str(text)
            java = java.getCause()
    except Exception:  # a broken gateway: fall back to the Python text
        pass
    text = message or _first_line(exc)
    text = re.sub(r"^\[[A-Z_.]+\]\s*", "", text.strip().splitlines()[0] if text.strip() else text)
    return re.sub(r"\s*SQLSTATE: \w+\s*$", "", text)


def _csv_groups(
    path: str, declared: CsvDialect | None, cmap: ColumnMap | None = None
) -> list[tuple[str | list[str], str | None, CsvDialect]]:
    """What one Spark reader each should read of a CSV input, with the column map layout
    it calls for and the dialect (the map's, else the one the file ending says, see
    :func:`telediag.csvread.dialect_of`): a local directory's files (as the local reader
    lists them) grouped by their header, layout and dialect, since Spark takes one header
    per read and would put another file's fields under it by position; any other input
    as it is (Spark then refuses a file whose header differs, see :func:`_csv_frame`),
    its layout chosen by :func:`_layout_of` from the header Spark reads."""
    from telediag.csvread import dialect_of, first_lines, header_names, is_csv

    if not _is_local(path) or not Path(_local_path(path)).is_dir():
        return [(path, None, dialect_of(_local_path(path), declared))]
    files = sorted(f for f in Path(_local_path(path)).rglob("*") if is_csv(f) and f.is_file())
    groups: dict[tuple[bytes, str | None, str], list[str]] = {}
    dialects: dict[str, CsvDialect] = {}
    for f in files:  # by the header line as written, which is what Spark compares
        dialect = dialect_of(f, declared)
        dialects[dialect.delimiter] = dialect
        key = b""
        try:
            if dialect.header:
                key = b"".join(first_lines(f, 1)).rstrip(b"\r")
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{f}: cannot read CSV: {_first_line(exc)}") from None
        layout = None
        if cmap is not None and cmap.layouts:
            layout = cmap.for_input(header_names(f, dialect), str(f))[1] or ""
        groups.setdefault((key, layout, dialect.delimiter), []).append(str(f))
    return [(part, layout, dialects[sep]) for (_, layout, sep), part in groups.items()]


def _parquet_groups(path: str, cmap: ColumnMap | None = None) -> list[tuple[list[str], str | None]]:
    """The Parquet files of an input in groups of one schema (and column map layout)
    each, for one Spark reader each: a local directory's files as the local reader lists
    them (Spark would take one file's schema for all and drop the columns only the others
    have; the groups' types are then unified as the local reader's); any other input as
    it is, its files' schemas merged by Spark (``mergeSchema``), its layout chosen by
    :func:`_layout_of`."""
    import pyarrow.parquet as pq

    if not _is_local(path) or not Path(_local_path(path)).is_dir():
        return [([path], None)]
    files = sorted(f for f in Path(_local_path(path)).rglob("*.parquet") if f.is_file())
    groups: dict[tuple[str, str | None], list[str]] = {}
    for f in files:
        try:
            schema = pq.read_schema(f)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{f}: cannot read Parquet: {_first_line(exc)}") from None
        layout = None
        if cmap is not None and cmap.layouts:
            layout = cmap.for_input(schema.names, str(f))[1] or ""
        groups.setdefault((str(schema.remove_metadata()), layout), []).append(str(f))
    return [(part, layout) for (_, layout), part in groups.items()] or [([path], None)]


def _layout_of(frame: DataFrame, cmap: ColumnMap | None, path: str) -> str | Column | None:
    """The layout (``""``: the base map) a map with layouts gives an input whose columns
    Spark read; None for a map without layouts. Where a layout that fits the columns
    names a file pattern, the layout is told row by row from the name of the file each
    row came from (an input may be a directory of such files)."""
    if cmap is None or not cmap.layouts:
        return None
    fitting = [layout for layout in cmap.layouts if set(layout.when) <= set(frame.columns)]
    if all(layout.files is None for layout in fitting):
        return cmap.for_input(list(frame.columns), path)[1] or ""
    from pyspark.sql import functions as F

    name = F.regexp_extract(F.col(_FILE), r"[^/]*$", 0)
    chosen: Any = F
    for layout in fitting:
        matches = (
            F.lit(True)
            if layout.files is None
            else name.rlike("^" + fnmatch.translate(layout.files))
        )
        chosen = chosen.when(matches, F.lit(layout.name))
    return cast("Column", chosen.otherwise(F.lit("")))


def _csv_frame(spark: SparkSession, path: str | list[str], dialect: CsvDialect) -> DataFrame:
    """A CSV input read by Spark as the local reader reads it: every column text, the
    map's delimiter, quote, encoding and column names (the null spellings are applied by
    :func:`_csv_nulls`, after the file columns are taken). A file whose header differs
    from the first one's is an error (``enforceSchema`` off), not columns misplaced."""
    from pyspark.sql.types import StringType, StructField, StructType

    name = path if isinstance(path, str) else path[0]
    for key in ("skip_rows", "skip_footer"):
        if getattr(dialect, key):
            raise InputError(
                f"{name}: the column map's csv.{key} cannot be honoured by Spark's CSV "
                "reader; strip those lines first, or scan with the local engine"
            )
    options: dict[str, Any] = {
        "header": dialect.header,
        "inferSchema": False,
        "sep": dialect.delimiter,
        "quote": dialect.quote if dialect.quote is not None else "\u0000",
        "escape": dialect.quote if dialect.quote is not None else "\\",
        "encoding": dialect.encoding,
        "nullValue": _CSV_NULL,
        "mode": "PERMISSIVE",
        "enforceSchema": False,
    }
    if codecs.lookup(dialect.encoding).name not in _SPARK_CHARSETS:
        # Spark 4 reads only a few charsets unless told to use Java's (GBK, GB18030...).
        spark.conf.set("spark.sql.legacy.javaCharsets", "true")
    reader = spark.read.options(**options)
    if not dialect.header and dialect.names:
        reader = reader.schema(StructType([StructField(n, StringType()) for n in dialect.names]))
    frame = reader.csv(path)
    # Header names trimmed, as the local reader matches them (" msisdn " is msisdn).
    trimmed = [c.strip() for c in frame.columns]
    return frame.toDF(*trimmed) if trimmed != frame.columns else frame


def _csv_nulls(frame: DataFrame, dialect: CsvDialect) -> DataFrame:
    """The local reader's null spellings (``NULL``, ``NA``, ``N/A``, ``nan``...) as null."""
    from pyspark.sql import functions as F

    nulls = (
        list(dialect.null_values)
        if dialect.null_values is not None
        else [v for v in pacsv.ConvertOptions().null_values if v]
    )
    if not nulls:
        return frame
    hidden = {_FILE, _BLOCK, _MONO}
    return frame.select(
        *(
            F.col(f"`{c}`")
            if c in hidden
            else F.when(F.col(f"`{c}`").isin(nulls), F.lit(None).cast("string"))
            .otherwise(F.col(f"`{c}`"))
            .alias(c)
            for c in frame.columns
        )
    )


def _float_text(col: Any) -> Any:
    """Floats as text the way the local reader joins a float part to a text part
    (:func:`telediag.conform.as_text`): a whole number up to 2**53 without its ``.0``
    (13800000001, not Spark's 1.3800000001E10), others as Arrow writes them where Spark
    agrees (NaN as 'nan', as Arrow writes it)."""
    from pyspark.sql import functions as F

    whole = (~F.isnan(col)) & (F.abs(col) <= F.lit(2.0**53)) & (F.floor(col) == col)
    return (
        F.when(F.isnan(col), F.lit("nan"))
        .when(whole, col.cast("long").cast("string"))
        .otherwise(col.cast("string"))
    )


def _unify_types(frames: list[DataFrame]) -> list[DataFrame]:
    """Inputs that disagree on a column's type have that column as text in all of them,
    as the local reader joins them; instants become text with their UTC offset, so a
    CSV's naive times are still read in the scan's zone and Parquet's times are not moved.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, FloatType, StringType, TimestampType

    types: dict[str, set[str]] = {}
    for frame in frames:
        for fld in frame.schema.fields:
            types.setdefault(fld.name, set()).add(fld.dataType.simpleString())
    mixed = {name for name, seen in types.items() if len(seen) > 1}
    if not mixed:
        return frames
    out = []
    for frame in frames:
        cols = []
        for fld in frame.schema.fields:
            col = F.col(f"`{fld.name}`")
            if fld.name in mixed and not isinstance(fld.dataType, StringType):
                if isinstance(fld.dataType, TimestampType):
                    col = F.date_format(
                        F.to_utc_timestamp(col, str(frame.sparkSession.conf.get(_SESSION_TZ))),
                        "yyyy-MM-dd HH:mm:ss.SSSSSS'Z'",
                    )
                elif isinstance(fld.dataType, (FloatType, DoubleType)):
                    col = _float_text(col)
                else:
                    col = col.cast("string")
            cols.append(col.alias(fld.name))
        out.append(frame.select(*cols))
    return out


def read(
    spark: SparkSession,
    inputs: str | Sequence[str],
    column_map: ColumnMap | str | Path | None = None,
) -> DataFrame:
    """Parquet or CSV inputs as one Spark DataFrame of source columns (CSV as text, by the
    column map's dialect, like the local reader). Each input is read on its own, so CSV
    files with different headers line up by column name."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    items = [inputs] if isinstance(inputs, str) else list(inputs)
    if not items:
        raise InputError("no input given")
    cmap = load_column_map(column_map) if isinstance(column_map, (str, Path)) else column_map
    declared = cmap.csv if cmap is not None else None
    from telediag.store import is_store

    frames: list[DataFrame] = []
    for item in items:
        path = str(item)
        if _is_local(path) and is_store(_local_path(path)):
            # Its rows sit in subscriber and handset buckets, its rows set aside apart:
            # read as plain Parquet it would count rows twice.
            raise InputError(
                f"{path}: a prepared store; scan it with the local engine (telediag scan "
                f"{path}), or give Spark the files it was prepared from"
            )
        try:
            if _kind_of(path) == "csv":
                for part, known, dialect in _csv_groups(path, declared, cmap):
                    frame = _csv_frame(spark, part, dialect)
                    layout = known if known is not None else _layout_of(frame, cmap, path)
                    frame = _csv_nulls(_with_file_metadata(frame, path), dialect)
                    frames.append(_tag_layout(frame, layout))
            else:
                for files, known in _parquet_groups(path, cmap):
                    frame = spark.read.option("mergeSchema", True).parquet(*files)
                    layout = known if known is not None else _layout_of(frame, cmap, path)
                    frames.append(_tag_layout(_with_file_metadata(frame, path), layout))
        except (PySparkException, Py4JJavaError) as exc:
            raise InputError(f"{path}: cannot read: {java_message(exc)}") from None
    frames = _unify_types(frames)
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame, allowMissingColumns=True)
    return out


def _tag_layout(frame: DataFrame, layout: str | Column | None) -> DataFrame:
    from pyspark.sql import functions as F

    if layout is None:
        return frame
    return frame.withColumn(_LAYOUT, F.lit(layout) if isinstance(layout, str) else layout)


#: Between the input as the user named it and the file Spark read, in the file column.
_SEP = "\u001f"
#: Column of the mapped input carrying a batch's column-map disagreement counts.
_DISAGREE = "_td_disagree"
#: Column of an input read with a map that has layouts: the layout each row's file
#: calls for ("" for the base map), chosen by the file's header as the local reader does.
_LAYOUT = "_td_layout"


def _with_file_metadata(frame: DataFrame, given: str = "") -> DataFrame:
    """The frame with the file and split of each row, and its place in the split. The
    file column also holds ``given``, the input (file or directory) it was found under,
    which generated record ids are named after."""
    from pyspark.sql import functions as F

    file = F.concat(F.lit(given + _SEP), F.col("_metadata.file_path"))
    return frame.select(
        "*",
        file.alias(_FILE),
        F.col("_metadata.file_block_start").alias(_BLOCK),
        F.monotonically_increasing_id().alias(_MONO),
    )


def _ensure_position(frame: DataFrame) -> tuple[DataFrame, bool]:
    """Add file, split and position columns; (frame, True when they name real files)."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    if _FILE in frame.columns:
        return frame, True
    if frame.inputFiles():
        try:
            return _with_file_metadata(frame), True
        except AnalysisException:  # built from files, but no longer a plain file scan
            pass
    # Not read from files: rows are numbered in the frame's own order, as the local scan
    # numbers the rows of an Arrow table (``table0:<row>``).
    return (
        frame.select(
            "*",
            F.lit("").alias(_FILE),
            F.spark_partition_id().cast("long").alias(_BLOCK),
            F.monotonically_increasing_id().alias(_MONO),
        ),
        False,
    )


def _arrow_type(dt: DataType) -> pa.DataType:
    from pyspark.sql.pandas.types import to_arrow_type

    return to_arrow_type(dt, timezone="UTC")


def _spark_schema(schema: pa.Schema) -> StructType:
    from pyspark.sql.pandas.types import from_arrow_type
    from pyspark.sql.types import StructField, StructType

    return StructType([StructField(f.name, from_arrow_type(f.type), True) for f in schema])


@dataclass
class _Positions:
    """Where each split of each file starts, for generated record ids."""

    files: list[str]
    rows: int
    #: (file key, split start, stem, number of the split's first row minus its first id)
    bases: list[tuple[str, int, str, int]]
    #: Canonical column -> rows where the column map's alternatives disagreed.
    disagreements: dict[str, int] = field(default_factory=dict)
    #: File -> the column map layout it was read with (maps with layouts only).
    layouts: dict[str, str] = field(default_factory=dict)


def _positions(frame: DataFrame, from_files: bool) -> _Positions:
    from pyspark.sql import functions as F

    aggregates = [F.count(F.lit(1)).alias("n"), F.min(_MONO).alias("first")]
    if _DISAGREE in frame.columns:
        aggregates.append(F.collect_list(_DISAGREE).alias("notes"))
    if _LAYOUT in frame.columns:
        aggregates.append(F.first(_LAYOUT).alias("layout"))
    counts = frame.groupBy(_FILE, _BLOCK).agg(*aggregates).collect()
    layouts = {
        _local_path(row[_FILE].split(_SEP, 1)[1]): row["layout"] or "(base map)"
        for row in counts
        if row.asDict().get("layout") is not None
    }
    disagreements: dict[str, int] = {}
    for row in counts:
        for note in row.asDict().get("notes") or []:
            for column, count in json.loads(note).items():
                disagreements[column] = disagreements.get(column, 0) + int(count)
    by_file: dict[str, list[tuple[int, int, int]]] = {}
    for row in counts:
        by_file.setdefault(row[_FILE], []).append(
            (int(row[_BLOCK]), int(row["n"]), int(row["first"]))
        )
    names = _id_names(list(by_file)) if from_files else dict.fromkeys(by_file, "table0")
    bases = []
    for key, splits in by_file.items():
        start = 0
        for block, n, first in sorted(splits):
            bases.append((key, block, names[key], start - first))
            start += n
    files = (
        sorted(_local_path(k.split(_SEP, 1)[1]) for k in by_file) if from_files else ["<table 0>"]
    )
    return _Positions(
        files=files,
        rows=sum(int(r["n"]) for r in counts),
        bases=bases,
        disagreements=disagreements,
        layouts=dict(sorted(layouts.items())),
    )


def _with_record_ids(frame: DataFrame, where: _Positions) -> DataFrame:
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    schema = StructType(
        [
            StructField(_FILE, StringType()),
            StructField(_BLOCK, LongType()),
            StructField("_td_stem", StringType()),
            StructField("_td_base", LongType()),
        ]
    )
    spark = frame.sparkSession
    bases = spark.createDataFrame(where.bases, schema)
    joined = frame.join(F.broadcast(bases), on=[_FILE, _BLOCK], how="left")
    generated = F.concat(
        F.col("_td_stem"), F.lit(":"), (F.col(_MONO) + F.col("_td_base")).cast("string")
    )
    ids = F.coalesce(_given_ids(frame), generated)
    keep = [c for c in frame.columns if c in COLUMNS and c != "record_id"]
    return joined.select(*keep, ids.alias("record_id"))


def _given_ids(frame: DataFrame) -> Any:
    """The input's own record ids as text; a blank one is no id (as normalization has it)."""
    from pyspark.sql import functions as F

    if "record_id" not in frame.columns:
        return F.lit(None).cast("string")
    text = F.col("record_id").cast("string")
    return F.when(text.rlike(r"(?U)^\s*$"), F.lit(None)).otherwise(text)


def _duplicate_id_warning(frame: DataFrame) -> str | None:
    """The local scan's warning about repeated record ids, over the whole input (a
    bucket only sees its own rows)."""
    from pyspark.sql import functions as F

    if "record_id" not in frame.columns:
        return None
    ids = frame.select(_given_ids(frame).alias("id")).where(F.col("id").isNotNull())
    repeated = ids.groupBy("id").count().where(F.col("count") > 1)
    row = repeated.agg(
        F.count(F.lit(1)).alias("n"),
        F.max("count").alias("worst"),
        F.min_by("id", F.struct(-F.col("count"), F.col("id"))).alias("value"),
    ).first()
    if row is None or not row["n"]:
        return None
    return (
        f"record_id is not unique: {int(row['n'])} id(s) occur more than once "
        f"(e.g. {row['value']!r} x{int(row['worst'])}); evidence is matched by position, "
        "but these ids alone do not name one record"
    )


def _trimmed(column: str) -> Any:
    """The column as text without surrounding whitespace (Unicode-aware, like Arrow's)."""
    from pyspark.sql import functions as F

    return F.regexp_replace(F.col(column).cast("string"), _TRIM, "")


def _of_rule_kinds(rules: Sequence[Rule], columns: Sequence[str]) -> Any:
    """Rows that may pass one of ``rules``' record filters, judged only on the
    enumerated columns (record type, direction, status, MMS event), cleaned as
    normalization will clean them: a row failing this for every rule is none of theirs."""
    from pyspark.sql import functions as F

    from telediag.normalize import ENUMS

    any_rule = F.lit(False)
    for rule in rules:
        this = F.lit(True)
        for column, cond in rule.records.where.items():
            if column not in ENUMS or cond.is_null is not None or column not in columns:
                continue
            for values in ([cond.equals] if cond.equals is not None else [], cond.in_ or []):
                if values:
                    allowed = [str(v).strip().lower() for v in values]
                    hit = F.lower(_trimmed(column)).isin(allowed)
                    this = this & F.coalesce(hit, F.lit(False))
        any_rule = any_rule | this
    return any_rule


def _handset_rows(rows: DataFrame, rules: Sequence[Rule]) -> DataFrame:
    """Every row of the handsets the handset rules may follow: those with at least one
    record of a rule's kind. A handset rule measures a SIM's stint on the handset from
    all its records, not only those of its kind, so the handset's other rows come too;
    handsets with no record of the kind (most of them) are left out of the shuffle."""
    from pyspark.sql import functions as F

    key = "_td_handset"
    with_key = rows.filter(F.col("imei").isNotNull()).withColumn(key, _trimmed("imei"))
    followed = with_key.filter(_of_rule_kinds(rules, rows.columns)).select(key).distinct()
    # Broadcast the few followed handsets rather than shuffle every row with an IMEI for
    # the join (a month of a billion records has a few million such handsets).
    return with_key.join(F.broadcast(followed), on=key, how="left_semi").drop(key)


@dataclass
class SparkScanResult:
    """What a Spark scan found: Spark DataFrames, plus the summed input accounting."""

    findings: DataFrame
    evidence: DataFrame
    rejects: DataFrame
    report: InputReport
    errors: list[RuleError]
    rules: list[Rule]
    buckets: int
    #: Per pass ("subscriber", "handset"): buckets run and the seconds they took in all,
    #: engine time in the Python workers, for sizing a cluster.
    bucket_seconds: dict[str, tuple[int, float]] = field(default_factory=dict)
    _cached: DataFrame | None = field(default=None, repr=False)

    def to_local(self, *, with_lists: bool = True) -> ScanResult:
        """Findings and evidence collected to the driver, as a local scan returns them
        (same columns, types and order). ``with_lists=False`` leaves out the heavy
        ``record_ids`` and ``measures`` columns (empty) for a quick summary."""
        findings = self.findings
        if not with_lists:
            findings = findings.drop("record_ids", "measures")
        frame = _as_contract(findings.toArrow(), empty_findings())
        evidence = (
            _as_contract(self.evidence.toArrow(), empty_evidence())
            if with_lists
            else (empty_evidence())
        )
        frame, evidence = sort_findings(frame, evidence)
        return ScanResult(
            findings=frame,
            evidence=evidence,
            report=self.report,
            errors=self.errors,
            rules=self.rules,
        )

    def write(self, out: str, evidence: str | None = None, rejects: str | None = None) -> None:
        """Write the findings (and the evidence, and the rows set aside) with :func:`write`,
        each in the order a local scan gives it."""
        write(self.findings, out, ["msisdn", "first_seen", "rule_id", "finding_id"])
        if evidence:
            write(self.evidence, evidence, ["finding_id", "start_time", "record_id"])
        if rejects:
            write(self.rejects, rejects, ["record_id"])

    def rejects_table(self) -> pa.Table:
        """The set-aside rows, collected: reason, record id, then the input's columns."""
        return order_rejects(self.rejects.toArrow())

    def unpersist(self) -> None:
        """Free the cached bucket results."""
        if self._cached is not None:
            self._cached.unpersist()


def _as_contract(table: pa.Table, template: pd.DataFrame) -> pd.DataFrame:
    """A collected Arrow table as a frame with the template's columns and dtypes."""
    out = {}
    n = table.num_rows
    for name, dtype in template.dtypes.items():
        if name not in table.column_names:
            out[name] = pd.Series([None] * n, dtype=dtype if n == 0 else object)
            continue
        col = table[name]
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.timestamp("ms", tz="UTC"))
        if pa.types.is_list(col.type):
            out[name] = pd.Series(col.to_pylist(), dtype=object)
        elif pa.types.is_string(col.type):
            out[name] = col.to_pandas()
        else:
            out[name] = col.to_pandas().astype(dtype)
    return pd.DataFrame(out)


def default_buckets(spark: SparkSession, rows: int) -> int:
    """Enough buckets to keep each near :data:`ROWS_PER_BUCKET` rows, and at least one
    per core Spark has."""
    cores = max(1, int(spark.sparkContext.defaultParallelism))
    return max(cores, math.ceil(rows / ROWS_PER_BUCKET))


def scan(
    spark_df: DataFrame,
    rules: Sequence[Rule] | str | Path | None = None,
    tz: str | None = None,
    column_map: ColumnMap | str | Path | None = None,
    *,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    buckets: int | None = None,
) -> SparkScanResult:
    """Scan a Spark DataFrame of CDRs with the rule catalog, on the cluster.

    ``spark_df`` holds the contract's columns (or an operator's, with ``column_map``).
    The findings, evidence and rejects come back as Spark DataFrames with the same
    rows a local scan gives; ``report`` sums the input accounting of every bucket. The
    bucket results are cached (``unpersist()`` frees them). ``buckets`` defaults to
    :func:`default_buckets`.
    """
    from pyspark.sql import functions as F

    chosen = _resolve_rules(rules, select, ignore)
    settings = ScanSettings(tz=tz or "UTC")
    from telediag.normalize import _zone

    _zone(settings.tz)  # an unknown zone is a one-line error here, not in every bucket
    cmap = load_column_map(column_map) if isinstance(column_map, (str, Path)) else column_map
    if cmap is not None:
        settings = ScanSettings(tz=settings.tz, time_formats=cmap.time_formats())
    spark = spark_df.sparkSession
    _use_this_interpreter(spark)

    frame, from_files = _ensure_position(spark_df)
    position = [_FILE, _BLOCK, _MONO]
    layouts = cmap is not None and bool(cmap.layouts)
    if layouts and _LAYOUT not in frame.columns:
        raise SparkError(
            "a column map with layouts chooses each file's layout by its header: read the "
            "input with telediag.spark.read(spark, paths, column_map=...)"
        )
    hidden = [*position, _LAYOUT] if layouts else position
    source_cols = [c for c in frame.columns if c not in (*position, _LAYOUT)]
    wanted = _wanted_source_columns(source_cols, set(CONTRACT_COLUMNS), cmap) or source_cols
    frame = frame.select(*wanted, *hidden)
    if cmap is not None:
        arrow_source = pa.schema(
            [pa.field(f.name, _arrow_type(f.dataType)) for f in frame.schema.fields]
        )
        pieces = []
        # Each layout maps the rows of its files (a filter on a constant of each input,
        # which Spark resolves per input without reading the others' rows twice).
        for name in ["", *(layout.name for layout in cmap.layouts)] if layouts else [None]:
            part_map = cmap.with_layout(name or None) if layouts else cmap
            rows_of = frame.filter(F.col(_LAYOUT).eqNullSafe(name or "")) if layouts else frame
            target = mapped_schema(part_map, arrow_source, [*hidden, _DISAGREE])
            pieces.append(
                rows_of.mapInArrow(
                    map_function(part_map, target, settings.tz), _spark_schema(target)
                )
            )
        frame = pieces[0]
        for piece in pieces[1:]:
            frame = frame.unionByName(piece, allowMissingColumns=True)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InputError(f"input: missing required column {missing[0]!r}")
    notes = [c for c in (_DISAGREE, _LAYOUT) if c in frame.columns]
    where = _positions(frame.select(*position, *notes), from_files)
    rows = _with_record_ids(frame, where)

    n_buckets = buckets if buckets is not None else default_buckets(spark, where.rows)
    if n_buckets < 1:
        raise ValueError("buckets must be at least 1")
    by_subscriber = [r for r in chosen if not r.cross_subscriber]
    by_handset = [r for r in chosen if r.cross_subscriber]

    def cut(frame: DataFrame, which: int, column: str) -> DataFrame:
        bucket = F.pmod(F.xxhash64(_trimmed(column)), F.lit(n_buckets))
        return frame.select("*", F.lit(which).alias(_PASS), bucket.cast("long").alias(_BUCKET))

    both = cut(rows, 0, "msisdn")
    if by_handset and "imei" in rows.columns:
        both = both.unionByName(cut(_handset_rows(rows, by_handset), 1, "imei"))

    # Rows set aside are text, as in every other mode (see Normalized.rejects).
    reject_fields = [(f.name, pa.string()) for f in rows.schema.fields]
    schema = union_schema(reject_fields)
    fn = bucket_function(by_subscriber, by_handset, settings, schema)
    out = both.groupBy(_PASS, _BUCKET).applyInArrow(fn, _spark_schema(schema)).cache()

    meta = out.filter(F.col("_kind").isin("report", "error")).select(
        "_kind", "rule_id", *(c for c in schema.names if c.startswith((_RP, _ER)))
    )
    files = where.files
    if from_files:  # files without a row were read too (Spark lists them, no data read)
        files = sorted({*files, *(_local_path(u) for u in spark_df.inputFiles())})
    report, errors, costs = _summarize(meta.toArrow(), files)
    warning = _duplicate_id_warning(frame)
    report.warnings = [warning] if warning else []
    report.disagreements = dict(sorted(where.disagreements.items()))
    report.layouts = where.layouts
    failed = [e.rule_id for e in errors]

    def kind(name: str) -> DataFrame:
        picked = out.filter(F.col("_kind") == name)
        return picked.filter(~F.col("rule_id").isin(failed)) if failed else picked

    findings = kind("finding").select(*FINDING_COLUMNS)
    evidence = kind("evidence").select(
        "finding_id", *(F.col(_EV + c).alias(c) for c in EVIDENCE_COLUMNS[1:])
    )
    # Columns in the order every mode gives (reason, record id, the contract's order).
    given = [c[len(_RJ) :] for c in schema.names if c.startswith(_RJ)]
    shown = order_rejects(pa.table({c: pa.array([], pa.string()) for c in given})).column_names
    rejects = out.filter(F.col("_kind") == "reject").select(
        *(F.col(_RJ + c).alias(c) for c in shown)
    )
    return SparkScanResult(
        findings=findings,
        evidence=evidence,
        rejects=rejects,
        report=report,
        errors=errors,
        rules=chosen,
        buckets=n_buckets,
        bucket_seconds=costs,
        _cached=out,
    )


def _summarize(
    meta: pa.Table, files: list[str]
) -> tuple[InputReport, list[RuleError], dict[str, tuple[int, float]]]:
    """Input counts summed over buckets, each failed rule's first error, and per pass
    the number of buckets and the seconds they took together."""
    rows = meta.to_pylist()
    totals: dict[str, int] = {}
    for r in rows:
        if r["_kind"] == "report":
            totals[r[_RP + "item"]] = totals.get(r[_RP + "item"], 0) + int(r[_RP + "count"])
    rank = {reason: i for i, reason in enumerate(REASONS)}
    aside = {k.split(":", 1)[1]: v for k, v in totals.items() if k.startswith("set_aside:") and v}
    ordered = dict(sorted(aside.items(), key=lambda kv: rank.get(kv[0], len(rank))))
    costs: dict[str, tuple[int, float]] = {}
    for r in rows:
        item = r[_RP + "item"] if r["_kind"] == "report" else None
        if item and item.startswith("bucket_ms:"):
            n, total = costs.get(item[10:], (0, 0.0))
            costs[item[10:]] = (n + 1, total + int(r[_RP + "count"]) / 1000)
    report = InputReport(
        files=files,
        rows_read=totals.get("rows_read", 0),
        rows_used=totals.get("rows_used", 0),
        set_aside=ordered,
    )
    first: dict[str, dict[str, Any]] = {}
    for r in sorted(
        (r for r in rows if r["_kind"] == "error"), key=lambda r: (r["rule_id"], r[_ER + "bucket"])
    ):
        first.setdefault(r["rule_id"], r)
    errors = [
        RuleError(rule_id=k, message=v[_ER + "message"] or "", detail=v[_ER + "detail"] or "")
        for k, v in sorted(first.items())
    ]
    return report, errors, costs


# ---------------------------------------------------------------------------------------
# Writing, and the command line.

_ISO = "yyyy-MM-dd'T'HH:mm:ss.SSSxxx"


def write(frame: DataFrame, path: str, order: Sequence[str]) -> None:
    """Write a result DataFrame as Spark does: ``path`` becomes a directory of part
    files (Parquet, CSV with a header, or JSON lines, by its ending), rows in ``order``
    across the parts. List columns are JSON arrays in CSV; times are ISO 8601."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType

    from telediag.output import output_format

    fmt = output_format(path)
    ordered = frame.orderBy(*order)
    if fmt == ".parquet":
        ordered.sparkSession.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        ordered.write.mode("overwrite").parquet(path)
        return
    if fmt == ".csv":
        flat = ordered.select(
            *(
                F.to_json(F.col(f.name)).alias(f.name)
                if isinstance(f.dataType, ArrayType)
                else F.col(f.name)
                for f in ordered.schema.fields
            )
        )
        # As the local writer: a quote inside a value is doubled (RFC 4180; Spark's default
        # backslash splits rows wrongly in standard CSV readers), and values keep their
        # spaces (Spark trims them by default, and a set-aside row is kept as written).
        flat.write.mode("overwrite").options(
            header=True,
            timestampFormat=_ISO,
            quote='"',
            escape='"',
            ignoreLeadingWhiteSpace=False,
            ignoreTrailingWhiteSpace=False,
        ).csv(path)
        return
    # Every key on every line, null or not, as the local writer (Spark drops null fields).
    ordered.write.mode("overwrite").options(timestampFormat=_ISO, ignoreNullFields=False).json(path)


def scan_command(
    inputs: Sequence[str],
    out: str,
    *,
    master: str | None = None,
    rules: str | None = None,
    tz: str | None = None,
    column_map: str | None = None,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    evidence: str | None = None,
    rejects: str | None = None,
    buckets: int | None = None,
) -> SparkScanResult:
    """``telediag scan --engine spark``: read, scan and write through Spark."""
    from telediag.output import output_format

    _require_pyspark()
    for path in (out, evidence, rejects):
        if path:
            output_format(path)
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    spark = session(master)
    cmap = load_column_map(column_map) if column_map else None
    try:
        frame = read(spark, list(inputs), cmap)
        result = scan(
            frame,
            rules=rules,
            tz=tz,
            column_map=cmap,
            select=select,
            ignore=ignore,
            buckets=buckets,
        )
        result.write(out, evidence=evidence, rejects=rejects)
    except (PySparkException, Py4JJavaError) as exc:  # a Spark job failed: one line
        message = java_message(exc)
        if "CSV header does not conform" in message:
            message += (
                " (CSV files of one input have different headers: give each layout's "
                "files as an input of their own)"
            )
        raise SparkError(f"the Spark job failed: {message}") from None
    return result
