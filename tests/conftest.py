"""Shared helpers for the test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "cdr"
RULES = ROOT / "rules"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def catalog():  # type: ignore[no-untyped-def]
    import telediag

    return telediag.load_rules(RULES)


@pytest.fixture(autouse=True)
def rows_add_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every scan, investigation and check in every test: rows read = used + set aside,
    every input row is in the canonical table, and every set-aside row has a reason."""
    import importlib

    import numpy as np

    from telediag.normalize import normalize as original

    def checked(raw, tz=None):  # type: ignore[no-untyped-def]
        norm = original(raw, tz=tz)
        rep = norm.report
        assert rep.rows_read == raw.num_rows == norm.table.num_rows
        assert rep.rows_read == rep.rows_used + rep.rows_set_aside
        assert rep.rows_used == int(np.count_nonzero(norm.valid))
        assert bool(np.all((norm.reason == 0) == norm.valid))
        return norm

    for name in ("telediag.scan", "telediag.investigation", "telediag.columns"):
        monkeypatch.setattr(importlib.import_module(name), "normalize", checked)
