"""The plain-text scan summary printed by ``telediag scan`` and ``telediag demo``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from telediag.scan import ScanResult


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
        ).rstrip()

    return [fmt(headers), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)]


def by_root_cause(findings: pd.DataFrame) -> pd.DataFrame:
    """Findings, subscribers and charge at stake per root cause."""
    if findings.empty:
        return pd.DataFrame(columns=["root_cause", "findings", "subscribers", "charge"])
    grouped = findings.groupby("root_cause", sort=True).agg(
        findings=("finding_id", "size"),
        subscribers=("msisdn", "nunique"),
        charge=("charge", "sum"),
    )
    return grouped.reset_index()


def scan_summary(result: ScanResult, top: int = 10) -> str:
    """A readable summary: input accounting, findings by root cause, top findings."""
    rep = result.report
    lines = [
        f"Input: {len(rep.files)} file(s), {rep.rows_read:,} rows read, "
        f"{rep.rows_used:,} used, {rep.rows_set_aside:,} set aside"
    ]
    for reason, count in sorted(rep.set_aside.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  set aside: {count:,} {reason}")
    for column, count in sorted(rep.disagreements.items()):
        lines.append(
            f"  {count:,} rows where the map's sources for {column} disagree (first one used)"
        )
    for name, layout in rep.layouts.items():
        lines.append(f"  {name}: read with layout {layout}")
    for warning in rep.warnings:
        lines.append(f"  warning: {warning}")
    lines.append(f"Rules: {len(result.rules)} run, {len(result.errors)} failed")
    for err in result.errors:
        lines.append(f"  rule error: {err}")
    f = result.findings
    lines.append("")
    if f.empty:
        lines.append("No findings.")
        return "\n".join(lines)
    agg = by_root_cause(f)
    rows = [
        [str(r.root_cause), f"{r.findings:,}", f"{r.subscribers:,}", f"{r.charge:,.2f}"]
        for r in agg.itertuples()
    ]
    rows.append(["total", f"{len(f):,}", f"{f['msisdn'].nunique():,}", f"{f['charge'].sum():,.2f}"])
    lines.extend(_table(["root cause", "findings", "subscribers", "charge"], rows, {1, 2, 3}))
    lines.append("")
    ranked = f.sort_values(["confidence", "charge", "finding_id"], ascending=[False, False, True])
    lines.append(f"Top findings ({min(top, len(f))} of {len(f)}):")
    for r in ranked.head(top).itertuples():
        lines.append(f"  {r.msisdn}  {r.rule_id} {r.root_cause}  conf {r.confidence:.2f}")
        lines.append(f"      {r.summary}")
    return "\n".join(lines)
