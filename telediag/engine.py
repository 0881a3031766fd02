"""Step 4: run the rule catalog over the sorted records.

For each rule: its filter gives sorted positions, its detector measures them, its
thresholds judge the measurements, and the survivors become findings. A rule that
raises becomes a :class:`RuleError` naming it; the other rules' findings stand.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from telediag.catalog import Rule
from telediag.context import ScanSettings
from telediag.detectors import REGISTRY, Candidates, DetectContext
from telediag.filters import FilterEvaluator
from telediag.findings import (
    build_findings,
    empty_evidence,
    empty_findings,
    order_evidence,
    order_findings,
)
from telediag.sort import SortedRecords
from telediag.timeutil import LocalClock

#: progress(stage, done, total): called before each rule and once at the end.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RuleError:
    """A rule that failed while running; its findings are missing, the others stand."""

    rule_id: str
    message: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.message}"


@dataclass
class RuleOutcome:
    """What one rule produced: the measurements of every candidate and the survivors."""

    rule: Rule
    candidates: Candidates
    passed: np.ndarray
    #: The candidates that passed; finding ``i`` of ``findings`` is survivor ``i``.
    survivors: Candidates
    findings: pd.DataFrame
    evidence: pd.DataFrame
    seconds: float


def _min_count(rule: Rule) -> int:
    cond = rule.thresholds.get("count")
    return int(cond.min) if cond is not None and cond.min is not None else 1


def judge(rule: Rule, cands: Candidates) -> np.ndarray:
    """Which candidates pass every threshold of the rule."""
    keep = np.ones(len(cands), dtype=bool)
    for name, cond in rule.thresholds.items():
        keep &= cond.mask(cands.measures[name])
    return keep


def run_rule(
    rule: Rule,
    records: SortedRecords,
    evaluator: FilterEvaluator,
    settings: ScanSettings,
    keep_all: bool = False,
) -> RuleOutcome:
    """Run one rule. With ``keep_all`` every candidate is measured (no early pruning),
    so the caller can explain why near-misses did not pass."""
    started = time.perf_counter()
    detector = REGISTRY[rule.detector.kind]
    mask = evaluator.mask(rule.records)
    positions = records.positions_of(mask)
    clock = LocalClock(settings.tz)
    ctx = DetectContext(
        records=records,
        clock=clock,
        wanted=rule.measures_used() if not keep_all else set(detector.MEASURES),
        min_count=1 if keep_all else _min_count(rule),
    )
    cands = detector.detect(ctx, positions, rule.detector.parsed)
    passed = judge(rule, cands)
    survivors = cands.select(passed)
    findings, evidence = build_findings(rule, records, survivors, clock)
    return RuleOutcome(
        rule=rule,
        candidates=cands,
        passed=passed,
        survivors=survivors,
        findings=findings,
        evidence=evidence,
        seconds=time.perf_counter() - started,
    )


def seed_tallies(
    records: SortedRecords,
    rules: Sequence[Rule],
    settings: ScanSettings,
    errors: list[RuleError] | None = None,
) -> list[pa.Table] | None:
    """What these records (a part of the month cut by subscriber) tell of the keys
    (IMEIs) on which the cross-subscriber ``rules`` may find something: each rule's
    :meth:`~telediag.detectors.base.Detector.seeds`, in the order of ``rules`` (not by
    id: a list of rules may repeat one). None when some rule may find something on any
    key, including a rule whose filter or seeds fail here. A filter that fails is the
    rule's error wherever it runs: it is added to ``errors`` as :func:`run_catalog`
    reports it (a part of the month may hand no row to the rule's own scan). :func:`pick_seeds`
    puts the parts together."""
    evaluator = FilterEvaluator(records.table, settings, records.normalized.encoded)
    clock = LocalClock(settings.tz)
    found: list[pa.Table] | None = []
    for rule in rules:
        detector = REGISTRY[rule.detector.kind]
        try:
            mask = evaluator.mask(rule.records)
        except Exception as exc:
            if errors is not None:
                errors.append(_rule_error(rule, exc))
            found = None
            continue
        if found is None:
            continue
        try:
            positions = records.positions_of(mask)
            ctx = DetectContext(records=records, clock=clock, min_count=_min_count(rule))
            tallies = detector.seeds(ctx, positions, rule.detector.parsed)
        except Exception:  # the rule fails again where it runs, and says so there
            tallies = None
        if tallies is None:
            found = None
            continue
        found.append(tallies)
    return found


def _rule_error(rule: Rule, exc: Exception) -> RuleError:
    """A rule's failure as the scan reports it."""
    return RuleError(
        rule_id=rule.id, message=f"{type(exc).__name__}: {exc}", detail=traceback.format_exc()
    )


def pick_seeds(parts: Sequence[Sequence[pa.Table]], rules: Sequence[Rule]) -> pa.Array:
    """The keys on which some of ``rules`` may find something, from the
    :func:`seed_tallies` of every part of the month (a part with no records may give
    none): a rule's tallies are added up by key over the parts, and a key is its seed
    when each sum reaches the detector's minimum
    (:data:`~telediag.detectors.base.Detector.SEED_MINIMUMS`)."""
    keys: list[pa.Array] = []
    for place, rule in enumerate(rules):
        tables = [part[place] for part in parts if part]
        if not tables:
            continue
        minimums = REGISTRY[rule.detector.kind].SEED_MINIMUMS
        tallies = pa.concat_tables(t.select(["key", *minimums]) for t in tables)
        if minimums:
            tallies = tallies.group_by("key").aggregate([(name, "sum") for name in minimums])
            for name, least in minimums.items():
                tallies = tallies.filter(pc.greater_equal(tallies[f"{name}_sum"], least))
        keys.append(tallies["key"].combine_chunks().cast(pa.string()))
    if not keys:
        return pa.array([], pa.string())
    return pc.unique(pa.concat_arrays(keys))


@dataclass
class EngineResult:
    """Findings of the whole catalog, with per-rule timings and errors."""

    findings: pd.DataFrame
    evidence: pd.DataFrame
    errors: list[RuleError]
    seconds: dict[str, float]


def default_workers() -> int:
    """Threads for running rules: one per core, at most four."""
    return max(1, min(4, os.cpu_count() or 1))


def run_catalog(
    records: SortedRecords,
    rules: Sequence[Rule],
    settings: ScanSettings,
    progress: Progress | None = None,
    workers: int | None = None,
) -> EngineResult:
    """Run every rule; collect findings, evidence, errors and timings.

    Rules are independent once the records are sorted, and their heavy steps (Arrow
    compute, numpy sorts and reductions) release the GIL, so they run in a small thread
    pool. Results are collected in catalog order and the findings sorted at the end, so
    the output does not depend on which thread finished first.
    """
    evaluator = FilterEvaluator(records.table, settings, records.normalized.encoded)
    records.subscriber_bounds()  # shared, computed once before the threads start
    records.positions_of(np.zeros(records.table.num_rows, dtype=bool))

    def one(item: tuple[int, Rule]) -> tuple[Rule, RuleOutcome | RuleError, float]:
        i, rule = item
        if progress is not None:
            progress(f"rule {rule.id} {rule.name}", i, len(rules))
        started = time.perf_counter()
        try:
            return rule, run_rule(rule, records, evaluator, settings), 0.0
        except Exception as exc:  # one broken rule must not stop the scan
            return rule, _rule_error(rule, exc), time.perf_counter() - started

    n_workers = workers if workers is not None else default_workers()
    if n_workers > 1 and len(rules) > 1:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            results = list(pool.map(one, enumerate(rules)))
    else:
        results = [one(item) for item in enumerate(rules)]
    all_findings: list[pd.DataFrame] = []
    all_evidence: list[pd.DataFrame] = []
    errors: list[RuleError] = []
    seconds: dict[str, float] = {}
    for rule, outcome, failed_after in results:
        if isinstance(outcome, RuleError):
            errors.append(outcome)
            seconds[rule.id] = failed_after
            continue
        seconds[rule.id] = outcome.seconds
        if len(outcome.findings):
            all_findings.append(outcome.findings)
            all_evidence.append(outcome.evidence)
    if progress is not None:
        progress("rules done", len(rules), len(rules))
    findings = pd.concat(all_findings, ignore_index=True) if all_findings else empty_findings()
    evidence = pd.concat(all_evidence, ignore_index=True) if all_evidence else empty_evidence()
    if len(findings):
        findings = order_findings(findings)
        evidence = order_evidence(evidence)
    return EngineResult(findings=findings, evidence=evidence, errors=errors, seconds=seconds)
