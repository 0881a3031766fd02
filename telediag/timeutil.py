"""Local time of day and calendar day, vectorized, for night and day measures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000


_MINUTE_MS = 60_000


def _direct_offsets(time_ms: np.ndarray, zone: str) -> np.ndarray:
    utc = pd.DatetimeIndex(np.asarray(time_ms, dtype=np.int64).astype("datetime64[ms]"))
    local = utc.tz_localize("UTC").tz_convert(zone).tz_localize(None)
    return np.asarray(local.as_unit("ms").asi8 - utc.as_unit("ms").asi8, dtype=np.int64)


def utc_offsets_ms(time_ms: np.ndarray, zone: str) -> np.ndarray | int:
    """Each instant's own UTC offset in ``zone``, in milliseconds.

    Every record gets the offset in force at its own instant (summer or winter time),
    so the answer for one record never depends on which other records are passed
    along. The conversion runs in pandas' vectorized time zone code; when the records
    span fewer minutes than there are records (a month of a busy network), the offset
    is worked out once per minute of the span and looked up, and only records in a
    minute during which the offset changes are converted one by one (still vectorized).
    """
    time_ms = np.asarray(time_ms, dtype=np.int64)
    if time_ms.size == 0 or zone == "UTC":
        return 0
    minute = np.floor_divide(time_ms, _MINUTE_MS)
    lo = int(minute.min())
    span = int(minute.max()) - lo + 1
    if span > time_ms.size:
        return _direct_offsets(time_ms, zone)
    grid = (lo + np.arange(span, dtype=np.int64)) * _MINUTE_MS
    at_start = _direct_offsets(grid, zone)
    at_end = _direct_offsets(grid + (_MINUTE_MS - 1), zone)
    where = minute - lo
    out = at_start[where]
    changing = at_start != at_end
    if changing.any():
        inside = changing[where]
        out[inside] = _direct_offsets(time_ms[inside], zone)
    return out


@dataclass(frozen=True)
class LocalClock:
    """Reads epoch milliseconds in one time zone (the scan's ``tz``)."""

    zone: str = "UTC"

    def _offsets(self, time_ms: np.ndarray) -> np.ndarray | int:
        return utc_offsets_ms(time_ms, self.zone)

    def day(self, time_ms: np.ndarray) -> np.ndarray:
        """Local calendar day number (days since 1970-01-01 local)."""
        return np.floor_divide(time_ms + self._offsets(time_ms), _DAY_MS)

    def hour(self, time_ms: np.ndarray) -> np.ndarray:
        """Local hour of day, 0-23."""
        return np.floor_divide(np.mod(time_ms + self._offsets(time_ms), _DAY_MS), _HOUR_MS)
