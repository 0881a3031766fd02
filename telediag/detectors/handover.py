"""Hand-over detector: a message that failed under one SIM, re-sent under the next SIM.

Follows a handset (IMEI) across subscribers. What identifies a re-send is the new SIM's
arrival on the handset, not the time since the failure: the failure may be weeks old
(the number was suspended and the customer found another SIM later), but the handset
retries its outbox at the first chance under the new SIM.

Every record that carries the handset's IMEI is cut into *stints*: runs of consecutive
records (in time order) of one subscriber on that handset. A stint's start is that SIM's
arrival on the handset. A candidate is a successful record of the rule's kind in a stint
that is not the handset's first; it is *matched* when the record just before it with the
same handset and message key (e.g. recipient and size) is a failed one of another
subscriber. Its evidence is that run of failed records plus the successful one, and it
belongs to the new subscriber, who was charged. Unmatched candidates (failed_count 0)
are measured too, so that an investigation can say which condition failed.

Only records carrying the IMEI are read, so the findings are the same on any table that
holds every row of the handsets involved (a scan split by IMEI gives the same answer).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from telediag.detectors import segments as sg
from telediag.detectors.base import (
    Candidates,
    DetectContext,
    Detector,
    DetectorParams,
    register,
)
from telediag.sort import SortedRecords, code_of


class HandoverParams(DetectorParams):
    """Parameters of the hand-over detector."""

    match_on: list[str] = Field(
        default_factory=lambda: ["peer_number"],
        description="columns that must match between the failed original and the re-send",
    )

    def columns(self) -> set[str]:
        return {"imei", "status", *self.match_on}


class HandoverDetector(Detector):
    """A failed record under one subscriber, then the same record under the next SIM."""

    kind = "handover"
    Params = HandoverParams
    FOLLOWS_HANDSET = True
    NO_CANDIDATE: ClassVar[str] = (
        "none went out successfully under a SIM that came to a handset (IMEI) after "
        "another subscriber had one fail there, so none can be a re-send under a new SIM"
    )
    MEASURES: ClassVar[dict[str, str]] = {
        "count": "records in the evidence: the failed originals and the re-send",
        "failed_count": "failed originals of the same message key under another subscriber "
        "on the same handset, just before the re-send (0: none)",
        "delay_s": "seconds from the last failed original to the re-send",
        "after_arrival_s": "seconds from the new SIM's arrival on the handset (its first "
        "record there after the failure; unmatched: of its current stint) to the re-send",
        "resend_rank": "place of the re-send among the new SIM's records of the rule's kind "
        "on the handset since that arrival (1 = the first)",
        "previous_msisdn": "the subscriber of the failed originals (unmatched: the "
        "subscriber on the handset before the new SIM)",
        "charge": "charge of the re-send",
    }

    #: A candidate needs a failed record of the rule's kind on the handset, and records
    #: of that kind there from two subscribers (the old SIM's and the new one's).
    SEED_MINIMUMS: ClassVar[Mapping[str, int]] = {"failed": 1, "subscribers": 2}
    #: ... and so a record of that kind there whose status is given and is not ok.
    SEED_RECORDS: ClassVar[Mapping[str, Any] | None] = {"status": {"not_in": ["ok"]}}

    def seeds(self, ctx: DetectContext, positions: np.ndarray, params: HandoverParams) -> pa.Table:
        """Every handset with a record of the rule's kind here: its failed records of that
        kind and the subscribers with one. A subscriber's records all lie in one part of
        the records, so the parts' counts add up to the month's."""
        imei, imei_dict, ok = self._handsets_and_outcome(ctx.records, positions)
        known = imei >= 0
        codes = imei[known].astype(np.int64)
        subs = ctx.records.subscriber[positions][known].astype(np.int64)
        width = int(subs.max()) + 1 if subs.size else 1
        # One entry per (handset, subscriber) pair, the handset read back from the key.
        pairs = np.unique(codes * width + subs) // width
        subscribers = np.bincount(pairs, minlength=len(imei_dict))
        failed = np.bincount(codes[~ok[known]], minlength=len(imei_dict))
        present = np.flatnonzero(subscribers)
        return pa.table(
            {
                "key": imei_dict.take(pa.array(present)).cast(pa.string()),
                "failed": pa.array(failed[present], pa.int64()),
                "subscribers": pa.array(subscribers[present], pa.int64()),
            }
        )

    @staticmethod
    def _handsets_and_outcome(
        rec: SortedRecords, positions: np.ndarray
    ) -> tuple[np.ndarray, pa.Array, np.ndarray]:
        """IMEI codes (-1: none) and their dictionary, and whether each record went out
        (a record of no status counts as gone out)."""
        imei, imei_dict = rec.codes("imei", positions)
        scodes, sdict = rec.codes("status", positions)
        ok = (scodes == code_of(sdict, "ok")) | (scodes < 0)
        return imei, imei_dict, ok

    def detect(
        self, ctx: DetectContext, positions: np.ndarray, params: HandoverParams
    ) -> Candidates:
        rec = ctx.records
        empty = Candidates.empty(list(self.MEASURES))
        if positions.size < 2:
            return empty
        # Handsets worth following: a failed record of the rule's kind, and records of
        # the rule's kind from at least two subscribers.
        imei, imei_dict, ok = self._handsets_and_outcome(rec, positions)
        sub = rec.subscriber[positions].astype(np.int64)
        known = imei >= 0
        failed_on = np.unique(imei[known & ~ok])
        pairs = np.unique(np.stack([imei[known], sub[known]]), axis=1)
        hs, n_subs = np.unique(pairs[0], return_counts=True)
        wanted = np.intersect1d(failed_on, hs[n_subs >= 2])
        if wanted.size == 0:
            return empty
        # Every record carrying one of these IMEIs, whatever its kind: the stints.
        values = imei_dict.take(pa.array(wanted))
        on_rows = np.asarray(
            pc.fill_null(pc.is_in(rec.table["imei"], value_set=values), False).to_numpy(
                zero_copy_only=False
            ),
            dtype=bool,
        )
        allpos = rec.positions_of(on_rows)
        h_all, _ = rec.codes("imei", allpos)
        s_all = rec.subscriber[allpos].astype(np.int64)
        t_all = rec.time_ms[allpos]
        by_handset = np.lexsort([s_all, t_all, h_all])
        h_o, s_o, t_o = h_all[by_handset], s_all[by_handset], t_all[by_handset]
        n_all = allpos.size
        stint_starts = sg.starts_where_changed([h_o, s_o], n_all)
        stint_o = sg.segment_ids(stint_starts, n_all)
        first_stint = sg.starts_where_changed([h_o], n_all)
        is_first_stint = np.zeros(stint_starts.size, dtype=bool)
        is_first_stint[stint_o[first_stint]] = True
        prev_sub = np.full(stint_starts.size, -1, dtype=np.int64)
        prev_sub[1:] = s_o[stint_starts[1:] - 1]
        stint_of = np.empty(n_all, dtype=np.int64)
        stint_of[by_handset] = stint_o

        # The rule's records on those handsets, with their stint.
        keep = np.isin(positions, allpos)
        positions, ok, sub = positions[keep], ok[keep], sub[keep]
        where = np.searchsorted(allpos, positions)
        stint = stint_of[where]
        hcode = h_all[where].astype(np.int64)
        t = rec.time_ms[positions]
        arrive = t_o[stint_starts][stint]
        # Rank within the stint, in time order.
        by_stint = np.lexsort([t, stint])
        rank = np.empty(positions.size, dtype=np.int64)
        st_sorted = stint[by_stint]
        run_first = sg.starts_where_changed([st_sorted], st_sorted.size)
        rank[by_stint] = np.arange(st_sorted.size) - np.repeat(
            run_first, sg.counts(run_first, st_sorted.size)
        )
        rank += 1

        keys = [hcode]
        dicts = []
        for col in params.match_on:
            codes, dictionary = rec.codes(col, positions)
            keys.append(codes.astype(np.int64))
            dicts.append(dictionary)
        order = np.lexsort([t, *reversed(keys)])
        positions, t, ok, sub = positions[order], t[order], ok[order], sub[order]
        stint, arrive, rank = stint[order], arrive[order], rank[order]
        keys = [k[order] for k in keys]
        n = positions.size
        group = sg.segment_ids(sg.starts_where_changed(keys, n), n)
        run_starts = sg.starts_where_changed([group, sub, ok.astype(np.int64)], n)
        run = sg.segment_ids(run_starts, n)

        cand = np.flatnonzero(ok & ~is_first_stint[stint])
        if cand.size == 0:
            return empty
        prev = cand - 1
        has_prev = prev >= 0
        p = np.maximum(prev, 0)
        matched = (
            has_prev
            & (group[p] == group[cand])
            & ~ok[p]
            & (sub[p] != sub[cand])
            & (t[p] < arrive[cand])
        )
        # A matched re-send is measured from the new SIM's first arrival on the handset
        # after the failure (SIMs may go back and forth), counting its records since then.
        arrive_c, rank_c = arrive[cand].copy(), rank[cand].copy()
        if matched.any():
            since = _since_arrival(
                h_o, s_o, t_o, stint_starts, keys[0], sub, t, cand[matched], t[p[matched]]
            )
            arrive_c[matched], rank_c[matched] = since
        first = np.where(matched, run_starts[run[p]], cand)
        lengths = cand - first + 1
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        idx = np.repeat(first - offsets[:-1], lengths) + np.arange(int(lengths.sum()))
        charge = rec.column("charge", positions[cand])
        msisdns = np.append(rec.msisdn_values(), np.array([None], dtype=object))
        previous = np.where(matched, sub[p], prev_sub[stint[cand]])
        measures = pd.DataFrame(
            {
                "subscriber": sub[cand],
                "first_ms": t[first],
                "last_ms": t[cand],
                "count": lengths,
                "failed_count": lengths - 1,
                "delay_s": np.where(matched, (t[cand] - t[p]) / 1000.0, np.nan),
                "after_arrival_s": (t[cand] - arrive_c) / 1000.0,
                "resend_rank": rank_c,
                "previous_msisdn": msisdns[previous],
                "charge": np.nan_to_num(charge),
                **{f"_key{i}": keys[i + 1][cand] for i in range(len(params.match_on))},
            }
        )
        return Candidates(
            measures=measures,
            positions=positions[idx],
            offsets=offsets,
            key_columns=list(params.match_on),
            key_dicts=dicts,
        )


def _since_arrival(
    h_o: np.ndarray,
    s_o: np.ndarray,
    t_o: np.ndarray,
    stint_starts: np.ndarray,
    hcode: np.ndarray,
    sub: np.ndarray,
    t: np.ndarray,
    which: np.ndarray,
    after: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For the rule's records at ``which``: the start of their subscriber's first stint on
    the handset after time ``after``, and their place among that subscriber's rule records
    on the handset from then on (1 = the first).

    ``h_o``/``s_o``/``t_o`` are every record on the handsets in (handset, time) order with
    ``stint_starts``; ``hcode``/``sub``/``t`` are the rule's records.
    """
    st_h, st_s, st_t = h_o[stint_starts], s_o[stint_starts], t_o[stint_starts]
    pairs = np.stack([np.concatenate([st_h, hcode]), np.concatenate([st_s, sub])])
    _, pair = np.unique(pairs, axis=1, return_inverse=True)
    pair = pair.ravel().astype(np.int64)
    st_pair, rec_pair = pair[: st_h.size], pair[st_h.size :]
    t0 = int(min(st_t.min(), t.min()))
    width = int(max(st_t.max(), t.max())) - t0 + 2
    st_key = np.sort(st_pair * width + (st_t - t0))
    rec_key = np.sort(rec_pair * width + (t - t0))
    base = rec_pair[which] * width - t0
    # The first stint of the pair that starts after the failure (it exists: the re-send
    # itself lies in a stint of that subscriber after the failure).
    arrival = st_key[np.searchsorted(st_key, base + after, side="right")] - base
    place = np.searchsorted(rec_key, base + t[which], side="right") - np.searchsorted(
        rec_key, base + arrival, side="left"
    )
    return arrival, place


register(HandoverDetector())
