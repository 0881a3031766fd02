"""Conditions: the one small vocabulary rule files use to say "which values".

The same :class:`Condition` selects records (on columns) and judges measurements
(on a detector's measures). A condition is data: it is compiled into Arrow or numpy
comparisons and never evaluated as code.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

Scalar = str | int | float | bool


def _number(value: float) -> str:
    """A bound as written: whole numbers in full (604800, not 6.048e+05)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


#: Text that reads as a number: a sign, digits with an optional fraction, an exponent.
_NUMBER_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def whole_number(value: Any) -> int | None:
    """A condition's value read as a whole number, exactly (text through ``Decimal``,
    not a float): None for a number that is not whole or too large for any integer
    column (1.5, 1e30); ``ValueError`` for a value that is no number at all ("abc",
    "0x10", "²")."""
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2.0**64 else None
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
        number = Decimal(value.strip())
        if number.is_zero():
            return 0
        if number.adjusted() > 20:  # beyond any integer column
            return None
        return int(number) if number == number.to_integral_value() else None
    raise ValueError(f"{value!r} is not a number")


class Condition(BaseModel):
    """A test on one column or measure. Every part given must hold.

    In YAML a bare scalar means ``equals`` and a bare list means ``in``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    equals: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    not_in: list[Scalar] | None = None
    prefix: list[str] | None = None
    is_null: bool | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, list):
            return {"in": data}
        if isinstance(data, (str, int, float, bool)):
            return {"equals": data}
        return data

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        if not self.model_fields_set:
            raise ValueError(
                "a condition needs at least one of equals, in, not_in, prefix, is_null, min, max"
            )
        return self

    def describe(self) -> str:
        """A short human form, e.g. ``>= 30`` or ``in [9202, 9203]``."""
        parts = []
        if self.equals is not None:
            parts.append(f"= {self.equals}")
        if self.in_ is not None:
            parts.append(f"in {self.in_}")
        if self.not_in is not None:
            parts.append(f"not in {self.not_in}")
        if self.prefix is not None:
            parts.append(f"starts with {self.prefix}")
        if self.is_null is not None:
            parts.append("is empty" if self.is_null else "is present")
        if self.min is not None:
            parts.append(f">= {_number(self.min)}")
        if self.max is not None:
            parts.append(f"<= {_number(self.max)}")
        return " and ".join(parts)

    def holds(self, value: Any) -> bool:
        """Judge one value (a measurement); nulls fail every test except ``is_null``."""
        return bool(self.mask(pd.Series([value], dtype="object"))[0])

    def mask(self, values: pd.Series) -> np.ndarray:
        """Judge a whole column of measurements at once."""
        null = values.isna().to_numpy()
        ok = np.ones(len(values), dtype=bool)
        if self.is_null is not None:
            ok &= null if self.is_null else ~null
        if self.equals is not None:
            ok &= ~null & (values == self.equals).to_numpy(dtype=bool, na_value=False)
        if self.in_ is not None:
            ok &= ~null & values.isin(self.in_).to_numpy()
        if self.not_in is not None:
            ok &= ~null & ~values.isin(self.not_in).to_numpy()
        if self.prefix is not None:
            text = values.astype("string").str.upper()
            hit = np.zeros(len(values), dtype=bool)
            for p in self.prefix:
                hit |= text.str.startswith(p.upper()).to_numpy(dtype=bool, na_value=False)
            ok &= hit
        if self.min is not None or self.max is not None:
            num = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            with np.errstate(invalid="ignore"):
                if self.min is not None:
                    ok &= num >= self.min
                if self.max is not None:
                    ok &= num <= self.max
        return ok
