"""Investigate one dispute: what happened to this subscriber, why, and what to do.

``investigate()`` reads only the subscriber's records (and those of the handsets they
used), runs every rule with full measurements, and builds an :class:`Investigation`:
the period at a glance, each finding with its evidence and the numbers against the
thresholds, the hypotheses ruled out and why, explanations for the customer, charge
advice from the operator policy, and handling deadlines.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from telediag.catalog import ChargeAdvice, RecordFilter, Rule, catalog_version
from telediag.chunks import plain_table
from telediag.colmap import ColumnMap
from telediag.context import ScanSettings
from telediag.detectors import REGISTRY
from telediag.detectors.grouping import STATUS_MEASURES
from telediag.engine import RuleOutcome, run_rule
from telediag.errors import InputError
from telediag.filters import FilterEvaluator
from telediag.findings import SUMMARY_FORMATTER, plain_value
from telediag.normalize import InputReport, normalize
from telediag.policy import Policy, load_policy
from telediag.read import Sources, SubscriberFilter, read_input
from telediag.scan import _resolve_rules
from telediag.sort import SortedRecords, sort_records

if TYPE_CHECKING:
    from telediag.numbers import HomeCountry


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Period(_Model):
    """The time window investigated (inclusive start, exclusive end) and its zone."""

    start: dt.datetime | None
    end: dt.datetime | None
    tz: str
    first_record: dt.datetime | None
    last_record: dt.datetime | None


class TypeTotal(_Model):
    """Records and charge of one record type and direction."""

    record_type: str
    direction: str
    records: int
    charge: float


class DayTotal(_Model):
    """Records and charge of one record type on one local day."""

    day: dt.date
    record_type: str
    records: int
    charge: float


class Handset(_Model):
    """A handset the subscriber used."""

    imei: str
    model: str | None
    bands: str | None
    quirks: list[str]
    first_seen: dt.datetime
    last_seen: dt.datetime
    records: int
    other_numbers: list[str] = Field(
        default_factory=list, description="other subscribers seen on this handset"
    )


class Change(_Model):
    """A change seen in the records: of handset (IMEI), of SIM (IMSI), or of the number
    using one of the subscriber's handsets (``number``: ``before`` used it until ``time``,
    then ``after``)."""

    time: dt.datetime
    kind: Literal["handset", "sim", "number"]
    before: str
    after: str


class Overview(_Model):
    """The subscriber's period at a glance."""

    records: int
    charge: float
    by_type: list[TypeTotal]
    by_day: list[DayTotal]
    handsets: list[Handset]
    changes: list[Change]


class Check(_Model):
    """One measured value against one threshold."""

    measure: str
    value: float | str | bool | None
    condition: str
    passed: bool


class EvidenceRecord(_Model):
    """One record behind a finding, with the fields an investigator reads first."""

    record_id: str
    start_time: dt.datetime
    record_type: str
    direction: str
    peer_number: str | None
    status: str | None
    charge: float | None
    detail: str


class Explanation(_Model):
    """What to tell the customer, in English and Chinese."""

    en: str
    zh: str


class InvestigatedFinding(_Model):
    """A finding for this subscriber with everything needed to act on it."""

    rank: int
    finding_id: str
    finding_key: str = Field(
        description="the same finding across reruns: rule, rule version, subscriber, group "
        "and first day (the finding_id changes with the evidence)"
    )
    rule_id: str
    rule_version: int
    group: str = Field(description="the group's key values, e.g. the recipient or server")
    rule_name: str
    root_cause: str
    title: str
    detector_kind: str
    confidence: float
    first_seen: dt.datetime
    last_seen: dt.datetime
    record_count: int
    charge: float
    summary: str
    evidence: list[str]
    evidence_records: list[EvidenceRecord]
    checks: list[Check]
    measures: dict[str, Any]
    handset_model: str | None
    cause: str
    remedy: str
    charge_advice: ChargeAdvice
    charge_text: str
    explanation: Explanation


class FilterCheck(_Model):
    """How many of the subscriber's records of the rule's kind pass one condition of the
    rule's record filter."""

    column: str = Field(description="the column tested, or any_of / not for a sub-filter")
    condition: str
    records: int = Field(description="the subscriber's records of the rule's kind")
    passing: int = Field(description="how many of them pass this condition")


class RuledOut(_Model):
    """A rule that looks at this subscriber's kinds of records but did not fire."""

    rule_id: str
    rule_name: str
    root_cause: str
    reason: str
    records_considered: int
    checks: list[Check]
    basis: Literal["thresholds", "filter", "detector", "no_records"] = Field(
        "thresholds",
        description="what failed: a threshold on the closest candidate's measures (see "
        "checks), a condition of the record filter (see filters), the detector's own "
        "condition (no candidate among records that pass the filter), or no records of "
        "the kind at all",
    )
    filters: list[FilterCheck] = Field(default_factory=list)


class CouldNotCheck(_Model):
    """A rule the records cannot test for this subscriber: a column it needs is missing
    or empty on all of the subscriber's records of its kind. Not a clean bill."""

    rule_id: str
    rule_name: str
    root_cause: str
    columns: list[str] = Field(description="the missing or all-empty column(s)")
    records_considered: int
    reason: str


class Deadlines(_Model):
    """Handling deadlines counted in working days from the complaint date."""

    complaint_date: dt.date
    acknowledge_by: dt.date
    investigate_by: dt.date
    resolve_by: dt.date


class Investigation(_Model):
    """Everything telediag can say about one subscriber's dispute."""

    msisdn: str
    period: Period
    overview: Overview
    findings: list[InvestigatedFinding]
    ruled_out: list[RuledOut]
    could_not_check: list[CouldNotCheck] = Field(
        default_factory=list,
        description="hypotheses the records cannot test (a needed column missing or empty)",
    )
    deadlines: Deadlines | None
    input: dict[str, Any]
    rule_errors: list[str] = Field(default_factory=list)
    telediag_version: str
    catalog_version: str = Field(description="the rules the findings came from (digest)")

    _records: pd.DataFrame | None = PrivateAttr(default=None)

    @property
    def records(self) -> pd.DataFrame:
        """The subscriber's records in the period (for plots and notebooks)."""
        return self._records if self._records is not None else pd.DataFrame()

    def findings_frame(self) -> pd.DataFrame:
        """The findings as a DataFrame (one row each, evidence ids as a list)."""
        cols = [
            "rank",
            "rule_id",
            "root_cause",
            "confidence",
            "first_seen",
            "last_seen",
            "record_count",
            "charge",
            "charge_advice",
            "summary",
            "evidence",
        ]
        return pd.DataFrame([f.model_dump(include=set(cols)) for f in self.findings], columns=cols)

    def render(self, fmt: str = "text") -> str:
        """The report as text, md, html or json."""
        from telediag.views import report

        return report.render(self, fmt)

    def _repr_html_(self) -> str:
        from telediag.views import report

        return report.render(self, "html", standalone=False)


def _plain(v: Any) -> Any:
    """A measure as plain Python (see findings.plain_value), counts shown as integers."""
    v = plain_value(v)
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def _checks(rule: Rule, measures: dict[str, Any]) -> list[Check]:
    out = []
    for name, cond in rule.thresholds.items():
        value = _plain(measures.get(name))
        out.append(
            Check(
                measure=name,
                value=value,
                condition=cond.describe(),
                passed=bool(cond.holds(value)),
            )
        )
    return out


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def _to_local(ts: pd.Timestamp, tz: str) -> dt.datetime:
    return pd.Timestamp(ts).tz_convert(tz).to_pydatetime()


def _parse_when(
    value: str | dt.date | dt.datetime | None,
    tz: str,
    *,
    day_after: bool = False,
    what: str = "date",
) -> pd.Timestamp | None:
    """A period bound as a UTC instant. A bare date means its local midnight, or with
    ``day_after`` the next calendar day's (so an inclusive end day covers 23, 24 or 25
    hours, as that day has). A local time that does not exist (a midnight skipped by the
    spring change, as in Sao Paulo on 2018-11-04) moves forward to the first one that
    does; one that occurs twice counts from its first occurrence. ``what`` names the
    bound in messages (``start``, or the CLI's ``--from``)."""
    if value is None:
        return None
    bare_day = (isinstance(value, dt.date) and not isinstance(value, dt.datetime)) or (
        isinstance(value, str) and len(value.strip()) <= 10
    )
    try:
        parsed = pd.Timestamp(value.strip() if isinstance(value, str) else value)
    except (ValueError, TypeError, OverflowError, pd.errors.OutOfBoundsDatetime):
        parsed = None
    if parsed is None or parsed is pd.NaT:
        raise InputError(
            f"cannot read {what} {value!r}: use YYYY-MM-DD, between {_FIRST_DAY} and {_LAST_DAY}"
        ) from None
    stamp: pd.Timestamp = parsed
    if not (_FIRST_DAY <= stamp.strftime("%Y-%m-%d") <= _LAST_DAY):
        raise InputError(
            f"{what} {value!r} is out of range: give a date between {_FIRST_DAY} and {_LAST_DAY}"
        )
    if bare_day and day_after:
        stamp = stamp + pd.DateOffset(days=1)
    if stamp.tzinfo is not None:
        return stamp.tz_convert("UTC")
    return stamp.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")


#: Period bounds accepted: well inside what nanosecond timestamps hold in any zone.
_FIRST_DAY, _LAST_DAY = "1900-01-01", "2200-12-31"


def check_bound(value: str | None, option: str) -> None:
    """A one-line InputError naming ``option`` when ``value`` is no date in the range."""
    _parse_when(value, "UTC", what=option)


def _parse_day(value: str | dt.date, what: str) -> dt.date:
    """A calendar date given as ``YYYY-MM-DD`` (or a date), else a one-line InputError."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(f"cannot read {what} {value!r}: use YYYY-MM-DD") from None


def _with_set_aside(report: InputReport, aside: dict[str, int]) -> InputReport:
    """``report`` with more rows read and set aside (reasons in the contract's order)."""
    from telediag.buckets import sum_reports

    extra = InputReport(files=[], rows_read=sum(aside.values()), rows_used=0, set_aside=aside)
    total = sum_reports([report, extra])
    return replace(report, rows_read=total.rows_read, set_aside=total.set_aside)


def investigate(
    source: Sources,
    msisdn: str,
    start: str | dt.date | dt.datetime | None = None,
    end: str | dt.date | dt.datetime | None = None,
    complaint_date: str | dt.date | None = None,
    *,
    rules: list[Rule] | str | Path | None = None,
    tz: str | None = None,
    column_map: ColumnMap | str | Path | None = None,
    policy: Policy | str | Path | None = None,
    home: HomeCountry | None = None,
) -> Investigation:
    """Investigate one subscriber's dispute.

    Reads only the subscriber's records and those of the handsets they used. ``start``
    and ``end`` (dates or times, local to ``tz``) limit the period; ``end`` is exclusive
    and a bare date means the whole day. ``complaint_date`` sets the handling deadlines.
    """
    from telediag import __version__
    from telediag.scan import CONTRACT_COLUMNS
    from telediag.store import store_path, store_zone, subscriber_input

    store = store_path(source)
    zone = store_zone(store, tz) if store is not None else (tz or "UTC")
    # Everything the caller typed is checked before any record is read.
    complaint_day = None if complaint_date is None else _parse_day(complaint_date, "complaint date")
    lo = _parse_when(start, zone, what="start")
    hi = _parse_when(end, zone, day_after=True, what="end")
    settings = ScanSettings(tz=zone) if home is None else ScanSettings(zone, home)
    chosen = _resolve_rules(rules, None, None)
    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    msisdn = str(msisdn).strip()
    stored_aside: dict[str, int] = {}
    if store is not None:  # a prepared month: the subscriber's bucket, a few row groups
        raw, stored_aside = subscriber_input(store, msisdn)
    else:
        raw = read_input(
            source,
            column_map=column_map,
            columns=set(CONTRACT_COLUMNS),
            only=SubscriberFilter(msisdn),
            tz=zone,
        )
    normalized = normalize(raw, tz=zone)
    if stored_aside:  # rows the store set aside when it was prepared count as read here
        normalized.report = _with_set_aside(normalized.report, stored_aside)
    report = normalized.report.to_dict()
    in_period = normalized
    if lo is not None or hi is not None:
        times = np.asarray(
            pc.fill_null(normalized.table["start_time"].cast(pa.int64()), 0).to_numpy(
                zero_copy_only=False
            ),
            dtype=np.int64,
        )
        keep = np.ones(len(times), dtype=bool)
        if lo is not None:
            keep &= times >= lo.value // 1_000_000
        if hi is not None:
            keep &= times < hi.value // 1_000_000
        # Rows outside the period are not set aside (they break no rule of the
        # contract): they are counted apart, and normalized.rejects() stays as it was.
        in_period = replace(normalized, valid=normalized.valid & keep)
        report["rows_used"] = int(in_period.valid.sum())
        report["rows_outside_period"] = int((normalized.valid & ~keep).sum())
    records = sort_records(in_period)
    sub_codes = np.flatnonzero(np.asarray(records.msisdns.to_pylist(), dtype=object) == msisdn)
    if sub_codes.size == 0:
        raise InputError(f"no records of subscriber {msisdn} in the input and period given")
    code = int(sub_codes[0])

    evaluator = FilterEvaluator(records.table, settings, normalized.encoded)
    findings: list[InvestigatedFinding] = []
    ruled_out: list[RuledOut] = []
    unchecked: list[CouldNotCheck] = []
    errors: list[str] = []
    own = records.subscriber == code
    evidence_positions: set[int] = set()
    own_types = set(
        np.asarray(records.table["record_type"].take(pa.array(records.order[own])).to_pylist())
    )
    for rule in chosen:
        try:
            outcome = run_rule(rule, records, evaluator, settings, keep_all=True)
            mine = outcome.findings[outcome.findings["msisdn"] == msisdn]
            if len(mine):
                entries, positions = _finding_entries(rule, outcome, mine, records, pol, settings)
                findings.extend(entries)
                evidence_positions.update(positions)
            elif _applies(rule, own_types):
                why = _why_not(rule, outcome, records, evaluator, code, settings)
                blind = _could_not_check(rule, records, evaluator, code, why)
                if blind is not None:
                    unchecked.append(blind)
                else:
                    ruled_out.append(why)
        except Exception as exc:  # a broken rule is reported, the others stand
            errors.append(f"{rule.id}: {type(exc).__name__}: {exc}")
    findings.sort(key=lambda f: (-f.confidence, -f.charge, f.first_seen, f.rule_id))
    for i, f in enumerate(findings, start=1):
        f.rank = i

    deadlines = None
    if complaint_day is not None:
        due = pol.deadlines.due(complaint_day)
        deadlines = Deadlines(
            complaint_date=complaint_day,
            acknowledge_by=due["acknowledge"],
            investigate_by=due["investigate"],
            resolve_by=due["resolve"],
        )
    everything = _records_frame(records, zone)
    mine_rows = everything["msisdn"] == msisdn
    frame = everything[mine_rows].reset_index(drop=True)
    inv = Investigation(
        msisdn=msisdn,
        period=Period(
            start=None if lo is None else _to_local(lo, zone),
            end=None if hi is None else _to_local(hi, zone),
            tz=zone,
            first_record=None if frame.empty else frame["start_time"].min().to_pydatetime(),
            last_record=None if frame.empty else frame["start_time"].max().to_pydatetime(),
        ),
        overview=_overview(frame, everything, msisdn),
        findings=findings,
        ruled_out=ruled_out,
        could_not_check=unchecked,
        deadlines=deadlines,
        input=report,
        rule_errors=errors,
        telediag_version=__version__,
        catalog_version=catalog_version(chosen),
    )
    # The records to show: the subscriber's, plus other subscribers' records that are
    # evidence (a failed MMS sent from the same handset under the previous SIM).
    # Matched by sorted position, never by id: ids may repeat across files.
    is_evidence = everything["_position"].isin(evidence_positions)
    shown = everything[mine_rows | is_evidence].copy()
    shown["evidence"] = is_evidence[mine_rows | is_evidence]
    shown["own"] = shown["msisdn"] == msisdn
    inv._records = shown.drop(columns=["_position"]).reset_index(drop=True)
    return inv


def _applies(rule: Rule, own_types: set[str]) -> bool:
    """Does the rule look at kinds of records this subscriber has?"""
    cond = rule.records.where.get("record_type")
    if cond is None or (cond.in_ is None and cond.equals is None):
        return True
    types = {str(v) for v in (cond.in_ if cond.in_ is not None else [cond.equals])}
    return bool(types & own_types)


def _records_frame(records: SortedRecords, zone: str) -> pd.DataFrame:
    """Every usable record read (the subscriber's and their handsets'), in time order."""
    positions = np.arange(len(records))
    positions = positions[np.argsort(records.time_ms, kind="stable")]
    rows = pa.array(records.order[positions])
    cols = [
        "msisdn",
        "record_type",
        "direction",
        "start_time",
        "duration_s",
        "peer_number",
        "status",
        "charge",
        "imei",
        "imsi",
        "sms_length",
        "server_ip",
        "server_port",
        "app_protocol",
        "bytes_up",
        "bytes_down",
        "mms_event",
        "mms_size",
        "visited_mcc",
    ]
    table = records.table.select(cols).take(rows)
    frame = plain_table(table).to_pandas()
    frame.insert(0, "record_id", records.record_ids(positions).to_pylist())
    frame["_position"] = positions
    frame["start_time"] = frame["start_time"].dt.tz_convert(zone)
    return frame


def _overview(frame: pd.DataFrame, everything: pd.DataFrame, msisdn: str) -> Overview:
    """The subscriber's totals, handsets and changes; ``everything`` adds the other
    numbers seen on the same handsets."""
    from telediag.devices import lookup_handsets

    if frame.empty:
        return Overview(records=0, charge=0.0, by_type=[], by_day=[], handsets=[], changes=[])
    charge = frame["charge"].fillna(0.0)
    by_type = (
        frame.assign(charge=charge)
        .groupby(["record_type", "direction"], sort=True)
        .agg(records=("record_id", "size"), charge=("charge", "sum"))
        .reset_index()
    )
    day = frame["start_time"].dt.date
    by_day = (
        frame.assign(charge=charge, day=day)
        .groupby(["day", "record_type"], sort=True)
        .agg(records=("record_id", "size"), charge=("charge", "sum"))
        .reset_index()
    )
    handsets: list[Handset] = []
    used = frame.dropna(subset=["imei"])
    if len(used):
        agg = (
            used.groupby("imei", sort=False)
            .agg(first=("start_time", "min"), last=("start_time", "max"), n=("record_id", "size"))
            .sort_values("first")
        )
        info = lookup_handsets(pa.array(list(agg.index), type=pa.string()))
        for (imei, row), (_, hs) in zip(agg.iterrows(), info.iterrows(), strict=True):
            quirks = [] if pd.isna(hs["quirks"]) else str(hs["quirks"]).split(";")
            handsets.append(
                Handset(
                    imei=str(imei),
                    model=None if pd.isna(hs["model"]) else str(hs["model"]),
                    bands=None if pd.isna(hs["bands"]) else str(hs["bands"]),
                    quirks=quirks,
                    first_seen=row["first"].to_pydatetime(),
                    last_seen=row["last"].to_pydatetime(),
                    records=int(row["n"]),
                    other_numbers=sorted(
                        set(everything.loc[everything["imei"] == imei, "msisdn"]) - {msisdn}
                    ),
                )
            )
    changes: list[Change] = []
    kinds: tuple[tuple[str, Literal["handset", "sim", "number"]], ...] = (
        ("imei", "handset"),
        ("imsi", "sim"),
    )
    for col, kind in kinds:
        seen = frame.dropna(subset=[col])
        values = seen[col].astype(str).to_numpy()
        if len(values) < 2:
            continue
        idx = np.flatnonzero(values[1:] != values[:-1]) + 1
        for i in idx:
            changes.append(
                Change(
                    time=seen["start_time"].iloc[i].to_pydatetime(),
                    kind=kind,
                    before=str(values[i - 1]),
                    after=str(values[i]),
                )
            )
    changes.extend(_number_changes(everything, [h.imei for h in handsets]))
    changes.sort(key=lambda c: (c.time, c.kind))
    return Overview(
        records=len(frame),
        charge=round(float(charge.sum()), 6),
        by_type=[
            TypeTotal.model_validate(r) for r in by_type.round({"charge": 6}).to_dict("records")
        ],
        by_day=[DayTotal.model_validate(r) for r in by_day.round({"charge": 6}).to_dict("records")],
        handsets=handsets,
        changes=changes,
    )


def _number_changes(everything: pd.DataFrame, imeis: list[str]) -> list[Change]:
    """When one of the subscriber's handsets passed from one number to another."""
    out: list[Change] = []
    for imei in imeis:
        on = everything[everything["imei"] == imei]
        numbers = on["msisdn"].astype(str).to_numpy()
        for i in np.flatnonzero(numbers[1:] != numbers[:-1]) + 1:
            out.append(
                Change(
                    time=on["start_time"].iloc[i].to_pydatetime(),
                    kind="number",
                    before=str(numbers[i - 1]),
                    after=str(numbers[i]),
                )
            )
    return out


def _detail(row: pd.Series) -> str:
    rt = row["record_type"]
    parts: list[str] = []
    if rt in ("voice", "csd") and pd.notna(row.get("duration_s")):
        parts.append(f"{row['duration_s']:.0f} s")
    if rt == "sms" and pd.notna(row.get("sms_length")):
        parts.append(f"{int(row['sms_length'])} chars")
        if pd.notna(row.get("sms_class")):
            parts.append(f"class {int(row['sms_class'])}")
    if rt == "mms":
        if pd.notna(row.get("mms_event")):
            parts.append(str(row["mms_event"]))
        if pd.notna(row.get("mms_size")):
            parts.append(f"{int(row['mms_size'])} bytes")
    if rt == "data":
        if pd.notna(row.get("server_ip")):
            port = "" if pd.isna(row.get("server_port")) else f":{int(row['server_port'])}"
            parts.append(f"{row['server_ip']}{port}")
        if pd.notna(row.get("app_protocol")):
            parts.append(str(row["app_protocol"]))
        vol = np.nansum([row.get("bytes_up", np.nan), row.get("bytes_down", np.nan)])
        if vol:
            parts.append(f"{vol:.0f} bytes")
    if pd.notna(row.get("visited_mcc")):
        parts.append(f"MCC {int(row['visited_mcc'])}")
    if pd.notna(row.get("imei")):
        parts.append(f"IMEI {row['imei']}")
    return ", ".join(parts)


def _evidence_records(
    records: SortedRecords, positions: np.ndarray, zone: str
) -> list[EvidenceRecord]:
    """The evidence records at these sorted positions (ids may repeat; positions do not)."""
    ids = records.record_ids(positions).to_pylist()
    table = plain_table(records.table.take(pa.array(records.order[positions]))).to_pandas()
    out = []
    for rid, (_, row) in zip(ids, table.iterrows(), strict=True):
        out.append(
            EvidenceRecord(
                record_id=rid,
                start_time=pd.Timestamp(row["start_time"]).tz_convert(zone).to_pydatetime(),
                record_type=str(row["record_type"]),
                direction=str(row["direction"]),
                peer_number=None if pd.isna(row["peer_number"]) else str(row["peer_number"]),
                status=None if pd.isna(row["status"]) else str(row["status"]),
                charge=None if pd.isna(row["charge"]) else float(row["charge"]),
                detail=_detail(row),
            )
        )
    return out


def _finding_entries(
    rule: Rule,
    outcome: RuleOutcome,
    mine: pd.DataFrame,
    records: SortedRecords,
    policy: Policy,
    settings: ScanSettings,
) -> tuple[list[InvestigatedFinding], list[int]]:
    """The subscriber's findings of one rule, and the sorted positions of their evidence."""
    import json

    from telediag.findings import handset_change_before, handset_of_evidence

    out = []
    all_positions: list[int] = []
    formatter = SUMMARY_FORMATTER
    offsets = outcome.survivors.offsets
    # The finding fields the findings table does not hold, for the explanations.
    _, quirks = handset_of_evidence(records, outcome.survivors)
    quirk_hit = [q is not None and rule.root_cause in q.split(";") for q in quirks]
    change_s = handset_change_before(records, outcome.survivors)
    for row in mine.itertuples():
        r: Any = row
        # The column holds NaN where the model is unknown and other findings know theirs.
        model = None if pd.isna(r.handset_model) else str(r.handset_model)
        i = int(r.Index)  # finding i of the outcome is survivor i
        positions = outcome.survivors.positions[int(offsets[i]) : int(offsets[i + 1])]
        all_positions.extend(int(p) for p in positions)
        measures = json.loads(r.measures)
        values = dict(measures)
        values.update(
            msisdn=r.msisdn,
            group=r.group,
            first_seen=pd.Timestamp(r.first_seen)
            .tz_convert(settings.tz)
            .strftime("%Y-%m-%d %H:%M"),
            last_seen=pd.Timestamp(r.last_seen).tz_convert(settings.tz).strftime("%Y-%m-%d %H:%M"),
            record_count=r.record_count,
            total_charge=r.charge,
            handset_model=model or "unknown handset",
            handset_quirk=quirk_hit[i],
            handset_change_before_s=plain_value(change_s[i]),
        )
        ids = list(r.record_ids)
        out.append(
            InvestigatedFinding(
                rank=0,
                finding_id=r.finding_id,
                finding_key=r.finding_key,
                rule_id=rule.id,
                rule_version=rule.version,
                group=r.group,
                rule_name=rule.name,
                root_cause=rule.root_cause,
                title=rule.title,
                detector_kind=rule.detector.kind,
                confidence=float(r.confidence),
                first_seen=_to_local(r.first_seen, settings.tz),
                last_seen=_to_local(r.last_seen, settings.tz),
                record_count=int(r.record_count),
                charge=float(r.charge),
                summary=r.summary,
                evidence=ids,
                evidence_records=_evidence_records(records, positions, settings.tz),
                checks=_checks(rule, measures),
                measures=measures,
                handset_model=model,
                cause=rule.cause,
                remedy=rule.remedy,
                charge_advice=policy.advice_for(rule),
                charge_text=rule.charge.text,
                explanation=Explanation(
                    en=formatter.vformat(rule.explain.en, (), values),
                    zh=formatter.vformat(rule.explain.zh, (), values),
                ),
            )
        )
    return out, all_positions


def _closest(rule: Rule, cands: pd.DataFrame) -> tuple[int, list[Check]]:
    """The candidate that passes the most thresholds (ties: the most records)."""
    passed_counts = np.zeros(len(cands), dtype=int)
    for name, cond in rule.thresholds.items():
        passed_counts += cond.mask(cands[name]).astype(int)
    order = np.lexsort((-cands["count"].to_numpy(dtype=float), -passed_counts))
    best = int(order[0])
    row = {k: cands[k].iloc[best] for k in cands.columns}
    return best, _checks(rule, row)


def _kind_filter(rule: Rule) -> RecordFilter:
    """The rule's record filter reduced to the kind of records: type and direction."""
    kinds = {k: v for k, v in rule.records.where.items() if k in ("record_type", "direction")}
    return RecordFilter.model_validate(
        {k: v.model_dump(by_alias=True, exclude_none=True) for k, v in kinds.items()}
    )


def _own_positions(
    flt: RecordFilter, records: SortedRecords, evaluator: FilterEvaluator, code: int
) -> np.ndarray:
    """Sorted positions of the subscriber's records that pass ``flt``."""
    mask = evaluator.mask(flt)
    return np.flatnonzero(mask[records.order] & (records.subscriber == code))


#: Columns whose null has a meaning in the contract: null status is ok, null visited_mcc
#: the home network, null sms_class no class. Nulls there are values; only a feed without
#: the column at all leaves a rule that needs it unable to check.
NULL_MEANS: dict[str, str] = {"status": "ok", "visited_mcc": "home", "sms_class": "no class"}


def _dependent_measures(rule: Rule, columns: set[str]) -> set[str] | None:
    """The rule's measures that read any of ``columns`` (None: all of them, because the
    columns decide how records are grouped or matched)."""
    params = rule.detector.parsed
    mode_of = getattr(params, "mode_of", None)
    shaping = params.columns() - {mode_of, "status"}
    if columns & shaping:
        return None
    out: set[str] = set()
    if mode_of in columns:
        out |= {"mode_value", "mode_share", "distinct_values"}
    if "status" in columns:
        out |= STATUS_MEASURES
    return out


def _could_not_check(
    rule: Rule, records: SortedRecords, evaluator: FilterEvaluator, code: int, why: RuledOut
) -> CouldNotCheck | None:
    """The rule as "could not check" when a column it requires is unknown on every one of
    the subscriber's records that the rest of the rule would judge; None when the records
    can test it, or when what failed (``why``) fails whatever that column holds.

    A column is unknown when it is missing from the input or, unless its null has a
    meaning (:data:`NULL_MEANS`), null on all of those records. Those records are the
    subscriber's records passing the filter without its conditions on that column: a
    condition on a column that is there may already rule the cause out (every SMS to a
    domestic number, whatever their lengths).
    """
    if not rule.requires:
        return None
    from telediag.derived import DERIVED_COLUMNS, derive

    given = set(records.normalized.raw.table.column_names)

    def unknown(column: str, rows: np.ndarray) -> bool:
        if column in NULL_MEANS:
            return column not in given
        if column in DERIVED_COLUMNS:
            values = derive(column, records.table, rows, evaluator.settings)
        elif column in records.table.column_names:
            values = records.table[column].take(pa.array(rows))
        else:
            return True
        return bool(values.null_count == len(values))

    blind: list[str] = []
    meanings: list[str] = []
    considered = 0
    for entry in rule.requires:
        options = [entry] if isinstance(entry, str) else list(entry)
        rest = _filter_without(rule.records, set(options))
        positions = _own_positions(rest, records, evaluator, code)
        if positions.size == 0:
            continue
        rows = records.order[positions]
        if all(unknown(c, rows) for c in options):
            blind.append(" or ".join(options))
            meanings += [f"{c}: {DERIVED_COLUMNS[c][1]}" for c in options if c in DERIVED_COLUMNS]
            considered = max(considered, int(positions.size))
    if not blind:
        return None
    unseen = {c for entry in blind for c in entry.split(" or ")}
    if why.basis == "thresholds":
        dependent = _dependent_measures(rule, unseen)
        failed = [c for c in why.checks if not c.passed]
        if dependent is not None and any(c.measure not in dependent for c in failed):
            return None  # a threshold fails whatever the unknown column holds
    what = rule.records.describe()
    cols = ", ".join(blind) + (f" ({'; '.join(meanings)})" if meanings else "")
    return CouldNotCheck(
        rule_id=rule.id,
        rule_name=rule.name,
        root_cause=rule.root_cause,
        columns=blind,
        records_considered=considered,
        reason=(
            f"{cols} {'is' if len(blind) == 1 else 'are'} missing or empty on all "
            f"{considered} of the subscriber's records the rule would judge ({what}), so "
            "the records cannot show whether this cause applies"
        ),
    )


def _filter_without(flt: RecordFilter, columns: set[str]) -> RecordFilter:
    """The filter without the conditions that read any of ``columns`` (directly or as
    the source of a derived column); a sub-filter that reads one is dropped whole."""
    from telediag.derived import DERIVED_COLUMNS

    def reads(column: str) -> bool:
        sources = DERIVED_COLUMNS[column][0] if column in DERIVED_COLUMNS else ()
        return column in columns or bool(set(sources) & columns)

    def touches(sub: RecordFilter) -> bool:
        return any(reads(c) for c in sub.columns())

    return RecordFilter.model_construct(
        where={c: cond for c, cond in flt.where.items() if not reads(c)},
        any_of=[] if any(touches(f) for f in flt.any_of) else list(flt.any_of),
        not_=None if flt.not_ is None or touches(flt.not_) else flt.not_,
    )


def _why_not(
    rule: Rule,
    outcome: RuleOutcome,
    records: SortedRecords,
    evaluator: FilterEvaluator,
    code: int,
    settings: ScanSettings,
) -> RuledOut:
    """Why the rule did not fire for the subscriber: the first thing that failed, with
    the values measured. In order: a threshold on the closest candidate; the detector's
    own condition (records pass the filter but form no candidate); a condition of the
    record filter that none of the subscriber's records of the kind meet."""
    cands = outcome.candidates.measures
    mine = cands[cands["subscriber"] == code] if len(cands) else cands
    base = dict(rule_id=rule.id, rule_name=rule.name, root_cause=rule.root_cause)
    what = rule.records.describe()
    if len(mine):
        from telediag.findings import _group_labels

        best, checks = _closest(rule, mine.reset_index(drop=True))
        failed = [c for c in checks if not c.passed]
        considered = int(mine["count"].sum())
        pick = np.zeros(len(cands), dtype=bool)
        pick[int(np.flatnonzero(cands["subscriber"].to_numpy() == code)[best])] = True
        label = _group_labels(outcome.candidates.select(pick))[0]
        count = int(mine["count"].iloc[best])
        group = f" ({count} records{' for ' + label if label else ''})"
        reason = "; ".join(
            f"{c.measure} {_fmt_value(c.value) if c.value is not None else 'n/a'}, "
            f"needs {c.condition}"
            for c in failed
        )
        return RuledOut(
            **base,
            reason=f"closest pattern{group}: {reason}" if reason else "no pattern passed",
            records_considered=considered,
            checks=checks,
        )
    passing = _own_positions(rule.records, records, evaluator, code)
    if passing.size:
        detector = REGISTRY[rule.detector.kind]
        return RuledOut(
            **base,
            reason=f"{passing.size} record(s) with {what}, but {detector.NO_CANDIDATE}",
            records_considered=int(passing.size),
            checks=[],
            basis="detector",
        )
    # Nothing of this subscriber passed the record filter: look at the same kinds of
    # records, and name the conditions of the filter that none of them meet.
    positions = _own_positions(_kind_filter(rule), records, evaluator, code)
    if positions.size == 0:
        return RuledOut(
            **base,
            reason=f"no records of the kind it needs ({what})",
            records_considered=0,
            checks=[],
            basis="no_records",
        )
    from telediag.detectors.base import DetectContext
    from telediag.timeutil import LocalClock

    filters = _filter_checks(rule, records, evaluator, code, positions.size)
    failing = [f for f in filters if f.passing == 0]
    seen = _values_seen(rule, records, evaluator, positions)
    detector = REGISTRY[rule.detector.kind]
    ctx = DetectContext(
        records=records,
        clock=LocalClock(settings.tz),
        wanted=set(detector.MEASURES),
        min_count=1,
    )
    try:
        relaxed_cands = detector.detect(ctx, positions, rule.detector.parsed).measures
    except Exception:  # the relaxed measurement is a courtesy; never fail on it
        relaxed_cands = pd.DataFrame()
    relaxed_checks: list[Check] = []
    pattern = ""
    if len(relaxed_cands):
        _, relaxed_checks = _closest(rule, relaxed_cands.reset_index(drop=True))
        shown = ", ".join(
            f"{c.measure} {_fmt_value(c.value)}" for c in relaxed_checks if c.value is not None
        )
        pattern = f"; taken together they show {shown}" if shown else ""
    kind = _kind_filter(rule).describe()
    if failing:
        missed = " and ".join(f"{f.column} {f.condition}" for f in failing)
        reason = f"{positions.size} record(s) of the kind it looks at ({kind}), none with {missed}"
    else:
        each = "; ".join(f"{f.column} {f.condition}: {f.passing}" for f in filters)
        reason = (
            f"{positions.size} record(s) of the kind it looks at ({kind}), none meeting all "
            f"conditions at once ({each})"
        )
    return RuledOut(
        **base,
        reason=f"{reason}{seen}{pattern}",
        records_considered=int(positions.size),
        checks=relaxed_checks,
        basis="filter",
        filters=filters,
    )


def filter_conditions(rule: Rule) -> list[tuple[str, str, RecordFilter]]:
    """The conditions of a rule's record filter beyond the kind of records, each as
    (column or any_of / not, its description, a filter of that condition alone)."""
    out = []
    for col, cond in rule.records.where.items():
        if col in ("record_type", "direction"):
            continue
        one = RecordFilter.model_construct(where={col: cond}, any_of=[], not_=None)
        out.append((col, cond.describe(), one))
    if rule.records.any_of:
        either = RecordFilter.model_construct(where={}, any_of=rule.records.any_of, not_=None)
        out.append(("any_of", either.describe(), either))
    if rule.records.not_ is not None:
        negated = RecordFilter.model_construct(where={}, any_of=[], not_=rule.records.not_)
        out.append(("not", negated.describe(), negated))
    return out


def _filter_checks(
    rule: Rule, records: SortedRecords, evaluator: FilterEvaluator, code: int, n: int
) -> list[FilterCheck]:
    kind = _kind_filter(rule)
    out = []
    for column, text, one in filter_conditions(rule):
        both = RecordFilter.model_construct(
            where={**kind.where, **one.where}, any_of=one.any_of, not_=one.not_
        )
        passing = _own_positions(both, records, evaluator, code).size
        out.append(FilterCheck(column=column, condition=text, records=n, passing=int(passing)))
    return out


def _values_seen(
    rule: Rule, records: SortedRecords, evaluator: FilterEvaluator, positions: np.ndarray
) -> str:
    """The most common values of the columns the filter tests, e.g. "app_protocol HTTPS"."""
    from telediag.derived import DERIVED_COLUMNS, derive

    cols = [c for c in sorted(rule.records.columns()) if c not in ("record_type", "direction")]
    rows = records.order[positions]
    parts = []
    for col in cols[:4]:
        if col in DERIVED_COLUMNS:
            values = derive(col, records.table, rows, evaluator.settings)
        else:
            values = records.table[col].take(pa.array(rows))
        counts = pd.Series(values.to_pylist(), dtype="object").fillna("(empty)").value_counts()
        top = ", ".join(f"{v} x{n}" for v, n in counts.head(2).items())
        parts.append(f"{col} {top}")
    return f" (seen: {'; '.join(parts)})" if parts else ""
