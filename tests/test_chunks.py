"""take_rows gathers rows of a many-chunk column exactly as ChunkedArray.take does."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from telediag.chunks import encode, narrow, take_rows


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.text(max_size=6)), max_size=30), min_size=1, max_size=8
    ),
    st.integers(0, 2**31),
    st.integers(0, 40),
    st.booleans(),
)
def test_take_rows_matches_arrow(
    chunks: list[list[str | None]], seed: int, k: int, ordered: bool
) -> None:
    column = pa.chunked_array(chunks, pa.string())
    n = len(column)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, n, k if n else 0)
    if ordered:
        rows.sort()
    expected = column.take(pa.array(rows, pa.int64())).combine_chunks()
    got = take_rows(column, rows)
    assert got.type == column.type
    assert got.to_pylist() == expected.to_pylist()


def test_numbers_and_a_large_share() -> None:
    column = pa.chunked_array([[1.5, None, 3.0], [4.0], [5.0, 6.0]])
    rows = np.array([5, 0, 3, 3, 1])
    assert take_rows(column, rows).to_pylist() == [6.0, 1.5, 4.0, 4.0, None]
    assert take_rows(column, np.array([], dtype=np.int64)).to_pylist() == []


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", " c", ""])), max_size=12),
        max_size=6,
    )
)
def test_encode_matches_encoding_the_joined_column(chunks: list[list[str | None]]) -> None:
    column = pa.chunked_array(chunks, pa.string())
    got = encode(column)
    expected = pc.dictionary_encode(column.combine_chunks())
    assert got.dictionary.to_pylist() == expected.dictionary.to_pylist()
    assert got.indices.to_pylist() == expected.indices.to_pylist()


def test_narrow_keeps_the_values_and_room_for_the_null_code() -> None:
    small = narrow(pc.dictionary_encode(pa.array(["x", None, "y", "x"])))
    assert small.indices.type == pa.int8()
    assert small.to_pylist() == ["x", None, "y", "x"]
    wide = narrow(pc.dictionary_encode(pa.array([str(i) for i in range(200)])))
    assert wide.indices.type == pa.int16() and wide.to_pylist()[199] == "199"


@settings(max_examples=120, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.integers(-50, 2000), st.integers(-(2**40), 2**40)),
        min_size=1,
        max_size=60,
    ),
    st.lists(
        st.one_of(st.none(), st.sampled_from(["a", "b", "13", "126", "+44", ""])),
        min_size=60,
        max_size=60,
    ),
    st.integers(1, 4),
    st.randoms(use_true_random=False),
    st.floats(0.0, 1.0),
)
def test_codes_at_positions_are_the_codes_of_the_values_written_as_text(
    numbers: list[int | None], texts: list[str | None], chunks: int, rnd: Any, share: float
) -> None:
    """SortedRecords.codes, whether it gathers in sorted order or in table order, and
    for integers without writing every row as text: the codes and dictionary of the
    values at those positions written as text, in the order of the positions."""
    from types import SimpleNamespace

    from telediag.sort import SortedRecords, _sorted_dictionary_codes

    n = len(numbers)
    texts = texts[:n]
    step = -(-n // chunks)

    def chunked(values: list[Any], typ: pa.DataType) -> pa.ChunkedArray:
        return pa.chunked_array(
            [pa.array(values[i : i + step], typ) for i in range(0, n, step)], typ
        )

    table = pa.table({"num": chunked(numbers, pa.int64()), "text": chunked(texts, pa.string())})
    order = np.array(rnd.sample(range(n), n), dtype=np.int64)
    records = SortedRecords(
        normalized=SimpleNamespace(table=table),  # type: ignore[arg-type]
        order=order,
        subscriber=np.zeros(n, dtype=np.int32),
        time_ms=np.zeros(n, dtype=np.int64),
        msisdns=pa.array(["x"]),
    )
    positions = np.array(sorted(rnd.sample(range(n), int(share * n))), dtype=np.int64)
    for name in ("num", "text"):
        expected = pa.array(
            [table[name][int(r)].as_py() for r in order[positions]], table[name].type
        )
        want_codes, want_dict = _sorted_dictionary_codes(expected.cast(pa.string()))
        codes, dictionary = records.codes(name, positions)
        assert codes.tolist() == want_codes.tolist()
        assert dictionary.to_pylist() == want_dict.to_pylist()


def test_integer_codes_of_few_rows_far_apart_build_no_table_over_the_span() -> None:
    """Review: 20 status codes of 1 and 4194303 built a lookup table over the 4M numbers
    between them on every call (22 ms each, in every bucket's rules)."""
    import tracemalloc

    from telediag.sort import _integer_codes

    column = pa.array([1, 4194303] * 10, pa.int32())
    tracemalloc.start()
    codes, dictionary = _integer_codes(column)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert dictionary.to_pylist() == ["1", "4194303"]
    assert codes.tolist() == [0, 1] * 10
    assert peak < 100_000
