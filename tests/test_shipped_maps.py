"""Every shipped column map reads its sample file into the findings of the fixture the
sample was written from; ``telediag columns check`` and ``columns suggest`` on them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

import telediag
from telediag.cli import main
from telediag.colmap import ColumnMap, load_column_map
from telediag.normalize import normalize
from telediag.read import read_input

from .conftest import FIXTURES, ROOT

MAPS = ROOT / "column-maps"
SAMPLES = MAPS / "samples"
TZ = "Asia/Shanghai"
#: map -> (its sample, the fixture the sample was written from)
CASES = {
    "3gpp-ts32298": ("3gpp-ts32298.csv", "TD005/nokia-fetches-78-times.csv"),
    "switch-headerless": ("switch-headerless.dat", "TD001/phonebook-forward.csv"),
    "research-handset-log": ("research-handset-log.csv", "TD010/e770-reports-to-uk.csv"),
    "vendor-moc-mtc": ("vendor-moc-mtc", "TD007/samsung-dials-austria.csv"),
}


def test_every_shipped_map_has_a_sample_and_a_case() -> None:
    assert sorted(p.stem for p in MAPS.glob("*.yaml")) == sorted(CASES)


def _evidence(result: telediag.ScanResult) -> list[tuple[str, str, tuple[str, ...]]]:
    f = result.findings
    return sorted(
        (r, m, tuple(result.evidence_for(fid)))
        for r, m, fid in zip(f["rule_id"], f["msisdn"], f["finding_id"], strict=True)
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_sample_scans_to_the_fixture_findings(name: str) -> None:
    sample, fixture = CASES[name]
    result = telediag.scan(SAMPLES / sample, column_map=MAPS / f"{name}.yaml", tz=TZ)
    rep = result.report
    assert rep.rows_read == rep.rows_used + rep.rows_set_aside
    assert rep.rows_set_aside == 0
    expected = telediag.scan(FIXTURES / fixture, tz=TZ)
    assert _evidence(result) == _evidence(expected)
    assert result.findings["rule_id"].size >= 1


def test_vendor_files_layouts_durations_and_disagreements() -> None:
    result = telediag.scan(SAMPLES / "vendor-moc-mtc", column_map=MAPS / "vendor-moc-mtc.yaml")
    rep = result.report
    assert set(rep.layouts.values()) == {"outgoing", "incoming"}
    assert rep.disagreements == {"direction": 1}  # d4: CALL_TYPE MOC, DIR T
    # Every column (a scan reads only those its rules need).
    raw = read_input(SAMPLES / "vendor-moc-mtc", column_map=MAPS / "vendor-moc-mtc.yaml")
    t = normalize(raw).table.to_pandas().set_index("record_id")
    assert t.loc["d5", "duration_s"] == 600.0  # 23:58 to 00:08
    assert t.loc["d4", "direction"] == "mo"
    assert t.loc["m2", "start_time"] == pd.Timestamp("2008-03-13 18:30", tz="UTC")
    assert t.loc["m1", "direction"] == "mt"
    assert t.loc["d1", "record_type"] == "csd"


def test_columns_check_reports_sources_failures_rules_and_set_aside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cmap = MAPS / "research-handset-log.yaml"
    src = tmp_path / "log.csv"
    text = (SAMPLES / "research-handset-log.csv").read_text(encoding="utf-8")
    src.write_text(text.replace("Wed Oct 01 20:59:00 +0800 2008", "yesterday"), encoding="utf-8")
    assert main(["columns", "check", str(src), "--column-map", str(cmap), "--tz", TZ]) == 0
    out = capsys.readouterr().out
    assert "29 rows read" in out
    assert "start_time       timestamp" in out
    assert "96.6%  'yesterday'" in out
    assert "TD009: no imei, visited_mcc" in out  # the log has no handset or network
    assert "1 unparseable start_time" in out
    assert main(["columns", "check", str(tmp_path / "nope.csv")]) == 2


@pytest.mark.parametrize("name", ["research-handset-log", "switch-headerless", "3gpp-ts32298"])
def test_columns_suggest_drafts_a_map_that_loads(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = SAMPLES / CASES[name][0]
    assert main(["columns", "suggest", str(sample)]) == 0
    draft = capsys.readouterr().out
    cmap = ColumnMap.model_validate(yaml.safe_load(draft))
    path = tmp_path / "draft.yaml"
    path.write_text(draft, encoding="utf-8")
    assert load_column_map(path) == cmap
    if name == "switch-headerless":  # no names: the layout and the columns come from values
        assert cmap.csv is not None and cmap.csv.delimiter == ";" and not cmap.csv.header
        assert (cmap.csv.skip_rows, cmap.csv.skip_footer) == (1, 1)
        assert cmap.times.formats == ["%Y%m%d %H%M%S"]
        assert "# guess: GSM basic services" in draft
        result = telediag.scan(sample, column_map=cmap, tz=TZ)
        assert result.report.rows_used == result.report.rows_read == 44
        # Values alone do not tell a text's length from a charge, so the draft leaves
        # col12 (sms_chars) out; TD001 judges lengths and cannot fire until it is named (and
        # an investigation says it could not check, naming sms_length).
        _draft_cannot_confirm(sample, path, result, "TD001")
        named = cmap.model_copy(update={"columns": {**cmap.columns, "sms_length": "col12"}})
        result = telediag.scan(sample, column_map=named, tz=TZ)
        assert list(result.findings["rule_id"]) == ["TD001"]
    assert main(["columns", "check", str(sample), "--column-map", str(path), "--tz", TZ]) == 0
    if name == "research-handset-log":
        assert cmap.times.formats == ["%a %b %d %H:%M:%S %z %Y"]
        assert "# guess" in draft
        result = telediag.scan(sample, column_map=cmap, tz=TZ)
        assert result.report.rows_used == result.report.rows_read
        assert list(result.findings["rule_id"]) == ["TD010"]


def _draft_cannot_confirm(
    sample: Path, draft: Path, result: telediag.ScanResult, rule_id: str
) -> None:
    """A drafted map without sms_length: no finding of the length-judging rule, and the
    investigation lists it as could not check, naming sms_length."""
    assert rule_id not in set(result.findings["rule_id"])
    msisdn = str(result.records.msisdns.to_pylist()[0]) if result.records is not None else ""
    inv = telediag.investigate(sample, msisdn, column_map=draft, tz=TZ)
    unchecked = {c.rule_id: c.columns for c in inv.could_not_check}
    assert unchecked.get(rule_id) == ["sms_length"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_shipped_map_streams_out_of_core_and_into_a_store(name: str, tmp_path: Path) -> None:
    """Dialects (no header, banner and trailer lines) and per-file layouts are read a
    block at a time by the spill pass and by prepare, with the in-memory result."""
    from telediag.store import prepare

    from .test_outofcore import assert_same

    sample, cmap = SAMPLES / CASES[name][0], MAPS / f"{name}.yaml"
    whole = telediag.scan(sample, column_map=cmap, tz=TZ)
    spill = tmp_path / "spill"
    spill.mkdir()
    parts = telediag.scan(sample, column_map=cmap, tz=TZ, buckets=3, spill_dir=spill)
    assert "partition" in parts.timings
    assert_same(whole, parts)
    store = tmp_path / "store"
    prepare([sample], store, column_map=cmap, tz=TZ, buckets=3)
    stored = telediag.scan(store)
    pd.testing.assert_frame_equal(whole.findings, stored.findings)
    assert whole.report.to_dict() | {"files": []} == stored.report.to_dict() | {"files": []}
    assert whole.rejects().to_pylist() == stored.rejects().to_pylist()
