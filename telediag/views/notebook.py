"""Rich HTML for notebooks: what ``ScanResult`` shows when it is the value of a cell.

An :class:`~telediag.investigation.Investigation` shows its report (see
:func:`telediag.views.report.render` with ``standalone=False``); a scan result shows
the input accounting, the findings by root cause and the first findings. The findings
themselves stay pandas DataFrames (``result.findings``) for anything further.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import pandas as pd

from telediag.views.report import CSS
from telediag.views.summary import by_root_cause

if TYPE_CHECKING:
    from telediag.scan import ScanResult

#: How many findings a scan result shows in a notebook.
FINDINGS_SHOWN = 20

_FINDING_COLUMNS = (
    ("msisdn", "subscriber"),
    ("rule_id", "rule"),
    ("root_cause", "root cause"),
    ("first_seen", "first seen"),
    ("last_seen", "last seen"),
    ("record_count", "records"),
    ("charge", "charge"),
    ("confidence", "confidence"),
    ("summary", "summary"),
)
_NUMERIC = {"record_count", "charge", "confidence"}


def _e(value: Any) -> str:
    return html.escape(str(value))


def _cell(column: str, value: Any) -> str:
    if value is None or (not isinstance(value, (list, tuple)) and pd.isna(value)):
        return ""
    if column == "charge":
        return f"{float(value):,.2f}"
    if column == "confidence":
        return f"{float(value):.2f}"
    if column == "record_count":
        return f"{int(value):,}"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M %Z").strip()
    return str(value)


def _td(text: str, numeric: bool, nowrap: bool) -> str:
    classes = " ".join(c for c, on in (("num", numeric), ("nowrap", nowrap)) if on)
    attr = f' class="{classes}"' if classes else ""
    return f"<td{attr}>{_e(text)}</td>"


def _table(
    headers: list[str],
    rows: list[list[str]],
    numeric: set[int],
    nowrap: frozenset[int] = frozenset(),
) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(_td(c, i in numeric, i in nowrap) for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _accounting(result: ScanResult) -> str:
    rep = result.report
    rows = [
        ["files", f"{len(rep.files):,}"],
        ["rows read", f"{rep.rows_read:,}"],
        ["rows used", f"{rep.rows_used:,}"],
        ["rows set aside", f"{rep.rows_set_aside:,}"],
    ]
    for reason, count in sorted(rep.set_aside.items(), key=lambda kv: (-kv[1], kv[0])):
        rows.append([f"  set aside: {reason}", f"{count:,}"])
    for warning in rep.warnings:
        rows.append([f"  warning: {warning}", ""])
    rows.append(["rules run", f"{len(result.rules):,}"])
    rows.append(["rules failed", f"{len(result.errors):,}"])
    out = _table(["input", "count"], rows, {1})
    if result.errors:
        items = "".join(f"<li>{_e(err)}</li>" for err in result.errors)
        out += f'<ul class="errors">{items}</ul>'
    return out


def _by_cause(findings: pd.DataFrame) -> str:
    agg = by_root_cause(findings)
    rows = [
        [str(r.root_cause), f"{r.findings:,}", f"{r.subscribers:,}", f"{r.charge:,.2f}"]
        for r in agg.itertuples()
    ]
    rows.append(
        [
            "total",
            f"{len(findings):,}",
            f"{findings['msisdn'].nunique():,}",
            f"{findings['charge'].sum():,.2f}",
        ]
    )
    return _table(["root cause", "findings", "subscribers", "charge"], rows, {1, 2, 3})


def _first_findings(findings: pd.DataFrame) -> str:
    ranked = findings.sort_values(
        ["confidence", "charge", "finding_id"], ascending=[False, False, True]
    ).head(FINDINGS_SHOWN)
    cols = [(c, label) for c, label in _FINDING_COLUMNS if c in ranked.columns]
    rows = [[_cell(c, rec[c]) for c, _ in cols] for rec in ranked.to_dict(orient="records")]
    numeric = {i for i, (c, _) in enumerate(cols) if c in _NUMERIC}
    nowrap = frozenset(i for i, (c, _) in enumerate(cols) if c in ("first_seen", "last_seen"))
    return _table([label for _, label in cols], rows, numeric, nowrap)


def scan_result_html(result: ScanResult) -> str:
    """A scan result as an HTML fragment: input accounting, findings by root cause, top 20.

    Every value is escaped. The findings are ranked by confidence and charge, as in the
    terminal summary; ``result.findings`` holds all of them as a DataFrame.
    """
    f = result.findings
    parts = [
        '<div class="telediag-report">',
        f"<style>\n{CSS}\n</style>",
        f"<h3>telediag scan: {len(f):,} findings</h3>",
        "<h4>Input</h4>",
        _accounting(result),
    ]
    if f.empty:
        parts.append("<p>No findings.</p>")
    else:
        parts += ["<h4>Findings by root cause</h4>", _by_cause(f)]
        shown = min(FINDINGS_SHOWN, len(f))
        parts.append(f"<h4>First {shown:,} of {len(f):,} findings (by confidence, charge)</h4>")
        parts.append(_first_findings(f))
        if len(f) > shown:
            parts.append(
                f'<p class="note">{len(f) - shown:,} more in <code>result.findings</code>.</p>'
            )
    parts.append("</div>")
    return "\n".join(parts)
