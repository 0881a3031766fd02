"""Reading one CSV file in the dialect a column map declares, as text columns.

Every column is read as text: leading zeros and ``+`` in numbers survive, and a single
bad value is set aside by normalization instead of failing its column. The header is
read here (not by the CSV parser) so that names are trimmed, duplicated names are
caught, and bytes that are not in the declared encoding end in one line naming the
line, the column and the bytes.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from telediag.errors import InputError

#: Endings read as compressed CSV (the compression is told by the ending).
COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}
CSV_ENDINGS = (".csv", ".txt", ".tsv", ".dat")


class CsvDialect(BaseModel):
    """How a CSV export is written (the ``csv:`` block of a column map)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: One character between fields, e.g. ``";"``, ``"|"`` or ``"\\t"``.
    delimiter: str = ","
    #: Whether the first line (after ``skip_rows``) names the columns.
    header: bool = True
    #: Column names by position, for a file without a header.
    names: list[str] = Field(default_factory=list)
    #: The quote character; null for none.
    quote: str | None = '"'
    #: Cell texts that mean "no value" (default: empty, NULL, NA, N/A, nan and the like).
    null_values: list[str] | None = None
    #: Lines before the header (or the first record): banners, file headers.
    skip_rows: int = Field(default=0, ge=0)
    #: Lines at the end that are not records: trailers with counts or checksums.
    skip_footer: int = Field(default=0, ge=0)
    #: The text encoding, e.g. utf-8, gbk, gb18030, latin-1.
    encoding: str = "utf-8"

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, v: str) -> str:
        if len(v) != 1 or v in "\r\n":
            raise ValueError(f"the delimiter is one character other than a newline, not {v!r}")
        return v

    @field_validator("quote")
    @classmethod
    def _one_quote(cls, v: str | None) -> str | None:
        if v is not None and (len(v) != 1 or v in "\r\n"):
            raise ValueError(f"the quote is one character (or null), not {v!r}")
        return v

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"unknown encoding {v!r}") from None
        return v

    @model_validator(mode="after")
    def _names_need_no_header(self) -> CsvDialect:
        if not self.header and not self.names:
            raise ValueError("a file without a header needs 'names' (the columns by position)")
        if self.header and self.names:
            raise ValueError("'names' is for files without a header (set header: false)")
        duplicated = [n for n, c in Counter(self.names).items() if c > 1]
        if duplicated:
            raise ValueError(f"names: {duplicated[0]!r} is given twice")
        return self

    @property
    def is_utf8(self) -> bool:
        return codecs.lookup(self.encoding).name == "utf-8"


DEFAULT_DIALECT = CsvDialect()
#: A ``.tsv`` file's dialect when no map declares one: tabs between fields.
TSV_DIALECT = CsvDialect(delimiter="\t")


def dialect_of(path: Path | str, declared: CsvDialect | None) -> CsvDialect:
    """The dialect a file is read in: the map's, else the one its ending says (``.tsv``,
    compressed or not: tabs; anything else: commas)."""
    if declared is not None:
        return declared
    name = Path(str(path)).name.lower()
    for ending in COMPRESSED:
        name = name.removesuffix(ending)
    return TSV_DIALECT if name.endswith(".tsv") else DEFAULT_DIALECT


def is_csv(path: Path) -> bool:
    """Whether a file is read as CSV (by its ending, compressed or not)."""
    name = path.name.lower()
    for ending in COMPRESSED:
        if name.endswith(ending):
            name = name[: -len(ending)]
    return name.endswith(CSV_ENDINGS)


def _open(path: Path) -> pa.NativeFile:
    compression = next((c for e, c in COMPRESSED.items() if path.name.lower().endswith(e)), None)
    return pa.input_stream(str(path), compression=compression)


def first_lines(path: Path, count: int) -> list[bytes]:
    """The first ``count`` lines of the (decompressed) file, as bytes."""
    lines: list[bytes] = []
    buffered = b""
    with _open(path) as stream:
        while len(lines) < count:
            chunk = stream.read(1 << 16)
            if not chunk:
                if buffered:
                    lines.append(buffered)
                break
            buffered += chunk
            *complete, buffered = buffered.split(b"\n")
            lines.extend(complete)
    return lines[:count]


def header_names(path: Path, dialect: CsvDialect = DEFAULT_DIALECT) -> list[str]:
    """The column names of a CSV file, trimmed (duplicates are kept, for the caller)."""
    if not dialect.header:
        return list(dialect.names)
    try:
        lines = first_lines(path, dialect.skip_rows + 1)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: cannot read CSV: {_one_line(exc)}") from None
    if len(lines) <= dialect.skip_rows:
        raise InputError(f"{path}: cannot read CSV: no header line")
    raw = lines[dialect.skip_rows].rstrip(b"\r")
    if raw.startswith(codecs.BOM_UTF8) and dialect.is_utf8:
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        text = raw.decode(dialect.encoding)
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 4]
        raise InputError(
            f"{path}: line {dialect.skip_rows + 1} (the header): not {dialect.encoding} "
            f"text ({bad!r}); declare the encoding in the column map's csv block"
        ) from None
    reader = csv.reader(
        [text],
        delimiter=dialect.delimiter,
        quotechar=dialect.quote or '"',
        quoting=csv.QUOTE_MINIMAL if dialect.quote else csv.QUOTE_NONE,
    )
    try:
        fields = next(reader, [])
    except csv.Error as exc:
        raise InputError(f"{path}: cannot read the CSV header: {exc}") from None
    names = [f.strip() for f in fields]
    if not any(names):
        raise InputError(f"{path}: the CSV header names no columns")
    return names


def _unique_names(path: Path, names: Sequence[str], used: set[str]) -> list[str]:
    """Names for the parser: a duplicated name nothing reads gets a suffix; one that is
    read is an error (which of the two was meant cannot be told)."""
    counts = Counter(names)
    out: list[str] = []
    seen: Counter[str] = Counter()
    for n in names:
        if counts[n] > 1:
            if n in used:
                raise InputError(f"{path}: column {n!r} appears {counts[n]} times in the header")
            seen[n] += 1
            out.append(f"{n}.{seen[n]}" if n else f"column.{len(out) + 1}")
        else:
            out.append(n)
    return out


@dataclass
class _Plan:
    """How pyarrow reads one CSV file by its dialect (shared by whole and batch reads)."""

    path: Path
    dialect: CsvDialect
    unique: list[str]
    read_options: pacsv.ReadOptions
    parse_options: pacsv.ParseOptions
    convert: dict[str, object]

    def convert_options(self) -> pacsv.ConvertOptions:
        return pacsv.ConvertOptions(
            column_types={n: pa.string() for n in self.unique}, **self.convert
        )

    def source(self, stream: bool) -> str | pa.NativeFile | io.BytesIO:
        """What pyarrow reads: the path, its decompressed stream, or the bytes before
        the trailer lines (of an uncompressed file, mapped rather than read when
        ``stream``)."""
        path, footer = self.path, self.dialect.skip_footer
        compressed = any(path.name.lower().endswith(e) for e in COMPRESSED)
        if footer and stream and not compressed:
            return _mapped_without_footer(path, footer)
        if footer:
            return _without_footer(path, footer)
        if compressed:
            return _open(path)
        return str(path)

    def fail(self, exc: BaseException) -> InputError:
        """The one-line error for a failed read (naming a cell that is not text)."""
        if isinstance(exc, UnicodeDecodeError) or "UTF8" in str(exc) or "utf8" in str(exc):
            _raise_encoding_error(
                self.path,
                self.dialect,
                self.read_options,
                self.parse_options,
                self.convert,
                self.unique,
            )
        return InputError(f"{self.path}: cannot read CSV: {_one_line(exc)}")


def _plan(
    path: Path,
    dialect: CsvDialect | None,
    choose: Callable[[list[str]], list[str] | None],
    block_size: int | None = None,
) -> _Plan:
    dialect = dialect_of(path, dialect)
    names = header_names(path, dialect)
    chosen = choose(names)
    include = list(dict.fromkeys(chosen)) if chosen is not None else None
    unique = _unique_names(path, names, set(include) if include is not None else set(names))
    if include is not None:
        include = [n for n in include if n in unique]
    skip = dialect.skip_rows + (1 if dialect.header else 0)
    read_options = pacsv.ReadOptions(
        column_names=unique,
        skip_rows=skip,
        encoding="utf8" if dialect.is_utf8 else dialect.encoding,
        **({"block_size": block_size} if block_size else {}),
    )
    parse_options = pacsv.ParseOptions(
        delimiter=dialect.delimiter,
        quote_char=dialect.quote if dialect.quote is not None else False,
    )
    convert: dict[str, object] = {
        "include_columns": include,
        "strings_can_be_null": True,
        "quoted_strings_can_be_null": False,
    }
    if dialect.null_values is not None:
        convert["null_values"] = list(dialect.null_values)
    return _Plan(path, dialect, unique, read_options, parse_options, convert)


def read_csv(
    path: Path,
    dialect: CsvDialect | None,
    choose: Callable[[list[str]], list[str] | None],
) -> pa.Table:
    """Read a CSV file as text columns.

    ``choose`` gets the (trimmed) header names and returns those to read (None: all).
    """
    plan = _plan(path, dialect, choose)
    try:
        return pacsv.read_csv(
            plan.source(stream=False),
            read_options=plan.read_options,
            parse_options=plan.parse_options,
            convert_options=plan.convert_options(),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise plan.fail(exc) from None
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: cannot read CSV: {_one_line(exc)}") from None


def iter_csv(
    path: Path,
    dialect: CsvDialect | None,
    choose: Callable[[list[str]], list[str] | None],
    block_size: int = 1 << 24,
) -> Iterator[pa.Table]:
    """The same text columns as :func:`read_csv`, a block at a time (first an empty
    table with the columns), so a file larger than memory streams through."""
    plan = _plan(path, dialect, choose, block_size)
    try:
        reader = pacsv.open_csv(
            plan.source(stream=True),
            read_options=plan.read_options,
            parse_options=plan.parse_options,
            convert_options=plan.convert_options(),
        )
        yield reader.schema.empty_table()
        for batch in reader:
            yield pa.Table.from_batches([batch])
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise plan.fail(exc) from None
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: cannot read CSV: {_one_line(exc)}") from None


def _mapped_without_footer(path: Path, lines: int) -> pa.BufferReader:
    """An uncompressed file up to its last ``lines`` lines, memory-mapped (only the tail
    is read to find where the trailer starts)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            f.seek(max(0, size - 65536))
            tail = f.read()
        mapped = pa.memory_map(str(path))
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: cannot read CSV: {_one_line(exc)}") from None
    start = size - len(tail)
    end = len(tail.rstrip(b"\r\n"))
    for _ in range(lines):
        end = tail.rfind(b"\n", 0, end)
        if end < 0:  # a trailer longer than the tail read: read it all
            data = _without_footer(path, lines).getvalue()
            return pa.BufferReader(pa.py_buffer(data))
    return pa.BufferReader(mapped.read_at(start + end + 1, 0))


def _without_footer(path: Path, lines: int) -> io.BytesIO:
    """The file's bytes (decompressed) without its last ``lines`` lines."""
    try:
        with _open(path) as stream:
            data = stream.read()
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: cannot read CSV: {_one_line(exc)}") from None
    end = len(data.rstrip(b"\r\n"))
    for _ in range(lines):
        end = data.rfind(b"\n", 0, end)
        if end < 0:
            end = 0
            break
    return io.BytesIO(data[: end + 1] if end else b"")


def _raise_encoding_error(
    path: Path,
    dialect: CsvDialect,
    read_options: pacsv.ReadOptions,
    parse_options: pacsv.ParseOptions,
    convert: dict[str, object],
    names: list[str],
) -> None:
    """Find the first cell that is not valid text and name it (only on the error path)."""
    try:
        table = pacsv.read_csv(
            str(path) if not dialect.skip_footer else _without_footer(path, dialect.skip_footer),
            read_options=pacsv.ReadOptions(
                column_names=read_options.column_names, skip_rows=read_options.skip_rows
            ),
            parse_options=parse_options,
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.binary() for n in names}, **convert
            ),
        )
    except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not {dialect.encoding} text: {_one_line(exc)}") from None
    encoding = "utf-8" if dialect.is_utf8 else dialect.encoding
    for name in table.column_names:
        column = table[name].combine_chunks()
        if dialect.is_utf8:
            try:
                column.cast(pa.string())  # Arrow checks UTF-8 itself, fast
                continue
            except pa.ArrowInvalid:
                pass
        for value in pc.unique(column).to_pylist():
            if value is None:
                continue
            try:
                value.decode(encoding)
            except UnicodeDecodeError:
                row = pc.index(column, pa.scalar(value, pa.binary())).as_py()
                line = row + read_options.skip_rows + 1
                hint = (
                    "declare the encoding in the column map's csv block"
                    if dialect.is_utf8
                    else "check the csv block's encoding"
                )
                raise InputError(
                    f"{path}: line {line}, column {name!r}: not {_label(encoding)} text "
                    f"({value[:12]!r}); {hint}"
                ) from None
    raise InputError(f"{path}: not {_label(encoding)} text")


def _label(encoding: str) -> str:
    return "UTF-8" if codecs.lookup(encoding).name == "utf-8" else encoding


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."
