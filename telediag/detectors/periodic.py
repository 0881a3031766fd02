"""Periodicity detector: records of one group arriving on a schedule.

For each group (subscriber plus ``group_by``, e.g. the server address) it estimates the
period as the median gap and counts a gap as regular when it is close to a whole multiple
of the period (up to ``max_multiple``), so a few missed polls do not break the pattern
and a few extra records only cost their own gaps. It also measures how constant the
volume is, and how much of the series falls at night.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numpy as np
from pydantic import Field

from telediag.detectors import segments as sg
from telediag.detectors.base import Candidates, DetectContext, Detector, DetectorParams, register
from telediag.detectors.grouping import measure_groups


class PeriodicParams(DetectorParams):
    """Parameters of the periodicity detector."""

    group_by: list[str] = Field(
        default_factory=list, description="columns that, with the subscriber, form a group"
    )
    volume: list[str] = Field(
        default_factory=list, description="columns summed per record as its volume"
    )
    tolerance: float = Field(
        0.2,
        gt=0,
        lt=0.5,
        description="a gap is on schedule within this fraction of a period of a multiple of it",
    )
    max_multiple: int = Field(
        3, ge=1, description="gaps of up to this many periods still count (missed records)"
    )
    volume_tolerance: float = Field(
        0.25, gt=0, description="a volume is typical within this fraction of the median"
    )

    def columns(self) -> set[str]:
        return set(self.group_by) | set(self.volume)


class PeriodicDetector(Detector):
    """Inter-arrival regularity and volume spread per group."""

    kind = "periodic"
    Params = PeriodicParams
    MEASURES: ClassVar[dict[str, str]] = {
        "count": "records in the group",
        "span_s": "seconds from the first record to the last",
        "period_s": "estimated period: the median gap in seconds",
        "regular_share": "share of gaps within tolerance of 1..max_multiple periods",
        "volume_median": "median volume per record (sum of the volume columns)",
        "volume_share": "share of records whose volume is within volume_tolerance of the median",
        "active_days": "distinct local calendar days with a record",
        "night_count": "records between 00:00 and 05:59 local time",
        "night_share": "night_count / count",
        "charge": "total charge of the records",
        "subscriber_groups": "distinct groups this subscriber has among the rule's records",
    }

    def detect(
        self, ctx: DetectContext, positions: np.ndarray, params: PeriodicParams
    ) -> Candidates:
        inner = replace(ctx, wanted=set(ctx.wanted) | {"active_days", "night_count"})
        cands = measure_groups(inner, positions, params.group_by, None, None)
        if len(cands) == 0:
            return Candidates.empty(list(self.MEASURES))
        rec = ctx.records
        n = cands.positions.shape[0]
        starts = cands.offsets[:-1]
        nseg = len(cands)
        seg = sg.segment_ids(starts, n)
        gaps = sg.gaps_within(rec.time_ms[cands.positions], seg)
        m = cands.measures
        positive = np.where(gaps > 0, gaps, np.nan)
        period = sg.seg_median(positive, seg, nseg)
        m["period_s"] = period
        ratio = gaps / period[seg]
        k = np.rint(ratio)
        with np.errstate(invalid="ignore"):
            regular = (
                (k >= 1) & (k <= params.max_multiple) & (np.abs(ratio - k) <= params.tolerance)
            )
        has_gap = ~np.isnan(gaps)
        ngaps = np.bincount(seg[has_gap], minlength=nseg)
        nreg = np.bincount(seg[regular & has_gap], minlength=nseg)
        with np.errstate(divide="ignore", invalid="ignore"):
            m["regular_share"] = np.where(ngaps > 0, nreg / ngaps, np.nan)
        if params.volume:
            volume = np.zeros(n)
            for col in params.volume:
                volume += np.nan_to_num(rec.column(col, cands.positions))
            med = sg.seg_median(volume, seg, nseg)
            near = np.abs(volume - med[seg]) <= params.volume_tolerance * np.maximum(med[seg], 1)
            m["volume_median"] = med
            m["volume_share"] = np.bincount(seg[near], minlength=nseg) / m["count"].to_numpy()
        else:
            m["volume_median"] = np.nan
            m["volume_share"] = np.nan
        m["night_share"] = m["night_count"] / m["count"]
        return cands


register(PeriodicDetector())
