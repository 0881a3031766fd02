"""Rule files: strict validation with errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import telediag
from telediag.catalog import ROOT_CAUSES, load_rule

from .conftest import RULES


def _write(tmp_path: Path, data: dict, name: str = "TD901.yaml") -> Path:  # type: ignore[type-arg]
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


def _base() -> dict:  # type: ignore[type-arg]
    data = yaml.safe_load((RULES / "TD003.yaml").read_text(encoding="utf-8"))
    data["id"] = "TD901"
    return data


def test_shipped_catalog_loads_and_uses_contract_labels(catalog: list[telediag.Rule]) -> None:
    assert catalog, "no rules shipped"
    ids = [r.id for r in catalog]
    assert ids == sorted(set(ids))
    for rule in catalog:
        assert rule.root_cause in ROOT_CAUSES
        assert rule.docs.false_positives


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(colour="red"), r"TD901\.yaml: colour: Extra inputs"),
        (lambda d: d["records"].update(port=1), r"TD901\.yaml: records: .*unknown column 'port'"),
        (lambda d: d["detector"].update(kind="magic"), r"detector\.kind: unknown detector"),
        (
            lambda d: d["detector"]["params"].update(windw=3),
            r"TD901\.yaml: detector\.params\.windw: Extra inputs",
        ),
        (lambda d: d["thresholds"].update(speed={"min": 1}), r"'speed' is not a measure"),
        (lambda d: d.update(summary="{count} and {__class__}"), r"summary: \{__class__\}"),
        (lambda d: d.update(summary="{count.real}"), r"summary: \{count\.real\}"),
        (lambda d: d.update(category="hardware"), r"TD901\.yaml: category:"),
        (lambda d: d["confidence"].update(base=1.5), r"confidence\.base:"),
        (lambda d: d.update(id="TD9"), r"id:"),
        (lambda d: d["thresholds"].update(count={}), r"thresholds\.count.*at least one"),
    ],
)
def test_bad_rule_files_name_file_and_field(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data = _base()
    mutate(data)
    with pytest.raises(telediag.RuleFileError, match=message):
        load_rule(_write(tmp_path, data))


def test_file_name_must_match_id(tmp_path: Path) -> None:
    with pytest.raises(telediag.RuleFileError, match="named 'TD902' but the rule's id is 'TD901'"):
        load_rule(_write(tmp_path, _base(), "TD902.yaml"))


def test_not_yaml_and_duplicate_ids(tmp_path: Path) -> None:
    bad = tmp_path / "TD901.yaml"
    bad.write_text("id: [unclosed", encoding="utf-8")
    with pytest.raises(telediag.RuleFileError, match="not valid YAML"):
        load_rule(bad)
    other = tmp_path / "dups"
    other.mkdir()
    first = _base()
    second = _base()
    second["id"] = "TD902"
    second["aliases"] = ["TD901"]
    _write(other, first)
    _write(other, second, "TD902.yaml")
    with pytest.raises(telediag.RuleFileError, match="'TD901' is used by two rules"):
        telediag.load_rules(other)


def test_select_ignore_and_removed(tmp_path: Path) -> None:
    removed = _base()
    removed["status"] = "removed"
    _write(tmp_path, removed)
    kept = _base()
    kept["id"] = "TD902"
    kept["name"] = "kept-rule"
    _write(tmp_path, kept, "TD902.yaml")
    assert [r.id for r in telediag.load_rules(tmp_path)] == ["TD902"]
    assert [r.id for r in telediag.load_rules(tmp_path, include_removed=True)] == [
        "TD901",
        "TD902",
    ]
    assert telediag.load_rules(tmp_path, ignore=["TD90"]) == []
    assert [r.id for r in telediag.load_rules(tmp_path, select=["kept"])] == ["TD902"]


def test_rule_files_hold_no_code(catalog: list[telediag.Rule]) -> None:
    # Nothing is evaluated: a summary field that is not a plain measure name is refused
    # at load time (see above), and the YAML loader is the safe one.
    for path in RULES.glob("*.yaml"):
        assert "!!python" not in path.read_text(encoding="utf-8")


def test_cross_subscriber_goes_with_a_detector_that_follows_a_handset(tmp_path: Path) -> None:
    """Review: a rule marked cross_subscriber whose detector looks at one subscriber at a
    time (a match) ran, out of core, on rows with a handset only, and found other things
    than in memory, silently; a hand-over rule not so marked would be cut by subscriber.
    Both are now errors in the rule file."""
    burst = _base()
    burst["cross_subscriber"] = True
    with pytest.raises(telediag.RuleFileError, match=r"TD901\.yaml: cross_subscriber: .*'match'"):
        load_rule(_write(tmp_path, burst))
    handover = yaml.safe_load((RULES / "TD004.yaml").read_text(encoding="utf-8"))
    handover["id"] = "TD901"
    del handover["cross_subscriber"]
    with pytest.raises(telediag.RuleFileError, match=r"cross_subscriber: .*'handover'"):
        load_rule(_write(tmp_path, handover))
    handover["cross_subscriber"] = True
    assert load_rule(_write(tmp_path, handover)).cross_subscriber
