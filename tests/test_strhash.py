"""The exact repeated-value check that runs on 64-bit hashes of strings."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import telediag.strhash as strhash
from telediag.normalize import duplicate_id_warning
from telediag.strhash import repeated_values, string_hashes


def _expected(values: list[str | None]) -> list[tuple[str, int]]:
    counts = pc.value_counts(pa.array(values, pa.string()).drop_null())
    return [
        (v, c)
        for v, c in zip(
            counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
        )
        if c > 1
    ]


def _got(values: pa.Array | pa.ChunkedArray) -> list[tuple[str, int]]:
    found = repeated_values(values)
    if found is None:
        return []
    return list(
        zip(found.field("values").to_pylist(), found.field("counts").to_pylist(), strict=True)
    )


def test_equal_strings_hash_alike_and_bytes_beyond_a_value_do_not_count() -> None:
    # "ab" sits in buffers next to different bytes in each array; sliced arrays too.
    a = pa.array(["ab", "abcdefghij", "x" * 17, ""])
    b = pa.array(["zzz", "ab", "", "x" * 17, "abcdefghij"]).slice(1)
    ha, hb = string_hashes(a), string_hashes(b)
    assert ha[0] == hb[0] and ha[1] == hb[3] and ha[2] == hb[2] and ha[3] == hb[1]
    # A prefix, a trailing NUL and an 8-byte boundary all change the hash.
    c = string_hashes(pa.array(["abcdefgh", "abcdefg", "abcdefgh\x00", "abcdefghi"]))
    assert len(set(c.tolist())) == 4


def test_large_strings_and_chunks_hash_like_strings() -> None:
    values = ["r1", "r22", "r333", None, "r1"]
    plain = string_hashes(pa.array(values, pa.string()))
    large = string_hashes(pa.array(values, pa.large_string()))
    chunked = string_hashes(pa.chunked_array([values[:2], values[2:]], pa.string()))
    assert plain.tolist() == large.tolist() == chunked.tolist()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.text(max_size=20), st.sampled_from(["r1", "r2", "r10", ""])),
        max_size=60,
    ),
    st.integers(1, 4),
)
def test_repeated_values_match_an_exact_count(values: list[str | None], parts: int) -> None:
    cut = len(values) // parts
    chunks = [values[i * cut : (i + 1) * cut] for i in range(parts - 1)]
    chunks.append(values[(parts - 1) * cut :])
    arr = pa.chunked_array(chunks, pa.string())
    assert _got(arr) == _expected(values)


def test_colliding_hashes_are_compared_as_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every hash equal: the answer must still come from the strings themselves."""

    def constant(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
        return np.zeros(len(values), dtype=np.uint64)

    monkeypatch.setattr(strhash, "string_hashes", constant)
    assert repeated_values(pa.array(["a", "b", "c", None])) is None
    assert duplicate_id_warning(pa.chunked_array([["a", "b", "c"]])) is None
    assert _got(pa.array(["a", "b", "a", "c", "b", "a"])) == [("a", 3), ("b", 2)]


def test_the_warning_names_the_most_repeated_id() -> None:
    ids = pa.chunked_array([["r0", "r1", "r2"], ["r0", "r1", "r0", None, None]])
    warning = duplicate_id_warning(ids)
    assert warning is not None
    assert warning.startswith(
        "record_id is not unique: 2 id(s) occur more than once (e.g. 'r0' x3)"
    )
    assert duplicate_id_warning(pa.chunked_array([["r0", None, None]])) is None


def test_buckets_leave_the_id_check_to_their_caller() -> None:
    from telediag.normalize import normalize
    from telediag.read import RawInput

    table = pa.table(
        {
            "record_id": ["r1", "r1"],
            "record_type": ["sms", "sms"],
            "direction": ["mo", "mo"],
            "start_time": ["2008-07-01T00:00:00Z", "2008-07-01T00:01:00Z"],
            "msisdn": ["13800000001", "13800000001"],
        }
    )
    raw = RawInput(table=table, stems=["t"], offsets=np.zeros(1, dtype=np.int64))
    assert any("record_id is not unique" in w for w in normalize(raw).report.warnings)
    assert normalize(raw, check_ids=False).report.warnings == []


@given(
    width=st.integers(1, 20),
    n=st.integers(1, 30),
    seed=st.integers(0, 2**32 - 1),
)
def test_values_of_one_width_hash_as_in_the_general_path(width: int, n: int, seed: int) -> None:
    """The fixed-width path (strided reads) gives the general path's hashes exactly."""
    rng = np.random.default_rng(seed)
    values = ["".join(chr(c) for c in rng.integers(48, 123, width)) for _ in range(n)]
    fixed = string_hashes(pa.array(values))
    # One value of another width sends the same values down the general path.
    general = string_hashes(pa.array([*values, "x" * (width + 1)]))[:n]
    assert fixed.tolist() == general.tolist()
