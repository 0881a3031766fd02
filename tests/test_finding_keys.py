"""Stable finding keys: the same finding is recognised across reruns, the id is not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import telediag
from telediag.catalog import Rule, catalog_version

from .test_contract import tables


def _burst(n: int = 40, start: str = "2008-06-12 01:00") -> pa.Table:
    times = pd.date_range(start, periods=n, freq="90s", tz="UTC")
    return pa.table(
        {
            "record_id": [f"r{i}" for i in range(n)],
            "record_type": ["sms"] * n,
            "direction": ["mo"] * n,
            "start_time": pa.array(times),
            "msisdn": ["13800000001"] * n,
            "peer_number": ["13911112222"] * n,
            "sms_length": pa.array([126] * n, type=pa.int32()),
        }
    )


def _td001(catalog: list[Rule]) -> list[Rule]:
    return [r for r in catalog if r.id == "TD001"]


def test_a_late_record_changes_the_id_but_not_the_key(catalog: list[Rule]) -> None:
    rules = _td001(catalog)
    before = telediag.scan(_burst(40), rules=rules, tz="Asia/Shanghai").findings
    after = telediag.scan(_burst(41), rules=rules, tz="Asia/Shanghai").findings
    assert len(before) == len(after) == 1
    assert before["finding_id"][0] != after["finding_id"][0]
    assert before["finding_key"][0] == after["finding_key"][0]
    assert before["finding_key"][0].startswith("TD001.1-")
    assert int(before["rule_version"][0]) == 1


def test_the_key_names_rule_version_subscriber_and_first_day(catalog: list[Rule]) -> None:
    rules = _td001(catalog)
    base = telediag.scan(_burst(), rules=rules, tz="Asia/Shanghai").findings["finding_key"][0]
    next_day = telediag.scan(_burst(start="2008-06-13 01:00"), rules=rules, tz="Asia/Shanghai")
    assert next_day.findings["finding_key"][0] != base
    # The first day is the local day: 01:00 UTC on 12 June is still 11 June in Honolulu.
    honolulu = telediag.scan(_burst(), rules=rules, tz="Pacific/Honolulu").findings
    assert honolulu["finding_key"][0] != base
    bumped = rules[0].model_copy(update={"version": 2})
    again = telediag.scan(_burst(), rules=[bumped], tz="Asia/Shanghai").findings
    assert again["finding_key"][0].startswith("TD001.2-")
    assert (
        again["finding_id"][0]
        == telediag.scan(_burst(), rules=rules, tz="Asia/Shanghai").findings["finding_id"][0]
    )


def test_two_episodes_of_one_group_starting_the_same_day_share_the_key(
    catalog: list[Rule],
) -> None:
    """The key is (rule, version, subscriber, group, first day) and nothing else, so an
    episode's key never depends on which other episodes the input holds."""
    from telediag.findings import finding_keys

    rule = _td001(catalog)[0]
    keys = finding_keys(
        rule,
        np.array(["1", "1", "2"], dtype=object),
        ["a", "a", "a"],
        ["2008-06-12"] * 3,
    )
    assert keys[0] == keys[1] != keys[2]
    alone = finding_keys(rule, np.array(["1"], dtype=object), ["a"], ["2008-06-12"])
    assert alone == keys[:1]


def test_catalog_version_follows_any_change_of_judgement(catalog: list[Rule]) -> None:
    v = catalog_version(catalog)
    assert v == catalog_version(list(reversed(catalog)))
    assert v.startswith(f"{len(catalog)} rules, ")
    first = catalog[0]
    looser = first.model_copy(
        update={"confidence": first.confidence.model_copy(update={"base": 0.5})}
    )
    assert catalog_version([looser, *catalog[1:]]) != v
    reworded = first.model_copy(update={"remedy": "something else"})
    assert catalog_version([reworded, *catalog[1:]]) == v


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=tables(), seed=st.integers(0, 2**32 - 1))
def test_keys_are_unique_and_do_not_depend_on_row_order(
    catalog: list[Rule], table: pa.Table, seed: int
) -> None:
    result = telediag.scan(table, rules=catalog, tz="Asia/Shanghai")
    keys = result.findings["finding_key"]
    shuffled = table.take(np.random.default_rng(seed).permutation(len(table)))
    again = telediag.scan(shuffled, rules=catalog, tz="Asia/Shanghai").findings
    by_id = dict(zip(result.findings["finding_id"], keys, strict=True))
    assert dict(zip(again["finding_id"], again["finding_key"], strict=True)) == by_id


_ids = st.one_of(st.none(), st.text(alphabet="ab9é號-", max_size=3))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["f2", "f10", "f1", "é"]), st.integers(0, 3), _ids),
        max_size=40,
    ),
    st.sampled_from(["string", "str", "object"]),
)
def test_evidence_comes_in_the_order_pandas_would_sort_it(rows, text_dtype) -> None:  # type: ignore[no-untyped-def]
    """order_evidence gives exactly pandas' stable sort by finding, time and record id
    (missing ids last), whatever text dtype the frame holds."""
    from telediag.findings import order_evidence

    frame = pd.DataFrame(
        {
            "finding_id": pd.Series([r[0] for r in rows], dtype=text_dtype),
            "record_id": pd.Series([r[2] for r in rows], dtype=text_dtype),
            "start_time": pd.Series(
                pd.to_datetime([1_200_000_000 + 60 * r[1] for r in rows], unit="s", utc=True),
                dtype="datetime64[ms, UTC]",
            ),
            "record_type": pd.Series([f"t{i}" for i in range(len(rows))], dtype=text_dtype),
        },
        index=np.arange(len(rows))[::-1],
    )
    expected = frame.sort_values(
        ["finding_id", "start_time", "record_id"], kind="stable"
    ).reset_index(drop=True)
    got = order_evidence(frame)
    pd.testing.assert_frame_equal(got, expected)


def test_evidence_with_category_keys_is_ordered_as_pandas_orders_it() -> None:
    """Keys Arrow cannot sort (categories) are sorted by pandas instead."""
    from telediag.findings import order_evidence

    frame = pd.DataFrame(
        {
            "finding_id": pd.Categorical(["f2", "f1", "f2", "f1"]),
            "record_id": pd.Categorical(["b", "a", "a", "c"]),
            "start_time": pd.to_datetime([60, 60, 60, 0], unit="s", utc=True),
            "record_type": ["sms", "mms", "sms", "data"],
        }
    )
    got = order_evidence(frame)
    assert got["record_type"].tolist() == ["data", "mms", "sms", "sms"]
    assert got["record_id"].tolist() == ["c", "a", "a", "b"]
