"""Settings that shape a scan: the local time zone and the home country."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from telediag.numbers import HomeCountry


def _default_home() -> Any:
    from telediag.numbers import HomeCountry

    return HomeCountry()


@dataclass(frozen=True)
class ScanSettings:
    """Where the operator is: its time zone (for naive times, days and nights) and country."""

    tz: str = "UTC"
    home: HomeCountry = field(default_factory=_default_home)
    #: Time formats the column map declares (None: only unambiguous ones). Buckets that
    #: read text times parse them with these, as the one-piece scan does.
    time_formats: tuple[str, ...] | None = None
