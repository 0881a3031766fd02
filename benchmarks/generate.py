"""Generate a seeded synthetic billing month in the telediag record contract.

    python benchmarks/generate.py --records 10000000 --out benchmarks/data/month-10m.parquet \\
        --seed 7 [--subscribers N] [--parts K] [--cases-per-million 20] [--csv-3gpp CSV]

The month is July 2008 on a Chinese GSM/GPRS network (Asia/Shanghai, home MCC 460), one
row per voice call, data call (csd), SMS, MMS event or packet-data session, in the 25
columns of section 1 of the contract with exactly its Arrow types. Everything is drawn
with numpy from one seed, so the same arguments give the same bytes.

What is in it:

* Background traffic from about ``n_records / 100`` subscribers with heavy-tailed activity:
  voice calls to a personal list of contacts, SMS mostly as conversations, service SMS from
  10086 and SP short codes, MMS submits and deliveries with their WAP-gateway fetch
  records, WAP and internet sessions (HTTP, HTTPS, DNS, QQ), a little circuit-switched
  dial-up to 17266, a few handset changes and handed-down handsets, a few trips abroad.
* Near-misses that a good rule must leave alone: chats in bursts with one friend, one
  notice sent to hundreds of recipients, a device texting a fixed-length status every hour,
  app keep-alives every few minutes on HTTPS 443, mail checked by hand a few times a day,
  MMS fetches that fail once or twice and then work, MMS rejected by a full memory from
  every sender, international voice calls, a few texts to a friend abroad, flash SMS
  received from service numbers, HTTPS on port 9202, tri-band phones in North America.
* Injected true cases of the ten root causes of the contract (section 3), about
  ``cases_per_million`` per root cause per million records and at least three each, each
  on its own subscriber, in the variants an investigator meets (an MMS re-sent under a
  SIM that arrives weeks after the failure, a sender blocked part-way through a
  subscription, a reporting handset switched off on some days).
* The ground truth, one row per case *and per near-miss* (root cause, msisdn, variant,
  and ``expect``: ``finding`` for a case, ``none`` for a near-miss of that root cause), is
  written beside the Parquet file as ``<out>.truth.csv`` and kept in the table's schema
  metadata (see :func:`truth_of`); ``benchmarks/run.py`` reports recall and false alarms
  per variant from it.

Python API: :func:`generate_month` returns a ``pyarrow.Table``; :func:`write_month` writes
it (one file, or a directory of part files) with its truth file.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from telediag.catalog import ROOT_CAUSES
from telediag.schema import COLUMNS

Array = NDArray[Any]

ROOT: Final = Path(__file__).resolve().parents[1]
DEVICES_CSV: Final = ROOT / "telediag" / "data" / "devices.csv"
TACDB_CSV: Final = ROOT / "telediag" / "data" / "tacdb.csv"

#: The contract's record table (shared/spec/cdr-schema.md, section 1), in its order.
#: The contract's table (telediag.schema) and root causes (telediag.catalog), reused so the
#: generator cannot drift from what the scanner reads.
SCHEMA: Final = pa.schema(list(COLUMNS.items()))
TRUTH_METADATA_KEY: Final = b"telediag.benchmark.truth"
TRUTH_COLUMNS: Final = (
    "root_cause", "msisdn", "first_seen", "last_seen", "records", "note", "variant", "expect"
)  # fmt: skip
#: ``expect`` of a truth row: an injected case must be found; a near-miss must not be.
EXPECT_FINDING: Final = "finding"
EXPECT_NONE: Final = "none"

# ---------------------------------------------------------------------------------------
# Calendar: July 2008 in Asia/Shanghai (UTC+8 all year, no daylight saving).

TZ: Final = ZoneInfo("Asia/Shanghai")
MONTH_START_MS: Final = int(datetime(2008, 7, 1, tzinfo=TZ).timestamp()) * 1000
N_DAYS: Final = 31
DAY_MS: Final = 86_400_000
HOUR_S: Final = 3600
MONTH_END_MS: Final = MONTH_START_MS + N_DAYS * DAY_MS

#: Relative activity by local hour: quiet at night, peaks late morning and evening.
DIURNAL: Final = np.array(
    [0.9, 0.45, 0.25, 0.18, 0.18, 0.3, 0.9, 2.2, 3.8, 5.0, 5.6, 5.6,
     5.2, 4.9, 5.0, 5.2, 5.4, 5.6, 5.9, 6.3, 6.7, 6.5, 5.0, 2.7]
)  # fmt: skip
DIURNAL_P: Final = DIURNAL / DIURNAL.sum()

# ---------------------------------------------------------------------------------------
# Vocabularies of the low-cardinality string columns; rows hold int8 codes, -1 is null.

RECORD_TYPES: Final = ("voice", "csd", "sms", "mms", "data")
VOICE, CSD, SMS, MMS, DATA = range(5)
RECORD_ID_PREFIX: Final = ("V", "C", "S", "M", "G")
DIRECTIONS: Final = ("mo", "mt")
MO, MT = 0, 1
STATUSES: Final = ("ok", "failed", "rejected", "deferred", "expired")
OK, FAILED, REJECTED, DEFERRED, EXPIRED = range(5)
MMS_EVENTS: Final = ("submit", "deliver", "retrieve")
SUBMIT, DELIVER, RETRIEVE = range(3)
APNS: Final = ("cmnet", "cmwap")
CMNET, CMWAP = 0, 1
APPS: Final = ("HTTP", "HTTPS", "DNS", "WAP", "MMS", "POP3", "POP3_DNS", "IMAP", "SMTP", "QQ")
A_HTTP, A_HTTPS, A_DNS, A_WAP, A_MMS, A_POP3, A_POP3_DNS, A_IMAP, A_SMTP, A_QQ = range(10)
#: Peer number prefixes; the rest of the number is digits of a fixed width per row.
PEER_PREFIXES: Final = ("", "+", "00", "0")
P_NONE, P_PLUS, P_00, P_NATIONAL = range(4)

HOME_MCC: Final = 460
WAP_GATEWAY: Final = "10.0.0.172"

# Servers (address and host name) and host names used by data sessions.
SERVERS: list[str] = [WAP_GATEWAY]
HOSTS: list[str] = []


def _server(ip: str) -> int:
    if ip not in SERVERS:
        SERVERS.append(ip)
    return SERVERS.index(ip)


def _host(name: str) -> int:
    if name not in HOSTS:
        HOSTS.append(name)
    return HOSTS.index(name)


@dataclass(frozen=True)
class Service:
    """A kind of packet-data session and its typical size."""

    weight: float
    apn: int
    server: int
    port: int
    app: int
    host: int
    up: float  # median bytes up
    down: float  # median bytes down
    seconds: float  # median duration


def _services() -> list[Service]:
    gw = _server(WAP_GATEWAY)
    out = [
        Service(14, CMWAP, gw, 80, A_WAP, _host("wap.monternet.com"), 900, 9000, 60),
        Service(6, CMWAP, gw, 9201, A_WAP, -1, 700, 6000, 50),
        Service(8, CMWAP, gw, 80, A_HTTP, _host("wap.sina.cn"), 1200, 22000, 90),
        Service(7, CMWAP, gw, 80, A_HTTP, _host("3g.qq.com"), 1100, 18000, 80),
        Service(5, CMWAP, gw, 80, A_HTTP, _host("wap.baidu.com"), 800, 12000, 40),
        Service(4, CMWAP, gw, 80, A_HTTP, _host("wap.sohu.com"), 900, 15000, 70),
        Service(8, CMNET, _server("202.108.33.60"), 80, A_HTTP, _host("www.sina.com.cn"),
                3000, 90000, 120),
        Service(6, CMNET, _server("61.135.169.125"), 80, A_HTTP, _host("www.baidu.com"),
                1500, 30000, 45),
        Service(4, CMNET, _server("119.147.15.13"), 80, A_HTTP, _host("www.qq.com"),
                2500, 70000, 100),
        Service(3, CMNET, _server("220.181.111.85"), 80, A_HTTP, _host("www.163.com"),
                2500, 80000, 110),
        Service(2, CMNET, _server("211.136.28.40"), 80, A_HTTP, _host("www.10086.cn"),
                1200, 25000, 60),
        Service(4, CMNET, _server("203.208.46.146"), 443, A_HTTPS, -1, 2000, 12000, 40),
        Service(2, CMNET, _server("123.125.114.144"), 443, A_HTTPS, -1, 1800, 9000, 35),
        Service(7, CMNET, _server("211.137.130.3"), 53, A_DNS, -1, 70, 160, 0.3),
        Service(3, CMNET, _server("211.137.130.19"), 53, A_DNS, -1, 70, 160, 0.3),
        Service(8, CMNET, _server("58.60.10.87"), 8000, A_QQ, -1, 900, 2500, 300),
        Service(2, CMNET, _server("60.28.177.202"), 8080, A_HTTP, -1, 1500, 40000, 90),
    ]  # fmt: skip
    return out


SERVICES: Final = _services()

#: Mail servers: (address, host) of POP3/IMAP servers that handsets are set up with.
MAIL_SERVERS: Final = [
    (_server(ip), _host(host))
    for ip, host in [
        ("220.181.12.101", "pop.163.com"),
        ("220.181.12.102", "pop.126.com"),
        ("119.147.74.33", "pop.qq.com"),
        ("202.108.3.242", "pop.sina.com"),
        ("221.176.9.168", "pop.139.com"),
        ("221.176.9.170", "imap.139.com"),
        ("61.135.132.99", "pop.sohu.com"),
        ("211.150.80.22", "mail.hnsoft.cn"),
        ("218.28.30.17", "mail.zz.ha.cn"),
        ("222.137.6.44", "mail.lyzx.com.cn"),
        ("125.46.41.12", "pop.ha.chinamobile.com"),
        ("66.196.97.250", "pop.mail.yahoo.com"),
    ]
]
#: App servers that handsets keep a connection to with periodic keep-alives.
KEEPALIVE_SERVERS: Final = [
    _server(ip) for ip in ["203.208.46.147", "65.54.239.80", "64.4.45.59", "124.115.5.214"]
]
DNS_SERVERS: Final = [_server("211.137.130.3"), _server("211.137.130.19")]
HTTPS_9202_SERVERS: Final = [_server("203.208.46.1"), _server("202.96.134.133")]

# Short codes and service numbers.
SP_CODES: Final = [10658000 + i for i in (0, 1, 8, 12, 88, 99, 166, 188, 200, 321, 555, 600)]
MMSC_NOTICE: Final = 10658155  # texts the subscriber when an MMS cannot be delivered
NEWSPAPER: Final = 10658000
SERVICE_SENDERS: Final = [10086, MMSC_NOTICE, 1065795555, 95555, 12580, 1065902]
DIALUP_DOMESTIC: Final = [17266, 17201, 16300]
#: Foreign modem numbers that dialers and grey-market presets call (country code + rest).
DIALUP_FOREIGN: Final = [43664684000, 43664684001, 4690123456, 88213100020, 239991234]
TRAP_NUMBER: Final = 43664684000

CM_PREFIXES: Final = np.array([134, 135, 136, 137, 138, 139, 150, 151, 158, 159])
CM_PREFIX_P: Final = np.array([0.08, 0.12, 0.1, 0.1, 0.2, 0.2, 0.05, 0.05, 0.05, 0.05])
OTHER_MOBILE_PREFIXES: Final = np.array([130, 131, 132, 156, 133, 153, 189])
AREA_CODES: Final = np.array([371, 379, 373, 372, 375, 10, 21, 20])

#: Foreign destinations of background trips: MCC, weight.
TRIP_DESTINATIONS: Final = [
    (454, 30), (455, 6), (466, 6), (525, 6), (520, 5), (234, 5), (262, 5), (208, 4),
    (505, 3), (302, 4), (310, 6),
]  # fmt: skip
NORTH_AMERICA: Final = (302, 310)
#: Country codes (with an example national-number length) for international peers.
FOREIGN_CODES: Final = [(1, 10), (852, 8), (886, 9), (44, 10), (81, 10), (61, 9), (65, 8),
                        (49, 11), (33, 9), (46, 9), (82, 10)]  # fmt: skip


# ---------------------------------------------------------------------------------------
# Handset models.


@dataclass(frozen=True)
class DeviceCatalog:
    """TACs by model (from devices.csv) and unknown TACs for the rest of the market."""

    tacs: Array  # int64, known TACs
    models: list[str]
    bands: list[str]
    share: Array  # float64, background share per TAC
    unknown_tacs: Array  # int64, TACs not in devices.csv

    def tacs_of(self, *models: str) -> Array:
        """All TACs of the given model names."""
        hit = np.array([m in models for m in self.models])
        return self.tacs[hit]

    def band_ok_in_north_america(self) -> Array:
        """Known TACs whose bands include 850 or 1900 MHz."""
        ok = np.array([("1900" in b.split("/") or "850" in b.split("/")) for b in self.bands])
        return self.tacs[ok & (self.share > 0)]


def load_devices() -> DeviceCatalog:
    """Read the handset catalogue shipped with telediag."""
    lines = [ln for ln in DEVICES_CSV.read_text().splitlines() if not ln.startswith("#")]
    rows = list(csv.DictReader(lines))
    tacs = np.array([int(r["tac"]) for r in rows], dtype=np.int64)
    known = set(tacs.tolist())
    unknown: list[int] = []
    with TACDB_CSV.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader)
        next(reader)
        for rec in reader:
            if rec and rec[0].isdigit() and len(rec[0]) == 8 and int(rec[0]) not in known:
                unknown.append(int(rec[0]))
    return DeviceCatalog(
        tacs=tacs,
        models=[r["model"] for r in rows],
        bands=[r["bands"] for r in rows],
        share=np.array([float(r["background_share"]) for r in rows]),
        unknown_tacs=np.array(sorted(unknown), dtype=np.int64),
    )


# ---------------------------------------------------------------------------------------
# Rows under construction: one dict of numpy arrays per block, codes instead of strings.

#: Internal columns, their dtype and the value meaning "null" (or the default).
COLUMNS: Final[dict[str, tuple[type, Any]]] = {
    "t": (np.int64, 0),  # start time, ms since the epoch (UTC)
    "rtype": (np.int8, 0),
    "dirn": (np.int8, MO),
    "sub": (np.int32, 0),  # subscriber index
    "hs": (np.int32, -1),  # handset index; -1: the subscriber's handset at t; -2: null
    "pfx": (np.int8, P_NONE),  # peer number: prefix code, digits, width (0: null)
    "pnum": (np.int64, 0),
    "pwid": (np.int8, 0),
    "status": (np.int8, OK),
    "scode": (np.int32, -1),
    "dur": (np.float64, np.nan),
    "charge": (np.float64, 0.0),
    "mcc": (np.int32, -1),
    "smslen": (np.int32, -1),
    "smscls": (np.int32, -1),
    "mmsid": (np.int64, -1),
    "mmsev": (np.int8, -1),
    "mmssize": (np.int64, -1),
    "apn": (np.int8, -1),
    "bup": (np.int64, -1),
    "bdown": (np.int64, -1),
    "srv": (np.int32, -1),
    "port": (np.int32, -1),
    "app": (np.int8, -1),
    "host": (np.int32, -1),
    "bg": (np.bool_, True),  # background row (later moves may touch it); cases are False
}

Block = dict[str, Array]


#: Columns every block has; the others are stored only where a generator sets them.
CORE_COLUMNS: Final = ("t", "rtype", "dirn", "sub", "bg")


def block(n: int, **cols: Any) -> Block:
    """A block of ``n`` rows; scalars broadcast; unset columns are left out (default)."""
    unknown = set(cols) - set(COLUMNS)
    if unknown:
        raise KeyError(f"unknown internal columns: {sorted(unknown)}")
    out: Block = {}
    for name, (dtype, default) in COLUMNS.items():
        if name not in cols and name not in CORE_COLUMNS:
            continue
        arr = np.asarray(cols.get(name, default))
        if arr.ndim == 0:
            out[name] = np.full(n, arr, dtype=dtype)
        else:
            if arr.shape != (n,):
                raise ValueError(f"column {name}: {arr.shape} rows, expected {n}")
            out[name] = arr.astype(dtype, copy=False)
    return out


def column(b: Block, name: str) -> Array:
    """A block's column, made (with its default) and kept if the block had none."""
    if name not in b:
        dtype, default = COLUMNS[name]
        b[name] = np.full(b["t"].shape[0], default, dtype=dtype)
    return b[name]


def concat(blocks: Sequence[Block]) -> Block:
    """Stack blocks row-wise; a column any block has is filled with defaults elsewhere."""
    names = [name for name in COLUMNS if any(name in b for b in blocks)]
    out: Block = {}
    for name in names:
        dtype, default = COLUMNS[name]
        out[name] = np.concatenate(
            [b[name] if name in b else np.full(b["t"].shape[0], default, dtype) for b in blocks]
        )
    return out


def assemble(parts: Sequence[Block]) -> Block:
    """All rows of all parts in time order, every column present.

    Parts are mostly in time order already, so the stable sort merges a few runs, and each
    part is scattered to its output positions in ascending order (cache-friendly), with
    no intermediate concatenation of whole columns.
    """
    sizes = [int(p["t"].shape[0]) for p in parts]
    n = sum(sizes)
    order = np.argsort(np.concatenate([p["t"] for p in parts]), kind="stable")
    pos = np.empty(n, np.int64)
    pos[order] = np.arange(n)
    del order
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    out: Block = {}
    for name, (dtype, default) in COLUMNS.items():
        if name == "bg":
            continue
        complete = all(name in p for p in parts)
        arr: Array = np.empty(n, dtype) if complete else np.full(n, default, dtype)
        for i, p in enumerate(parts):
            if name in p:
                arr[pos[bounds[i] : bounds[i + 1]]] = p[name]
        out[name] = arr
    return out


def digits_width(x: Array) -> Array:
    """Number of decimal digits of positive integers."""
    return np.floor(np.log10(np.maximum(x, 1).astype(np.float64))).astype(np.int8) + 1


# ---------------------------------------------------------------------------------------
# Random helpers.


def mix64(x: Array) -> Array:
    """A fixed 64-bit mixing function (splitmix64 finaliser) for stable pseudo-random ids."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def lognormal_int(rng: np.random.Generator, median: Any, sigma: float, n: int, lo: int,
                  hi: int) -> Array:  # fmt: skip
    """Integers from a log-normal with the given median, clipped to [lo, hi]."""
    x = rng.lognormal(np.log(median), sigma, n)
    return np.clip(np.round(x), lo, hi).astype(np.int64)


def diurnal_seconds(rng: np.random.Generator, n: int) -> Array:
    """Seconds since local midnight, following the daily activity curve."""
    hour = rng.choice(24, size=n, p=DIURNAL_P)
    return hour.astype(np.int64) * HOUR_S + rng.integers(0, HOUR_S, n)


def at(day: Any, seconds: Any) -> Any:
    """UTC milliseconds of a local day of the month (0-based) and second of that day."""
    return (
        MONTH_START_MS
        + np.asarray(day, dtype=np.int64) * DAY_MS
        + np.round(np.asarray(seconds, dtype=np.float64) * 1000).astype(np.int64)
    )


def month_times(rng: np.random.Generator, n: int) -> Array:
    """``n`` times over the month following the daily curve, in ascending order.

    Background blocks are made in time order so that the final sort of the month only
    merges a few long runs (fast, and the gathers that follow read memory in order).
    """
    return np.sort(at(rng.integers(0, N_DAYS, n), diurnal_seconds(rng, n)))


def local_day(t_ms: Array) -> Array:
    """0-based local day of the month of UTC milliseconds."""
    return (t_ms - MONTH_START_MS) // DAY_MS


def sms_lengths(rng: np.random.Generator, n: int) -> Array:
    """Lengths of person-written SMS: many short, many around the 70-character limit."""
    kind = rng.random(n)
    short = rng.integers(1, 25, n)
    mid = rng.integers(15, 71, n)
    long = rng.integers(60, 161, n)
    return np.where(kind < 0.4, short, np.where(kind < 0.85, mid, long)).astype(np.int32)


# ---------------------------------------------------------------------------------------
# Population: subscribers and handsets.


@dataclass
class Handsets:
    """Handsets: TAC and IMEI digits, appended as needed."""

    tac: Array = field(default_factory=lambda: np.zeros(0, np.int64))

    def add(self, tacs: Array) -> Array:
        """Append handsets with these TACs; return their indices."""
        start = self.tac.shape[0]
        self.tac = np.concatenate([self.tac, np.asarray(tacs, dtype=np.int64)])
        return np.arange(start, self.tac.shape[0], dtype=np.int32)

    def imei(self, salt: int) -> Array:
        """15-digit IMEIs: TAC, a serial unique per handset, Luhn check digit."""
        idx = np.arange(self.tac.shape[0], dtype=np.int64)
        serial = (idx * 7_919 + salt) % 1_000_000  # 7919 is coprime to 10**6: no repeats
        body = self.tac * 1_000_000 + serial
        total = np.zeros_like(body)
        x = body.copy()
        for pos in range(14):  # from the right; every second digit from the right doubled
            d = x % 10
            x //= 10
            if pos % 2 == 0:
                d = d * 2
                d = d // 10 + d % 10
            total += d
        check = (10 - total % 10) % 10
        return body * 10 + check


@dataclass
class Population:
    """Subscribers: numbers, SIM, handsets over time, activity by record type."""

    msisdn: Array  # int64
    imsi: Array  # int64
    weight: dict[int, Array]  # per record type, relative activity per subscriber
    data_plan: Array  # bool: packet data in a bundle, charged 0
    two_way: Array  # bool: incoming calls charged
    voice_rate: Array  # float: yuan per minute, outgoing
    h1: Array  # int32 handset until t_change
    h2: Array  # int32 handset from t_change (-1: none)
    t_change: Array  # int64 ms
    trip_mcc: Array  # int32, -1 when not travelling
    trip_from: Array  # int64 ms
    trip_to: Array  # int64 ms

    @property
    def size(self) -> int:
        return int(self.msisdn.shape[0])


def unique_numbers(rng: np.random.Generator, n: int, make: Callable[[int], Array]) -> Array:
    """``n`` distinct numbers from a generator of candidate numbers."""
    out = np.unique(make(n + n // 10 + 16))
    while out.shape[0] < n:
        out = np.unique(np.concatenate([out, make(n)]))
    return rng.permutation(out)[:n]


def make_population(
    rng: np.random.Generator, n_subs: int, devices: DeviceCatalog, handsets: Handsets
) -> Population:
    """Subscribers with heavy-tailed activity and a handset each."""

    def msisdns(k: int) -> Array:
        pre = rng.choice(CM_PREFIXES, size=k, p=CM_PREFIX_P).astype(np.int64)
        return pre * 10**8 + rng.integers(0, 10**8, k)

    def imsis(k: int) -> Array:
        mnc = rng.choice(np.array([0, 2, 7]), size=k, p=[0.8, 0.15, 0.05]).astype(np.int64)
        return (46000 + mnc) * 10**10 + rng.integers(0, 10**10, k)

    msisdn = unique_numbers(rng, n_subs, msisdns)
    imsi = unique_numbers(rng, n_subs, imsis)
    activity = rng.lognormal(0.0, 1.0, n_subs)
    users = {  # share of subscribers who use the record type at all
        VOICE: 1.0,
        CSD: 0.02,
        SMS: 0.95,
        MMS: 0.35,
        DATA: 0.55,
    }
    weight = {
        k: activity * rng.lognormal(0.0, 0.8, n_subs) * (rng.random(n_subs) < share)
        for k, share in users.items()
    }
    h1 = handsets.add(background_tacs(rng, n_subs, devices))
    return Population(
        msisdn=msisdn,
        imsi=imsi,
        weight=weight,
        data_plan=rng.random(n_subs) < 0.4,
        two_way=rng.random(n_subs) < 0.35,
        voice_rate=rng.choice(np.array([0.4, 0.6, 0.25, 0.19]), n_subs, p=[0.4, 0.3, 0.2, 0.1]),
        h1=h1,
        h2=np.full(n_subs, -1, np.int32),
        t_change=np.full(n_subs, np.iinfo(np.int64).max, np.int64),
        trip_mcc=np.full(n_subs, -1, np.int32),
        trip_from=np.zeros(n_subs, np.int64),
        trip_to=np.zeros(n_subs, np.int64),
    )


def background_tacs(rng: np.random.Generator, n: int, devices: DeviceCatalog) -> Array:
    """TACs of handsets in use: the catalogue by its shares, plus 12 % other models."""
    p = devices.share / devices.share.sum()
    known = rng.choice(devices.tacs, size=n, p=p)
    other = rng.choice(devices.unknown_tacs, size=n)
    # Unbranded domestic handsets: TACs in the 86 range that no database lists.
    domestic = 86_000_000 + rng.integers(100_000, 999_999, n)
    kind = rng.random(n)
    return np.where(kind < 0.88, known, np.where(kind < 0.95, other, domestic))


# ---------------------------------------------------------------------------------------
# Generation context.


@dataclass
class Truth:
    """One injected case (expect "finding") or near-miss of a root cause (expect "none")."""

    root_cause: str
    sub: int
    rows: Block
    note: str
    variant: str = "documented"
    expect: str = EXPECT_FINDING


@dataclass
class Context:
    """State shared by the generators of one month."""

    rng: np.random.Generator
    pop: Population
    handsets: Handsets
    devices: DeviceCatalog
    pool: Array  # subscribers not yet given a role
    blocks: list[Block] = field(default_factory=list)
    truth: list[Truth] = field(default_factory=list)
    cutoff_day: dict[int, int] = field(default_factory=dict)  # sub -> first day without rows
    blackout: dict[int, tuple[int, int]] = field(default_factory=dict)  # sub -> [day, day)
    flash_from: dict[int, int] = field(default_factory=dict)  # sub -> ms
    blocked_sender: dict[int, int] = field(default_factory=dict)  # sub -> sender number
    mms_seq: int = 0

    def take(self, k: int) -> Array:
        """``k`` subscribers for a role; each subscriber gets at most one role."""
        if k > self.pool.shape[0]:
            raise ValueError("not enough subscribers for the requested cases; add subscribers")
        out, self.pool = self.pool[:k], self.pool[k:]
        return out

    def add(self, b: Block) -> Block:
        self.blocks.append(b)
        return b

    def rows(self) -> int:
        return sum(int(b["t"].shape[0]) for b in self.blocks)

    def new_handset(self, tacs: Array | Sequence[int]) -> Array:
        return self.handsets.add(np.asarray(tacs, dtype=np.int64))

    def set_handset(self, sub: int, tacs: Array | Sequence[int]) -> int:
        """Give the subscriber a new main handset with one of these TACs."""
        h = int(self.new_handset([int(self.rng.choice(np.asarray(tacs)))])[0])
        self.pop.h1[sub] = h
        return h

    def mms_ids(self, t_ms: Array) -> Array:
        """New MMS message ids: local MMDDhhmm, an MMSC number and a running number."""
        t_ms = np.asarray(t_ms, dtype=np.int64)
        k = t_ms.shape[0]
        local_s = (t_ms - MONTH_START_MS) // 1000
        day = local_s // 86_400
        hh = (local_s % 86_400) // 3600
        mm = (local_s % 3600) // 60
        stamp = ((7 * 100 + day + 1) * 100 + hh) * 100 + mm
        seq = self.mms_seq + np.arange(k, dtype=np.int64)
        self.mms_seq += k
        return stamp * 10**10 + 551 * 10**7 + seq

    def contacts(self, sub: Array, rank: Array) -> tuple[Array, Array, Array]:
        """The ``rank``-th contact of each subscriber: (prefix, digits, width), stable."""
        h = mix64(sub.astype(np.int64) * 1_000_003 + rank.astype(np.int64))
        kind = (h % np.uint64(100)).astype(np.int64)
        a = (h >> np.uint64(8)).astype(np.int64) & 0x7FFFFFFFFFFF
        eight = a % 10**8
        own = self.pop.msisdn[a % self.pop.size]
        cm = CM_PREFIXES[a % CM_PREFIXES.shape[0]] * 10**8 + eight
        other = OTHER_MOBILE_PREFIXES[(a >> 30) % OTHER_MOBILE_PREFIXES.shape[0]] * 10**8 + eight
        area = AREA_CODES[(a >> 33) % AREA_CODES.shape[0]]
        fixed = area * 10**8 + eight
        num = np.where(kind < 55, own, np.where(kind < 80, cm, np.where(kind < 96, other, fixed)))
        pfx = np.where(kind < 96, P_NONE, P_NATIONAL).astype(np.int8)
        wid = np.where(kind < 96, 11, digits_width(fixed)).astype(np.int8)
        return pfx, num.astype(np.int64), wid

    def pick_subs(self, kind: int, n: int) -> Array:
        w = self.pop.weight[kind]
        return self.rng.choice(self.pop.size, size=n, p=w / w.sum()).astype(np.int32)


def const_peer(n: int, number: int, prefix: int = P_NONE) -> dict[str, Array]:
    """Peer columns for one fixed number on ``n`` rows."""
    return {
        "pfx": np.full(n, prefix, np.int8),
        "pnum": np.full(n, number, np.int64),
        "pwid": np.full(n, len(str(number)), np.int8),
    }


def peers_from(numbers: Array, prefix: int = P_NONE) -> dict[str, Array]:
    """Peer columns for digit numbers without a prefix."""
    numbers = np.asarray(numbers, dtype=np.int64)
    return {
        "pfx": np.full(numbers.shape[0], prefix, np.int8),
        "pnum": numbers,
        "pwid": digits_width(numbers),
    }


def data_charge(ctx: Context, sub: Array, up: Any, down: Any) -> Array:
    """Volume charge of a data session: 0.01 per kB unless the subscriber has a bundle."""
    yuan = np.minimum((up + down) / 1024.0 * 0.01, 20.0)
    return np.where(ctx.pop.data_plan[sub], 0.0, np.round(yuan, 2))


# ---------------------------------------------------------------------------------------
# Background traffic.


def bg_voice(ctx: Context, n: int) -> Block:
    rng, pop = ctx.rng, ctx.pop
    sub = ctx.pick_subs(VOICE, n)
    t = month_times(rng, n)
    dirn = (rng.random(n) < 0.45).astype(np.int8)
    pfx, num, wid = ctx.contacts(sub, np.minimum(rng.geometric(0.12, n) - 1, 150))
    short = rng.random(n) < 0.03  # calls to customer service, directory, bank
    code = rng.choice(np.array([10086, 10086, 12580, 95555]), n)
    num = np.where(short, code, num)
    wid = np.where(short, digits_width(code), wid).astype(np.int8)
    pfx = np.where(short, P_NONE, pfx).astype(np.int8)
    dirn = np.where(short, MO, dirn).astype(np.int8)
    failed = rng.random(n) < 0.06
    dur = np.where(failed, 0.0, lognormal_int(rng, 55, 1.0, n, 1, 7200).astype(np.float64))
    minutes = np.ceil(dur / 60.0)
    charge = np.where(
        dirn == MO, minutes * pop.voice_rate[sub], np.where(pop.two_way[sub], minutes * 0.4, 0.0)
    )
    charge = np.where(short & (code != 95555), 0.0, charge)
    scode = np.where(failed, rng.choice(np.array([17, 18, 19, 20, 1]), n), -1)
    return block(
        n, t=t, rtype=VOICE, dirn=dirn, sub=sub, pfx=pfx, pnum=num, pwid=wid,
        status=np.where(failed, FAILED, OK), scode=scode, dur=dur, charge=np.round(charge, 2),
    )  # fmt: skip


def bg_csd(ctx: Context, n: int) -> Block:
    """Circuit-switched dial-up to the domestic access numbers."""
    rng = ctx.rng
    sub = ctx.pick_subs(CSD, n)
    t = month_times(rng, n)
    number = rng.choice(np.array(DIALUP_DOMESTIC), n, p=[0.8, 0.1, 0.1])
    failed = rng.random(n) < 0.08
    dur = np.where(failed, 0.0, lognormal_int(rng, 300, 1.0, n, 5, 10800).astype(np.float64))
    charge = np.round(np.ceil(dur / 60.0) * 0.2, 2)
    return block(
        n, t=t, rtype=CSD, dirn=MO, sub=sub, **peers_from(number), dur=dur, charge=charge,
        status=np.where(failed, FAILED, OK), scode=np.where(failed, 18, -1),
    )  # fmt: skip


def bg_sms(ctx: Context, n: int) -> Block:
    """SMS: conversations with contacts, service messages, texts to short codes."""
    rng = ctx.rng
    n_service = int(n * 0.15)
    n_short = int(n * 0.04)
    n_conv = n - n_service - n_short
    parts = [sms_conversations(ctx, n_conv)]

    # Service messages received: notices from 10086, SP content, bank alerts.
    sub = ctx.pick_subs(SMS, n_service)
    t = month_times(rng, n_service)
    sender = np.where(
        rng.random(n_service) < 0.5,
        rng.choice(np.array(SP_CODES), n_service),
        rng.choice(np.array(SERVICE_SENDERS), n_service),
    )
    is_sp = np.isin(sender, SP_CODES)
    # A few notices come as flash messages (class 0) from 10086 and SP codes.
    flash = ((sender == 10086) | is_sp) & (rng.random(n_service) < 0.06)
    charge = np.where(is_sp & (rng.random(n_service) < 0.5), 0.1, 0.0)
    parts.append(
        block(
            n_service, t=t, rtype=SMS, dirn=MT, sub=sub, **peers_from(sender),
            smslen=rng.integers(30, 141, n_service), smscls=np.where(flash, 0, -1),
            charge=charge,
        )
    )  # fmt: skip

    # Texts to short codes: balance queries, SP subscriptions, votes.
    sub = ctx.pick_subs(SMS, n_short)
    t = month_times(rng, n_short)
    target = np.where(
        rng.random(n_short) < 0.5, 10086, rng.choice(np.array([*SP_CODES, 125900, 125901]), n_short)
    )
    charge = np.where(target == 10086, 0.0, np.where(target >= 125900, 1.0, 0.1))
    parts.append(
        block(
            n_short, t=t, rtype=SMS, dirn=MO, sub=sub, **peers_from(target),
            smslen=rng.integers(1, 9, n_short), charge=charge,
        )
    )  # fmt: skip
    out = concat(parts)
    # Status: mostly delivered; a few failed, deferred or expired.
    u = rng.random(n)
    status = np.select([u < 0.015, u < 0.02, u < 0.025], [FAILED, DEFERRED, EXPIRED], OK)
    out["status"] = status.astype(np.int8)
    out["scode"] = np.where(status == FAILED, rng.choice(np.array([27, 31, 69]), n), -1)
    out["charge"] = np.where(status == FAILED, 0.0, out["charge"])
    # Class 1 (phone memory) is set on a few handsets' outgoing SMS.
    cls1 = (out["dirn"] == MO) & (mix64(out["sub"].astype(np.int64)) % np.uint64(50) == 0)
    out["smscls"] = np.where(cls1, 1, out["smscls"]).astype(np.int32)
    return out


def sms_conversations(ctx: Context, n: int) -> Block:
    """Conversations: messages back and forth with one contact, seconds to minutes apart."""
    rng = ctx.rng
    sizes_list: list[Array] = []
    total = 0
    while total < n:
        k = max((n - total) // 3, 16)
        single = rng.random(k) < 0.45
        s = np.where(single, 1, np.clip(np.round(rng.lognormal(1.5, 0.9, k)), 2, 160))
        sizes_list.append(s.astype(np.int64))
        total += int(s.sum())
    sizes = np.concatenate(sizes_list)
    csum = np.cumsum(sizes)
    m = int(np.searchsorted(csum, n)) + 1
    sizes = sizes[:m]
    sizes[-1] -= int(csum[m - 1]) - n
    m = sizes.shape[0]
    conv = np.repeat(np.arange(m), sizes)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pos = np.arange(n) - first[conv]
    conv_sub = ctx.pick_subs(SMS, m)
    conv_rank = np.minimum(rng.geometric(0.15, m) - 1, 150)
    conv_start = month_times(rng, m)
    gap = np.where(pos == 0, 0, lognormal_int(rng, 50, 0.9, n, 3, 1800)) * 1000
    cs = np.cumsum(gap)
    t = conv_start[conv] + cs - cs[first[conv]]
    flip = (rng.random(n) < 0.65) & (pos > 0)
    cf = np.cumsum(flip)
    parity = (cf - cf[first[conv]]) % 2
    first_dir = np.asarray(rng.random(m) < 0.45, dtype=np.int64)
    dirn = (first_dir[conv] ^ parity).astype(np.int8)
    sub = conv_sub[conv]
    pfx, num, wid = ctx.contacts(sub, conv_rank[conv])
    return block(
        n, t=t, rtype=SMS, dirn=dirn, sub=sub, pfx=pfx, pnum=num, pwid=wid,
        smslen=sms_lengths(rng, n), charge=np.where(dirn == MO, 0.1, 0.0),
    )  # fmt: skip


def mms_fetch(
    ctx: Context, sub: Array, t_deliver: Array, size: Array, mmsid: Array, fails: Array
) -> Block:
    """WAP-gateway fetch records (failed ``fails`` times first) and the MMSC retrieve."""
    rng = ctx.rng
    k = sub.shape[0]
    if k == 0:
        return block(0)
    delay = lognormal_int(rng, 25, 1.2, k, 2, 6 * 3600) * 1000
    tries = fails + 1
    idx = np.repeat(np.arange(k), tries)
    first = np.concatenate([[0], np.cumsum(tries)[:-1]])
    attempt = np.arange(idx.shape[0]) - first[idx]
    last = attempt == tries[idx] - 1
    n = idx.shape[0]
    retry_gap = rng.integers(20, 900, n) * 1000
    t = t_deliver[idx] + delay[idx] + attempt * retry_gap
    port = np.where(mix64(sub.astype(np.int64) + 77) % np.uint64(3) == 0, 9201, 80)[idx]
    up = lognormal_int(rng, 420, 0.2, n, 200, 2000)
    down = np.where(last, size[idx] + rng.integers(300, 1500, n), rng.integers(300, 3000, n))
    fetch = block(
        n, t=t, rtype=DATA, dirn=MO, sub=sub[idx], status=np.where(last, OK, FAILED),
        dur=np.where(last, np.maximum(1, size[idx] // 4000), 20).astype(np.float64),
        charge=np.where(last, 0.0, 0.03), mmsid=mmsid[idx], apn=CMWAP, bup=up, bdown=down,
        srv=SERVERS.index(WAP_GATEWAY), port=port, app=np.where(port == 80, A_MMS, A_WAP),
    )  # fmt: skip
    t_last = t[last] + 2000
    retrieve = block(
        k, t=t_last, rtype=MMS, dirn=MT, sub=sub, mmsid=mmsid, mmsev=RETRIEVE, mmssize=size,
        apn=CMWAP, srv=SERVERS.index(WAP_GATEWAY), port=port[first], charge=0.0,
    )  # fmt: skip
    return concat([fetch, retrieve])


def mms_deliveries(
    ctx: Context, sub: Array, t: Array, sender: dict[str, Array], size: Array,
    status: Array | None = None, scode: Array | None = None, fetch_fails: Array | None = None,
) -> Block:  # fmt: skip
    """MMS delivered to ``sub``; each delivered one is fetched and retrieved."""
    k = sub.shape[0]
    status = np.full(k, OK, np.int8) if status is None else status
    scode = np.full(k, -1, np.int32) if scode is None else scode
    fails = np.zeros(k, np.int64) if fetch_fails is None else fetch_fails
    mmsid = ctx.mms_ids(t)
    deliver = block(
        k, t=t, rtype=MMS, dirn=MT, sub=sub, **sender, status=status, scode=scode, mmsid=mmsid,
        mmsev=DELIVER, mmssize=size, charge=0.0,
    )  # fmt: skip
    ok = status == OK
    fetched = mms_fetch(ctx, sub[ok], t[ok], size[ok], mmsid[ok], fails[ok])
    return concat([deliver, fetched])


def mms_submits(
    ctx: Context, sub: Array, t: Array, peer: dict[str, Array], size: Array,
    status: Array | None = None, port: int | Array = 80,
) -> Block:  # fmt: skip
    """MMS sent by ``sub``: the gateway upload record and the MMSC submit record."""
    rng = ctx.rng
    k = sub.shape[0]
    status = np.full(k, OK, np.int8) if status is None else status
    port_arr = np.broadcast_to(np.asarray(port, dtype=np.int32), (k,))
    mmsid = ctx.mms_ids(t)
    secs = np.maximum(1, size // 3000)
    upload = block(
        k, t=t, rtype=DATA, dirn=MO, sub=sub, status=status, dur=secs.astype(np.float64),
        mmsid=mmsid, apn=CMWAP, bup=size + rng.integers(400, 1500, k),
        bdown=rng.integers(300, 900, k), srv=SERVERS.index(WAP_GATEWAY), port=port_arr,
        app=np.where(port_arr == 9201, A_WAP, A_MMS), charge=0.0,
    )  # fmt: skip
    ok = status == OK
    submit = block(
        k, t=t + secs * 1000 + 1000, rtype=MMS, dirn=MO, sub=sub, **peer, status=status,
        scode=np.where(ok, -1, 3000), mmsid=mmsid, mmsev=SUBMIT, mmssize=size,
        apn=CMWAP, srv=SERVERS.index(WAP_GATEWAY), port=port_arr, charge=np.where(ok, 0.3, 0.0),
    )  # fmt: skip
    return concat([upload, submit])


def mms_sizes(rng: np.random.Generator, n: int) -> Array:
    return lognormal_int(rng, 28_000, 0.8, n, 1_500, 300_000)


def bg_mms(ctx: Context, n_out: int, n_in: int) -> Block:
    """Person-to-person and SP MMS, sent and received."""
    rng = ctx.rng
    sub = ctx.pick_subs(MMS, n_out)
    t = month_times(rng, n_out)
    pfx, num, wid = ctx.contacts(sub, np.minimum(rng.geometric(0.2, n_out) - 1, 100))
    status = np.where(rng.random(n_out) < 0.05, FAILED, OK).astype(np.int8)
    port = np.where(mix64(sub.astype(np.int64) + 77) % np.uint64(3) == 0, 9201, 80)
    out = mms_submits(
        ctx, sub, t, {"pfx": pfx, "pnum": num, "pwid": wid}, mms_sizes(rng, n_out), status, port
    )

    sub = ctx.pick_subs(MMS, n_in)
    t = month_times(rng, n_in)
    from_sp = rng.random(n_in) < 0.3
    pfx, num, wid = ctx.contacts(sub, np.minimum(rng.geometric(0.2, n_in) - 1, 100))
    sp = rng.choice(np.array(SP_CODES), n_in)
    sender = {
        "pfx": np.where(from_sp, P_NONE, pfx).astype(np.int8),
        "pnum": np.where(from_sp, sp, num),
        "pwid": np.where(from_sp, 8, wid).astype(np.int8),
    }
    u = rng.random(n_in)
    status = np.select([u < 0.02, u < 0.035], [EXPIRED, FAILED], OK).astype(np.int8)
    scode = np.select([status == EXPIRED, status == FAILED], [4001, 3000], -1)
    # Fetches that fail once or twice before they work.
    fails = np.where(rng.random(n_in) < 0.05, rng.integers(1, 3, n_in), 0)
    inn = mms_deliveries(ctx, sub, t, sender, mms_sizes(rng, n_in), status, scode, fails)
    return concat([out, inn])


def bg_data(ctx: Context, n: int) -> Block:
    """Packet data sessions: WAP browsing, web, HTTPS, DNS, QQ."""
    rng = ctx.rng
    sub = ctx.pick_subs(DATA, n)
    t = month_times(rng, n)
    w = np.array([s.weight for s in SERVICES])
    kind = rng.choice(len(SERVICES), n, p=w / w.sum())

    def col(attr: str) -> Array:
        return np.array([getattr(s, attr) for s in SERVICES])[kind]

    up = lognormal_int(rng, col("up"), 0.9, n, 40, 5_000_000)
    down = lognormal_int(rng, col("down"), 1.1, n, 60, 50_000_000)
    dur = np.round(rng.lognormal(np.log(col("seconds")), 0.9, n), 1)
    failed = rng.random(n) < 0.02
    up = np.where(failed, np.minimum(up, 300), up)
    down = np.where(failed, 0, down)
    charge = data_charge(ctx, sub, up, down)
    return block(
        n, t=t, rtype=DATA, dirn=MO, sub=sub, status=np.where(failed, FAILED, OK),
        scode=np.where(failed, 2, -1), dur=dur, charge=charge, apn=col("apn"), bup=up,
        bdown=down, srv=col("server"), port=col("port"), app=col("app"), host=col("host"),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------
# Background behaviours that look like a case and are not (near-misses).


def scaled(n_records: int, per_million: float, minimum: int = 1) -> int:
    return max(minimum, round(per_million * n_records / 1e6))


def nm_notice_to_many(ctx: Context, k: int) -> None:
    """One notice of fixed length sent to hundreds of different recipients."""
    rng = ctx.rng
    for sub in ctx.take(k):
        r = int(rng.integers(100, 401))
        t0 = at(rng.integers(0, N_DAYS), rng.integers(8 * HOUR_S, 18 * HOUR_S))
        t = t0 + np.cumsum(rng.integers(5, 16, r)) * 1000
        nums = unique_numbers(rng, r, lambda m: 13_900_000_000 + rng.integers(0, 10**8, m))
        rows = block(
            r, t=t, rtype=SMS, dirn=MO, sub=sub, **peers_from(nums),
            smslen=int(rng.integers(40, 141)), charge=0.1,
        )  # fmt: skip
        record_near(ctx, ROOT_CAUSES[0], sub, rows, "notice-to-many")


def nm_hourly_status(ctx: Context, k: int) -> None:
    """A device texts a fixed-length status to one number every hour for days."""
    rng = ctx.rng
    for sub in ctx.take(k):
        hours = int(rng.integers(48, 240))
        start = at(rng.integers(0, N_DAYS - hours // 24), rng.integers(0, 86_400))
        t = start + (np.arange(hours) * HOUR_S + rng.integers(-30, 31, hours)) * 1000
        t = t[t < MONTH_END_MS]
        pfx, num, wid = ctx.contacts(np.array([sub]), np.array([0]))
        rows = block(
            t.shape[0], t=t, rtype=SMS, dirn=MO, sub=sub, pfx=pfx[0], pnum=num[0],
            pwid=wid[0], smslen=int(rng.integers(20, 61)), charge=0.1,
        )  # fmt: skip
        record_near(ctx, ROOT_CAUSES[0], sub, rows, "hourly-status")


def periodic_times(rng: np.random.Generator, period_s: int, days: int, jitter_s: int,
                   missed: float, extra: float) -> Array:  # fmt: skip
    """Times (ms) of a timer-driven series with jitter, missed and extra occurrences."""
    first_day = int(rng.integers(0, N_DAYS - days + 1))
    start = at(first_day, rng.integers(0, 86_400))
    n = days * 86_400 // period_s
    t = start + (np.arange(n) * period_s + rng.integers(-jitter_s, jitter_s + 1, n)) * 1000
    t = t[rng.random(n) >= missed]
    n_extra = rng.binomial(n, extra)
    t = np.concatenate([t, start + rng.integers(0, n * period_s, n_extra) * 1000])
    t = np.sort(t)
    return t[(t >= MONTH_START_MS) & (t < MONTH_END_MS)]


def nm_keepalive(ctx: Context, k: int) -> None:
    """An app keeps a connection alive on HTTPS 443 every few minutes: periodic, not mail."""
    rng = ctx.rng
    for sub in ctx.take(k):
        period = int(rng.choice([240, 300, 600, 900]))
        t = periodic_times(rng, period, int(rng.integers(2, 11)), 5, 0.03, 0.01)
        n = t.shape[0]
        up = np.round(rng.normal(1.0, 0.02, n) * rng.integers(300, 800)).astype(np.int64)
        down = np.round(rng.normal(1.0, 0.02, n) * rng.integers(400, 2000)).astype(np.int64)
        label = np.where(rng.random() < 0.8, A_HTTPS, -1)
        rows = block(
            n, t=t, rtype=DATA, dirn=MO, sub=sub, dur=rng.integers(1, 4, n).astype(float),
            charge=data_charge(ctx, np.full(n, sub), up, down), apn=CMNET, bup=up,
            bdown=down, srv=int(rng.choice(KEEPALIVE_SERVERS)), port=443, app=label,
        )  # fmt: skip
        record_near(ctx, ROOT_CAUSES[9], sub, rows, "https-keepalive")


def nm_manual_mail(ctx: Context, k: int) -> None:
    """People who check their mail by hand a few times a day: irregular times and sizes."""
    rng = ctx.rng
    for sub in ctx.take(k):
        days = np.flatnonzero(rng.random(N_DAYS) < rng.uniform(0.4, 1.0))
        per_day = rng.integers(1, 7, days.shape[0])
        day = np.repeat(days, per_day)
        n = day.shape[0]
        if n == 0:
            continue
        secs = rng.integers(7 * HOUR_S, 23 * HOUR_S, n)
        t = np.sort(at(day, secs))
        srv, host = MAIL_SERVERS[int(rng.integers(len(MAIL_SERVERS)))]
        imap = bool(rng.random() < 0.3)
        ssl = bool(rng.random() < 0.2)
        port = (993 if ssl else 143) if imap else (995 if ssl else 110)
        app = A_IMAP if imap else int(rng.choice([A_POP3, A_POP3_DNS]))
        up = lognormal_int(rng, 600, 0.6, n, 150, 50_000)
        down = lognormal_int(rng, 15_000, 1.3, n, 300, 3_000_000)
        rows = block(
            n, t=t, rtype=DATA, dirn=MO, sub=sub, dur=rng.integers(3, 60, n).astype(float),
            charge=data_charge(ctx, np.full(n, sub), up, down), apn=CMNET, bup=up,
            bdown=down, srv=srv, port=port, app=app, host=host,
        )  # fmt: skip
        record_near(ctx, ROOT_CAUSES[9], sub, rows, "manual-mail-checks")


def international_numbers(rng: np.random.Generator, n: int) -> tuple[Array, Array]:
    """Foreign numbers (digits after the international prefix) and their prefix code."""
    idx = rng.integers(0, len(FOREIGN_CODES), n)
    cc = np.array([c for c, _ in FOREIGN_CODES])[idx]
    length = np.array([ln for _, ln in FOREIGN_CODES])[idx]
    national = rng.integers(10**8, 10**9, n) * 100 + rng.integers(0, 100, n)
    national = national // (10 ** (11 - length))
    number = cc * 10**length + national
    prefix = np.where(rng.random(n) < 0.6, P_00, P_PLUS)
    return number, prefix


def nm_international_voice(ctx: Context, k: int) -> None:
    """Ordinary international calls, made and received."""
    rng = ctx.rng
    for sub in ctx.take(k):
        m = int(rng.integers(1, 9))
        number, prefix = international_numbers(rng, 1)
        dirn = (rng.random(m) < 0.4).astype(np.int8)
        dur = lognormal_int(rng, 240, 0.9, m, 10, 5400).astype(float)
        rows = block(
            m, t=at(rng.integers(0, N_DAYS, m), diurnal_seconds(rng, m)), rtype=VOICE,
            dirn=dirn, sub=sub, **const_peer(m, int(number[0]), int(prefix[0])),
            dur=dur, charge=np.where(dirn == MO, np.ceil(dur / 60) * 8.0, 0.0),
        )  # fmt: skip
        record_near(ctx, ROOT_CAUSES[3], sub, rows, "international-voice")


def nm_friend_abroad(ctx: Context, k: int) -> None:
    """Texts to a friend abroad, written by a person: lengths vary.

    Three kinds, in turn: a few texts on a few days; a handful now and then, on five to
    nine days scattered over the month; and a chat every day for a week or so (a holiday,
    a relative visiting), one to four texts a day.
    """
    rng = ctx.rng
    for i, sub in enumerate(ctx.take(k)):
        number, prefix = international_numbers(rng, 1)
        kind = i % 3
        if kind == 0:
            variant = "a-few-texts"
            days = rng.choice(N_DAYS, size=int(rng.integers(1, 5)), replace=False)
        elif kind == 1:
            variant = "now-and-then"
            picked = rng.choice(N_DAYS, size=int(rng.integers(5, 10)), replace=False)
            days = np.repeat(picked, rng.choice([1, 1, 1, 2], size=picked.shape[0]))
        else:
            variant = "holiday-chat"
            span = int(rng.integers(5, 11))
            d0 = int(rng.integers(0, N_DAYS - span + 1))
            days = np.repeat(np.arange(d0, d0 + span), rng.integers(1, 5, span))
        m = days.shape[0]
        rows = block(
            m, t=np.sort(at(days, diurnal_seconds(rng, m))), rtype=SMS, dirn=MO, sub=sub,
            **const_peer(m, int(number[0]), int(prefix[0])), smslen=sms_lengths(rng, m),
            charge=1.0,
        )  # fmt: skip
        record_near(ctx, ROOT_CAUSES[7], sub, rows, variant)


def nm_newspaper(ctx: Context, k: int) -> None:
    """Subscribers of the mobile newspaper: one MMS from 10658000 every morning.

    Now and then one issue is refused (status 2000) among many delivered: not a block.
    """
    rng = ctx.rng
    subs = ctx.take(k)
    day = np.tile(np.arange(N_DAYS), k)
    sub = np.repeat(subs, N_DAYS)
    keep = rng.random(sub.shape[0]) < 0.97
    sub, day = sub[keep], day[keep]
    n = sub.shape[0]
    t = at(day, 7.5 * HOUR_S + rng.integers(-1200, 1200, n))
    rejected = rng.random(n) < 0.005
    rows = ctx.add(
        mms_deliveries(
            ctx, sub, t, const_peer(n, NEWSPAPER), lognormal_int(rng, 60_000, 0.15, n, 20_000,
            200_000), np.where(rejected, REJECTED, OK).astype(np.int8),
            np.where(rejected, 2000, -1).astype(np.int32),
        )
    )  # fmt: skip
    # One truth row per subscriber who had an issue refused (the others are plain readers).
    for one in np.unique(sub[rejected]):
        mine = (rows["sub"] == one) & (rows["rtype"] == MMS)
        part = {name: col[mine] for name, col in rows.items()}
        ctx.truth.append(Truth(ROOT_CAUSES[4], int(one), part, "", "newspaper-one-refusal",
                               EXPECT_NONE))  # fmt: skip


def nm_memory_full(ctx: Context, k: int) -> None:
    """A full handset memory refuses MMS (status 4000) from every sender.

    Half of them: two days of refusals, one or two per sender, then the customer clears
    the memory and everything gets through. The other half: the memory stays full for a
    week or two while a daily newspaper arrives each morning, so the newspaper takes most
    of the refusals; friends' MMS in the same days are mostly refused too, and after each
    of the customer's occasional clean-ups one or two MMS get through.
    """
    rng = ctx.rng
    for i, sub in enumerate(ctx.take(k)):
        if i % 2 == 0:
            senders = np.concatenate([[NEWSPAPER], 13_900_000_000 + rng.integers(0, 10**8, 3)])
            d0 = int(rng.integers(0, N_DAYS - 8))
            rej_sender = np.repeat(senders, rng.integers(1, 3, senders.shape[0]))
            m = rej_sender.shape[0]
            t_rej = at(d0 + rng.integers(0, 2, m), diurnal_seconds(rng, m))
            ok_sender = np.repeat(senders, 4)
            n_ok = ok_sender.shape[0]
            t_ok = at(d0 + rng.integers(2, 8, n_ok), diurnal_seconds(rng, n_ok))
            sender = np.concatenate([rej_sender, ok_sender])
            t = np.concatenate([t_rej, t_ok])
            status = np.concatenate([np.full(m, REJECTED), np.full(n_ok, OK)]).astype(np.int8)
            variant = "memory-full-two-days"
        else:
            span = int(rng.integers(7, 15))
            d0 = int(rng.integers(0, N_DAYS - span))
            days = np.arange(d0, d0 + span)
            t_news = at(days, 7.5 * HOUR_S + rng.integers(-1200, 1200, span))
            n_friends = int(rng.integers(3, 9))
            friends = 13_900_000_000 + rng.integers(0, 10**8, int(rng.integers(2, 5)))
            t_friends = np.sort(at(rng.integers(d0, d0 + span, n_friends),
                                   diurnal_seconds(rng, n_friends)))  # fmt: skip
            sender = np.concatenate([np.full(span, NEWSPAPER), rng.choice(friends, n_friends)])
            t = np.concatenate([t_news, t_friends])
            # Clean-ups on one to three days: whatever arrives in the next hours gets in.
            cleanups = at(rng.choice(days, size=int(rng.integers(1, 4)), replace=False),
                          rng.integers(6 * HOUR_S, 22 * HOUR_S, 1))  # fmt: skip
            after = t[:, None] - cleanups[None, :]
            fresh = ((after >= 0) & (after < 14 * HOUR_S * 1000)).any(axis=1)
            accepted = fresh | (rng.random(t.shape[0]) < 0.05)
            status = np.where(accepted, OK, REJECTED).astype(np.int8)
            variant = "memory-full-newspaper-dominates"
        scode = np.where(status == REJECTED, 4000, -1).astype(np.int32)
        subs = np.full(sender.shape[0], sub, np.int32)
        rows = mms_deliveries(
            ctx, subs, t, peers_from(sender), mms_sizes(rng, sender.shape[0]), status, scode
        )
        record_near(ctx, ROOT_CAUSES[4], sub, rows, variant)


def nm_mms_to_friends(ctx: Context, k: int) -> None:
    """One picture sent to several friends, or the same MMS sent twice to one friend."""
    rng = ctx.rng
    for i, sub in enumerate(ctx.take(k)):
        twice = i % 2 == 0
        m = 2 if twice else int(rng.integers(5, 13))
        t = at(rng.integers(0, N_DAYS), rng.integers(9 * HOUR_S, 22 * HOUR_S))
        t = t + np.cumsum(rng.integers(20, 1800 if twice else 90, m)) * 1000
        ranks = np.zeros(m, np.int64) if twice else rng.choice(40, m, replace=False)
        pfx, num, wid = ctx.contacts(np.full(m, sub), ranks)
        size = np.full(m, mms_sizes(rng, 1)[0])
        rows = mms_submits(
            ctx, np.full(m, sub, np.int32), t, {"pfx": pfx, "pnum": num, "pwid": wid}, size
        )
        record_near(ctx, ROOT_CAUSES[2], sub, rows, "sent-twice" if twice else "to-friends")


def nm_https_9202(ctx: Context, k: int) -> None:
    """HTTPS through the internet APN on port 9202: a WTLS port number, but not MMS."""
    rng = ctx.rng
    for sub in ctx.take(k):
        m = int(rng.integers(1, 6))
        up = lognormal_int(rng, 1500, 0.5, m, 200, 100_000)
        down = lognormal_int(rng, 9000, 0.8, m, 200, 1_000_000)
        rows = block(
            m, t=at(rng.integers(0, N_DAYS, m), diurnal_seconds(rng, m)), rtype=DATA,
            dirn=MO, sub=sub, dur=rng.integers(5, 120, m).astype(float),
            charge=data_charge(ctx, np.full(m, sub), up, down), apn=CMNET, bup=up,
            bdown=down, srv=int(rng.choice(HTTPS_9202_SERVERS)), port=9202, app=A_HTTPS,
        )  # fmt: skip
        record_near(ctx, ROOT_CAUSES[5], sub, rows, "https-on-9202")


def nm_handset_changes(ctx: Context, k_new: int, k_shared: int, k_swap_mms: int) -> None:
    """New handsets, handed-down handsets, and an MMS after a swap that is not a re-send."""
    rng, pop = ctx.rng, ctx.pop
    subs = ctx.take(k_new)
    pop.h2[subs] = ctx.new_handset(background_tacs(rng, k_new, ctx.devices))
    pop.t_change[subs] = at(rng.integers(1, N_DAYS, k_new), rng.integers(0, 86_400, k_new))
    # Handed down: the old phone goes to a family member, the giver gets a new one.
    for giver, taker in ctx.take(2 * k_shared).reshape(-1, 2):
        t = int(at(rng.integers(2, N_DAYS - 2), rng.integers(8 * HOUR_S, 22 * HOUR_S)))
        pop.h2[giver] = ctx.new_handset(background_tacs(rng, 1, ctx.devices))[0]
        pop.t_change[giver] = t
        pop.h2[taker] = pop.h1[giver]
        pop.t_change[taker] = t + int(rng.integers(600, 86_400)) * 1000
    # A failed MMS under A; the handset moves to C, who sends an MMS of the same size to
    # someone else, or weeks later a new picture to the same person, or sends the same
    # picture to A's recipient again by hand, days after the swap and after MMS of its own.
    for i, (a, c) in enumerate(ctx.take(2 * k_swap_mms).reshape(-1, 2)):
        day = int(rng.integers(2, 12))
        t1 = int(at(day, rng.integers(9 * HOUR_S, 20 * HOUR_S)))
        size = int(mms_sizes(rng, 1)[0])
        pfx, num, wid = ctx.contacts(np.array([a]), np.array([1]))
        peer = {"pfx": pfx, "pnum": num, "pwid": wid}
        ctx.add(mms_submits(ctx, np.array([a]), np.array([t1]), peer, np.array([size]),
                            np.array([FAILED], np.int8)))  # fmt: skip
        t_c = t1 + int(rng.integers(3600, 2 * 86_400)) * 1000
        pop.h2[c] = pop.h1[a]
        pop.t_change[c] = t_c
        ctx.cutoff_day[int(a)] = day + 1
        kind = i % 3
        own = block(0)
        if kind == 0:  # same size, other recipient
            pfx2, num2, wid2 = ctx.contacts(np.array([c]), np.array([2]))
            peer = {"pfx": pfx2, "pnum": num2, "pwid": wid2}
            t2 = t_c + int(rng.integers(120, 3 * 3600)) * 1000
            variant = "same-size-other-recipient"
        elif kind == 1:  # same recipient, weeks later, a new picture
            size = int(mms_sizes(rng, 1)[0])
            t2 = min(t_c + int(rng.integers(14, 18)) * DAY_MS, MONTH_END_MS - HOUR_S * 1000)
            variant = "new-picture-weeks-later"
        else:  # the same picture again, by hand, after a few MMS of C's own
            m = int(rng.integers(3, 6))
            t_own = t_c + np.sort(rng.integers(2 * 3600, 3 * 86_400, m)) * 1000
            pfx3, num3, wid3 = ctx.contacts(np.full(m, c), rng.integers(3, 20, m))
            own = mms_submits(
                ctx,
                np.full(m, c, np.int32),
                t_own,
                {"pfx": pfx3, "pnum": num3, "pwid": wid3},
                mms_sizes(rng, m),
            )
            t2 = int(t_own[-1]) + int(rng.integers(12 * 3600, 3 * 86_400)) * 1000
            t2 = min(t2, MONTH_END_MS - HOUR_S * 1000)
            variant = "same-picture-again-by-hand"
        again = mms_submits(ctx, np.array([c]), np.array([t2]), peer, np.array([size]))
        record_near(ctx, ROOT_CAUSES[1], c, concat([own, again]), variant)


def nm_trips(ctx: Context, k: int) -> None:
    """Trips abroad with handsets that work there, and one failed call on each trip."""
    rng, pop = ctx.rng, ctx.pop
    mccs = np.array([m for m, _ in TRIP_DESTINATIONS])
    w = np.array([x for _, x in TRIP_DESTINATIONS], dtype=float)
    na_ok = ctx.devices.band_ok_in_north_america()
    for sub in ctx.take(k):
        mcc = int(rng.choice(mccs, p=w / w.sum()))
        if mcc in NORTH_AMERICA:  # travellers to North America carry a tri-band phone
            ctx.set_handset(int(sub), na_ok)
        d0 = int(rng.integers(0, N_DAYS - 3))
        d1 = min(N_DAYS, d0 + int(rng.integers(3, 15)))
        pop.trip_mcc[sub] = mcc
        pop.trip_from[sub] = at(d0, 0)
        pop.trip_to[sub] = at(d1, 0)
        pfx, num, wid = ctx.contacts(np.array([sub]), np.array([0]))
        rows = block(
            1, t=at(rng.integers(d0, d1), diurnal_seconds(rng, 1)), rtype=VOICE, dirn=MT,
            sub=sub, pfx=pfx, pnum=num, pwid=wid, status=FAILED, scode=18, dur=0.0,
            mcc=mcc,
        )  # fmt: skip
        record_near(ctx, ROOT_CAUSES[6], sub, rows, "trip-with-a-working-handset")


# ---------------------------------------------------------------------------------------
# Injected cases (shared/domain/cases.md).


def record_truth(
    ctx: Context, cause: str, sub: int, rows: Block, note: str, variant: str = "documented"
) -> None:
    rows["bg"][:] = False
    ctx.add(rows)
    ctx.truth.append(Truth(cause, int(sub), rows, note, variant))


def record_near(ctx: Context, cause: str, sub: int, rows: Block, variant: str) -> Block:
    """Add a near-miss's rows and note it in the truth: no finding of ``cause`` expected."""
    ctx.add(rows)
    if rows["t"].shape[0]:
        ctx.truth.append(Truth(cause, int(sub), rows, variant, variant, EXPECT_NONE))
    return rows


def case_anti_theft(ctx: Context, k: int) -> None:
    """A used handset with an anti-theft tracker texts the phonebook to its former owner."""
    rng, pop = ctx.rng, ctx.pop
    f8 = ctx.devices.tacs_of("Shangwutong F8")
    for former, victim in ctx.take(2 * k).reshape(-1, 2):
        tac = f8 if rng.random() < 0.6 else background_tacs(rng, 1, ctx.devices)
        old = ctx.set_handset(int(former), tac)
        t_f = int(at(rng.integers(1, 14), rng.integers(9 * HOUR_S, 21 * HOUR_S)))
        pop.h2[former] = ctx.new_handset(background_tacs(rng, 1, ctx.devices))[0]
        pop.t_change[former] = t_f
        t_v = t_f + int(rng.integers(86_400, 5 * 86_400)) * 1000
        pop.h2[victim] = old
        pop.t_change[victim] = t_v
        count = int(rng.integers(300, 1201))
        runs = int(np.ceil(count / 450))
        per_run = np.diff(np.linspace(0, count, runs + 1).round().astype(int))
        day0 = int(local_day(np.array([t_v]))[0]) + int(rng.integers(0, 2))
        day0 = min(day0, N_DAYS - runs)
        times = []
        for r, m in enumerate(per_run):
            start = at(day0 + r, rng.integers(7 * HOUR_S, 10 * HOUR_S))
            times.append(start + np.cumsum(rng.integers(60, 181, m)) * 1000)
        t = np.concatenate(times)
        # Start at least ten minutes after the handset changed hands, keeping the gaps.
        t = t + max(0, t_v + 600_000 - int(t.min()))
        n = t.shape[0]
        if rng.random() < 0.7:
            peer = const_peer(n, int(pop.msisdn[former]))
        else:
            tracker = int(rng.choice(CM_PREFIXES)) * 10**8 + int(rng.integers(0, 10**8))
            peer = const_peer(n, tracker)
        rows = block(n, t=t, rtype=SMS, dirn=MO, sub=victim, **peer, smslen=126, charge=0.1)
        record_truth(ctx, ROOT_CAUSES[0], victim, rows, f"{n} SMS of 126 characters")


def case_outbox_resend(ctx: Context, k: int) -> None:
    """A failed MMS under A is re-sent under C after C's SIM goes into A's handset.

    Half the cases swap within days of the failure; in the other half A's number stays
    suspended and the customer finds another SIM one to four weeks later. A may have
    tried once or a few times. The handset re-sends at its first chance under C: mostly
    within minutes of C's arrival, sometimes hours later (a phone switched off).
    """
    rng, pop = ctx.rng, ctx.pop
    for i, (a, c) in enumerate(ctx.take(2 * k).reshape(-1, 2)):
        late = i % 2 == 1
        day = int(rng.integers(0, 8)) if late else int(rng.integers(3, N_DAYS - 4))
        tries = int(rng.choice([1, 1, 2, 3]))
        t1 = int(at(day, rng.integers(9 * HOUR_S, 20 * HOUR_S)))
        t_fail = t1 + np.sort(rng.integers(0, 1800, tries)) * 1000
        size = int(mms_sizes(rng, 1)[0])
        pfx, num, wid = ctx.contacts(np.array([a]), np.array([int(rng.integers(0, 5))]))
        peer = {"pfx": pfx, "pnum": num, "pwid": wid}
        ctx.add(mms_submits(ctx, np.full(tries, a, np.int32), t_fail,
                            {key: np.repeat(v, tries) for key, v in peer.items()},
                            np.full(tries, size), np.full(tries, FAILED, np.int8)))  # fmt: skip
        ctx.cutoff_day[int(a)] = day + 1  # A's number is suspended: nothing after that day
        if late:
            gap_s = int(rng.integers(7 * 86_400, 28 * 86_400))
        else:
            gap_s = int(rng.integers(3600, 3 * 86_400))
        t_c = min(int(t_fail[-1]) + gap_s * 1000, MONTH_END_MS - 2 * DAY_MS)
        pop.h2[c] = pop.h1[a]
        pop.t_change[c] = t_c
        delay_s = int(lognormal_int(rng, 600, 1.5, 1, 60, 20 * 3600)[0])
        t2 = t_c + delay_s * 1000
        rows = mms_submits(ctx, np.array([c]), np.array([t2]), peer, np.array([size]))
        weeks = (t2 - int(t_fail[-1])) / DAY_MS / 7
        record_truth(
            ctx,
            ROOT_CAUSES[1],
            c,
            rows,
            f"MMS of {size} bytes re-sent after {weeks:.1f} weeks",
            "sim-weeks-later" if late else "sim-within-days",
        )


def case_retry_loop(ctx: Context, k: int) -> None:
    """A NOKIA 6108/3108 fetches one MMS dozens of times in a day and never succeeds.

    One case in five is the sending variant: the same MMS submitted again and again.
    """
    rng = ctx.rng
    nokia = ctx.devices.tacs_of("NOKIA 6108", "NOKIA 3108")
    for i, sub in enumerate(ctx.take(k)):
        ctx.set_handset(int(sub), nokia if rng.random() < 0.8 else ctx.devices.tacs)
        day = int(rng.integers(0, N_DAYS - 1))
        t0 = int(at(day, rng.integers(7 * HOUR_S, 11 * HOUR_S)))
        if i % 5 == 4:
            m = int(rng.integers(6, 16))
            t = t0 + np.cumsum(rng.integers(300, 1200, m)) * 1000
            pfx, num, wid = ctx.contacts(np.full(m, sub), np.zeros(m, np.int64))
            size = np.full(m, mms_sizes(rng, 1)[0])
            rows = mms_submits(
                ctx, np.full(m, sub, np.int32), t, {"pfx": pfx, "pnum": num, "pwid": wid}, size
            )
            record_truth(ctx, ROOT_CAUSES[2], sub, rows, f"same MMS submitted {m} times")
            continue
        m = int(rng.integers(30, 91))
        t = t0 + np.cumsum(rng.integers(180, 900, m)) * 1000
        pfx, num, wid = ctx.contacts(np.array([sub]), np.array([0]))
        size = mms_sizes(rng, 1)
        mmsid = ctx.mms_ids(np.array([t0]))
        notice = block(
            1, t=t0 - 60_000, rtype=MMS, dirn=MT, sub=sub, pfx=pfx, pnum=num, pwid=wid,
            mmsid=mmsid, mmsev=DELIVER, mmssize=size,
        )  # fmt: skip
        as_mms = rng.random(m) < 0.25
        rows = block(
            m, t=t, rtype=np.where(as_mms, MMS, DATA), dirn=np.where(as_mms, MT, MO), sub=sub,
            status=FAILED, scode=np.where(as_mms, 3000, -1), dur=np.where(as_mms, np.nan, 20.0),
            charge=np.where(as_mms, 0.0, 0.03), mmsid=mmsid[0],
            mmsev=np.where(as_mms, RETRIEVE, -1), mmssize=np.where(as_mms, size[0], -1),
            apn=CMWAP, bup=np.where(as_mms, -1, rng.integers(380, 460, m)),
            bdown=np.where(as_mms, -1, rng.integers(900, 3000, m)),
            srv=SERVERS.index(WAP_GATEWAY), port=80, app=A_MMS,
        )  # fmt: skip
        record_truth(ctx, ROOT_CAUSES[2], sub, concat([notice, rows]), f"{m} failed fetches")


def case_dialup_trap(ctx: Context, k: int) -> None:
    """Data calls to a foreign modem number, preset in a grey-market handset."""
    rng = ctx.rng
    samsung = ctx.devices.tacs_of("Samsung SGH-E720")
    for sub in ctx.take(k):
        ctx.set_handset(int(sub), samsung if rng.random() < 0.7 else ctx.devices.tacs)
        number = TRAP_NUMBER if rng.random() < 0.7 else int(rng.choice(DIALUP_FOREIGN[1:]))
        m = int(rng.integers(1, 6))
        day = int(rng.integers(0, N_DAYS - 2))
        t = at(day + rng.integers(0, 3, m), diurnal_seconds(rng, m))
        dur = np.where(rng.random(m) < 0.4, rng.integers(20, 60, m), rng.integers(120, 900, m))
        charge = np.round(2.5 + dur / 60.0 * 2.2, 2)
        prefix = P_PLUS if rng.random() < 0.7 else P_00
        rows = block(
            m, t=np.sort(t), rtype=CSD, dirn=MO, sub=sub, **const_peer(m, number, prefix),
            dur=dur.astype(float), charge=charge,
        )  # fmt: skip
        record_truth(ctx, ROOT_CAUSES[3], sub, rows, f"{m} data calls to +{number}")


def case_sender_blocklisted(ctx: Context, k: int) -> None:
    """A Samsung D838 rejects (2000) every MMS from one sender, accepts all others.

    In two cases of five the customer blocks the sender part-way: its MMS arrived for a
    few days to two weeks before the first rejection.
    """
    rng = ctx.rng
    d838 = ctx.devices.tacs_of("Samsung SGH-D838")
    for i, sub in enumerate(ctx.take(k)):
        ctx.set_handset(int(sub), d838 if rng.random() < 0.8 else ctx.devices.tacs)
        sender = NEWSPAPER if rng.random() < 0.7 else int(rng.choice(SP_CODES[1:]))
        part_way = i % 5 in (1, 3)
        before = int(rng.integers(3, 15)) if part_way else 0
        d0 = int(rng.integers(0, N_DAYS - 3 - before))
        days = np.arange(d0, min(N_DAYS, d0 + before + int(rng.integers(3, 16))))
        m = days.shape[0]
        t = at(days, 7.5 * HOUR_S + rng.integers(-600, 600, m))
        size = lognormal_int(rng, 60_000, 0.1, m, 20_000, 200_000)
        refused = np.arange(m) >= before
        blocked = mms_deliveries(
            ctx, np.full(m, sub, np.int32), t, const_peer(m, sender), size,
            np.where(refused, REJECTED, OK).astype(np.int8),
            np.where(refused, 2000, -1).astype(np.int32),
        )  # fmt: skip
        d_block = int(days[before])
        n_ok = int(rng.integers(2, 6))
        pfx, num, wid = ctx.contacts(np.full(n_ok, sub), rng.integers(0, 10, n_ok))
        others = mms_deliveries(
            ctx, np.full(n_ok, sub, np.int32),
            at(rng.integers(d_block, days[-1] + 1, n_ok), diurnal_seconds(rng, n_ok)),
            {"pfx": pfx, "pnum": num, "pwid": wid}, mms_sizes(rng, n_ok),
        )  # fmt: skip
        ctx.add(others)
        note = block(
            1, t=t[before] + 1800_000, rtype=SMS, dirn=MT, sub=sub,
            **const_peer(1, MMSC_NOTICE), smslen=70,
        )  # fmt: skip
        ctx.add(note)
        ctx.blocked_sender[int(sub)] = sender
        record_truth(
            ctx,
            ROOT_CAUSES[4],
            sub,
            blocked,
            f"{m - before} MMS from {sender} rejected",
            "blocked-part-way" if part_way else "blocked-from-start",
        )


def case_encrypted_port(ctx: Context, k: int) -> None:
    """MMS through the WAP gateway on the WTLS ports 9202/9203, billed as volume."""
    rng = ctx.rng
    for sub in ctx.take(k):
        port = int(rng.choice([9202, 9203]))
        m = int(rng.integers(1, 5))
        t = np.sort(at(rng.integers(0, N_DAYS, m), diurnal_seconds(rng, m)))
        pfx, num, wid = ctx.contacts(np.full(m, sub), rng.integers(0, 10, m))
        size = mms_sizes(rng, m)
        sends = mms_submits(
            ctx, np.full(m, sub, np.int32), t, {"pfx": pfx, "pnum": num, "pwid": wid}, size,
            port=port,
        )  # fmt: skip
        sends["charge"] = np.where(
            sends["rtype"] == DATA,
            np.round((sends["bup"] + sends["bdown"]) / 1024 * 0.01, 2),
            0.0,
        )
        sends["app"] = np.where(sends["rtype"] == DATA, A_WAP, -1).astype(np.int8)
        # Fetches of received MMS on the same port.
        j = int(rng.integers(0, 4))
        tj = np.sort(at(rng.integers(0, N_DAYS, j), diurnal_seconds(rng, j)))
        down = mms_sizes(rng, j) + 800
        fetches = block(
            j, t=tj, rtype=DATA, dirn=MO, sub=sub, dur=10.0, mmsid=ctx.mms_ids(tj), apn=CMWAP,
            bup=rng.integers(380, 460, j), bdown=down, srv=SERVERS.index(WAP_GATEWAY),
            port=port, app=A_MMS, charge=np.round(down / 1024 * 0.01, 2),
        )  # fmt: skip
        rows = concat([sends, fetches])
        record_truth(ctx, ROOT_CAUSES[5], sub, rows, f"{m + j} MMS records on port {port}")


def case_roaming_band(ctx: Context, k: int) -> None:
    """A dual-band NOKIA 8910 in Canada or the USA: calls and SMS to it fail."""
    rng = ctx.rng
    dual = ctx.devices.tacs_of("NOKIA 8910", "NOKIA 8910i")
    for sub in ctx.take(k):
        ctx.set_handset(int(sub), dual)
        mcc = int(rng.choice([302, 310]))
        d0 = int(rng.integers(0, N_DAYS - 3))
        d1 = min(N_DAYS, d0 + int(rng.integers(3, 11)))
        ctx.blackout[int(sub)] = (d0, d1)
        m_voice = int(rng.integers(2, 9))
        m_sms = int(rng.integers(0, 4))
        m = m_voice + m_sms
        pfx, num, wid = ctx.contacts(np.full(m, sub), rng.integers(0, 8, m))
        is_sms = np.arange(m) >= m_voice
        rows = block(
            m, t=np.sort(at(rng.integers(d0, d1, m), diurnal_seconds(rng, m))),
            rtype=np.where(is_sms, SMS, VOICE), dirn=MT, sub=sub, pfx=pfx, pnum=num,
            pwid=wid, status=FAILED, scode=np.where(is_sms, 27, 20),
            dur=np.where(is_sms, np.nan, 0.0), mcc=mcc, smslen=np.where(is_sms, 60, -1),
        )  # fmt: skip
        record_truth(ctx, ROOT_CAUSES[6], sub, rows, f"{m} failed while in MCC {mcc}")


def case_auto_international_sms(ctx: Context, k: int) -> None:
    """A re-flashed European handset texts one foreign number every day by itself.

    The report has one length per handset. Variants in turn: several reports a day;
    one a day with the phone off on some days; and an owner who also texts a friend
    abroad now and then (a second foreign number, lengths that vary).
    """
    rng = ctx.rng
    euro = ctx.devices.tacs_of("Motorola E770", "Sony Ericsson K750")
    for i, sub in enumerate(ctx.take(k)):
        ctx.set_handset(int(sub), euro)
        if rng.random() < 0.7:
            number = 447_700_000_000 + int(rng.integers(0, 10**6)) * 100
        else:
            number = 46_700_000_000 + int(rng.integers(0, 10**7)) * 10
        prefix = P_00 if rng.random() < 0.8 else P_PLUS
        kind = i % 3
        d0 = int(rng.integers(0, N_DAYS - 10))
        days = np.arange(d0, min(N_DAYS, d0 + int(rng.integers(8, 26))))
        if kind == 1:
            variant = "daily-with-days-off"
            days = days[rng.random(days.shape[0]) < rng.uniform(0.7, 0.95)]
            per_day = np.ones(days.shape[0], np.int64)
        else:
            variant = "several-a-day" if kind == 0 else "owner-also-texts-abroad"
            days = days[rng.random(days.shape[0]) < 0.9]
            per_day = rng.integers(1, 4, days.shape[0])
        day = np.repeat(days, per_day)
        m = day.shape[0]
        t = np.sort(at(day, rng.integers(0, 86_400, m)))
        rows = block(
            m, t=t, rtype=SMS, dirn=MO, sub=sub, **const_peer(m, number, prefix),
            smslen=int(rng.choice([104, 98, 112, 120])), charge=1.0,
        )  # fmt: skip
        if kind == 2:
            friend, fprefix = international_numbers(rng, 1)
            j = int(rng.integers(2, 7))
            ctx.add(block(
                j, t=np.sort(at(rng.choice(N_DAYS, j, replace=False), diurnal_seconds(rng, j))),
                rtype=SMS, dirn=MO, sub=sub, **const_peer(j, int(friend[0]), int(fprefix[0])),
                smslen=sms_lengths(rng, j), charge=1.0,
            ))  # fmt: skip
        record_truth(ctx, ROOT_CAUSES[7], sub, rows, f"{m} SMS on {days.shape[0]} days", variant)


def case_flash_sms(ctx: Context, k: int) -> None:
    """The handset sends every SMS as class 0 (flash) from some day on."""
    rng = ctx.rng
    for sub in ctx.take(k):
        t_set = int(at(rng.integers(0, N_DAYS - 5), rng.integers(0, 86_400)))
        ctx.flash_from[int(sub)] = t_set
        m = int(rng.integers(3, 11))
        t = np.sort(t_set + rng.integers(600, 4 * 86_400, m) * 1000)
        pfx, num, wid = ctx.contacts(np.full(m, sub), rng.integers(0, 10, m))
        rows = block(
            m, t=t, rtype=SMS, dirn=MO, sub=sub, pfx=pfx, pnum=num, pwid=wid,
            smslen=sms_lengths(rng, m), smscls=0, charge=0.1,
        )  # fmt: skip
        record_truth(ctx, ROOT_CAUSES[8], sub, rows, "outgoing SMS as class 0")


def case_mail_polling(ctx: Context, k: int) -> None:
    """The handset's mail client opens a session to one server on a timer, day and night."""
    rng = ctx.rng
    nokia = ctx.devices.tacs_of("NOKIA 6108")
    for sub in ctx.take(k):
        if rng.random() < 0.5:
            ctx.set_handset(int(sub), nokia)
        period = int(rng.choice([300, 600, 900, 1800], p=[0.6, 0.15, 0.15, 0.1]))
        t = periodic_times(rng, period, int(rng.integers(2, 10)), 8, 0.03, 0.01)
        n = t.shape[0]
        srv, host = MAIL_SERVERS[int(rng.integers(len(MAIL_SERVERS)))]
        label = int(rng.choice([A_POP3_DNS, A_POP3, A_IMAP, -1], p=[0.35, 0.25, 0.15, 0.25]))
        if label == A_IMAP:
            port = int(rng.choice([143, 993]))
        elif label == -1:
            port = int(rng.choice([110, 995, 143, 993]))
        else:
            port = int(rng.choice([110, 995], p=[0.8, 0.2]))
        up = np.round(rng.integers(200, 600) * (1 + rng.normal(0, 0.03, n))).astype(np.int64)
        down = np.round(rng.integers(500, 3000) * (1 + rng.normal(0, 0.03, n))).astype(np.int64)
        rows = block(
            n, t=t, rtype=DATA, dirn=MO, sub=sub, dur=rng.integers(3, 10, n).astype(float),
            charge=np.round((up + down) / 1024 * 0.01, 2), apn=CMNET, bup=up, bdown=down,
            srv=srv, port=port, app=label, host=np.where(rng.random(n) < 0.5, host, -1),
        )  # fmt: skip
        record_truth(ctx, ROOT_CAUSES[9], sub, rows, f"{n} sessions every {period} s")


CASES: Final[dict[str, Callable[[Context, int], None]]] = {
    ROOT_CAUSES[0]: case_anti_theft,
    ROOT_CAUSES[1]: case_outbox_resend,
    ROOT_CAUSES[2]: case_retry_loop,
    ROOT_CAUSES[3]: case_dialup_trap,
    ROOT_CAUSES[4]: case_sender_blocklisted,
    ROOT_CAUSES[5]: case_encrypted_port,
    ROOT_CAUSES[6]: case_roaming_band,
    ROOT_CAUSES[7]: case_auto_international_sms,
    ROOT_CAUSES[8]: case_flash_sms,
    ROOT_CAUSES[9]: case_mail_polling,
}


# ---------------------------------------------------------------------------------------
# Putting the month together.


#: Target share of each record type in the whole month (cases and near-misses included).
TYPE_MIX: Final = {VOICE: 0.35, SMS: 0.30, MMS: 0.03, DATA: 0.31, CSD: 0.01}


def background(ctx: Context, n_records: int) -> None:
    """Fill the month up to ``n_records`` rows with ordinary traffic.

    Each record type gets what its target share leaves after the rows already made for
    cases and near-misses; packet data takes the remainder, so the total is exact.
    """
    made = np.concatenate([b["rtype"] for b in ctx.blocks] or [np.zeros(0, np.int8)])
    have = np.bincount(made, minlength=len(RECORD_TYPES))
    need = {k: max(0, round(share * n_records) - int(have[k])) for k, share in TYPE_MIX.items()}
    # An MMS sent is one mms row (plus its upload, a data row); one received is two mms
    # rows (deliver and retrieve, plus the fetch, a data row). Sent : received = 2 : 3.
    events = need[MMS] / 1.6
    mms = bg_mms(ctx, int(events * 0.4), int(events * 0.6))
    rest = n_records - ctx.rows() - int(mms["t"].shape[0])
    n_voice = min(need[VOICE], rest)
    n_sms = min(need[SMS], rest - n_voice)
    n_csd = min(need[CSD], rest - n_voice - n_sms)
    n_data = rest - n_voice - n_sms - n_csd
    if n_data < 0:
        raise ValueError("too few records for the background mix")
    for b in (bg_voice(ctx, n_voice), bg_sms(ctx, n_sms), bg_csd(ctx, n_csd), mms,
              bg_data(ctx, n_data)):  # fmt: skip
        ctx.add(b)


def move_days(rng: np.random.Generator, t: Array, lo: Array, hi: Array) -> Array:
    """Move times to a random day outside [lo, hi) (local days), keeping the time of day."""
    width = hi - lo
    day = rng.integers(0, N_DAYS - width)
    day = np.where(day >= lo, day + width, day)
    return t - local_day(t) * DAY_MS + day * DAY_MS


def finish(ctx: Context, rows: Block) -> Block:
    """Apply per-subscriber states to all rows: handsets, trips, cut-offs, flash setting.

    Each step first finds the rows of the few subscribers concerned, then works on those.
    """
    rng, pop = ctx.rng, ctx.pop
    n = rows["t"].shape[0]
    sub = rows["sub"]
    t = rows["t"]

    def rows_of(subs: Sequence[int] | Array) -> Array:
        flag = np.zeros(pop.size, bool)
        flag[np.asarray(subs, dtype=np.int64)] = True
        return np.flatnonzero(flag[sub])

    # A suspended number has no rows after its suspension: move them to earlier days.
    if ctx.cutoff_day:
        cut = np.full(pop.size, N_DAYS, np.int64)
        cut[list(ctx.cutoff_day)] = list(ctx.cutoff_day.values())
        idx = rows_of(list(ctx.cutoff_day))
        idx = idx[rows["bg"][idx] & (local_day(t[idx]) >= cut[sub[idx]])]
        new_day = (rng.random(idx.size) * cut[sub[idx]]).astype(np.int64)
        t[idx] += (new_day - local_day(t[idx])) * DAY_MS

    # A handset that cannot register abroad: no ordinary rows during the trip.
    if ctx.blackout:
        lo = np.zeros(pop.size, np.int64)
        hi = np.zeros(pop.size, np.int64)
        keys = list(ctx.blackout)
        lo[keys] = [v[0] for v in ctx.blackout.values()]
        hi[keys] = [v[1] for v in ctx.blackout.values()]
        idx = rows_of(keys)
        d = local_day(t[idx])
        s = sub[idx]
        idx = idx[rows["bg"][idx] & (d >= lo[s]) & (d < hi[s])]
        t[idx] = move_days(rng, t[idx], lo[sub[idx]], hi[sub[idx]])

    # Trips abroad: the visited network's MCC and roaming prices.
    mcc = column(rows, "mcc")
    idx = rows_of(np.flatnonzero(pop.trip_mcc >= 0))
    s = sub[idx]
    idx = idx[(t[idx] >= pop.trip_from[s]) & (t[idx] < pop.trip_to[s]) & (mcc[idx] < 0)]
    if idx.size:
        mcc[idx] = pop.trip_mcc[sub[idx]]
        kind = rows["rtype"][idx]
        charge = column(rows, "charge")[idx]
        minutes = np.ceil(np.nan_to_num(column(rows, "dur")[idx]) / 60)
        charge = np.where(kind == VOICE, np.round(minutes * 2.99, 2), charge)
        charge = np.where((kind == SMS) & (rows["dirn"][idx] == MO), 0.99, charge)
        rows["charge"][idx] = np.where(kind == DATA, charge * 10, charge)

    # At home, the switch writes the home MCC on some circuit-switched and SMS records.
    kind = rows["rtype"]
    home = (mcc < 0) & (kind != DATA) & (kind != MMS) & (rng.random(n) < 0.4)
    mcc[home] = HOME_MCC

    # A handset set to send flash SMS.
    if ctx.flash_from:
        since = np.zeros(pop.size, np.int64)
        since[list(ctx.flash_from)] = list(ctx.flash_from.values())
        idx = rows_of(list(ctx.flash_from))
        idx = idx[(kind[idx] == SMS) & (rows["dirn"][idx] == MO) & (t[idx] >= since[sub[idx]])]
        if idx.size:
            column(rows, "smscls")[idx] = 0

    # A sender on the handset's block list gets nothing through: ordinary MMS that would
    # come from it to that subscriber come from another SP code instead.
    if ctx.blocked_sender:
        blocked = np.zeros(pop.size, np.int64)
        blocked[list(ctx.blocked_sender)] = list(ctx.blocked_sender.values())
        idx = rows_of(list(ctx.blocked_sender))
        pnum = column(rows, "pnum")
        idx = idx[rows["bg"][idx] & (pnum[idx] == blocked[sub[idx]])]
        pnum[idx] = np.where(pnum[idx] == NEWSPAPER, SP_CODES[1], NEWSPAPER)

    # Handsets: the subscriber's handset at the time of the row.
    hs = column(rows, "hs")
    auto = hs == -1
    hs[auto] = pop.h1[sub[auto]]
    idx = rows_of(np.flatnonzero(pop.h2 >= 0))
    idx = idx[auto[idx] & (t[idx] >= pop.t_change[sub[idx]])]
    hs[idx] = pop.h2[sub[idx]]
    # The SMS centre does not always know the handset.
    hs[rows["bg"] & (kind == SMS) & (rng.random(n) < 0.01)] = -2
    return rows


#: The 4-digit ASCII groups "0000".."9999" as little-endian 32-bit words.
DIGIT_WORDS: Final = np.frombuffer(
    "".join(f"{i:04d}" for i in range(10_000)).encode(), dtype="<u4"
).copy()


def digit_matrix(numbers: Array, width: int) -> Array:
    """Zero-padded decimal digits of non-negative integers as an (n, width) uint8 matrix.

    Works 8 digits at a time with one int64 divmod, then in int32: far faster than a
    Python string per number.
    """
    n = numbers.shape[0]
    groups = max(1, -(-width // 8))
    words = np.empty((n, 2 * groups), dtype="<u4")
    x = numbers.astype(np.int64)
    for g in range(groups - 1, -1, -1):
        x, low = np.divmod(x, 10**8)
        hi, lo = np.divmod(low.astype(np.int32), 10_000)
        words[:, 2 * g] = DIGIT_WORDS[hi]
        words[:, 2 * g + 1] = DIGIT_WORDS[lo]
    return words.view(np.uint8)[:, 8 * groups - width :]


def prefixed_digits(numbers: Array, width: int, codes: Array, prefixes: Sequence[str],
                    plen: int) -> Array:  # fmt: skip
    """(n, plen + width) bytes: the row's prefix (all of length ``plen``), then digits."""
    digits = digit_matrix(numbers, width)
    if plen == 0:
        return digits
    table = np.zeros((len(prefixes), plen), np.uint8)
    for i, p in enumerate(prefixes):
        b = p.encode()[:plen]
        table[i, : len(b)] = np.frombuffer(b, np.uint8)
    return np.concatenate([table[codes], digits], axis=1)


def digit_strings(
    numbers: Array, widths: Array, prefix_codes: Array | None = None,
    prefixes: Sequence[str] = ("",), valid: Array | None = None,
) -> pa.Array:  # fmt: skip
    """A string array of ``prefix + zero-padded digits`` built without Python strings.

    When every valid row has the same layout (prefix length and width) the bytes are one
    matrix, raveled into Arrow's data buffer. Otherwise rows are grouped by layout and
    written into a string_view array (short strings inline, long ones in a data buffer),
    which Arrow then casts to a plain string array.
    """
    n = numbers.shape[0]
    widths = np.asarray(widths, dtype=np.int64)
    valid = widths > 0 if valid is None else valid & (widths > 0)
    codes = np.zeros(n, np.int64) if prefix_codes is None else prefix_codes.astype(np.int64)
    plen_of = np.array([len(p) for p in prefixes], np.int64)
    length = np.where(valid, plen_of[codes] + widths, 0)
    null_count = int(n - np.count_nonzero(valid))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if null_count else None
    layouts = np.unique((plen_of[codes] * 64 + widths)[valid])
    if layouts.shape[0] <= 1:
        rows = np.flatnonzero(valid) if null_count else slice(None)
        layout = int(layouts[0]) if layouts.shape[0] else 0
        data = prefixed_digits(numbers[rows], layout % 64, codes[rows], prefixes, layout // 64)
        data = data.ravel() if layout else np.zeros(0, np.uint8)
        offsets = np.zeros(n + 1, np.int32)
        np.cumsum(length, out=offsets[1:])
        return pa.Array.from_buffers(
            pa.string(), n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)], null_count
        )
    views = np.zeros((n, 16), np.uint8)
    views[:, :4] = length.astype("<i4").view(np.uint8).reshape(n, 4)
    long_parts: list[Array] = []
    long_size = 0
    key = codes * 64 + widths
    for code in range(len(prefixes)):
        for width in np.unique(widths[valid & (codes == code)]):
            rows = np.flatnonzero(valid & (key == code * 64 + width))
            text = prefixed_digits(numbers[rows], int(width), codes[rows], prefixes,
                                   len(prefixes[code]))  # fmt: skip
            size = text.shape[1]
            if size <= 12:  # inline in the view
                views[rows, 4 : 4 + size] = text
                continue
            views[rows, 4:8] = text[:, :4]
            start = long_size + size * np.arange(rows.shape[0], dtype=np.int64)
            views[rows, 12:16] = start.astype("<i4").view(np.uint8).reshape(-1, 4)
            long_parts.append(text.ravel())
            long_size += text.size
    data = np.concatenate(long_parts) if long_parts else np.zeros(0, np.uint8)
    as_views = pa.Array.from_buffers(
        pa.string_view(), n, [bitmap, pa.py_buffer(views), pa.py_buffer(data)], null_count
    )
    return as_views.cast(pa.string())


def vocab(codes: Array, words: Sequence[str]) -> pa.Array:
    """Strings from small-vocabulary codes (-1 is null)."""
    return pa.array(list(words), pa.string()).take(pa.array(codes, mask=codes < 0))


def table_of(ctx: Context, rows: Block) -> pa.Table:
    """The contract table from the internal columns (rows already in their final order)."""
    n = rows["t"].shape[0]
    pop = ctx.pop
    sub = rows["sub"]
    rtype = rows["rtype"]
    seq = np.zeros(n, np.int64)
    for k in range(len(RECORD_TYPES)):
        m = rtype == k
        seq[m] = np.arange(int(m.sum()))
    record_id = digit_strings(
        seq + 1, np.full(n, 11), rtype.astype(np.int64), RECORD_ID_PREFIX, np.ones(n, bool)
    )
    msisdn_all = digit_strings(pop.msisdn, np.full(pop.size, 11))
    imsi_all = digit_strings(pop.imsi, np.full(pop.size, 15))
    imei_all = digit_strings(ctx.handsets.imei(salt=int(ctx.rng.integers(0, 10**6))),
                             np.full(ctx.handsets.tac.shape[0], 15))  # fmt: skip
    imsi_null = ctx.rng.random(n) < 0.005
    hs = rows["hs"]

    def ints(name: str, dtype: pa.DataType) -> pa.Array:
        v = rows[name]
        return pa.array(v, dtype, mask=v < 0)

    def floats(name: str) -> pa.Array:
        v = rows[name]
        return pa.array(v, pa.float64(), mask=np.isnan(v))

    columns = {
        "record_id": record_id,
        "record_type": vocab(rtype, RECORD_TYPES),
        "direction": vocab(rows["dirn"], DIRECTIONS),
        "start_time": pa.array(rows["t"], pa.timestamp("ms", tz="UTC")),
        "duration_s": floats("dur"),
        "msisdn": msisdn_all.take(pa.array(sub)),
        "imsi": imsi_all.take(pa.array(sub, mask=imsi_null)),
        "imei": imei_all.take(pa.array(hs, mask=hs < 0)),
        "peer_number": digit_strings(rows["pnum"], rows["pwid"], rows["pfx"], PEER_PREFIXES),
        "status": vocab(rows["status"], STATUSES),
        "status_code": ints("scode", pa.int32()),
        "charge": floats("charge"),
        "visited_mcc": ints("mcc", pa.int32()),
        "sms_length": ints("smslen", pa.int32()),
        "sms_class": ints("smscls", pa.int32()),
        "mms_message_id": digit_strings(rows["mmsid"], np.where(rows["mmsid"] >= 0, 18, 0)),
        "mms_event": vocab(rows["mmsev"], MMS_EVENTS),
        "mms_size": ints("mmssize", pa.int64()),
        "apn": vocab(rows["apn"], APNS),
        "bytes_up": ints("bup", pa.int64()),
        "bytes_down": ints("bdown", pa.int64()),
        "server_ip": vocab(rows["srv"], SERVERS),
        "server_port": ints("port", pa.int32()),
        "app_protocol": vocab(rows["app"], APPS),
        "host": vocab(rows["host"], HOSTS),
    }
    return pa.table(columns, schema=SCHEMA)


def cases_per_cause(n_records: int, cases_per_million: float) -> int:
    """How many cases of each root cause a month of ``n_records`` gets."""
    if cases_per_million <= 0:
        return 0
    return max(3, round(cases_per_million * n_records / 1e6))


def generate_month(
    n_records: int,
    seed: int,
    n_subscribers: int | None = None,
    *,
    cases_per_million: float = 20.0,
) -> pa.Table:
    """A synthetic month of exactly ``n_records`` rows in the contract's schema.

    ``n_subscribers`` defaults to ``n_records // 100`` (at least 500). The injected cases
    (root cause, msisdn and more) are in the schema metadata; read them with
    :func:`truth_of`. Rows are in time order with unique ``record_id``.
    """
    if n_records < 1:
        raise ValueError("n_records must be positive")
    n_subs = n_subscribers if n_subscribers is not None else max(500, n_records // 100)
    rng = np.random.default_rng(seed)
    devices = load_devices()
    handsets = Handsets()
    pop = make_population(rng, n_subs, devices, handsets)
    ctx = Context(rng, pop, handsets, devices, pool=rng.permutation(n_subs).astype(np.int32))

    k = cases_per_cause(n_records, cases_per_million)
    if k:
        for inject in CASES.values():
            inject(ctx, k)

    def near(per_million: float, minimum: int = 1) -> int:
        return scaled(n_records, per_million, minimum)

    nm_notice_to_many(ctx, near(2))
    nm_hourly_status(ctx, near(3))
    nm_keepalive(ctx, near(5))
    nm_manual_mail(ctx, near(20))
    nm_international_voice(ctx, near(100))
    nm_friend_abroad(ctx, near(50))
    nm_newspaper(ctx, near(max(1.0, 0.015 * n_subs * 1e6 / n_records)))
    nm_memory_full(ctx, near(10))
    nm_mms_to_friends(ctx, near(30))
    nm_https_9202(ctx, near(3))
    nm_handset_changes(ctx, near(0.02 * n_subs * 1e6 / n_records), near(3), near(12))
    nm_trips(ctx, near(0.005 * n_subs * 1e6 / n_records))

    special = ctx.rows()
    if special > 0.6 * n_records:
        raise ValueError(
            f"{n_records} records are too few for the cases and near-misses ({special} rows);"
            " use more records or a lower cases_per_million"
        )
    if ctx.blocks:  # cases and near-misses: one block, in time order
        merged = concat(ctx.blocks)
        order = np.argsort(merged["t"], kind="stable")
        ctx.blocks = [{name: col[order] for name, col in merged.items()}]
    background(ctx, n_records)
    rows = assemble([finish(ctx, part) for part in ctx.blocks])
    table = table_of(ctx, rows)
    if table.num_rows != n_records:
        raise AssertionError(f"generated {table.num_rows} rows, expected {n_records}")
    truth = truth_frame(ctx)
    meta = {TRUTH_METADATA_KEY: truth.to_csv(index=False).encode()}
    meta[b"telediag.benchmark.params"] = json.dumps(
        {"n_records": n_records, "seed": seed, "n_subscribers": n_subs,
         "cases_per_million": cases_per_million}
    ).encode()  # fmt: skip
    return table.replace_schema_metadata(meta)


def truth_frame(ctx: Context) -> pd.DataFrame:
    """One row per injected case."""
    records = []
    for case in ctx.truth:
        t = case.rows["t"]
        records.append(
            {
                "root_cause": case.root_cause,
                "msisdn": str(ctx.pop.msisdn[case.sub]),
                "first_seen": pd.Timestamp(int(t.min()), unit="ms", tz="UTC").isoformat(),
                "last_seen": pd.Timestamp(int(t.max()), unit="ms", tz="UTC").isoformat(),
                "records": int(t.shape[0]),
                "note": case.note,
                "variant": case.variant,
                "expect": case.expect,
            }
        )
    return pd.DataFrame.from_records(records, columns=list(TRUTH_COLUMNS))


def truth_of(table: pa.Table) -> pd.DataFrame:
    """The injected cases stored in a generated table's (or Parquet file's) metadata."""
    meta = table.schema.metadata or {}
    if TRUTH_METADATA_KEY not in meta:
        raise KeyError("this table was not made by benchmarks/generate.py")
    return pd.read_csv(io.BytesIO(meta[TRUTH_METADATA_KEY]), dtype={"msisdn": str})


def truth_path(out: Path) -> Path:
    """Where the ground truth of ``out`` goes: ``<out>.truth.csv``."""
    return out.with_name(out.name + ".truth.csv")


def write_month(
    out: Path | str,
    n_records: int,
    seed: int,
    n_subscribers: int | None = None,
    *,
    parts: int = 1,
    cases_per_million: float = 20.0,
    compression: str = "snappy",
) -> pa.Table:
    """Generate a month and write it to ``out`` with its truth file; return the table.

    With ``parts == 1`` ``out`` is one Parquet file; otherwise a directory of ``parts``
    files ``part-00000.parquet`` ... holding consecutive time ranges.
    """
    out = Path(out)
    table = generate_month(n_records, seed, n_subscribers, cases_per_million=cases_per_million)
    out.parent.mkdir(parents=True, exist_ok=True)
    if parts <= 1:
        pq.write_table(table, out, compression=compression)
    else:
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("part-*.parquet"):
            old.unlink()
        bounds = np.linspace(0, table.num_rows, parts + 1).round().astype(int)
        for i in range(parts):
            piece = table.slice(int(bounds[i]), int(bounds[i + 1] - bounds[i]))
            pq.write_table(piece, out / f"part-{i:05d}.parquet", compression=compression)
    truth_of(table).to_csv(truth_path(out), index=False)
    return table


#: 3GPP TS 32.298-style record types by (record_type, direction, mms_event).
RECORD_TYPES_3GPP: Final = {
    ("voice", "mo", None): "moCallRecord",
    ("voice", "mt", None): "mtCallRecord",
    ("csd", "mo", None): "moCallRecord",
    ("csd", "mt", None): "mtCallRecord",
    ("sms", "mo", None): "moSMSRecord",
    ("sms", "mt", None): "mtSMSRecord",
    ("data", "mo", None): "pGWRecord",
    ("mms", "mo", "submit"): "mMO1SRecord",
    ("mms", "mt", "deliver"): "mMR1NRsRecord",
    ("mms", "mt", "retrieve"): "mMR1RtRecord",
}


def to_3gpp_csv_table(table: pa.Table, tz: str = "Asia/Shanghai") -> pa.Table:
    """The month as a mediation system exports it: 3GPP-style names, local compact
    times (``20080708035300``), the other party in ``calledNumber`` or
    ``callingNumber`` by direction, and the contract's name for what 3GPP lacks.

    Calls and SMS carry their GSM basic service (``TS11`` telephony, ``TS21``/``TS22``
    SMS, ``BS26`` asynchronous data at 9600 bit/s): 3GPP tells a data call from a voice
    call by its bearer service, not by the record type.
    """
    import pyarrow.compute as pc

    kind = pc.binary_join_element_wise(
        table["record_type"], table["direction"], pc.fill_null(table["mms_event"], "-"), "|"
    )
    names = {"|".join((r, d, e or "-")): v for (r, d, e), v in RECORD_TYPES_3GPP.items()}
    keys = pa.array(list(names))
    record_type = pc.take(pa.array(list(names.values())), pc.index_in(kind, keys))
    record_type = pc.coalesce(record_type, table["record_type"])
    local = pc.cast(table["start_time"], pa.timestamp("s", tz=tz), safe=False)
    mo = pc.equal(table["direction"], "mo")
    none = pa.scalar(None, pa.string())
    status = pc.replace_substring_regex(
        pc.replace_substring_regex(table["status"], "^ok$", "normalRelease"),
        "^failed$",
        "abnormalRelease",
    )
    cols = {
        "recordSequenceNumber": table["record_id"],
        "recordType": record_type,
        "basicService": pc.take(
            pa.array(["TS11", "BS26", "TS22", "TS21", None]),
            pc.fill_null(
                pc.index_in(
                    pc.binary_join_element_wise(table["record_type"], table["direction"], "|"),
                    pa.array(["voice|mo", "csd|mo", "sms|mo", "sms|mt"]),
                ),
                4,
            ),
        ),
        "servedMSISDN": table["msisdn"],
        "servedIMSI": table["imsi"],
        "servedIMEI": table["imei"],
        "recordOpeningTime": pc.strftime(local, format="%Y%m%d%H%M%S"),
        "duration": table["duration_s"],
        "calledNumber": pc.if_else(mo, table["peer_number"], none),
        "callingNumber": pc.if_else(mo, none, table["peer_number"]),
        "causeForRecClosing": status,
        "chargeAmount": table["charge"],
        "servingMCC": table["visited_mcc"],
        "messageID": table["mms_message_id"],
        "messageSize": table["mms_size"],
        "accessPointNameNI": table["apn"],
        "dataVolumeGPRSUplink": table["bytes_up"],
        "dataVolumeGPRSDownlink": table["bytes_down"],
    }
    rest = [c for c in table.column_names if c not in _IN_3GPP]
    cols.update({c: table[c] for c in rest})
    return pa.table(cols)


_IN_3GPP: Final = {
    "record_id", "record_type", "direction", "mms_event", "msisdn", "imsi", "imei",
    "start_time", "duration_s", "peer_number", "status", "charge", "visited_mcc",
    "mms_message_id", "mms_size", "apn", "bytes_up", "bytes_down",
}  # fmt: skip


def write_3gpp_csv(table: pa.Table, out: Path | str, tz: str = "Asia/Shanghai") -> Path:
    """Write the month as a 3GPP-style CSV (see :func:`to_3gpp_csv_table`)."""
    import pyarrow.csv as pacsv

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    options = pacsv.WriteOptions(quoting_style="none")  # as mediation systems write it
    pacsv.write_csv(to_3gpp_csv_table(table, tz), out, write_options=options)
    return out


def size_on_disk(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.glob("*.parquet"))
    return path.stat().st_size


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, required=True, help="Parquet file, or directory")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--subscribers", type=int, default=None)
    parser.add_argument("--parts", type=int, default=1, help="write a directory of K files")
    parser.add_argument("--cases-per-million", type=float, default=20.0)
    parser.add_argument("--compression", default="snappy")
    parser.add_argument(
        "--csv-3gpp",
        type=Path,
        metavar="CSV",
        help="also write the month here as a 3GPP-style CSV with local compact times",
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        table = write_month(
            args.out,
            args.records,
            args.seed,
            args.subscribers,
            parts=args.parts,
            cases_per_million=args.cases_per_million,
            compression=args.compression,
        )
    except ValueError as exc:
        print(f"generate: {exc}", file=sys.stderr)
        return 2
    if args.csv_3gpp:
        write_3gpp_csv(table, args.csv_3gpp)
        print(f"wrote {args.csv_3gpp} ({args.csv_3gpp.stat().st_size / 2**20:.0f} MB)")
    elapsed = time.perf_counter() - t0
    truth = truth_of(table)
    mb = size_on_disk(args.out) / 2**20
    print(
        f"wrote {table.num_rows:,} rows to {args.out} ({mb:.0f} MB) in {elapsed:.1f} s; "
        f"{len(truth)} injected cases in {truth_path(args.out)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
