"""Scanning a month bucket by bucket: the unit of work of every large scan.

A month is cut into buckets in two ways, and each rule runs on the cut that keeps its
evidence together:

- *subscriber buckets*, rows hashed by the trimmed msisdn, for every rule that looks at
  one subscriber at a time (all but the handset-keyed ones). They also give the input
  accounting: every row read falls in exactly one subscriber bucket, so rows read, used
  and set aside, and the rejects, are counted there and only there.
- *handset buckets*, rows hashed by the IMEI, for rules marked ``cross_subscriber``
  (they follow a handset from one subscriber to the next). Rows without an IMEI are of
  no use to them and are left out.

Hashing handsets separately avoids grouping subscribers linked through shared handsets:
on real data such links chain into a few giant groups. On a cluster both cuts are one
shuffle. A handset bucket need only hold the handsets its rules may find something on:
the subscriber buckets scanned with ``seed_rules`` tell them, together (for TD004, the
handsets with a failed MMS submit and MMS submits from two subscribers), and the
out-of-core scan, which marks the handsets with a failed MMS submit as it spills
(:class:`HandsetMarks`), scans only their rows (:mod:`telediag.outofcore`).

The interface a cluster engine calls, per bucket::

    subscriber_rules, handset_rules = split_rules(rules)
    part = scan_bucket(table, subscriber_rules, settings, key="subscriber")
    ... and, for handset buckets, scan_bucket(table, handset_rules, settings, key="handset")
    result = combine(all_parts)

``table`` holds contract columns after the column map and before normalization, with
every record id filled in (:func:`with_record_ids`): a generated id names the row's place
in its input file, which a bucket no longer knows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from telediag.catalog import RecordFilter, Rule
from telediag.chunks import text_bytes
from telediag.conform import as_text, conform
from telediag.context import ScanSettings
from telediag.detectors import REGISTRY
from telediag.devices import plausible_imei
from telediag.engine import EngineResult, RuleError, run_catalog, seed_tallies
from telediag.filters import integer_values, judged_as_read, possible_mask
from telediag.findings import empty_evidence, empty_findings, order_evidence, order_findings
from telediag.normalize import REASONS, InputReport, explicit_ids, normalize, order_rejects
from telediag.read import RawInput
from telediag.sort import sort_records

Key = Literal["subscriber", "handset"]

#: Column each kind of bucket is hashed on.
KEY_COLUMN: dict[str, str] = {"subscriber": "msisdn", "handset": "imei"}

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@dataclass
class BucketResult:
    """What one bucket (or a combination of buckets) gave."""

    findings: pd.DataFrame
    evidence: pd.DataFrame
    report: InputReport
    errors: list[RuleError] = field(default_factory=list)
    rejects: pa.Table = field(default_factory=lambda: pa.table({}))
    #: A subscriber bucket scanned with ``seed_rules`` (:func:`scan_bucket`): the numbers
    #: of the rows it set aside, in the table as given,
    aside: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: and what its rows tell of the handsets those rules may find something on, rule
    #: by rule (:func:`telediag.engine.seed_tallies`; None: any handset; empty: no rows).
    seeds: list[pa.Table] | None = None


def split_rules(rules: Sequence[Rule]) -> tuple[list[Rule], list[Rule]]:
    """(subscriber-keyed rules, handset-keyed rules), each in catalog order."""
    return (
        [r for r in rules if not r.cross_subscriber],
        [r for r in rules if r.cross_subscriber],
    )


def _mix(h: np.ndarray) -> np.ndarray:
    """A 64-bit finalizer (MurmurHash3's): every input bit moves every output bit, so
    the low bits taken by a modulo are well spread."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return np.asarray(h ^ (h >> np.uint64(33)))


def _hash_strings(values: pa.Array) -> np.ndarray:
    """FNV-1a over the UTF-8 bytes of each (non-null) string, then :func:`_mix`.

    Vectorized over the values: one numpy step per byte position, and subscriber numbers
    and IMEIs are short.
    """
    values = values.cast(pa.large_string())
    n = len(values)
    h = np.full(n, _FNV_OFFSET, dtype=np.uint64)
    if n == 0:
        return h
    buffers = values.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[values.offset : values.offset + n + 1]
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)
        if buffers[2] is not None
        else np.zeros(0, dtype=np.uint8)
    )
    starts = offsets[:-1]
    lengths = offsets[1:] - starts
    by_length = np.argsort(-lengths, kind="stable")
    # How many values are longer than k, for every k: the first that many of by_length.
    longer = np.searchsorted(-lengths[by_length], -np.arange(int(lengths.max())), side="left")
    for k, count in enumerate(longer):
        idx = by_length[:count]
        h[idx] = (h[idx] ^ data[starts[idx] + k].astype(np.uint64)) * _FNV_PRIME
    return _mix(h)


def _fixed_width_hashes(keys: pa.Array) -> np.ndarray | None:
    """:func:`key_hash` of keys that all have one width and no blank to trim (record
    ids, subscriber numbers, IMEIs as systems write them), straight from their bytes:
    one strided step per byte position, with no hash table of the keys. None when the
    keys are not so (nulls, other widths, a first or last byte that is not a printable
    ASCII character)."""
    n = len(keys)
    if n == 0 or keys.null_count:
        return None
    offsets, data = text_bytes(keys)
    width = data.shape[0] // n
    if width == 0 or width * n != data.shape[0]:
        return None
    if not bool((np.diff(offsets) == width).all()):
        return None
    rows = data.reshape(n, width)
    for edge in (rows[:, 0], rows[:, width - 1]):  # nothing a trim would take away
        if not bool(((edge > 0x20) & (edge < 0x7F)).all()):
            return None
    h = np.full(n, _FNV_OFFSET, dtype=np.uint64)
    for k in range(width):
        h ^= rows[:, k]
        h *= _FNV_PRIME
    return _mix(h)


def key_hash(keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A stable 64-bit hash of each key, as text with surrounding blanks trimmed.

    It depends on the key's value alone (not on row order, file split or anything else
    in the input), the same on every machine. Null keys hash to 0.
    """
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks() if keys.num_chunks != 1 else keys.chunk(0)
    if pa.types.is_dictionary(keys.type):
        keys = keys.cast(keys.type.value_type)
    if not pa.types.is_string(keys.type):
        keys = keys.cast(pa.string())
    fixed = _fixed_width_hashes(keys)
    if fixed is not None:
        return fixed
    encoded = pc.dictionary_encode(keys)
    distinct = _hash_strings(pc.utf8_trim_whitespace(encoded.dictionary))
    indices = encoded.indices
    if indices.null_count == 0:
        return np.asarray(distinct[np.asarray(indices.to_numpy(zero_copy_only=False))])
    if distinct.size == 0:  # every key null
        return np.zeros(len(keys), dtype=np.uint64)
    codes = np.asarray(pc.fill_null(indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return np.where(codes >= 0, distinct[np.maximum(codes, 0)], np.uint64(0))


def bucket_of(keys: pa.Array | pa.ChunkedArray, buckets: int) -> np.ndarray:
    """Bucket number (0..buckets-1) of each key: :func:`key_hash` modulo ``buckets``.

    Null keys fall in bucket 0 (for subscribers they are set aside there; handset buckets
    leave them out, see :func:`handset_rows`).
    """
    if buckets < 1:
        raise ValueError("buckets must be at least 1")
    return (key_hash(keys) % np.uint64(buckets)).astype(np.int32)


def _imei_values(table: pa.Table, where: str) -> tuple[np.ndarray, pa.Array, np.ndarray] | None:
    """The IMEI column as normalization judges it, per distinct value: each row's code
    (-1: null), the distinct values trimmed, and which of them name a handset (a
    plausible IMEI). None without an IMEI column."""
    if "imei" not in table.column_names:
        return None
    imei = table["imei"]
    if pa.types.is_dictionary(imei.type):
        imei = imei.cast(imei.type.value_type)
    imei = as_text("imei", where, imei)
    if isinstance(imei, pa.ChunkedArray):
        imei = imei.combine_chunks() if imei.num_chunks != 1 else imei.chunk(0)
    # Judged once per distinct IMEI (a handset has many records).
    encoded = pc.dictionary_encode(imei)
    text = pc.utf8_trim_whitespace(encoded.dictionary)
    named = np.asarray(
        pc.fill_null(plausible_imei(text), False).to_numpy(zero_copy_only=False), dtype=bool
    )
    codes = np.asarray(
        pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64
    )
    return codes, text, named


def handset_rows(
    table: pa.Table, where: str = "<table>", among: KeySet | None = None
) -> np.ndarray:
    """Rows that handset buckets need: every row whose IMEI names a handset, whatever
    its kind. A handset rule reads all the records of a handset (a new SIM's arrival on
    it is its first record there), and nothing without one. With ``among``, only the
    rows of those handsets (IMEIs as normalization gives them).

    The IMEI is judged as normalization judges it (its text, trimmed, a plausible IMEI):
    a blank or a placeholder such as ``000000000000000`` is no handset there, so rows
    carrying one would only swell a single handset bucket with rows no rule reads.
    ``where`` names the input in the message about an IMEI column that is not text.
    """
    found = _imei_values(table, where)
    if found is None:
        return np.zeros(table.num_rows, dtype=bool)
    codes, text, keep = found
    if among is not None:
        keep = keep & among.contains(text)
    return np.asarray(np.append(keep, False)[codes])


def handset_keys(table: pa.Table, where: str = "<table>") -> pa.Array:
    """The distinct handsets (IMEIs, as normalization gives them) that rows of ``table``
    name."""
    found = _imei_values(table, where)
    if found is None:
        return pa.array([], pa.string())
    codes, text, named = found
    used = np.zeros(len(text), dtype=bool)
    used[codes[codes >= 0]] = True
    return text.filter(pa.array(named & used))


class KeySet:
    """A set of keys (IMEIs as normalization gives them) that many tables are looked up
    in: the keys' hashes are sorted once, a value is looked for by its hash, then its
    text is compared with the few keys of that hash. Arrow's ``is_in`` builds a hash
    table of the whole set on every call, which costs buckets x keys over a month's
    buckets. :meth:`may_contain` looks up every row of a column, by number."""

    #: Bits of the bitmap of the keys' numbers (2**20 of them: 1 MB, a few percent of
    #: false hits for tens of thousands of keys).
    BITS = 20

    def __init__(self, keys: pa.Array) -> None:
        keys = pc.unique(keys.cast(pa.string()).drop_null())
        hashes = key_hash(keys)
        order = np.argsort(hashes, kind="stable")
        self.hashes = hashes[order]
        self.keys = keys.take(pa.array(order))
        # The keys as numbers, when they all read as one (IMEIs do): see may_contain.
        self.numbers: np.ndarray | None = None
        read = _as_numbers(self.keys)
        if read is not None:
            self.numbers = np.unique(read[0])
            self.number_bitmap = np.zeros(1 << self.BITS, dtype=bool)
            self.number_bitmap[self._number_slots(self.numbers)] = True

    def _number_slots(self, numbers: np.ndarray) -> np.ndarray:
        """Bitmap slots of numbers: the top bits of a multiplicative hash."""
        mixed = numbers.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        return np.asarray(mixed >> np.uint64(64 - self.BITS), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.keys)

    def may_contain(self, values: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
        """A superset of :meth:`contains` over many rows, at a fraction of its cost: the
        values that read as the number of a key (``0352...`` reads as ``352...``; a
        null as none). None when some value does not read as a whole number (a blank
        around it, a letter): then only :meth:`contains` can tell."""
        if self.numbers is None:
            return None
        read = _as_numbers(values)
        if read is None:
            return None
        numbers, valid = read
        hit = np.zeros(numbers.shape[0], dtype=bool)
        if self.numbers.size == 0:
            return hit
        rows = self.number_bitmap[self._number_slots(numbers)]
        if valid is not None:
            rows &= valid
        rows = np.flatnonzero(rows)
        at = np.minimum(np.searchsorted(self.numbers, numbers[rows]), self.numbers.size - 1)
        hit[rows] = self.numbers[at] == numbers[rows]
        return hit

    def contains(self, values: pa.Array) -> np.ndarray:
        """Which ``values`` (text; surrounding blanks do not count) are keys of the set;
        null is none."""
        n = len(values)
        hit = np.zeros(n, dtype=bool)
        if n == 0 or len(self.keys) == 0:
            return hit
        h = key_hash(values)
        lo = np.searchsorted(self.hashes, h, side="left")
        hi = np.searchsorted(self.hashes, h, side="right")
        rows = np.flatnonzero(hi > lo)
        lo, hi = lo[rows], hi[rows]
        if rows.size == 0:
            return hit
        # Every key of each hash found (two keys may share a hash): their text decides.
        lengths = hi - lo
        starts = np.repeat(lo - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        same_hash = self.keys.take(pa.array(starts + np.arange(int(lengths.sum()))))
        text = pc.utf8_trim_whitespace(values.take(pa.array(rows)))
        exact = pc.fill_null(pc.is_in(text, value_set=same_hash), False)
        hit[rows] = np.asarray(exact.to_numpy(zero_copy_only=False), dtype=bool)
        return hit


def _as_numbers(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Values read as whole numbers (anything in null slots) and which are not null
    (None: all), or None when some value is no whole number that fits 64 bits."""
    try:
        numbers = pc.cast(values, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return integer_values(numbers)


class HandsetMarks:
    """The handsets whose rows the cross-subscriber ``rules`` may need, learnt from the
    rows as read, batch by batch (:meth:`add`), before any bucket is scanned: those
    that carry one of a rule's records passing its detector's
    :data:`~telediag.detectors.base.Detector.SEED_RECORDS` (for TD004, a failed MMS
    submit), judged by :func:`telediag.filters.possible_mask`. A superset of the
    handsets the rules can make a candidate of; every handset (:meth:`keys` None) when
    some rule's detector names none."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        needs = [REGISTRY[rule.detector.kind].SEED_RECORDS for rule in rules]
        # Per rule: the detector's filter, the rule's, and the columns judging the rule's
        # reads: the labels it names, and the IMEI (never no column: a table of none has
        # no rows either).
        self.filters: list[tuple[RecordFilter, RecordFilter, set[str]]] | None = None
        if all(need is not None for need in needs):
            self.filters = [
                (
                    RecordFilter.model_validate(dict(need)),
                    rule.records,
                    judged_as_read(rule.records) | {"imei"},
                )
                for need, rule in zip(needs, rules, strict=True)
                if need is not None
            ]
        self._found: list[pa.Array] = []

    def add(self, table: pa.Table, where: str = "<table>") -> None:
        """Learn the marked handsets of a batch (contract columns, before normalization)."""
        if self.filters is None or table.num_rows == 0 or "imei" not in table.column_names:
            return
        marked = np.zeros(table.num_rows, dtype=bool)
        for need, records, read in self.filters:
            # The detector's condition first (few rows pass it), the rule's on those.
            rows = np.flatnonzero(possible_mask(need, table) & ~marked)
            if rows.size:
                subset = table.select([c for c in table.column_names if c in read])
                marked[rows[possible_mask(records, subset.take(pa.array(rows)))]] = True
        rows = np.flatnonzero(marked)
        if rows.size:
            self._found.append(handset_keys(table.select(["imei"]).take(pa.array(rows)), where))

    def keys(self) -> KeySet | None:
        """The handsets marked so far (None: every handset)."""
        if self.filters is None:
            return None
        found = pa.concat_arrays(self._found) if self._found else pa.array([], pa.string())
        return KeySet(found)


def with_record_ids(raw: RawInput) -> pa.Table:
    """The raw table with every record id filled in (generated where the input had none),
    so that its rows can be moved into buckets and keep their ids."""
    table = raw.table
    n = table.num_rows
    rows = np.arange(n, dtype=np.int64)
    if "record_id" not in table.column_names:
        ids: pa.Array | pa.ChunkedArray = raw.generated_ids(rows)
        return table.append_column("record_id", ids)
    # A blank id is no id (as normalization reads it): it gets a generated one here, so
    # that a bucket does not name the row after itself.
    text = explicit_ids(table["record_id"])
    if text.null_count == 0 and table["record_id"].type == pa.string():
        return table
    missing = np.flatnonzero(np.asarray(text.is_null().to_numpy(zero_copy_only=False)))
    if missing.size:
        generated = raw.generated_ids(missing)
        full = np.asarray(text.to_pylist(), dtype=object)
        full[missing] = generated.to_pylist()
        text = pa.chunked_array([pa.array(full, type=pa.string())])
    i = table.column_names.index("record_id")
    return table.set_column(i, "record_id", text)


def _empty_report() -> InputReport:
    return InputReport(files=[], rows_read=0, rows_used=0, set_aside={})


def scan_bucket(
    table: pa.Table,
    rules: Sequence[Rule],
    settings: ScanSettings,
    *,
    key: Key,
    workers: int = 1,
    seed_rules: Sequence[Rule] | None = None,
) -> BucketResult:
    """Normalize, sort and run ``rules`` on one bucket.

    ``key`` says how the bucket was cut. A subscriber bucket reports its rows (read, used,
    set aside) and its rejects; a handset bucket holds copies of rows already counted in
    some subscriber bucket, so it reports nothing and its set-aside rows are only skipped.
    ``workers`` threads serve normalization, sorting and the rules.

    With ``seed_rules`` (the handset rules, for a subscriber bucket), the result also
    says which of its rows were set aside and what they tell of the handsets those
    rules may find something on (:func:`telediag.engine.seed_tallies`): what a scan
    needs to hand only the handset rows that matter to the handset buckets.
    """
    if key not in KEY_COLUMN:
        raise ValueError(f"key must be 'subscriber' or 'handset', not {key!r}")
    # Columns as a local read conforms them (Spark hands over what it read: a column of
    # float subscriber numbers, say); conforming conformed columns changes nothing.
    table = conform(table, "bucket", keep_others=True)
    raw = RawInput(
        table=table,
        stems=["bucket"],
        offsets=np.zeros(1, dtype=np.int64),
        time_formats=settings.time_formats,
    )
    # Repeated record ids are checked over the whole input by the caller, not here.
    normalized = normalize(raw, tz=settings.tz, threads=workers, check_ids=False)
    records = sort_records(normalized, threads=workers)
    if len(records) == 0:  # nothing to look at (an empty bucket): the catalog finds nothing
        outcome = EngineResult(empty_findings(), empty_evidence(), [], {})
    else:
        outcome = run_catalog(records, list(rules), settings, workers=workers)
    if key == "subscriber":
        report, rejects = normalized.report, normalized.rejects()
    else:
        report, rejects = _empty_report(), pa.table({})
    result = BucketResult(
        findings=outcome.findings,
        evidence=outcome.evidence,
        report=report,
        errors=outcome.errors,
        rejects=rejects,
    )
    if seed_rules is not None and key == "subscriber":
        result.aside = np.flatnonzero(normalized.reason).astype(np.int64)
        failed: list[RuleError] = []
        result.seeds = seed_tallies(records, seed_rules, settings, failed) if len(records) else []
        result.errors.extend(failed)
    return result


def sum_reports(reports: Iterable[InputReport]) -> InputReport:
    """Reports of disjoint parts added up (reasons in the order of :data:`REASONS`)."""
    files: list[str] = []
    read = used = 0
    aside: dict[str, int] = {}
    layouts: dict[str, str] = {}
    disagree: dict[str, int] = {}
    for r in reports:
        files.extend(f for f in r.files if f not in files)
        read += r.rows_read
        used += r.rows_used
        for reason, count in r.set_aside.items():
            aside[reason] = aside.get(reason, 0) + count
        layouts.update(r.layouts)
        for column, count in r.disagreements.items():
            disagree[column] = disagree.get(column, 0) + count
    rank = {reason: i for i, reason in enumerate(REASONS)}
    ordered = dict(sorted(aside.items(), key=lambda kv: rank.get(kv[0], len(rank))))
    # Warnings are about the input as a whole (repeated ids): a part's are not summed.
    return InputReport(
        files=files,
        rows_read=read,
        rows_used=used,
        set_aside=ordered,
        layouts=layouts,
        disagreements=dict(sorted(disagree.items())),
    )


def sort_findings(
    findings: pd.DataFrame, evidence: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The one order of findings and evidence every scan gives, however it was split."""
    if len(findings) == 0:
        return empty_findings(), empty_evidence()
    findings = order_findings(findings)
    evidence = order_evidence(evidence)
    return findings, evidence


def combine(results: Iterable[BucketResult]) -> BucketResult:
    """All buckets' results as one, in a fixed order whatever order they come in.

    A rule that failed in any bucket is reported once (its first error by bucket
    order) and all of its findings are dropped, as in a one-piece scan where the
    rule fails as a whole; the other rules' findings stand. Rejects come out ordered
    by record id.
    """
    parts = list(results)
    errors: dict[str, RuleError] = {}
    for part in parts:
        for e in part.errors:
            errors.setdefault(e.rule_id, e)
    found = [p.findings for p in parts if len(p.findings)]
    shown = [p.evidence for p in parts if len(p.evidence)]
    findings = pd.concat(found, ignore_index=True) if found else empty_findings()
    evidence = pd.concat(shown, ignore_index=True) if shown else empty_evidence()
    if errors and len(findings):
        findings = findings[~findings["rule_id"].isin(list(errors))]
        evidence = evidence[evidence["finding_id"].isin(set(findings["finding_id"]))]
    findings, evidence = sort_findings(findings, evidence)
    rejected = [p.rejects for p in parts if p.rejects.num_columns and p.rejects.num_rows]
    if rejected:
        rejects = order_rejects(pa.concat_tables(rejected, promote_options="permissive"))
    else:
        # No rows: the widest empty table (a bucket with no input knows fewer columns).
        widest = max((p.rejects for p in parts), key=lambda t: t.num_columns, default=None)
        rejects = order_rejects(widest) if widest is not None else pa.table({})
    return BucketResult(
        findings=findings,
        evidence=evidence,
        report=sum_reports(p.report for p in parts),
        errors=sorted(errors.values(), key=lambda e: e.rule_id),
        rejects=rejects,
    )


def split_table(table: pa.Table, buckets: int, key: Key) -> list[pa.Table]:
    """One table cut into its ``buckets`` buckets (handset cuts keep only the rows with
    an IMEI). Bucket ``b`` is ``result[b]``; rows keep their order within a bucket."""
    column = KEY_COLUMN[key]
    if key == "handset":
        keep = handset_rows(table)
        table = table.filter(pa.array(keep))
    which = (
        bucket_of(table[column], buckets)
        if column in table.column_names
        else np.zeros(table.num_rows, dtype=np.int32)
    )
    order = np.argsort(which, kind="stable")
    bounds = np.searchsorted(which[order], np.arange(buckets + 1))
    ordered = table.take(pa.array(order))
    return [ordered.slice(bounds[b], bounds[b + 1] - bounds[b]) for b in range(buckets)]


def scan_in_buckets(
    raw: RawInput,
    rules: Sequence[Rule],
    settings: ScanSettings,
    buckets: int,
    *,
    workers: int = 1,
) -> BucketResult:
    """A table already in memory, scanned bucket by bucket (each cut in turn).

    Gives the same findings and evidence as a one-piece scan; used to check that, and
    as the reference the out-of-core and cluster paths follow.
    """
    table = with_record_ids(raw)
    by_subscriber, by_handset = split_rules(rules)
    parts = [
        scan_bucket(t, by_subscriber, settings, key="subscriber", workers=workers)
        for t in split_table(table, buckets, "subscriber")
    ]
    if by_handset:
        parts += [
            scan_bucket(t, by_handset, settings, key="handset", workers=workers)
            for t in split_table(table, buckets, "handset")
            if t.num_rows
        ]
    result = combine(parts)
    result.report.files = list(raw.files)
    return result
