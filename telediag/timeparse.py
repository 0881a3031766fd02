"""Turning time values of any input format into UTC instants, one rule for all formats.

The rule (the same for CSV text, Parquet timestamps and in-memory tables):

- A value that carries its own offset (``+0100``, ``-05:00``, ``Z``) or is an epoch
  number is an instant: it is taken as given, row by row, even when the offsets differ
  within one column (summer and winter time).
- A naive value is a local time in the scan's zone (``--tz``). When the zone's clock
  change skips it (the spring gap) it names no instant: the row is set aside as
  ``nonexistent local start_time``. When the clock change repeats it (the autumn
  overlap) it names two instants and nothing in the row says which: the row is set
  aside as ``ambiguous local start_time``. No time is moved or guessed.
- Text is parsed only with the formats the column map declares (``strptime``
  patterns, ``epoch_s``, ``epoch_ms``), tried in order, or, without a declaration,
  with formats that cannot be misread: ISO 8601 and its common variants, the compact
  ``YYYYMMDDhhmmss``, and layouts whose month is a name. ``03/01/2014`` is never
  guessed; declare ``%d/%m/%Y`` or ``%m/%d/%Y``. Zone names (``%Z``) are never read:
  ``CST`` names several offsets.
- Fields written with no separator between them (``%H%M%S``) must have all their
  digits: ``12345`` is not a time of ``%H%M%S``. Numbers (a reader that guessed an
  integer dropped the leading zeros) are padded with zeros to the width first.
- The duration between two times of a row is the difference of their instants, so a
  call across a clock change lasts what it lasted (see :func:`durations`).

Everything runs on the distinct values with Arrow compute kernels (``strptime`` is
Arrow's), so a column of millions of values costs a few vectorized passes; a column of
plain ISO 8601 text is read by Arrow's ISO parser in one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Pseudo-formats for numbers counted from 1970-01-01 UTC.
EPOCH_FORMATS: dict[str, int] = {"epoch_s": 1000, "epoch_ms": 1}

#: Formats tried when the map declares none: none of them can be read two ways.
UNAMBIGUOUS_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M%z",
    "%Y-%m-%dT%H:%M%z",
    "%Y%m%d%H%M%S",
    "%Y%m%d%H%M%S%z",
    "%Y%m%dT%H%M%S",
    "%Y%m%dT%H%M%S%z",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%d",
    "%a %b %d %H:%M:%S %z %Y",
    "%a, %d %b %Y %H:%M:%S %z",
    "%d %b %Y %H:%M:%S",
    "%b %d %Y %H:%M:%S",
)

#: Why a time value gives no instant (set-aside reasons for ``start_time``).
UNPARSEABLE, NONEXISTENT, AMBIGUOUS = 1, 2, 3

#: Fractional seconds: after ``hh:mm:ss`` or a compact ``YYYYMMDDhhmmss``.
_FRACTION = r"(\d:\d\d|^\d{14})[.,](\d{1,9})"
_MS = pa.timestamp("ms")
_MS_UTC = pa.timestamp("ms", tz="UTC")
_DAY_MS = 86_400_000

#: Digits of the numeric fields a pattern may write with no separator between them.
_FIELD_WIDTHS = {"Y": 4, "y": 2, "m": 2, "d": 2, "j": 3, "H": 2, "M": 2, "S": 2}
#: Names that, written literally at the end of a pattern, mark its times as UTC.
UTC_NAMES = ("Z", "UTC", "GMT")
#: The shortest ISO 8601 date and time with seconds (``YYYY-MM-DD hh:mm:ss``).
_ISO_MIN_LENGTH = 19


@dataclass(frozen=True)
class ParsedTimes:
    """Instants (UTC, ms) for an array of values, and why the nulls are null."""

    times: pa.Array
    #: 0 where the value gave an instant or was null; else UNPARSEABLE/NONEXISTENT/AMBIGUOUS.
    why: np.ndarray
    #: Per value: it carried its own offset (or was an epoch number).
    aware: np.ndarray | None = None
    #: Per value: the format that read it fixes the day (else it is a time of day).
    dated: np.ndarray | None = None


def _bools(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as numpy (null is False)."""
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _utc_literal(fmt: str) -> bool:
    """Whether the pattern ends in a literal ``Z``, ``UTC`` or ``GMT`` (not ``%Z``)."""
    end = fmt.rstrip()
    return any(end.endswith(name) and not end.endswith("%" + name) for name in UTC_NAMES)


def _is_aware_format(fmt: str) -> bool:
    return "%z" in fmt or _utc_literal(fmt)


def _without_fraction(fmt: str) -> str:
    return fmt.replace(".%f", "").replace(",%f", "").replace("%f", "")


def compact_rule(fmt: str) -> tuple[int | None, str | None]:
    """How many digits a pattern's compact fields need (``%H%M%S``: exactly six).

    strptime reads a numeric field with fewer digits when the next character is not
    a digit, so ``12345`` would read as 12:34:05 with ``%H%M%S``. Fields written with
    no separator between them must therefore have their full width. Returns
    ``(width, None)`` for a pattern that is one such run of fields, ``(None, regex)``
    for a pattern with such a run among other parts (the regex a value must match),
    and ``(None, None)`` for a pattern without one (separated fields may be unpadded).
    """
    return _compact_rule(fmt)[:2]


def pad_width(fmt: str) -> int | None:
    """The width to pad numbers to for a pattern that is one compact run, when its first
    field can have lost a leading zero (``%H%M%S``, ``%d%m%Y``; not ``%Y%m%d``: no year
    of a record starts with a zero, and padding 1215000000 would read year 0)."""
    width, _, first = _compact_rule(fmt)
    return width if first != "Y" else None


@lru_cache(maxsize=256)
def _compact_rule(fmt: str) -> tuple[int | None, str | None, str]:
    """:func:`compact_rule`, and the pattern's first field letter ("" when it starts
    with a literal)."""
    fmt = _without_fraction(fmt)
    tokens: list[tuple[bool, str]] = []  # (is a field, the field letter or a literal)
    i = 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            tokens.append((True, fmt[i + 1]))
            i += 2
        else:
            tokens.append((False, fmt[i]))
            i += 1
    in_run = [False] * len(tokens)
    i = 0
    while i < len(tokens):
        j = i
        while j < len(tokens) and tokens[j][0] and tokens[j][1] in _FIELD_WIDTHS:
            j += 1
        if j - i >= 2:
            in_run[i:j] = [True] * (j - i)
        i = max(j, i + 1)
    first = tokens[0][1] if tokens and tokens[0][0] else ""
    if not any(in_run):
        return None, None, first
    if all(in_run):
        return sum(_FIELD_WIDTHS[t] for _, t in tokens), None, first
    parts = []
    for (field, t), run in zip(tokens, in_run, strict=True):
        if run:
            parts.append(rf"\d{{{_FIELD_WIDTHS[t]}}}")
        elif not field:
            parts.append(r"\s*" if t.isspace() else re.escape(t))
        else:
            parts.append(".*?")
    return None, "^" + "".join(parts) + "$", first


def part_widths(formats: Sequence[str] | None) -> tuple[int | None, int | None]:
    """For a date column and a time column read together as ``"<date> <time>"``: the
    width each part's numbers are padded to, when every declared pattern writes it as
    one compact run that may have lost a leading zero (see :func:`pad_width`;
    ``"%Y%m%d %H%M%S"``: None and 6), else None."""
    widths: tuple[set[int | None], set[int | None]] = (set(), set())
    for fmt in formats or ():
        parts = _without_fraction(fmt).split()
        if len(parts) != 2:
            return None, None
        for k in (0, 1):
            widths[k].add(pad_width(parts[k]))
    date_w, time_w = (w.pop() if len(w) == 1 else None for w in widths)
    return date_w, time_w


def has_date(fmt: str) -> bool:
    """Whether a format fixes the calendar day (else it is a time of day)."""
    return fmt in EPOCH_FORMATS or any(d in fmt for d in ("%Y", "%y", "%d", "%j", "%F"))


def _split_fraction(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Values without their fractional seconds, and those fractions in milliseconds."""
    # One regex pass: what comes before the fraction, its digits, and what follows.
    found = pc.extract_regex(values, r"^(?P<head>\d{14}|.*\d:\d\d)[.,](?P<f>\d{1,9})(?P<tail>.*)$")
    head, digits, tail = (pc.struct_field(found, [i]) for i in range(3))
    ms = pc.cast(pc.utf8_slice_codeunits(pc.utf8_rpad(digits, 3, "0"), 0, 3), pa.int64())
    stripped = pc.coalesce(pc.binary_join_element_wise(head, tail, ""), values)
    return stripped, pc.fill_null(ms, 0)


def _strptime(values: pa.Array, fmt: str, numeric: bool = False) -> pa.Array:
    """``strptime`` as UTC ms for aware formats, naive ms otherwise (nulls where it fails).

    Compact fields must have their full width (see :func:`compact_rule`); ``numeric``
    values (numbers a reader turned into text) are first padded with zeros to it."""
    fmt = _without_fraction(fmt)
    if "%Z" in fmt:  # a zone name: Arrow ignores it, so it would read a wrong instant
        return pa.nulls(len(values), _MS)
    width, pattern = compact_rule(fmt)
    pad = pad_width(fmt) if numeric else None
    if pad is not None:
        values = pc.utf8_lpad(values, pad, "0")
    parsed = pc.strptime(values, format=fmt, unit="ms", error_is_null=True)
    if width is not None:
        full = pc.and_(pc.utf8_is_digit(values), pc.equal(pc.utf8_length(values), width))
        parsed = pc.if_else(full, parsed, pa.scalar(None, parsed.type))
    elif pattern is not None:
        full = pc.match_substring_regex(values, pattern)
        parsed = pc.if_else(full, parsed, pa.scalar(None, parsed.type))
    if _utc_literal(fmt):
        return pc.cast(pc.assume_timezone(parsed, "UTC"), _MS_UTC)
    return parsed


def _epoch(values: pa.Array, factor: int) -> pa.Array:
    numeric = pc.match_substring_regex(values, r"^-?\d{1,15}(\.\d+)?$")
    text = pc.if_else(numeric, values, pa.scalar(None, pa.string()))
    number = pc.cast(text, pa.float64())
    ms = pc.round(pc.multiply(number, float(factor)))
    ok = pc.and_(pc.greater(ms, -1e16), pc.less(ms, 1e16))  # about 300,000 years
    ms = pc.if_else(ok, ms, pa.scalar(None, pa.float64()))
    return pc.cast(pc.cast(ms, pa.int64()), _MS_UTC)


def _order_by_sample(values: pa.Array, formats: Sequence[str]) -> list[str]:
    """Formats that read some of a sample first (in their order), the others after.

    Only for formats of which no two read one value differently (the defaults)."""
    if len(values) <= 2000 or len(formats) < 3:
        return list(formats)
    step = max(1, len(values) // 1000)
    sample = values.take(pa.array(np.arange(0, len(values), step)))
    remaining = sample
    hit: list[str] = []
    for fmt in formats:
        if len(remaining) == 0:
            break
        got = _try(remaining, fmt)
        if got.null_count < len(got):
            hit.append(fmt)
            remaining = remaining.filter(got.is_null())
    # Keep the declared precedence among the formats that hit.
    hits = [f for f in formats if f in hit]
    return hits + [f for f in formats if f not in hit]


def _try(values: pa.Array, fmt: str, numeric: bool = False) -> pa.Array:
    if fmt in EPOCH_FORMATS:
        return _epoch(values, EPOCH_FORMATS[fmt])
    return _strptime(values, fmt, numeric)


def _iso_cast(values: pa.Array) -> tuple[pa.Array, bool] | None:
    """Every value read by Arrow's ISO 8601 parser in one pass (the fast path for the
    commonest layout, fractions included): the times and whether they carry offsets
    (all or none do), or None when some value is not plain ISO with seconds."""
    if len(values) == 0:
        return None
    shortest = pc.min(pc.utf8_length(values)).as_py()
    if shortest is None or shortest < _ISO_MIN_LENGTH:
        return None
    sample = values.slice(0, 100)
    for typ, aware in ((_MS, False), (_MS_UTC, True)):
        try:
            sample.cast(typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        try:
            return values.cast(typ), aware
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    return None


def _has_fractions(values: pa.Array) -> bool:
    """Whether a sample of the values shows fractional seconds."""
    n = len(values)
    if n == 0:
        return False
    sample = values.take(pa.array(np.arange(0, n, max(1, n // 1000))))
    return bool(pc.any(pc.match_substring_regex(sample, _FRACTION)).as_py())


def parse_text(
    values: pa.Array,
    zone: str | None,
    formats: Sequence[str] | None = None,
    numeric: bool = False,
) -> ParsedTimes:
    """Parse time strings; see the module's rule. ``zone`` None leaves naive times as
    naive (wall-clock milliseconds), for differences between two times of one row.
    ``numeric``: the values are numbers written as text (a reader dropped their leading
    zeros), padded to a compact pattern's width before it reads them."""
    n = len(values)
    text = pc.utf8_trim_whitespace(values.cast(pa.string()))
    fmts = list(formats) if formats else list(UNAMBIGUOUS_FORMATS)
    naive_ms = np.zeros(n, dtype=np.int64)
    aware_ms = np.zeros(n, dtype=np.int64)
    is_naive = np.zeros(n, dtype=bool)
    is_aware = np.zeros(n, dtype=bool)
    dated = np.zeros(n, dtype=bool)
    valid_in = _bools(text.is_valid())
    rows = np.flatnonzero(valid_in)
    present = text if rows.size == n else text.filter(pa.array(valid_in))

    def run(
        rows: np.ndarray, values: pa.Array, fraction: np.ndarray | None, fmts: list[str]
    ) -> np.ndarray:
        """Parse ``values`` (aligned with ``rows``); return the rows left unparsed."""
        for fmt in fmts:
            if rows.size == 0:
                break
            got = _try(values, fmt, numeric)
            ok = _bools(got.is_valid())
            if not ok.any():
                continue
            ms = np.asarray(pc.cast(got.filter(got.is_valid()), pa.int64()).to_numpy())
            if fraction is not None:
                ms = ms + fraction[ok]
            done = rows[ok]
            dated[done] = has_date(fmt)
            if fmt in EPOCH_FORMATS or _is_aware_format(fmt):
                aware_ms[done], is_aware[done] = ms, True
            else:
                naive_ms[done], is_naive[done] = ms, True
            rows = rows[~ok]
            values = values.filter(pa.array(~ok))
            fraction = fraction[~ok] if fraction is not None else None
        return rows

    fast = None if formats else _iso_cast(present)
    if fast is not None:  # plain ISO 8601 throughout: one pass of Arrow's own parser
        got, aware = fast
        ms = np.asarray(pc.cast(got, pa.int64()).to_numpy(zero_copy_only=False))
        if aware:
            aware_ms[rows], is_aware[rows] = ms, True
        else:
            naive_ms[rows], is_naive[rows] = ms, True
        dated[rows] = True
        todo = rows[:0]
    elif not any(f in EPOCH_FORMATS for f in fmts) and _has_fractions(present):
        # Fractional seconds are read apart first, so that each format is one pass.
        stripped, fraction = _split_fraction(present)
        ordered = fmts if formats else _order_by_sample(stripped, fmts)
        todo = run(rows, stripped, np.asarray(fraction.to_numpy(zero_copy_only=False)), ordered)
    else:
        # Declared formats keep their order (two may read one value differently); the
        # defaults cannot, so the ones the values use are tried first, saving passes.
        ordered = fmts if formats else _order_by_sample(present, fmts)
        todo = run(rows, present, None, ordered)
        if todo.size:  # fractional seconds: read apart, then the same formats on the rest
            subset = text.take(pa.array(todo))
            stripped, fraction = _split_fraction(subset)
            has = _bools(pc.not_equal(stripped, subset))
            if has.any():
                mask = pa.array(has)
                left = run(
                    todo[has],
                    stripped.filter(mask),
                    np.asarray(fraction.filter(mask).to_numpy(zero_copy_only=False)),
                    [f for f in ordered if f not in EPOCH_FORMATS],
                )
                todo = np.concatenate([todo[~has], left])
    why = np.zeros(n, dtype=np.int8)
    why[todo] = UNPARSEABLE
    out = np.where(is_aware, aware_ms, naive_ms)
    if zone is not None and is_naive.any():
        idx = np.flatnonzero(is_naive)
        local = pa.array(naive_ms[idx], type=pa.int64()).cast(_MS)
        instants, local_why = localize(local, zone)
        out[idx] = np.asarray(
            pc.fill_null(pc.cast(instants, pa.int64()), 0).to_numpy(zero_copy_only=False)
        )
        why[idx] = local_why
    valid = (is_aware | is_naive) & (why == 0)
    times = pa.array(out, type=pa.int64(), mask=~valid)
    times = times.cast(_MS_UTC) if zone is not None else times.cast(_MS)
    return ParsedTimes(times=times, why=why, aware=is_aware, dated=dated)


def localize(local: pa.Array | pa.ChunkedArray, zone: str) -> tuple[pa.Array, np.ndarray]:
    """Naive local times in ``zone`` as UTC instants; skipped and repeated times are null.

    Returns the instants and, per value, 0, NONEXISTENT or AMBIGUOUS.
    """
    if isinstance(local, pa.ChunkedArray):
        local = local.combine_chunks()
    local = pc.cast(local, _MS, safe=False)
    n = len(local)
    if zone == "UTC":
        return pc.cast(pc.assume_timezone(local, "UTC"), _MS_UTC), np.zeros(n, dtype=np.int8)
    try:  # the usual case, no time in a gap or an overlap: one pass
        exact = pc.assume_timezone(local, zone, ambiguous="raise", nonexistent="raise")
        return pc.cast(exact, _MS_UTC), np.zeros(n, dtype=np.int8)
    except pa.ArrowInvalid:
        pass
    early = pc.assume_timezone(local, zone, ambiguous="earliest", nonexistent="earliest")
    late = pc.assume_timezone(local, zone, ambiguous="latest", nonexistent="latest")
    early = pc.cast(early, _MS_UTC)
    late = pc.cast(late, _MS_UTC)
    differ = _bools(pc.not_equal(early, late))
    why = np.zeros(n, dtype=np.int8)
    if differ.any():
        # A skipped time does not come back from the instant chosen for it.
        back = pc.local_timestamp(pc.cast(early, pa.timestamp("ms", tz=zone)))
        exists = _bools(pc.equal(pc.cast(back, _MS), local))
        why[differ & exists] = AMBIGUOUS
        why[differ & ~exists] = NONEXISTENT
    instants = pc.if_else(pa.array(why == 0), early, pa.scalar(None, _MS_UTC))
    return instants, why


def parse_timestamps(
    arr: pa.ChunkedArray, zone: str, formats: Sequence[str] | None = None
) -> ParsedTimes:
    """Any column of times (timestamps, dates, text, numbers) as UTC instants."""
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_timestamp(t):
        if t.tz is None:
            return _localize_column(arr, zone)
        times = pc.cast(arr, _MS_UTC, safe=False).combine_chunks()
        return ParsedTimes(times, np.zeros(len(times), dtype=np.int8))
    if pa.types.is_date(t):
        return _localize_column(pc.cast(arr, _MS), zone)
    numeric = False
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        if formats and all(f in EPOCH_FORMATS for f in formats):
            # Numbers counted from 1970 (the first declared unit): no text involved.
            ms = pc.round(pc.multiply(pc.cast(arr, pa.float64()), float(EPOCH_FORMATS[formats[0]])))
            ok = pc.and_(pc.greater(ms, -1e16), pc.less(ms, 1e16))
            ms = pc.if_else(ok, ms, pa.scalar(None, pa.float64()))
            times = pc.cast(pc.cast(ms, pa.int64()), _MS_UTC).combine_chunks()
            return ParsedTimes(times, np.zeros(len(times), dtype=np.int8))
        # A number is text to the formats (20260708035300 reads as a compact time),
        # padded with the zeros a reader took from it (12345 as %H%M%S is 01:23:45).
        numeric = True
        arr = _whole_numbers(arr)
    text = _as_time_text(arr)
    combined = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    if _mostly_distinct(combined):  # hashing would cost more than parsing every value
        return parse_text(combined, zone, formats, numeric)
    encoded = pc.dictionary_encode(combined)
    parsed = parse_text(encoded.dictionary, zone, formats, numeric)
    indices = encoded.indices
    times = pc.take(parsed.times, indices)
    codes = np.append(parsed.why, 0)
    idx = pc.fill_null(indices, len(parsed.why)).to_numpy(zero_copy_only=False)
    return ParsedTimes(times, codes[idx])


def _whole_numbers(arr: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Floats that are whole numbers as integers (others null): pandas writes an integer
    column with a blank as floats."""
    if pa.types.is_floating(arr.type):
        finite = pc.fill_null(pc.is_finite(arr), False)
        whole = pc.and_(finite, pc.equal(pc.floor(arr), arr))
        ints = pc.cast(pc.if_else(whole, arr, 0.0), pa.int64(), safe=False)
        return pc.if_else(whole, ints, pa.scalar(None, pa.int64()))
    return arr


def _as_time_text(arr: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return arr
    try:
        return arr.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise TypeError(f"values of type {arr.type} are not times") from None


@dataclass(frozen=True)
class WallTimes:
    """Times read without a zone, for the difference between two times of one row."""

    #: Milliseconds: the wall-clock reading of a naive time, the instant of an aware one.
    ms: np.ndarray
    #: A value was given (not null).
    given: np.ndarray
    #: It was read.
    parsed: np.ndarray
    #: It carried its own offset (or is a typed instant, or an epoch number).
    aware: np.ndarray
    #: Its format fixes the calendar day (else it is a time of day).
    dated: np.ndarray


def parse_wall(arr: pa.ChunkedArray, formats: Sequence[str] | None) -> WallTimes:
    """A column of times (text, numbers, timestamps, dates) read without applying a
    zone; typed timestamps and dates are used as they are, whatever ``formats`` say."""
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    n = len(arr)
    given = _bools(arr.is_valid()) if n else np.zeros(0, dtype=bool)
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        aware = pa.types.is_timestamp(t) and t.tz is not None
        typ = _MS_UTC if aware else _MS
        ms = pc.cast(pc.cast(arr, typ, safe=False), pa.int64())
        values = np.asarray(pc.fill_null(ms, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
        return WallTimes(values, given, given.copy(), np.full(n, aware), np.ones(n, dtype=bool))
    numeric = False
    number = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
    if number and not (formats and all(f in EPOCH_FORMATS for f in formats)):
        numeric = True
        arr = _whole_numbers(arr)
    text = _as_time_text(arr)
    combined = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    if _mostly_distinct(combined):
        parsed = parse_text(combined, None, formats, numeric)
        take = None
    else:
        encoded = pc.dictionary_encode(combined)
        parsed = parse_text(encoded.dictionary, None, formats, numeric)
        take = np.asarray(
            pc.fill_null(encoded.indices, len(parsed.why)).to_numpy(zero_copy_only=False)
        )
    m = len(parsed.why)
    ms = np.asarray(
        pc.fill_null(pc.cast(parsed.times, pa.int64()), 0).to_numpy(zero_copy_only=False)
    )
    ok = _bools(parsed.times.is_valid()) if m else np.zeros(0, dtype=bool)
    aware = parsed.aware if parsed.aware is not None else np.zeros(m, dtype=bool)
    dated = parsed.dated if parsed.dated is not None else np.zeros(m, dtype=bool)
    if take is not None:  # per distinct value -> per row (nulls take the extra slot)
        per_row = (np.append(x, np.zeros(1, x.dtype))[take] for x in (ms, ok, aware, dated))
        ms, ok, aware, dated = per_row
    return WallTimes(ms, given, ok & given, aware & ok, dated & ok)


def durations(
    start: WallTimes,
    end: WallTimes,
    zone: str,
    start_local_ms: Callable[[], np.ndarray | None],
) -> tuple[np.ndarray, np.ndarray]:
    """Seconds from ``start`` to ``end`` per row (NaN where there is none), and why a
    row has none although both times were given (0, UNPARSEABLE, NONEXISTENT, AMBIGUOUS).

    The difference is taken between instants, so a call across a clock change lasts
    the time that passed: naive times are local to ``zone`` under the one time rule. A
    row without its start or its end has no duration and nothing wrong. When both are
    times of day, the start is on the local day of the row's ``start_time``
    (``start_local_ms`` gives those local readings, null where unknown, and is only
    called when needed), and an end before the start is on the next day.
    """
    n = len(start.ms)
    seconds = np.full(n, np.nan)
    why = np.zeros(n, dtype=np.int8)
    why[(start.given & ~start.parsed) | (end.given & ~end.parsed)] = UNPARSEABLE
    both = start.parsed & end.parsed
    dated = both & start.dated & end.dated
    of_day = both & ~start.dated & ~end.dated
    why[both & ~dated & ~of_day] = UNPARSEABLE  # a time of day paired with a whole time
    why[of_day & (start.aware != end.aware)] = UNPARSEABLE
    s_ms, e_ms = start.ms.copy(), end.ms.copy()
    local_pair = np.zeros(n, dtype=bool)  # naive readings to put in the zone
    aware_days = of_day & start.aware & end.aware
    if aware_days.any():
        seconds[aware_days] = np.mod(e_ms - s_ms, _DAY_MS)[aware_days] / 1000.0
    naive_days = of_day & ~start.aware & ~end.aware
    if naive_days.any():
        s_tod = np.mod(s_ms, _DAY_MS)
        wall = np.mod(e_ms - s_ms, _DAY_MS)
        anchor = start_local_ms()
        known = np.zeros(n, dtype=bool) if anchor is None else naive_days & ~np.isnan(anchor)
        if anchor is not None and known.any():
            day = np.round((np.nan_to_num(anchor) - s_tod) / _DAY_MS).astype(np.int64)
            s_ms = np.where(known, day * _DAY_MS + s_tod, s_ms)
            e_ms = np.where(known, s_ms + wall, e_ms)
            local_pair |= known
        unknown = naive_days & ~known  # no day to put them on: the wall-clock difference
        seconds[unknown] = wall[unknown] / 1000.0
    s_local = dated & ~start.aware
    e_local = dated & ~end.aware
    s_local |= local_pair
    e_local |= local_pair
    for ms, local in ((s_ms, s_local), (e_ms, e_local)):
        if local.any():
            idx = np.flatnonzero(local)
            instants, local_why = localize(pa.array(ms[idx], pa.int64()).cast(_MS), zone)
            ms[idx] = np.asarray(
                pc.fill_null(pc.cast(instants, pa.int64()), 0).to_numpy(zero_copy_only=False)
            )
            bad = idx[local_why != 0]
            why[bad] = np.where(why[bad] == 0, local_why[local_why != 0], why[bad])
    exact = (dated | local_pair) & (why == 0)
    seconds[exact] = (e_ms - s_ms)[exact] / 1000.0
    seconds[why != 0] = np.nan
    return seconds, why


def _mostly_distinct(values: pa.Array) -> bool:
    """Whether most values differ (times to the second usually do), judged on a sample."""
    n = len(values)
    if n < 50_000:
        return False
    sample = values.take(pa.array(np.arange(0, n, n // 20_000)))
    return len(pc.unique(sample)) > 0.5 * len(sample)


def _localize_column(arr: pa.ChunkedArray | pa.Array, zone: str) -> ParsedTimes:
    times, why = localize(arr, zone)
    return ParsedTimes(times, why)
