"""No input ends in a traceback: any bytes, any map, any table types.

Every case ends either with a result whose rows add up (read = used + set aside) or
with a :class:`~telediag.TelediagError` of one line.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import telediag
from telediag.errors import TelediagError

from .conftest import FIXTURES, RULES

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SAMPLE = (FIXTURES / "TD001" / "phonebook-forward.csv").read_bytes()
RULE_LIST = telediag.load_rules(RULES)


def scan_or_error(source: Any, **kwargs: Any) -> telediag.ScanResult | None:
    """Scan; allow only a one-line TelediagError; check that the rows add up."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy overflow and the like are failures too
        try:
            result = telediag.scan(source, rules=RULE_LIST, **kwargs)
        except TelediagError as exc:
            message = str(exc)
            assert message and "\n" not in message, message
            return None
    rep = result.report
    assert rep.rows_read == rep.rows_used + rep.rows_set_aside
    assert result.rejects().num_rows == rep.rows_set_aside
    return result


#: One folder for every generated example, removed when the test run ends (a folder per
#: example left thousands behind in /tmp).
_FOLDER = tempfile.TemporaryDirectory(prefix="telediag-robust-")


def _write(data: bytes, name: str = "feed.csv") -> Path:
    folder = Path(tempfile.mkdtemp(dir=_FOLDER.name))
    path = folder / name
    path.write_bytes(data)
    return path


@SETTINGS
@given(st.binary(max_size=400))
def test_arbitrary_bytes_as_csv(data: bytes) -> None:
    scan_or_error(_write(data))


@SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes_after_a_valid_header(data: bytes) -> None:
    header = SAMPLE.split(b"\n", 1)[0] + b"\n"
    scan_or_error(_write(header + data))


NASTY = [
    "",
    " ",
    "1e308",
    "-1e308",
    "inf",
    "nan",
    "NULL",
    "0x1F",
    "１２３",
    "9" * 40,
    "-0",
    "2008-02-30 10:00:00",
    "\x00",
    "'",
    '"',
    "é",
    "1,5",
]


@SETTINGS
@given(
    st.lists(st.tuples(st.integers(0, 20), st.integers(0, 12), st.sampled_from(NASTY)), max_size=8),
    st.lists(st.integers(0, 9), max_size=3),
    st.lists(st.integers(0, 9), max_size=2),
    st.lists(st.tuples(st.integers(0, len(SAMPLE) - 1), st.integers(0, 255)), max_size=3),
    st.integers(0, len(SAMPLE)),
)
def test_mutated_fixture(
    cells: list[tuple[int, int, str]],
    duplicated: list[int],
    dropped: list[int],
    flips: list[tuple[int, int]],
    cut: int,
) -> None:
    lines = SAMPLE.decode().splitlines()
    rows = [line.split(",") for line in lines]
    width = len(rows[0])
    for r, c, value in cells:
        if 0 < r < len(rows) and c < width:
            rows[r][c] = f'"{value}"' if "," in value or '"' in value else value
    for c in duplicated:
        if c < width:
            for row in rows:
                row.append(row[c])
    for c in sorted(set(dropped), reverse=True):
        if c < len(rows[0]):
            for row in rows:
                del row[c]
    data = bytearray("\n".join(",".join(row) for row in rows).encode())
    for pos, byte in flips:
        if pos < len(data):
            data[pos] = byte
    scan_or_error(_write(bytes(data[: max(cut, len(data) // 2)])), tz="Asia/Shanghai")


CANONICAL = ["record_type", "direction", "start_time", "msisdn", "duration_s", "charge"]
SOURCE_NAMES = ["record_id", "record_type", "direction", "start_time", "msisdn", "x", "charge"]
leaf = st.one_of(st.text(max_size=8), st.integers(), st.floats(), st.none(), st.booleans())
yaml_value = st.recursive(
    leaf,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from([*SOURCE_NAMES, *CANONICAL, "formats"]), inner, max_size=3
        )
    ),
    max_leaves=8,
)
MAP_KEYS = ["columns", "values", "constants", "scale", "times", "record_kinds", "name"]


@SETTINGS
@given(st.dictionaries(st.sampled_from(MAP_KEYS), yaml_value, max_size=4))
def test_arbitrary_maps(data: dict[str, Any]) -> None:
    cmap = _write(yaml.safe_dump(data).encode(), "map.yaml")
    scan_or_error(_write(SAMPLE), column_map=cmap)


@SETTINGS
@given(
    st.fixed_dictionaries(
        {
            "columns": st.dictionaries(
                st.sampled_from(CANONICAL), st.sampled_from(SOURCE_NAMES), max_size=4
            ),
            "scale": st.dictionaries(
                st.sampled_from(["duration_s", "charge", "msisdn"]), st.floats(), max_size=2
            ),
            "values": st.dictionaries(
                st.sampled_from(CANONICAL),
                st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
                max_size=2,
            ),
        }
    )
)
def test_well_formed_maps_on_the_fixture(data: dict[str, Any]) -> None:
    cmap = _write(yaml.safe_dump(data).encode(), "map.yaml")
    scan_or_error(_write(SAMPLE), column_map=cmap)


ARRAYS = {
    "int": pa.array([1, 2, None], pa.int64()),
    "float": pa.array([1.5, 1e308, None]),
    "bool": pa.array([True, False, None]),
    "text": pa.array(["sms", "13800000001", None]),
    "binary": pa.array([b"\xff\xfe", b"sms", None]),
    "timestamp": pa.array([0, 10**12, None], pa.timestamp("ms")),
    "date": pa.array([0, 10000, None], pa.date32()),
    "list": pa.array([[1], [], None], pa.list_(pa.int64())),
    "struct": pa.array([{"a": 1}, {"a": 2}, None], pa.struct([("a", pa.int64())])),
    "null": pa.nulls(3),
    "dictionary": pa.array(["mo", "mt", None]).dictionary_encode(),
    "decimal": pa.array([1, 2, None], pa.decimal128(10, 2)),
}
GOOD = {
    "record_type": pa.array(["sms", "voice", "data"]),
    "direction": pa.array(["mo", "mt", "mo"]),
    "start_time": pa.array(["2008-07-01 10:00:00"] * 3),
    "msisdn": pa.array(["13800000001", "13800000002", "13800000001"]),
}


@SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(
            [*GOOD, "duration_s", "imei", "status", "charge", "sms_class", "bytes_up", "record_id"]
        ),
        st.sampled_from(sorted(ARRAYS)),
        max_size=5,
    )
)
def test_tables_with_wrong_types(types: dict[str, str]) -> None:
    columns = dict(GOOD)
    columns.update({name: ARRAYS[kind] for name, kind in types.items()})
    scan_or_error(pa.table(columns), tz="Europe/Berlin")


def test_duplicated_column_names_are_one_line_errors(tmp_path: Path) -> None:
    text = "record_type,direction,start_time,msisdn,msisdn\nsms,mo,2008-07-01 10:00:00,1,2\n"
    path = tmp_path / "dup.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(telediag.InputError, match=r"dup\.csv: column 'msisdn' appears 2 times"):
        telediag.scan(path, rules=[])
    # A duplicated column that nothing reads does not matter.
    text = "record_type,direction,start_time,msisdn,note,note\nsms,mo,2008-07-01 10:00:00,1,a,b\n"
    path.write_text(text, encoding="utf-8")
    assert telediag.scan(path, rules=[]).report.rows_used == 1


def test_bytes_that_are_not_utf8_name_file_column_and_line(tmp_path: Path) -> None:
    path = tmp_path / "gbk.csv"
    path.write_bytes(
        "record_type,direction,start_time,msisdn,peer_number\n"
        "sms,mo,2008-07-01 10:00:00,13800000001,10086\n"
        "sms,mo,2008-07-01 10:00:00,13800000001,中国移动\n".encode("gbk")
    )
    with pytest.raises(
        telediag.InputError,
        match=r"gbk\.csv: line 3, column 'peer_number': not UTF-8 text \(b'\\xd6\\xd0",
    ):
        telediag.scan(path, rules=RULE_LIST)
    # A column outside the contract that no map reads is not decoded at all.
    path.write_bytes(
        "record_type,direction,start_time,msisdn,note\n"
        "sms,mo,2008-07-01 10:00:00,13800000001,中国移动\n".encode("gbk")
    )
    assert telediag.scan(path, rules=RULE_LIST).report.rows_used == 1


def test_command_line_ends_bad_bytes_with_exit_2_and_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from telediag.cli import main

    path = tmp_path / "latin.csv"
    path.write_bytes(
        b"record_type,direction,start_time,msisdn,peer_number\n"
        b"sms,mo,2008-07-01 10:00:00,13800000001,Jos\xe9\n"
    )
    assert main(["scan", str(path), "--out", str(tmp_path / "f.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "latin.csv: line 2, column 'peer_number': not UTF-8 text (b'Jos\\xe9')" in err


column_object = st.fixed_dictionaries(
    {},
    optional={
        "source": st.sampled_from(SOURCE_NAMES) | st.lists(st.sampled_from(SOURCE_NAMES)),
        "values": st.dictionaries(st.text(max_size=3) | st.integers(0, 3), st.text(max_size=5)),
        "default": st.sampled_from(["sms", "mo", "x"]),
        "scale": st.floats(allow_nan=True, allow_infinity=True),
        "constant": st.sampled_from(["sms", "mo", 1, 2.5]),
        "date": st.sampled_from(SOURCE_NAMES),
        "time": st.sampled_from(SOURCE_NAMES),
        "start": st.sampled_from(SOURCE_NAMES),
        "end": st.sampled_from(SOURCE_NAMES),
    },
)


@SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(CANONICAL),
        column_object | st.lists(column_object | st.sampled_from(SOURCE_NAMES), max_size=3),
        max_size=4,
    ),
    st.lists(st.sampled_from(["%Y-%m-%d %H:%M:%S", "%H:%M:%S", "epoch_s", "%d/%m/%Y"])),
)
def test_version_2_column_objects(columns: dict[str, Any], formats: list[str]) -> None:
    data = {"version": 2, "columns": columns, "times": {"formats": formats}}
    cmap = _write(yaml.safe_dump(data).encode(), "map.yaml")
    scan_or_error(_write(SAMPLE), column_map=cmap, tz="Europe/Berlin")


def test_bytes_outside_a_declared_encoding_name_that_encoding(tmp_path: Path) -> None:
    from telediag.colmap import ColumnMap

    path = tmp_path / "mixed.csv"
    path.write_bytes(
        "record_type,direction,start_time,msisdn,peer_number\n"
        "sms,mo,2008-07-01 10:00:00,13800000001,中国移动\n".encode("gb18030")
        + b"sms,mo,2008-07-01 10:00:00,13800000001,\x81\x20\n"  # half a GB18030 character
    )
    cmap = ColumnMap(csv={"encoding": "gb18030"})
    with pytest.raises(
        telediag.InputError,
        match=r"mixed\.csv: line 3, column 'peer_number': not gb18030 text \(b'\\x81 '\)",
    ):
        telediag.scan(path, rules=RULE_LIST, column_map=cmap)
    path.write_bytes(
        b"msisdn,record_type,direction,start_time,peer_number\n"
        + ("13800000001,sms,mo,2008-07-01 10:00:00,中国移动\n".encode("gb18030"))
    )
    result = telediag.scan(path, rules=RULE_LIST, column_map=cmap)
    assert result.normalized.table["peer_number"].to_pylist() == ["中国移动"]  # type: ignore[union-attr]
