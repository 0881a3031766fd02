"""The dispute report: every firing fixture case investigated and rendered four ways.

For each case in ``fixtures/cdr/*/cases.yaml`` that must fire, the subscriber is
investigated with the case's time zone, and the report must name the expected root
cause with exactly the expected evidence, in text, Markdown, HTML and JSON alike.
"""

from __future__ import annotations

import html
import json
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

import telediag
from telediag.investigation import Investigation
from telediag.views import plots, report

from .conftest import FIXTURES, ROOT, RULES

COMPLAINT = "2008-06-16"
REQUIRED_TOP = {"msisdn", "period", "findings", "ruled_out", "deadlines"}


def _firing_cases() -> list[Any]:
    out = []
    for spec_path in sorted(FIXTURES.glob("*/cases.yaml")):
        spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
        for case in spec["cases"]:
            for n, exp in enumerate(case["expect"]):
                out.append(
                    pytest.param(
                        spec_path.parent / case["file"],
                        spec.get("tz", "UTC"),
                        exp.get("rule", spec["rule"]),
                        str(exp["msisdn"]),
                        [str(i) for i in exp["record_ids"]],
                        id=f"{spec['rule']}-{case['name']}-{n}",
                    )
                )
    return out


FIRING = _firing_cases()


@cache
def _root_causes() -> dict[str, str]:
    return {r.id: r.root_cause for r in telediag.load_rules(RULES)}


@cache
def _investigate(path: Path, msisdn: str, tz: str) -> Investigation:
    return telediag.investigate(path, msisdn, complaint_date=COMPLAINT, tz=tz, rules=RULES)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _bare(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_every_rule_has_a_firing_case_here() -> None:
    covered = {p.values[2] for p in FIRING}
    assert covered == set(_root_causes())


@pytest.mark.parametrize(("path", "tz", "rule_id", "msisdn", "ids"), FIRING)
def test_firing_case_report(path: Path, tz: str, rule_id: str, msisdn: str, ids: list[str]) -> None:
    inv = _investigate(path, msisdn, tz)
    root_cause = _root_causes()[rule_id]
    assert inv.rule_errors == []
    matching = [f for f in inv.findings if f.rule_id == rule_id and f.root_cause == root_cause]
    assert [f.evidence for f in matching] == [ids]
    finding = matching[0]
    assert [r.record_id for r in finding.evidence_records] == ids
    assert inv.deadlines is not None

    # JSON: the contract's top-level keys and, per finding, the evidence ids.
    doc = json.loads(report.render(inv, "json"))
    assert doc.keys() >= REQUIRED_TOP
    assert doc["msisdn"] == msisdn
    assert doc["deadlines"]["complaint_date"] == COMPLAINT
    by_rule = {f["rule_id"]: f for f in doc["findings"]}
    assert by_rule[rule_id]["evidence"] == ids
    assert by_rule[rule_id]["root_cause"] == root_cause
    for f in doc["findings"]:
        assert {"rule_id", "root_cause", "evidence", "charge_advice"} <= f.keys()
        assert f["charge_advice"] in {"refund", "partial", "no_refund", "review"}
    for r in doc["ruled_out"]:
        assert {"rule_id", "root_cause", "reason"} <= r.keys()
        assert r["rule_id"] and r["root_cause"] and r["reason"]
    assert rule_id not in {r["rule_id"] for r in doc["ruled_out"]}

    text = report.render(inv, "text")
    md = report.render(inv, "md")
    page = report.render(inv, "html")
    fragment = report.render(inv, "html", standalone=False)
    for out in (text, md):
        flat = _flat(out)
        assert root_cause in out
        assert _flat(finding.remedy) in flat
        assert _flat(finding.cause) in flat
        assert _flat(finding.explanation.en) in flat
        assert _bare(finding.explanation.zh) in _bare(out)
        for r in inv.ruled_out:
            assert r.rule_id in out and r.root_cause in out
    for out in (page, fragment):
        assert root_cause in out
        for prose in (finding.remedy, finding.cause, finding.explanation.en):
            assert html.escape(prose) in out
        assert html.escape(finding.explanation.zh) in out
        for r in inv.ruled_out:
            assert html.escape(r.reason) in out
    assert _flat(finding.explanation.zh) in _flat(md)

    # Evidence: all ids when few, else a head, a tail and a count of the rest.
    shown = _flat(text)
    if len(ids) <= report.EVIDENCE_SHOWN:
        assert all(f" {i} " in f" {shown} " for i in ids)
        assert "more records" not in text
    else:
        hidden = len(ids) - report.EVIDENCE_HEAD - report.EVIDENCE_TAIL
        assert f"... {hidden:,} more" in text
        assert f"{hidden:,} more" in md and f"{hidden:,} more" in page
        for i in ids[: report.EVIDENCE_HEAD] + ids[-report.EVIDENCE_TAIL :]:
            assert re.search(rf"(?m)^\s+{re.escape(i)}\s", text), i
        assert not re.search(rf"(?m)^\s+{re.escape(ids[report.EVIDENCE_HEAD])}\s", text)

    # HTML: a whole document, UTF-8, plots embedded, nothing fetched from elsewhere.
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in page
    assert "@media print" in page
    assert page.count('<img src="data:image/png;base64,') >= 2
    assert fragment.startswith("<div") and fragment.rstrip().endswith("</div>")
    assert "<html" not in fragment and '<img src="data:image/png;base64,' in fragment
    for out in (page, fragment):
        assert not re.search(r"""(?i)(src|href)\s*=\s*["']?\s*(https?:)?//""", out)
        assert not re.search(r"(?i)url\(|@import|<script|<link", out)
    assert inv._repr_html_() == fragment


@pytest.mark.parametrize(("path", "tz", "rule_id", "msisdn", "ids"), FIRING)
def test_gap_plot_only_for_timing_rules(
    path: Path, tz: str, rule_id: str, msisdn: str, ids: list[str]
) -> None:
    inv = _investigate(path, msisdn, tz)
    kind = next(r.detector.kind for r in telediag.load_rules(RULES) if r.id == rule_id)
    finding = next(f for f in inv.findings if f.rule_id == rule_id)
    png = plots.gaps_png(inv, finding)
    if kind in ("burst", "periodic"):
        assert png is not None and png.startswith(b"\x89PNG")
        assert plots.evidence_gaps(finding).size == len(ids) - 1
    else:
        assert png is None


def _inv(rule_dir: str, name: str, msisdn: str) -> Investigation:
    return _investigate(FIXTURES / rule_dir / name, msisdn, "Asia/Shanghai")


def test_text_fits_a_100_column_terminal() -> None:
    for p in FIRING:
        path, tz, _, msisdn, _ = p.values
        text = report.render(_investigate(path, msisdn, tz), "text")
        wide = [ln for ln in text.splitlines() if report.display_width(ln) > report.TEXT_WIDTH]
        assert wide == [], f"{path.name}: {wide[:3]}"


def test_text_sections_in_order() -> None:
    inv = _inv("TD002", "pop3-every-5-minutes.csv", "13800000011")
    text = report.render(inv, "text")
    order = [
        "Dispute investigation: subscriber 13800000011",
        "Deadlines",
        "Period at a glance",
        "Handsets",
        "Findings (",
        "Checks",
        "Evidence (118 records)",
        "Cause",
        "Remedy",
        "Charge advice:",
        "(EN)",
        "(ZH)",
        "Ruled out (",
    ]
    positions = [text.index(s) for s in order]
    assert positions == sorted(positions)
    d = inv.deadlines
    assert d is not None and f"resolve by {d.resolve_by}" in _flat(text)
    # The checks table: every threshold with its measured value and verdict.
    f = inv.findings[0]
    for c in f.checks:
        assert re.search(rf"(?m)^\s+{re.escape(c.measure)}\s+\S", text)
        assert c.condition in text
    assert all(c.passed for c in f.checks)


def test_overview_names_handset_model_and_sim_change() -> None:
    inv = _inv("TD004", "resent-under-new-sim.csv", "13800000402")
    changes = inv.overview.changes
    models = [h.model for h in inv.overview.handsets if h.model]
    for fmt in ("text", "md", "html"):
        out = report.render(inv, fmt)
        for c in changes:
            assert html.escape(c.before) in out and html.escape(c.after) in out
        for m in models:
            assert html.escape(m) in out
        for t in inv.overview.by_type:
            assert t.record_type in out


def test_markdown_tables_are_well_formed() -> None:
    inv = _inv("TD002", "pop3-every-5-minutes.csv", "13800000011")
    md = report.render(inv, "md")
    lines = md.splitlines()
    for i, line in enumerate(lines):
        if re.fullmatch(r"\| (-{3}:?|---)( \| (-{3}:?|---))* \|", line):
            width = line.count(" | ") + 1
            j = i + 1
            while j < len(lines) and lines[j].startswith("|"):
                cells = re.split(r"(?<!\\) \| ", lines[j][2:-2])
                assert len(cells) == width, lines[j]
                j += 1
    assert "## Ruled out" in md and "#### Checks" in md


def test_html_escapes_data() -> None:
    inv = _inv("TD003", "mms-on-wtls-ports.csv", "13800000021")
    evil = inv.model_copy(deep=True)
    evil.msisdn = "<script>alert(1)</script>"
    evil.findings[0].summary = 'a <b>bold</b> & "quoted" claim'
    evil.findings[0].evidence_records[0].detail = "<img src=x onerror=alert(1)>"
    evil._records = inv.records
    for standalone in (True, False):
        out = report.render(evil, "html", standalone=standalone)
        assert "<script>" not in out and "<img src=x" not in out and "<b>bold" not in out
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
        assert "a &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot; claim" in out


def test_chinese_survives_every_format() -> None:
    inv = _inv("TD001", "phonebook-forward.csv", "13800000001")
    zh = inv.findings[0].explanation.zh
    assert re.search(r"[\u4e00-\u9fff]", zh)
    page = report.render(inv, "html")
    assert zh in page and 'lang="zh-CN"' in page
    assert zh in json.loads(report.render(inv, "json"))["findings"][0]["explanation"]["zh"]
    # The JSON keeps the characters themselves (UTF-8), not \\u escapes.
    assert zh[:5] in report.render(inv, "json")


def test_unknown_format_is_a_one_line_telediag_error() -> None:
    inv = _inv("TD003", "mms-on-wtls-ports.csv", "13800000021")
    with pytest.raises(telediag.TelediagError) as info:
        report.render(inv, "pdf")
    assert "\n" not in str(info.value) and "pdf" in str(info.value)
    assert report.render(inv, "markdown") == report.render(inv, "md")
    assert inv.render("text") == report.render(inv, "text")


def test_report_without_matplotlib_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    inv = _inv("TD001", "phonebook-forward.csv", "13800000001")
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert not plots.available()
    page = report.render(inv, "html")
    assert "Plots need matplotlib" in page
    assert "<img" not in page
    assert inv.findings[0].root_cause in page


def test_plots_are_small_pngs() -> None:
    inv = _inv("TD002", "pop3-every-5-minutes.csv", "13800000011")
    for png in (plots.timeline_png(inv), plots.daily_charges_png(inv)):
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        width = int.from_bytes(png[16:20], "big")
        height = int.from_bytes(png[20:24], "big")
        assert (width, height) == (800, 300)
    gaps = plots.evidence_gaps(inv.findings[0])
    assert gaps.min() >= 0 and abs(float(sorted(gaps)[len(gaps) // 2]) - 300) < 60


def test_json_schema_describes_the_report() -> None:
    schema = report.json_schema()
    assert set(schema["required"]) >= REQUIRED_TOP
    finding = schema["$defs"]["InvestigatedFinding"]
    assert {"rule_id", "root_cause", "evidence", "charge_advice"} <= set(finding["required"])
    assert {"rule_id", "root_cause", "reason"} <= set(schema["$defs"]["RuledOut"]["required"])
    doc = json.loads(report.render(_inv("TD003", "mms-on-wtls-ports.csv", "13800000021"), "json"))
    Investigation.model_validate(doc)  # the JSON reads back into the model


def test_committed_schema_is_current() -> None:
    path = ROOT / "docs" / "investigation.schema.json"
    command = "python -m telediag.views.report --schema docs/investigation.schema.json"
    assert path.exists(), f"run `{command}`"
    assert path.read_text(encoding="utf-8") == report.schema_text(), (
        f"docs/investigation.schema.json is stale: run `{command}`"
    )


def test_schema_command_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    assert report.main(["--schema", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == report.json_schema()


def test_plain_install_draws_the_plots() -> None:
    """What the plots import is a regular dependency, and the README says what each extra
    is for: `pip install .` gives the whole report."""
    import re
    import tomllib

    from .conftest import ROOT

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    regular = {re.split(r"[<>=!~\[ ]", d)[0].lower() for d in project["dependencies"]}
    assert "matplotlib" in regular
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for extra in project["optional-dependencies"]:
        assert re.search(rf"^\| `{extra}` \| \S", readme, re.M), f"README: what is [{extra}] for?"
