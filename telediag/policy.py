"""Operator policy: charge advice per rule or root cause, and complaint-handling deadlines.

A policy file is YAML validated by strict models::

    charge_advice:            # by rule id or root cause; rule ids win
      mms_retry_loop: no_refund
      TD006: partial
    deadlines:
      acknowledge: 2          # working days after the complaint
      investigate: 5
      resolve: 7
      weekend: [Sat, Sun]     # day names or three-letter abbreviations, any case
      holidays: [2008-10-01, 2008-10-02]
    outcomes: [goodwill_credit]   # closing outcomes besides refund, partial, no_refund,
                                  # no_fault_found

Anything not given falls back to the rule's own advice and the defaults above.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from telediag.catalog import ChargeAdvice, Rule
from telediag.errors import ConfigError
from telediag.yamlfile import load_yaml_model

#: Names an outcome may not take: case statuses and the fixed columns of case stats.
RESERVED_OUTCOME_NAMES = frozenset(
    {"open", "closed", "all", "by", "key", "cases", "no_fault_found_share"}
)

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: What people write for a day, lower-cased: "Sat", "saturday", "SATURDAY".
_DAY_OF_NAME = {
    **{d.lower(): d for d in _DAYS},
    **{full: d for full, d in zip(_FULL_NAMES, _DAYS, strict=True)},
}


class Deadlines(BaseModel):
    """Working days allowed for each step of handling a complaint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    acknowledge: int = Field(2, ge=0, description="working days to acknowledge")
    investigate: int = Field(5, ge=0, description="working days to finish investigating")
    resolve: int = Field(7, ge=0, description="working days to propose a resolution")
    weekend: list[str] = Field(default_factory=lambda: ["Sat", "Sun"])
    holidays: list[dt.date] = Field(default_factory=list)

    @field_validator("weekend", mode="before")
    @classmethod
    def _day_names(cls, value: object) -> list[str]:
        if not isinstance(value, list):
            raise ValueError("a list of day names, e.g. [Sat, Sun]")
        days: list[str] = []
        for item in value:
            day = _DAY_OF_NAME.get(str(item).strip().lower())
            if day is None:
                raise ValueError(f"{item!r} is not a day of the week (Mon..Sun or Monday..Sunday)")
            if day not in days:
                days.append(day)
        if len(days) == len(_DAYS):
            raise ValueError("every day is a weekend day: keep at least one working day")
        return days

    def due(self, complaint: dt.date) -> dict[str, dt.date]:
        """The due date of each step, counting working days after the complaint date.

        A complaint made on a weekend or holiday counts like one made on the working day
        before it: two working days after a Saturday is the Tuesday, as after the
        Friday. A step with 0 days is due on the complaint day, or the next working day.
        """
        mask = [d not in self.weekend for d in _DAYS]
        holidays = np.array(self.holidays, dtype="datetime64[D]")
        start = np.datetime64(complaint, "D")
        out = {}
        for step in ("acknowledge", "investigate", "resolve"):
            days = getattr(self, step)
            roll: Literal["backward", "forward"] = "backward" if days > 0 else "forward"
            due = np.busday_offset(start, days, roll=roll, weekmask=mask, holidays=holidays)
            out[step] = dt.date.fromisoformat(str(due))
        return out


class Policy(BaseModel):
    """An operator's policy for disputed charges."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    charge_advice: dict[str, ChargeAdvice] = Field(default_factory=dict)
    deadlines: Deadlines = Field(default_factory=Deadlines)
    outcomes: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]] = Field(
        default_factory=list,
        description="outcomes a case may be closed with, besides the standard ones",
    )

    @field_validator("outcomes")
    @classmethod
    def _not_reserved(cls, names: list[str]) -> list[str]:
        clash = sorted(set(names) & RESERVED_OUTCOME_NAMES)
        if clash:
            raise ValueError(
                f"{', '.join(clash)}: reserved (a case status or a column of case stats); "
                "name the outcome otherwise"
            )
        return names

    def advice_for(self, rule: Rule) -> ChargeAdvice:
        """The advice for a rule's findings: by rule id, then root cause, then the rule."""
        for key in (rule.id, rule.root_cause):
            if key in self.charge_advice:
                return self.charge_advice[key]
        return rule.charge.advice


def load_policy(path: str | Path | None) -> Policy:
    """Read a policy file (None gives the defaults); errors name the file and field."""
    if path is None:
        return Policy()
    return load_yaml_model(path, Policy, ConfigError, "policy", empty_ok=True)
