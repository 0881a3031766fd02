"""Step 2: make the canonical table of the contract and set aside rows that break it.

Every contract column comes out with its contract type (absent optional columns as
all-null); text may come as a dictionary of that type (the subscriber and the labels
always, other text when the input had it so), whose values are distinct and never null.
Views and files decode it (:func:`telediag.chunks.plain_table`). No row is dropped here:
a row that breaks the contract is marked invalid with one reason (the first it breaks,
in the order of :data:`REASONS`), counted, and left out of the sort, so the scan never
sees it but the caller can still write it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from telediag.chunks import encode, narrow, text_bytes
from telediag.colmap import DURATION_NOTES
from telediag.devices import plausible_imei
from telediag.errors import InputError
from telediag.read import RawInput
from telediag.schema import (
    COLUMNS,
    DIRECTIONS,
    IDENTIFIERS,
    MMS_EVENTS,
    NON_NEGATIVE,
    NUMERIC_COLUMNS,
    RECORD_TYPES,
    STATUSES,
    VALUE_RANGES,
)
from telediag.strhash import repeated_values
from telediag.timeparse import AMBIGUOUS, NONEXISTENT, parse_timestamps

#: Enumerated columns: values are matched after trimming and lower-casing.
ENUMS: dict[str, tuple[str, ...]] = {
    "record_type": RECORD_TYPES,
    "direction": DIRECTIONS,
    "status": STATUSES,
    "mms_event": MMS_EVENTS,
}

#: Reasons a row is set aside, in the order they are checked (code = position + 1).
REASONS: tuple[str, ...] = (
    "missing msisdn",
    "missing record_type",
    "unknown record_type",
    "missing direction",
    "unknown direction",
    "missing start_time",
    "unparseable start_time",
    "nonexistent local start_time",
    "ambiguous local start_time",
    "nonexistent local duration_s",
    "ambiguous local duration_s",
    *(f"negative {c}" for c in NON_NEGATIVE),
    *(f"unparseable {c}" for c in NUMERIC_COLUMNS),
    *(f"non-integral {c}" for c in NUMERIC_COLUMNS if pa.types.is_integer(COLUMNS[c])),
    *(f"out-of-range {c}" for c in NUMERIC_COLUMNS),
    "unknown status",
    "unknown mms_event",
    # Added after the others, so that earlier reasons keep their codes.
    *(f"non-integral {c}" for c in IDENTIFIERS),
)
_CODE = {r: i + 1 for i, r in enumerate(REASONS)}


@dataclass
class InputReport:
    """What happened to the input rows: read, used, and set aside by reason."""

    files: list[str]
    rows_read: int
    rows_used: int
    set_aside: dict[str, int] = field(default_factory=dict)
    #: Input name -> column map layout used (maps with layouts only).
    layouts: dict[str, str] = field(default_factory=dict)
    #: Canonical column -> rows where the column map's alternatives disagreed (the
    #: first alternative was used; the rows are not set aside).
    disagreements: dict[str, int] = field(default_factory=dict)
    #: Things about the input that do not set rows aside but deserve a look, one line each.
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_set_aside(self) -> int:
        """Total rows set aside for any reason."""
        return sum(self.set_aside.values())

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {
            "files": self.files,
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_set_aside": self.rows_set_aside,
            "set_aside": dict(self.set_aside),
            "layouts": dict(self.layouts),
            "disagreements": dict(self.disagreements),
            "warnings": list(self.warnings),
        }


@dataclass
class Normalized:
    """The canonical table (all rows, in read order) and which rows may be used."""

    #: The input's bookkeeping (files, generated ids, columns as read). Its table holds
    #: only the rows set aside, in read order: the others live on in ``table``, and the
    #: month as read need not stay in memory beside it.
    raw: RawInput
    table: pa.Table
    valid: np.ndarray
    reason: np.ndarray
    report: InputReport
    #: Dictionary-encoded forms of columns already encoded while normalizing.
    encoded: dict[str, pa.DictionaryArray] = field(default_factory=dict)

    def rejects(self) -> pa.Table:
        """The set-aside rows as they were read, with a ``reason`` column first.

        Every value is text (null stays null): rows from inputs that disagree on a
        column's type (a Parquet month and a CSV day) stack into one table, and the table
        is the same whether the input was scanned whole, in buckets or from a store."""
        rows = np.flatnonzero(self.reason)
        reasons = pa.array(np.array(("",) + REASONS, dtype=object)[self.reason[rows]], pa.string())
        taken = self.raw.table
        if taken.num_rows != len(rows):  # a raw input kept whole
            taken = taken.take(pa.array(rows))
        taken = pa.table({c: as_text(taken[c]) for c in taken.column_names})
        if "record_id" in taken.column_names:
            ids = pc.coalesce(explicit_ids(taken["record_id"]), self.raw.generated_ids(rows))
            taken = taken.drop_columns(["record_id"])
        else:
            ids = self.raw.generated_ids(rows)
        taken = taken.add_column(0, "record_id", ids)
        return taken.add_column(0, "reason", reasons)


def with_columns(rejects: pa.Table, names: Sequence[str]) -> pa.Table:
    """The rejects with every one of ``names`` the input had, as text columns of nulls
    where none of their rows had it (a file of the input with no row, or buckets whose
    rejected rows all came from files without it)."""
    missing = [c for c in dict.fromkeys(names) if c not in rejects.column_names]
    for name in missing:
        rejects = rejects.append_column(name, pa.nulls(rejects.num_rows, pa.string()))
    return rejects


def order_rejects(rejects: pa.Table) -> pa.Table:
    """Rows set aside in the one order every mode gives: by record id, then by the
    row's values (the reason first), so rows that repeat a record id come out alike
    however the input was split."""
    first = list(dict.fromkeys(["reason", "record_id", *COLUMNS]))
    names = [c for c in first if c in rejects.column_names]
    names += [c for c in rejects.column_names if c not in names]
    rejects = rejects.select(names)  # the columns in the contract's order, too
    if rejects.num_rows == 0:
        return rejects.combine_chunks()
    by = ["record_id", *(c for c in names if c != "record_id")]
    keys = [(c, "ascending", "at_end") for c in by if c in names]
    order = pc.sort_indices(rejects, sort_keys=keys)
    return rejects.take(order).combine_chunks()


def as_text(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    """A raw column as read, as text (dictionaries by their values; a type Arrow cannot
    write as text, such as a list, by its Python form)."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if arr.type == pa.string():
        return arr
    try:
        return arr.cast(pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        values = [None if v is None else str(v) for v in arr.to_pylist()]
        return pa.chunked_array([pa.array(values, pa.string())])


#: Mean rows per chunk below which a column is combined into one chunk. Measured on a
#: bucket of 1.9M rows (one thread, the whole catalog): in chunks of 1k or 3k rows it
#: scanned in 1.71 s and 1.29 s as they were and in 1.37 s and 1.16 s combined; in
#: chunks of 10k rows, 1.05 s as they were and 1.13-1.25 s combined (in one chunk: 0.94 s).
SMALL_CHUNK_ROWS = 1 << 13


def _one_chunk(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column of many tiny chunks (a bucket gathered from many small batches) as one
    chunk, so that the rules' takes do not walk thousands of chunks. Columns of larger
    chunks (Parquet row groups, a bucket's pieces of each input batch) are left alone:
    their chunked takes cost less than the copy, which means faulting in fresh memory
    (4 s for a 10M-row month on the benchmark machine)."""
    if arr.num_chunks <= 1 or len(arr) >= arr.num_chunks * SMALL_CHUNK_ROWS:
        return arr
    return pa.chunked_array([arr.combine_chunks()], arr.type)


def _zone(tz: str | None) -> str:
    name = tz or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"unknown time zone {name!r}") from None
    return name


def _mark(reason: np.ndarray, bad: np.ndarray | pa.Array | pa.ChunkedArray, why: str) -> None:
    """Give ``why`` to rows that are bad and have no reason yet (most checks find no bad
    row at all: one reduction says so, and no row mask is built)."""
    if not isinstance(bad, np.ndarray):
        if not pc.any(bad).as_py():
            return
        bad = pc.fill_null(bad, False).to_numpy(zero_copy_only=False)
    elif not bad.any():
        return
    reason[(reason == 0) & bad] = _CODE[why]


def _nulls_like(arr: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(arr.is_null().to_numpy(zero_copy_only=False))


def _parse_numeric(
    name: str, arr: pa.ChunkedArray, target: pa.DataType, reason: np.ndarray
) -> pa.ChunkedArray:
    """A numeric column in its contract type, every value checked, nothing cast silently.

    Text is parsed (what does not parse is set aside as "unparseable"). NaN reads as
    not given (null), as pandas writes a missing number. A value that does not fit the
    column (infinite, beyond the integer type, outside :data:`VALUE_RANGES`) is set
    aside as "out-of-range", a fraction in an integer column as "non-integral".
    """
    if pa.types.is_null(arr.type):
        return pa.chunked_array([pa.nulls(len(arr), target)])
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        try:  # the common case: every value is a plain number of the right type
            arr = pc.cast(arr, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            arr = _parse_text_numbers(name, arr, reason)
    elif not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        try:  # decimals, booleans: as floats, then checked like any float
            arr = pc.cast(arr, pa.float64(), safe=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            arr = _parse_text_numbers(name, arr.cast(pa.string()), reason)
    bad = np.zeros(len(arr), dtype=bool)

    def flag(cond: pa.Array | pa.ChunkedArray, why: str) -> None:
        # Most columns have no bad value: one reduction decides, no row mask is built.
        if pc.any(cond).as_py():
            rows = _as_mask(cond) & ~bad
            _mark(reason, rows, why)
            bad[rows] = True

    if pa.types.is_floating(arr.type):
        nan = pc.is_nan(arr)
        if pc.any(nan).as_py():
            arr = pc.if_else(nan, pa.scalar(None, arr.type), arr)
        too_big = pc.is_inf(arr)
        if pa.types.is_integer(target):
            info = np.iinfo(target.to_pandas_dtype())
            # The float nearest below 2**63 (or 2**31) is exact; compare as floats.
            too_big = pc.or_(
                too_big,
                pc.or_(pc.less(arr, float(info.min)), pc.greater_equal(arr, -float(info.min))),
            )
            flag(
                pc.and_(pc.invert(too_big), pc.not_equal(pc.floor(arr), arr)),
                f"non-integral {name}",
            )
        flag(too_big, f"out-of-range {name}")
    elif pa.types.is_integer(target) and arr.type != target:
        info = np.iinfo(target.to_pandas_dtype())
        if _outside(arr, info.min, info.max):
            if arr.type == pa.uint64():  # never below the minimum; compare unsigned
                outside = pc.greater(arr, pa.scalar(info.max, pa.uint64()))
            else:
                wide = pc.cast(arr, pa.int64())
                outside = pc.or_(pc.less(wide, info.min), pc.greater(wide, info.max))
            flag(outside, f"out-of-range {name}")
    if name in VALUE_RANGES:
        lo, hi = VALUE_RANGES[name]
        if _outside(arr, lo, hi):
            flag(pc.or_(pc.less(arr, lo), pc.greater(arr, hi)), f"out-of-range {name}")
    if bad.any():
        arr = pc.if_else(pa.array(~bad), arr, pa.scalar(None, arr.type))
    # Every value left fits the target exactly.
    out = pc.cast(arr, target, safe=False)
    return out if isinstance(out, pa.ChunkedArray) else pa.chunked_array([out])


def _outside(arr: pa.Array | pa.ChunkedArray, lo: int, hi: int) -> bool:
    """Is any non-null value below ``lo`` or above ``hi``? (One pass, no row mask.)"""
    mm = pc.min_max(arr)
    low, high = mm["min"].as_py(), mm["max"].as_py()
    return low is not None and high is not None and (low < lo or high > hi)


def _as_mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def _parse_text_numbers(name: str, arr: pa.ChunkedArray, reason: np.ndarray) -> pa.Array:
    """Parse text row by row (vectorized in pandas) to float64; what does not parse is
    set aside as "unparseable" and left null."""
    values = pd.to_numeric(
        pd.Series(arr.to_pandas(), dtype="object").astype("string").str.strip(),
        errors="coerce",
    )
    parsed = pa.array(values.to_numpy(dtype="float64", na_value=np.nan), from_pandas=True)
    # A blank (empty or only whitespace) is no value, as in every string column.
    was_value = ~_nulls_like(_blank_to_null(arr))
    if name == "duration_s":  # from a start and an end the zone's clock skips or repeats
        for code, note in DURATION_NOTES.items():
            why = "nonexistent" if code == NONEXISTENT else "ambiguous"
            _mark(reason, pc.ends_with(arr, note), f"{why} local duration_s")
    _mark(reason, was_value & _nulls_like(parsed), f"unparseable {name}")
    return parsed


def _parse_time(
    arr: pa.ChunkedArray, zone: str, formats: tuple[str, ...] | None, reason: np.ndarray
) -> pa.ChunkedArray:
    """start_time as UTC instants by the one time rule of :mod:`telediag.timeparse`."""
    try:
        parsed = parse_timestamps(arr, zone, formats)
    except TypeError as exc:
        raise InputError(f"column 'start_time': {exc}") from None
    why = parsed.why
    _mark(reason, why == NONEXISTENT, "nonexistent local start_time")
    _mark(reason, why == AMBIGUOUS, "ambiguous local start_time")
    _mark(reason, ~_nulls_like(arr) & _nulls_like(parsed.times), "unparseable start_time")
    return pa.chunked_array([parsed.times])


#: An identifier as a float writes a number with a fraction (13800000001.5 is
#: ``1.38000000015e+10`` from Arrow, ``13800000001.5`` from ``str``) or one too large to
#: be exact (``1e+17``): no subscriber, handset or peer has such a number. Only these
#: shapes (no '+', no leading zero, a lower-case exponent with its sign) count, so that a
#: text export's separators (``+86.138...``, ``0044.7700...``) are kept as written.
#: Values are matched trimmed, as identifiers are read (:func:`_fractions`).
_FRACTION = r"^-?((0|[1-9][0-9]*)\.[0-9]*[1-9][0-9]*|[1-9](\.[0-9]+)?e[+-][0-9]+)$"


def _blank_to_null(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    """Empty and whitespace-only strings as null: a blank is no value."""
    if arr.null_count == len(arr):
        return arr
    empty = pc.equal(arr, "")  # a bitmap, where lengths would be 4 bytes a row
    spaces = pc.utf8_is_space(arr)  # non-empty and nothing but whitespace
    if not pc.any(empty).as_py() and not pc.any(spaces).as_py():
        return arr  # the usual case: no blank at all, nothing to rebuild
    blank = pc.or_(empty, spaces)
    return pc.if_else(blank, pa.scalar(None, arr.type), arr)


def _clean_text(name: str, arr: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray | None]:
    """A text column in its contract type, blanks as null; for ``imei``, only the
    values that name a handset. For an identifier, also the rows whose value is a
    float's fraction (see :data:`_FRACTION`), or None when there is none.

    A dictionary column (Parquet text is read so) stays one: its few distinct values are
    cleaned and checked, not every row."""
    if pa.types.is_dictionary(arr.type):
        return _clean_dictionary_text(name, arr)
    target = COLUMNS[name]
    if name in IDENTIFIERS and arr.type == target and _passes_unchecked(name, arr):
        return arr, None  # the usual case: nothing to clean, mark or drop
    text = _blank_to_null(arr if arr.type == target else arr.cast(target))
    fraction = None
    if name in IDENTIFIERS:  # before IMEIs are checked
        fraction = _fractions(text)
    return (_handsets_only(text) if name == "imei" else text), fraction


def _passes_unchecked(name: str, arr: pa.ChunkedArray) -> bool:
    """Is every value of this identifier column digits (or '+'; an IMEI digits only, 14
    to 16 of them, its TAC not all zeros)? Then no value is blank, a float's fraction
    or an implausible IMEI, and the column needs no cleaning. One pass over the bytes,
    where the checks it spares run several Arrow kernels over every row."""
    imei = name == "imei"
    for chunk in arr.chunks:
        if len(chunk) == 0 or chunk.null_count == len(chunk):
            continue
        offsets, raw = text_bytes(chunk)
        lengths = np.diff(offsets)
        starts = offsets[:-1]
        if chunk.null_count:
            valid = np.asarray(chunk.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            if lengths[~valid].any():
                return False  # a null slot that holds bytes: leave it to the checks
            lengths, starts = lengths[valid], starts[valid]
        low, high = (14, 16) if imei else (1, None)
        if lengths.min() < low or (high is not None and lengths.max() > high):
            return False
        if not _digits_only(raw, plus=not imei):
            return False
        if imei:
            # TACs of eight zeros, one position at a time over the IMEIs still in doubt.
            doubt = starts
            for k in range(8):
                doubt = doubt[raw[doubt + k] == 48]  # b"0" is 48
                if doubt.size == 0:
                    break
            else:
                return False
    return True


def _digits_only(raw: np.ndarray, plus: bool) -> bool:
    """Are all these bytes ASCII digits (or '+')? In slices: no temporary of the size
    of the column."""
    step = 1 << 20
    for start in range(0, raw.shape[0], step):
        part = raw[start : start + step]
        digit = np.subtract(part, 48, dtype=np.uint8) <= 9  # b"0" is 48
        if plus:
            digit |= part == 43  # b"+"
        if not digit.all():
            return False
    return True


def _fractions(text: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array | None:
    """Which values are a float's fraction (see :data:`_FRACTION`), or None when none is.
    Every such value holds a '.' or an "e+"/"e-": a scan of the column's bytes for those
    (one vectorized pass) rules most columns out before the regular expression (~40 ns
    a row) runs."""
    if text.null_count == len(text):
        return None
    chunks = text.chunks if isinstance(text, pa.ChunkedArray) else [text]
    if not any(_may_hold_fraction(c) for c in chunks):
        return None
    # Blanks around the value do not hide it: identifiers are read trimmed.
    found = pc.match_substring_regex(pc.utf8_trim_whitespace(text), _FRACTION)
    return found if pc.any(found).as_py() else None


def _may_hold_fraction(chunk: pa.Array) -> bool:
    """Do the bytes of this string array hold a '.', or an 'e' then a sign? (A yes may
    be wrong, across two values; a no never is.)"""
    if len(chunk) == 0:
        return False
    if not pa.types.is_string(chunk.type):
        return True
    _, raw = text_bytes(chunk)
    step = 1 << 24  # in slices: no temporary of the size of the column
    for start in range(0, raw.shape[0], step):
        part = raw[start : start + step + 1]
        if (part == 46).any():  # '.'
            return True
        e = np.flatnonzero(part[:-1] == 101)  # 'e', then '+' or '-'
        if e.size and np.isin(part[e + 1], (43, 45)).any():
            return True
    return False


def _recode(encoded: pa.DictionaryArray, values: pa.Array) -> pa.DictionaryArray:
    """``encoded`` with dictionary entry i standing for ``values[i]`` instead: entries
    that became equal are merged and a null entry makes its rows null, so that the
    dictionary holds distinct values only (codes then name values, and a row's validity
    says whether it has one). Indices are as narrow as the dictionary allows."""
    same = values.null_count == 0 and encoded.dictionary.null_count == 0
    if (
        same
        and pc.all(pc.equal(values, encoded.dictionary)).as_py() in (True, None)
        and pc.count_distinct(values).as_py() == len(values)
    ):
        return narrow(encoded)  # nothing changed, every entry distinct: the usual case
    again = pc.dictionary_encode(values)  # one code per distinct value; null stays null
    indices = pc.take(again.indices, encoded.indices)
    return narrow(pa.DictionaryArray.from_arrays(indices, again.dictionary))


def _text_encoding(
    arr: pa.ChunkedArray, target: pa.DataType
) -> tuple[pa.DictionaryArray, pa.Array]:
    """A text column's dictionary encoding (a dictionary column's, unified) and its
    distinct values as ``target`` text."""
    if not pa.types.is_dictionary(arr.type) and arr.type != target:
        arr = arr.cast(target)
    encoded = encode(arr)
    values = encoded.dictionary
    if values.type != target:
        values = values.cast(target)
    return encoded, values


def _clean_dictionary_text(
    name: str, arr: pa.ChunkedArray
) -> tuple[pa.ChunkedArray, pa.ChunkedArray | None]:
    """:func:`_clean_text` of a dictionary column, judged on its distinct values."""
    encoded, values = _text_encoding(arr, COLUMNS[name])
    text = _blank_to_null(values)
    fraction = None
    if name in IDENTIFIERS:
        per_value = _fractions(text)
        if per_value is not None:
            rows = _per_row(per_value, encoded) & ~_nulls_like(encoded)
            fraction = pa.chunked_array([pa.array(rows)])
    if name == "imei":
        text = _handsets_only(text)
    return pa.chunked_array([_recode(encoded, text)]), fraction


def _handsets_only(imei: pa.ChunkedArray) -> pa.ChunkedArray:
    """IMEIs that are not plausible (wrong length, letters, an all-zero TAC) as null, so
    that a placeholder never stands for a handset that subscribers share."""
    if imei.null_count == len(imei):
        return imei
    if pc.all(pc.fill_null(plausible_imei(imei), True)).as_py():
        return imei
    trimmed = pc.utf8_trim_whitespace(imei)  # " 35201401000017" is still that handset
    plausible = pc.fill_null(plausible_imei(trimmed), False)
    return pc.if_else(plausible, trimmed, pa.scalar(None, pa.string()))


def _normalize_subscriber(arr: pa.ChunkedArray) -> pa.DictionaryArray:
    """The subscriber column without surrounding blanks, dictionary-encoded (the sort
    needs the encoding anyway): trimming its distinct values, not every row, and
    merging values that differed only by blanks."""
    encoded, values = _text_encoding(arr, pa.string())
    return _recode(encoded, pc.utf8_trim_whitespace(values))


def _per_row(per_value: pa.Array, encoded: pa.DictionaryArray) -> np.ndarray:
    """A per-distinct-value answer spread over the rows (null rows take the null answer)."""
    values = np.asarray(pc.fill_null(per_value, False).to_numpy(zero_copy_only=False), dtype=bool)
    if not values.any() and encoded.indices.null_count == 0:
        return np.zeros(len(encoded), dtype=bool)  # no row to flag (zero pages cost little)
    lookup = np.append(values, True)
    indices = pc.fill_null(encoded.indices, len(values)).to_numpy(zero_copy_only=False)
    return np.asarray(lookup[indices], dtype=bool)


def normalize_enum(arr: pa.ChunkedArray | pa.Array) -> pa.DictionaryArray:
    """Trimmed, lower-cased values, blanks as null, as a dictionary column (filters on
    it are judged on its few distinct values, and a row costs one byte). An enumerated
    column (:data:`ENUMS`) reads so whatever else is wrong with its row."""
    encoded, values = _text_encoding(arr, pa.string())
    return _recode(encoded, enum_text(values))


def enum_text(values: pa.Array) -> pa.Array:
    """Values of an enumerated column as :func:`normalize_enum` reads them: trimmed,
    lower-cased, blanks as null."""
    cleaned = pc.utf8_lower(pc.utf8_trim_whitespace(values))
    # A blank value is no value: null, like a missing one.
    return pc.if_else(pc.equal(cleaned, ""), pa.scalar(None, pa.string()), cleaned)


def explicit_ids(ids: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray:
    """The record ids an input gave, as text, blanks as null (as normalization reads them)."""
    if isinstance(ids, pa.Array):
        ids = pa.chunked_array([ids])
    return _blank_to_null(ids if ids.type == pa.string() else ids.cast(pa.string()))


def repeated_ids(ids: pa.ChunkedArray) -> pa.StructArray:
    """The given record ids that occur more than once, with their counts (exact, and
    cheap when they are unique: see :func:`telediag.strhash.repeated_values`)."""
    found = repeated_values(ids)
    if found is None:
        return pc.value_counts(pa.array([], type=ids.type))
    return found


def duplicate_id_message(repeats: pa.StructArray) -> str | None:
    """The warning for these repeated ids (from :func:`repeated_ids`, possibly of several
    disjoint parts): how many, and the most repeated one (the least id among equals, so
    that any split of the input names the same)."""
    if len(repeats) == 0:
        return None
    counts = np.asarray(repeats.field("counts").to_numpy(zero_copy_only=False), dtype=np.int64)
    worst = int(counts.max())
    candidates = repeats.field("values").filter(pa.array(counts == worst))
    value = pc.min(candidates).as_py()
    return (
        f"record_id is not unique: {len(repeats)} id(s) occur more than once "
        f"(e.g. {value!r} x{worst}); evidence is matched by position, "
        "but these ids alone do not name one record"
    )


def duplicate_id_warning(ids: pa.ChunkedArray) -> str | None:
    """A one-line warning when explicit record ids repeat, naming the most repeated."""
    return duplicate_id_message(repeated_ids(ids))


def normalize(
    raw: RawInput, tz: str | None = None, threads: int = 2, *, check_ids: bool = True
) -> Normalized:
    """Cast every contract column to its type and mark the rows that break the contract.

    The string columns are cleaned in up to ``threads`` threads. Columns of many small
    chunks come out as one chunk (see :func:`_one_chunk`). ``check_ids`` False skips
    the warning about repeated record ids (a bucket's caller checks the whole input).
    """
    zone = _zone(tz)
    src = raw.table
    n = src.num_rows
    reason = np.zeros(n, dtype=np.int16)
    columns: dict[str, pa.ChunkedArray] = {}
    encoded: dict[str, pa.DictionaryArray] = {}

    # The string work (hashing millions of values) runs in threads: Arrow releases the
    # GIL, and the columns do not depend on each other.
    enum_names = [c for c in ENUMS if c in src.column_names]
    if "record_id" in src.column_names:
        ids = src["record_id"]
        columns["record_id"] = _blank_to_null(
            ids if ids.type == pa.string() else ids.cast(pa.string())
        )
    # Text columns are cleaned (blanks to null, IMEIs that name no handset to null)
    # in the pool too: that marks no row, so it runs while this thread marks the rows
    # that break the contract, in the order of REASONS.
    text_names = [
        c
        for c, t in COLUMNS.items()
        if c in src.column_names
        and pa.types.is_string(t)
        and c not in ENUMS
        and c not in ("msisdn", "record_id")
    ]
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        repeated_ids = (
            pool.submit(duplicate_id_warning, columns["record_id"])
            if "record_id" in columns and check_ids
            else None
        )
        subscriber = pool.submit(_normalize_subscriber, src["msisdn"])
        enums = {c: pool.submit(normalize_enum, src[c]) for c in enum_names}
        texts = {c: pool.submit(_clean_text, c, src[c]) for c in text_names}
        encoded["msisdn"] = subscriber.result()
        columns["msisdn"] = pa.chunked_array([encoded["msisdn"]])
        for c, future in enums.items():
            encoded[c] = future.result()
            columns[c] = pa.chunked_array([encoded[c]])

        empty = pc.equal(encoded["msisdn"].dictionary, "")
        _mark(reason, _per_row(empty, encoded["msisdn"]), "missing msisdn")
        fraction = pc.match_substring_regex(encoded["msisdn"].dictionary, _FRACTION)
        _mark(reason, _per_row(fraction, encoded["msisdn"]), "non-integral msisdn")
        for name in ("record_type", "direction"):
            values = encoded[name].dictionary
            _mark(reason, _per_row(values.is_null(), encoded[name]), f"missing {name}")
            known = pc.is_in(values, pa.array(ENUMS[name]))
            _mark(reason, _per_row(pc.invert(known), encoded[name]), f"unknown {name}")

        times = src["start_time"]
        _mark(reason, times.is_null(), "missing start_time")
        columns["start_time"] = _parse_time(times, zone, raw.time_formats, reason)

        for name, target in COLUMNS.items():
            if name in columns:
                continue
            if name in texts:
                columns[name], fraction = texts[name].result()
                if fraction is not None:
                    _mark(reason, _as_mask(fraction), f"non-integral {name}")
            elif name not in src.column_names:
                columns[name] = pa.chunked_array([pa.nulls(n, target)])
            elif name in NUMERIC_COLUMNS:
                columns[name] = _parse_numeric(name, src[name], target, reason)
            else:
                arr = src[name]
                columns[name] = _blank_to_null(arr if arr.type == target else arr.cast(target))
    if "imei" not in texts:  # absent: all null
        columns["imei"] = _handsets_only(columns["imei"])

    for name in NON_NEGATIVE:
        _mark(reason, pc.less(columns[name], 0), f"negative {name}")
    for name in ("status", "mms_event"):
        if name in encoded:
            values = encoded[name].dictionary
            unknown = pc.and_(values.is_valid(), pc.invert(pc.is_in(values, pa.array(ENUMS[name]))))
            # Null means "not given" (status null is ok), so null rows are never unknown.
            flagged = _per_row(unknown, encoded[name]) & np.asarray(
                encoded[name].is_valid().to_numpy(zero_copy_only=False), dtype=bool
            )
            _mark(reason, flagged, f"unknown {name}")

    warnings = [*raw.warnings, *(w for w in [repeated_ids.result() if repeated_ids else None] if w)]
    table = pa.table({name: _one_chunk(columns[name]) for name in COLUMNS})
    valid = reason == 0
    counts = np.bincount(reason, minlength=len(REASONS) + 1)
    set_aside = {REASONS[i - 1]: int(c) for i, c in enumerate(counts) if i and c}
    report = InputReport(
        files=raw.files,
        rows_read=n,
        rows_used=int(valid.sum()),
        set_aside=set_aside,
        layouts=dict(raw.layouts),
        disagreements=dict(raw.disagreements),
        warnings=warnings,
    )
    # Only the rows set aside are kept as read (for rejects()): usually none or few.
    aside = np.flatnonzero(reason)
    kept = replace(
        raw, table=raw.table.take(pa.array(aside)) if len(aside) else src.schema.empty_table()
    )
    return Normalized(
        raw=kept, table=table, valid=valid, reason=reason, report=report, encoded=encoded
    )
