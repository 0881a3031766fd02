"""The whole flow in one call: read -> normalize -> sort -> rules -> findings."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from telediag.catalog import Rule, load_rules, select_rules
from telediag.colmap import ColumnMap
from telediag.context import ScanSettings
from telediag.engine import Progress, RuleError, run_catalog
from telediag.normalize import InputReport, Normalized, normalize
from telediag.read import Sources, read_input
from telediag.schema import COLUMNS
from telediag.sort import SortedRecords, sort_records

if TYPE_CHECKING:
    from telediag.numbers import HomeCountry

#: Every scan reads every contract column the input has, whatever rules are selected,
#: so that the same rows are checked (and set aside) for any selection. Columns the
#: contract does not know are left unread.
CONTRACT_COLUMNS: frozenset[str] = frozenset(COLUMNS)


@dataclass
class ScanResult:
    """What a scan found, and what it did with the input."""

    findings: pd.DataFrame
    evidence: pd.DataFrame
    report: InputReport
    errors: list[RuleError]
    rules: list[Rule]
    timings: dict[str, float] = field(default_factory=dict)
    normalized: Normalized | None = field(default=None, repr=False)
    records: SortedRecords | None = field(default=None, repr=False)

    def rejects(self) -> pa.Table:
        """The rows set aside, as read, with their reason."""
        if self.normalized is None:
            raise ValueError("this result holds no input")
        return self.normalized.rejects()

    def evidence_for(self, finding_id: str) -> list[str]:
        """The record ids behind one finding, in time order."""
        rows = self.evidence[self.evidence["finding_id"] == finding_id]
        return [str(v) for v in rows["record_id"]]

    def _repr_html_(self) -> str:
        from telediag.views.notebook import scan_result_html

        return scan_result_html(self)

    def __repr__(self) -> str:
        return (
            f"<ScanResult {len(self.findings)} findings from {self.report.rows_used} of "
            f"{self.report.rows_read} rows, {len(self.rules)} rules, {len(self.errors)} errors>"
        )


def _resolve_rules(
    rules: Sequence[Rule] | str | Path | None,
    select: list[str] | None,
    ignore: list[str] | None,
) -> list[Rule]:
    if rules is None or isinstance(rules, (str, Path)):
        return load_rules(rules, select=select, ignore=ignore)
    return select_rules([r for r in rules if r.active], select, ignore)


def scan(
    source: Sources,
    rules: Sequence[Rule] | str | Path | None = None,
    tz: str | None = None,
    column_map: ColumnMap | str | Path | None = None,
    *,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    home: HomeCountry | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> ScanResult:
    """Scan CDRs with the rule catalog.

    ``source`` is a Parquet file, a directory of Parquet files, a CSV file, an Arrow
    table, or a list of these. ``rules`` is a rules directory, a list of rules, or None
    for the shipped catalog. Naive times are read in ``tz`` (default UTC), which is also
    the zone of "night" and "day" measures. Rules run in ``workers`` threads (default:
    one per core, at most four).
    """
    timings: dict[str, float] = {}
    chosen = _resolve_rules(rules, select, ignore)
    settings = ScanSettings(tz=tz or "UTC") if home is None else ScanSettings(tz or "UTC", home)

    def step(name: str, started: float) -> None:
        timings[name] = time.perf_counter() - started
        if progress is not None:
            progress(name, 1, 1)

    t = time.perf_counter()
    raw = read_input(source, column_map=column_map, columns=set(CONTRACT_COLUMNS))
    step("read", t)
    t = time.perf_counter()
    normalized = normalize(raw, tz=settings.tz)
    step("normalize", t)
    t = time.perf_counter()
    records = sort_records(normalized)
    step("sort", t)
    t = time.perf_counter()
    result = run_catalog(records, chosen, settings, progress=progress, workers=workers)
    timings["rules"] = time.perf_counter() - t
    for rule_id, seconds in result.seconds.items():
        timings[f"rule {rule_id}"] = seconds
    return ScanResult(
        findings=result.findings,
        evidence=result.evidence,
        report=normalized.report,
        errors=result.errors,
        rules=chosen,
        timings=timings,
        normalized=normalized,
        records=records,
    )
