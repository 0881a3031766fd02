"""The whole flow in one call: read -> normalize -> sort -> rules -> findings."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from telediag.catalog import Rule, load_rules, select_rules
from telediag.colmap import ColumnMap, load_column_map
from telediag.context import ScanSettings
from telediag.derived import DERIVED_COLUMNS
from telediag.engine import Progress, RuleError, default_workers, run_catalog
from telediag.normalize import InputReport, Normalized, normalize, order_rejects
from telediag.read import Sources, labelled_sources, read_input
from telediag.schema import COLUMNS
from telediag.sort import SortedRecords, sort_records

if TYPE_CHECKING:
    from telediag.buckets import BucketResult
    from telediag.numbers import HomeCountry
    from telediag.outofcore import BucketProgress

#: Every scan reads every contract column the input has, whatever rules are selected,
#: so that the same rows are checked (and set aside) for any selection. Columns the
#: contract does not know are left unread.
CONTRACT_COLUMNS: frozenset[str] = frozenset(COLUMNS)

#: Columns a handset bucket keeps whatever its rules: identity, time, charge, handset.
ALWAYS_READ: frozenset[str] = frozenset(
    {
        "record_id",
        "record_type",
        "direction",
        "start_time",
        "msisdn",
        "charge",
        "imei",
        "imsi",
        "status",
    }
)


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
    #: The set-aside rows, when the scan ran in buckets (no one table holds them all).
    set_aside_rows: pa.Table | None = field(default=None, repr=False)

    @classmethod
    def of_buckets(
        cls, part: BucketResult, rules: list[Rule], timings: dict[str, float]
    ) -> ScanResult:
        """The result of a scan run bucket by bucket (out of core, or on a store)."""
        return cls(
            findings=part.findings,
            evidence=part.evidence,
            report=part.report,
            errors=part.errors,
            rules=rules,
            timings=timings,
            set_aside_rows=part.rejects,
        )

    def rejects(self) -> pa.Table:
        """The rows set aside, as read, with their reason, ordered by record id."""
        if self.set_aside_rows is not None:
            return self.set_aside_rows
        if self.normalized is None:
            raise ValueError("this result holds no input")
        return order_rejects(self.normalized.rejects())

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


def columns_needed(rules: Sequence[Rule]) -> set[str]:
    """Contract columns these rules read (derived columns map to their sources), plus
    :data:`ALWAYS_READ`: what a handset bucket must carry for its rules."""
    cols = set(ALWAYS_READ)
    for rule in rules:
        for col in rule.columns():
            if col in DERIVED_COLUMNS:
                cols.update(DERIVED_COLUMNS[col][0])
            else:
                cols.add(col)
    return cols


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
    memory: int | str | None = None,
    buckets: int | None = None,
    spill_dir: str | Path | None = None,
    bucket_progress: BucketProgress | None = None,
) -> ScanResult:
    """Scan CDRs with the rule catalog.

    ``source`` is a Parquet file, a directory of Parquet files, a CSV file, an Arrow
    table, or a list of these. ``rules`` is a rules directory, a list of rules, or None
    for the shipped catalog. Naive times are read in ``tz`` (default UTC), which is also
    the zone of "night" and "day" measures. ``workers`` sizes every thread pool of the
    scan (normalization, sorting, rules; default: one per core, at most four).

    ``memory`` is the budget (bytes, or text such as ``"2GB"``; default: half of the
    memory available). An input that may not fit it is scanned out of core: spilled into
    buckets under ``spill_dir`` and scanned ``workers`` buckets at a time (see
    :mod:`telediag.outofcore`); ``buckets`` forces that path with that many buckets. A
    store made by :func:`telediag.store.prepare` is scanned bucket by bucket as it is
    (its time zone is the default ``tz``). The findings are the same either way.
    """
    from telediag.outofcore import (
        can_stream,
        default_budget,
        estimate_rows,
        fits_in_memory,
        parse_size,
        scan_out_of_core,
    )
    from telediag.store import scan_store, store_path, store_zone

    timings: dict[str, float] = {}
    chosen = _resolve_rules(rules, select, ignore)
    store = store_path(source)
    if store is not None:
        tz = store_zone(store, tz)
    settings = ScanSettings(tz=tz or "UTC") if home is None else ScanSettings(tz or "UTC", home)
    threads = workers if workers is not None else default_workers()
    if store is not None:
        part = scan_store(
            store,
            chosen,
            settings,
            workers=threads,
            budget=parse_size(memory) if isinstance(memory, str) else memory,
            progress=bucket_progress,
            timings=timings,
        )
        return ScanResult.of_buckets(part, chosen, timings)
    budget = parse_size(memory) if isinstance(memory, str) else memory or default_budget()
    # Paths are sized from their footers; in-memory sources (a stream can be read only
    # once) are expanded only when buckets were asked for.
    by_path = isinstance(source, (str, Path)) or (
        isinstance(source, (list, tuple)) and all(isinstance(x, (str, Path)) for x in source)
    )
    labelled = labelled_sources(source) if by_path or buckets is not None else []
    items = [item for item, _ in labelled]
    large = buckets is not None or (by_path and not fits_in_memory(estimate_rows(items), budget))
    cmap = load_column_map(column_map) if isinstance(column_map, (str, Path)) else column_map
    if cmap is not None:
        settings = replace(settings, time_formats=cmap.time_formats())
    if not by_path and labelled:
        source = items  # already read into tables
    if large and can_stream(items, cmap):
        started = time.perf_counter()
        part = scan_out_of_core(
            labelled,
            chosen,
            settings,
            columns=set(CONTRACT_COLUMNS),
            # Only what the handset rules read: their rows set aside are told by position.
            handset_columns=columns_needed([r for r in chosen if r.cross_subscriber]),
            cmap=cmap,
            budget=budget,
            workers=threads,
            buckets=buckets,
            spill_dir=spill_dir,
            progress=bucket_progress,
            timings=timings,
        )
        timings["total"] = time.perf_counter() - started
        return ScanResult.of_buckets(part, chosen, timings)

    def step(name: str, started: float) -> None:
        timings[name] = time.perf_counter() - started
        if progress is not None:
            progress(name, 1, 1)

    t = time.perf_counter()
    raw = read_input(source, column_map=column_map, columns=set(CONTRACT_COLUMNS), tz=settings.tz)
    step("read", t)
    t = time.perf_counter()
    normalized = normalize(raw, tz=settings.tz, threads=threads)
    del raw  # the month as read: normalized keeps only its rows set aside
    step("normalize", t)
    t = time.perf_counter()
    records = sort_records(normalized, threads=threads)
    step("sort", t)
    t = time.perf_counter()
    result = run_catalog(records, chosen, settings, progress=progress, workers=threads)
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
