"""A condition judged on a column's distinct values gives the per-row answer."""

from __future__ import annotations

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
