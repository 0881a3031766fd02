"""telediag.callerid: decoding incoming caller IDs (contract section 5, case 4)."""

from __future__ import annotations

import json

import pandas as pd
import phonenumbers
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import telediag.callerid as callerid_mod
from telediag.callerid import (
    CALLER_ID_KEYS,
    CallerId,
    decode_caller_id,
    decode_caller_ids,
    format_decoded,
)
from telediag.numbers import HomeCountry, classify_numbers

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CONTRACT_KEYS = [
    "number",
    "international",
    "carrier_code",
    "carrier",
    "country_code",
    "region",
    "gateway_area_code",
    "gateway_city",
    "gateway_index",
    "caller_number",
]

TAIWAN_VIA_GUANGZHOU = {
    "number": "0019588620112345678",
    "international": True,
    "carrier_code": "195",
    "carrier": "China Mobile",
    "country_code": "886",
    "region": "TW",
    "gateway_area_code": "20",
    "gateway_city": "Guangzhou",
    "gateway_index": 1,
    "caller_number": "12345678",
}


def _nulls_except(**fields: object) -> dict[str, object]:
    return {k: fields.get(k) for k in CONTRACT_KEYS}


def test_keys_are_the_contracts() -> None:
    assert list(CALLER_ID_KEYS) == CONTRACT_KEYS
    assert list(CallerId.model_fields) == CONTRACT_KEYS
    assert list(callerid_mod._Parts._fields) == CONTRACT_KEYS[1:]


def test_the_documented_example() -> None:
    assert decode_caller_id("0019588620112345678").model_dump() == TAIWAN_VIA_GUANGZHOU


def test_triple_zero_and_other_carriers() -> None:
    got = decode_caller_id("00019788621212345678")
    assert (got.carrier_code, got.carrier, got.country_code, got.region) == (
        "197",
        "China Tietong",
        "886",
        "TW",
    )
    assert (got.gateway_area_code, got.gateway_city, got.gateway_index) == ("21", "Shanghai", 2)
    assert got.caller_number == "12345678"
    carriers = {
        code: decode_caller_id(f"00{code}8521012345678").carrier
        for code in ("190", "193", "195", "196", "197")
    }
    assert carriers == {
        "190": "China Telecom",
        "193": "China Unicom",
        "195": "China Mobile",
        "196": "China Netcom",
        "197": "China Tietong",
    }


def test_three_digit_gateway_and_unknown_gateway() -> None:
    zhengzhou = decode_caller_id("00195443711201234567")
    assert (zhengzhou.country_code, zhengzhou.region) == ("44", "GB")
    assert (zhengzhou.gateway_area_code, zhengzhou.gateway_city) == ("371", "Zhengzhou")
    assert (zhengzhou.gateway_index, zhengzhou.caller_number) == (1, "201234567")
    # 452 is a real area code that is not in the table: split off, city unknown.
    unknown = decode_caller_id("00195886452112345678")
    assert (unknown.gateway_area_code, unknown.gateway_city, unknown.gateway_index) == (
        "452",
        None,
        1,
    )
    assert unknown.caller_number == "12345678"


@pytest.mark.parametrize(
    ("number", "region"),
    [
        ("0019512115145551234", "CA"),  # a Montreal number: the number tells
        ("0019512112125551234", "US"),
        ("001951211234567", "US"),  # too short to tell: the code's main region
        ("0019571017012345678", "KZ"),  # +7 is shared by Russia and Kazakhstan
        ("0019571014951234567", "RU"),
    ],
)
def test_shared_country_codes(number: str, region: str) -> None:
    assert decode_caller_id(number).region == region


@pytest.mark.parametrize(
    ("number", "country_code", "region", "caller"),
    [
        ("+43664684000", "43", "AT", "664684000"),
        ("0043664684000", "43", "AT", "664684000"),
        ("+44 20 7946 0958", "44", "GB", "2079460958"),
        ("0039 06 1234 5678", "39", "IT", "0612345678"),  # Italy keeps its leading 0
        # 00 + eleven digits is +1 and a North American number, not carrier 190.
        ("0019055551234", "1", "CA", "9055551234"),
    ],
)
def test_plain_international(number: str, country_code: str, region: str, caller: str) -> None:
    assert decode_caller_id(number).model_dump() == _nulls_except(
        number=number,
        international=True,
        country_code=country_code,
        region=region,
        caller_number=caller,
    )


@pytest.mark.parametrize("number", ["13812345678", "10658000", "037112345678", "17266", "CMCC"])
def test_domestic_numbers_decode_to_nulls(number: str) -> None:
    assert decode_caller_id(number).model_dump() == _nulls_except(
        number=number, international=False
    )


@pytest.mark.parametrize("number", ["+8613812345678", "008613812345678", "8613812345678"])
def test_numbers_with_the_home_code_name_the_home_country(number: str) -> None:
    assert decode_caller_id(number).model_dump() == _nulls_except(
        number=number, international=False, country_code="86", region="CN"
    )


def test_carrier_layout_applies_only_at_home_in_china() -> None:
    got = decode_caller_id("0019588620112345678", HomeCountry(region="DE"))
    assert got.international and got.carrier_code is None and got.country_code == "1"


# -- a whole column -----------------------------------------------------------------------

COLUMN = [
    "0019588620112345678",
    None,
    "+43664684000",
    "13812345678",
    "0019588620112345678",
    "+8613812345678",
]


def test_column_has_contract_columns_in_order_and_keeps_row_order() -> None:
    frame = decode_caller_ids(COLUMN)
    assert list(frame.columns) == CONTRACT_KEYS
    assert len(frame) == len(COLUMN)
    assert frame["number"].tolist()[0] == "0019588620112345678"
    assert frame["number"].isna().tolist() == [False, True, False, False, False, False]
    assert frame.iloc[1].isna().all()  # a null input is a row of nulls
    assert str(frame["gateway_index"].dtype) == "Int64"
    assert str(frame["international"].dtype) == "boolean"
    for i, number in enumerate(COLUMN):
        if number is None:
            continue
        row = {k: (None if v is pd.NA else v) for k, v in frame.iloc[i].items()}
        assert row == decode_caller_id(number).model_dump()


def test_column_agrees_with_classification() -> None:
    frame = decode_caller_ids(pa.array(COLUMN))
    classes = classify_numbers(pa.array(COLUMN))
    assert frame["international"].equals(classes["international"])


def test_column_decodes_each_distinct_value_once(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = callerid_mod._parse

    def counting(number: str, home: HomeCountry) -> object:
        seen.append(number)
        return real(number, home)

    monkeypatch.setattr(callerid_mod, "_parse", counting)
    frame = decode_caller_ids(pd.Series(COLUMN * 1000))
    assert sorted(seen) == sorted({n for n in COLUMN if n is not None})
    assert len(frame) == len(COLUMN) * 1000
    assert frame["gateway_city"].eq("Guangzhou").sum() == 2000


def test_tables_are_read_once() -> None:
    assert callerid_mod._tables() is callerid_mod._tables()
    tables = callerid_mod._tables()
    assert tables.gateway_cities["10"] == "Beijing"
    assert tables.gateway_cities["371"] == "Zhengzhou"
    assert tables.gateway_cities["755"] == "Shenzhen"


def test_country_codes_are_prefix_free() -> None:
    # The decoder takes the country code at the start of the digits; that is only
    # unambiguous because no calling code is the beginning of another.
    codes = [str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE]
    assert not [(a, b) for a in codes for b in codes if a != b and b.startswith(a)]


# -- output -------------------------------------------------------------------------------


def test_json_lines_have_exactly_the_contract_keys() -> None:
    text = format_decoded(decode_caller_ids(COLUMN), as_json=True)
    lines = text.splitlines()
    assert len(lines) == len(COLUMN)
    objects = [json.loads(line) for line in lines]
    assert all(list(o) == CONTRACT_KEYS for o in objects)
    assert objects[0] == TAIWAN_VIA_GUANGZHOU
    assert objects[1] == dict.fromkeys(CONTRACT_KEYS)
    assert objects[2]["international"] is True and objects[2]["gateway_index"] is None
    assert objects[3]["international"] is False


def test_text_is_aligned_and_readable() -> None:
    numbers = ["0019588620112345678", "+43664684000", "10086", "+8613812345678", "CMCC"]
    lines = format_decoded(decode_caller_ids(numbers), as_json=False).splitlines()
    assert lines[0] == (
        "0019588620112345678  from Taiwan (TW, +886) via Guangzhou gateway 1, "
        "carried by China Mobile; caller 12345678"
    )
    assert lines[1].split(None, 1)[1] == "from Austria (AT, +43); caller 664684000"
    assert lines[2].split(None, 1)[1] == "domestic"
    assert lines[3].split(None, 1)[1] == "domestic, China (CN, +86)"
    assert lines[4].split(None, 1)[1] == "not a telephone number"
    width = len(numbers[0]) + 2
    assert all(line[width - 2 : width] == "  " and line[width] != " " for line in lines)


def test_format_accepts_models() -> None:
    one = decode_caller_id("0019588620112345678")
    assert json.loads(format_decoded([one], as_json=True)) == TAIWAN_VIA_GUANGZHOU
    assert format_decoded(one, as_json=False) == format_decoded(
        decode_caller_ids([one.number]), as_json=False
    )


# -- property: decoding recovers the parts a caller ID was built from --------------------

_TABLES = callerid_mod._tables()
_COUNTRY_CODES = sorted(str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


@SETTINGS
@given(
    prefix=st.sampled_from(["00", "000"]),
    carrier=st.sampled_from(sorted(_TABLES.carriers)),
    country=st.sampled_from(_COUNTRY_CODES),
    area=st.sampled_from(sorted(_TABLES.gateway_cities)),
    index=st.integers(1, 9),
    # From five digits up: "00" + eleven digits is read as a North American number.
    caller=st.text("0123456789", min_size=5, max_size=12),
)
def test_decoding_recovers_the_parts(
    prefix: str, carrier: str, country: str, area: str, index: int, caller: str
) -> None:
    number = f"{prefix}{carrier}{country}{area}{index}{caller}"
    got = decode_caller_id(number)
    assert got.international
    assert (got.carrier_code, got.carrier) == (carrier, _TABLES.carriers[carrier])
    assert got.country_code == country
    assert (got.gateway_area_code, got.gateway_city) == (area, _TABLES.gateway_cities[area])
    assert (got.gateway_index, got.caller_number) == (index, caller)
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[int(country)]
    assert got.region in regions or (got.region is None and regions == ("001",))
    # The column decoder and the classifier give the same answer.
    frame = decode_caller_ids([number, None, number])
    assert frame["caller_number"].tolist()[::2] == [caller, caller]
    assert classify_numbers([number])["country_code"].tolist() == [country]


def test_tables_are_read_once_when_threads_ask_at_the_same_time(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Rules run in threads: two asking for the caller-ID tables at the same moment read
    the file once (with functools' cache each read it)."""
    import threading
    import time

    read: list[int] = []
    real = callerid_mod.load_yaml_model

    def slow(*args, **kwargs):  # type: ignore[no-untyped-def]
        read.append(1)
        time.sleep(0.2)  # long enough for every thread to ask meanwhile
        return real(*args, **kwargs)

    callerid_mod._tables.cache_clear()
    monkeypatch.setattr(callerid_mod, "load_yaml_model", slow)
    got: list[object] = []

    def ask() -> None:
        got.append(callerid_mod._tables())

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    monkeypatch.undo()
    callerid_mod._tables.cache_clear()
    assert len(read) == 1
    assert len(got) == 4 and all(g is got[0] for g in got)
