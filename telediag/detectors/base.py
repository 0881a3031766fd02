"""What every detector shares: its inputs, its output, and the registry.

A detector *measures*; it never judges. It receives a rule's records (sorted positions)
and returns one row of measurements per candidate (a group, a burst, a periodic series)
with the positions that are its evidence. The rule's thresholds do the judging.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, BeforeValidator, ConfigDict

from telediag.sort import SortedRecords
from telediag.timeutil import LocalClock


class DetectorParams(BaseModel):
    """Base of every detector's parameter model: strict, so typos are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def columns(self) -> set[str]:
        """Canonical columns the detector reads besides subscriber and time."""
        return set()


@dataclass
class DetectContext:
    """Everything a detector may use besides its own parameters."""

    records: SortedRecords
    clock: LocalClock
    #: Measures the rule refers to; a detector may skip costly ones not listed.
    wanted: set[str] = field(default_factory=set)
    #: Candidates with fewer records than this cannot pass the rule: drop them early.
    min_count: int = 1


@dataclass
class Candidates:
    """Measurements per candidate plus its evidence, in compressed sparse rows.

    ``measures`` always has ``subscriber`` (code), ``first_ms``, ``last_ms`` and
    ``count``; ``group`` (a readable key) is filled in for the survivors by the engine
    from ``key_codes``/``key_dicts``.
    """

    measures: pd.DataFrame
    positions: np.ndarray
    offsets: np.ndarray
    key_columns: list[str] = field(default_factory=list)
    key_dicts: list[pa.Array] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.measures)

    def select(self, keep: np.ndarray) -> Candidates:
        """The candidates where ``keep`` is true, evidence carried along."""
        idx = np.flatnonzero(keep)
        lengths = np.diff(self.offsets)[idx]
        new_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        if lengths.sum():
            shift = np.repeat(self.offsets[idx] - new_offsets[:-1], lengths)
            pos = self.positions[np.arange(int(lengths.sum())) + shift]
        else:
            pos = self.positions[:0]
        return Candidates(
            measures=self.measures.iloc[idx].reset_index(drop=True),
            positions=pos,
            offsets=new_offsets,
            key_columns=self.key_columns,
            key_dicts=self.key_dicts,
        )

    @classmethod
    def empty(cls, extra: list[str] | None = None) -> Candidates:
        """No candidates."""
        cols = ["subscriber", "first_ms", "last_ms", "count", *(extra or [])]
        return cls(
            measures=pd.DataFrame({c: pd.Series(dtype="float64") for c in cols}),
            positions=np.zeros(0, dtype=np.int64),
            offsets=np.zeros(1, dtype=np.int64),
        )


class Detector(ABC):
    """A general measurement over a rule's records."""

    kind: ClassVar[str]
    Params: ClassVar[type[DetectorParams]]
    #: Every measure the detector reports, with a one-line meaning (used in rule docs and
    #: to validate rule files).
    MEASURES: ClassVar[dict[str, str]]
    #: What it means when records pass the rule's filter but the detector makes no
    #: candidate of them (completes "N record(s) with <filter>, but ...").
    NO_CANDIDATE: ClassVar[str] = "the detector found no pattern among them"
    #: Does it follow a handset (IMEI) across subscribers, reading only records that
    #: carry one? Such a detector's rules are ``cross_subscriber`` (they run on handset
    #: buckets), and only such a detector's rules may be.
    FOLLOWS_HANDSET: ClassVar[bool] = False

    @abstractmethod
    def detect(self, ctx: DetectContext, positions: np.ndarray, params: Any) -> Candidates:
        """Measure the records at ``positions`` (sorted positions, in sorted order)."""

    #: The least total of each tally of :meth:`seeds` that a key needs to be a seed.
    SEED_MINIMUMS: ClassVar[Mapping[str, int]] = {}
    #: For a detector that follows a key: a record filter, written as a rule's
    #: ``records`` are, such that :meth:`detect` can make a candidate of a key only if
    #: one of the rule's records carrying the key passes it (the hand-over detector: a
    #: failed one). A spilling scan judges it with the rule's own filter on the rows as
    #: it reads them (:func:`telediag.filters.possible_mask`), and keeps aside, while
    #: it scans the subscriber buckets, the rows of the keys so marked only. None: any
    #: key may be a candidate's.
    SEED_RECORDS: ClassVar[Mapping[str, Any] | None] = None

    def seeds(self, ctx: DetectContext, positions: np.ndarray, params: Any) -> pa.Table | None:
        """For a detector that follows a key across subscribers (the IMEI): the keys it
        may make a candidate of, as *some* of the rule's records (one subscriber
        bucket's) tell, or None when it may make one of any key.

        The answer is a table with the key (``key``, text) and, per key, counts that
        add up over parts of the records cut by subscriber (each subscriber's records
        in one part), one column per name of :data:`SEED_MINIMUMS`. Over all the parts,
        the keys whose summed counts each reach their minimum (every key given, when
        there are no minimums) must hold every key that :meth:`detect` on all the
        records could make a candidate of; then a scan needs to bring together only
        the records of those keys (:func:`telediag.engine.pick_seeds`). Extra keys
        cost time, never findings.
        """
        return None


REGISTRY: dict[str, Detector] = {}


def register(detector: Detector) -> Detector:
    """Add a detector to the registry under its kind."""
    REGISTRY[detector.kind] = detector
    return detector


_UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15min"``, ``"2h"`` or ``"1d"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '15min', '2h', '1d'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = text[len(number) :].strip() or "s"
        if unit not in _UNITS or not number.strip():
            raise ValueError(f"cannot read duration {value!r}: use e.g. 90s, 15min, 2h, 1d")
        seconds = float(number) * _UNITS[unit]
    else:
        raise ValueError("a duration is a number of seconds or text like '15min', '2h', '1d'")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
