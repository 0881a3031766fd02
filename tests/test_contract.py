"""Catalog-wide contract tests, run against every rule.

Hypothesis draws arbitrary valid records (every column of the contract, values from the
ranges real feeds use, nulls allowed where the contract allows them); whatever it
draws, no rule may raise, every finding must point at records that exist, and the
findings table keeps the contract's columns and types.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import telediag
from telediag.catalog import ROOT_CAUSES
from telediag.schema import COLUMNS

NUMBERS = st.sampled_from(
    [
        "13800000001",
        "13800000002",
        "+8613900000003",
        "0044770090012",
        "+43664684000",
        "10658000",
        "17266",
        "10086",
        "00195886201123456",
        "",
    ]
)
IMEIS = st.sampled_from(
    ["35885000000012", "35069800000018", "86091200000015", "35201401000017", "123", None]
)


def record(i: int) -> st.SearchStrategy[dict[str, object]]:
    opt = st.none
    return st.fixed_dictionaries(
        {
            "record_id": st.just(f"h{i}"),
            "record_type": st.sampled_from(["voice", "csd", "sms", "mms", "data"]),
            "direction": st.sampled_from(["mo", "mt"]),
            "start_time": st.datetimes(
                min_value=dt.datetime(2008, 7, 1), max_value=dt.datetime(2008, 7, 3)
            ),
            "duration_s": opt() | st.floats(0, 7200),
            "msisdn": st.sampled_from(["13800000001", "13800000002", "13800000003"]),
            "imsi": opt() | st.sampled_from(["460001", "460002"]),
            "imei": IMEIS,
            "peer_number": opt() | NUMBERS,
            "status": opt() | st.sampled_from(["ok", "failed", "rejected", "deferred", "expired"]),
            "status_code": opt() | st.integers(0, 5000),
            "charge": opt() | st.floats(0, 100),
            "visited_mcc": opt() | st.sampled_from([460, 302, 310, 262, 454, 440]),
            "sms_length": opt() | st.integers(0, 160),
            "sms_class": opt() | st.integers(0, 3),
            "mms_message_id": opt() | st.sampled_from(["m1", "m2"]),
            "mms_event": opt() | st.sampled_from(["submit", "deliver", "retrieve"]),
            "mms_size": opt() | st.integers(0, 300_000),
            "apn": opt() | st.sampled_from(["cmwap", "cmnet"]),
            "bytes_up": opt() | st.integers(0, 10**7),
            "bytes_down": opt() | st.integers(0, 10**7),
            "server_ip": opt() | st.sampled_from(["10.0.0.172", "211.138.24.66"]),
            "server_port": opt() | st.sampled_from([80, 110, 143, 443, 9201, 9202, 9203]),
            "app_protocol": opt() | st.sampled_from(["POP3_DNS", "IMAP", "HTTP", "WAP", "MMS"]),
            "host": opt() | st.just("mail.example"),
        }
    )


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(0, 60))
    rows = [draw(record(i)) for i in range(n)]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["start_time"] = pd.to_datetime(frame["start_time"])
    schema = pa.schema(
        [(c, pa.timestamp("us") if c == "start_time" else t) for c, t in COLUMNS.items()]
    )
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=tables())
def test_no_rule_raises_and_findings_point_at_real_records(
    catalog: list[telediag.Rule], table: pa.Table
) -> None:
    result = telediag.scan(table, rules=catalog, tz="Asia/Shanghai")
    assert result.errors == []
    ids = set(table["record_id"].to_pylist())
    f = result.findings
    for row in f.itertuples():
        assert set(row.record_ids) <= ids
        assert row.record_count == len(row.record_ids) > 0
        assert row.root_cause in ROOT_CAUSES
        assert 0.0 <= row.confidence <= 1.0
        assert row.first_seen <= row.last_seen
    assert set(result.evidence["record_id"]) <= ids
    assert str(f["first_seen"].dtype) == "datetime64[ms, UTC]"
    assert f["finding_id"].is_unique
