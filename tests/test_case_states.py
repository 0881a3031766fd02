"""A hypothesis state machine drives the case store: cases are opened, noted, closed and
reopened in random order, and the store must agree with a plain model of the desk after
every step (statuses, outcomes, counts, and each case's history)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

import telediag
from telediag.cases import STANDARD_OUTCOMES, CaseStore
from telediag.errors import CaseStoreError
from telediag.investigation import Investigation

from .conftest import FIXTURES

_INVESTIGATION: Investigation | None = None


def _investigation() -> Investigation:
    """One real investigation, made once and recorded as every case."""
    global _INVESTIGATION
    if _INVESTIGATION is None:
        _INVESTIGATION = telediag.investigate(
            FIXTURES / "TD005" / "nokia-fetches-78-times.csv",
            "13800000501",
            complaint_date="2008-04-07",
            tz="Asia/Shanghai",
        )
    return _INVESTIGATION


PEOPLE = st.sampled_from(["ann", "bob", "cy"])


class DeskMachine(RuleBasedStateMachine):
    cases = Bundle("cases")

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="telediag-desk-"))
        self.store = CaseStore(self.folder / "cases.sqlite")
        self.status: dict[int, str] = {}
        self.outcome: dict[int, str | None] = {}
        self.history: dict[int, list[tuple[str, str | None, str | None]]] = {}

    def teardown(self) -> None:
        self.store.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)

    @initialize(target=cases, who=PEOPLE)
    def first_case(self, who: str) -> int:
        return self.open_case(who)

    @rule(target=cases, who=PEOPLE)
    def open_case(self, who: str) -> int:
        case = self.store.record(_investigation(), by=who)
        assert case.id not in self.status
        self.status[case.id] = "open"
        self.outcome[case.id] = None
        self.history[case.id] = [("open", who, None)]
        return case.id

    @rule(case_id=cases, who=PEOPLE, text=st.text(min_size=1, max_size=20).filter(str.strip))
    def note(self, case_id: int, who: str, text: str) -> None:
        if "\x00" in text:  # refused alike by both back ends (PostgreSQL cannot store it)
            with pytest.raises(CaseStoreError, match="NUL character"):
                self.store.note(case_id, text, by=who)
            return
        case = self.store.note(case_id, text, by=who)
        self.history[case_id].append(("note", who, None))
        assert case.history[-1].text == text

    @rule(case_id=cases, who=PEOPLE, outcome=st.sampled_from(STANDARD_OUTCOMES))
    def close(self, case_id: int, who: str, outcome: str) -> None:
        if self.status[case_id] == "closed":
            with pytest.raises(CaseStoreError, match="already closed"):
                self.store.close(case_id, outcome, by=who)
            return
        self.store.close(case_id, outcome, by=who)
        self.status[case_id] = "closed"
        self.outcome[case_id] = outcome
        self.history[case_id].append(("close", who, outcome))

    @rule(case_id=cases, who=PEOPLE)
    def reopen(self, case_id: int, who: str) -> None:
        if self.status[case_id] == "open":
            with pytest.raises(CaseStoreError, match="only a closed case"):
                self.store.reopen(case_id, by=who)
            return
        self.store.reopen(case_id, by=who)
        self.status[case_id] = "open"
        self.outcome[case_id] = None
        self.history[case_id].append(("reopen", who, None))

    @invariant()
    def counts_agree(self) -> None:
        for status in ("open", "closed"):
            listed = self.store.cases(status)
            assert [c.id for c in listed] == sorted(
                i for i, s in self.status.items() if s == status
            )
            assert all(c.outcome == self.outcome[c.id] for c in listed)
        frame = self.store.list_cases("all")
        assert len(frame) == len(self.status)
        stats = self.store.stats().set_index(["by", "key"]).loc[("rule", "TD005")]
        assert stats["cases"] == len(self.status)
        assert stats["open"] == sum(s == "open" for s in self.status.values())
        for outcome in STANDARD_OUTCOMES:
            assert stats[outcome] == sum(
                self.status[i] == "closed" and o == outcome for i, o in self.outcome.items()
            )

    @invariant()
    def histories_agree(self) -> None:
        for case_id, expected in self.history.items():
            case = self.store.case(case_id)
            assert [(e.action, e.by, e.outcome) for e in case.history] == expected
            assert case.status == self.status[case_id]
            assert case.outcome == self.outcome[case_id]
            times = [e.at for e in case.history]
            assert times == sorted(times)


DeskMachine.TestCase.settings = settings(
    max_examples=10,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestDesk = DeskMachine.TestCase
