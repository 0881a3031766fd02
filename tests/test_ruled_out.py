"""Ruled-out reasons are true: every near-miss fixture's subscriber gets a reason naming a
filter or threshold that really fails on the values measured for them, and hypotheses
the records cannot test are "could not check", listed apart and naming the column.

The checks here recompute what they verify from the records (the rule's candidates with
every measure, the filter's conditions one at a time); they do not trust the flags the
investigation reports.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import telediag
from telediag.catalog import RecordFilter
from telediag.context import ScanSettings
from telediag.detectors import REGISTRY
from telediag.engine import run_rule
from telediag.filters import FilterEvaluator
from telediag.investigation import RuledOut, filter_conditions

from .conftest import FIXTURES, RULES


def _near_miss_subscribers() -> list[Any]:
    out = []
    for spec_path in sorted(FIXTURES.glob("*/cases.yaml")):
        spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
        for case in spec["cases"]:
            if case["expect"]:
                continue
            path = spec_path.parent / case["file"]
            for msisdn in pd.read_csv(path, dtype=str)["msisdn"].unique():
                out.append(
                    pytest.param(
                        spec["rule"],
                        spec.get("tz", "UTC"),
                        path,
                        str(msisdn),
                        id=f"{spec['rule']}-{case['name']}-{msisdn}",
                    )
                )
    return out


def _number(text: str) -> float:
    return float(text.replace(",", ""))


class _Measured:
    """The rule run on the file with every measure, for one subscriber."""

    def __init__(self, rule: telediag.Rule, path: Path, tz: str, msisdn: str) -> None:
        result = telediag.scan(path, rules=[rule], tz=tz)
        self.records = result.records
        assert self.records is not None
        self.settings = ScanSettings(tz=tz)
        self.evaluator = FilterEvaluator(
            self.records.table, self.settings, result.normalized.encoded
        )
        self.outcome = run_rule(rule, self.records, self.evaluator, self.settings, keep_all=True)
        codes = self.records.msisdns.to_pylist()
        self.code = codes.index(msisdn)
        cands = self.outcome.candidates.measures
        self.mine = cands[cands["subscriber"] == self.code] if len(cands) else cands

    def own(self, flt: Any) -> np.ndarray:
        mask = self.evaluator.mask(flt)[self.records.order]
        return np.flatnonzero(mask & (self.records.subscriber == self.code))


def _kind(rule: telediag.Rule) -> Any:
    where = {k: v for k, v in rule.records.where.items() if k in ("record_type", "direction")}
    return RecordFilter.model_construct(where=where, any_of=[], not_=None)


@pytest.mark.parametrize(("rule_id", "tz", "path", "msisdn"), _near_miss_subscribers())
def test_every_near_miss_reason_names_what_fails(
    rule_id: str, tz: str, path: Path, msisdn: str
) -> None:
    rule = next(r for r in telediag.load_rules(RULES) if r.id == rule_id)
    inv = telediag.investigate(path, msisdn, tz=tz, rules=RULES)
    assert rule_id not in {f.rule_id for f in inv.findings}
    measured = _Measured(rule, path, tz, msisdn)
    ruled = {r.rule_id: r for r in inv.ruled_out}.get(rule_id)
    blind = {r.rule_id: r for r in inv.could_not_check}.get(rule_id)
    if ruled is None and blind is None:
        # Not considered at all: only when the subscriber has no record of its types.
        types = {k: v for k, v in rule.records.where.items() if k == "record_type"}
        assert types, f"{rule_id} looks at every record type: it must be listed"
        assert (
            measured.own(RecordFilter.model_construct(where=types, any_of=[], not_=None)).size == 0
        )
        return
    assert (ruled is None) != (blind is None), "listed both ruled out and could not check"
    if blind is not None:
        _verify_could_not_check(rule, measured, blind)
    else:
        assert ruled is not None
        _verify_ruled_out(rule, measured, ruled)


def _verify_ruled_out(rule: telediag.Rule, measured: _Measured, ruled: RuledOut) -> None:
    reason = ruled.reason
    assert "none with record_type" not in reason  # the old self-contradiction
    if ruled.basis == "thresholds":
        failed = [c for c in ruled.checks if not c.passed]
        assert failed, reason
        for check in failed:
            cond = rule.thresholds[check.measure]
            assert not cond.holds(check.value), (check, "does not fail")
            assert f"{check.measure} " in reason and f"needs {cond.describe()}" in reason
            column = measured.mine[check.measure]
            if check.value is None:
                assert column.isna().any()
            elif isinstance(check.value, (int, float)):
                shown = re.search(rf"{check.measure} ([\d,.e+-]+),", reason)
                assert shown, reason
                assert np.isclose(column.astype(float), _number(shown.group(1)), rtol=5e-3).any(), (
                    check.measure,
                    shown.group(1),
                    list(column),
                )
            else:
                assert (column.astype(str) == str(check.value)).any()
    elif ruled.basis == "detector":
        passing = measured.own(rule.records)
        assert passing.size == ruled.records_considered > 0
        assert len(measured.mine) == 0  # the detector made no candidate of them
        detector = REGISTRY[rule.detector.kind]
        assert detector.NO_CANDIDATE in reason
    elif ruled.basis == "filter":
        assert measured.own(rule.records).size == 0
        kind = measured.own(_kind(rule))
        assert kind.size == ruled.records_considered > 0
        named = [f for f in ruled.filters if f.passing == 0]
        by_column = {c: (text, flt) for c, text, flt in filter_conditions(rule)}
        if named:
            for f in named:
                text, flt = by_column[f.column]
                assert f"{f.column} {text}" in reason
                alone = measured.own(flt)
                assert np.intersect1d(alone, kind).size == 0, f"{f.column} passes some records"
        else:  # each condition passes some record, never all at once
            assert "none meeting all conditions at once" in reason
    else:
        assert ruled.basis == "no_records"
        assert measured.own(_kind(rule)).size == 0


def _verify_could_not_check(rule: telediag.Rule, measured: _Measured, blind: Any) -> None:
    rows = measured.records.order[measured.own(_kind(rule))]
    assert len(rows) >= blind.records_considered > 0
    for column in blind.columns:
        assert column in blind.reason
        for c in column.split(" or "):
            if c in measured.records.table.column_names:
                values = measured.records.table[c].take(rows)
                assert values.null_count == len(values), f"{c} has values"


# ------------------------------------------------------------------ could not check


def _strip(path: Path, tmp_path: Path, *columns: str) -> Path:
    frame = pd.read_csv(path, dtype=str)
    out = tmp_path / path.name
    frame.drop(columns=list(columns)).to_csv(out, index=False)
    return out


@pytest.mark.parametrize(
    ("rule_id", "fixture", "msisdn", "column"),
    [
        ("TD004", "TD004/resent-under-new-sim.csv", "13800000402", "imei"),
        ("TD011", "TD011/handset-sends-flash.csv", None, "sms_class"),
        ("TD003", "TD003/mms-on-wtls-ports.csv", None, "server_port"),
    ],
)
def test_a_missing_column_is_could_not_check_not_ruled_out(
    tmp_path: Path, rule_id: str, fixture: str, msisdn: str | None, column: str
) -> None:
    source = FIXTURES / fixture
    msisdn = msisdn or str(pd.read_csv(source, dtype=str)["msisdn"].iloc[0])
    before = telediag.investigate(source, msisdn, tz="Asia/Shanghai", rules=RULES)
    assert rule_id in {f.rule_id for f in before.findings}
    stripped = _strip(source, tmp_path, column)
    inv = telediag.investigate(stripped, msisdn, tz="Asia/Shanghai", rules=RULES)
    assert rule_id not in {f.rule_id for f in inv.findings}
    assert rule_id not in {r.rule_id for r in inv.ruled_out}
    entry = {r.rule_id: r for r in inv.could_not_check}[rule_id]
    assert entry.columns == [column] and column in entry.reason
    doc = json.loads(inv.render("json"))
    assert rule_id in {r["rule_id"] for r in doc["could_not_check"]}
    assert rule_id not in {r["rule_id"] for r in doc["ruled_out"]}
    text = inv.render("text")
    assert "Could not check (" in text and "could not be checked" in text
    assert text.index("Could not check (") > text.index("Ruled out (")
    html = inv.render("html")
    assert 'class="could-not-check"' in html and column in html
    assert "## Could not check (" in inv.render("md")


def test_an_all_empty_column_whose_null_means_none_is_judged(tmp_path: Path) -> None:
    """sms_class present but empty means "no class" (the contract): ruled out, not unchecked;
    only a feed without the column leaves TD011 unchecked (see above)."""
    source = FIXTURES / "TD011" / "handset-sends-flash.csv"
    frame = pd.read_csv(source, dtype=str)
    frame["sms_class"] = ""
    path = tmp_path / "blank.csv"
    frame.to_csv(path, index=False)
    msisdn = str(frame["msisdn"].iloc[0])
    inv = telediag.investigate(path, msisdn, tz="Asia/Shanghai", rules=RULES)
    assert "TD011" not in {r.rule_id for r in inv.could_not_check}
    assert {r.rule_id: r for r in inv.ruled_out}["TD011"].basis == "filter"


def test_td004_reason_for_an_unmatched_resend_names_the_failed_threshold() -> None:
    path = FIXTURES / "TD004" / "new-sim-sends-to-another-recipient.csv"
    inv = telediag.investigate(path, "13800000412", tz="Asia/Shanghai", rules=RULES)
    why = {r.rule_id: r for r in inv.ruled_out}["TD004"]
    assert why.reason.startswith("closest pattern (1 records for 13900000497 / 30100): ")
    assert "failed_count 0, needs >= 1" in why.reason
    assert "mms_event" not in why.reason


def test_a_missing_column_does_not_hide_a_condition_that_fails_on_the_others(
    tmp_path: Path,
) -> None:
    """No sms_length, but every SMS goes to a domestic number: the foreign-number filter
    already rules the cause out, whatever the lengths."""
    source = FIXTURES / "TD010" / "daily-text-to-domestic-number.csv"
    stripped = _strip(source, tmp_path, "sms_length")
    inv = telediag.investigate(stripped, "13800001003", tz="Asia/Shanghai", rules=RULES)
    assert "TD010" not in {r.rule_id for r in inv.could_not_check}
    why = {r.rule_id: r for r in inv.ruled_out}["TD010"]
    assert why.basis == "filter" and "peer_international = True" in why.reason


# ------------------------------------------------------------------ review of issue 8

_HOME_HEADER = (
    "record_id,record_type,direction,start_time,msisdn,imei,peer_number,status,charge,"
    "visited_mcc,sms_length,mms_event,mms_size\n"
)
_HOME = (
    _HOME_HEADER
    + """\
a1,voice,mo,2008-10-03 08:00:00,13800000001,35069800000018,13700000001,{ok},0.40,{mcc},,,
a2,sms,mo,2008-10-04 10:00:00,13800000001,35069800000018,13700000002,{ok},0.10,{mcc},40,,
a3,mms,mt,2008-10-05 11:00:00,13800000001,35069800000018,13700000003,{ok},0.00,{mcc},,deliver,30000
a4,mms,mt,2008-10-06 11:00:00,13800000001,35069800000018,10658000,{ok},0.00,{mcc},,deliver,60000
a5,mms,mt,2008-10-07 11:00:00,13800000001,35069800000018,10658000,{ok},0.00,{mcc},,deliver,60000
"""
)


def test_a_null_that_means_ok_or_home_is_not_could_not_check(tmp_path: Path) -> None:
    """The contract: null status is ok, null visited_mcc is home. Blanks and explicit values
    give the same verdicts."""
    verdicts = []
    for ok, mcc in (("", ""), ("ok", "460")):
        path = tmp_path / f"home-{bool(ok)}.csv"
        path.write_text(_HOME.format(ok=ok, mcc=mcc), encoding="utf-8")
        inv = telediag.investigate(path, "13800000001", tz="Asia/Shanghai", rules=RULES)
        verdicts.append(
            ({r.rule_id for r in inv.ruled_out}, {r.rule_id for r in inv.could_not_check})
        )
        assert not {"TD008", "TD009"} & {r.rule_id for r in inv.could_not_check}
    assert verdicts[0] == verdicts[1]


def test_td004_status_is_judged_on_the_records_the_rule_reads(tmp_path: Path) -> None:
    source = FIXTURES / "TD004" / "same-picture-sent-again-days-after-swap.csv"
    frame = pd.read_csv(source, dtype=str)
    frame.loc[frame["status"] == "ok", "status"] = None  # ok written as empty
    path = tmp_path / "null-ok.csv"
    frame.to_csv(path, index=False)
    inv = telediag.investigate(path, "13800000462", tz="Asia/Shanghai", rules=RULES)
    why = {r.rule_id: r for r in inv.ruled_out}["TD004"]
    assert "resend_rank 4, needs <= 3" in why.reason


def test_a_threshold_that_fails_whatever_the_missing_column_rules_out(tmp_path: Path) -> None:
    source = FIXTURES / "TD010" / "a-few-texts-to-a-friend-abroad.csv"
    stripped = _strip(source, tmp_path, "sms_length")
    inv = telediag.investigate(stripped, "13800001002", tz="Asia/Shanghai", rules=RULES)
    assert "TD010" not in {r.rule_id for r in inv.could_not_check}
    why = {r.rule_id: r for r in inv.ruled_out}["TD010"]
    assert "count 3, needs >= 5" in why.reason


def test_unknown_lengths_are_not_alike(tmp_path: Path) -> None:
    """Without sms_length, the holiday chat is not a machine report: no finding, and the
    investigation says the lengths could not be checked."""
    source = FIXTURES / "TD010" / "holiday-chat-with-friend-abroad.csv"
    stripped = _strip(source, tmp_path, "sms_length")
    result = telediag.scan(stripped, tz="Asia/Shanghai", rules=RULES, select=["TD010"])
    assert len(result.findings) == 0
    inv = telediag.investigate(stripped, "13800001006", tz="Asia/Shanghai", rules=RULES)
    assert [c.columns for c in inv.could_not_check if c.rule_id == "TD010"] == [["sms_length"]]
