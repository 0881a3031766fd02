"""``telediag columns suggest``: the draft map reads times right, always loads, and marks
what it guessed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import telediag
from telediag.cli import main
from telediag.colmap import ColumnMap, load_column_map
from telediag.columns import suggest_map
from telediag.errors import InputError

ZONE = "Asia/Shanghai"


def _times(path: Path, draft: str) -> list[str]:
    """Scan ``path`` with the draft map and return its start times in UTC, as text."""
    cmap = path.with_suffix(".yaml")
    cmap.write_text(draft, encoding="utf-8")
    result = telediag.scan(path, column_map=cmap, tz=ZONE)
    report = result.report
    assert report.rows_read == report.rows_used + report.rows_set_aside
    return [str(t) for t in result.normalized.table["start_time"].to_pylist()]


def _guessed_lines(draft: str) -> list[str]:
    return [line for line in draft.splitlines() if "guess" in line]


def test_separate_date_and_time_columns_with_a_header_are_read_together(
    tmp_path: Path,
) -> None:
    path = tmp_path / "datetime.csv"
    path.write_text(
        "id,msisdn,direction,type,date,time,duration\n"
        "1,13800000001,out,call,2008-07-01,09:15:00,60\n"
        "2,13800000001,in,call,2008-07-01,18:40:10,30\n"
        "3,13800000002,out,sms,2008-07-02,23:59:59,\n"
    )
    draft = suggest_map(path)
    assert any("start_time" in line for line in _guessed_lines(draft)), draft
    assert _times(path, draft) == [
        "2008-07-01 01:15:00+00:00",
        "2008-07-01 10:40:10+00:00",
        "2008-07-02 15:59:59+00:00",
    ]


def test_compact_date_and_time_columns_are_not_read_as_epochs(tmp_path: Path) -> None:
    path = tmp_path / "compact.csv"
    path.write_text(
        "id,msisdn,direction,type,call_date,call_time,duration\n"
        "1,13800000001,out,call,20080701,091500,60\n"
        "2,13800000001,in,call,20080701,184010,30\n"
        "3,13800000002,out,sms,20080702,235959,\n"
    )
    draft = suggest_map(path)
    assert "epoch" not in draft
    assert _times(path, draft) == [
        "2008-07-01 01:15:00+00:00",
        "2008-07-01 10:40:10+00:00",
        "2008-07-02 15:59:59+00:00",
    ]


def test_a_day_above_twelve_in_the_second_field_proves_month_first(tmp_path: Path) -> None:
    path = tmp_path / "monthfirst.csv"
    path.write_text(
        "id,msisdn,direction,type,timestamp,duration\n"
        "1,13800000001,out,call,03/01/2014 09:15:00,60\n"
        "2,13800000001,in,call,03/02/2014 18:40:10,30\n"
        "3,13800000002,out,sms,03/25/2014 23:59:59,\n"
        "4,13800000002,out,sms,04/11/2014 10:00:00,\n"
    )
    draft = suggest_map(path)
    assert "%m/%d/%Y %H:%M:%S" in draft
    assert "%d/%m/%Y" not in draft
    assert _times(path, draft) == [
        "2014-03-01 01:15:00+00:00",
        "2014-03-02 10:40:10+00:00",
        "2014-03-25 15:59:59+00:00",
        "2014-04-11 02:00:00+00:00",
    ]


def test_when_no_value_tells_the_order_the_draft_says_it_guessed(tmp_path: Path) -> None:
    path = tmp_path / "either.csv"
    path.write_text(
        "id,msisdn,direction,type,timestamp\n"
        "1,13800000001,out,call,03/01/2014 09:15:00\n"
        "2,13800000001,in,call,04/02/2014 18:40:10\n"
    )
    draft = suggest_map(path)
    times = [line for line in draft.splitlines() if line.startswith("times:")]
    assert times and "guess" in times[0], draft


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            ["1215000000", "1215000001"],
            ["2008-07-02 12:00:00+00:00", "2008-07-02 12:00:01+00:00"],
        ),
        (
            ["1215000000000", "1215000001500"],
            ["2008-07-02 12:00:00+00:00", "2008-07-02 12:00:01.500000+00:00"],
        ),
    ],
    ids=["seconds", "milliseconds"],
)
def test_the_epoch_unit_is_the_one_giving_plausible_years(
    tmp_path: Path, values: list[str], expected: list[str]
) -> None:
    path = tmp_path / "epoch.csv"
    rows = "".join(f"{i},13800000001,{v},in,sms\n" for i, v in enumerate(values))
    path.write_text("id,msisdn,time,direction,type\n" + rows)
    draft = suggest_map(path)
    assert _times(path, draft) == expected


def test_a_file_name_that_needs_quoting_gives_a_draft_that_loads(tmp_path: Path) -> None:
    name = (
        "CDR export: July 2008 for subscriber group A, region north, switch 07, "
        "part 1 of 3 'final' #2.csv"
    )
    path = tmp_path / name
    path.write_text("id,msisdn,start_time,direction,type\n1,138,2008-07-01 10:00:00,mo,sms\n")
    draft = suggest_map(path)
    assert ColumnMap.model_validate(yaml.safe_load(draft)).name == path.stem


def test_a_header_with_a_control_character_gives_a_draft_that_loads(tmp_path: Path) -> None:
    path = tmp_path / "bell.csv"
    path.write_bytes(b"id,na\x07me,start_time\n1,138,2008-07-01 10:00:00\n")
    draft = suggest_map(path)
    ColumnMap.model_validate(yaml.safe_load(draft))


def test_a_gb18030_file_gets_its_encoding_in_the_draft(tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    text = (
        "主叫号码,被叫号码,开始时间,通话类型,方向\n"
        "13800000001,13900000002,2008-07-01 09:15:00,voice,mo\n"
        "13800000001,13900000003,2008-07-01 18:40:10,sms,mt\n"
    )
    path.write_bytes(text.encode("gb18030"))
    draft = suggest_map(path)
    cmap = ColumnMap.model_validate(yaml.safe_load(draft))
    assert cmap.csv is not None and cmap.csv.encoding.lower().replace("-", "") == "gb18030"
    assert any("encoding" in line and "guess" in line for line in draft.splitlines()), draft
    assert main(["columns", "suggest", str(path)]) == 0


def test_value_map_keys_with_leading_zeros_match_the_text(tmp_path: Path) -> None:
    path = tmp_path / "codes.csv"
    path.write_text(
        "id,msisdn,start_time,type,dir\n"
        "1,13800000001,2008-07-01 10:00:00,sms,01\n"
        "2,13800000001,2008-07-01 11:00:00,sms,010\n"
    )
    cmap = tmp_path / "codes.yaml"
    cmap.write_text(
        "version: 2\ncolumns:\n  record_type: type\n"
        "  direction: {source: dir, values: {01: mo, 010: mt}}\n"
    )
    loaded = load_column_map(cmap)
    assert loaded.columns["direction"].values == {"01": "mo", "010": "mt"}  # type: ignore[union-attr]
    result = telediag.scan(path, column_map=cmap, tz=ZONE)
    assert result.normalized.table["direction"].to_pylist() == ["mo", "mt"]


_header = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=',"\r\n'),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names=st.lists(_header, min_size=1, max_size=5, unique=True), stem=_header)
def test_any_header_and_file_name_give_a_draft_that_loads(
    tmp_path: Path, names: list[str], stem: str
) -> None:
    safe = "".join(c if c.isalnum() else "_" for c in stem) or "x"
    path = tmp_path / f"{safe}.csv"
    row = ",".join("2008-07-01 10:00:00" if i == 0 else "13800000001" for i in range(len(names)))
    path.write_text(",".join(names) + "\n" + row + "\n", encoding="utf-8")
    if not any(n.strip() for n in names):  # a header of blanks names nothing: one line
        with pytest.raises(InputError, match="the CSV header names no columns"):
            suggest_map(path)
        return
    draft = suggest_map(path)
    ColumnMap.model_validate(yaml.safe_load(draft))


def test_columns_check_shows_the_sources_each_layout_used() -> None:
    from telediag.catalog import load_rules
    from telediag.columns import check_columns

    from .conftest import ROOT

    maps = ROOT / "column-maps"
    report = check_columns(
        maps / "samples" / "vendor-moc-mtc",
        maps / "vendor-moc-mtc.yaml",
        "Europe/London",
        load_rules(),
    )
    sources = {c.name: c.source for c in report.columns}
    assert sources["msisdn"] == "incoming: SERVED_NUMBER; outgoing: A_NUMBER"
    assert sources["peer_number"] == "incoming: CALLER; outgoing: B_NUMBER"
    assert sources["record_id"] == "CDR_ID"
    assert "incoming: SERVED_NUMBER; outgoing: A_NUMBER" in report.render()


_VALID_CELLS = ["13800000001", "2008-07-01 10:00:00", "mo", "sms", "", "20080701100000"]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=st.binary(max_size=60),
    body=st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.lists(st.sampled_from(_VALID_CELLS), min_size=1, max_size=5).map(
                lambda cells: ",".join(cells).encode()
            ),
        ),
        max_size=8,
    ),
)
def test_any_bytes_give_a_draft_that_loads_or_one_line(
    tmp_path: Path, header: bytes, body: list[bytes]
) -> None:
    """Whatever a file holds (stray carriage returns, NULs, bytes of no encoding), the
    draft loads as a column map, or the answer is telediag's own one-line error."""
    path = tmp_path / "any.csv"
    path.write_bytes(b"\n".join([header, *body]))
    try:
        draft = suggest_map(path)
    except telediag.TelediagError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    ColumnMap.model_validate(yaml.load(draft, Loader=_text_keys()))


def _text_keys() -> type:
    from telediag.yamlfile import TextKeyLoader

    return TextKeyLoader


def test_a_carriage_return_inside_a_line_is_read_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "cr.csv"
    path.write_bytes(b"msisdn,start\n13800\r000001,2008-07-01 10:00:00\n13800000002,x\n")
    try:
        suggest_map(path)
    except telediag.TelediagError as exc:
        assert "\n" not in str(exc)


def test_list_record_and_byte_columns_of_a_parquet_file_are_named_not_a_traceback(
    tmp_path: Path,
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "nested.parquet"
    table = pa.table(
        {
            "msisdn": ["13800000001", "13800000002"],
            "day": ["2008-07-01", "2008-07-02"],
            "clock": ["10:00:00", "11:00:00"],
            "tags": [["a"], ["b", "c"]],
            "cell": [{"lac": 1, "ci": 2}, {"lac": 3, "ci": 4}],
            "raw": pa.array([b"\xff\xfe", b"\x00"], pa.binary()),
        }
    )
    pq.write_table(table, path)
    draft = suggest_map(path)
    assert (
        '# Columns of lists, records or non-text bytes (not read): "tags", "cell", "raw"' in draft
    )
    load = ColumnMap.model_validate(yaml.load(draft, Loader=_text_keys()))
    assert load.columns["start_time"].model_dump(exclude_defaults=True) == {
        "date": "day",
        "time": "clock",
    }


def test_suggest_for_a_directory_says_to_name_one_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["columns", "suggest", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"telediag: error: {tmp_path}: a directory; name one of its files"
