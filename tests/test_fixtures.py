"""Every rule against its fixture cases: the exact findings and evidence, nothing else.

Each ``fixtures/cdr/<rule id>/cases.yaml`` lists CSV files and, per file, the findings
that rule must produce (subscriber and evidence record ids, in time order). Near-misses
list none. The whole catalog runs on every case, so a case also proves that no other
rule fires on it unless the case says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import telediag

from .conftest import FIXTURES, RULES


def _cases() -> list[Any]:
    out = []
    for spec_path in sorted(FIXTURES.glob("*/cases.yaml")):
        spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
        for case in spec["cases"]:
            out.append(
                pytest.param(
                    spec["rule"],
                    spec.get("tz", "UTC"),
                    spec_path.parent / case["file"],
                    case,
                    id=f"{spec['rule']}-{case['name']}",
                )
            )
    return out


CASES = _cases()


def test_every_rule_has_a_firing_case_and_a_near_miss() -> None:
    rules = telediag.load_rules(RULES)
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for p in CASES:
        rule_id, _, _, case = p.values
        by_rule.setdefault(rule_id, []).append(case)
    for rule in rules:
        cases = by_rule.get(rule.id, [])
        assert any(c["expect"] for c in cases), f"{rule.id} has no case that must fire"
        assert any(not c["expect"] for c in cases), f"{rule.id} has no near-miss"


@pytest.mark.parametrize(("rule_id", "tz", "path", "case"), CASES)
def test_fixture_case(rule_id: str, tz: str, path: Path, case: dict[str, Any]) -> None:
    result = telediag.scan(path, rules=RULES, tz=tz)
    assert result.errors == []
    assert result.report.rows_set_aside == 0
    expected = sorted(
        (e.get("rule", rule_id), e["msisdn"], list(e["record_ids"])) for e in case["expect"]
    )
    got = sorted((f.rule_id, f.msisdn, list(f.record_ids)) for f in result.findings.itertuples())
    assert got == expected
    # The evidence table says the same as the list column, in time order.
    for f in result.findings.itertuples():
        assert result.evidence_for(f.finding_id) == list(f.record_ids)
        assert f.record_count == len(f.record_ids)
        assert f.first_seen <= f.last_seen
        assert 0.0 <= f.confidence <= 1.0


@pytest.mark.parametrize(
    ("rule_id", "tz", "path", "case"), [c for c in CASES if c.values[3]["expect"]]
)
def test_counts_read_as_integers(rule_id: str, tz: str, path: Path, case: dict[str, Any]) -> None:
    """A count in a summary or the measures is an integer ("7 MMS", never "7.0 MMS")."""
    import json
    import re

    result = telediag.scan(path, rules=RULES, tz=tz)
    for f in result.findings.itertuples():
        assert not re.search(r"\b\d+\.0\b(?! ?%)", f.summary), f.summary
        for name, value in json.loads(f.measures).items():
            if name.endswith("count") or name in ("active_days", "distinct_values"):
                assert isinstance(value, int), (name, value)
