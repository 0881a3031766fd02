"""telediag.numbers: one classification of numbers as domestic or international."""

from __future__ import annotations

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import telediag.numbers as numbers_mod
from telediag.numbers import HomeCountry, classify_numbers, is_international, normalize_number

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _rows(frame: pd.DataFrame) -> list[tuple[object, object, object]]:
    """Rows as plain tuples, pandas NA turned into None."""
    return [
        tuple(None if v is pd.NA else v for v in row)
        for row in frame[["international", "country_code", "region"]].itertuples(
            index=False, name=None
        )
    ]


# -- the rules of the issue ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "country_code", "region"),
    [
        ("+43664684000", "43", "AT"),  # case 5: the Austrian dial-up server
        ("0043664684000", "43", "AT"),
        ("00447700900123", "44", "GB"),  # case 9: UK
        ("0046701234567", "46", "SE"),  # case 9: Sweden
        ("+1 212 555 1234", "1", "US"),
        ("+15145551234", "1", "CA"),  # shared code 1: the number tells Canada
        ("0019055551234", "1", "CA"),  # +1 905…, not carrier 190 (China Telecom)
        ("0019588620112345678", "886", "TW"),  # case 4: carrier prefix, not +1
        ("00019588620112345678", "886", "TW"),
        ("00193852101234567", "852", "HK"),
    ],
)
def test_international(number: str, country_code: str, region: str) -> None:
    frame = classify_numbers([number])
    assert _rows(frame) == [(True, country_code, region)]


@pytest.mark.parametrize(
    "number",
    [
        "+8613812345678",
        "008613812345678",
        "8613812345678",  # home code then a mobile number, without '+'
        "13812345678",
        "013900000001",
        "037112345678",  # Zhengzhou landline
        "10658000",  # MMS sender of case 6
        "17266",  # official data access number of case 5
        "10086",
        "95588",
        "138-1234-5678",
    ],
)
def test_domestic(number: str) -> None:
    assert _rows(classify_numbers([number])) == [(False, "86", "CN")]


def test_text_that_is_not_a_number_is_not_international() -> None:
    assert _rows(classify_numbers(["CMCC", "", "+"])) == [(False, None, None)] * 3


def test_unknown_country_code_is_international_without_origin() -> None:
    assert _rows(classify_numbers(["+999123456"])) == [(True, None, None)]


def test_nulls_and_order() -> None:
    values = [None, "+43664684000", "13812345678", None, "+43664684000", "0046701234567"]
    frame = classify_numbers(values)
    assert list(frame.columns) == ["international", "country_code", "region"]
    assert _rows(frame) == [
        (None, None, None),
        (True, "43", "AT"),
        (False, "86", "CN"),
        (None, None, None),
        (True, "43", "AT"),
        (True, "46", "SE"),
    ]
    assert str(frame["international"].dtype) == "boolean"
    assert list(is_international(values)) == [False, True, False, False, True, True]
    assert is_international(values).dtype == np.bool_


def test_empty_input() -> None:
    frame = classify_numbers([])
    assert frame.empty and list(frame.columns) == ["international", "country_code", "region"]
    assert is_international(pa.array([], type=pa.string())).shape == (0,)


# -- every input form ---------------------------------------------------------------------

VALUES = ["+43664684000", None, "13812345678", "0044771", "+43664684000"]
EXPECTED = [True, None, False, True, True]


@pytest.mark.parametrize(
    "column",
    [
        pytest.param(VALUES, id="list"),
        pytest.param(pd.Series(VALUES, dtype=object), id="series-object"),
        pytest.param(pd.Series(VALUES, dtype="string"), id="series-string"),
        pytest.param(pd.Series(VALUES, dtype="category"), id="series-category"),
        pytest.param(pa.array(VALUES), id="arrow"),
        pytest.param(pa.array(VALUES, type=pa.large_string()), id="arrow-large"),
        pytest.param(pa.array(VALUES).dictionary_encode(), id="arrow-dictionary"),
        pytest.param(pa.chunked_array([VALUES[:2], VALUES[2:]]), id="chunked"),
        pytest.param(
            # Each chunk has its own dictionary, in a different order.
            pa.chunked_array(
                [pa.array(VALUES[:2]).dictionary_encode(), pa.array(VALUES[2:]).dictionary_encode()]
            ),
            id="chunked-dictionary",
        ),
    ],
)
def test_input_forms(column: object) -> None:
    frame = classify_numbers(column)  # type: ignore[arg-type]
    assert [None if v is pd.NA else v for v in frame["international"]] == EXPECTED


def test_integer_column_is_read_as_digits() -> None:
    frame = classify_numbers(pa.array([13812345678, None, 8613812345678]))
    assert _rows(frame) == [(False, "86", "CN"), (None, None, None), (False, "86", "CN")]


def test_series_index_is_kept() -> None:
    series = pd.Series(["+43664684000", "10086"], index=[10, 3])
    frame = classify_numbers(series)
    assert list(frame.index) == [10, 3]
    assert list(frame.loc[[10, 3], "region"]) == ["AT", "CN"]


def test_a_single_string_is_refused() -> None:
    with pytest.raises(TypeError, match="single string"):
        classify_numbers("13812345678")  # type: ignore[arg-type]


def test_each_distinct_value_is_classified_once(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = numbers_mod._classify_unique

    def counting(number: str, home: HomeCountry) -> tuple[bool, str | None, str | None]:
        seen.append(number)
        return real(number, home)

    monkeypatch.setattr(numbers_mod, "_classify_unique", counting)
    distinct = ["+43664684000", "13812345678", "0046701234567", "10086"]
    rng = np.random.default_rng(7)
    picks = rng.integers(0, len(distinct) + 1, 50_000)
    column = pa.chunked_array(
        [
            pa.array([distinct[i] if i < len(distinct) else None for i in part])
            for part in np.array_split(picks, 5)
        ]
    )
    frame = classify_numbers(column)
    # Once each, never for nulls; plain domestic digits are answered in one vector step.
    assert sorted(seen) == ["+43664684000", "0046701234567"]
    expected = np.array([True, False, True, False, False])[picks]
    assert (frame["international"].to_numpy(dtype=bool, na_value=False) == expected).all()
    assert frame["international"].isna().sum() == (picks == len(distinct)).sum()


# -- the home country ---------------------------------------------------------------------


def test_home_country_defaults_and_derivation() -> None:
    home = HomeCountry()
    assert (home.region, home.country_code, home.international_prefix) == ("CN", "86", "00")
    assert home.is_mobile("13812345678") and not home.is_mobile("3711234567")
    assert HomeCountry(region="AT").country_code == "43"
    assert HomeCountry(region="gb").region == "GB"
    assert HomeCountry(country_code="46").region == "SE"
    assert HomeCountry(region="US").international_prefix == "011"
    assert hash(home) == hash(HomeCountry())  # usable inside frozen settings and caches


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"region": "CN", "country_code": "43"}, "does not use country code"),
        ({"region": "XX"}, "unknown region"),
        ({"country_code": 86}, "string"),  # strict: no silent coercion
        ({"region": "CN", "colour": "red"}, "Extra inputs"),
        ({"mobile_pattern": "1(\\d"}, "not a regular expression"),
    ],
)
def test_home_country_refuses_bad_settings(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HomeCountry.model_validate(fields)


def test_another_home_country() -> None:
    austria = HomeCountry(region="AT")
    frame = classify_numbers(
        ["+43664684000", "0043664684000", "+8613812345678", "0664684000"], austria
    )
    assert _rows(frame) == [
        (False, "43", "AT"),
        (False, "43", "AT"),
        (True, "86", "CN"),
        (False, "43", "AT"),
    ]
    # The Chinese carrier-prefix layout is only read as such at home in China.
    assert _rows(classify_numbers(["0019588620112345678"], austria))[0][1] == "1"
    usa = HomeCountry(region="US")
    assert list(is_international(["01144207946095", "0044207946095", "+12125551234"], usa)) == [
        True,
        False,
        False,
    ]


def test_normalize_number() -> None:
    assert normalize_number(" +86 (138) 1234-5678 ") == "+8613812345678"
    assert normalize_number("CMCC") is None
    assert normalize_number("1+2") is None


# -- properties ---------------------------------------------------------------------------

_CODES = sorted(str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
_digits = st.text("0123456789", min_size=1, max_size=12)
_number = st.one_of(
    st.none(),
    _digits,
    st.builds(lambda d: "1" + d, st.text("0123456789", min_size=10, max_size=10)),
    st.builds(lambda c, d: "+" + c + d, st.sampled_from(_CODES), _digits),
    st.builds(lambda c, d: "00" + c + d, st.sampled_from(_CODES), _digits),
    st.builds(
        lambda p, k, c, d: p + k + c + d,
        st.sampled_from(["00", "000"]),
        st.sampled_from(["190", "193", "195", "196", "197"]),
        st.sampled_from(_CODES),
        _digits,
    ),
    st.text(max_size=6),
)


@SETTINGS
@given(st.lists(_number, max_size=30))
def test_classifying_a_column_equals_classifying_each_value_alone(
    values: list[str | None],
) -> None:
    frame = classify_numbers(values)
    assert len(frame) == len(values)
    alone = [_rows(classify_numbers([v]))[0] for v in values]
    assert _rows(frame) == alone
    assert list(is_international(values)) == [bool(r[0]) for r in alone]


@SETTINGS
@given(st.sampled_from(_CODES), _digits)
def test_plus_and_double_zero_agree(code: str, rest: str) -> None:
    plus, zeros = _rows(classify_numbers(["+" + code + rest, "00" + code + rest]))
    if (code + rest)[:3] not in {"190", "193", "195", "196", "197"}:
        assert plus == zeros  # "00195…" may be a carrier-routed caller ID instead
    assert plus[0] == (code != "86")


def test_plain_domestic_fast_path_agrees_with_the_parser() -> None:
    from telediag.numbers import HomeCountry, _classify_all, _classify_unique

    home = HomeCountry()
    sample = [
        "13800000001",
        "17266",
        "10658000",
        "8613800000001",
        "95588",
        "1",
        "10086",
        "19055551234",
        "4420712345678",
        "43664684000",
    ]
    assert _classify_all(sample, home) == [_classify_unique(n, home) for n in sample]


_HOMES = [HomeCountry(region=r) for r in ("CN", "US", "AT", "GB")]


@SETTINGS
@given(
    st.lists(
        st.one_of(
            _number.filter(lambda v: v is not None),
            st.builds(lambda d: "0" + d, _digits),
            st.builds(lambda d: "011" + d, _digits),
        ),
        max_size=30,
    ),
    st.sampled_from(_HOMES),
)
def test_vector_shortcuts_agree_with_the_parser(values: list[str], home: HomeCountry) -> None:
    """The numbers answered in one vector step get what the one-by-one parser gives,
    whatever the home country; the international flags alone agree as well."""
    from telediag.numbers import _classify_all, _classify_unique

    assert _classify_all(values, home) == [_classify_unique(v, home) for v in values]
    flags = is_international(pa.array(values, pa.string()), home)
    assert flags.tolist() == [_classify_unique(v, home)[0] for v in values]
