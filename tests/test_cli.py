"""The command line: exit codes, one-line errors, output formats, demo, rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import telediag
from telediag.cli import main

from .conftest import FIXTURES, ROOT

CASE = FIXTURES / "TD001" / "phonebook-forward.csv"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "telediag", *args], capture_output=True, text=True, cwd=ROOT
    )


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_scan_writes_the_findings_table(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"findings{suffix}"
    code = main(["scan", str(CASE), "--out", str(out), "--tz", "Asia/Shanghai", "-q"])
    assert code == 0
    if suffix == ".parquet":
        table = pq.read_table(out)
        assert str(table.schema.field("first_seen").type) == "timestamp[ms, tz=UTC]"
        frame = table.to_pandas()
        ids = list(frame["record_ids"][0])
    elif suffix == ".csv":
        frame = pd.read_csv(out, dtype={"msisdn": str})
        ids = json.loads(frame["record_ids"][0])
    else:
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        frame = pd.DataFrame(rows)
        ids = rows[0]["record_ids"]
        assert rows[0]["first_seen"] == "2008-06-12T01:00:00+00:00"
    assert list(frame["rule_id"]) == ["TD001"]
    assert str(frame["msisdn"][0]) == "13800000001"
    assert ids[0] == "b01" and len(ids) == 40
    for col in (
        "finding_id",
        "root_cause",
        "first_seen",
        "last_seen",
        "record_count",
        "charge",
        "confidence",
        "summary",
    ):
        assert col in frame.columns


def test_scan_exit_codes_and_one_line_errors(tmp_path: Path) -> None:
    ok = run("scan", str(CASE), "--out", str(tmp_path / "f.csv"))
    assert ok.returncode == 0, ok.stderr
    assert "anti_theft_sms_forwarding" in ok.stdout
    missing = run("scan", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "f.csv"))
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and "no such file" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad_out = run("scan", str(CASE), "--out", str(tmp_path / "f.xlsx"))
    assert bad_out.returncode == 2 and "must end in" in bad_out.stderr
    usage = run("scan", str(CASE))
    assert usage.returncode == 2 and usage.stderr.strip().count("\n") == 0
    bad_rules = tmp_path / "rules"
    bad_rules.mkdir()
    (bad_rules / "TD900.yaml").write_text("id: TD900\nname: x\n", encoding="utf-8")
    broken = run("scan", str(CASE), "--out", str(tmp_path / "f.csv"), "--rules", str(bad_rules))
    assert broken.returncode == 2 and "TD900.yaml" in broken.stderr


def test_nothing_found_is_still_success(tmp_path: Path) -> None:
    near_miss = FIXTURES / "TD001" / "chat-with-friend.csv"
    out = tmp_path / "f.jsonl"
    assert main(["scan", str(near_miss), "--out", str(out), "-q"]) == 0
    assert out.read_text() == ""


def test_rejects_and_evidence_files(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text(
        CASE.read_text() + "zz1,sms,mo,yesterday,13800000001,,,,5,0.1\n", encoding="utf-8"
    )
    rejects, evidence = tmp_path / "rejects.csv", tmp_path / "evidence.csv"
    result = run(
        "scan",
        str(src),
        "--out",
        str(tmp_path / "f.parquet"),
        "--rejects",
        str(rejects),
        "--evidence",
        str(evidence),
    )
    assert result.returncode == 0, result.stderr
    assert "1 set aside" in result.stdout and "unparseable start_time" in result.stdout
    rej = pd.read_csv(rejects)
    assert list(rej["record_id"]) == ["zz1"] and list(rej["reason"]) == ["unparseable start_time"]
    ev = pd.read_csv(evidence)
    assert len(ev) == 40 and set(ev.columns) >= {"finding_id", "record_id"}


def test_select_and_ignore(tmp_path: Path) -> None:
    out = tmp_path / "f.jsonl"
    assert main(["scan", str(CASE), "--out", str(out), "--ignore", "TD001", "-q"]) == 0
    assert out.read_text() == ""
    assert main(["scan", str(CASE), "--out", str(out), "--select", "TD00", "-q"]) == 0
    assert json.loads(out.read_text().splitlines()[0])["rule_id"] == "TD001"


def test_demo_and_rules_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    text = capsys.readouterr().out
    for cause in ("anti_theft_sms_forwarding", "mail_polling", "mms_encrypted_port"):
        assert cause in text
    assert main(["rules", "list"]) == 0
    listing = capsys.readouterr().out
    assert listing.splitlines()[0].startswith("TD001  sms-burst-to-one-recipient")
    assert main(["rules", "show", "TD002"]) == 0
    assert "## Why it causes a dispute" in capsys.readouterr().out
    assert main(["rules", "show", "TD999"]) == 2


def test_progress_goes_to_stderr(tmp_path: Path) -> None:
    result = run("scan", str(CASE), "--out", str(tmp_path / "f.csv"), "--progress", "-q")
    assert result.returncode == 0
    assert result.stdout == ""
    assert "rule TD001" in result.stderr and "rules done" in result.stderr
    n = len(telediag.load_rules())
    assert f"rules done ({n}/{n})" in result.stderr
    assert f"({n + 1}/{n})" not in result.stderr


@pytest.mark.parametrize("option", ["--select", "--ignore"])
def test_pattern_matching_no_rule_is_a_usage_error(tmp_path: Path, option: str) -> None:
    out = tmp_path / "f.jsonl"
    result = run("scan", str(CASE), "--out", str(out), option, "TD001", "TX99", "-q")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "'TX99'" in result.stderr
    assert "matches no rule" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_pattern_matching_no_rule_in_the_api() -> None:
    with pytest.raises(telediag.TelediagError, match="'TD99' matches no rule"):
        telediag.scan(CASE, select=["TD99"])
    with pytest.raises(telediag.TelediagError, match="'nope' matches no rule"):
        telediag.scan(CASE, rules=telediag.load_rules(), ignore=["nope"])


def test_public_api_is_small_and_sorted() -> None:
    import telediag

    assert telediag.__all__ == sorted(telediag.__all__)
    for name in telediag.__all__:
        assert hasattr(telediag, name)


def test_decode_command_prints_contract_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "0019588620112345678", "13812345678", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0] == {
        "number": "0019588620112345678",
        "international": True,
        "carrier_code": "195",
        "carrier": "China Mobile",
        "country_code": "886",
        "region": "TW",
        "gateway_area_code": "20",
        "gateway_city": "Guangzhou",
        "gateway_index": 1,
        "caller_number": "12345678",
    }
    assert lines[1]["international"] is False
    assert main(["decode", "0019588620112345678"]) == 0
    assert "Guangzhou" in capsys.readouterr().out
