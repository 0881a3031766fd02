"""Text columns that arrive dictionary-encoded (Parquet labels, pandas categoricals) are
normalized on their distinct values: the result must be what the same values as plain
text give, whatever the chunks, their dictionaries, duplicates or nulls in them."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from telediag.chunks import encode, unify
from telediag.normalize import _FRACTION, _fractions, normalize
from telediag.read import RawInput

# Values near the edges the checks care about: blanks, padding, case, fractions in
# both float spellings, IMEIs plausible or not, and separators that are kept.
_VALUES = st.sampled_from(
    [
        "",
        " ",
        "\t",
        "SMS",
        " sms ",
        "voice",
        "MO",
        "mt",
        "ok",
        "Failed",
        "13800000001",
        " 13800000001 ",
        "13800000001.5",
        "1.38000000015e+10",
        "1e+17",
        "+86.138.0000.0001",
        "352014010000170",
        " 352014010000170",
        "000000000000000",
        "35201401000017X",
        "Telekom",
        "e-mail",
    ]
)
_COLUMN = st.lists(st.one_of(st.none(), _VALUES), min_size=1, max_size=30)


def _raw(table: pa.Table) -> RawInput:
    return RawInput(table=table, stems=["t"], offsets=np.zeros(1, dtype=np.int64), files=["<t>"])


def _as_dictionary_chunks(values: list[str | None], cuts: list[int]) -> pa.ChunkedArray:
    """The values as dictionary chunks, each with a dictionary of its own (in another
    order, with a value no row uses), as Parquet batches and categoricals come."""
    bounds = sorted({0, len(values), *(c % (len(values) + 1) for c in cuts)})
    chunks = []
    for lo, hi in itertools.pairwise(bounds):
        part = values[lo:hi]
        dictionary = sorted({v for v in part if v is not None}, reverse=True) + ["unused"]
        indices = pa.array([None if v is None else dictionary.index(v) for v in part], pa.int32())
        chunks.append(pa.DictionaryArray.from_arrays(indices, pa.array(dictionary)))
    return pa.chunked_array(chunks, pa.dictionary(pa.int32(), pa.string()))


@settings(max_examples=150, deadline=None)
@given(
    msisdn=_COLUMN,
    other=st.lists(st.one_of(st.none(), _VALUES), min_size=1, max_size=30),
    cuts=st.lists(st.integers(0, 30), max_size=4),
)
def test_dictionary_text_normalizes_as_plain_text(
    msisdn: list[str | None], other: list[str | None], cuts: list[int]
) -> None:
    n = len(msisdn)
    col = (other * n)[:n]
    plain = {
        "msisdn": pa.chunked_array([pa.array(msisdn, pa.string())]),
        "record_type": pa.chunked_array([pa.array(col, pa.string())]),
        "direction": pa.chunked_array([pa.array(col[::-1], pa.string())]),
        "start_time": pa.chunked_array([pa.array(["2008-07-01T10:00:00Z"] * n)]),
        "status": pa.chunked_array([pa.array(col, pa.string())]),
        "imei": pa.chunked_array([pa.array(col, pa.string())]),
        "peer_number": pa.chunked_array([pa.array(col[::-1], pa.string())]),
        "apn": pa.chunked_array([pa.array(col, pa.string())]),
    }
    as_dict = {
        name: (c if name == "start_time" else _as_dictionary_chunks(c.to_pylist(), cuts))
        for name, c in plain.items()
    }
    a = normalize(_raw(pa.table(plain)))
    b = normalize(_raw(pa.table(as_dict)))
    assert a.reason.tolist() == b.reason.tolist()
    assert a.report.set_aside == b.report.set_aside
    for name in a.table.column_names:
        assert a.table[name].to_pylist() == b.table[name].to_pylist(), name
        got = b.table[name]
        if pa.types.is_dictionary(got.type):
            for chunk in got.chunks:  # distinct, non-null values only
                assert chunk.dictionary.null_count == 0, name
                assert len(pc.unique(chunk.dictionary)) == len(chunk.dictionary), name


@given(values=st.lists(st.one_of(st.none(), st.text(max_size=12), _VALUES), max_size=40))
def test_fraction_prefilter_never_misses_what_the_pattern_finds(
    values: list[str | None],
) -> None:
    arr = pa.chunked_array([pa.array(values, pa.string())])
    full = pc.match_substring_regex(pc.utf8_trim_whitespace(arr), _FRACTION)
    found = _fractions(arr)
    if found is None:
        assert not pc.any(full).as_py()
    else:
        assert found.to_pylist() == full.to_pylist()


def test_encode_unifies_chunks_with_dictionaries_of_the_same_size() -> None:
    # Two chunks, two dictionaries of two values each: codes must not be mixed up.
    column = pa.chunked_array(
        [pa.array(["x", "y"]).dictionary_encode(), pa.array(["y", "z"]).dictionary_encode()]
    )
    assert encode(column).to_pylist() == ["x", "y", "y", "z"]
    assert unify(column).to_pylist() == ["x", "y", "y", "z"]
    assert len(unify(column).dictionary) == 3


_IDENTIFIER_VALUES = st.one_of(
    st.none(),
    st.text("0123456789", min_size=12, max_size=17),
    st.builds(lambda d: "00000000" + d, st.text("0123456789", min_size=6, max_size=8)),
    st.sampled_from(["", " ", "+8613800000001", " 352014010000170", "13800000001.5", "1e+17"]),
)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["imei", "imsi", "peer_number"]),
    st.one_of(
        st.lists(_IDENTIFIER_VALUES, min_size=1, max_size=30),
        # Mostly good values, where one bad value in any chunk must be noticed.
        st.lists(
            st.one_of(st.none(), st.text("0123456789", min_size=13, max_size=17)),
            min_size=1,
            max_size=30,
        ),
    ),
    st.lists(st.integers(0, 30), max_size=3),
    st.integers(0, 3),
)
def test_identifiers_of_digits_only_skip_the_checks_with_the_same_result(
    name: str, values: list[str | None], cuts: list[int], skip: int
) -> None:
    """Columns whose values are all digits (or '+', but for IMEIs, which must all be
    plausible) are passed through without the blank, fraction and IMEI checks: the
    result is what the checks give, for any chunks and slices."""
    import telediag.normalize as norm

    bounds = sorted({0, len(values), *(c % (len(values) + 1) for c in cuts)})
    # Slices of a longer array: chunks whose offsets do not start at zero.
    chunks = [
        pa.array(["x" * skip, *values[lo:hi]], pa.string()).slice(1)
        for lo, hi in itertools.pairwise(bounds)
    ]
    column = pa.chunked_array(chunks, pa.string())
    fast_text, fast_fraction = norm._clean_text(name, column)
    real = norm._passes_unchecked
    try:
        norm._passes_unchecked = lambda name, arr: False  # type: ignore[assignment]
        slow_text, slow_fraction = norm._clean_text(name, column)
    finally:
        norm._passes_unchecked = real  # type: ignore[assignment]
    assert fast_text.to_pylist() == slow_text.to_pylist()
    assert (None if fast_fraction is None else fast_fraction.to_pylist()) == (
        None if slow_fraction is None else slow_fraction.to_pylist()
    )
    allowed = set("0123456789" if name == "imei" else "0123456789+")
    digits = all(v is None or (v != "" and set(v) <= allowed) for v in values)
    if name == "imei":
        digits = digits and all(
            v is None or (14 <= len(v) <= 16 and not v.startswith("0" * 8)) for v in values
        )
    assert norm._passes_unchecked(name, column) == digits


def test_the_imei_pass_through_check_keeps_its_temporaries_small() -> None:
    """Review: IMEIs starting with '0' (the PTCRB TACs 01...) each took a row of eight
    8-byte positions, about a gigabyte of temporaries at 10M rows."""
    import tracemalloc

    import telediag.normalize as norm

    rows = 400_000
    column = pa.chunked_array([pa.array([f"01{i:012d}7" for i in range(rows)], pa.string())])
    tracemalloc.start()
    assert norm._passes_unchecked("imei", column)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 48 * rows  # the offsets and a few bytes a row; before: 120 bytes a row


def test_labels_in_dictionaries_of_large_text_stay_dictionaries() -> None:
    """pandas 3 writes text columns as large_string; their dictionaries, as Parquet's
    label columns are read, were turned into plain text before normalizing."""
    from telediag.conform import conform_column

    values = pa.array(["sms", "voice", "sms", None], pa.large_string())
    column = pa.chunked_array([values.dictionary_encode()])
    conformed = conform_column("record_type", column, "test")
    assert conformed.type == pa.dictionary(pa.int32(), pa.string())
    assert conformed.to_pylist() == ["sms", "voice", "sms", None]


def _frame_rows(first: str, kinds: pa.Array, lengths: list[float]) -> pa.Table:
    n = len(kinds)
    return pa.table(
        {
            "record_id": [f"{first}{i}" for i in range(n)],
            "record_type": kinds,
            "direction": ["mo"] * n,
            "start_time": [f"2024-01-01 00:0{i}:00" for i in range(n)],
            "msisdn": ["13800000001"] * n,
            "sms_length": pa.array(lengths, pa.float64()),
        }
    )


def test_a_label_as_dictionary_in_one_table_and_text_in_another_keeps_the_other_types() -> None:
    """Review: two inputs disagreeing on a label's kind (a categorical frame and a text
    one) were joined by turning every column into text, so a NaN length became the text
    'nan' and its row was set aside in memory, while the bucketed scan kept it."""
    import telediag

    coded = pa.array(["sms"] * 3).dictionary_encode()
    large = pa.array(["sms"] * 3, pa.large_string()).dictionary_encode()
    text = _frame_rows("b", pa.array(["sms"] * 3), [70.0, float("nan"), 70.0])
    for kinds in (coded, large):
        tables = [_frame_rows("a", kinds, [70.0] * 3), text]
        whole = telediag.scan(tables, rules=[])
        assert (whole.report.rows_used, whole.report.set_aside) == (6, {})
        parts = telediag.scan(tables, rules=[], buckets=2)
        assert (parts.report.rows_used, parts.report.set_aside) == (6, {})


def test_label_dictionaries_holding_a_null_entry_are_read_in_memory() -> None:
    """Review: a dictionary with a null entry (dictionary_encode with null_encoding=
    "encode") in two chunks raised ArrowInvalid ("Cannot yet unify dictionaries with
    nulls") in the in-memory scan."""
    import telediag

    for kind in (pa.string(), pa.large_string()):
        values = pa.array(["sms", None, "sms"], kind)
        kinds = pc.dictionary_encode(values, null_encoding="encode")
        one = _frame_rows("a", kinds, [70.0] * 3)
        two = pa.concat_tables([one, _frame_rows("b", kinds, [70.0] * 3)])
        for source in (two, [one, _frame_rows("b", kinds, [70.0] * 3)]):
            whole = telediag.scan(source, rules=[])
            assert whole.report.set_aside == {"missing record_type": 2}
