"""``telediag columns check`` and ``telediag columns suggest``: fit a feed to the contract.

``check`` reads an input through its column map without running the rules and says,
per canonical column, where it comes from and how much of it parses, which values fail,
which rules lack a column, and which rows would be set aside. ``suggest`` drafts a
column map from a file's header and a sample of its values.
"""

from __future__ import annotations

import contextlib
import csv
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from telediag.catalog import Rule
from telediag.colmap import ALLOWED_VALUES, Column, ColumnMap, _entries, load_column_map
from telediag.csvread import CSV_ENDINGS, CsvDialect, first_lines, is_csv, read_csv
from telediag.derived import DERIVED_COLUMNS
from telediag.errors import InputError
from telediag.normalize import Normalized, normalize
from telediag.read import Sources, read_input
from telediag.schema import COLUMNS, REQUIRED
from telediag.timeparse import UNAMBIGUOUS_FORMATS, parse_text
from telediag.yamlfile import TextKeyLoader

# ---------------------------------------------------------------------------- check


@dataclass
class ColumnCheck:
    """One canonical column of the checked input."""

    name: str
    source: str
    given: int = 0
    parsed: int = 0
    failing: list[str] = field(default_factory=list)

    @property
    def share(self) -> float | None:
        """Share of the rows with a value where the value is usable."""
        return self.parsed / self.given if self.given else None


@dataclass
class CheckReport:
    """What ``columns check`` found."""

    rows: int
    columns: list[ColumnCheck]
    rules_lacking: dict[str, list[str]]
    set_aside: dict[str, int]
    layouts: dict[str, str]
    disagreements: dict[str, int]

    def render(self) -> str:
        """Plain text for the terminal."""
        width = min(60, max([30, *(len(c.source) for c in self.columns)]))
        head = f"{'column':<16} {'source':<{width}} {'parses':>7}  failing values"
        lines = [f"{self.rows:,} rows read", "", head]
        for c in self.columns:
            share = "-" if c.share is None else f"{c.share:7.1%}"
            fails = ", ".join(repr(v) for v in c.failing)
            lines.append(f"{c.name:<16} {c.source:<{width}} {share:>7}  {fails}".rstrip())
        lines.append("")
        if self.rules_lacking:
            lines.append("Rules that cannot run for lack of a column:")
            for rule_id, cols in sorted(self.rules_lacking.items()):
                lines.append(f"  {rule_id}: no {', '.join(cols)}")
        else:
            lines.append("Every rule has the columns it reads.")
        lines.append("")
        if self.set_aside:
            lines.append("Rows that would be set aside:")
            for reason, count in sorted(self.set_aside.items(), key=lambda kv: (-kv[1], kv[0])):
                lines.append(f"  {count:,} {reason}")
        else:
            lines.append("No row would be set aside.")
        for col, count in sorted(self.disagreements.items()):
            lines.append(f"  {count:,} rows where the map's sources for {col} disagree")
        for name, layout in self.layouts.items():
            lines.append(f"  {name}: layout {layout}")
        return "\n".join(lines)


def _source_of(name: str, cmap: ColumnMap | None, present: bool) -> str:
    if cmap is not None and name in cmap.columns:
        parts = []
        for entry in _entries(cmap.columns[name]):
            parts.append(_describe(entry))
        return " else ".join(parts)
    if cmap is not None and cmap.record_kinds is not None:
        kinds = cmap.record_kinds
        if any(name in t for t in kinds.values.values()):
            return f"{kinds.source} (record kinds)"
    if cmap is not None and name in cmap.constants:
        return f"constant {cmap.constants[name]!r}"
    return name if present else "(absent)"


def _describe(entry: Column) -> str:
    if entry.constant is not None:
        return f"constant {entry.constant!r}"
    if entry.date is not None:
        return f"{entry.date} + {entry.time}"
    if entry.start is not None:
        return f"{entry.end} - {entry.start}"
    src = entry.source
    text = src if isinstance(src, str) else " | ".join(src or [])
    if entry.values is not None:
        text += " (mapped)"
    if entry.scale is not None:
        text += f" x{entry.scale:g}"
    return text


def _failing_samples(raw: pa.ChunkedArray, bad: np.ndarray, limit: int = 5) -> list[str]:
    if not bad.any():
        return []
    values = raw.filter(pa.array(bad))
    text = values.cast(pa.string()) if not pa.types.is_string(values.type) else values
    counts = Counter(v for v in text.to_pylist()[:10_000] if v is not None)
    return [v for v, _ in counts.most_common(limit)]


def check_columns(
    source: Sources,
    column_map: ColumnMap | str | Path | None,
    tz: str | None,
    rules: list[Rule],
) -> CheckReport:
    """Read and normalize ``source`` (no rules run) and judge every canonical column."""
    cmap = load_column_map(column_map) if isinstance(column_map, (str, Path)) else column_map
    raw = read_input(source, column_map=cmap, tz=tz)
    norm: Normalized = normalize(raw, tz=tz)
    n = raw.num_rows
    checks: list[ColumnCheck] = []
    absent: set[str] = set()
    # A map with layouts reads each file through the layout its header called for.
    used_layouts = sorted(
        {None if v == "(base map)" else v for v in norm.report.layouts.values()},
        key=lambda v: (v is not None, v or ""),
    )
    maps = [(layout, cmap.with_layout(layout)) for layout in used_layouts] if cmap else []
    for name in COLUMNS:
        present = name in raw.table.column_names
        check = ColumnCheck(name, _source_of(name, cmap, present))
        if len(maps) > 1:
            per = {(layout or "base map"): _source_of(name, m, present) for layout, m in maps}
            if len(set(per.values())) > 1:
                check.source = "; ".join(f"{k}: {v}" for k, v in per.items())
        elif maps:
            check.source = _source_of(name, maps[0][1], present)
        if not present or raw.table[name].null_count == n:
            absent.add(name)
        if present:
            given = _bools(raw.table[name].is_valid())
            if name in ALLOWED_VALUES:
                known = pc.is_in(norm.table[name], pa.array(ALLOWED_VALUES[name]))
                ok = given & _bools(known)
            else:
                ok = given & _bools(norm.table[name].is_valid())
                negative = f"negative {name}"
                if negative in norm.report.set_aside:
                    ok &= ~(norm.reason == _reason_code(negative))
            check.given = int(given.sum())
            check.parsed = int(ok.sum())
            check.failing = _failing_samples(raw.table[name], given & ~ok)
        checks.append(check)
    lacking: dict[str, list[str]] = {}
    for rule in rules:
        needed: set[str] = set()
        for col in rule.columns():
            needed.update(DERIVED_COLUMNS[col][0] if col in DERIVED_COLUMNS else (col,))
        missing = sorted(c for c in needed & set(COLUMNS) if c in absent)
        if missing:
            lacking[rule.id] = missing
    return CheckReport(
        rows=n,
        columns=checks,
        rules_lacking=lacking,
        set_aside=dict(norm.report.set_aside),
        layouts=dict(norm.report.layouts),
        disagreements=dict(norm.report.disagreements),
    )


def _reason_code(reason: str) -> int:
    from telediag.normalize import REASONS

    return REASONS.index(reason) + 1


def _bools(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


# -------------------------------------------------------------------------- suggest

#: Names seen in operator, vendor, 3GPP and research exports, by canonical column.
#: Compared lower-cased with everything but letters and digits removed.
KNOWN_NAMES: dict[str, tuple[str, ...]] = {
    "record_id": ("recordid", "recordsequencenumber", "cdrid", "id", "seq", "sequenceno",
                  "serialno", "eventid"),
    "record_type": ("recordtype", "type", "calltype", "eventtype", "servicetype", "service",
                    "basicservice", "teleservice", "kind", "cdrtype"),
    "direction": ("direction", "calldirection", "dir", "inout", "mocmtc", "flow"),
    "start_time": ("starttime", "recordopeningtime", "seizuretime", "answertime",
                   "eventtimestamp", "originationtime", "calldate", "datetime", "timestamp",
                   "date", "time", "eventtime", "startdatetime", "begintime"),
    "duration_s": ("duration", "durations", "callduration", "calldurationsec", "dur", "length",
                   "durationseconds", "seconds"),
    "msisdn": ("msisdn", "servedmsisdn", "subscriber", "subscribernumber", "user", "userid",
               "anumber", "callingparty", "phonenumber", "servednumber", "number"),
    "imsi": ("imsi", "servedimsi"),
    "imei": ("imei", "servedimei", "imeisv", "servedimeisv", "deviceid"),
    "peer_number": ("peernumber", "othernumber", "otherparty", "bnumber", "calledparty",
                    "callednumber", "callingnumber", "destination", "destinationnumber",
                    "recipient", "recipientaddress", "originatoraddress", "contact",
                    "counterpart", "otherpartynumber"),
    "status": ("status", "result", "causeforrecclosing", "callstatus"),
    "status_code": ("statuscode", "causecode", "resultcode"),
    "charge": ("charge", "chargeamount", "amount", "fee", "cost", "price"),
    "visited_mcc": ("visitedmcc", "servingmcc", "mcc", "roamingmcc"),
    "sms_length": ("smslength", "messagelength", "textlength", "length"),
    "sms_class": ("smsclass", "messageclass", "dcsclass"),
    "mms_message_id": ("mmsmessageid", "messageid"),
    "mms_event": ("mmsevent",),
    "mms_size": ("mmssize", "messagesize"),
    "apn": ("apn", "accesspointnameni", "accesspointname"),
    "bytes_up": ("bytesup", "uplink", "datavolumegprsuplink", "uplinkvolume", "upbytes",
                 "datavolumeuplink"),
    "bytes_down": ("bytesdown", "downlink", "datavolumegprsdownlink", "downlinkvolume",
                   "downbytes", "datavolumedownlink"),
    "server_ip": ("serverip", "serveraddress", "destinationip", "remoteip"),
    "server_port": ("serverport", "destinationport", "remoteport", "dstport"),
    "app_protocol": ("appprotocol", "protocol", "application"),
    "host": ("host", "hostname", "domain"),
}  # fmt: skip

#: Direction words and record kinds seen in exports (lower-cased): value -> columns.
VOCABULARY: dict[str, dict[str, str]] = {
    "in": {"direction": "mt"},
    "out": {"direction": "mo"},
    "incoming": {"direction": "mt"},
    "outgoing": {"direction": "mo"},
    "missed": {"direction": "mt"},
    "received": {"direction": "mt"},
    "sent": {"direction": "mo"},
    "inbound": {"direction": "mt"},
    "outbound": {"direction": "mo"},
    "mo": {"direction": "mo"},
    "mt": {"direction": "mt"},
    "originating": {"direction": "mo"},
    "terminating": {"direction": "mt"},
    "moc": {"record_type": "voice", "direction": "mo"},
    "mtc": {"record_type": "voice", "direction": "mt"},
    "sms-mo": {"record_type": "sms", "direction": "mo"},
    "sms-mt": {"record_type": "sms", "direction": "mt"},
    "smsmo": {"record_type": "sms", "direction": "mo"},
    "smsmt": {"record_type": "sms", "direction": "mt"},
    "mocallrecord": {"record_type": "voice", "direction": "mo"},
    "mtcallrecord": {"record_type": "voice", "direction": "mt"},
    "mosmsrecord": {"record_type": "sms", "direction": "mo"},
    "mtsmsrecord": {"record_type": "sms", "direction": "mt"},
    "sgsnpdprecord": {"record_type": "data", "direction": "mo"},
    "ggsnpdprecord": {"record_type": "data", "direction": "mo"},
    "pgwrecord": {"record_type": "data", "direction": "mo"},
    "sgwrecord": {"record_type": "data", "direction": "mo"},
    "voice": {"record_type": "voice"},
    "call": {"record_type": "voice"},
    "calls": {"record_type": "voice"},
    "sms": {"record_type": "sms"},
    "text": {"record_type": "sms"},
    "mms": {"record_type": "mms"},
    "data": {"record_type": "data"},
    "gprs": {"record_type": "data"},
    "internet": {"record_type": "data"},
    "csd": {"record_type": "csd"},
    "ts11": {"record_type": "voice"},
    "ts21": {"record_type": "sms", "direction": "mt"},
    "ts22": {"record_type": "sms", "direction": "mo"},
}

#: Time layouts tried on the samples beyond the unambiguous ones; day/month order is
#: decided from the values where a field exceeds 12, and marked as a guess otherwise.
DAY_FIRST = ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d-%m-%Y %H:%M:%S")
MONTH_FIRST = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M:%S %p")
EPOCHS = ("epoch_ms", "epoch_s")


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _last_lines(path: Path, count: int) -> list[bytes]:
    """The last lines of an uncompressed file (none for compressed ones)."""
    if not path.name.lower().endswith(CSV_ENDINGS):
        return []
    with path.open("rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - 65536))
        tail = f.read()
    return tail.rstrip(b"\r\n").split(b"\n")[-count:]


def _fields(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:  # a stray carriage return or NUL: the fields as plainly split
        return line.split(delimiter)


def _sniff(path: Path) -> tuple[CsvDialect, list[str]]:
    """The dialect of a CSV file (delimiter, header, banner and trailer lines) guessed
    from its first and last lines, and notes on what was guessed."""
    raw_head, raw_tail = first_lines(path, 30), _last_lines(path, 5)
    notes: list[str] = []
    encoding = _encoding(raw_head + raw_tail)
    if encoding != "utf-8":
        notes.append(f"encoding {encoding} (the sample is not UTF-8)")
    head = [b.decode(encoding, errors="replace").rstrip("\r") for b in raw_head]
    tail = [b.decode(encoding, errors="replace").rstrip("\r") for b in raw_tail]
    delimiter = ","
    with contextlib.suppress(csv.Error):
        sample = "\n".join(head[1:] or head)
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;|\t").delimiter
    if delimiter != ",":
        notes.append(f"delimiter {delimiter!r}")
    widths = Counter(len(_fields(line, delimiter)) for line in head if line)
    width = widths.most_common(1)[0][0] if widths else 0
    skip = 0
    while skip < len(head) and len(_fields(head[skip], delimiter)) != width:
        skip += 1
    footer = 0
    while footer < len(tail) and len(_fields(tail[-1 - footer], delimiter)) != width:
        footer += 1
    if skip:
        notes.append(f"{skip} line(s) before the records")
    if footer:
        notes.append(f"{footer} trailer line(s)")
    first = _fields(head[skip], delimiter) if skip < len(head) else []
    # A header names columns: no field of it looks like a number or a time.
    header = not any(re.fullmatch(r"[+\d.:/ -]+", f.strip()) for f in first)
    names: list[str] = []
    if not header:
        names = [f"col{i + 1}" for i in range(len(first))]
        notes.append("no header line: columns named col1, col2...")
    dialect = CsvDialect(
        delimiter=delimiter,
        header=header,
        names=names,
        skip_rows=skip,
        skip_footer=footer,
        encoding=encoding,
    )
    return dialect, notes


#: Encodings tried on a sample that is not UTF-8: exports from Chinese systems first
#: (GB18030 includes GBK), then Latin-1, which reads any bytes.
FALLBACK_ENCODINGS = ("gb18030", "latin-1")


def _encoding(lines: list[bytes]) -> str:
    """The first encoding in which every sampled line is text."""
    for encoding in ("utf-8", *FALLBACK_ENCODINGS):
        try:
            for line in lines:
                line.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    return "latin-1"


def _unreadable(table: pa.Table) -> list[str]:
    """Columns no contract column could take a value from: lists and records (several
    values a row), and bytes that are not text."""
    out = []
    for name in table.column_names:
        column = table[name]
        if pa.types.is_nested(column.type):
            out.append(name)
            continue
        try:
            column.cast(pa.string())
        except (pa.ArrowException, ValueError):
            out.append(name)
    return out


def _sample(source: Path, dialect: CsvDialect, rows: int = 2000) -> pa.Table:
    if is_csv(source):
        table = read_csv(source, dialect, lambda names: None)
    else:
        import pyarrow.parquet as pq

        try:
            table = pq.ParquetFile(source).read_row_group(0)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{source}: cannot read: {exc}") from None
    return table.slice(0, rows)


#: Epoch numbers are taken only when every sampled value falls in these years.
PLAUSIBLE_YEARS = (1990, 2100)


def _reads(values: pa.Array, fmt: str) -> np.ndarray:
    """Which sampled values ``fmt`` reads to an instant (epochs: in a plausible year)."""
    parsed = parse_text(values, None, [fmt])
    ok = parsed.times.is_valid()
    if parsed.why is not None:
        ok = pc.and_(ok, pa.array(parsed.why == 0))
    if fmt in EPOCHS:
        years = pc.year(parsed.times)
        low, high = PLAUSIBLE_YEARS
        ok = pc.and_(ok, pc.and_(pc.greater_equal(years, low), pc.less(years, high)))
    return np.asarray(pc.fill_null(ok, False), dtype=bool)


def _cover(values: pa.Array, formats: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The formats (in order) that each read a value no earlier one read, and which
    values are read by any of them."""
    chosen: list[str] = []
    read = np.zeros(len(values), dtype=bool)
    for fmt in formats:
        if read.all():
            break
        got = _reads(values, fmt) & ~read
        if got.any():
            chosen.append(fmt)
            read |= got
    return chosen, read


def _time_formats(values: pa.Array) -> tuple[list[str], str | None]:
    """Formats that read at least 90% of the sample, and a note on what was guessed.

    Day-first and month-first layouts are never mixed: the order that reads more of the
    values wins (``03/25/2014`` can only be month-first); when both read the same values
    the order is a guess, and the note says so. Epoch numbers count only where they give
    plausible years, so their unit is decided by their size."""
    text = pc.utf8_trim_whitespace(values.cast(pa.string())).drop_null()
    text = text.filter(pc.not_equal(text, ""))
    if len(text) == 0:
        return [], None
    chosen, read = _cover(text, UNAMBIGUOUS_FORMATS)
    note = None
    left = text.filter(pa.array(~read))
    if len(left):
        day, day_read = _cover(left, DAY_FIRST)
        month, month_read = _cover(left, MONTH_FIRST)
        if day and month_read.sum() <= day_read.sum():
            chosen += day
            read[np.flatnonzero(~read)[day_read]] = True
            if month and month_read.sum() == day_read.sum():
                note = "day-first is a guess: no value had a day above 12; use %m/%d if month-first"
        elif month:
            chosen += month
            read[np.flatnonzero(~read)[month_read]] = True
            if day and day_read.sum() == month_read.sum():
                note = "month-first is a guess: no value had a day above 12"
    left = text.filter(pa.array(~read))
    if len(left):
        epochs, epoch_read = _cover(left, EPOCHS)
        if epochs:
            chosen += epochs
            read[np.flatnonzero(~read)[epoch_read]] = True
            low, high = PLAUSIBLE_YEARS
            note = f"numbers read as {' and '.join(epochs)}: the unit giving years {low}-{high}"
    if read.sum() < 0.9 * len(text):
        return [], None
    return chosen, note


def _date_only(formats: Sequence[str]) -> bool:
    return bool(formats) and all(
        f not in EPOCHS and not any(d in f for d in ("%H", "%I")) for f in formats
    )


#: GSM basic services (TS 22.003/22.002) as export codes: teleservices and data bearers.
BASIC_SERVICES: dict[str, str] = {
    "11": "voice", "21": "sms", "22": "sms", "TS11": "voice", "TS21": "sms", "TS22": "sms",
    **{f"BS{n}": "csd" for n in (21, 22, 23, 24, 25, 26, 31, 32, 33, 34)},
}  # fmt: skip
DATE_ONLY = ("%Y%m%d", "%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y")
TIME_ONLY = ("%H%M%S", "%H:%M:%S")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _all_read(values: pa.Array, fmt: str) -> bool:
    parsed = parse_text(values, None, [fmt])
    return len(values) > 0 and parsed.times.null_count == 0


def _guess_from_values(
    table: pa.Table, used: set[str], sources: dict[str, str], written: dict[str, str]
) -> None:
    """Columns whose names say nothing (a file without a header): judge their values
    (dates and times of day were paired before, by ``_date_and_time``)."""
    phones: list[tuple[int, str]] = []
    for src in table.column_names:
        if src in used:
            continue
        values = pc.utf8_trim_whitespace(table[src].combine_chunks().cast(pa.string()))
        values = values.drop_null()
        sample = [v for v in values.to_pylist()[:500] if v]
        if not sample:
            continue
        distinct = set(sample)
        if distinct <= set(BASIC_SERVICES) and "record_type" not in sources:
            mapping = {k: BASIC_SERVICES[k] for k in sorted(distinct)}
            sources["record_type"] = src
            entries = ", ".join(f"{_q(k)}: {v}" for k, v in mapping.items())
            written["record_type"] = (
                f"{{source: {_q(src)}, values: {{{entries}}}}}  # guess: GSM basic services"
            )
        elif distinct <= {"1", "2"} and "direction" not in sources:
            sources["direction"] = src
            written["direction"] = (
                f'{{source: {_q(src)}, values: {{"1": mo, "2": mt}}}}  # guess: 1 out, 2 in'
            )
        elif all(re.fullmatch(r"\d{14,16}", v) for v in sample):
            # IMEIs carry a Luhn check digit (or none: 14 digits); IMSIs do not.
            imei = all(len(v) != 15 or _luhn(v) for v in sample)
            name = "imei" if imei else "imsi"
            if name not in sources:
                sources[name], written[name] = src, f"{_q(src)}  # guess: {len(sample[0])} digits"
        elif all(re.fullmatch(r"\+?\d{3,15}", v) for v in sample) and (
            sum(len(v) >= 7 for v in sample) > len(sample) / 2
        ):
            phones.append((len(distinct), src))
        if src in sources.values():
            used.add(src)
    phones.sort()
    for canonical, (_, src) in zip(("msisdn", "peer_number"), phones, strict=False):
        if canonical not in sources:
            sources[canonical] = src
            why = "the fewest distinct numbers" if canonical == "msisdn" else "other numbers"
            written[canonical] = f"{_q(src)}  # guess: {why}"
    used.update(sources.values())


def _date_and_time(
    table: pa.Table,
    dated: str | None,
    used: set[str],
    sources: dict[str, str],
    written: dict[str, str],
) -> str | None:
    """Pair a column of dates with a column of times of day as ``{date, time}``.

    Returns the combined format, or None (then a date-only column, if any, is used with
    a guess marker: every record at midnight)."""
    dates: list[tuple[str, str]] = []
    clocks: list[tuple[str, str]] = []
    for src in table.column_names:
        if src in used:
            continue
        text = pc.utf8_trim_whitespace(table[src].combine_chunks().cast(pa.string()))
        text = text.drop_null().slice(0, 500)
        if len(text) == 0:
            continue
        date = next((f for f in DATE_ONLY if _all_read(text, f)), None)
        clock = None if date else next((f for f in TIME_ONLY if _all_read(text, f)), None)
        if date:
            dates.append((src, date))
        elif clock:
            clocks.append((src, clock))
    dates.sort(key=lambda d: d[0] != dated)  # the column named like a start time first
    clocks.sort(key=lambda c: "time" not in _key(c[0]))
    if dates and clocks:
        (dsrc, dfmt), (tsrc, tfmt) = dates[0], clocks[0]
        sources["start_time"] = dsrc
        written["start_time"] = f"{{date: {_q(dsrc)}, time: {_q(tsrc)}}}  # guess"
        used.update((dsrc, tsrc))
        return f"{dfmt} {tfmt}"
    if dated is not None:
        sources["start_time"] = dated
        written["start_time"] = f"{_q(dated)}  # guess: dates only, no time of day found"
        used.add(dated)
    return None


def _value_map(values: list[str], column: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        target = VOCABULARY.get(v.strip().lower(), {}).get(column)
        if target is not None:
            out[v] = target
    return out


def suggest_map(source: str | Path) -> str:
    """A draft column map (YAML text with comments) for one input file."""
    path = Path(source)
    if path.is_dir():
        raise InputError(f"{path}: a directory; name one of its files")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    notes: list[str] = []
    dialect = CsvDialect()
    if is_csv(path):
        dialect, notes = _sniff(path)
    table = _sample(path, dialect)
    nested = _unreadable(table)
    table = table.drop_columns(nested)
    names = table.column_names
    by_key: dict[str, str] = {}
    for n in names:
        by_key.setdefault(_key(n), n)
    lines = [
        "# Draft column map written by 'telediag columns suggest'. Lines marked 'guess'",
        "# were inferred from a sample: check them, then run 'telediag columns check'.",
        "version: 2",
        f"name: {_q(path.stem)}",
    ]
    if dialect != CsvDialect():
        lines.append(f"csv:  # guess: {'; '.join(notes)}")
        lines.append(f"  delimiter: {_q(dialect.delimiter)}")
        if not dialect.header:
            lines.append("  header: false")
            lines.append(f"  names: [{', '.join(_q(n) for n in dialect.names)}]")
        if dialect.skip_rows:
            lines.append(f"  skip_rows: {dialect.skip_rows}")
        if dialect.skip_footer:
            lines.append(f"  skip_footer: {dialect.skip_footer}")
        if dialect.encoding != "utf-8":
            lines.append(f"  encoding: {dialect.encoding}")
    used: set[str] = set()
    sources: dict[str, str] = {}
    written: dict[str, str] = {}
    dated: str | None = None  # a start_time candidate holding dates without times
    for canonical, known in KNOWN_NAMES.items():
        for k in known:
            if k in by_key and by_key[k] not in used:
                src = by_key[k]
                if canonical == "start_time":
                    found = _time_formats(table[src].combine_chunks())[0]
                    if _date_only(found):
                        dated = dated or src
                    if not found or _date_only(found):
                        continue
                used.add(src)
                sources[canonical] = src
                written[canonical] = _q(src)
                break
    combined = None
    if "start_time" not in sources:
        combined = _date_and_time(table, dated, used, sources, written)
    if not dialect.header or len(sources) < 2:
        _guess_from_values(table, used, sources, written)
    # Value columns: the vocabulary tells direction and record type.
    kinds_source = None
    for src in names:
        arr = table[src]
        if not (pa.types.is_string(arr.type) or pa.types.is_integer(arr.type)):
            continue
        distinct = [str(v) for v in pc.unique(arr.drop_null()).to_pylist()][:50]
        if not distinct or len(distinct) > 40:
            continue
        both = _value_map(distinct, "record_type"), _value_map(distinct, "direction")
        if both[0] and both[1] and len(both[0]) >= len(distinct) / 2:
            kinds_source = (src, distinct)
            break
    body: list[str] = []
    kinds_lines: list[str] = []
    if kinds_source is not None:
        src, distinct = kinds_source
        for col in ("record_type", "direction"):
            sources.pop(col, None)
            written.pop(col, None)
        used.add(src)
        kinds_lines = [
            "record_kinds:  # guess: from the values seen",
            f"  source: {_q(src)}",
            "  values:",
        ]
        for v in distinct:
            targets = VOCABULARY.get(v.strip().lower())
            if targets:
                inner = ", ".join(f"{k}: {t}" for k, t in targets.items())
                kinds_lines.append(f"    {_q(v)}: {{{inner}}}")
    else:
        for col in ("direction", "record_type"):
            if col in sources:
                src = sources[col]
                distinct = [str(v) for v in pc.unique(table[src].drop_null()).to_pylist()][:50]
                mapping = _value_map(distinct, col)
                if any(k != v for k, v in mapping.items()):
                    entries = ", ".join(f"{_q(k)}: {v}" for k, v in mapping.items())
                    written[col] = (
                        f"{{source: {_q(src)}, values: {{{entries}}}}}  # guess: from the values"
                    )
    formats: list[str] = []
    note: str | None = None
    if combined is not None:
        formats, note = [combined], "a date column and a time column read together"
    elif "start_time" in sources and sources["start_time"] == dated:
        formats, note = _time_formats(table[dated].combine_chunks())
        note = "dates without a time of day: every record at local midnight" + (
            f"; {note}" if note else ""
        )
    elif "start_time" in sources:
        src = sources["start_time"]
        formats, note = _time_formats(table[src].combine_chunks())
    if formats:
        comment = f"  # guess: {note}" if note else "  # recognised in the sample"
        body.append(f"times:{comment}")
        body.append(f"  formats: [{', '.join(_q(f) for f in formats)}]")
    body.append("columns:")
    for canonical, text in written.items():
        if sources.get(canonical) != canonical or text != _q(canonical):
            body.append(f"  {canonical}: {text}")
    if body[-1] == "columns:":
        body[-1] = "columns: {}"
    from_kinds = {"record_type", "direction"} if kinds_source is not None else set()
    missing = [c for c in REQUIRED if c not in sources and c not in names and c not in from_kinds]
    unmatched = [n for n in names if n not in used and _key(n) not in {_key(c) for c in COLUMNS}]
    tail: list[str] = []
    if missing:
        tail.append(f"# Not found (required): {', '.join(missing)}. Name their source columns")
        tail.append("# under columns:, or give a constant (constants: {direction: mo}).")
    if unmatched:
        tail.append(f"# Columns not used: {', '.join(_q(n) for n in unmatched)}")
    if nested:
        listed = ", ".join(_q(n) for n in nested)
        tail.append(f"# Columns of lists, records or non-text bytes (not read): {listed}")
    text = "\n".join([*lines, *body, *kinds_lines, *tail]) + "\n"
    ColumnMap.model_validate(yaml.load(text, Loader=TextKeyLoader))  # the draft loads as it is
    return text


def _q(value: str) -> str:
    """A YAML scalar in double quotes (safe for any text: characters YAML does not allow
    as they are, and line breaks, are written as escapes)."""
    out = []
    for ch in value:
        code = ord(ch)
        if ch in '\\"':
            out.append("\\" + ch)
        elif 0x20 <= code <= 0x7E or (0xA0 <= code <= 0xFFFD and code not in _YAML_BREAKS):
            if 0xD800 <= code <= 0xDFFF:
                out.append(f"\\u{code:04x}")
            else:
                out.append(ch)
        elif code > 0xFFFF:
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}")
    return '"' + "".join(out) + '"'


#: Characters YAML reads as line breaks inside a scalar.
_YAML_BREAKS = frozenset((0x2028, 0x2029))
