"""The canonical record table of the interchange contract (shared spec, section 1).

Everything downstream of :mod:`telediag.normalize` relies on these names and types.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

RECORD_TYPES: Final = ("voice", "csd", "sms", "mms", "data")
DIRECTIONS: Final = ("mo", "mt")
STATUSES: Final = ("ok", "failed", "rejected", "deferred", "expired")
MMS_EVENTS: Final = ("submit", "deliver", "retrieve")

#: Every column of the contract with its Arrow type; timestamps are made tz-aware (UTC)
#: during normalization.
COLUMNS: Final[dict[str, pa.DataType]] = {
    "record_id": pa.string(),
    "record_type": pa.string(),
    "direction": pa.string(),
    "start_time": pa.timestamp("ms", tz="UTC"),
    "duration_s": pa.float64(),
    "msisdn": pa.string(),
    "imsi": pa.string(),
    "imei": pa.string(),
    "peer_number": pa.string(),
    "status": pa.string(),
    "status_code": pa.int32(),
    "charge": pa.float64(),
    "visited_mcc": pa.int32(),
    "sms_length": pa.int32(),
    "sms_class": pa.int32(),
    "mms_message_id": pa.string(),
    "mms_event": pa.string(),
    "mms_size": pa.int64(),
    "apn": pa.string(),
    "bytes_up": pa.int64(),
    "bytes_down": pa.int64(),
    "server_ip": pa.string(),
    "server_port": pa.int32(),
    "app_protocol": pa.string(),
    "host": pa.string(),
}

REQUIRED: Final = ("record_type", "direction", "start_time", "msisdn")

#: Columns whose values must not be negative.
NON_NEGATIVE: Final = ("duration_s", "bytes_up", "bytes_down", "mms_size")

#: Columns whose values must lie in a range narrower than their type's (inclusive):
#: a mobile country code has three digits, a port 16 bits, a TP-DCS class is 0-3.
VALUE_RANGES: Final[dict[str, tuple[int, int]]] = {
    "visited_mcc": (0, 999),
    "server_port": (0, 65535),
    "sms_class": (0, 3),
}

#: Identifiers: numbers written as text, where a leading 0 or + is part of the value.
IDENTIFIERS: Final = ("msisdn", "peer_number", "imsi", "imei")
STRING_COLUMNS: Final = tuple(n for n, t in COLUMNS.items() if pa.types.is_string(t))
NUMERIC_COLUMNS: Final = tuple(
    n for n, t in COLUMNS.items() if pa.types.is_integer(t) or pa.types.is_floating(t)
)
