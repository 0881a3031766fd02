"""The case desk: disputes kept in a database, deadlines tracked, outcomes reused.

``CaseStore(db)`` opens (creating or migrating) a store: a SQLite file path, or a
PostgreSQL URL; with no ``db``, ``$TELEDIAG_DB`` or a file in the user's data directory.
``telediag case ...`` is the same on the command line.
"""

from __future__ import annotations

from telediag.cases.db import DB_ENV, default_db_path, resolve_db
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
)
from telediag.cases.store import CaseStore

__all__ = [
    "DB_ENV",
    "STANDARD_OUTCOMES",
    "Case",
    "CaseDeadlines",
    "CaseEvent",
    "CaseFinding",
    "CaseRuledOut",
    "CaseStore",
    "CaseSummary",
    "Shared",
    "SimilarCase",
    "default_db_path",
    "resolve_db",
]
