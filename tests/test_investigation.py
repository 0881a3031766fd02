"""investigate(): what it reads, what it rules out and why, policy and deadlines."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import telediag
from telediag.cli import main
from telediag.policy import Policy

from .conftest import FIXTURES

TZ = "Asia/Shanghai"


def test_keepalive_is_ruled_out_as_mail_polling_with_the_measured_period() -> None:
    inv = telediag.investigate(FIXTURES / "TD002" / "https-keepalive.csv", "13800000013", tz=TZ)
    assert inv.findings == []
    why = {r.rule_id: r for r in inv.ruled_out}["TD002"]
    assert why.root_cause == "mail_polling"
    assert "app_protocol HTTPS x120" in why.reason
    assert "period_s 300" in why.reason
    assert why.records_considered == 120


def test_near_miss_names_the_threshold_it_missed() -> None:
    inv = telediag.investigate(FIXTURES / "TD001" / "chat-with-friend.csv", "13800000002", tz=TZ)
    why = {r.rule_id: r for r in inv.ruled_out}["TD001"]
    assert why.reason.startswith("closest pattern (45 records for 13922223333): mode_share")
    failed = [c.measure for c in why.checks if not c.passed]
    assert failed == ["mode_share"]


def test_sim_swap_shows_previous_number_and_its_evidence() -> None:
    inv = telediag.investigate(
        FIXTURES / "TD004" / "resent-under-new-sim.csv", "13800000402", tz=TZ
    )
    assert [f.rule_id for f in inv.findings] == ["TD004"]
    assert inv.findings[0].evidence == ["a2", "c2"]
    assert inv.overview.handsets[0].other_numbers == ["13800000401"]
    assert [(c.kind, c.before, c.after) for c in inv.overview.changes] == [
        ("number", "13800000401", "13800000402")
    ]
    shown = inv.records.set_index("record_id")
    assert bool(shown.loc["a2", "evidence"]) and not bool(shown.loc["a2", "own"])
    assert inv.overview.records == 3  # the previous number's records are not counted


def _month(tmp_path: Path) -> Path:
    """Three subscribers in one Parquet file with small row groups."""
    frames = [
        pd.read_csv(FIXTURES / rule / name, dtype=str)
        for rule, name in [
            ("TD001", "phonebook-forward.csv"),
            ("TD001", "notice-to-many.csv"),
            ("TD004", "resent-under-new-sim.csv"),
        ]
    ]
    month = pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=3)
    path = tmp_path / "month.parquet"
    pq.write_table(pa.Table.from_pandas(month, preserve_index=False), path, row_group_size=16)
    return path


def test_reads_only_the_subscriber_and_its_handsets(tmp_path: Path) -> None:
    path = _month(tmp_path)
    inv = telediag.investigate(path, "13800000402", tz=TZ)
    assert inv.input["rows_read"] == 5  # 3 of this number, 2 of the previous one
    assert [f.rule_id for f in inv.findings] == ["TD004"]
    other = telediag.investigate(path, "13800000001", tz=TZ)
    assert other.input["rows_read"] == 44
    assert [f.evidence for f in other.findings] == [[f"b{i:02d}" for i in range(1, 41)]]


def test_generated_ids_keep_the_file_row_numbers(tmp_path: Path) -> None:
    path = _month(tmp_path)
    table = pq.read_table(path).drop_columns(["record_id"])
    bare = tmp_path / "bare.parquet"
    pq.write_table(table, bare, row_group_size=16)
    inv = telediag.investigate(bare, "13800000001", tz=TZ)
    scan = telediag.scan(bare, tz=TZ)
    scanned = scan.findings.set_index("rule_id")["record_ids"]
    assert inv.findings[0].evidence == list(scanned["TD001"])
    rows = table.to_pandas()
    first = int(inv.findings[0].evidence[0].split(":")[1])
    assert inv.findings[0].evidence[0].startswith("bare:")
    assert rows["peer_number"].iloc[first] == "13911112222"


def test_period_limits_the_records(tmp_path: Path) -> None:
    src = FIXTURES / "TD001" / "phonebook-forward.csv"
    inv = telediag.investigate(src, "13800000001", start="2008-06-12", end="2008-06-12", tz=TZ)
    assert inv.overview.records == 42  # the day of the burst only
    assert [f.rule_id for f in inv.findings] == ["TD001"]
    before = telediag.investigate(src, "13800000001", end="2008-06-11", tz=TZ)
    assert before.findings == [] and before.overview.records == 2


def test_policy_and_deadlines() -> None:
    src = FIXTURES / "TD001" / "phonebook-forward.csv"
    policy = Policy.model_validate(
        {
            "charge_advice": {"anti_theft_sms_forwarding": "refund"},
            "deadlines": {"acknowledge": 1, "holidays": ["2008-06-17"]},
        }
    )
    inv = telediag.investigate(
        src, "13800000001", complaint_date="2008-06-13", tz=TZ, policy=policy
    )
    assert inv.findings[0].charge_advice == "refund"
    assert inv.deadlines is not None
    # Friday 13th: Monday 16th is the next working day; Tuesday 17th is a holiday.
    assert inv.deadlines.acknowledge_by == dt.date(2008, 6, 16)
    assert inv.deadlines.investigate_by == dt.date(2008, 6, 23)
    default = telediag.investigate(src, "13800000001", tz=TZ)
    assert default.findings[0].charge_advice == "review"
    assert default.deadlines is None


def test_bad_policy_file_and_unknown_subscriber(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("charge_advice:\n  mail_polling: forgive\n", encoding="utf-8")
    src = FIXTURES / "TD001" / "phonebook-forward.csv"
    with pytest.raises(telediag.ConfigError, match=r"policy\.yaml: charge_advice\.mail_polling"):
        telediag.investigate(src, "13800000001", policy=bad)
    with pytest.raises(telediag.InputError, match="no records of subscriber 13899999999"):
        telediag.investigate(src, "13899999999")
    assert main(["investigate", str(src), "--msisdn", "13899999999"]) == 2


def test_cli_writes_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = str(FIXTURES / "TD002" / "pop3-every-5-minutes.csv")
    for suffix in ("txt", "md", "html", "json"):
        out = tmp_path / f"report.{suffix}"
        assert (
            main(["investigate", src, "--msisdn", "13800000011", "--tz", TZ, "--out", str(out)])
            == 0
        )
        assert "mail_polling" in out.read_text(encoding="utf-8")
    assert "1 finding(s) for 13800000011" in capsys.readouterr().out


def test_reports_name_the_other_numbers_on_the_handset() -> None:
    inv = telediag.investigate(
        FIXTURES / "TD004" / "resent-under-new-sim.csv", "13800000402", tz=TZ
    )
    assert "35201401000017 was also used by 13800000401" in inv.render("text")
    assert "| also used by |" in inv.render("md")
    assert "also used by" in inv.render("html")


def test_a_finding_on_an_unknown_handset_among_known_ones_is_kept(tmp_path: Path) -> None:
    """Findings whose handset model is unknown sit beside ones with a known model: the
    model is missing (NaN in the frame), and the finding must not turn into a rule error."""
    path = tmp_path / "shared.csv"
    path.write_text(
        "record_id,record_type,direction,start_time,msisdn,imei,peer_number\n"
        "r4,csd,mo,2008-09-05 13:00:00,13800000001,35201401000017,0044770090055\n"
        "r21,csd,mo,2008-09-02 15:00:00,13800000003,35484400000010,+46701234567\n"
        "r27,voice,mo,2008-09-05 16:00:00,13800000001,35484400000010,10658000\n",
        encoding="utf-8",
    )
    inv = telediag.investigate(path, "13800000001")
    assert inv.rule_errors == []
    assert [(f.rule_id, f.handset_model) for f in inv.findings] == [("TD007", None)]


def test_overview_order_does_not_depend_on_how_the_input_was_encoded(tmp_path: Path) -> None:
    """Review: dictionary columns became pandas categoricals, and the overview tables were
    ordered by dictionary order instead of by value."""
    import pyarrow.csv as pacsv

    from telediag import store

    rows = [
        "record_id,record_type,direction,start_time,msisdn,peer_number,duration_s,charge",
        "x1,sms,mo,2008-06-12 08:00:00,13800000002,13900000009,,0.1",
        "r1,voice,mo,2008-06-12 10:00:00,13800000001,13900000001,30,0.2",
        "r2,sms,mo,2008-06-12 11:00:00,13800000001,13900000002,,0.1",
        "r3,data,mo,2008-06-12 12:00:00,13800000001,,60,0.05",
        "r4,sms,mt,2008-06-13 09:00:00,13800000001,13900000002,,0",
    ]
    csv = tmp_path / "cdr.csv"
    csv.write_text("\n".join(rows) + "\n")
    names = rows[0].split(",")
    text = pacsv.read_csv(
        csv, convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
    )
    as_dictionaries = pa.table({c: text[c].dictionary_encode() for c in names})
    store.prepare([csv], tmp_path / "store", tz="UTC")
    overviews = []
    for src in (csv, as_dictionaries, tmp_path / "store"):
        zone = None if src == tmp_path / "store" else "UTC"
        inv = telediag.investigate(src, "13800000001", tz=zone)
        overviews.append(json.loads(inv.render("json"))["overview"])
    by_type = [(x["record_type"], x["direction"]) for x in overviews[0]["by_type"]]
    assert by_type == [("data", "mo"), ("sms", "mo"), ("sms", "mt"), ("voice", "mo")]
    assert overviews[1] == overviews[0]
    assert overviews[2] == overviews[0]
