"""Decoding incoming caller IDs: where did this call come from? (contract section 5, case 4)

A call that reaches a Chinese network from abroad may show a caller ID that records
its route::

    00 | 195 | 886 | 20 | 1 | 12345678
    ^    ^     ^     ^    ^   ^
    |    |     |     |    |   the caller's own number in the origin country
    |    |     |     |    the gateway's sequence number in that city
    |    |     |     area code of the city of the international gateway exchange
    |    |     the origin's country calling code
    |    3-digit domestic carrier code (here China Mobile)
    "00" or "000": the call came in from abroad

The carrier and gateway-city tables are data (``telediag/data/callerid.yaml``), read
once. Numbers in ordinary international form (``+43664684000``, ``0043664684000``)
decode to their country code, region and national significant number. Domestic
numbers decode to ``international: false`` with the other fields null; only when a
number carries the home country code explicitly (``+8613812345678``,
``008613812345678``, ``8613812345678``) are ``country_code`` and ``region`` filled
with the home country's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import resources
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd
import phonenumbers
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from telediag.errors import ConfigError
from telediag.numbers import HomeCountry, _factorize, _spread, normalize_number
from telediag.once import Once
from telediag.yamlfile import load_yaml_model

if TYPE_CHECKING:
    from telediag.numbers import NumberInput

__all__ = ["CALLER_ID_KEYS", "CallerId", "decode_caller_id", "decode_caller_ids", "format_decoded"]

#: Every assigned country calling code, as text ("1", "44", "886", "800", ...).
_COUNTRY_CODES: frozenset[str] = frozenset(str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


class CallerId(BaseModel):
    """One decoded caller ID; the fields are exactly the contract's keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: str
    international: bool
    carrier_code: str | None = None
    carrier: str | None = None
    country_code: str | None = None
    region: str | None = None
    gateway_area_code: str | None = None
    gateway_city: str | None = None
    gateway_index: int | None = None
    caller_number: str | None = None


#: The keys of a decoded caller ID, in the contract's order (the model's fields).
CALLER_ID_KEYS: tuple[str, ...] = tuple(CallerId.model_fields)


class _Tables(BaseModel):
    """The contents of ``data/callerid.yaml``."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    home_country_code: str
    carriers: dict[str, str]
    gateway_cities: dict[str, str]

    @field_validator("carriers")
    @classmethod
    def _carrier_codes(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if not (len(k) == 3 and k.isdigit())]
        if bad:
            raise ValueError(f"carrier codes are three digits: {bad}")
        return v

    @field_validator("gateway_cities")
    @classmethod
    def _area_codes(cls, v: dict[str, str]) -> dict[str, str]:
        # Two-digit codes start with 1 or 2, three-digit ones with 3-9: no code is a
        # prefix of another, and a code not in the table can still be split off.
        bad = [k for k in v if not k.isdigit() or _area_code_length(k) != len(k)]
        if bad:
            raise ValueError(f"area codes are 1x/2x or three digits from 3xx up: {bad}")
        return v

    @model_validator(mode="after")
    def _home(self) -> _Tables:
        if self.home_country_code not in _COUNTRY_CODES:
            raise ValueError(f"unknown country code {self.home_country_code!r}")
        return self


def _area_code_length(digits: str) -> int:
    """How long the Chinese area code at the start of ``digits`` is (0: not one)."""
    if not digits or digits[0] == "0":
        return 0
    return 2 if digits[0] in "12" else 3


@Once
def _tables() -> _Tables:
    ref = resources.files("telediag") / "data" / "callerid.yaml"
    with resources.as_file(ref) as path:
        return load_yaml_model(path, _Tables, ConfigError, "caller-ID table")


# -- decoding one number ------------------------------------------------------------------


class _Parts(NamedTuple):
    """A decoded number: the contract's keys after ``number``."""

    international: bool
    carrier_code: str | None = None
    carrier: str | None = None
    country_code: str | None = None
    region: str | None = None
    gateway_area_code: str | None = None
    gateway_city: str | None = None
    gateway_index: int | None = None
    caller_number: str | None = None


_DOMESTIC = _Parts(False)


def _country_code_at(digits: str) -> str | None:
    """The country calling code at the start of ``digits`` (longest valid of 1-3 digits)."""
    for n in (3, 2, 1):
        if len(digits) >= n and digits[:n] in _COUNTRY_CODES:
            return digits[:n]
    return None


def _region_of(country_code: str, national: str) -> str | None:
    """ISO region of a number; for shared codes the number's own region if it can be told."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(country_code), ())
    region: str | None = regions[0] if regions else None
    if len(regions) > 1 and national:
        try:
            parsed = phonenumbers.parse("+" + country_code + national)
        except phonenumbers.NumberParseException:
            parsed = None
        if parsed is not None:
            region = phonenumbers.region_code_for_number(parsed) or region
    return None if region in (None, "001", "ZZ") else region


def _carrier_form(digits: str) -> _Parts | None:
    """Decode ``00``/``000`` + carrier + country + gateway area + index + caller, or None."""
    tables = _tables()
    rest = digits[3:] if digits.startswith("000") else digits[2:]
    carrier_code = rest[:3]
    carrier = tables.carriers.get(carrier_code)
    if carrier is None:
        return None
    if not digits.startswith("000") and len(rest) == 11:
        # "00" + eleven digits is a plain North American number (+1 and ten digits),
        # e.g. 0019055551234 for +1 905 555 1234; a routed caller ID is longer.
        return None
    after = rest[3:]
    country_code = _country_code_at(after)
    if country_code is None:
        return None
    after = after[len(country_code) :]
    area = next((after[:n] for n in (2, 3) if after[:n] in tables.gateway_cities), None)
    if area is None:
        n = _area_code_length(after)
        if n == 0 or len(after) < n:
            return None
        area = after[:n]
    after = after[len(area) :]
    if len(after) < 2 or after[0] == "0":
        return None
    caller = after[1:]
    return _Parts(
        international=True,
        carrier_code=carrier_code,
        carrier=carrier,
        country_code=country_code,
        region=_region_of(country_code, caller),
        gateway_area_code=area,
        gateway_city=tables.gateway_cities.get(area),
        gateway_index=int(after[0]),
        caller_number=caller,
    )


def _international_form(digits: str, home: HomeCountry) -> _Parts | None:
    """Decode the digits after ``+`` or the international prefix; None when they cannot
    be a number (nothing, or a zero where a country code starts: ``000``, ``0000000000``)."""
    if not digits or digits[0] == "0":
        return None
    if digits.startswith(home.country_code):
        return _Parts(False, country_code=home.country_code, region=home.region)
    country_code = _country_code_at(digits)
    if country_code is None:
        return _Parts(True)
    national = digits[len(country_code) :]
    region = _region_of(country_code, national)
    try:
        parsed = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and str(parsed.country_code) == country_code:
        national = phonenumbers.national_significant_number(parsed)
    return _Parts(True, country_code=country_code, region=region, caller_number=national or None)


def _parse(number: str, home: HomeCountry) -> _Parts | None:
    """Decode one number as seen from ``home``; None if it is not a phone number."""
    s = normalize_number(number)
    if s is None:
        return None
    if s.startswith("+"):
        return _international_form(s[1:], home)
    if s.startswith("00") and home.country_code == _tables().home_country_code:
        routed = _carrier_form(s)
        if routed is not None:
            return routed
    if s.startswith(home.international_prefix):
        return _international_form(s[len(home.international_prefix) :], home)
    if s.startswith(home.country_code) and home.is_mobile(s[len(home.country_code) :]):
        return _Parts(False, country_code=home.country_code, region=home.region)
    if _bare_foreign(s, home):
        return _international_form(s, home)
    return _DOMESTIC


#: A number written in international form without ``+`` or a prefix (``43664684000``)
#: has at least this many digits; shorter plain numbers are local or service codes.
_BARE_INTERNATIONAL_MIN = 10


def _bare_foreign(s: str, home: HomeCountry) -> bool:
    """Is ``s`` (plain digits, no prefix) a foreign number in international form?

    Only when it is long enough, is no valid home number (mobile, ``400``/``800``
    service numbers, a fixed line) and is a valid number of another country as
    phonenumbers knows them, e.g. ``43664684000`` (Austria) seen from China.
    """
    if len(s) < _BARE_INTERNATIONAL_MIN or not s.isdigit() or s[0] == "0":
        return False
    if s.startswith(home.country_code) or home.is_mobile(s):
        return False
    try:
        as_home = phonenumbers.parse(s, home.region)
        if phonenumbers.is_valid_number(as_home):
            return False
        as_foreign = phonenumbers.parse("+" + s)
    except phonenumbers.NumberParseException:
        return False
    return bool(
        phonenumbers.is_valid_number(as_foreign)
        and phonenumbers.region_code_for_number(as_foreign) != home.region
    )


def decode_caller_id(number: str, home: HomeCountry | None = None) -> CallerId:
    """Decode one caller ID (contract section 5).

    >>> decode_caller_id("0019588620112345678").gateway_city
    'Guangzhou'
    """
    parts = _parse(number, HomeCountry() if home is None else home)
    return CallerId(number=number, **(_DOMESTIC if parts is None else parts)._asdict())


_ARROW_TYPES: dict[str, pa.DataType] = {
    key: pa.bool_()
    if key == "international"
    else pa.int64()
    if key == "gateway_index"
    else pa.string()
    for key in CALLER_ID_KEYS
}


def decode_caller_ids(numbers: NumberInput, home: HomeCountry | None = None) -> pd.DataFrame:
    """Decode a whole column of caller IDs; one row per input, in order.

    Each distinct value is decoded once. The columns are the contract's keys in its
    order; a null input gives a row of nulls.
    """
    home = HomeCountry() if home is None else home
    uniques, codes, index = _factorize(numbers)
    decoded = [_parse(u, home) or _DOMESTIC for u in uniques]
    columns: dict[str, Any] = {"number": _spread(uniques, codes, pa.string())}
    for i, key in enumerate(_Parts._fields):
        columns[key] = _spread([p[i] for p in decoded], codes, _ARROW_TYPES[key])
    return pd.DataFrame(columns, index=index)[list(CALLER_ID_KEYS)]


# -- output -------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A JSON-ready Python value (pandas' NA and numpy scalars made plain)."""
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _records(rows: pd.DataFrame | Iterable[CallerId] | CallerId) -> list[dict[str, Any]]:
    if isinstance(rows, CallerId):
        rows = [rows]
    if isinstance(rows, pd.DataFrame):
        frame = rows[list(CALLER_ID_KEYS)]
        return [
            {k: _plain(v) for k, v in zip(CALLER_ID_KEYS, row, strict=True)}
            for row in frame.itertuples(index=False, name=None)
        ]
    return [r.model_dump() for r in rows]


def _region_name(region: str) -> str:
    """English name of an ISO region, from phonenumbers' locale data."""
    # Imported here: the locale tables take a third of a second to load and only the
    # text output of `telediag decode` needs them.
    from phonenumbers.geodata.locale import LOCALE_DATA

    names = LOCALE_DATA.get(region, {})
    name = names.get("en", "")
    if name.startswith("*"):
        name = names.get(name[1:], "")
    return name or region


def _origin(row: dict[str, Any]) -> str:
    region, code = row["region"], row["country_code"]
    if region is None:
        return f"+{code}"
    return f"{_region_name(region)} ({region}, +{code})"


def _describe(row: dict[str, Any]) -> str:
    number = row["number"]
    if number is None:
        return "no number"
    if not row["international"]:
        if normalize_number(number) is None:
            return "not a telephone number"
        if row["country_code"] is not None:
            return f"domestic, {_origin(row)}"
        return "domestic"
    if row["country_code"] is None:
        return "international, country code not recognised"
    caller = f"; caller {row['caller_number']}" if row["caller_number"] else ""
    if row["carrier_code"] is None:
        return f"from {_origin(row)}{caller}"
    city = row["gateway_city"] or f"area {row['gateway_area_code']}"
    return (
        f"from {_origin(row)} via {city} gateway {row['gateway_index']}, "
        f"carried by {row['carrier']}{caller}"
    )


def format_decoded(rows: pd.DataFrame | Iterable[CallerId] | CallerId, as_json: bool) -> str:
    """Decoded caller IDs as text: JSON lines (contract keys only) or aligned prose.

    ``rows`` is a frame from :func:`decode_caller_ids` or :class:`CallerId` objects.
    With ``as_json`` each line is one JSON object; otherwise each line is the number,
    padded to a common width, and a sentence saying where the call came from.
    """
    records = _records(rows)
    if as_json:
        return "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    width = max((len(r["number"] or "") for r in records), default=0)
    return "\n".join(f"{r['number'] or '':<{width}}  {_describe(r)}" for r in records)
