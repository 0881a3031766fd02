"""What the case store returns: pydantic models (lists come as DataFrames from the store).

:class:`CaseSummary` has exactly the keys of ``telediag case list --json`` and
:class:`SimilarCase` those of ``telediag case similar --json``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Outcomes every desk may close a case with; a policy's ``outcomes`` adds more.
STANDARD_OUTCOMES: tuple[str, ...] = ("refund", "partial", "no_refund", "no_fault_found")

#: The deadlines of a case, in the order they fall.
DEADLINE_NAMES: tuple[str, ...] = ("acknowledge", "investigate", "resolve")

Status = Literal["open", "closed"]
Action = Literal["open", "note", "close", "reopen"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseDeadlines(_Model):
    """When each step of handling the complaint is due (working days, policy holidays)."""

    acknowledge: dt.date
    investigate: dt.date
    resolve: dt.date


class CaseEvent(_Model):
    """One change of a case: who made it, when (UTC), and what."""

    at: dt.datetime
    by: str | None
    action: Action
    text: str | None = None
    outcome: str | None = None


class CaseSummary(_Model):
    """One line of the case list."""

    id: int
    msisdn: str
    complaint_date: dt.date
    status: Status
    outcome: str | None
    root_causes: list[str]
    deadlines: CaseDeadlines
    overdue: list[str] = Field(
        description="deadlines passed as of the day asked about whose step is not done "
        "(acknowledge: a note or a close; investigate and resolve: a close)"
    )


class CaseFinding(_Model):
    """A finding kept with a case, with its stable key and evidence record ids."""

    rank: int
    finding_id: str
    finding_key: str
    rule_id: str
    rule_version: int
    root_cause: str
    group: str
    first_day: dt.date
    first_seen: dt.datetime
    last_seen: dt.datetime
    record_count: int
    charge: float
    confidence: float
    charge_advice: str
    handset_model: str | None
    summary: str
    evidence: list[str]


class CaseRuledOut(_Model):
    """A hypothesis the investigation ruled out, or could not check (a column it needs
    is missing or empty: not a clean bill), and why."""

    rule_id: str
    root_cause: str
    verdict: Literal["ruled_out", "could_not_check"]
    reason: str
    records_considered: int


class Case(_Model):
    """Everything the store keeps about one case."""

    id: int
    msisdn: str
    complaint_date: dt.date
    summary: str | None
    status: Status
    outcome: str | None
    opened_at: dt.datetime
    opened_by: str | None
    closed_at: dt.datetime | None
    deadlines: CaseDeadlines
    period_start: dt.datetime | None
    period_end: dt.datetime | None
    tz: str
    handset_model: str | None
    charge: float
    inputs: list[str]
    catalog_version: str
    telediag_version: str
    root_causes: list[str]
    findings: list[CaseFinding]
    ruled_out: list[CaseRuledOut]
    could_not_check: list[CaseRuledOut]
    history: list[CaseEvent]
    outcomes_allowed: list[str]

    def overdue(self, as_of: dt.date) -> list[str]:
        """The deadlines passed by ``as_of`` whose step is not done."""
        return overdue(
            self.deadlines,
            acknowledged=any(e.action in ("note", "close") for e in self.history),
            closed=self.status == "closed",
            as_of=as_of,
        )


class Shared(_Model):
    """What two cases have in common."""

    root_causes: list[str]
    rules: list[str]
    handset_model: str | None
    findings: list[str] = Field(
        description="finding keys in both: the very same finding, e.g. a repeated complaint"
    )


class SimilarCase(_Model):
    """An earlier case like this one."""

    id: int
    msisdn: str
    root_causes: list[str]
    handset_model: str | None
    outcome: str | None
    shared: Shared


def pending(deadlines: CaseDeadlines, *, acknowledged: bool, closed: bool) -> list[str]:
    """Names of the steps not done yet: acknowledging until a note or a close;
    investigating and resolving until a close (a reopened case is open again)."""
    done = {"acknowledge": acknowledged or closed, "investigate": closed, "resolve": closed}
    return [name for name in DEADLINE_NAMES if not done[name]]


def overdue(
    deadlines: CaseDeadlines, *, acknowledged: bool, closed: bool, as_of: dt.date
) -> list[str]:
    """Names of the deadlines passed (due before ``as_of``) whose step is not done.

    A case is acknowledged once it has a note or is closed; it is investigated and
    resolved once it is closed (a reopened case is open again).
    """
    done = {"acknowledge": acknowledged or closed, "investigate": closed, "resolve": closed}
    return [name for name in DEADLINE_NAMES if getattr(deadlines, name) < as_of and not done[name]]


def plain(model: BaseModel) -> dict[str, Any]:
    """A model as JSON-ready values (dates as ISO text)."""
    return model.model_dump(mode="json")
