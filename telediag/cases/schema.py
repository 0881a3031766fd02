"""The case store's tables, their version, and the migrations run when a store opens.

The same tables serve SQLite and PostgreSQL through SQLAlchemy Core. The schema
version is a row of ``telediag_meta``; opening a store runs, in one transaction, every
migration between the version found and :data:`SCHEMA_VERSION`. A store written by a
newer telediag is refused rather than guessed at.

To change the schema: add a step to :data:`MIGRATIONS` with the DDL that turns the
previous version into the new one (``ALTER TABLE ...``), raise :data:`SCHEMA_VERSION`,
and make :func:`define_tables` give the new shape for the new version only, so that
``_v1`` keeps creating exactly the v1 tables and every store, new or old, goes through
the same steps.

History: v1 the first store; v2 ``case_ruled_out.verdict`` (``ruled_out`` or
``could_not_check``: a hypothesis the records cannot test is not a clean bill), and
names people type or data brings (who, outcomes, numbers, causes, handsets) as text of
any length, as SQLite always kept them.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from telediag.errors import CaseStoreError

#: The version this telediag writes.
SCHEMA_VERSION = 2

#: Key/value facts about the store (the schema version); created before any migration.
META = sa.MetaData()
meta_table = sa.Table(
    "telediag_meta",
    META,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


def define_tables(md: sa.MetaData, version: int = SCHEMA_VERSION) -> dict[str, sa.Table]:
    """The tables of schema ``version``, on ``md``. Times are naive UTC."""

    def free(length: int) -> sa.types.TypeEngine[str]:
        # Names people type or data brings (who, outcomes, numbers, causes, handsets):
        # bounded in v1, which PostgreSQL enforced and SQLite did not; text since v2.
        return sa.Text() if version >= 2 else sa.String(length)

    since_v2 = (
        [sa.Column("verdict", sa.String(16), nullable=False, server_default="ruled_out")]
        if version >= 2
        else []
    )
    cases = sa.Table(
        "cases",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("msisdn", free(64), nullable=False, index=True),
        sa.Column("complaint_date", sa.Date, nullable=False),
        sa.Column("summary", sa.Text),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("outcome", free(64)),
        sa.Column("opened_at", sa.DateTime, nullable=False),
        sa.Column("opened_by", free(128)),
        sa.Column("closed_at", sa.DateTime),
        sa.Column("acknowledge_by", sa.Date, nullable=False),
        sa.Column("investigate_by", sa.Date, nullable=False),
        sa.Column("resolve_by", sa.Date, nullable=False),
        sa.Column("period_start", sa.DateTime),
        sa.Column("period_end", sa.DateTime),
        sa.Column("tz", sa.String(64), nullable=False),
        sa.Column("handset_model", free(128)),
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
        sa.Column("root_cause", free(64), nullable=False, index=True),
        sa.Column("msisdn", free(64), nullable=False),
        sa.Column("group_label", sa.Text, nullable=False),
        sa.Column("first_day", sa.Date, nullable=False),
        sa.Column("first_seen", sa.DateTime, nullable=False),
        sa.Column("last_seen", sa.DateTime, nullable=False),
        sa.Column("record_count", sa.Integer, nullable=False),
        sa.Column("charge", sa.Float, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("charge_advice", sa.String(32), nullable=False),
        sa.Column("handset_model", free(128)),
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
        sa.Column("root_cause", free(64), nullable=False),
        *since_v2,
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
        sa.Column("by", free(128)),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("outcome", free(64)),
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
    define_tables(md, version=1)
    md.create_all(conn)


#: The columns that became text in v2, by table.
_TEXT_SINCE_V2 = {
    "cases": ("msisdn", "outcome", "opened_by", "handset_model"),
    "case_findings": ("root_cause", "msisdn", "handset_model"),
    "case_ruled_out": ("root_cause",),
    "case_events": ("by", "outcome"),
}


def _v2(conn: Connection) -> None:
    conn.execute(
        sa.text(
            "ALTER TABLE case_ruled_out ADD COLUMN verdict VARCHAR(16) NOT NULL DEFAULT 'ruled_out'"
        )
    )
    if conn.dialect.name != "sqlite":  # SQLite never enforced the lengths
        prep = conn.dialect.identifier_preparer
        for table, columns in _TEXT_SINCE_V2.items():
            changes = ", ".join(f"ALTER COLUMN {prep.quote(c)} TYPE TEXT" for c in columns)
            conn.execute(sa.text(f"ALTER TABLE {table} {changes}"))


#: version -> the step that brings a store from the version before to it.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1, 2: _v2}


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
    if found == 0:
        others = sorted(sa.inspect(conn).get_table_names())
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            raise CaseStoreError(
                f"not a case store: it has other tables ({shown}); "
                "give a new file or an empty database"
            )
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
