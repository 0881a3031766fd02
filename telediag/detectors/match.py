"""Match detector: records whose values fall in a set, counted per group.

The rule's record filter does the matching (e.g. ``server_port in [9202, 9203]``); the
detector groups what matched by subscriber plus ``group_by`` and measures each group, so
a threshold such as ``count >= 2`` or ``active_days >= 5`` can judge it.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from telediag.detectors.base import Candidates, DetectContext, Detector, DetectorParams, register
from telediag.detectors.grouping import GROUP_MEASURES, measure_groups


class MatchParams(DetectorParams):
    """Parameters of the match detector."""

    group_by: list[str] = Field(
        default_factory=list, description="columns that, with the subscriber, form a group"
    )
    mode_of: str | None = Field(
        None, description="column whose most common value is reported (mode_value)"
    )
    evidence_from_first_rejection: bool = Field(
        False,
        description="a group's evidence starts at its first rejected record (what came "
        "before is not evidence)",
    )

    def columns(self) -> set[str]:
        return set(self.group_by) | ({self.mode_of} if self.mode_of else set())


class MatchDetector(Detector):
    """Matching records per group, with counts, days, status mix and charge."""

    kind = "match"
    Params = MatchParams
    MEASURES: ClassVar[dict[str, str]] = dict(GROUP_MEASURES)

    def detect(self, ctx: DetectContext, positions: np.ndarray, params: MatchParams) -> Candidates:
        return measure_groups(
            ctx,
            positions,
            params.group_by,
            params.mode_of,
            None,
            evidence_from_first_rejection=params.evidence_from_first_rejection,
        )


register(MatchDetector())
