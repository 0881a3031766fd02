"""The case store: every dispute kept, its deadlines tracked, its outcome reusable.

A store is a SQLite file or a PostgreSQL database (``db.py``: where, how, one
transaction with retries) with one set of tables (``schema.py``). Every change (open,
note, close, reopen) is one transaction that also writes an event to the case's
history.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from telediag.cases import schema
from telediag.cases.db import (
    Database,
    aware_utc,
    case_number,
    default_by,
    naive_utc,
    parse_day,
    plain_text,
    utcnow,
)
from telediag.cases.models import (
    STANDARD_OUTCOMES,
    Case,
    CaseDeadlines,
    CaseEvent,
    CaseFinding,
    CaseRuledOut,
    CaseSummary,
    Shared,
    SimilarCase,
    overdue,
    pending,
)
from telediag.cases.schema import cases_t, events_t, evidence_t, findings_t, ruled_out_t
from telediag.errors import CaseStoreError, InputError
from telediag.policy import Policy, load_policy

if TYPE_CHECKING:
    from telediag.catalog import Rule
    from telediag.colmap import ColumnMap
    from telediag.investigation import Investigation
    from telediag.read import Sources


class CaseStore:
    """The dispute desk's cases in SQLite or PostgreSQL.

    ``CaseStore(db)`` takes a file path or URL (see :func:`resolve_db`), creates or
    migrates the schema, and offers the operations of ``telediag case``. Single cases
    come back as pydantic models, lists as DataFrames. Use it as a context manager, or
    call :meth:`dispose` when done.
    """

    def __init__(self, db: str | os.PathLike[str] | None = None, *, busy_timeout: float = 30.0):
        self.db = Database(db, busy_timeout=busy_timeout)
        self.name = self.db.name

    def dispose(self) -> None:
        """Close the store's connections."""
        self.db.dispose()

    def __enter__(self) -> CaseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    def __repr__(self) -> str:
        return f"CaseStore({self.name!r})"

    @property
    def schema_version(self) -> int:
        """The schema version of the store."""
        return self.db.read(schema.stored_version)

    # ------------------------------------------------------------------ opening
    def open_case(
        self,
        inputs: Sources,
        msisdn: str,
        complaint_date: str | dt.date,
        *,
        summary: str | None = None,
        by: str | None = None,
        start: str | dt.date | dt.datetime | None = None,
        end: str | dt.date | dt.datetime | None = None,
        tz: str | None = None,
        column_map: ColumnMap | str | Path | None = None,
        policy: Policy | str | Path | None = None,
        rules: list[Rule] | str | Path | None = None,
        at: dt.datetime | str | None = None,
    ) -> Case:
        """Investigate the complaint (as ``telediag investigate``) and keep it as a case."""
        from telediag.investigation import investigate
        from telediag.scan import _resolve_rules

        day = parse_day(complaint_date, "complaint date")
        pol = policy if isinstance(policy, Policy) else load_policy(policy)
        inv = investigate(
            inputs,
            msisdn,
            start=start,
            end=end,
            complaint_date=day,
            rules=_resolve_rules(rules, None, None),
            tz=tz,
            column_map=column_map,
            policy=pol,
        )
        names = [str(p) for p in inputs] if isinstance(inputs, (list, tuple)) else [str(inputs)]
        return self.record(
            inv, complaint_date=day, summary=summary, by=by, policy=pol, inputs=names, at=at
        )

    def record(
        self,
        inv: Investigation,
        *,
        complaint_date: str | dt.date | None = None,
        summary: str | None = None,
        by: str | None = None,
        policy: Policy | str | Path | None = None,
        inputs: Sequence[str] = (),
        at: dt.datetime | str | None = None,
    ) -> Case:
        """Keep an investigation already made as a new case (one transaction).

        The deadlines are counted with ``policy`` (default: the standard policy), which
        is kept with the case for its outcomes."""
        pol = policy if isinstance(policy, Policy) else load_policy(policy)
        if complaint_date is None and inv.deadlines is None:
            raise CaseStoreError("a case needs a complaint date")
        day = parse_day(
            complaint_date if complaint_date is not None else inv.deadlines.complaint_date,  # type: ignore[union-attr]
            "complaint date",
        )
        due = pol.deadlines.due(day)
        when = naive_utc(at) or utcnow()
        who = plain_text(by if by is not None else default_by(), "--by")
        summary = plain_text(summary, "the summary")
        handset = next((f.handset_model for f in inv.findings if f.handset_model), None)
        if handset is None and inv.overview.handsets:
            handset = max(inv.overview.handsets, key=lambda h: h.records).model
        case_row = {
            "msisdn": inv.msisdn,
            "complaint_date": day,
            "summary": summary,
            "status": "open",
            "outcome": None,
            "opened_at": when,
            "opened_by": who,
            "closed_at": None,
            "acknowledge_by": due["acknowledge"],
            "investigate_by": due["investigate"],
            "resolve_by": due["resolve"],
            "period_start": naive_utc(inv.period.start),
            "period_end": naive_utc(inv.period.end),
            "tz": inv.period.tz,
            "handset_model": handset,
            "charge": round(sum(f.charge for f in inv.findings), 6),
            "inputs": json.dumps(list(inputs)),
            "policy": pol.model_dump_json(),
            "catalog_version": inv.catalog_version,
            "telediag_version": inv.telediag_version,
            "report": inv.model_dump_json(),
            "records": _records_blob(inv.records),
        }
        finding_rows = [
            {
                "rank": f.rank,
                "finding_id": f.finding_id,
                "finding_key": f.finding_key,
                "rule_id": f.rule_id,
                "rule_version": f.rule_version,
                "root_cause": f.root_cause,
                "msisdn": inv.msisdn,
                "group_label": f.group,
                "first_day": f.first_seen.date(),
                "first_seen": naive_utc(f.first_seen),
                "last_seen": naive_utc(f.last_seen),
                "record_count": f.record_count,
                "charge": f.charge,
                "confidence": f.confidence,
                "charge_advice": str(f.charge_advice),
                "handset_model": f.handset_model,
                "summary": f.summary,
            }
            for f in inv.findings
        ]
        evidence_rows = [
            {"rank": f.rank, "seq": i, "record_id": rid}
            for f in inv.findings
            for i, rid in enumerate(f.evidence)
        ]
        ruled_rows = [
            {
                "rule_id": r.rule_id,
                "root_cause": r.root_cause,
                "verdict": verdict,
                "reason": r.reason,
                "records_considered": r.records_considered,
            }
            for verdict, hypotheses in (
                ("ruled_out", inv.ruled_out),
                ("could_not_check", inv.could_not_check),
            )
            for r in hypotheses
        ]

        def insert(conn: Connection) -> int:
            key = conn.execute(sa.insert(cases_t).values(**case_row)).inserted_primary_key
            case_id = int(cast(Any, key)[0])
            for table, rows in (
                (findings_t, finding_rows),
                (evidence_t, evidence_rows),
                (ruled_out_t, ruled_rows),
            ):
                if rows:
                    conn.execute(sa.insert(table), [{"case_id": case_id, **r} for r in rows])
            conn.execute(
                sa.insert(events_t).values(
                    case_id=case_id, at=when, by=who, action="open", text=summary
                )
            )
            return case_id

        return self.case(self.db.write(insert))

    # ------------------------------------------------------------------ one case
    def case(self, case_id: int) -> Case:
        """Everything kept about one case."""
        number = case_number(case_id)
        return self.db.read(lambda conn: self._load(conn, number))

    def _row(self, conn: Connection, case_id: int, lock: bool = False) -> sa.Row[Any]:
        query = sa.select(cases_t).where(cases_t.c.id == case_id)
        if lock and not self.db.is_sqlite:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise CaseStoreError(f"no case {case_id} in {self.name}")
        return row

    def _load(self, conn: Connection, case_id: int) -> Case:
        row = self._row(conn, case_id)
        frows = conn.execute(
            sa.select(findings_t).where(findings_t.c.case_id == case_id).order_by(findings_t.c.rank)
        ).all()
        evidence: dict[int, list[str]] = {}
        for rank, rid in conn.execute(
            sa.select(evidence_t.c.rank, evidence_t.c.record_id)
            .where(evidence_t.c.case_id == case_id)
            .order_by(evidence_t.c.rank, evidence_t.c.seq)
        ):
            evidence.setdefault(rank, []).append(rid)
        ruled = conn.execute(
            sa.select(ruled_out_t)
            .where(ruled_out_t.c.case_id == case_id)
            .order_by(ruled_out_t.c.rule_id)
        ).all()
        history = [
            CaseEvent(at=aware_utc(e.at), by=e.by, action=e.action, text=e.text, outcome=e.outcome)
            for e in conn.execute(
                sa.select(events_t).where(events_t.c.case_id == case_id).order_by(events_t.c.id)
            )
        ]
        hypotheses = [
            CaseRuledOut(
                rule_id=r.rule_id,
                root_cause=r.root_cause,
                verdict=r.verdict,
                reason=r.reason,
                records_considered=r.records_considered,
            )
            for r in ruled
        ]
        findings = [
            CaseFinding(
                rank=f.rank,
                finding_id=f.finding_id,
                finding_key=f.finding_key,
                rule_id=f.rule_id,
                rule_version=f.rule_version,
                root_cause=f.root_cause,
                group=f.group_label,
                first_day=f.first_day,
                first_seen=aware_utc(f.first_seen),
                last_seen=aware_utc(f.last_seen),
                record_count=f.record_count,
                charge=f.charge,
                confidence=f.confidence,
                charge_advice=f.charge_advice,
                handset_model=f.handset_model,
                summary=f.summary,
                evidence=evidence.get(f.rank, []),
            )
            for f in frows
        ]
        policy = Policy.model_validate_json(row.policy)
        return Case(
            id=row.id,
            msisdn=row.msisdn,
            complaint_date=row.complaint_date,
            summary=row.summary,
            status=row.status,
            outcome=row.outcome,
            opened_at=aware_utc(row.opened_at),
            opened_by=row.opened_by,
            closed_at=aware_utc(row.closed_at),
            deadlines=CaseDeadlines(
                acknowledge=row.acknowledge_by,
                investigate=row.investigate_by,
                resolve=row.resolve_by,
            ),
            period_start=aware_utc(row.period_start),
            period_end=aware_utc(row.period_end),
            tz=row.tz,
            handset_model=row.handset_model,
            charge=row.charge,
            inputs=json.loads(row.inputs),
            catalog_version=row.catalog_version,
            telediag_version=row.telediag_version,
            root_causes=_unique(f.root_cause for f in findings),
            findings=findings,
            ruled_out=[h for h in hypotheses if h.verdict == "ruled_out"],
            could_not_check=[h for h in hypotheses if h.verdict == "could_not_check"],
            history=history,
            outcomes_allowed=_unique([*STANDARD_OUTCOMES, *policy.outcomes]),
        )

    def report(self, case_id: int) -> Investigation:
        """The investigation stored with the case, with the records its plots show."""
        from telediag.investigation import Investigation

        case_id = case_number(case_id)
        row = self.db.read(
            lambda conn: conn.execute(
                sa.select(cases_t.c.report, cases_t.c.records).where(cases_t.c.id == case_id)
            ).first()
        )
        if row is None:
            raise CaseStoreError(f"no case {case_id} in {self.name}")
        inv = Investigation.model_validate_json(row.report)
        if row.records:
            import pyarrow.parquet as pq

            inv._records = pq.read_table(io.BytesIO(row.records)).to_pandas()
        return inv

    def history(self, case_id: int) -> list[CaseEvent]:
        """Every change of the case, oldest first."""
        return self.case(case_id).history

    # ------------------------------------------------------------------ changes
    def note(
        self, case_id: int, text: str, *, by: str | None = None, at: dt.datetime | str | None = None
    ) -> Case:
        """Add a note (the first note acknowledges the case)."""
        case_id = case_number(case_id)
        if not isinstance(text, str) or not text.strip():
            raise CaseStoreError("a note needs some text")
        plain_text(text, "the note")
        who = plain_text(by if by is not None else default_by(), "--by")

        def change(conn: Connection) -> None:
            self._row(conn, case_id, lock=True)
            self._event(conn, case_id, "note", who, at, text=text)

        self.db.write(change)
        return self.case(case_id)

    def close(
        self,
        case_id: int,
        outcome: str,
        *,
        note: str | None = None,
        by: str | None = None,
        policy: Policy | str | Path | None = None,
        at: dt.datetime | str | None = None,
    ) -> Case:
        """Close the case with an outcome: a standard one or one the policy adds (the
        policy stored with the case, or ``policy``)."""
        case_id = case_number(case_id)
        who = plain_text(by if by is not None else default_by(), "--by")
        note = plain_text(note, "the note")
        extra = load_policy(policy) if not isinstance(policy, Policy) else policy
        if not isinstance(outcome, str) or not outcome.strip():
            raise CaseStoreError(f"closing case {case_id} needs an outcome")
        outcome = outcome.strip()

        def check(row: sa.Row[Any]) -> None:
            if row.status == "closed":
                raise CaseStoreError(
                    f"case {case_id} is already closed ({row.outcome}); reopen it first"
                )
            stored = Policy.model_validate_json(row.policy)
            allowed = _unique([*STANDARD_OUTCOMES, *stored.outcomes, *extra.outcomes])
            if outcome not in allowed:
                raise CaseStoreError(
                    f"unknown outcome {outcome!r}: use one of {', '.join(allowed)} "
                    "(a policy's outcomes: adds more)"
                )

        return self._change_status(
            case_id, "close", who, at, note, check, outcome=outcome, status="closed"
        )

    def reopen(
        self,
        case_id: int,
        *,
        note: str | None = None,
        by: str | None = None,
        at: dt.datetime | str | None = None,
    ) -> Case:
        """Reopen a closed case: it is open again and its outcome is cleared (the
        history keeps the earlier outcome)."""
        case_id = case_number(case_id)
        who = plain_text(by if by is not None else default_by(), "--by")
        note = plain_text(note, "the note")

        def check(row: sa.Row[Any]) -> None:
            if row.status != "closed":
                raise CaseStoreError(f"case {case_id} is open; only a closed case can reopen")

        return self._change_status(case_id, "reopen", who, at, note, check, status="open")

    def _change_status(
        self,
        case_id: int,
        action: str,
        who: str | None,
        at: dt.datetime | str | None,
        note: str | None,
        check: Callable[[sa.Row[Any]], None],
        *,
        status: str,
        outcome: str | None = None,
    ) -> Case:
        """Lock the case, ``check`` its row, log the ``action`` and set its status: an
        outcome and closing time when it closes, neither when it opens again."""

        def change(conn: Connection) -> None:
            check(self._row(conn, case_id, lock=True))
            when = self._event(conn, case_id, action, who, at, text=note, outcome=outcome)
            conn.execute(
                sa.update(cases_t)
                .where(cases_t.c.id == case_id)
                .values(
                    status=status,
                    outcome=outcome,
                    closed_at=when if status == "closed" else None,
                )
            )

        self.db.write(change)
        return self.case(case_id)

    def _event(
        self,
        conn: Connection,
        case_id: int,
        action: str,
        by: str | None,
        at: dt.datetime | str | None,
        text: str | None = None,
        outcome: str | None = None,
    ) -> dt.datetime:
        when = naive_utc(at) or utcnow()
        conn.execute(
            sa.insert(events_t).values(
                case_id=case_id, at=when, by=by, action=action, text=text, outcome=outcome
            )
        )
        return when

    # ------------------------------------------------------------------ lists
    def cases(
        self,
        status: str = "open",
        *,
        due_by: str | dt.date | None = None,
        as_of: str | dt.date | None = None,
    ) -> list[CaseSummary]:
        """The cases with ``status`` (``open``, ``closed`` or ``all``), oldest first.

        ``due_by`` keeps the cases with a step not done that is due on or before that
        day (overdue ones included); ``overdue`` is reckoned as of ``as_of`` (today).
        """
        if status not in ("open", "closed", "all"):
            raise CaseStoreError(f"unknown status {status!r}: use open, closed or all")
        day = parse_day(as_of, "--as-of date") if as_of is not None else dt.date.today()
        limit = parse_day(due_by, "--due-by date") if due_by is not None else None

        def query(conn: Connection) -> list[CaseSummary]:
            q = sa.select(
                cases_t.c.id,
                cases_t.c.msisdn,
                cases_t.c.complaint_date,
                cases_t.c.status,
                cases_t.c.outcome,
                cases_t.c.acknowledge_by,
                cases_t.c.investigate_by,
                cases_t.c.resolve_by,
            ).order_by(cases_t.c.id)
            if status != "all":
                q = q.where(cases_t.c.status == status)
            rows = conn.execute(q).all()
            causes = _causes_by_case(conn)
            acknowledged = set(
                conn.execute(
                    sa.select(events_t.c.case_id)
                    .where(events_t.c.action.in_(("note", "close")))
                    .distinct()
                ).scalars()
            )
            out = []
            for r in rows:
                deadlines = CaseDeadlines(
                    acknowledge=r.acknowledge_by,
                    investigate=r.investigate_by,
                    resolve=r.resolve_by,
                )
                ack = r.id in acknowledged
                closed = r.status == "closed"
                if limit is not None and not any(
                    getattr(deadlines, step) <= limit
                    for step in pending(deadlines, acknowledged=ack, closed=closed)
                ):
                    continue
                out.append(
                    CaseSummary(
                        id=r.id,
                        msisdn=r.msisdn,
                        complaint_date=r.complaint_date,
                        status=r.status,
                        outcome=r.outcome,
                        root_causes=causes.get(r.id, []),
                        deadlines=deadlines,
                        overdue=overdue(deadlines, acknowledged=ack, closed=closed, as_of=day),
                    )
                )
            return out

        return self.db.read(query)

    def list_cases(
        self,
        status: str = "open",
        *,
        due_by: str | dt.date | None = None,
        as_of: str | dt.date | None = None,
    ) -> pd.DataFrame:
        """:meth:`cases` as a DataFrame, the deadlines as three date columns."""
        cols = [
            "id",
            "msisdn",
            "complaint_date",
            "status",
            "outcome",
            "root_causes",
            "acknowledge_by",
            "investigate_by",
            "resolve_by",
            "overdue",
        ]
        rows = []
        for c in self.cases(status, due_by=due_by, as_of=as_of):
            d = c.model_dump(exclude={"deadlines"})
            d.update({f"{k}_by": v for k, v in c.deadlines.model_dump().items()})
            rows.append(d)
        return pd.DataFrame(rows, columns=cols)

    def similar_cases(self, case_id: int) -> list[SimilarCase]:
        """Earlier cases sharing a root cause with this one, or failing any, its handset
        model; closest first (the same findings, by stable key; then most causes shared,
        the handset, the rules; then the most recent)."""
        this = self.case(case_number(case_id))
        causes = set(this.root_causes)
        rules = {f.rule_id for f in this.findings}
        keys = _unique(f.finding_key for f in this.findings)

        def query(conn: Connection) -> list[SimilarCase]:
            earlier = cases_t.c.id < this.id
            if causes:
                ids = set(
                    conn.execute(
                        sa.select(findings_t.c.case_id)
                        .join(cases_t, cases_t.c.id == findings_t.c.case_id)
                        .where(earlier, findings_t.c.root_cause.in_(sorted(causes)))
                        .distinct()
                    ).scalars()
                )
            else:
                ids = set()
            if not ids and this.handset_model:
                ids = set(
                    conn.execute(
                        sa.select(cases_t.c.id).where(
                            earlier, cases_t.c.handset_model == this.handset_model
                        )
                    ).scalars()
                )
            if not ids:
                return []
            rows = conn.execute(
                sa.select(
                    cases_t.c.id, cases_t.c.msisdn, cases_t.c.handset_model, cases_t.c.outcome
                ).where(cases_t.c.id.in_(sorted(ids)))
            ).all()
            found = conn.execute(
                sa.select(
                    findings_t.c.case_id,
                    findings_t.c.rule_id,
                    findings_t.c.root_cause,
                    findings_t.c.finding_key,
                )
                .where(findings_t.c.case_id.in_(sorted(ids)))
                .order_by(findings_t.c.case_id, findings_t.c.rank)
            ).all()
            their_causes: dict[int, list[str]] = {}
            their_rules: dict[int, set[str]] = {}
            their_keys: dict[int, set[str]] = {}
            for cid, rule_id, cause, key in found:
                their_causes.setdefault(cid, [])
                if cause not in their_causes[cid]:
                    their_causes[cid].append(cause)
                their_rules.setdefault(cid, set()).add(rule_id)
                their_keys.setdefault(cid, set()).add(key)
            out = []
            for r in rows:
                mine = their_causes.get(r.id, [])
                same_handset = this.handset_model is not None and r.handset_model == (
                    this.handset_model
                )
                shared = Shared(
                    root_causes=[c for c in this.root_causes if c in mine],
                    rules=sorted(rules & their_rules.get(r.id, set())),
                    handset_model=this.handset_model if same_handset else None,
                    findings=[k for k in keys if k in their_keys.get(r.id, set())],
                )
                out.append(
                    SimilarCase(
                        id=r.id,
                        msisdn=r.msisdn,
                        root_causes=mine,
                        handset_model=r.handset_model,
                        outcome=r.outcome,
                        shared=shared,
                    )
                )
            out.sort(
                key=lambda s: (
                    -len(s.shared.findings),
                    -len(s.shared.root_causes),
                    s.shared.handset_model is None,
                    -len(s.shared.rules),
                    -s.id,
                )
            )
            return out

        return self.db.read(query)

    def cases_with_finding(self, finding_key: str) -> list[int]:
        """The cases holding the finding with this stable key, oldest first."""
        return list(
            self.db.read(
                lambda conn: (
                    conn.execute(
                        sa.select(findings_t.c.case_id)
                        .where(findings_t.c.finding_key == finding_key)
                        .distinct()
                        .order_by(findings_t.c.case_id)
                    )
                    .scalars()
                    .all()
                )
            )
        )

    def similar(self, case_id: int) -> pd.DataFrame:
        """:meth:`similar_cases` as a DataFrame."""
        cols = ["id", "msisdn", "root_causes", "handset_model", "outcome", "shared"]
        return pd.DataFrame([s.model_dump() for s in self.similar_cases(case_id)], columns=cols)

    def stats(self) -> pd.DataFrame:
        """How cases ended, per rule and per root cause: one row each, with the count
        of cases, open and closed ones, one column per outcome, and the share of closed
        cases that ended ``no_fault_found`` (the rule pointed at the wrong cause)."""

        def query(conn: Connection) -> tuple[Sequence[Any], Sequence[Any], list[str]]:
            cases = conn.execute(
                sa.select(cases_t.c.id, cases_t.c.status, cases_t.c.outcome, cases_t.c.policy)
            ).all()
            found = conn.execute(
                sa.select(findings_t.c.case_id, findings_t.c.rule_id, findings_t.c.root_cause)
            ).all()
            extra = [o for c in cases for o in Policy.model_validate_json(c.policy).outcomes]
            return cases, found, extra

        cases, found, extra = self.db.read(query)
        outcomes = _unique([*STANDARD_OUTCOMES, *extra, *(c.outcome for c in cases if c.outcome)])
        base = pd.DataFrame(
            [(c.id, c.status, c.outcome) for c in cases], columns=["case_id", "status", "outcome"]
        )
        links = pd.DataFrame(
            [tuple(f) for f in found], columns=["case_id", "rule_id", "root_cause"]
        )
        parts = []
        for by, col in (("rule", "rule_id"), ("root_cause", "root_cause")):
            keyed = links[["case_id", col]].drop_duplicates().rename(columns={col: "key"})
            if by == "root_cause":
                # Cases where telediag found nothing count under no cause at all.
                bare = base.loc[~base["case_id"].isin(links["case_id"]), ["case_id"]]
                keyed = pd.concat([keyed, bare.assign(key=None)], ignore_index=True)
            parts.append(keyed.merge(base, on="case_id").assign(by=by))
        joined = pd.concat(parts, ignore_index=True)
        cols = ["by", "key", "cases", "open", "closed", *outcomes, "no_fault_found_share"]
        if joined.empty:
            return pd.DataFrame(columns=cols)
        rows = []
        for group_key, g in joined.groupby(["by", "key"], dropna=False, sort=False):
            by, key = cast(tuple[str, Any], group_key)
            closed = g[g["status"] == "closed"]
            counts = closed["outcome"].value_counts()
            row: dict[str, Any] = {
                "by": by,
                "key": None if pd.isna(key) else key,
                "cases": len(g),
                "open": int((g["status"] == "open").sum()),
                "closed": len(closed),
            }
            row.update({o: int(counts.get(o, 0)) for o in outcomes})
            row["no_fault_found_share"] = (
                round(row["no_fault_found"] / len(closed), 4) if len(closed) else None
            )
            rows.append(row)
        frame = pd.DataFrame(rows, columns=cols)
        frame["_none"] = frame["key"].isna()
        frame = frame.sort_values(["by", "_none", "key"], ascending=[False, True, True])
        return frame.drop(columns="_none").reset_index(drop=True)

    def export_frame(self, as_of: str | dt.date | None = None) -> pd.DataFrame:
        """One row per case, for reporting."""
        summaries = {c.id: c for c in self.cases("all", as_of=as_of)}

        def query(conn: Connection) -> tuple[Sequence[Any], Sequence[Any]]:
            rows = conn.execute(
                sa.select(
                    cases_t.c.id,
                    cases_t.c.summary,
                    cases_t.c.opened_at,
                    cases_t.c.opened_by,
                    cases_t.c.closed_at,
                    cases_t.c.handset_model,
                    cases_t.c.charge,
                    cases_t.c.tz,
                    cases_t.c.catalog_version,
                    cases_t.c.telediag_version,
                ).order_by(cases_t.c.id)
            ).all()
            found = conn.execute(
                sa.select(
                    findings_t.c.case_id, findings_t.c.rule_id, findings_t.c.finding_key
                ).order_by(findings_t.c.case_id, findings_t.c.rank)
            ).all()
            return rows, found

        rows, found = self.db.read(query)
        rules: dict[int, list[str]] = {}
        keys: dict[int, list[str]] = {}
        for cid, rule_id, key in found:
            rules.setdefault(cid, [])
            if rule_id not in rules[cid]:
                rules[cid].append(rule_id)
            keys.setdefault(cid, []).append(key)
        out = []
        for r in rows:
            s = summaries[r.id]
            out.append(
                {
                    "id": r.id,
                    "msisdn": s.msisdn,
                    "complaint_date": s.complaint_date,
                    "status": s.status,
                    "outcome": s.outcome,
                    "root_causes": s.root_causes,
                    "rule_ids": rules.get(r.id, []),
                    "finding_keys": keys.get(r.id, []),
                    "findings": len(keys.get(r.id, [])),
                    "charge": r.charge,
                    "handset_model": r.handset_model,
                    "summary": r.summary,
                    "acknowledge_by": s.deadlines.acknowledge,
                    "investigate_by": s.deadlines.investigate,
                    "resolve_by": s.deadlines.resolve,
                    "overdue": s.overdue,
                    "opened_at": pd.Timestamp(r.opened_at, tz="UTC"),
                    "opened_by": r.opened_by,
                    "closed_at": pd.Timestamp(r.closed_at, tz="UTC") if r.closed_at else pd.NaT,
                    "tz": r.tz,
                    "catalog_version": r.catalog_version,
                    "telediag_version": r.telediag_version,
                }
            )
        frame = pd.DataFrame(out, columns=_EXPORT_COLUMNS)
        for col in ("opened_at", "closed_at"):
            frame[col] = pd.to_datetime(frame[col], utc=True)
        return frame

    def export(self, path: str | Path, as_of: str | dt.date | None = None) -> int:
        """Write :meth:`export_frame` to ``.parquet``, ``.csv`` or ``.jsonl``; returns
        the number of cases written."""
        from telediag.output import output_format, write_frame

        fmt = output_format(path)
        frame = self.export_frame(as_of=as_of)
        try:
            if fmt == ".parquet":
                import pyarrow.parquet as pq

                Path(path).parent.mkdir(parents=True, exist_ok=True)
                table = pa.Table.from_pandas(frame, schema=_export_schema(), preserve_index=False)
                pq.write_table(table, path)
            else:
                write_frame(frame, path)
        except OSError as exc:
            raise InputError(f"{path}: cannot write: {exc.strerror or exc}") from None
        return len(frame)


def _export_schema() -> pa.Schema:
    """The export's column types, fixed so that reports read the same types every time
    (even when, say, no case is closed yet and every outcome is null)."""
    text, day, names = pa.string(), pa.date32(), pa.list_(pa.string())
    stamp = pa.timestamp("us", tz="UTC")
    return pa.schema(
        [
            ("id", pa.int64()),
            ("msisdn", text),
            ("complaint_date", day),
            ("status", text),
            ("outcome", text),
            ("root_causes", names),
            ("rule_ids", names),
            ("finding_keys", names),
            ("findings", pa.int64()),
            ("charge", pa.float64()),
            ("handset_model", text),
            ("summary", text),
            ("acknowledge_by", day),
            ("investigate_by", day),
            ("resolve_by", day),
            ("overdue", names),
            ("opened_at", stamp),
            ("opened_by", text),
            ("closed_at", stamp),
            ("tz", text),
            ("catalog_version", text),
            ("telediag_version", text),
        ]
    )


_EXPORT_COLUMNS = _export_schema().names


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _causes_by_case(conn: Connection) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for cid, cause in conn.execute(
        sa.select(findings_t.c.case_id, findings_t.c.root_cause).order_by(
            findings_t.c.case_id, findings_t.c.rank
        )
    ):
        out.setdefault(cid, [])
        if cause not in out[cid]:
            out[cid].append(cause)
    return out


def _records_blob(frame: pd.DataFrame) -> bytes | None:
    """The records a report shows, as Parquet bytes (None when there are none)."""
    if frame.empty:
        return None
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    return sink.getvalue()
