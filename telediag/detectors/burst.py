"""Burst detector: many records of one group close together in time.

Records are grouped (subscriber plus ``group_by``) and cut into bursts wherever two
consecutive records are more than ``split_gap`` apart. Each burst reports its size, its
gaps, and how uniform a chosen column is (e.g. SMS length).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from telediag.detectors import segments as sg
from telediag.detectors.base import (
    Candidates,
    DetectContext,
    Detector,
    DetectorParams,
    Duration,
    register,
)
from telediag.detectors.grouping import GROUP_MEASURES, measure_groups


class BurstParams(DetectorParams):
    """Parameters of the burst detector."""

    group_by: list[str] = Field(
        default_factory=list, description="columns that, with the subscriber, form a group"
    )
    split_gap: Duration = Field(
        1800.0, description="seconds; a longer pause between records starts a new burst"
    )
    mode_of: str | None = Field(
        None, description="column whose uniformity is measured (mode_value, mode_share)"
    )

    def columns(self) -> set[str]:
        return set(self.group_by) | ({self.mode_of} if self.mode_of else set())


class BurstDetector(Detector):
    """Records per group within bursts, gap statistics and uniformity."""

    kind = "burst"
    Params = BurstParams
    MEASURES: ClassVar[dict[str, str]] = {
        **GROUP_MEASURES,
        "median_gap_s": "median seconds between consecutive records of the burst",
        "min_gap_s": "smallest gap in seconds",
        "max_gap_s": "largest gap in seconds",
        "gap_cv": "spread of the gaps: standard deviation / mean",
    }

    def detect(self, ctx: DetectContext, positions: np.ndarray, params: BurstParams) -> Candidates:
        cands = measure_groups(ctx, positions, params.group_by, params.mode_of, params.split_gap)
        n = cands.positions.shape[0]
        if len(cands) == 0:
            return Candidates.empty(list(self.MEASURES))
        starts = cands.offsets[:-1]
        seg = sg.segment_ids(starts, n)
        gaps = sg.gaps_within(ctx.records.time_ms[cands.positions], seg)
        nseg = len(cands)
        filled = np.nan_to_num(gaps, nan=0.0)
        has_gap = cands.measures["count"].to_numpy() > 1
        big = np.where(np.isnan(gaps), -np.inf, gaps)
        small = np.where(np.isnan(gaps), np.inf, gaps)
        m = cands.measures
        m["median_gap_s"] = sg.seg_median(gaps, seg, nseg)
        m["max_gap_s"] = np.where(has_gap, sg.seg_max(big, starts), np.nan)
        m["min_gap_s"] = np.where(has_gap, sg.seg_min(small, starts), np.nan)
        ngaps = np.maximum(m["count"].to_numpy() - 1, 1)
        mean = np.add.reduceat(filled, starts) / ngaps
        sq = np.add.reduceat(filled**2, starts) / ngaps
        std = np.sqrt(np.maximum(sq - mean**2, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            m["gap_cv"] = np.where(has_gap & (mean > 0), std / mean, np.nan)
        return cands


register(BurstDetector())
