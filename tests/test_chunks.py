"""take_rows gathers rows of a many-chunk column exactly as ChunkedArray.take does."""

from __future__ import annotations

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
