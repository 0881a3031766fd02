"""A condition judged on a column's distinct values gives the per-row answer."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from telediag.chunks import narrow
from telediag.conditions import Condition
from telediag.filters import condition_mask, dictionary_condition_mask

WORDS = ["sms", "mms", "data", "voice", "csd", "SMS"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.sampled_from(WORDS)), max_size=40),
    st.sampled_from(["equals", "in", "not_in", "is_null", "prefix"]),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=6, unique=True),
    st.booleans(),
)
def test_dictionary_mask_equals_the_row_mask(
    values: list[str | None], kind: str, chosen: list[str], narrowed: bool
) -> None:
    cond = {
        "equals": Condition(equals=chosen[0]),
        "in": Condition(in_=chosen),
        "not_in": Condition(not_in=chosen),
        "is_null": Condition(is_null=True),
        "prefix": Condition(prefix=[chosen[0][:2]]),
    }[kind]
    column = pa.array(values, pa.string())
    encoded = pc.dictionary_encode(column)
    if narrowed:
        encoded = narrow(encoded)
    assert (
        dictionary_condition_mask(cond, encoded).tolist() == condition_mask(cond, column).tolist()
    )


def test_a_null_test_on_text_reads_validity_without_encoding_the_column() -> None:
    from telediag.catalog import RecordFilter
    from telediag.context import ScanSettings
    from telediag.filters import FilterEvaluator

    ids = pa.chunked_array([["m1", None, "m3"], [None, "m5"]])
    table = pa.table(
        {"mms_message_id": ids, "apn": pa.chunked_array([["cmwap", None, "x"], ["cmnet", None]])}
    )
    evaluator = FilterEvaluator(table, ScanSettings())
    given = RecordFilter.model_validate({"mms_message_id": {"is_null": False}})
    assert evaluator.mask(given).tolist() == [True, False, True, False, True]
    assert "mms_message_id" not in evaluator._encoded
    wap = RecordFilter.model_validate(
        {"apn": {"prefix": ["cmwap"]}, "mms_message_id": {"is_null": True}}
    )
    assert evaluator.mask(wap).tolist() == [False, False, False, False, False]
    assert "apn" in evaluator._encoded


TYPES = ["sms", "mms", "data", "csd", None]
APNS = ["cmwap", "cmnet", "CMWAP.x", "internet", None]
PORTS = [110, 143, 993, 9202, 9203, 80, None]


def _condition(column: str) -> st.SearchStrategy[dict[str, object]]:
    values = {"record_type": TYPES[:-1], "apn": APNS[:-1], "server_port": PORTS[:-1]}[column]
    one = st.sampled_from(values)
    some = st.lists(one, min_size=1, max_size=3, unique=True)
    kinds = [
        st.builds(lambda v: {"equals": v}, one),
        st.builds(lambda v: {"in": v}, some),
        st.builds(lambda v: {"not_in": v}, some),
        st.builds(lambda v: {"is_null": v}, st.booleans()),
    ]
    if column == "server_port":
        kinds.append(st.builds(lambda v: {"min": v}, st.sampled_from([100, 993, 9202])))
        kinds.append(st.builds(lambda v: {"max": v}, st.sampled_from([110, 9202])))
    else:
        kinds.append(st.builds(lambda v: {"prefix": [v[:3]]}, one))
    return st.one_of(kinds)


_where = st.dictionaries(
    st.sampled_from(["record_type", "apn", "server_port"]), st.none(), max_size=3
).flatmap(
    lambda cols: st.fixed_dictionaries({c: _condition(c) for c in cols})  # type: ignore[arg-type]
)
_filters = st.tuples(_where, st.lists(_where, max_size=2), st.one_of(st.none(), _where)).map(
    lambda t: {**t[0], **({"any_of": t[1]} if t[1] else {}), **({"not": t[2]} if t[2] else {})}
)


def _by_row(flt: object, frame: object) -> np.ndarray:
    """The filter judged value by value with the conditions' own pandas judgement."""
    import pandas as pd

    assert isinstance(frame, pd.DataFrame)
    from telediag.catalog import RecordFilter

    assert isinstance(flt, RecordFilter)
    mask = np.ones(len(frame), dtype=bool)
    for column, cond in flt.where.items():
        mask &= cond.mask(frame[column].astype("object"))
    if flt.any_of:
        mask &= np.logical_or.reduce([_by_row(sub, frame) for sub in flt.any_of])
    if flt.not_ is not None:
        mask &= ~_by_row(flt.not_, frame)
    return mask


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(TYPES), st.sampled_from(APNS), st.sampled_from(PORTS)),
        min_size=1,
        max_size=60,
    ),
    st.lists(_filters, min_size=1, max_size=4),
    st.integers(1, 5),
    st.booleans(),
)
def test_filters_over_the_table_equal_a_row_by_row_judgement(
    rows: list[tuple[str | None, str | None, int | None]],
    filters: list[dict[str, object]],
    chunks: int,
    dictionary: bool,
) -> None:
    """Whole-column conditions (cached, shared by the filters asked one after another),
    conditions judged on the few rows left, integer and text columns, in any chunks:
    the same rows as judging every row by itself."""
    import pandas as pd

    from telediag.catalog import RecordFilter
    from telediag.context import ScanSettings
    from telediag.filters import FilterEvaluator

    frame = pd.DataFrame(rows, columns=["record_type", "apn", "server_port"])
    frame["server_port"] = frame["server_port"].astype("Int32")
    step = -(-len(rows) // chunks)

    def column(name: str, typ: pa.DataType) -> pa.ChunkedArray:
        values = frame[name].astype("object").where(frame[name].notna(), None).tolist()
        parts = [pa.array(values[i : i + step], typ) for i in range(0, len(values), step)]
        whole = pa.chunked_array(parts, typ)
        return whole.dictionary_encode() if dictionary and typ == pa.string() else whole

    table = pa.table(
        {
            "record_type": column("record_type", pa.string()),
            "apn": column("apn", pa.string()),
            "server_port": column("server_port", pa.int32()),
        }
    )
    evaluator = FilterEvaluator(table, ScanSettings())
    for raw in filters:
        flt = RecordFilter.model_validate(raw)
        assert evaluator.mask(flt).tolist() == _by_row(flt, frame).tolist(), raw


def test_values_an_integer_column_cannot_hold_match_no_row() -> None:
    """Review: 1099511627776 wrapped to 0 in an int32 column and 1.5 was cut to 1, so
    ``equals: 1099511627776`` picked every status code 0 and ``in: [1.5]`` every 1."""
    column = pa.chunked_array([pa.array([0, 1, 2, None], pa.int32())])
    for cond, expected in [
        (Condition(equals=2**40), [False, False, False, False]),
        (Condition(in_=[1.5]), [False, False, False, False]),
        (Condition(in_=[1.5, 2, "1"]), [False, True, True, False]),
        (Condition(not_in=[1.5, 2**40]), [True, True, True, False]),
        (Condition(equals=-(2**40)), [False, False, False, False]),
    ]:
        assert condition_mask(cond, column).tolist() == expected, cond


def test_text_of_a_whole_number_is_read_exactly() -> None:
    """Review: "9007199254740993.0" went through a float and matched 9007199254740992."""
    column = pa.chunked_array([pa.array([9007199254740992, 9007199254740993], pa.int64())])
    assert condition_mask(Condition(equals="9007199254740993.0"), column).tolist() == [
        False,
        True,
    ]
    assert condition_mask(Condition(in_=[" 9007199254740992 "]), column).tolist() == [
        True,
        False,
    ]


def test_a_rule_with_a_value_that_is_no_number_on_a_number_column_is_refused() -> None:
    """Review: 'abc', '²' or '+-0' on sms_class made the rule select nothing (or, in
    not_in, everything), or fail at scan time with a raw ValueError; the rule file is
    now refused when it is read, naming the column and the value."""
    import pydantic
    import pytest

    from telediag.catalog import RecordFilter

    for bad in ["abc", "²", "+-0", "٠", "0x10"]:
        for form in ({"sms_class": bad}, {"sms_class": {"not_in": [1, bad]}}):
            with pytest.raises(pydantic.ValidationError, match="sms_class") as info:
                RecordFilter.model_validate(form)
            assert repr(bad) in str(info.value)
    nested = {"any_of": [{"server_port": ["x"]}]}
    with pytest.raises(pydantic.ValidationError, match="server_port"):
        RecordFilter.model_validate(nested)
    # Numbers, and text that reads as one, stay allowed.
    RecordFilter.model_validate({"sms_class": ["0", 1, 2.0, " 3 ", "-1"], "apn": "abc"})


LABELS = {
    "record_type": ["sms", " MMS", "mms ", "Data", "voice", "", None, "fax"],
    "direction": ["mo", "MT", " mo", None, "sideways"],
    "status": ["ok", " OK", "failed", "Rejected ", "", None, "lost"],
    "mms_event": ["submit", "Fetch", None],
}


def _label_condition(draw: st.DrawFn, column: str) -> dict[str, object]:
    """A condition on a column of the test table, as a rule file writes one."""
    if column == "apn":
        return {"prefix": [draw(st.sampled_from(["cmwap", "cmnet"]))]}
    words = sorted({(v or "x").strip().lower() or "x" for v in LABELS[column]})
    kind = draw(st.sampled_from(["equals", "in", "not_in", "is_null"]))
    if kind == "equals":
        return {"equals": draw(st.sampled_from(words))}
    if kind == "is_null":
        return {"is_null": draw(st.booleans())}
    return {kind: draw(st.lists(st.sampled_from(words), min_size=1, max_size=3, unique=True))}


@st.composite
def _record_filters(draw: st.DrawFn, depth: int = 0) -> dict[str, object]:
    """A record filter over the labels and a column normalization does not settle here."""
    columns = [*LABELS, "apn"]
    chosen = draw(st.lists(st.sampled_from(columns), max_size=3, unique=True))
    flt: dict[str, object] = {c: _label_condition(draw, c) for c in chosen}
    if depth < 2 and draw(st.booleans()):
        flt["any_of"] = draw(st.lists(_record_filters(depth + 1), min_size=1, max_size=2))
    if depth < 2 and draw(st.booleans()):
        flt["not"] = draw(_record_filters(depth + 1))
    return flt


def _names_only_labels(flt: dict[str, object]) -> bool:
    subs = [*flt.get("any_of", []), *([flt["not"]] if "not" in flt else [])]  # type: ignore[list-item]
    return "apn" not in flt and all(_names_only_labels(s) for s in subs)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(*(st.sampled_from(v) for v in LABELS.values()), st.sampled_from(["cmwap", None])),
        min_size=1,
        max_size=30,
    ),
    spec=_record_filters(),
    chunked=st.booleans(),
)
def test_a_filter_judged_on_rows_as_read_marks_every_row_it_passes_once_normalized(
    rows: list[tuple[str | None, ...]], spec: dict[str, object], chunked: bool
) -> None:
    """:func:`possible_mask` (the spill pass marking handsets) on the rows as read holds
    every row that the filter passes once the rows are normalized, and exactly those when
    the filter names only labels (whose normalization it repeats)."""
    from telediag.catalog import RecordFilter
    from telediag.context import ScanSettings
    from telediag.filters import FilterEvaluator, possible_mask
    from telediag.normalize import normalize
    from telediag.read import RawInput

    columns = list(zip(*rows, strict=True))
    raw = pa.table(
        {
            **{name: pa.array(columns[i], pa.string()) for i, name in enumerate(LABELS)},
            "apn": pa.array(columns[-1], pa.string()),
            "msisdn": ["13800000001"] * len(rows),
            "start_time": ["2008-06-01T10:00:00Z"] * len(rows),
        }
    )
    if chunked:  # labels as Parquet gives them: dictionaries, one per chunk
        half = len(rows) // 2
        raw = pa.table(
            {
                name: pa.chunked_array(
                    [
                        pc.dictionary_encode(raw[name].combine_chunks().slice(start, size))
                        for start, size in ((0, half), (half, len(rows) - half))
                    ]
                )
                if name in LABELS
                else raw[name]
                for name in raw.column_names
            }
        )
    flt = RecordFilter.model_validate(spec)
    normalized = normalize(
        RawInput(table=raw, stems=["t"], offsets=np.zeros(1, dtype=np.int64)), tz="UTC"
    )
    passed = FilterEvaluator(normalized.table, ScanSettings(), normalized.encoded).mask(flt)
    possible = possible_mask(flt, raw)
    assert not (passed & ~possible).any()
    if _names_only_labels(spec):
        assert possible.tolist() == passed.tolist()
