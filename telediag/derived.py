"""Columns derived from the canonical ones, computed only for the rows that need them.

A rule may filter or group on these as if they were columns. Each is computed over the
distinct values of its source columns (numbers, TACs, country codes), never per row.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from telediag.chunks import plain, take_rows
from telediag.context import ScanSettings

#: name -> (source columns, meaning)
DERIVED_COLUMNS: dict[str, tuple[tuple[str, ...], str]] = {
    "peer_international": (
        ("peer_number",),
        "the peer number is international as seen from the home country",
    ),
    "peer_country": (("peer_number",), "ISO region of the peer number, where known"),
    "handset_model": (("imei",), "vendor and model of the handset, from its TAC"),
    "handset_bands": (("imei",), "GSM bands of the handset model, e.g. 900/1800"),
    "handset_quirks": (("imei",), "root causes the handset model is known for"),
    "visited_country": (("visited_mcc",), "ISO region of the serving network"),
    "roaming": (
        ("visited_mcc",),
        "the serving network is in another country than the home country (null where "
        "visited_mcc is null or not a known country code)",
    ),
    "handset_supports_network": (
        ("imei", "visited_mcc"),
        "the handset has a GSM band the serving network uses (null if either is unknown)",
    ),
}


def _strings(values: pd.Series) -> pa.Array:
    """A text column as an Arrow string array (missing values as null), without an
    object-dtype copy."""
    return pa.Array.from_pandas(values, type=pa.string())


def _peer_international(
    columns: dict[str, pa.Array], settings: ScanSettings
) -> dict[str, pa.Array]:
    from telediag.numbers import is_international

    return {"peer_international": pa.array(is_international(columns["peer_number"], settings.home))}


def _peer(columns: dict[str, pa.Array], settings: ScanSettings) -> dict[str, pa.Array]:
    from telediag.numbers import classify_numbers

    frame = classify_numbers(columns["peer_number"], settings.home)
    return {
        "peer_international": pa.array(frame["international"].to_numpy(dtype=bool, na_value=False)),
        "peer_country": _strings(frame["region"]),
    }


def _handset(columns: dict[str, pa.Array], settings: ScanSettings) -> dict[str, pa.Array]:
    from telediag.devices import lookup_handsets

    frame = lookup_handsets(columns["imei"])  # model is the display name, vendor included
    return {f"handset_{name}": _strings(frame[name]) for name in ("model", "bands", "quirks")}


def _network(columns: dict[str, pa.Array], settings: ScanSettings) -> dict[str, pa.Array]:
    from telediag.devices import lookup_handsets, network_table, supports_network_arrow

    row, _ = _network_rows(columns["visited_mcc"])
    nets = network_table().table.take(pa.array(row, mask=row < 0))
    handsets = lookup_handsets(columns["imei"])
    return {
        "visited_country": nets["region"].combine_chunks(),
        "handset_supports_network": supports_network_arrow(
            handsets["bands"], nets["gsm_bands"].combine_chunks()
        ),
    }


def _network_rows(visited_mcc: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    from telediag.devices import region_of_mcc

    return region_of_mcc(visited_mcc)


def _roaming(columns: dict[str, pa.Array], settings: ScanSettings) -> dict[str, pa.Array]:
    """Abroad or not, from the home country of the settings: one comparison per country
    of networks.csv, then a lookup per row."""
    row, regions = _network_rows(columns["visited_mcc"])
    abroad = np.append(regions != settings.home.region, False)
    return {"roaming": pa.array(abroad[row], mask=row < 0)}


_PRODUCERS: dict[str, Callable[[dict[str, pa.Array], ScanSettings], dict[str, pa.Array]]] = {
    "peer_international": _peer_international,
    "peer_country": _peer,
    "handset_model": _handset,
    "handset_bands": _handset,
    "handset_quirks": _handset,
    "visited_country": _network,
    "handset_supports_network": _network,
    "roaming": _roaming,
}


def derive(name: str, table: pa.Table, rows: np.ndarray, settings: ScanSettings) -> pa.Array:
    """The derived column ``name`` for table ``rows``."""
    sources, _ = DERIVED_COLUMNS[name]
    columns = {c: plain(take_rows(table[c], rows)) for c in sources}
    if name == "handset_supports_network":
        columns["imei"] = plain(take_rows(table["imei"], rows))
    return _PRODUCERS[name](columns, settings)[name]
