"""Local time of day and calendar day, vectorized, for night and day measures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000


@dataclass(frozen=True)
class LocalClock:
    """Reads epoch milliseconds in one time zone (the scan's ``tz``)."""

    zone: str = "UTC"

    def _offsets(self, time_ms: np.ndarray) -> np.ndarray | int:
        if time_ms.size == 0 or self.zone == "UTC":
            return 0
        stamps = pd.DatetimeIndex(pd.to_datetime(time_ms, unit="ms", utc=True)).tz_convert(
            self.zone
        )
        lo, hi = stamps.min(), stamps.max()
        off_lo, off_hi = lo.utcoffset(), hi.utcoffset()
        if off_lo == off_hi and off_lo is not None:
            return int(off_lo.total_seconds() * 1000)
        # The span crosses an offset change: ask per element (still vectorized).
        local_naive = stamps.tz_localize(None)
        return np.asarray(
            (local_naive.asi8 // 1_000_000)
            - (stamps.tz_convert("UTC").tz_localize(None).asi8 // 1_000_000)
        )

    def day(self, time_ms: np.ndarray) -> np.ndarray:
        """Local calendar day number (days since 1970-01-01 local)."""
        return np.floor_divide(time_ms + self._offsets(time_ms), _DAY_MS)

    def hour(self, time_ms: np.ndarray) -> np.ndarray:
        """Local hour of day, 0-23."""
        return np.floor_divide(np.mod(time_ms + self._offsets(time_ms), _DAY_MS), _HOUR_MS)
