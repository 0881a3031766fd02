"""The rule catalog: rule files are data, validated by strict models.

One YAML file per rule, named after its id (``TD001.yaml``). Nothing in a rule file is
executed or evaluated: filters and thresholds are :class:`~telediag.conditions.Condition`
objects, the summary is a format template whose fields must be measure names.
"""

from __future__ import annotations

import string
from enum import StrEnum
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, cast

import pyarrow as pa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from telediag.conditions import Condition, whole_number
from telediag.derived import DERIVED_COLUMNS
from telediag.detectors import REGISTRY
from telediag.detectors.base import DetectorParams
from telediag.errors import RuleFileError, SelectionError
from telediag.schema import COLUMNS
from telediag.yamlfile import load_yaml_model

#: The root causes of the contract (section 3). New rules may add labels.
ROOT_CAUSES: tuple[str, ...] = (
    "anti_theft_sms_forwarding",
    "mms_outbox_resend_after_sim_swap",
    "mms_retry_loop",
    "international_dialup_trap",
    "mms_sender_blocklisted",
    "mms_encrypted_port",
    "roaming_band_unsupported",
    "handset_auto_international_sms",
    "flash_sms",
    "mail_polling",
)

#: Columns a rule may filter or group on: the contract's plus derived ones.
RULE_COLUMNS: frozenset[str] = frozenset(COLUMNS) | frozenset(DERIVED_COLUMNS)

#: Values every finding can put in its summary besides the detector's measures.
FINDING_FIELDS: dict[str, str] = {
    "msisdn": "the subscriber",
    "group": "the group's key values, e.g. the recipient or server",
    "first_seen": "time of the first evidence record",
    "last_seen": "time of the last evidence record",
    "record_count": "number of evidence records",
    "total_charge": "total charge of the evidence records",
    "handset_model": "the handset model on most evidence records, where known",
    "handset_quirk": "whether that model is known for this root cause",
    "handset_change_before_s": "seconds since the subscriber last changed handset or SIM, "
    "before the first evidence record",
}


class Status(StrEnum):
    """Life cycle of a rule; a removed rule keeps its id so the id never means two things."""

    experimental = "experimental"
    stable = "stable"
    deprecated = "deprecated"
    removed = "removed"


class Category(StrEnum):
    """The case review's three groups."""

    handset = "handset"
    usage = "usage"
    interconnect = "interconnect"


class ChargeAdvice(StrEnum):
    """What to do with the disputed charge, before the operator's own policy."""

    refund = "refund"
    partial = "partial"
    no_refund = "no_refund"
    review = "review"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RecordFilter(_Strict):
    """Which records a rule looks at.

    YAML form: column names mapped to conditions (all must hold), plus optional
    ``any_of`` (at least one sub-filter holds) and ``not`` (the sub-filter fails)::

        record_type: sms
        direction: mo
        any_of:
          - app_protocol: {prefix: [POP3, IMAP]}
          - {app_protocol: {is_null: true}, server_port: [110, 995, 143, 993]}
    """

    where: dict[str, Condition] = Field(default_factory=dict)
    any_of: list[RecordFilter] = Field(default_factory=list)
    not_: RecordFilter | None = Field(default=None, alias="not")

    @model_validator(mode="before")
    @classmethod
    def _columns_at_top(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError("a record filter is a mapping of column names to conditions")
        where: dict[str, Any] = {}
        rest: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("any_of", "not", "not_"):
                rest[key] = value
            elif key in RULE_COLUMNS:
                where[key] = value
            else:
                raise ValueError(
                    f"unknown column {key!r}; a filter names contract columns "
                    f"({', '.join(sorted(RULE_COLUMNS))}) or any_of / not"
                )
        return {"where": where, **rest}

    @model_validator(mode="after")
    def _numbers_on_number_columns(self) -> RecordFilter:
        """A column of whole numbers is compared with numbers: a value that is none
        ("abc") would select no row, or every row under ``not_in``."""
        for column, cond in self.where.items():
            typ = COLUMNS.get(column)
            if typ is None or not pa.types.is_integer(typ):
                continue
            for values in (cond.equals, cond.in_, cond.not_in):
                for value in values if isinstance(values, list) else [values]:
                    if value is None:
                        continue
                    try:
                        whole_number(value)
                    except ValueError as exc:
                        message = f"{column}: {exc}; the column holds whole numbers"
                        raise ValueError(message) from None
        return self

    def columns(self) -> set[str]:
        """Every column the filter reads."""
        cols = set(self.where)
        for sub in self.any_of:
            cols |= sub.columns()
        if self.not_ is not None:
            cols |= self.not_.columns()
        return cols

    def describe(self) -> str:
        """A one-line human form."""
        parts = [f"{col} {cond.describe()}" for col, cond in self.where.items()]
        if self.any_of:
            parts.append("(" + " or ".join(f.describe() for f in self.any_of) + ")")
        if self.not_ is not None:
            parts.append(f"not ({self.not_.describe()})")
        return " and ".join(parts) or "all records"


class DetectorSpec(_Strict):
    """Which detector measures the rule's records, with its parameters."""

    kind: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in REGISTRY:
            raise ValueError(f"unknown detector {v!r}; known: {', '.join(sorted(REGISTRY))}")
        return v

    @cached_property
    def parsed(self) -> DetectorParams:
        """The parameters validated by the detector's own model."""
        return REGISTRY[self.kind].Params.model_validate(self.params)

    @model_validator(mode="after")
    def _params_valid(self) -> DetectorSpec:
        try:
            params = REGISTRY[self.kind].Params.model_validate(self.params)
        except ValidationError as exc:  # named under params, where the rule file has them
            raise ValidationError.from_exception_data(
                exc.title,
                [
                    cast(Any, {**e, "loc": ("params", *e["loc"])})
                    for e in exc.errors(include_url=False)
                ],
            ) from None
        derived = sorted(c for c in params.columns() if c in DERIVED_COLUMNS)
        if derived:
            # Detectors group and count on the canonical table; derived columns exist
            # only inside record filters.
            raise ValueError(
                f"params name derived column(s) {derived}; detectors read contract "
                "columns only (filter on a derived column under records instead)"
            )
        bad = sorted(c for c in params.columns() if c not in COLUMNS)
        if bad:
            raise ValueError(f"params name unknown column(s) {bad}")
        return self


class ConfidenceRaise(_Strict):
    """Add to the confidence when every condition on the measures holds."""

    when: dict[str, Condition]
    add: Annotated[float, Field(ge=-1, le=1)]
    because: str = ""


class Confidence(_Strict):
    """How sure a finding is: a base plus raises for supporting signals, capped at 1."""

    base: Annotated[float, Field(ge=0, le=1)]
    raises: list[ConfidenceRaise] = Field(default_factory=list)


class Charge(_Strict):
    """What the finding means for the disputed charge."""

    advice: ChargeAdvice
    text: str


class Explain(_Strict):
    """What to tell the customer, per language; templates like the summary."""

    en: str
    zh: str


class Docs(_Strict):
    """The rule's documentation, in fixed sections."""

    what_it_detects: str
    why_it_matters: str
    evidence: str
    thresholds: str
    false_positives: list[str]
    references: list[str] = Field(default_factory=list)


class Rule(_Strict):
    """One root-cause rule, as read from its YAML file."""

    id: Annotated[str, Field(pattern=r"^TD\d{3}$")]
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]+$")]
    title: str
    aliases: list[str] = Field(default_factory=list)
    status: Status
    category: Category
    root_cause: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]+$")]
    #: Raised when what the rule finds changes (records, detector, thresholds), so that a
    #: finding's stable key (see findings.finding_keys) is not carried over to a new
    #: judgement. Wording changes keep the version.
    version: Annotated[int, Field(ge=1)] = 1
    case: int | None = None
    records: RecordFilter
    detector: DetectorSpec
    thresholds: dict[str, Condition]
    confidence: Confidence
    summary: str
    cause: str
    remedy: str
    charge: Charge
    explain: Explain
    docs: Docs
    #: Does the rule follow handsets across subscribers? Then scanning subscriber-disjoint
    #: parts separately may miss its findings.
    cross_subscriber: bool = Field(default=False, validate_default=True)
    #: Columns without which the rule cannot judge a subscriber's records: when one is
    #: missing or empty on all of them, the hypothesis is "could not check", not "ruled
    #: out". An entry that is a list needs any one of its columns.
    requires: list[str | list[str]] = Field(default_factory=list)

    @field_validator("cross_subscriber")
    @classmethod
    def _cut_that_keeps_evidence_together(cls, v: bool, info: ValidationInfo) -> bool:
        """A rule runs on the buckets that hold its evidence whole: subscriber buckets
        for a detector that looks at one subscriber at a time, handset buckets for one
        that follows a handset. Marked otherwise, a bucketed scan would find other
        things than a one-piece scan, with no error."""
        detector = info.data.get("detector")
        if detector is None:  # the detector's own error says why
            return v
        follows = REGISTRY[detector.kind].FOLLOWS_HANDSET
        if v and not follows:
            raise ValueError(
                f"detector {detector.kind!r} looks at one subscriber at a time; only a "
                "detector that follows a handset across subscribers (handover) may be "
                "cross_subscriber"
            )
        if follows and not v:
            raise ValueError(
                f"detector {detector.kind!r} follows a handset across subscribers; set "
                "cross_subscriber: true"
            )
        return v

    @field_validator("requires")
    @classmethod
    def _known_columns(cls, v: list[str | list[str]]) -> list[str | list[str]]:
        for entry in v:
            for col in [entry] if isinstance(entry, str) else entry:
                if col not in RULE_COLUMNS:
                    raise ValueError(f"unknown column {col!r}")
        return v

    @model_validator(mode="after")
    def _measures_exist(self) -> Rule:
        measures = set(REGISTRY[self.detector.kind].MEASURES)
        for name in self.thresholds:
            if name not in measures:
                raise ValueError(
                    f"thresholds: {name!r} is not a measure of detector "
                    f"{self.detector.kind!r} ({', '.join(sorted(measures))})"
                )
        known = measures | set(FINDING_FIELDS)
        for i, r in enumerate(self.confidence.raises):
            for name in r.when:
                if name not in known:
                    raise ValueError(f"confidence.raises[{i}].when: unknown measure {name!r}")
        templates = {
            "summary": self.summary,
            "explain.en": self.explain.en,
            "explain.zh": self.explain.zh,
        }
        for where, template in templates.items():
            for _, field_name, _, _ in string.Formatter().parse(template):
                if field_name is None:
                    continue
                if not field_name.isidentifier() or field_name not in known:
                    raise ValueError(
                        f"{where}: {{{field_name}}} is not a measure or finding field; "
                        f"use one of {', '.join(sorted(known))}"
                    )
        return self

    def measures_used(self) -> set[str]:
        """Measures and finding fields referred to by thresholds, confidence raises, the
        summary and the explanations: what every finding of the rule carries, whether it
        comes from a scan or an investigation."""
        used = set(self.thresholds)
        for r in self.confidence.raises:
            used |= set(r.when)
        for template in (self.summary, self.explain.en, self.explain.zh):
            for _, field_name, _, _ in string.Formatter().parse(template):
                if field_name:
                    used.add(field_name)
        return used

    def columns(self) -> set[str]:
        """Columns the rule reads (derived ones included)."""
        return self.records.columns() | self.detector.parsed.columns()

    @property
    def active(self) -> bool:
        """Removed rules stay in the catalog but never run."""
        return self.status is not Status.removed


def catalog_version(rules: list[Rule]) -> str:
    """A short name for the exact catalog a result came from, stored with each case:
    ``<n> rules, <digest>``, where the digest covers every rule's id, version and what
    it judges on (records, detector, thresholds, confidence). It changes whenever any
    rule's judgement changes, even if nobody raised a version."""
    import hashlib
    import json

    parts = [
        r.model_dump(
            mode="json",
            include={"id", "version", "records", "detector", "thresholds", "confidence"},
            by_alias=True,
            exclude_none=True,
        )
        for r in sorted(rules, key=lambda r: r.id)
    ]
    digest = hashlib.blake2b(
        json.dumps(parts, sort_keys=True, default=str).encode(), digest_size=6
    ).hexdigest()
    return f"{len(rules)} rules, {digest}"


def bundled_rules_dir() -> Path:
    """The rules shipped with the package (installed wheel or source checkout)."""
    packaged = resources.files("telediag") / "_bundled" / "rules"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "rules"


def load_rule(path: str | Path) -> Rule:
    """Read and validate one rule file; a problem names the file and the field."""
    p = Path(path)
    rule = load_yaml_model(p, Rule, RuleFileError, "rule file")
    if p.stem != rule.id:
        raise RuleFileError(f"{p}: id: file is named {p.stem!r} but the rule's id is {rule.id!r}")
    return rule


def load_rules(
    directory: str | Path | None = None,
    select: list[str] | None = None,
    ignore: list[str] | None = None,
    include_removed: bool = False,
) -> list[Rule]:
    """Load every ``TD*.yaml`` rule of a directory (default: the shipped catalog).

    ``select`` and ``ignore`` take id prefixes (``TD00`` selects TD001-TD009) or names;
    aliases count as the rule's ids.
    """
    folder = Path(directory) if directory is not None else bundled_rules_dir()
    if not folder.is_dir():
        raise RuleFileError(f"{folder}: rules directory not found")
    rules = [load_rule(p) for p in sorted(folder.glob("*.yaml"))]
    seen: dict[str, Path] = {}
    for rule in rules:
        for ident in (rule.id, *rule.aliases):
            if ident in seen:
                raise RuleFileError(f"{folder}: id {ident!r} is used by two rules")
            seen[ident] = folder / f"{rule.id}.yaml"

    if not include_removed:
        rules = [r for r in rules if r.active]
    return select_rules(rules, select, ignore)


def _matches(rule: Rule, pattern: str) -> bool:
    return any(n.startswith(pattern) for n in (rule.id, rule.name, *rule.aliases))


def select_rules(
    rules: list[Rule], select: list[str] | None = None, ignore: list[str] | None = None
) -> list[Rule]:
    """The rules matching any ``select`` pattern (all when none) and no ``ignore`` pattern.

    A pattern is an id prefix (``TD00`` selects TD001-TD009), a name prefix or an alias.
    A pattern that matches no rule is a mistake (a typo would silently run nothing, or
    everything): it raises :class:`SelectionError` naming the pattern.
    """
    for option, patterns in (("select", select), ("ignore", ignore)):
        for p in patterns or []:
            if not any(_matches(r, p) for r in rules):
                known = ", ".join(r.id for r in rules) or "none"
                raise SelectionError(f"--{option} {p!r} matches no rule (rules: {known})")
    chosen = list(rules)
    if select:
        chosen = [r for r in chosen if any(_matches(r, p) for p in select)]
    if ignore:
        chosen = [r for r in chosen if not any(_matches(r, p) for p in ignore)]
    return chosen
