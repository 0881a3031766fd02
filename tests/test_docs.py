"""Generated documentation: every rule page complete and committed pages current."""

from __future__ import annotations

from pathlib import Path

import pytest

from telediag.docs import SECTIONS, render_all, rule_markdown

from .conftest import ROOT


def test_committed_docs_are_current() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, content in render_all(ROOT).items()
        if not path.exists() or path.read_text(encoding="utf-8") != content
    ]
    assert not stale, f"run `python -m telediag.docs`: stale {stale}"


def test_no_orphan_pages() -> None:
    expected = {p.name for p in render_all(ROOT) if p.parent.name == "rules"}
    present = {p.name for p in (ROOT / "docs" / "rules").glob("*.md")}
    assert present == expected


@pytest.mark.parametrize("path", sorted((ROOT / "rules").glob("TD*.yaml")), ids=lambda p: p.stem)
def test_every_section_present_and_filled(path: Path) -> None:
    import telediag

    rule = next(r for r in telediag.load_rules(ROOT / "rules") if r.id == path.stem)
    page = rule_markdown(rule)
    for section in SECTIONS:
        header = f"## {section}\n\n"
        assert header in page, f"{rule.id}: section {section!r} missing"
        body = page.split(header, 1)[1].split("\n## ", 1)[0]
        assert body.strip(), f"{rule.id}: section {section!r} is empty"


def test_readme_lists_every_rule() -> None:
    import telediag

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for rule in telediag.load_rules(ROOT / "rules"):
        assert f"[{rule.id}](docs/rules/{rule.id}.md)" in readme
