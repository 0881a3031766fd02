"""The measurements shared by the burst and match detectors.

Records are grouped by subscriber plus the rule's ``group_by`` columns, optionally cut
into bursts where the gap between consecutive records exceeds ``split_gap``, and every
group or burst is measured at once with segment reductions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from telediag.detectors import segments as sg
from telediag.detectors.base import Candidates, DetectContext
from telediag.sort import code_of

#: Measures both detectors report (the burst detector adds its gap measures).
GROUP_MEASURES: dict[str, str] = {
    "count": "records in the group (or burst)",
    "span_s": "seconds from the first record to the last",
    "charge": "total charge of the records",
    "ok_count": "records with status ok (or no status)",
    "failed_count": "records whose status is anything but ok",
    "rejected_count": "records with status rejected",
    "failed_share": "failed_count / count",
    "rejected_share": "rejected_count / count",
    "active_days": "distinct local calendar days with a record",
    "night_count": "records between 00:00 and 05:59 local time",
    "mode_value": "the most common known value of the mode_of column",
    "mode_share": "share of records carrying mode_value (empty when no value is known)",
    "distinct_values": "distinct values of the mode_of column",
    "subscriber_groups": "distinct groups this subscriber has among the rule's records",
    "subscriber_share": "share of the subscriber's rule records, within the same time span, "
    "that belong to this group",
    "other_ok_count": "ok records of the same subscriber in other groups",
    "other_failed_count": "failed records of the same subscriber in other groups",
    "day_share": "active_days / local calendar days from the first record's day to the "
    "last's (1 = a record every day of the span)",
    "longest_day_run": "most consecutive local calendar days that each have a record",
    "rejected_since_first_share": "share of the group's records rejected, counted from its "
    "first rejected record on (empty when none was rejected)",
    "others_in_period": "the subscriber's rule records in other groups from the group's "
    "first rejected record to its last record (empty when none was rejected)",
    "others_failed_share": "share of the other groups (e.g. senders) with records in that "
    "period whose records there mostly failed (empty when there are none)",
}


#: Measures of the rejection period (from a sender's first rejection on).
PERIOD_MEASURES = frozenset(
    {"rejected_since_first_share", "others_in_period", "others_failed_share"}
)
#: Measures that read the status column.
STATUS_MEASURES = frozenset(
    {
        "ok_count",
        "failed_count",
        "rejected_count",
        "failed_share",
        "rejected_share",
        "other_ok_count",
        "other_failed_count",
        *PERIOD_MEASURES,
    }
)


def measure_groups(
    ctx: DetectContext,
    positions: np.ndarray,
    group_by: list[str],
    mode_of: str | None,
    split_gap_s: float | None,
    evidence_from_first_rejection: bool = False,
) -> Candidates:
    """Group, optionally split into bursts, and measure; see :data:`GROUP_MEASURES`.

    With ``evidence_from_first_rejection`` a group's evidence (and so its finding's span)
    starts at its first rejected record: what came before it is not evidence of a block.
    """
    rec = ctx.records
    n = positions.shape[0]
    if n == 0:
        return Candidates.empty(list(GROUP_MEASURES))
    sub = rec.subscriber[positions].astype(np.int64)
    t = rec.time_ms[positions]
    keys: list[np.ndarray] = []
    dicts: list[pa.Array] = []
    for col in group_by:
        codes, dictionary = rec.codes(col, positions)
        keys.append(codes)
        dicts.append(dictionary)
    wanted = ctx.wanted
    need_status = bool(wanted & STATUS_MEASURES) or evidence_from_first_rejection
    status_ok = status_rej = None
    if need_status:
        scodes, sdict = rec.codes("status", positions)
        # Compare integer codes: the dictionary is tiny, the rows are many.
        status_ok = (scodes == code_of(sdict, "ok")) | (scodes < 0)
        status_rej = scodes == code_of(sdict, "rejected")

    # Subscriber-wide figures come from the whole subset, before any group is dropped.
    nsub = int(sub.max()) + 1
    sub_total_ok = (
        np.bincount(sub[status_ok], minlength=nsub)
        if need_status and status_ok is not None
        else None
    )
    sub_total = np.bincount(sub, minlength=nsub)

    sub_subset, t_subset = sub, t  # the subset in (subscriber, time) order
    ok_subset = status_ok
    if keys:
        perm = sg.stable_group_order([sub, *keys])
        positions, sub, t = positions[perm], sub[perm], t[perm]
        keys = [k[perm] for k in keys]
        if status_ok is not None and status_rej is not None:
            status_ok, status_rej = status_ok[perm], status_rej[perm]
    group_starts = sg.starts_where_changed([sub, *keys], n)
    sub_groups = np.bincount(sub[group_starts], minlength=nsub)
    # The key group of every record, in grouped order and in the subset's own order.
    kgroup = sg.segment_ids(group_starts, n)
    kgroup_subset = kgroup
    if keys:
        kgroup_subset = np.empty(n, dtype=np.int64)
        kgroup_subset[perm] = kgroup
    starts = group_starts
    if split_gap_s is not None:
        cut = np.zeros(n, dtype=bool)
        cut[group_starts] = True
        cut[1:] |= (t[1:] - t[:-1]) > split_gap_s * 1000.0
        starts = np.flatnonzero(cut).astype(np.int64)

    count = sg.counts(starts, n)
    if ctx.min_count > 1:
        keep_seg = count >= ctx.min_count
        if not keep_seg.all():
            elem_keep = np.repeat(keep_seg, count)
            positions, sub, t = positions[elem_keep], sub[elem_keep], t[elem_keep]
            keys = [k[elem_keep] for k in keys]
            kgroup = kgroup[elem_keep]
            if status_ok is not None and status_rej is not None:
                status_ok, status_rej = status_ok[elem_keep], status_rej[elem_keep]
            count = count[keep_seg]
            starts = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
            n = positions.shape[0]
    if n == 0:
        return Candidates.empty(list(GROUP_MEASURES))
    nseg = starts.shape[0]
    seg = sg.segment_ids(starts, n)
    first = t[starts]
    last = sg.seg_max(t, starts)
    m: dict[str, np.ndarray] = {
        "subscriber": sub[starts],
        "first_ms": first,
        "last_ms": last,
        "count": count,
        "span_s": (last - first) / 1000.0,
    }
    for i, k in enumerate(keys):
        m[f"_key{i}"] = k[starts]
    if "charge" in wanted:
        m["charge"] = sg.seg_sum(rec.column("charge", positions), starts)
    if status_ok is not None and status_rej is not None:
        ok = np.add.reduceat(status_ok.astype(np.int64), starts)
        m["ok_count"] = ok
        m["failed_count"] = count - ok
        m["rejected_count"] = np.add.reduceat(status_rej.astype(np.int64), starts)
        m["failed_share"] = (count - ok) / count
        m["rejected_share"] = m["rejected_count"] / count
        seg_sub = sub[starts]
        assert sub_total_ok is not None
        m["other_ok_count"] = sub_total_ok[seg_sub] - ok
        other_total = sub_total[seg_sub] - count
        m["other_failed_count"] = other_total - m["other_ok_count"]
    if wanted & {"active_days", "day_share", "longest_day_run"}:
        days = ctx.clock.day(t)
        m["active_days"] = sg.seg_nunique(days - days.min(), seg, nseg)
        if wanted & {"day_share", "longest_day_run"}:
            m.update(_day_rhythm(days, seg, starts, nseg, m["active_days"]))
    if status_ok is not None and status_rej is not None and wanted & PERIOD_MEASURES:
        assert ok_subset is not None
        m.update(
            _rejection_period(
                t, status_ok, status_rej, starts, count, last, sub[starts], kgroup[starts],
                sub_subset, t_subset, ok_subset, kgroup_subset,
            )
        )  # fmt: skip
    if "night_count" in wanted:
        night = ctx.clock.hour(t) < 6
        m["night_count"] = np.add.reduceat(night.astype(np.int64), starts)
    if mode_of is not None and wanted & {"mode_value", "mode_share", "distinct_values"}:
        codes, dictionary = rec.codes(mode_of, positions)
        # Unknown values are not alike: the mode is taken over known values, and its share
        # is of all records (n/a when none is known).
        known = codes >= 0
        mode, top = sg.seg_mode(codes[known], seg[known], nseg)
        labels = np.array(dictionary.to_pylist() + [None], dtype=object)
        m["mode_value"] = labels[mode]
        m["mode_share"] = np.where(top > 0, top / count, np.nan)
        m["distinct_values"] = sg.seg_nunique(codes, seg, nseg)
    if "subscriber_groups" in wanted:
        m["subscriber_groups"] = sub_groups[sub[starts]]
    if "subscriber_share" in wanted:
        within = _count_between(sub_subset, t_subset, sub[starts], first, last)
        m["subscriber_share"] = count / np.maximum(within, 1)
    offsets = np.append(starts, n).astype(np.int64)
    if evidence_from_first_rejection and status_rej is not None:
        ends = offsets[1:]
        first_rej = np.minimum.reduceat(np.where(status_rej, np.arange(n), n), starts)
        begin = np.where(first_rej < ends, first_rej, starts)
        lengths = ends - begin
        new_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        take = np.repeat(begin - new_offsets[:-1], lengths) + np.arange(int(lengths.sum()))
        positions, offsets = positions[take], new_offsets
        m["first_ms"] = t[begin]
    return Candidates(
        measures=pd.DataFrame(m),
        positions=positions,
        offsets=offsets,
        key_columns=list(group_by),
        key_dicts=dicts,
    )


def _day_rhythm(
    days: np.ndarray, seg: np.ndarray, starts: np.ndarray, nseg: int, active: np.ndarray
) -> dict[str, np.ndarray]:
    """Share of the span's days that have a record, and the longest run of such days.

    Records are in time order within each segment, so their local days never decrease.
    """
    n = days.shape[0]
    ends = np.append(starts[1:], n) - 1
    span_days = days[ends] - days[starts] + 1
    new_day = np.ones(n, dtype=bool)
    new_day[1:] = (seg[1:] != seg[:-1]) | (days[1:] != days[:-1])
    d, s = days[new_day], seg[new_day]
    # A run of consecutive days breaks at a new segment or a day skipped.
    breaks = np.ones(d.shape[0], dtype=bool)
    breaks[1:] = (s[1:] != s[:-1]) | (d[1:] - d[:-1] > 1)
    run_starts = np.flatnonzero(breaks)
    run_len = sg.counts(run_starts, d.shape[0])
    longest = np.zeros(nseg, dtype=np.int64)
    np.maximum.at(longest, s[run_starts], run_len)
    return {"day_share": active / span_days, "longest_day_run": longest}


def _rejection_period(
    t: np.ndarray,
    ok: np.ndarray,
    rejected: np.ndarray,
    starts: np.ndarray,
    count: np.ndarray,
    last: np.ndarray,
    seg_sub: np.ndarray,
    seg_group: np.ndarray,
    sub_all: np.ndarray,
    t_all: np.ndarray,
    ok_all: np.ndarray,
    group_all: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per segment, over its period from its first rejected record to its last record:
    the share of its own records rejected; how many of the subscriber's records in other
    groups fall in the period; and the share of those other groups (senders) whose
    records there mostly failed.

    Senders, not records: a customer who blocked two senders has each one's rejections
    among the other's "others", while every person's MMS got through; a full memory makes
    most senders fail. ``t``/``ok``/``rejected`` are the grouped records (segments at
    ``starts``, key group ``seg_group``); ``*_all`` are all of the rule's records in
    (subscriber, time) order with their key group.
    """
    n = t.shape[0]
    ends = starts + count
    first_rej = np.minimum.reduceat(np.where(rejected, np.arange(n), n), starts)
    has = first_rej < ends
    at_first = np.minimum(first_rej, n - 1)
    since = np.where(has, ends - first_rej, 0)
    rejected_count = np.add.reduceat(rejected.astype(np.int64), starts)
    lo = np.where(has, t[at_first], last)
    # The subscriber's records within each period (only segments with a rejection).
    q = np.flatnonzero(has)
    a, b = _range_between(sub_all, t_all, seg_sub[q], lo[q], last[q])
    lengths = b - a
    pair_q = np.repeat(np.arange(q.size), lengths)
    elem = np.repeat(a - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(
        int(lengths.sum())
    )
    other = group_all[elem] != seg_group[q][pair_q]
    pair_q, elem = pair_q[other], elem[other]
    others = np.full(starts.shape[0], np.nan)
    others[q] = np.bincount(pair_q, minlength=q.size)
    share = np.full(starts.shape[0], np.nan)
    if elem.size:
        key = pair_q.astype(np.int64) * (int(group_all.max()) + 1) + group_all[elem]
        uniq, inverse = np.unique(key, return_inverse=True)
        total = np.bincount(inverse)
        failed = np.bincount(inverse, weights=~ok_all[elem])
        sender_q = uniq // (int(group_all.max()) + 1)
        n_senders = np.bincount(sender_q, minlength=q.size)
        n_failing = np.bincount(sender_q, weights=2 * failed > total, minlength=q.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            share[q] = np.where(n_senders > 0, n_failing / np.maximum(n_senders, 1), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        own_share = np.where(has, rejected_count / np.maximum(since, 1), np.nan)
    return {
        "rejected_since_first_share": own_share,
        "others_in_period": others.astype(np.int64) if has.all() else others,
        "others_failed_share": share,
    }


def _range_between(
    sub_sorted: np.ndarray, t_sorted: np.ndarray, sub: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Index range [a, b) of the (sub, t)-sorted pairs with that sub and t in [lo, hi]."""
    if t_sorted.size == 0 or sub.size == 0:
        z = np.zeros(sub.shape[0], dtype=np.int64)
        return z, z
    t0, t1 = int(t_sorted.min()), int(t_sorted.max())
    width = t1 - t0 + 1
    key = sub_sorted.astype(np.int64) * width + (t_sorted - t0)
    base = sub.astype(np.int64) * width - t0
    lo_c, hi_c = np.clip(lo, t0, t1), np.clip(hi, t0, t1)
    a = np.searchsorted(key, base + lo_c, side="left")
    b = np.searchsorted(key, base + hi_c, side="right")
    inside = (hi >= t0) & (lo <= t1)
    return np.where(inside, a, 0), np.where(inside, np.maximum(b, a), 0)


def _count_between(
    sub_sorted: np.ndarray, t_sorted: np.ndarray, sub: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """How many (sub, t) pairs of a (sub, t)-sorted subset fall within [lo, hi] per query."""
    if t_sorted.size == 0:
        return np.zeros(sub.shape[0], dtype=np.int64)
    t0, t1 = int(t_sorted.min()), int(t_sorted.max())
    width = t1 - t0 + 1
    key = sub_sorted.astype(np.int64) * width + (t_sorted - t0)
    base = sub.astype(np.int64) * width - t0
    # Bounds outside the subset's time range would spill into a neighbour's keys: clip.
    inside = (hi >= t0) & (lo <= t1)
    lo_c, hi_c = np.clip(lo, t0, t1), np.clip(hi, t0, t1)
    found = np.searchsorted(key, base + hi_c, side="right") - np.searchsorted(key, base + lo_c)
    return np.where(inside, found, 0)
