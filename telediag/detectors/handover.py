"""Hand-over detector: the same message re-sent from one handset under a new subscriber.

Follows a handset (IMEI) across subscribers. Records are ordered by handset, message key
(e.g. recipient and size) and time; a candidate is a successful record whose immediate
predecessor for the same handset and key is a failed record of a *different* subscriber,
no more than ``max_delay`` earlier. Its evidence is that run of failed records plus the
successful one; the candidate belongs to the new subscriber, who was charged.

This is the only detector that looks across subscribers: its rules must see every
subscriber who used the handset (the engine does; a split scan may not).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
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
from telediag.sort import code_of


class HandoverParams(DetectorParams):
    """Parameters of the hand-over detector."""

    match_on: list[str] = Field(
        default_factory=lambda: ["peer_number"],
        description="columns that must match between the failed original and the re-send",
    )
    max_delay: Duration = Field(
        30 * 86400.0, description="seconds; the re-send must follow the failure within this"
    )

    def columns(self) -> set[str]:
        return {"imei", "status", *self.match_on}


class HandoverDetector(Detector):
    """A failed record under one subscriber, then the same record under another."""

    kind = "handover"
    Params = HandoverParams
    MEASURES: ClassVar[dict[str, str]] = {
        "count": "records in the evidence: the failed originals and the re-send",
        "failed_count": "failed originals under the previous subscriber",
        "delay_s": "seconds from the last failed original to the re-send",
        "previous_msisdn": "the subscriber the failed originals belonged to",
        "charge": "charge of the re-send",
    }

    def detect(
        self, ctx: DetectContext, positions: np.ndarray, params: HandoverParams
    ) -> Candidates:
        rec = ctx.records
        empty = Candidates.empty(list(self.MEASURES))
        if positions.size == 0:
            return empty
        imei, _ = rec.codes("imei", positions)
        keep = imei >= 0
        positions, imei = positions[keep], imei[keep]
        if positions.size < 2:
            return empty
        keys = [imei.astype(np.int64)]
        dicts = []
        for col in params.match_on:
            codes, dictionary = rec.codes(col, positions)
            keys.append(codes.astype(np.int64))
            dicts.append(dictionary)
        t = rec.time_ms[positions]
        order = np.lexsort([t, *reversed(keys)])
        positions, t = positions[order], t[order]
        keys = [k[order] for k in keys]
        sub = rec.subscriber[positions].astype(np.int64)
        scodes, sdict = rec.codes("status", positions)
        ok = (scodes == code_of(sdict, "ok")) | (scodes < 0)
        n = positions.size
        group = sg.segment_ids(sg.starts_where_changed(keys, n), n)
        # A run: consecutive records of one group, one subscriber and one outcome.
        run_starts = sg.starts_where_changed([group, sub, ok.astype(np.int64)], n)
        run = sg.segment_ids(run_starts, n)
        j = np.arange(1, n)
        i = j - 1
        hit = (
            (group[i] == group[j])
            & ~ok[i]
            & ok[j]
            & (sub[i] != sub[j])
            & ((t[j] - t[i]) <= params.max_delay * 1000.0)
        )
        resend = j[hit]
        if resend.size == 0:
            return empty
        first = run_starts[run[resend - 1]]
        lengths = resend - first + 1
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        idx = np.repeat(first - offsets[:-1], lengths) + np.arange(int(lengths.sum()))
        charge = rec.column("charge", positions[resend])
        msisdns = rec.msisdn_values()
        measures = pd.DataFrame(
            {
                "subscriber": sub[resend],
                "first_ms": t[first],
                "last_ms": t[resend],
                "count": lengths,
                "failed_count": lengths - 1,
                "delay_s": (t[resend] - t[resend - 1]) / 1000.0,
                "previous_msisdn": msisdns[sub[resend - 1]],
                "charge": np.nan_to_num(charge),
                **{f"_key{n_}": keys[n_ + 1][resend] for n_ in range(len(params.match_on))},
            }
        )
        return Candidates(
            measures=measures,
            positions=positions[idx],
            offsets=offsets,
            key_columns=list(params.match_on),
            key_dicts=dicts,
        )


register(HandoverDetector())
