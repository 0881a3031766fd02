"""The case store's tables, their version, and the migrations run when a store opens.

The same tables serve SQLite and PostgreSQL through SQLAlchemy Core. The schema
version is a row of ``telediag_meta``; opening a store runs, in one transaction, every
migration between the version found and :data:`SCHEMA_VERSION`. A store written by a
newer telediag is refused rather than guessed at.

To change the schema: add ``_v2`` to :data:`MIGRATIONS` with the DDL that turns a v1
store into a v2 one (``ALTER TABLE ...``), raise :data:`SCHEMA_VERSION`, and change
:func:`define_tables` to the new shape. ``_v1`` must keep creating the v1 tables, so
before changing ``define_tables`` copy the v1 definitions into it.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from telediag.errors import CaseStoreError

#: The version this telediag writes.
SCHEMA_VERSION = 1

#: Key/value facts about the store (the schema version); created before any migration.
META = sa.MetaData()
meta_table = sa.Table(
    "telediag_meta",
    META,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


def define_tables(md: sa.MetaData) -> dict[str, sa.Table]:
    """The tables of the current schema, on ``md``. Times are naive UTC."""
    cases = sa.Table(
        "cases",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("msisdn", sa.String(64), nullable=False, index=True),
        sa.Column("complaint_date", sa.Date, nullable=False),
        sa.Column("summary", sa.Text),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("outcome", sa.String(64)),
        sa.Column("opened_at", sa.DateTime, nullable=False),
        sa.Column("opened_by", sa.String(128)),
        sa.Column("closed_at", sa.DateTime),
        sa.Column("acknowledge_by", sa.Date, nullable=False),
        sa.Column("investigate_by", sa.Date, nullable=False),
        sa.Column("resolve_by", sa.Date, nullable=False),
        sa.Column("period_start", sa.DateTime),
        sa.Column("period_end", sa.DateTime),
        sa.Column("tz", sa.String(64), nullable=False),
        sa.Column("handset_model", sa.String(128)),
        sa.Column("charge", sa.Float, nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),  # JSON list of the files read
        sa.Column("policy", sa.Text, nullable=False),  # JSON of the policy applied
        sa.Column("catalog_version", sa.String(64), nullable=False),
        sa.Column("telediag_version", sa.String(32), nullable=False),
        sa.Column("report", sa.Text, nullable=False),  # the JSON report
        sa.Column("records", sa.LargeBinary),  # Parquet of the records the report shows
    )
    findings = sa.Table(
        "case_findings",
        md,
        sa.Column(
            "case_id", sa.Integer, sa.ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("rank", sa.Integer, primary_key=True),
        sa.Column("finding_id", sa.String(64), nullable=False),
        sa.Column("finding_key", sa.String(64), nullable=False, index=True),
        sa.Column("rule_id", sa.String(16), nullable=False, index=True),
        sa.Column("rule_version", sa.Integer, nullable=False),
        sa.Column("root_cause", sa.String(64), nullable=False, index=True),
        sa.Column("msisdn", sa.String(64), nullable=False),
        sa.Column("group_label", sa.Text, nullable=False),
        sa.Column("first_day", sa.Date, nullable=False),
        sa.Column("first_seen", sa.DateTime, nullable=False),
        sa.Column("last_seen", sa.DateTime, nullable=False),
        sa.Column("record_count", sa.Integer, nullable=False),
        sa.Column("charge", sa.Float, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("charge_advice", sa.String(32), nullable=False),
        sa.Column("handset_model", sa.String(128)),
        sa.Column("summary", sa.Text, nullable=False),
    )
    evidence = sa.Table(
        "case_evidence",
        md,
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id", ondelete="CASCADE")),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("record_id", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("case_id", "rank", "seq"),
    )
    ruled_out = sa.Table(
        "case_ruled_out",
        md,
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id", ondelete="CASCADE")),
        sa.Column("rule_id", sa.String(16), nullable=False),
        sa.Column("root_cause", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("records_considered", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("case_id", "rule_id"),
    )
    events = sa.Table(
        "case_events",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "case_id",
            sa.Integer,
            sa.ForeignKey("cases.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("by", sa.String(128)),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("outcome", sa.String(64)),
    )
    return {
        "cases": cases,
        "findings": findings,
        "evidence": evidence,
        "ruled_out": ruled_out,
        "events": events,
    }


METADATA = sa.MetaData()
TABLES = define_tables(METADATA)
cases_t = TABLES["cases"]
findings_t = TABLES["findings"]
evidence_t = TABLES["evidence"]
ruled_out_t = TABLES["ruled_out"]
events_t = TABLES["events"]


def _v1(conn: Connection) -> None:
    md = sa.MetaData()
    define_tables(md)
    md.create_all(conn)


#: version -> the step that brings a store from the version before to it.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1}


def stored_version(conn: Connection) -> int:
    """The schema version of the store on ``conn`` (0 for an empty database)."""
    if not sa.inspect(conn).has_table(meta_table.name):
        return 0
    value = conn.execute(
        sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")
    ).scalar()
    return int(value) if value is not None else 0


def migrate(
    conn: Connection,
    target: int = SCHEMA_VERSION,
    migrations: dict[int, Callable[[Connection], None]] | None = None,
) -> tuple[int, int]:
    """Bring the store on ``conn`` (inside a write transaction) to ``target``.

    Returns (version found, version now). A store newer than ``target`` is refused.
    """
    steps = MIGRATIONS if migrations is None else migrations
    found = stored_version(conn)
    if found > target:
        raise CaseStoreError(
            f"the case store has schema version {found}, newer than this telediag "
            f"knows ({target}): upgrade telediag"
        )
    if found == target:
        return found, found
    META.create_all(conn)
    for version in range(found + 1, target + 1):
        steps[version](conn)
    if found == 0:
        conn.execute(sa.insert(meta_table).values(key="schema_version", value=str(target)))
    else:
        conn.execute(
            sa.update(meta_table)
            .where(meta_table.c.key == "schema_version")
            .values(value=str(target))
        )
    return found, target
