"""How cases read: ``case show`` in text, Markdown, HTML or JSON, and the desk's tables."""

from __future__ import annotations

import datetime as dt
import html
import json
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from telediag.cases.models import DEADLINE_NAMES, Case, CaseEvent, CaseSummary, SimilarCase

if TYPE_CHECKING:
    from telediag.investigation import Investigation


def _when(value: dt.datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _status(case: Case) -> str:
    return f"closed ({case.outcome})" if case.status == "closed" else "open"


def _deadline_text(case: Case, as_of: dt.date) -> str:
    due = ", ".join(f"{n} {getattr(case.deadlines, n).isoformat()}" for n in DEADLINE_NAMES)
    late = case.overdue(as_of)
    return f"{due}; overdue as of {as_of.isoformat()}: {', '.join(late) if late else 'none'}"


def _event_cells(e: CaseEvent) -> list[str]:
    what = e.action + (f" ({e.outcome})" if e.outcome else "")
    return [_when(e.at), what, e.by or "-", e.text or ""]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table with columns as wide as their widest cell."""
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _header_lines(case: Case, as_of: dt.date) -> list[tuple[str, str]]:
    return [
        ("subscriber", case.msisdn),
        ("complaint", case.complaint_date.isoformat()),
        ("status", _status(case)),
        ("summary", case.summary or "-"),
        ("opened", f"{_when(case.opened_at)} by {case.opened_by or '-'}"),
        ("deadlines", _deadline_text(case, as_of)),
        ("root causes", ", ".join(case.root_causes) or "none found"),
        ("handset", case.handset_model or "unknown"),
        ("catalog", f"{case.catalog_version} (telediag {case.telediag_version})"),
    ]


def render_case(case: Case, inv: Investigation, fmt: str, as_of: dt.date | None = None) -> str:
    """The stored report with the case's status, outcome and history around it."""
    from telediag.views.report import render

    day = as_of or dt.date.today()
    key = fmt.strip().lower()
    if key == "json":
        body = json.loads(render(inv, "json"))
        body.update(
            id=case.id,
            status=case.status,
            outcome=case.outcome,
            summary=case.summary,
            complaint_date=case.complaint_date.isoformat(),
            opened_at=case.opened_at.isoformat(),
            opened_by=case.opened_by,
            closed_at=None if case.closed_at is None else case.closed_at.isoformat(),
            root_causes=case.root_causes,
            handset_model=case.handset_model,
            overdue=case.overdue(day),
            case_deadlines=case.deadlines.model_dump(mode="json"),
            finding_keys=[f.finding_key for f in case.findings],
            history=[e.model_dump(mode="json") for e in case.history],
        )
        return json.dumps(body, indent=2, ensure_ascii=False)
    history = [_event_cells(e) for e in case.history]
    if key == "text":
        head = [f"Case {case.id}", "=" * len(f"Case {case.id}")]
        head += [f"{k + ':':<13}{v}" for k, v in _header_lines(case, day)]
        head += ["", "History", "-------", table(["when", "what", "by", "text"], history), ""]
        return "\n".join(head) + "\n" + render(inv, "text")
    if key in ("md", "markdown"):
        out = [f"# Case {case.id}", ""]
        out += [f"- **{k}**: {_md(v)}" for k, v in _header_lines(case, day)]
        out += ["", "## History", "", "| when | what | by | text |", "|---|---|---|---|"]
        out += ["| " + " | ".join(_md(c) for c in cells) + " |" for cells in history]
        return "\n".join(out) + "\n\n" + render(inv, "md")
    if key == "html":
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
            for cells in history
        )
        facts = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in _header_lines(case, day)
        )
        section = (
            # Inside a telediag-report block so that the report's styles apply.
            f'<div class="telediag-report telediag-case"><h1>Case {case.id}</h1>'
            f'<table class="meta">{facts}</table><h2>History</h2>'
            "<table><tr><th>when</th><th>what</th><th>by</th><th>text</th></tr>"
            f"{rows}</table></div>\n"
        )
        doc = render(inv, "html")
        return doc.replace("<body>\n", "<body>\n" + section, 1)
    from telediag.errors import TelediagError

    raise TelediagError(f"unknown format {fmt!r}: use text, md, html or json")


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def list_text(cases: Sequence[CaseSummary], pending: dict[int, list[str]]) -> str:
    """The case list as a table; ``pending`` names each case's steps not yet done."""
    if not cases:
        return "No cases."
    rows = []
    for c in cases:
        upcoming = [n for n in pending.get(c.id, []) if n not in c.overdue]
        nxt = f"{upcoming[0]} {getattr(c.deadlines, upcoming[0])}" if upcoming else None
        rows.append(
            [
                c.id,
                c.msisdn,
                c.complaint_date,
                c.status,
                c.outcome,
                ", ".join(c.root_causes) or None,
                nxt,
                ", ".join(c.overdue) or None,
            ]
        )
    headers = ["id", "msisdn", "complaint", "status", "outcome", "root causes", "next due"]
    return table([*headers, "overdue"], rows)


def _outcome_counts(items: Sequence[SimilarCase]) -> str:
    counts = Counter(s.outcome or "open" for s in items)
    return ", ".join(f"{n} {o}" for o, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def similar_summary(case: Case, similar: Sequence[SimilarCase]) -> list[str]:
    """Lines such as "12 earlier mms_retry_loop cases on NOKIA 6108: 10 no_refund, 2 partial"."""
    lines = []
    model = case.handset_model
    for cause in case.root_causes:
        with_cause = [s for s in similar if cause in s.shared.root_causes]
        same = [s for s in with_cause if model and s.handset_model == model]
        other = [s for s in with_cause if not (model and s.handset_model == model)]
        if same:
            lines.append(f"{len(same)} earlier {cause} cases on {model}: {_outcome_counts(same)}")
        if other:
            where = " on other handsets" if model else ""
            lines.append(f"{len(other)} earlier {cause} cases{where}: {_outcome_counts(other)}")
    if not case.root_causes and similar:
        lines.append(f"{len(similar)} earlier cases on {model}: {_outcome_counts(similar)}")
    return lines


def similar_text(case: Case, similar: Sequence[SimilarCase]) -> str:
    """The summary lines, then one row per earlier case, closest first."""
    if not similar:
        return f"No earlier case shares a root cause or the handset with case {case.id}."
    rows = [
        [
            s.id,
            s.msisdn,
            ", ".join(s.root_causes) or None,
            s.handset_model,
            s.outcome or "open",
            ", ".join(
                [
                    *s.shared.root_causes,
                    *([s.shared.handset_model] if s.shared.handset_model else []),
                ]
            ),
        ]
        for s in similar
    ]
    body = table(["id", "msisdn", "root causes", "handset", "outcome", "shared"], rows)
    return "\n".join([*similar_summary(case, similar), "", body])


def stats_text(frame: Any) -> str:
    """``case stats`` as two tables: per rule, then per root cause."""
    if frame.empty:
        return "No cases."
    fixed = {"by", "key", "cases", "open", "closed", "no_fault_found_share"}
    outcomes = [c for c in frame.columns if c not in fixed]
    out = []
    for by, title in (("rule", "rule"), ("root_cause", "root cause")):
        part = frame[frame["by"] == by]
        rows = []
        for r in part.itertuples(index=False):
            d = r._asdict()
            share = d["no_fault_found_share"]
            rows.append(
                [
                    d["key"] if d["key"] is not None else "(nothing found)",
                    d["cases"],
                    d["open"],
                    d["closed"],
                    *[d[o] for o in outcomes],
                    "-" if share is None or share != share else f"{share:.0%}",
                ]
            )
        out.append(table([title, "cases", "open", "closed", *outcomes, "no fault share"], rows))
    return "\n\n".join(out)
