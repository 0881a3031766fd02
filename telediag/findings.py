"""Step 5: findings and their evidence, as tables.

Turns the candidates that passed a rule's thresholds into rows of the contract's
findings table (section 2): stable ids, the subscriber, the evidence span, charge,
confidence and a summary with the measured numbers; plus the evidence table
(finding_id -> record_id).
"""

from __future__ import annotations

import hashlib
import json
import math
import string
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from telediag.catalog import Rule
from telediag.chunks import take_rows
from telediag.detectors import segments as sg
from telediag.detectors.base import Candidates
from telediag.sort import SortedRecords
from telediag.timeutil import LocalClock

#: Columns of the findings table in order: the contract's first, then telediag's own.
FINDING_COLUMNS: tuple[str, ...] = (
    "finding_id",
    "rule_id",
    "root_cause",
    "msisdn",
    "first_seen",
    "last_seen",
    "record_count",
    "charge",
    "confidence",
    "summary",
    "finding_key",
    "rule_version",
    "rule_name",
    "category",
    "group",
    "handset_model",
    "charge_advice",
    "measures",
    "record_ids",
)
EVIDENCE_COLUMNS: tuple[str, ...] = ("finding_id", "record_id", "start_time", "record_type")

_TIME = pa.timestamp("ms", tz="UTC")
#: Arrow type of each findings column that is not text.
_FINDING_TYPES: dict[str, pa.DataType] = {
    "first_seen": _TIME,
    "last_seen": _TIME,
    "record_count": pa.int64(),
    "charge": pa.float64(),
    "confidence": pa.float64(),
    "rule_version": pa.int64(),
    "record_ids": pa.list_(pa.string()),
}
#: Arrow schema of a written findings table, the same whether or not anything was found.
FINDINGS_SCHEMA: pa.Schema = pa.schema(
    [(name, _FINDING_TYPES.get(name, pa.string())) for name in FINDING_COLUMNS]
)
#: Arrow schema of a written evidence table.
EVIDENCE_SCHEMA: pa.Schema = pa.schema(
    [
        ("finding_id", pa.string()),
        ("record_id", pa.string()),
        ("start_time", _TIME),
        ("record_type", pa.string()),
    ]
)


def empty_findings() -> pd.DataFrame:
    """A findings table with no rows and the right column types."""
    return _EMPTY_FINDINGS.copy()


def _empty_findings() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "finding_id": pd.Series(dtype="string"),
            "rule_id": pd.Series(dtype="string"),
            "root_cause": pd.Series(dtype="string"),
            "msisdn": pd.Series(dtype="string"),
            "first_seen": pd.Series(dtype="datetime64[ms, UTC]"),
            "last_seen": pd.Series(dtype="datetime64[ms, UTC]"),
            "record_count": pd.Series(dtype="int64"),
            "charge": pd.Series(dtype="float64"),
            "confidence": pd.Series(dtype="float64"),
            "summary": pd.Series(dtype="string"),
            "finding_key": pd.Series(dtype="string"),
            "rule_version": pd.Series(dtype="int64"),
            "rule_name": pd.Series(dtype="string"),
            "category": pd.Series(dtype="string"),
            "group": pd.Series(dtype="string"),
            "handset_model": pd.Series(dtype="string"),
            "charge_advice": pd.Series(dtype="string"),
            "measures": pd.Series(dtype="string"),
            "record_ids": pd.Series(dtype="object"),
        }
    )


_EMPTY_FINDINGS = _empty_findings()
_TEXT_COLUMNS = [str(c) for c, t in _EMPTY_FINDINGS.dtypes.items() if t == "string"]


def empty_evidence() -> pd.DataFrame:
    """An evidence table with no rows."""
    return pd.DataFrame(
        {
            "finding_id": pd.Series(dtype="string"),
            "record_id": pd.Series(dtype="string"),
            "start_time": pd.Series(dtype="datetime64[ms, UTC]"),
            "record_type": pd.Series(dtype="string"),
        }
    )


class _LenientFormatter(string.Formatter):
    """Formats a summary; a value that cannot take its format shows as ``n/a``."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "n/a"
        if not format_spec and isinstance(value, float) and value.is_integer():
            value = int(value)  # a count measured as a float still reads "7", not "7.0"
        try:
            return super().format_field(value, format_spec)
        except (ValueError, TypeError):
            return str(value)


SUMMARY_FORMATTER = _LenientFormatter()


def plain_value(value: Any) -> Any:
    """numpy scalars to Python ones; NaN to None (JSON-ready)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _rows(frame: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """The frame's rows as dicts of plain Python values (NaN as None)."""
    cols = {c: [plain_value(v) for v in frame[c].to_numpy(dtype=object)] for c in columns}
    return [{c: cols[c][i] for c in columns} for i in range(len(frame))]


def _group_labels(cands: Candidates) -> list[str]:
    if not cands.key_columns:
        return [""] * len(cands)
    parts: list[np.ndarray] = []
    for i, dictionary in enumerate(cands.key_dicts):
        labels = np.array(dictionary.to_pylist() + ["(none)"], dtype=object)
        codes = cands.measures[f"_key{i}"].to_numpy().astype(np.int64)
        parts.append(labels[codes])
    return [" / ".join(str(p[j]) for p in parts) for j in range(len(cands))]


def handset_of_evidence(
    records: SortedRecords, cands: Candidates
) -> tuple[list[str | None], list[str | None]]:
    """The most common IMEI's model and quirks per candidate (None where unknown)."""
    from telediag.devices import lookup_handsets

    n = cands.positions.shape[0]
    if len(cands) == 0:
        return [], []
    seg = sg.segment_ids(cands.offsets[:-1], n)
    codes, dictionary = records.codes("imei", cands.positions)
    mode, _ = sg.seg_mode(codes, seg, len(cands))
    imeis = np.array(dictionary.to_pylist() + [None], dtype=object)[mode]
    frame = lookup_handsets(pa.array(list(imeis), type=pa.string()))
    models = [None if pd.isna(v) else str(v) for v in frame["model"]]
    quirks = [None if pd.isna(v) else str(v) for v in frame["quirks"]]
    return models, quirks


def handset_change_before(records: SortedRecords, cands: Candidates) -> np.ndarray:
    """Seconds from the subscriber's last handset (IMEI) or SIM (IMSI) change to each
    candidate's first record; NaN where there was none before it."""
    out = np.full(len(cands), np.nan)
    if len(cands) == 0:
        return out
    subs = cands.measures["subscriber"].to_numpy().astype(np.int64)
    firsts = cands.measures["first_ms"].to_numpy().astype(np.int64)
    bounds = records.subscriber_bounds()
    sub_at = records.subscriber[bounds[:-1]]
    wanted = np.unique(subs)
    which = np.searchsorted(sub_at, wanted)
    lo, hi = bounds[which], bounds[which + 1]
    lengths = hi - lo
    pos = np.repeat(lo - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(
        int(lengths.sum())
    )
    sub = records.subscriber[pos].astype(np.int64)
    t = records.time_ms[pos]
    change = np.zeros(pos.shape[0], dtype=bool)
    for col in ("imei", "imsi"):
        codes, _ = records.codes(col, pos)
        known = codes >= 0
        # Compare each known value with the previous known value of the same subscriber.
        idx = np.flatnonzero(known)
        if idx.size > 1:
            prev_same_sub = sub[idx[1:]] == sub[idx[:-1]]
            differs = codes[idx[1:]] != codes[idx[:-1]]
            change[idx[1:][prev_same_sub & differs]] = True
    cidx = np.flatnonzero(change)
    if cidx.size == 0:
        return out
    csub, ct = sub[cidx], t[cidx]
    # Latest change at or before each first record, same subscriber: search the
    # (subscriber, time)-ordered change list.
    t0 = int(min(ct.min(), firsts.min()))
    width = int(max(ct.max(), firsts.max())) - t0 + 1
    ckey = csub * width + (ct - t0)
    qkey = subs * width + (firsts - t0)
    j = np.searchsorted(ckey, qkey, side="right") - 1
    ok = (j >= 0) & (csub[np.maximum(j, 0)] == subs)
    out[ok] = (firsts[ok] - ct[j[ok]]) / 1000.0
    return out


def _utc_ms(time_ms: np.ndarray) -> pd.Series:
    """Epoch milliseconds as the contract's type: tz-aware UTC at millisecond resolution."""
    return pd.Series(pd.to_datetime(time_ms, unit="ms", utc=True)).astype("datetime64[ms, UTC]")


def _local_text(time_ms: np.ndarray, zone: str) -> list[str]:
    stamps = pd.DatetimeIndex(pd.to_datetime(time_ms, unit="ms", utc=True)).tz_convert(zone)
    return [str(v) for v in stamps.strftime("%Y-%m-%d %H:%M")]


#: The order of a findings table: by subscriber, then time, rule and finding id.
FINDING_ORDER: tuple[str, ...] = ("msisdn", "first_seen", "rule_id", "finding_id")


def order_findings(findings: pd.DataFrame) -> pd.DataFrame:
    """Findings in :data:`FINDING_ORDER`. Findings that share an id (the same evidence
    times seen on two handsets, say) are ordered by their evidence records' ids, so that
    the order does not depend on how a scan was split."""
    keys = list(FINDING_ORDER)
    frame = findings
    if findings["finding_id"].duplicated().any():
        records = findings["record_ids"].map(lambda ids: "\x1f".join(map(str, ids)))
        frame = findings.assign(_records=records)
        keys.append("_records")
    ordered = frame.sort_values(keys, kind="stable").reset_index(drop=True)
    return ordered.drop(columns=["_records"]) if "_records" in ordered else ordered


#: The order of an evidence table: by finding, then record time and record id.
EVIDENCE_ORDER: tuple[str, ...] = ("finding_id", "start_time", "record_id")


def order_evidence(evidence: pd.DataFrame) -> pd.DataFrame:
    """Evidence in :data:`EVIDENCE_ORDER` (stable; missing values last), with a fresh
    index. Arrow sorts the keys: on the 10M month's 395,541 evidence rows that took
    0.16 s against 0.37-0.49 s for pandas' ``sort_values`` on the two text keys."""
    keys = list(EVIDENCE_ORDER)
    if len(evidence) < 2:
        return evidence.reset_index(drop=True)
    try:
        table = pa.table({k: pa.array(evidence[k]) for k in keys})
        order = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys])
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        # Keys Arrow cannot hold as one type, or cannot sort (categories): pandas can.
        return evidence.sort_values(keys, kind="stable").reset_index(drop=True)
    return evidence.take(order.to_numpy()).reset_index(drop=True)


def _finding_digest(rule_id: str, msisdn: str, group: str, times: np.ndarray) -> str:
    """What identifies a finding whatever the row numbering: the rule, the subscriber,
    the group and the times of its evidence records (in time order).

    Record ids are left out on purpose: generated ones depend on how the input was
    split into files, and explicit ones may repeat across files.
    """
    h = hashlib.blake2b(digest_size=8)
    h.update("\x1f".join([rule_id, msisdn, group]).encode())
    h.update(np.ascontiguousarray(np.sort(times), dtype="<i8").tobytes())
    return h.hexdigest()


def finding_keys(
    rule: Rule,
    msisdn: np.ndarray,
    groups: list[str],
    first_days: list[str],
) -> list[str]:
    """Keys that name "the same finding" across reruns: a hash of the rule, its version,
    the subscriber, the group and the local day of the first evidence record.

    Unlike the finding id (a hash of the evidence ids), a key survives a late record or a
    longer period, as long as the first day of the evidence stays the same. It depends on
    nothing else, so two episodes of one group that start on the same day share it: for a
    dispute desk they are the same finding.
    """
    keys: list[str] = []
    for who, group, day in zip(msisdn, groups, first_days, strict=True):
        digest = hashlib.blake2b(
            "\x1f".join([rule.id, str(rule.version), str(who), group, day]).encode(),
            digest_size=8,
        ).hexdigest()
        keys.append(f"{rule.id}.{rule.version}-{digest}")
    return keys


def build_findings(
    rule: Rule,
    records: SortedRecords,
    cands: Candidates,
    clock: LocalClock,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Findings and evidence rows for the candidates that passed ``rule``."""
    k = len(cands)
    if k == 0:
        return empty_findings(), empty_evidence()
    m = cands.measures
    used = rule.measures_used()
    n = cands.positions.shape[0]
    starts = cands.offsets[:-1]
    seg = sg.segment_ids(starts, n)
    ids = records.record_ids(cands.positions)
    rows = records.order[cands.positions]
    times = records.time_ms[cands.positions]
    charge_all = np.nan_to_num(records.column("charge", cands.positions))
    total_charge = np.bincount(seg, weights=charge_all, minlength=k)
    first = sg.seg_min(times, starts)
    last = sg.seg_max(times, starts)
    count = np.diff(cands.offsets)
    msisdn = records.msisdn_values()[m["subscriber"].to_numpy().astype(np.int64)]
    groups = _group_labels(cands)
    models, quirks = handset_of_evidence(records, cands)
    quirk_hit = [q is not None and rule.root_cause in q.split(";") for q in quirks]
    change_s = (
        handset_change_before(records, cands)
        if "handset_change_before_s" in used
        else np.full(k, np.nan)
    )
    extra = pd.DataFrame(
        {
            "msisdn": msisdn,
            "group": groups,
            "first_seen": _utc_ms(first),
            "last_seen": _utc_ms(last),
            "record_count": count,
            "total_charge": total_charge,
            "handset_model": models,
            "handset_quirk": quirk_hit,
            "handset_change_before_s": change_s,
        }
    )
    confidence = np.full(k, rule.confidence.base)
    judged = pd.concat([m.reset_index(drop=True), extra], axis=1)
    for r in rule.confidence.raises:
        hit = np.ones(k, dtype=bool)
        for name, cond in r.when.items():
            hit &= cond.mask(judged[name])
        confidence += np.where(hit, r.add, 0.0)
    confidence = np.clip(confidence, 0.0, 1.0)

    internal = {"subscriber", "first_ms", "last_ms"}
    # The measures the rule names, whatever else the detector measured: the same set
    # whether the rule ran for a scan or (measuring everything) for an investigation.
    measure_names = [
        c for c in m.columns if not c.startswith("_") and c not in internal and c in used
    ]
    id_list = ids.to_pylist()
    evidence_ids: list[list[str]] = []
    finding_ids: list[str] = []
    summaries: list[str] = []
    measures_json: list[str] = []
    first_local = _local_text(first, clock.zone)
    last_local = _local_text(last, clock.zone)
    # Plain Python values, column by column, once: the loop below only formats text.
    measure_rows = _rows(m, measure_names)
    extra_rows = _rows(extra, [c for c in extra.columns if c not in ("first_seen", "last_seen")])
    for i in range(k):
        lo, hi = int(cands.offsets[i]), int(cands.offsets[i + 1])
        ev = id_list[lo:hi]
        evidence_ids.append(ev)
        digest = _finding_digest(rule.id, str(msisdn[i]), groups[i], times[lo:hi])
        finding_ids.append(f"{rule.id}-{digest}")
        values = {**measure_rows[i], **extra_rows[i]}
        values["first_seen"] = first_local[i]
        values["last_seen"] = last_local[i]
        values["handset_model"] = values["handset_model"] or "unknown handset"
        summaries.append(SUMMARY_FORMATTER.vformat(rule.summary, (), values))
        measures_json.append(json.dumps(measure_rows[i], sort_keys=True))
    keys = finding_keys(rule, msisdn, groups, [t[:10] for t in first_local])
    findings = pd.DataFrame(
        {
            "finding_id": finding_ids,
            "rule_id": rule.id,
            "root_cause": rule.root_cause,
            "msisdn": msisdn,
            "first_seen": extra["first_seen"],
            "last_seen": extra["last_seen"],
            "record_count": count.astype(np.int64),
            "charge": np.round(total_charge, 6),
            "confidence": np.round(confidence, 4),
            "summary": summaries,
            "finding_key": keys,
            "rule_version": np.int64(rule.version),
            "rule_name": rule.name,
            "category": rule.category.value,
            "group": groups,
            "handset_model": models,
            "charge_advice": rule.charge.advice.value,
            "measures": measures_json,
            "record_ids": evidence_ids,
        }
    )
    # Text columns as the empty table holds them, whatever the values: a column of only
    # missing values (no known handset) would otherwise be held as objects, and joining
    # findings of several buckets would then give another type than a one-piece scan.
    for name in _TEXT_COLUMNS:
        findings[name] = findings[name].astype("string")
    rtype = take_rows(records.table["record_type"], rows)
    evidence = pd.DataFrame(
        {
            "finding_id": np.repeat(np.array(finding_ids, dtype=object), count),
            "record_id": id_list,
            "start_time": _utc_ms(times),
            "record_type": pc.cast(rtype, pa.string()).to_pylist(),
        }
    )
    return findings, evidence
