"""The report on one investigated dispute, for a terminal, Markdown, HTML and JSON.

:func:`render` turns an :class:`~telediag.investigation.Investigation` into one of four
formats with the same content: who and when (subscriber, period, deadlines), the period
at a glance (records and charges by type, handsets, SIM and handset changes), every
finding in rank order (summary, checks against thresholds, evidence, cause, remedy,
charge advice, what to tell the customer in English and Chinese), the hypotheses ruled
out with the reason, and any rule that failed.

The HTML report is one self-contained file: inline CSS that also prints well, and the
plots embedded as base64 PNG. ``python -m telediag.views.report --schema FILE`` writes
the JSON schema of the JSON report.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import json
import re
import sys
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from telediag.errors import TelediagError

if TYPE_CHECKING:
    from telediag.investigation import (
        EvidenceRecord,
        InvestigatedFinding,
        Investigation,
    )

#: The formats :func:`render` knows.
FORMATS: tuple[str, ...] = ("text", "md", "html", "json")

#: Width of the plain-text report, in terminal columns.
TEXT_WIDTH = 100

#: Evidence lists longer than this are shortened to a head and a tail in the report.
EVIDENCE_SHOWN = 20
EVIDENCE_HEAD = 10
EVIDENCE_TAIL = 5

ADVICE_LABELS: dict[str, str] = {
    "refund": "refund",
    "partial": "partial refund",
    "no_refund": "no refund",
    "review": "review case by case",
}

_MATPLOTLIB_MISSING = (
    "Plots need matplotlib, a dependency of telediag that is missing here: pip install matplotlib."
)


# ---------------------------------------------------------------------------- helpers


def _ts(value: dt.datetime | None) -> str:
    return "n/a" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _money(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def _value(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if abs(v) >= 1000 or v.is_integer():
            return f"{v:,.0f}"
        return f"{v:.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _advice(f: InvestigatedFinding) -> str:
    key = str(getattr(f.charge_advice, "value", f.charge_advice))
    return ADVICE_LABELS.get(key, key)


def _advice_key(f: InvestigatedFinding) -> str:
    return str(getattr(f.charge_advice, "value", f.charge_advice))


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _period_line(inv: Investigation) -> str:
    p = inv.period
    if p.start is None and p.end is None:
        window = "all records given"
    else:
        lo = "the first record" if p.start is None else _ts(p.start)
        hi = "the last record" if p.end is None else f"{_ts(p.end)} (exclusive)"
        window = f"{lo} to {hi}"
    seen = (
        "no records"
        if p.first_record is None
        else f"records from {_ts(p.first_record)} to {_ts(p.last_record)}"
    )
    return f"{window}; {seen}; times in {p.tz}"


def _deadline_line(inv: Investigation) -> str:
    d = inv.deadlines
    if d is None:
        return "no complaint date given, so no deadlines"
    return (
        f"complaint {d.complaint_date}: acknowledge by {d.acknowledge_by}, "
        f"investigate by {d.investigate_by}, resolve by {d.resolve_by}"
    )


def _input_line(inv: Investigation) -> str:
    i = inv.input
    line = (
        f"{i.get('rows_read', 0):,} rows read (this subscriber's and its handsets'), "
        f"{i.get('rows_used', 0):,} used, {i.get('rows_set_aside', 0):,} set aside"
    )
    if i.get("rows_outside_period"):
        line += f", {i['rows_outside_period']:,} outside the period"
    reasons = i.get("set_aside") or {}
    if reasons:
        line += " (" + ", ".join(f"{n:,} {r}" for r, n in sorted(reasons.items())) + ")"
    for warning in i.get("warnings") or []:
        line += f"; warning: {warning}"
    return line


def _result_line(inv: Investigation) -> str:
    n = len(inv.ruled_out)
    ruled = f"{n:,} hypothesis ruled out" if n == 1 else f"{n:,} hypotheses ruled out"
    blind = f", {len(inv.could_not_check):,} could not be checked" if inv.could_not_check else ""
    return (
        f"{_plural(len(inv.findings), 'finding')}, {ruled}{blind}, "
        f"{_plural(len(inv.rule_errors), 'rule error')}"
    )


def _header_rows(inv: Investigation) -> list[tuple[str, str]]:
    return [
        ("Subscriber", inv.msisdn),
        ("Period", _period_line(inv)),
        ("Deadlines", _deadline_line(inv)),
        ("Input", _input_line(inv)),
        ("Result", _result_line(inv)),
        ("telediag", inv.telediag_version),
    ]


Table = tuple[list[str], list[list[str]], set[int]]


def _by_type_table(inv: Investigation) -> Table:
    rows = [
        [t.record_type, t.direction, f"{t.records:,}", _money(t.charge)]
        for t in inv.overview.by_type
    ]
    rows.append(["total", "", f"{inv.overview.records:,}", _money(inv.overview.charge)])
    return ["type", "direction", "records", "charge"], rows, {2, 3}


def _minute(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def _handsets_table(inv: Investigation, quirks: bool = True) -> Table:
    """Handsets used; ``quirks`` adds the root causes each model is known for."""
    headers = ["IMEI", "model", "bands", "first seen", "last seen", "records"]
    rows = [
        [
            h.imei,
            h.model or "unknown",
            h.bands or "",
            _minute(h.first_seen),
            _minute(h.last_seen),
            f"{h.records:,}",
        ]
        for h in inv.overview.handsets
    ]
    if not quirks:
        return headers, rows, {5}
    for row, h in zip(rows, inv.overview.handsets, strict=True):
        row.insert(3, ", ".join(h.quirks))
        row.append(", ".join(h.other_numbers))
    return [*headers[:3], "known for", *headers[3:], "also used by"], rows, {6}


def _changes_table(inv: Investigation) -> Table:
    rows = [[_ts(c.time), c.kind, c.before, c.after] for c in inv.overview.changes]
    return ["time", "change", "before", "after"], rows, set()


def _checks_table(f: InvestigatedFinding) -> Table:
    rows = [
        [c.measure, _value(c.value), c.condition, "yes" if c.passed else "NO"] for c in f.checks
    ]
    return ["measure", "value", "threshold", "pass"], rows, {1}


EVIDENCE_HEADERS = ["record", "time", "type", "dir", "peer", "status", "charge", "detail"]


def _evidence_row(r: EvidenceRecord) -> list[str]:
    return [
        r.record_id,
        _ts(r.start_time),
        r.record_type,
        r.direction,
        r.peer_number or "",
        r.status or "",
        _money(r.charge),
        r.detail,
    ]


def evidence_excerpt(
    records: Sequence[EvidenceRecord],
) -> tuple[list[EvidenceRecord], list[EvidenceRecord], int]:
    """The evidence records a report shows: (head, tail, number left out).

    Up to :data:`EVIDENCE_SHOWN` records are all shown (empty tail); longer lists show
    the first :data:`EVIDENCE_HEAD` and the last :data:`EVIDENCE_TAIL`.
    """
    items = list(records)
    if len(items) <= EVIDENCE_SHOWN:
        return items, [], 0
    return items[:EVIDENCE_HEAD], items[-EVIDENCE_TAIL:], len(items) - EVIDENCE_HEAD - EVIDENCE_TAIL


def _more_text(hidden: int) -> str:
    return f"... {hidden:,} more records (the JSON report lists every id)"


def _ruled_out_rows(inv: Investigation) -> list[list[str]]:
    return [[r.rule_id, r.root_cause, r.reason, f"{r.records_considered:,}"] for r in inv.ruled_out]


#: Heading and lead of the hypotheses the records cannot test.
COULD_NOT_CHECK_TITLE = "Could not check"
COULD_NOT_CHECK_LEAD = (
    "These causes are neither found nor ruled out: a column they need is missing or empty "
    "in this subscriber's records. Ask for a feed that has it before telling the customer "
    "the cause is excluded."
)


def _could_not_check_rows(inv: Investigation) -> list[list[str]]:
    return [[r.rule_id, r.root_cause, ", ".join(r.columns), r.reason] for r in inv.could_not_check]


_COULD_NOT_CHECK_HEAD = ["rule", "root cause", "missing column", "why"]


# ------------------------------------------------------------------------------- text


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns a string takes in a terminal (CJK characters take two)."""
    return sum(_char_width(ch) for ch in text)


def _clip(text: str, width: int) -> str:
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = _char_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * max(0, width - display_width(text))
    return gap + text if right else text + gap


def _tokens(text: str) -> list[str]:
    """Words, single wide (CJK) characters and whitespace runs, in order."""
    out: list[str] = []
    kind_prev = ""
    for ch in text:
        kind = "space" if ch.isspace() else "wide" if _char_width(ch) == 2 else "word"
        if out and kind == kind_prev and kind != "wide":
            out[-1] += ch
        else:
            out.append(ch)
        kind_prev = kind
    return out


def wrap(text: str, width: int = TEXT_WIDTH, indent: str = "") -> list[str]:
    """Wrap text to ``width`` display columns, breaking between words or CJK characters.

    Unlike :mod:`textwrap` this counts a Chinese character as two columns and may break
    between any two of them, so English and Chinese paragraphs both fit the terminal.
    """
    avail = max(10, width - display_width(indent))
    lines: list[str] = []
    line = ""
    space = False
    for tok in _tokens(" ".join(text.split())):
        if tok.isspace():
            space = True
            continue
        piece = (" " if space and line else "") + tok
        space = False
        if line and display_width(line) + display_width(piece) > avail:
            lines.append(line)
            line = tok
        else:
            line += piece
        while display_width(line) > avail:  # a single token wider than the line
            cut, used = 0, 0
            for i, ch in enumerate(line):
                used += _char_width(ch)
                if used > avail:
                    cut = i
                    break
            lines.append(line[:cut])
            line = line[cut:]
    if line:
        lines.append(line)
    return [indent + ln for ln in lines] or [indent]


def _text_table(
    table: Table, indent: str = "", width: int = TEXT_WIDTH, flexible: int = -1
) -> list[str]:
    """A column-aligned table that fits ``width``; the ``flexible`` column is clipped."""
    headers, rows, right = table
    n = len(headers)
    widths = [
        max([display_width(headers[i])] + [display_width(r[i]) for r in rows]) for i in range(n)
    ]
    flex = flexible % n
    excess = display_width(indent) + sum(widths) + 2 * (n - 1) - width
    if excess > 0:  # clip the flexible column first, then the widest others
        cut = min(excess, max(0, widths[flex] - 8))
        widths[flex] -= cut
        excess -= cut
    while excess > 0 and max(widths) > 6:
        widest = widths.index(max(widths))
        widths[widest] -= 1
        excess -= 1

    def line(cells: list[str]) -> str:
        parts = [_pad(_clip(c, widths[i]), widths[i], i in right) for i, c in enumerate(cells)]
        return (indent + "  ".join(parts)).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _text_heading(title: str, underline: str = "-") -> list[str]:
    return ["", title, underline * display_width(title)]


def _text_finding(f: InvestigatedFinding) -> list[str]:
    ind = "    "
    out = ["", f"#{f.rank}  {f.rule_id}  {f.root_cause}  ({f.rule_name})"]
    out += wrap(f.title, indent=ind)
    facts = (
        f"confidence {f.confidence:.2f} | {_plural(f.record_count, 'record')} | "
        f"charge {_money(f.charge)} | {_ts(f.first_seen)} to {_ts(f.last_seen)}"
    )
    if f.handset_model:
        facts += f" | handset {f.handset_model}"
    out += wrap(facts, indent=ind)
    out += ["", ind + "Summary"]
    out += wrap(f.summary, indent=ind + "  ")
    out += ["", ind + "Checks"]
    out += _text_table(_checks_table(f), indent=ind + "  ", flexible=2)
    head, tail, hidden = evidence_excerpt(f.evidence_records)
    out += ["", ind + f"Evidence ({_plural(len(f.evidence), 'record')})"]
    table = _text_table(
        (EVIDENCE_HEADERS, [_evidence_row(r) for r in head + tail], {6}), indent=ind + "  "
    )
    if hidden:
        table.insert(2 + len(head), ind + "  " + _more_text(hidden))
    out += table
    for title, body in (
        ("Cause", f.cause),
        ("Remedy", f.remedy),
        (f"Charge advice: {_advice(f)}", f.charge_text),
        ("Explanation for the customer (EN)", f.explanation.en),
        ("Explanation for the customer (ZH)", f.explanation.zh),
    ):
        out += ["", ind + title]
        out += wrap(body, indent=ind + "  ")
    return out


def render_text(inv: Investigation) -> str:
    """The report as plain text that fits a 100-column terminal."""
    title = f"Dispute investigation: subscriber {inv.msisdn}"
    out = [title, "=" * display_width(title)]
    label_w = max(len(k) for k, _ in _header_rows(inv)) + 2
    for key, val in _header_rows(inv):
        lines = wrap(val, indent=" " * label_w)
        out.append(key.ljust(label_w) + lines[0][label_w:])
        out += lines[1:]

    out += _text_heading("Period at a glance")
    out += _text_table(_by_type_table(inv))
    out += ["", "Handsets"]
    if inv.overview.handsets:
        out += _text_table(_handsets_table(inv, quirks=False), indent="  ", flexible=1)
        for h in inv.overview.handsets:
            if h.quirks:
                note = (
                    f"{h.imei} ({h.model or 'unknown model'}) is known for: {', '.join(h.quirks)}"
                )
                out += wrap(note, indent="  ")
            if h.other_numbers:
                note = f"{h.imei} was also used by {', '.join(h.other_numbers)}"
                out += wrap(note, indent="  ")
    else:
        out.append("  no IMEI in the records")
    out += ["", "SIM and handset changes"]
    if inv.overview.changes:
        out += _text_table(_changes_table(inv), indent="  ")
    else:
        out.append("  none seen")

    out += _text_heading(f"Findings ({len(inv.findings)})")
    if not inv.findings:
        out.append("No rule fired for this subscriber in the period.")
    for f in inv.findings:
        out += _text_finding(f)

    out += _text_heading(f"Ruled out ({len(inv.ruled_out)})")
    if not inv.ruled_out:
        out.append("Nothing was ruled out.")
    for r in inv.ruled_out:
        out.append(f"{r.rule_id}  {r.root_cause}  ({_plural(r.records_considered, 'record')})")
        out += wrap(r.reason, indent="    ")
    if inv.could_not_check:
        out += _text_heading(f"{COULD_NOT_CHECK_TITLE} ({len(inv.could_not_check)})")
        out += wrap(COULD_NOT_CHECK_LEAD)
        for c in inv.could_not_check:
            out.append(f"{c.rule_id}  {c.root_cause}  (missing: {', '.join(c.columns)})")
            out += wrap(c.reason, indent="    ")
    if inv.rule_errors:
        out += _text_heading(f"Rule errors ({len(inv.rule_errors)})")
        for err in inv.rule_errors:
            out += wrap(err, indent="  ")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- markdown


_MD_TAG = re.compile(r"<(?=[A-Za-z/!?])")


def _md_text(text: str) -> str:
    """One line of Markdown prose; a ``<`` that could open an HTML tag is escaped."""
    return _MD_TAG.sub("&lt;", " ".join(text.split()))


def _md_cell(text: str) -> str:
    return _md_text(text).replace("\\", "\\\\").replace("|", "\\|")


def _md_table(table: Table, extra: list[tuple[int, list[str]]] | None = None) -> list[str]:
    headers, rows, right = table
    align = ["---:" if i in right else "---" for i in range(len(headers))]
    body = [list(r) for r in rows]
    for pos, row in sorted(extra or [], reverse=True):
        body.insert(pos, row)
    return [
        "| " + " | ".join(_md_cell(h) for h in headers) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(_md_cell(c) for c in r) + " |" for r in body),
    ]


def _md_finding(f: InvestigatedFinding) -> list[str]:
    out = [
        f"### {f.rank}. {f.rule_id} `{f.root_cause}`: {_md_cell(f.title)}",
        "",
        f"- **Rule:** {f.rule_id} ({f.rule_name})",
        f"- **Confidence:** {f.confidence:.2f}",
        f"- **Records:** {f.record_count:,}, from {_ts(f.first_seen)} to {_ts(f.last_seen)}",
        f"- **Charge:** {_money(f.charge)}",
    ]
    if f.handset_model:
        out.append(f"- **Handset:** {f.handset_model}")
    out += ["", f"**Summary.** {_md_text(f.summary)}", "", "#### Checks", ""]
    out += _md_table(_checks_table(f))
    head, tail, hidden = evidence_excerpt(f.evidence_records)
    out += ["", f"#### Evidence ({_plural(len(f.evidence), 'record')})", ""]
    extra = []
    if hidden:
        more = ["…", _more_text(hidden), *([""] * (len(EVIDENCE_HEADERS) - 2))]
        extra.append((len(head), more))
    out += _md_table((EVIDENCE_HEADERS, [_evidence_row(r) for r in head + tail], {6}), extra=extra)
    out += [
        "",
        "#### Cause",
        "",
        _md_text(f.cause),
        "",
        "#### Remedy",
        "",
        _md_text(f.remedy),
        "",
        f"#### Charge advice: {_advice(f)}",
        "",
        _md_text(f.charge_text),
        "",
        "#### Explanation for the customer",
        "",
        f"> **EN.** {_md_text(f.explanation.en)}",
        ">",
        f"> **中文.** {_md_text(f.explanation.zh)}",
        "",
    ]
    return out


def render_markdown(inv: Investigation) -> str:
    """The report as Markdown (GitHub-flavoured tables)."""
    out = [f"# Dispute investigation: subscriber {_md_text(inv.msisdn)}", ""]
    out += [f"- **{key}:** {_md_text(val)}" for key, val in _header_rows(inv)]
    out += ["", "## Period at a glance", ""]
    out += _md_table(_by_type_table(inv))
    out += ["", "### Handsets", ""]
    out += _md_table(_handsets_table(inv)) if inv.overview.handsets else ["No IMEI in the records."]
    out += ["", "### SIM and handset changes", ""]
    out += _md_table(_changes_table(inv)) if inv.overview.changes else ["None seen."]
    out += ["", f"## Findings ({len(inv.findings)})", ""]
    if not inv.findings:
        out += ["No rule fired for this subscriber in the period.", ""]
    for f in inv.findings:
        out += _md_finding(f)
    out += [f"## Ruled out ({len(inv.ruled_out)})", ""]
    if inv.ruled_out:
        out += _md_table((["rule", "root cause", "reason", "records"], _ruled_out_rows(inv), {3}))
    else:
        out.append("Nothing was ruled out.")
    if inv.could_not_check:
        out += ["", f"## {COULD_NOT_CHECK_TITLE} ({len(inv.could_not_check)})", ""]
        out += [_md_text(COULD_NOT_CHECK_LEAD), ""]
        out += _md_table((_COULD_NOT_CHECK_HEAD, _could_not_check_rows(inv), set()))
    if inv.rule_errors:
        out += ["", f"## Rule errors ({len(inv.rule_errors)})", ""]
        out += [f"- {_md_cell(e)}" for e in inv.rule_errors]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------- html

CSS = """
.telediag-report { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans",
  "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif; color: #1a1a1a;
  line-height: 1.45; font-size: 14px; max-width: 62rem; margin: 0 auto; padding: 1rem; }
.telediag-report h1 { font-size: 1.45rem; margin: 0 0 .6rem; padding-bottom: .3rem;
  border-bottom: 2px solid #1a1a1a; }
.telediag-report h2 { font-size: 1.2rem; margin: 1.6rem 0 .6rem; padding-bottom: .2rem;
  border-bottom: 1px solid #bbb; }
.telediag-report h3 { font-size: 1.08rem; margin: 0 0 .3rem; }
.telediag-report h4 { font-size: .95rem; margin: .9rem 0 .3rem; }
.telediag-report p { margin: .3rem 0; }
.telediag-report table { border-collapse: collapse; margin: .3rem 0 .8rem; font-size: .88em; }
.telediag-report th, .telediag-report td { border: 1px solid #ccc; padding: .18rem .45rem;
  text-align: left; vertical-align: top; }
.telediag-report th { background: #f0f0f0; }
.telediag-report td.num { text-align: right; font-variant-numeric: tabular-nums; }
.telediag-report td.nowrap { white-space: nowrap; }
.telediag-report tr.more td { font-style: italic; color: #555; text-align: center; }
.telediag-report tr.total td { font-weight: 600; }
.telediag-report .meta th { background: none; border: none; padding-left: 0; width: 7rem; }
.telediag-report .meta td { border: none; }
.telediag-report code, .telediag-report .mono { font-family: ui-monospace, SFMono-Regular,
  Menlo, Consolas, monospace; font-size: .92em; }
.telediag-report .finding { border: 1px solid #bbb; border-left: 5px solid #d55e00;
  border-radius: 4px; padding: .7rem 1rem; margin: 1rem 0; }
.telediag-report .title { color: #444; margin-bottom: .4rem; }
.telediag-report .facts { display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; margin: .3rem 0;
  font-size: .92em; }
.telediag-report .badge { display: inline-block; padding: 0 .45rem; border: 1px solid;
  border-radius: 3px; font-weight: 600; }
.telediag-report .advice-refund { color: #05603a; }
.telediag-report .advice-partial { color: #8a5a00; }
.telediag-report .advice-no_refund { color: #b42318; }
.telediag-report .advice-review { color: #175cd3; }
.telediag-report .pass { color: #05603a; }
.telediag-report .fail { color: #b42318; font-weight: 600; }
.telediag-report .explain { background: #f6f6f6; border-left: 3px solid #888;
  padding: .4rem .8rem; margin: .3rem 0; }
.telediag-report figure { margin: .4rem 0 .8rem; }
.telediag-report figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
.telediag-report figcaption { font-size: .85em; color: #555; }
.telediag-report .note { color: #555; font-style: italic; }
.telediag-report .errors li { color: #b42318; }
@media print {
  .telediag-report { max-width: none; padding: 0; font-size: 10pt; }
  .telediag-report .finding { border-left-width: 3px; }
  .telediag-report h2, .telediag-report h3, .telediag-report h4 { break-after: avoid; }
  .telediag-report figure, .telediag-report tr, .telediag-report .explain,
  .telediag-report .facts { break-inside: avoid; }
  .telediag-report th, .telediag-report .explain { -webkit-print-color-adjust: exact;
    print-color-adjust: exact; }
  @page { margin: 14mm; }
}
""".strip()


def _e(value: Any) -> str:
    return html.escape(str(value))


def _html_table(
    table: Table,
    cls: str = "",
    extra: list[tuple[int, str]] | None = None,
    cell_class: Callable[[int, int, str], str] | None = None,
    total_last: bool = False,
) -> str:
    headers, rows, right = table
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body: list[str] = []
    for ri, row in enumerate(rows):
        cells = []
        for ci, c in enumerate(row):
            classes = ["num"] if ci in right else []
            if cell_class is not None:
                extra_cls = cell_class(ri, ci, c)
                if extra_cls:
                    classes.append(extra_cls)
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{_e(c)}</td>")
        tr_cls = ' class="total"' if total_last and ri == len(rows) - 1 else ""
        body.append(f"<tr{tr_cls}>{''.join(cells)}</tr>")
    for pos, markup in sorted(extra or [], reverse=True):
        body.insert(pos, markup)
    cls_attr = f' class="{cls}"' if cls else ""
    return f"<table{cls_attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(alt)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _html_overview_plots(inv: Investigation) -> str:
    from telediag.views import plots

    if not plots.available():
        return f'<p class="note">{_e(_MATPLOTLIB_MISSING)}</p>'
    return _img(
        plots.timeline_png(inv),
        f"Timeline of the records of {inv.msisdn} by type",
        "Every record as a tick in its type's row; evidence records are the taller orange ticks.",
    ) + _img(
        plots.daily_charges_png(inv),
        f"Daily charges of {inv.msisdn}",
        "Charge per day stacked by record type; the hatched outline is the evidence's share.",
    )


def _html_gap_plot(inv: Investigation, f: InvestigatedFinding) -> str:
    from telediag.views import plots

    if not plots.available():
        return ""
    png = plots.gaps_png(inv, f)
    if png is None:
        return ""
    return _img(
        png,
        f"Gaps between the evidence records of {f.rule_id}",
        "How long the handset waited between consecutive evidence records.",
    )


def _html_finding(inv: Investigation, f: InvestigatedFinding) -> str:
    head, tail, hidden = evidence_excerpt(f.evidence_records)
    extra = []
    if hidden:
        extra.append(
            (
                len(head),
                f'<tr class="more"><td colspan="{len(EVIDENCE_HEADERS)}">'
                f"{_e(_more_text(hidden))}</td></tr>",
            )
        )

    def check_class(_ri: int, ci: int, cell: str) -> str:
        if ci != 3:
            return ""
        return "pass" if cell == "yes" else "fail"

    def evidence_class(_ri: int, ci: int, _cell: str) -> str:
        return "mono" if ci in (0, 4) else "nowrap" if ci == 1 else ""

    facts = [
        f"<span>confidence <b>{f.confidence:.2f}</b></span>",
        f"<span><b>{f.record_count:,}</b> records</span>",
        f"<span>charge <b>{_e(_money(f.charge))}</b></span>",
        f"<span>{_e(_ts(f.first_seen))} to {_e(_ts(f.last_seen))}</span>",
    ]
    if f.handset_model:
        facts.append(f"<span>handset <b>{_e(f.handset_model)}</b></span>")
    advice_cls = f"badge advice-{_e(_advice_key(f))}"
    facts.append(f'<span>charge advice <span class="{advice_cls}">{_e(_advice(f))}</span></span>')
    evidence_table = _html_table(
        (EVIDENCE_HEADERS, [_evidence_row(r) for r in head + tail], {6}),
        extra=extra,
        cell_class=evidence_class,
    )
    return (
        f'<article class="finding" id="finding-{f.rank}">'
        f"<h3>{f.rank}. {_e(f.rule_id)} <code>{_e(f.root_cause)}</code></h3>"
        f'<div class="title">{_e(f.title)} <span class="mono">({_e(f.rule_name)})</span></div>'
        f'<div class="facts">{"".join(facts)}</div>'
        f"<p><b>Summary.</b> {_e(f.summary)}</p>"
        f"<h4>Checks</h4>{_html_table(_checks_table(f), cell_class=check_class)}"
        f"{_html_gap_plot(inv, f)}"
        f"<h4>Evidence ({_e(_plural(len(f.evidence), 'record'))})</h4>{evidence_table}"
        f"<h4>Cause</h4><p>{_e(f.cause)}</p>"
        f"<h4>Remedy</h4><p>{_e(f.remedy)}</p>"
        f"<h4>Charge advice: {_e(_advice(f))}</h4><p>{_e(f.charge_text)}</p>"
        f"<h4>Explanation for the customer</h4>"
        f'<div class="explain" lang="en"><p>{_e(f.explanation.en)}</p></div>'
        f'<div class="explain" lang="zh-CN"><p>{_e(f.explanation.zh)}</p></div>'
        "</article>"
    )


def _html_body(inv: Investigation) -> str:
    meta = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in _header_rows(inv))
    parts = [
        f"<h1>Dispute investigation: subscriber {_e(inv.msisdn)}</h1>",
        f'<table class="meta"><tbody>{meta}</tbody></table>',
        "<h2>Period at a glance</h2>",
        _html_table(_by_type_table(inv), total_last=True),
        "<h4>Handsets</h4>",
        _html_table(_handsets_table(inv))
        if inv.overview.handsets
        else "<p>No IMEI in the records.</p>",
        "<h4>SIM and handset changes</h4>",
        _html_table(_changes_table(inv)) if inv.overview.changes else "<p>None seen.</p>",
        _html_overview_plots(inv),
        f"<h2>Findings ({len(inv.findings)})</h2>",
    ]
    if not inv.findings:
        parts.append("<p>No rule fired for this subscriber in the period.</p>")
    parts += [_html_finding(inv, f) for f in inv.findings]
    parts.append(f"<h2>Ruled out ({len(inv.ruled_out)})</h2>")
    if inv.ruled_out:
        parts.append(
            _html_table(
                (["rule", "root cause", "reason", "records"], _ruled_out_rows(inv), {3}),
                cls="ruled-out",
                cell_class=lambda _r, c, _v: "mono" if c == 1 else "",
            )
        )
    else:
        parts.append("<p>Nothing was ruled out.</p>")
    if inv.could_not_check:
        parts.append(f"<h2>{COULD_NOT_CHECK_TITLE} ({len(inv.could_not_check)})</h2>")
        parts.append(f"<p>{_e(COULD_NOT_CHECK_LEAD)}</p>")
        parts.append(
            _html_table(
                (_COULD_NOT_CHECK_HEAD, _could_not_check_rows(inv), set()),
                cls="could-not-check",
                cell_class=lambda _r, c, _v: "mono" if c in (1, 2) else "",
            )
        )
    if inv.rule_errors:
        parts.append(f"<h2>Rule errors ({len(inv.rule_errors)})</h2>")
        items = "".join(f"<li>{_e(e)}</li>" for e in inv.rule_errors)
        parts.append(f'<ul class="errors">{items}</ul>')
    return "\n".join(parts)


def render_html(inv: Investigation, standalone: bool = True) -> str:
    """The report as HTML: a whole self-contained document, or a ``<div>`` fragment."""
    div = f'<div class="telediag-report">\n<style>\n{CSS}\n</style>\n{_html_body(inv)}\n</div>'
    if not standalone:
        return div
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Dispute investigation: {_e(inv.msisdn)}</title>\n</head>\n"
        f"<body>\n{div}\n</body>\n</html>\n"
    )


# ------------------------------------------------------------------------------- json


def render_json(inv: Investigation) -> str:
    """The report as JSON: the Investigation model, as :func:`json_schema` describes it."""
    return inv.model_dump_json(indent=2)


def json_schema() -> dict[str, Any]:
    """The JSON schema of the JSON report (the Investigation model)."""
    from telediag.investigation import Investigation

    schema = Investigation.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def schema_text() -> str:
    """:func:`json_schema` as the text committed at ``docs/investigation.schema.json``."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def render(inv: Investigation, fmt: str, standalone: bool = True) -> str:
    """Render an investigation as ``text``, ``md``, ``html`` or ``json``.

    ``standalone`` matters for HTML only: True gives a whole document, False a ``<div>``
    to embed (what a notebook shows). Any other format raises TelediagError.
    """
    key = fmt.strip().lower() if isinstance(fmt, str) else fmt
    if key == "text":
        return render_text(inv)
    if key in ("md", "markdown"):
        return render_markdown(inv)
    if key == "html":
        return render_html(inv, standalone=standalone)
    if key == "json":
        return render_json(inv)
    raise TelediagError(f"unknown report format {fmt!r}: use one of {', '.join(FORMATS)}")


def main(argv: list[str] | None = None) -> int:
    """``python -m telediag.views.report --schema FILE``: write the JSON report's schema."""
    parser = argparse.ArgumentParser(
        prog="python -m telediag.views.report",
        description="Write the JSON schema of the investigation report.",
    )
    parser.add_argument(
        "--schema", required=True, metavar="FILE", help="where to write it ('-' for stdout)"
    )
    args = parser.parse_args(argv)
    text = schema_text()
    if args.schema == "-":
        sys.stdout.write(text)
    else:
        Path(args.schema).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
