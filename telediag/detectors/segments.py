"""Vectorized per-segment arithmetic.

A *segment* is a run of consecutive positions that belong together (one subscriber, one
subscriber and peer, one burst). Every reduction here works on all segments at once with
``np.*.reduceat`` or a single sort, never with a Python loop over segments.
"""

from __future__ import annotations

import numpy as np


def stable_group_order(keys: list[np.ndarray]) -> np.ndarray:
    """Positions that bring equal keys together while keeping the current order within them.

    The current order is (subscriber, time), so grouping by (subscriber, peer) this way
    leaves every group in time order. Keys are non-negative-shifted integer codes.
    """
    n = keys[0].shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    widths = [max(1, int(k.max() - k.min() + 1).bit_length()) for k in keys]
    if sum(widths) <= 62:
        packed = np.zeros(n, dtype=np.int64)
        for key, width in zip(keys, widths, strict=True):
            packed = (packed << width) | (key.astype(np.int64) - int(key.min()))
        return np.argsort(packed, kind="stable")
    return np.lexsort([np.arange(n), *reversed(keys)])


def starts_where_changed(keys: list[np.ndarray], n: int) -> np.ndarray:
    """Indices where any key differs from the previous element (0 always starts)."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(change).astype(np.int64)


def segment_ids(starts: np.ndarray, n: int) -> np.ndarray:
    """Segment number of every element."""
    marks = np.zeros(n, dtype=np.int64)
    if n:
        marks[starts] = 1
    return np.cumsum(marks) - 1


def counts(starts: np.ndarray, n: int) -> np.ndarray:
    """Elements per segment."""
    return np.diff(np.append(starts, n)).astype(np.int64)


def seg_sum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum per segment; NaN counts as 0."""
    if starts.size == 0:
        return np.zeros(0)
    return np.add.reduceat(np.nan_to_num(values.astype(np.float64)), starts)


def seg_min(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Minimum per segment."""
    return np.minimum.reduceat(values, starts) if starts.size else values[:0]


def seg_max(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Maximum per segment."""
    return np.maximum.reduceat(values, starts) if starts.size else values[:0]


def seg_median(values: np.ndarray, seg: np.ndarray, nseg: int) -> np.ndarray:
    """Median per segment of ``values`` (NaN ignored); NaN where a segment has none."""
    keep = ~np.isnan(values)
    v, s = values[keep], seg[keep]
    out = np.full(nseg, np.nan)
    if v.size == 0:
        return out
    order = np.lexsort((v, s))
    v, s = v[order], s[order]
    starts = starts_where_changed([s], s.size)
    n = counts(starts, s.size)
    lo = v[starts + (n - 1) // 2]
    hi = v[starts + n // 2]
    out[s[starts]] = (lo + hi) / 2.0
    return out


def _pair_counts(seg: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (segment, code) pairs with their counts, sorted by segment then code."""
    shifted = codes.astype(np.int64) + 1  # null (-1) becomes 0
    bits = max(1, int(shifted.max()).bit_length())
    packed = (seg.astype(np.int64) << bits) | shifted
    uniq, freq = np.unique(packed, return_counts=True)
    return uniq >> bits, (uniq & ((1 << bits) - 1)) - 1, freq


def seg_mode(codes: np.ndarray, seg: np.ndarray, nseg: int) -> tuple[np.ndarray, np.ndarray]:
    """Most frequent code per segment and its count (ties: the smallest code).

    Null codes (-1) are counted as a value of their own, so a segment of nulls has mode -1.
    """
    mode = np.full(nseg, -1, dtype=np.int64)
    top = np.zeros(nseg, dtype=np.int64)
    if codes.size == 0:
        return mode, top
    useg, ucode, freq = _pair_counts(seg, codes)
    order = np.lexsort((ucode, -freq, useg))
    useg, ucode, freq = useg[order], ucode[order], freq[order]
    first = starts_where_changed([useg], useg.size)
    mode[useg[first]] = ucode[first]
    top[useg[first]] = freq[first]
    return mode, top


def seg_nunique(codes: np.ndarray, seg: np.ndarray, nseg: int) -> np.ndarray:
    """Distinct non-null codes per segment."""
    keep = codes >= 0
    if not keep.any():
        return np.zeros(nseg, dtype=np.int64)
    useg, _, _ = _pair_counts(seg[keep], codes[keep])
    return np.bincount(useg, minlength=nseg).astype(np.int64)


def gaps_within(time_ms: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Seconds since the previous element of the same segment; NaN for a segment's first."""
    gaps = np.full(time_ms.shape[0], np.nan)
    if time_ms.size > 1:
        same = seg[1:] == seg[:-1]
        diff = (time_ms[1:] - time_ms[:-1]) / 1000.0
        gaps[1:] = np.where(same, diff, np.nan)
    return gaps
