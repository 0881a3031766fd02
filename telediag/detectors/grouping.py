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
    "mode_value": "the most common value of the mode_of column",
    "mode_share": "share of records carrying mode_value",
    "distinct_values": "distinct values of the mode_of column",
    "subscriber_groups": "distinct groups this subscriber has among the rule's records",
    "subscriber_share": "share of the subscriber's rule records, within the same time span, "
    "that belong to this group",
    "other_ok_count": "ok records of the same subscriber in other groups",
    "other_failed_count": "failed records of the same subscriber in other groups",
}


def measure_groups(
    ctx: DetectContext,
    positions: np.ndarray,
    group_by: list[str],
    mode_of: str | None,
    split_gap_s: float | None,
) -> Candidates:
    """Group, optionally split into bursts, and measure; see :data:`GROUP_MEASURES`."""
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
    need_status = bool(
        wanted
        & {
            "ok_count",
            "failed_count",
            "rejected_count",
            "failed_share",
            "rejected_share",
            "other_ok_count",
            "other_failed_count",
        }
    )
    status_ok = status_rej = None
    if need_status:
        scodes, sdict = rec.codes("status", positions)
        # Compare integer codes: the dictionary is tiny, the rows are many.
        status_ok = (scodes == code_of(sdict, "ok")) | (scodes < 0)
        status_rej = scodes == code_of(sdict, "rejected")

    # Subscriber-wide figures come from the whole subset, before any group is dropped.
    nsub = int(sub.max()) + 1
    sub_total_ok = np.bincount(sub, weights=status_ok, minlength=nsub) if need_status else None
    sub_total = np.bincount(sub, minlength=nsub)

    sub_subset, t_subset = sub, t  # the subset in (subscriber, time) order
    if keys:
        perm = sg.stable_group_order([sub, *keys])
        positions, sub, t = positions[perm], sub[perm], t[perm]
        keys = [k[perm] for k in keys]
        if status_ok is not None and status_rej is not None:
            status_ok, status_rej = status_ok[perm], status_rej[perm]
    group_starts = sg.starts_where_changed([sub, *keys], n)
    sub_groups = np.bincount(sub[group_starts], minlength=nsub)
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
    if wanted & {"active_days"}:
        days = ctx.clock.day(t)
        m["active_days"] = sg.seg_nunique(days - days.min(), seg, nseg)
    if "night_count" in wanted:
        night = ctx.clock.hour(t) < 6
        m["night_count"] = np.add.reduceat(night.astype(np.int64), starts)
    if mode_of is not None and wanted & {"mode_value", "mode_share", "distinct_values"}:
        codes, dictionary = rec.codes(mode_of, positions)
        mode, top = sg.seg_mode(codes, seg, nseg)
        labels = np.array(dictionary.to_pylist() + [None], dtype=object)
        m["mode_value"] = labels[mode]
        m["mode_share"] = top / count
        m["distinct_values"] = sg.seg_nunique(codes, seg, nseg)
    if "subscriber_groups" in wanted:
        m["subscriber_groups"] = sub_groups[sub[starts]]
    if "subscriber_share" in wanted:
        within = _count_between(sub_subset, t_subset, sub[starts], first, last)
        m["subscriber_share"] = count / np.maximum(within, 1)
    return Candidates(
        measures=pd.DataFrame(m),
        positions=positions,
        offsets=np.append(starts, n).astype(np.int64),
        key_columns=list(group_by),
        key_dicts=dicts,
    )


def _count_between(
    sub_sorted: np.ndarray, t_sorted: np.ndarray, sub: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """How many (sub, t) pairs of a (sub, t)-sorted subset fall within [lo, hi] per query."""
    t0 = int(t_sorted.min())
    width = int(t_sorted.max()) - t0 + 1
    key = sub_sorted.astype(np.int64) * width + (t_sorted - t0)
    base = sub.astype(np.int64) * width - t0
    return np.searchsorted(key, base + hi, side="right") - np.searchsorted(key, base + lo)
