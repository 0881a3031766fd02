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
  guessed; declare ``%d/%m/%Y`` or ``%m/%d/%Y``.

Everything runs on the distinct values with Arrow compute kernels (``strptime`` is the
C library's), so a column of millions of values costs a few vectorized passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    "%Y-%m-%dT%H:%M%z",
    "%Y%m%d%H%M%S",
    "%Y%m%d%H%M%S%z",
    "%Y%m%dT%H%M%S",
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


def _is_aware_format(fmt: str) -> bool:
    return "%z" in fmt or fmt.endswith("Z")


def has_date(fmt: str) -> bool:
    """Whether a format fixes the calendar day (else it is a time of day)."""
    return fmt in EPOCH_FORMATS or any(d in fmt for d in ("%Y", "%y", "%d", "%j", "%F"))


def _split_fraction(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Values without their fractional seconds, and those fractions in milliseconds."""
    found = pc.extract_regex(values, r"(?:\d:\d\d|^\d{14})[.,](?P<f>\d{1,9})")
    digits = pc.struct_field(found, [0])
    ms = pc.cast(pc.utf8_slice_codeunits(pc.utf8_rpad(digits, 3, "0"), 0, 3), pa.int64())
    stripped = pc.replace_substring_regex(values, _FRACTION, r"\1")
    return stripped, pc.fill_null(ms, 0)


def _strptime(values: pa.Array, fmt: str) -> pa.Array:
    """``strptime`` as UTC ms for aware formats, naive ms otherwise (nulls where it fails)."""
    fmt = fmt.replace(".%f", "").replace(",%f", "").replace("%f", "")
    if fmt.endswith("Z") and not fmt.endswith("%Z"):
        parsed = pc.strptime(values, format=fmt, unit="ms", error_is_null=True)
        return pc.cast(pc.assume_timezone(parsed, "UTC"), _MS_UTC)
    return pc.strptime(values, format=fmt, unit="ms", error_is_null=True)


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


def _try(values: pa.Array, fmt: str) -> pa.Array:
    if fmt in EPOCH_FORMATS:
        return _epoch(values, EPOCH_FORMATS[fmt])
    return _strptime(values, fmt)


def parse_text(
    values: pa.Array, zone: str | None, formats: Sequence[str] | None = None
) -> ParsedTimes:
    """Parse time strings; see the module's rule. ``zone`` None leaves naive times as
    naive (wall-clock milliseconds), for differences between two times of one row."""
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
    # Declared formats keep their order (two may read one value differently); the
    # defaults cannot, so the ones the values use are tried first, saving passes.
    ordered = fmts if formats else _order_by_sample(present, fmts)

    def run(
        rows: np.ndarray, values: pa.Array, fraction: np.ndarray | None, fmts: list[str]
    ) -> np.ndarray:
        """Parse ``values`` (aligned with ``rows``); return the rows left unparsed."""
        for fmt in fmts:
            if rows.size == 0:
                break
            got = _try(values, fmt)
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
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        if formats and all(f in EPOCH_FORMATS for f in formats):
            # Numbers counted from 1970 (the first declared unit): no text involved.
            ms = pc.round(pc.multiply(pc.cast(arr, pa.float64()), float(EPOCH_FORMATS[formats[0]])))
            ok = pc.and_(pc.greater(ms, -1e16), pc.less(ms, 1e16))
            ms = pc.if_else(ok, ms, pa.scalar(None, pa.float64()))
            times = pc.cast(pc.cast(ms, pa.int64()), _MS_UTC).combine_chunks()
            return ParsedTimes(times, np.zeros(len(times), dtype=np.int8))
        # A number is text to the formats (20260708035300 reads as a compact time).
        if pa.types.is_floating(t):
            whole = pc.equal(pc.floor(arr), arr)
            ints = pc.cast(arr, pa.int64(), safe=False)
            arr = pc.if_else(whole, ints, pa.scalar(None, pa.int64()))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        text = arr
    else:
        try:
            text = arr.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise TypeError(f"values of type {arr.type} are not times") from None
    combined = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    if _mostly_distinct(combined):  # hashing would cost more than parsing every value
        return parse_text(combined, zone, formats)
    encoded = pc.dictionary_encode(combined)
    parsed = parse_text(encoded.dictionary, zone, formats)
    indices = encoded.indices
    times = pc.take(parsed.times, indices)
    codes = np.append(parsed.why, 0)
    idx = pc.fill_null(indices, len(parsed.why)).to_numpy(zero_copy_only=False)
    return ParsedTimes(times, codes[idx])


def parse_wall(
    arr: pa.ChunkedArray, formats: Sequence[str] | None
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Times as milliseconds without applying a zone: naive values give their wall-clock
    reading, values with an offset their instant. Returns the milliseconds (null where a
    value does not parse), whether each carried an offset, and whether its format fixes
    the day. For differences between two times of the same row."""
    text = arr.cast(pa.string()) if not pa.types.is_string(arr.type) else arr
    combined = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    if _mostly_distinct(combined):
        parsed = parse_text(combined, None, formats)
        indices = None
    else:
        encoded = pc.dictionary_encode(combined)
        parsed = parse_text(encoded.dictionary, None, formats)
        indices = encoded.indices
    ms = pc.cast(parsed.times, pa.int64())
    aware = pa.array(parsed.aware if parsed.aware is not None else np.zeros(len(ms), bool))
    dated = pa.array(parsed.dated if parsed.dated is not None else np.zeros(len(ms), bool))
    if indices is not None:
        ms, aware, dated = (pc.take(x, indices) for x in (ms, aware, dated))
    return ms, aware, dated


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
