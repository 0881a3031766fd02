"""One answer to "is this number international?", shared by every rule.

A number is read from the point of view of a home country (China, +86, unless told
otherwise):

* written with ``+`` or the home international prefix (``00``) followed by the home
  country code (``+86…``, ``0086…``): domestic;
* ``+`` or ``00`` followed by any other country code (``+43664684000``, ``0044…``):
  international, from that country;
* a Chinese incoming caller ID with a carrier prefix (``00195886…``, ``000195…``,
  contract section 5): international, from the country that follows the carrier
  code (see :mod:`telediag.callerid`; a general parser would wrongly read these as
  ``+1``);
* a number of ten digits or more without a prefix that is no valid home number but a
  valid number of another country (``43664684000``, as switches often record the
  international form): international;
* a prefix followed by nothing or by a zero (``000``, ``0000000000``): no number at all,
  never international;
* anything else that is a number (national ``0371…``, mobile ``138…``, the home code
  followed by a mobile number ``8613…``, short and service codes ``10086``,
  ``10658000``, ``17266``): domestic.

Work is done once per distinct value: a column of ten million records that share a
hundred thousand numbers is classified with a hundred thousand look-ups, and the
answers are spread back over the rows with an array ``take``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, model_validator

from telediag.chunks import encode

if TYPE_CHECKING:
    from typing import TypeAlias

    NumberInput: TypeAlias = (
        pa.Array | pa.ChunkedArray | pd.Series | pd.Index | np.ndarray | Iterable[str | None]
    )

__all__ = [
    "HomeCountry",
    "classify_numbers",
    "is_international",
    "normalize_number",
]

#: Domestic mobile numbers in China: eleven digits beginning with 1.
_CN_MOBILE_PATTERN = r"1\d{10}"

#: Characters people and exports put inside numbers that carry no meaning.
_SEPARATORS = re.compile(r"[\s\-().]")
_NUMBER = re.compile(r"\+?\d+")


class HomeCountry(BaseModel):
    """The country whose network recorded the numbers: what "domestic" means.

    Give ``region`` or ``country_code`` and the other is derived through
    phonenumbers (``HomeCountry(region="AT")`` has country code ``"43"``). The
    mobile pattern (national significant number of a mobile line) and the
    international prefix are taken from phonenumbers' metadata for regions other
    than China; for China they are eleven digits starting with ``1`` and ``00``.
    """

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    region: str = "CN"
    country_code: str = "86"
    #: regular expression a whole national mobile number matches
    mobile_pattern: str = _CN_MOBILE_PATTERN
    #: the digits dialled before a country code, e.g. "00"
    international_prefix: str = "00"

    @model_validator(mode="before")
    @classmethod
    def _derive_missing(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        d = dict(data)
        if isinstance(d.get("region"), str):
            d["region"] = d["region"].strip().upper()
        region, code = d.get("region"), d.get("country_code")
        if "country_code" not in d and isinstance(region, str):
            derived = phonenumbers.country_code_for_region(region)
            if derived:
                d["country_code"] = str(derived)
        elif "region" not in d and isinstance(code, str) and code.isdigit():
            main = phonenumbers.region_code_for_country_code(int(code))
            if main not in ("ZZ", "001"):
                d["region"] = main
        region = d.get("region", "CN")
        meta = (
            phonenumbers.PhoneMetadata.metadata_for_region(region)
            if isinstance(region, str)
            else None
        )
        if meta is not None and region != "CN":
            mobile = meta.mobile.national_number_pattern if meta.mobile else None
            if "mobile_pattern" not in d and mobile:
                d["mobile_pattern"] = mobile
            prefix = meta.preferred_international_prefix or meta.international_prefix
            if "international_prefix" not in d and prefix and prefix.isdigit():
                d["international_prefix"] = prefix
        return d

    @model_validator(mode="after")
    def _check(self) -> HomeCountry:
        if self.region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {self.region!r} (an ISO 3166-1 alpha-2 code)")
        if not self.country_code.isdigit():
            raise ValueError(f"country_code must be digits, not {self.country_code!r}")
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(self.country_code), ())
        if self.region not in regions:
            raise ValueError(f"region {self.region} does not use country code +{self.country_code}")
        if not self.international_prefix.isdigit():
            raise ValueError(
                f"international_prefix must be digits, not {self.international_prefix!r}"
            )
        try:
            re.compile(self.mobile_pattern)
        except re.error as exc:
            raise ValueError(f"mobile_pattern is not a regular expression: {exc}") from None
        return self

    def is_mobile(self, national: str) -> bool:
        """Whether ``national`` (digits, no prefix) is a whole home mobile number."""
        return re.fullmatch(self.mobile_pattern, national) is not None


def normalize_number(number: str) -> str | None:
    """``number`` without spaces, dashes, dots and brackets; None if it is not a number.

    What remains must be digits, optionally after one leading ``+``.
    """
    cleaned = _SEPARATORS.sub("", number)
    return cleaned if _NUMBER.fullmatch(cleaned) else None


# -- distinct values in, one row per input out ------------------------------------------


def _to_arrow(numbers: NumberInput) -> tuple[pa.Array | pa.ChunkedArray, pd.Index]:
    """The input as an Arrow string (or dictionary-of-string) array, and the output index."""
    if isinstance(numbers, str | bytes):
        raise TypeError("expected a column of numbers, not a single string")
    index: pd.Index | None = None
    if isinstance(numbers, pa.Array | pa.ChunkedArray):
        arr = numbers
    else:
        if isinstance(numbers, pd.Series):
            index = numbers.index
        values: Any = (
            numbers if isinstance(numbers, pd.Series | pd.Index | np.ndarray) else list(numbers)
        )
        try:
            arr = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # Mixed Python objects (say ints and strings): the slow path, once.
            arr = pa.array(
                [None if v is None or v is pd.NA or v != v else str(v) for v in values],
                type=pa.string(),
            )
    if index is None:
        index = pd.RangeIndex(len(arr))
    typ = arr.type
    if pa.types.is_dictionary(typ):
        if not pa.types.is_string(typ.value_type):
            arr = arr.cast(pa.dictionary(typ.index_type, pa.string()))
    elif not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
        try:
            arr = arr.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise TypeError(f"cannot read a column of {typ} as phone numbers") from exc
    return arr, index


def _factorize(numbers: NumberInput) -> tuple[list[str], np.ndarray, pd.Index]:
    """Distinct non-null values, and for each input row its position among them.

    Null inputs get the position ``len(uniques)``, one past the end, so that a
    result list extended by one null answers them.
    """
    arr, index = _to_arrow(numbers)
    if pa.types.is_dictionary(arr.type):
        chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
        # Classify the dictionaries' values, then translate every chunk's indices.
        dicts = [c.dictionary for c in chunks]
        uniques = pc.unique(pa.chunked_array(dicts, type=pa.string())).drop_null()
        n = len(uniques)
        parts = [
            pc.take(pc.index_in(d, value_set=uniques), c.indices).fill_null(n).to_numpy()
            for c, d in zip(chunks, dicts, strict=True)
        ]
        codes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp)
    else:
        # One pass of hashing gives the distinct values and every row's code.
        encoded = encode(arr)
        uniques = encoded.dictionary
        n = len(uniques)
        codes = encoded.indices.fill_null(n).to_numpy()
    return uniques.to_pylist(), np.asarray(codes, dtype=np.intp), index


_PANDAS_TYPES: dict[pa.DataType, Any] = {
    pa.string(): pd.StringDtype("pyarrow"),
    pa.bool_(): pd.BooleanDtype(),
    pa.int64(): pd.Int64Dtype(),
}


def _spread(values: list[Any], codes: np.ndarray, typ: pa.DataType) -> Any:
    """One value per distinct input spread back over the rows (null rows get null)."""
    per_unique = pa.array([*values, None], type=typ)
    taken = per_unique.take(pa.array(codes, type=pa.int64()))
    return taken.to_pandas(types_mapper=_PANDAS_TYPES.get).array


# -- classification ---------------------------------------------------------------------


def _classify_unique(number: str, home: HomeCountry) -> tuple[bool, str | None, str | None]:
    """(international, country_code, region) for one distinct number."""
    from telediag.callerid import _parse

    parts = _parse(number, home)
    if parts is None:
        return False, None, None
    if parts.international:
        return True, parts.country_code, parts.region
    return False, home.country_code, home.region


#: Plain digits with no leading zero, too short for a number in international form:
#: local, mobile or service numbers, always domestic.
_PLAIN_DOMESTIC = r"^[1-9][0-9]{0,8}$"
#: Digits after a trunk zero (``0371…``, ``020…``): a domestic fixed line, unless the
#: home's international prefix starts the same way (``011`` in North America).
_TRUNK_DOMESTIC = r"^0[1-9][0-9]*$"


def _domestic_at_sight(values: pa.Array, home: HomeCountry) -> np.ndarray:
    """Which distinct numbers are domestic by their form alone (plain short digits, a
    whole home mobile number, a trunk zero and digits): most of any column."""

    def flags(found: pa.Array) -> np.ndarray:
        return np.asarray(found.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)

    plain = flags(pc.match_substring_regex(values, _PLAIN_DOMESTIC))
    # A mobile pattern RE2 cannot run leaves those numbers to the one-by-one path.
    with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
        plain |= flags(pc.match_substring_regex(values, f"^(?:{home.mobile_pattern})$"))
    trunk = flags(pc.match_substring_regex(values, _TRUNK_DOMESTIC))
    if home.international_prefix:
        trunk &= ~flags(pc.starts_with(values, home.international_prefix))
    return plain | trunk


def _classify_all(
    uniques: list[str], home: HomeCountry
) -> list[tuple[bool, str | None, str | None]]:
    """Classify distinct numbers; the common case (domestic at sight) in one vector
    step, the rest (``+``, the international prefix, separators, text) one by one."""
    known = _domestic_at_sight(pa.array(uniques, type=pa.string()), home)
    domestic = (False, home.country_code, home.region)
    return [
        domestic if is_plain else _classify_unique(u, home)
        for u, is_plain in zip(uniques, known, strict=True)
    ]


def is_international(numbers: NumberInput, home: HomeCountry | None = None) -> np.ndarray:
    """A numpy bool array: True where the number is international (null inputs: False).

    The ``international`` column of :func:`classify_numbers` without its other
    columns: what a record filter on ``peer_international`` needs, at a fraction of
    the cost on a month of messages.
    """
    home = HomeCountry() if home is None else home
    uniques, codes, _ = _factorize(numbers)
    flags = np.zeros(len(uniques) + 1, dtype=bool)  # the last entry answers nulls
    known = _domestic_at_sight(pa.array(uniques, type=pa.string()), home)
    for i in np.flatnonzero(~known):
        flags[i] = _classify_unique(uniques[i], home)[0]
    return flags[codes]


def classify_numbers(numbers: NumberInput, home: HomeCountry | None = None) -> pd.DataFrame:
    """Classify a column of phone numbers as domestic or international.

    ``numbers`` is a pyarrow Array or ChunkedArray (plain or dictionary-encoded), a
    pandas Series, or a list of strings; nulls are allowed. Each distinct value is
    classified once. The result has one row per input, in input order (with the
    Series' index when given a Series), and the columns:

    ``international``
        nullable boolean; null where the input is null.
    ``country_code``
        the calling code the number belongs to, e.g. ``"43"``; the home code for
        domestic numbers; null for nulls, for text that is not a number, and for an
        international number whose country code is not recognised.
    ``region``
        ISO 3166-1 alpha-2 code, e.g. ``"AT"``, null where not known.
    """
    home = HomeCountry() if home is None else home
    uniques, codes, index = _factorize(numbers)
    answers = _classify_all(uniques, home)
    intl = [a[0] for a in answers]
    country = [a[1] for a in answers]
    region = [a[2] for a in answers]
    return pd.DataFrame(
        {
            "international": _spread(intl, codes, pa.bool_()),
            "country_code": _spread(country, codes, pa.string()),
            "region": _spread(region, codes, pa.string()),
        },
        index=index,
    )
