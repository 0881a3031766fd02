"""Handsets and networks: what an IMEI says about the phone, and which GSM bands a country uses.

Two packaged tables answer two questions about a record:

* which handset made it: the TAC (first 8 digits of the IMEI) is looked up in
  ``data/devices.csv`` (the models the documented cases involve, with their GSM bands and
  known faults) and, failing that, in ``data/tacdb.csv`` (the Osmocom TAC database, vendor
  and model only);
* which GSM bands the serving network uses: ``visited_mcc`` is looked up in
  ``data/networks.csv``.

CDR columns are long (millions of rows) but hold few distinct IMEIs and country codes, so
every function here works on the distinct values and spreads the answers back with an
index ``take``; nothing calls Python once per row. The tables are read once per process.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from telediag.once import Once

__all__ = [
    "HandsetCatalog",
    "NetworkTable",
    "handset_catalog",
    "handset_has_quirk",
    "lookup_handsets",
    "model_name",
    "network_bands",
    "network_table",
    "plausible_imei",
    "supports_network",
]

#: What the vectorized functions accept as a column.
ColumnLike: TypeAlias = pa.Array | pa.ChunkedArray | pd.Series | np.ndarray | Sequence[Any]

#: Columns of :func:`lookup_handsets`, in order.
HANDSET_COLUMNS: Final = ("tac", "vendor", "model", "bands", "quirks")
#: Columns of :func:`network_bands`, in order.
NETWORK_COLUMNS: Final = ("country", "region", "gsm_bands")

# An IMEI is 14 digits (no check digit), 15 (with the Luhn check digit) or 16 (IMEISV).
_IMEI_PATTERN: Final = r"^[0-9]{14,16}$"
_TAC_LENGTH: Final = 8
_TAC_PATTERN: Final = r"^[0-9]{8}$"
_QUIRK_SEPARATOR: Final = ";"
# Mobile country codes are three digits.
_MCC_LIMIT: Final = 1000
# Above this many (handset bands x network bands) combinations, unique pairs are found by
# sorting instead of by a presence table.
_PAIR_TABLE_LIMIT: Final = 1 << 22

# tacdb.csv repeats "name" and "gsmarena" in its header; name the columns ourselves.
_TACDB_COLUMNS: Final = (
    "tac",
    "vendor",
    "model",
    "contributor",
    "comment",
    "gsmarena_model",
    "gsmarena_vendor",
    "aka",
)
# Line 1 of tacdb.csv is a copyright line, line 2 the header.
_TACDB_HEADER_LINES: Final = 2


# --------------------------------------------------------------------------- data files


def _data_bytes(name: str) -> bytes:
    """The bytes of a packaged data file (works from a source tree and from a wheel)."""
    return (resources.files("telediag") / "data" / name).read_bytes()


def _without_comments(raw: bytes) -> bytes:
    """Drop the lines whose first non-blank character is ``#``."""
    lines = raw.splitlines(keepends=True)
    return b"".join(line for line in lines if not line.lstrip().startswith(b"#"))


def _read_csv(
    raw: bytes,
    *,
    empty_is_null: bool,
    column_names: Sequence[str] | None = None,
    skip_rows: int = 0,
    include: Sequence[str] | None = None,
) -> pa.Table:
    """Read a CSV with every column as a string; ``empty_is_null`` turns "" into null."""
    read = pacsv.ReadOptions(
        skip_rows=skip_rows,
        column_names=list(column_names) if column_names is not None else None,
    )
    names = list(column_names) if column_names is not None else _header_of(raw)
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=empty_is_null,
        quoted_strings_can_be_null=empty_is_null,
        include_columns=list(include) if include is not None else None,
    )
    return pacsv.read_csv(io.BytesIO(raw), read_options=read, convert_options=convert)


def _header_of(raw: bytes) -> list[str]:
    first = raw.split(b"\n", 1)[0].decode("utf-8").strip()
    return [name.strip() for name in first.split(",")]


def _trimmed(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Trimmed strings, with "" made null."""
    text = pc.utf8_trim_whitespace(arr)
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _first_occurrences(keys: pa.Array) -> np.ndarray:
    """Row positions of the first occurrence of each distinct non-null key, in row order."""
    encoded = pc.dictionary_encode(keys)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    _, first = np.unique(codes, return_index=True)
    first = np.sort(first)
    return first[codes[first] >= 0]


def _clean(value: object) -> str | None:
    """A stripped string, or None for null, NA, NaN and blank values."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    text = str(value).strip()
    return text or None


def model_name(vendor: object, model: object) -> str | None:
    """A display name for a handset: the model, prefixed with its vendor unless it already is.

    ``model_name("Nokia", "8910")`` is ``"Nokia 8910"``; ``model_name("Nokia", "NOKIA 6108")``
    stays ``"NOKIA 6108"``. With no model the vendor alone is returned, and with neither,
    None. Null-like inputs (None, ``pd.NA``, NaN, blank strings) count as missing.
    """
    vendor_text, model_text = _clean(vendor), _clean(model)
    if model_text is None:
        return vendor_text
    if vendor_text is None or model_text.casefold().startswith(vendor_text.casefold()):
        return model_text
    return f"{vendor_text} {model_text}"


def _normalize_quirks(value: str | None) -> str | None:
    labels = [] if value is None else [q.strip() for q in value.split(_QUIRK_SEPARATOR)]
    kept = [q for q in labels if q]
    return _QUIRK_SEPARATOR.join(kept) if kept else None


@dataclass(frozen=True)
class HandsetCatalog:
    """Every known TAC with its handset's vendor, model, GSM bands and known faults.

    ``table`` has one row per TAC and the string columns ``tac`` (8 digits), ``vendor``,
    ``model`` (display name including the vendor, as :func:`model_name` makes it),
    ``bands`` (e.g. ``"900/1800"``, null where not known), ``bands_source``, ``quirks``
    (``;``-separated root-cause labels, null where none) and ``source`` (``"devices"`` or
    ``"tacdb"``). A TAC listed in devices.csv takes its row from there; tacdb.csv fills in
    vendor and model for the other TACs.
    """

    table: pa.Table

    @classmethod
    def load(cls) -> HandsetCatalog:
        """Build the catalog from the packaged devices.csv and tacdb.csv (prefer
        :func:`handset_catalog`, which does this once per process)."""
        devices = _read_csv(_without_comments(_data_bytes("devices.csv")), empty_is_null=True)
        tacdb = _read_csv(
            _data_bytes("tacdb.csv"),
            empty_is_null=True,
            column_names=_TACDB_COLUMNS,
            skip_rows=_TACDB_HEADER_LINES,
            include=("tac", "vendor", "model"),
        )
        dev = cls._devices_rows(devices)
        osmo = cls._tacdb_rows(tacdb, exclude=dev["tac"])
        table = pa.concat_tables([dev, osmo])
        return cls(table=table)

    @staticmethod
    def _devices_rows(devices: pa.Table) -> pa.Table:
        tac = _trimmed(devices["tac"])
        bad = pc.invert(pc.fill_null(pc.match_substring_regex(tac, _TAC_PATTERN), False))
        if pc.any(bad).as_py():
            raise ValueError("devices.csv: every tac must be exactly 8 digits")
        keep = _first_occurrences(tac)
        if len(keep) != len(tac):
            raise ValueError("devices.csv: a TAC is listed twice")
        vendors = _trimmed(devices["vendor"]).to_pylist()
        models = _trimmed(devices["model"]).to_pylist()
        quirks = [_normalize_quirks(q) for q in _trimmed(devices["quirk"]).to_pylist()]
        n = len(tac)
        return pa.table(
            {
                "tac": tac,
                "vendor": pa.array(vendors, pa.string()),
                "model": pa.array(
                    [model_name(v, m) for v, m in zip(vendors, models, strict=True)], pa.string()
                ),
                "bands": _trimmed(devices["bands"]),
                "bands_source": _trimmed(devices["bands_source"]),
                "quirks": pa.array(quirks, pa.string()),
                "source": pa.array(["devices"] * n, pa.string()),
            }
        )

    @staticmethod
    def _tacdb_rows(tacdb: pa.Table, exclude: pa.Array) -> pa.Table:
        tac = _trimmed(tacdb["tac"])
        usable = pc.and_(
            pc.fill_null(pc.match_substring_regex(tac, _TAC_PATTERN), False),
            pc.invert(pc.is_in(tac, value_set=exclude)),
        )
        rows = tacdb.filter(usable)
        tac = tac.filter(usable)
        first = pa.array(_first_occurrences(tac))
        tac = tac.take(first)
        vendors = _trimmed(rows["vendor"]).take(first).to_pylist()
        models = _trimmed(rows["model"]).take(first).to_pylist()
        n = len(tac)
        nulls = pa.nulls(n, pa.string())
        return pa.table(
            {
                "tac": tac,
                "vendor": pa.array(vendors, pa.string()),
                "model": pa.array(
                    [model_name(v, m) for v, m in zip(vendors, models, strict=True)], pa.string()
                ),
                "bands": nulls,
                "bands_source": nulls,
                "quirks": nulls,
                "source": pa.array(["tacdb"] * n, pa.string()),
            }
        )

    def __len__(self) -> int:
        return self.table.num_rows

    def quirk_labels(self) -> list[str]:
        """Every root-cause label some handset in the catalog is known for, sorted."""
        labels: set[str] = set()
        for value in self.table["quirks"].drop_null().to_pylist():
            labels.update(value.split(_QUIRK_SEPARATOR))
        return sorted(labels)


@Once
def handset_catalog() -> HandsetCatalog:
    """The packaged handset catalog, read on first use and then kept for the process."""
    return HandsetCatalog.load()


@dataclass(frozen=True)
class NetworkTable:
    """GSM bands by mobile country code, from the packaged networks.csv.

    ``table`` holds one row per country with the string columns ``country``, ``region``
    (ISO 3166-1 alpha-2) and ``gsm_bands``: e.g. ``"900/1800"``, or ``""`` for a country
    with no GSM network at all (Japan, South Korea). ``row_of_mcc`` maps each MCC 0-999 to
    its row in ``table``, or -1 where no row covers it.
    """

    table: pa.Table
    row_of_mcc: np.ndarray

    @classmethod
    def load(cls) -> NetworkTable:
        """Build the table from networks.csv (prefer :func:`network_table`, which caches it)."""
        raw = _read_csv(_without_comments(_data_bytes("networks.csv")), empty_is_null=False)
        lo = pc.cast(pc.utf8_trim_whitespace(raw["mcc_from"]), pa.int64()).to_numpy()
        hi = pc.cast(pc.utf8_trim_whitespace(raw["mcc_to"]), pa.int64()).to_numpy()
        if ((lo < 0) | (hi >= _MCC_LIMIT) | (lo > hi)).any():
            raise ValueError("networks.csv: mcc_from..mcc_to must be a range within 0-999")
        row_of_mcc = np.full(_MCC_LIMIT, -1, dtype=np.int64)
        for row, (start, stop) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True)):
            if (row_of_mcc[start : stop + 1] >= 0).any():
                raise ValueError(f"networks.csv: MCC range {start}-{stop} overlaps another row")
            row_of_mcc[start : stop + 1] = row
        table = pa.table(
            {
                "country": pc.utf8_trim_whitespace(raw["country"]),
                "region": pc.utf8_trim_whitespace(raw["region"]),
                "gsm_bands": pc.utf8_trim_whitespace(raw["gsm_bands"]),
            }
        )
        return cls(table=table, row_of_mcc=row_of_mcc)


@Once
def network_table() -> NetworkTable:
    """The packaged GSM-bands-by-country table, read on first use and then kept."""
    return NetworkTable.load()


# --------------------------------------------------------------------------- columns


def _as_arrow(values: ColumnLike) -> pa.Array | pa.ChunkedArray:
    """Any supported column as Arrow, with pandas/NumPy missing values made null."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values
    if isinstance(values, str | bytes):
        raise TypeError("expected a column of values, not a single string")
    if isinstance(values, pd.Series | np.ndarray):
        return pa.array(values, from_pandas=True)
    return pa.array(list(values), from_pandas=True)


def _as_string(arr: pa.Array) -> pa.Array:
    if pa.types.is_string(arr.type):
        return arr
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.string())
    return pc.cast(arr, pa.string())


def _distinct(values: ColumnLike) -> tuple[pa.Array, pa.Array]:
    """The distinct values of a column as strings, and each row's index into them.

    Row indices are null where the row is null. A dictionary-encoded input is used as it
    is: its dictionary already holds the distinct values.
    """
    arr = _as_arrow(values)
    if isinstance(arr, pa.ChunkedArray):
        if not pa.types.is_dictionary(arr.type):
            arr = pc.dictionary_encode(arr)
        if arr.num_chunks == 0:
            return pa.array([], pa.string()), pa.array([], pa.int32())
        chunks = pa.table({"v": arr}).unify_dictionaries()["v"].chunks
        indices = pa.concat_arrays([chunk.indices for chunk in chunks])
        return _as_string(chunks[0].dictionary), indices
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    return _as_string(arr.dictionary), arr.indices


def _codes(indices: pa.Array, null_code: int) -> np.ndarray:
    """Row indices as int64 NumPy, with ``null_code`` for null rows."""
    filled = pc.fill_null(pc.cast(indices, pa.int64()), null_code)
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=np.int64)


def _to_frame(table: pa.Table, index: pd.Index | None) -> pd.DataFrame:
    columns = {
        name: pd.Series(pd.array(table[name], dtype=pd.StringDtype()), index=index)
        for name in table.column_names
    }
    return pd.DataFrame(columns, index=index)


# --------------------------------------------------------------------------- handsets


def plausible_imei(imeis: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """True where a string is a plausible IMEI: 14-16 ASCII digits whose TAC (the first
    eight) is not all zeros. Blanks, placeholders such as ``000000000000000``, wrong
    lengths and text give False; nulls stay null.

    Only plausible IMEIs identify a handset: anything else must never link two
    subscribers as if they had shared one.
    """
    text = imeis if pa.types.is_string(imeis.type) else pc.cast(imeis, pa.string())
    length = pc.binary_length(text)
    right_length = pc.and_(pc.greater_equal(length, 14), pc.less_equal(length, 16))
    digits = pc.and_(right_length, pc.ascii_is_decimal(text))
    return pc.and_(digits, pc.invert(pc.starts_with(text, "0" * _TAC_LENGTH)))


def _tac_of(values: pa.Array) -> pa.Array:
    """The TAC of each IMEI string; null unless it is 14-16 ASCII digits (after trimming)."""
    text = pc.utf8_trim_whitespace(values)
    valid = pc.fill_null(pc.match_substring_regex(text, _IMEI_PATTERN), False)
    tac = pc.utf8_slice_codeunits(text, 0, _TAC_LENGTH)
    return pc.if_else(valid, tac, pa.scalar(None, pa.string()))


def _lookup_distinct(values: pa.Array) -> pa.Table:
    """Look up distinct IMEI strings: one row of :data:`HANDSET_COLUMNS` per value.

    Every public handset function funnels its distinct values through here, once.
    """
    catalog = handset_catalog().table
    tac = _tac_of(values)
    row = pc.index_in(tac, value_set=catalog["tac"])
    found = catalog.select(list(HANDSET_COLUMNS[1:])).take(row)
    return found.add_column(0, "tac", tac)


def lookup_handsets(imeis: ColumnLike) -> pd.DataFrame:
    """The handset behind each IMEI: one row per input, in input order.

    ``imeis`` is a pyarrow Array or ChunkedArray (plain or dictionary-encoded), a pandas
    Series, a NumPy array or a list of strings; nulls are allowed. Only the distinct IMEIs
    are looked up, so a column of millions of records costs little more than its unique
    values. Numbers are turned into text as they are, so pass IMEIs as strings to keep
    leading zeros.

    The result has the string columns:

    * ``tac``: the first 8 digits, for an IMEI of 14-16 digits (surrounding blanks are
      ignored); null for null input and for anything else (letters, too short, too long);
    * ``vendor`` and ``model``: the handset, ``model`` being a display name that includes
      the vendor (e.g. ``"NOKIA 8910"``, ``"Nokia 1610"``); null when the TAC is unknown;
    * ``bands``: GSM bands in MHz such as ``"900/1800"``, null where not known (only the
      models of devices.csv carry bands);
    * ``quirks``: ``;``-separated root-cause labels the model is known for, or null.

    A pandas Series keeps its index; other inputs get a RangeIndex.
    """
    index = imeis.index if isinstance(imeis, pd.Series) else None
    distinct, indices = _distinct(imeis)
    per_row = _lookup_distinct(distinct).take(indices)
    return _to_frame(per_row, index)


def handset_has_quirk(imeis: ColumnLike, root_cause: str) -> np.ndarray:
    """For each IMEI, whether its handset model is known for ``root_cause``.

    Returns a NumPy bool array, one value per input; unknown, malformed and null IMEIs
    give False. ``root_cause`` is a label of the root-cause vocabulary, e.g.
    ``"mms_retry_loop"``.
    """
    distinct, indices = _distinct(imeis)
    quirks = _lookup_distinct(distinct)["quirks"].to_pylist()
    has = [q is not None and root_cause in q.split(_QUIRK_SEPARATOR) for q in quirks]
    flags = np.array([*has, False], dtype=bool)
    return flags[_codes(indices, len(has))]


# --------------------------------------------------------------------------- networks


def network_bands(visited_mcc: ColumnLike) -> pd.DataFrame:
    """The country and GSM bands of each serving network's mobile country code.

    ``visited_mcc`` holds integers (a pyarrow Array or ChunkedArray, pandas Series, NumPy
    array or list; nulls and NaN allowed). The result has one row per input, in order,
    with the string columns ``country``, ``region`` (ISO 3166-1 alpha-2) and ``gsm_bands``
    (e.g. ``"900/1800"``; the empty string for a country with no GSM network, such as
    Japan). All three are null for a null MCC or one networks.csv does not cover; text
    that is not a number of up to three digits counts as null.
    A pandas Series keeps its index; other inputs get a RangeIndex.
    """
    index = visited_mcc.index if isinstance(visited_mcc, pd.Series) else None
    networks = network_table()
    arr = _as_arrow(visited_mcc)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.int64())
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        # Text that is not a plain number is no country code: treat it as missing.
        text = pc.utf8_trim_whitespace(arr)
        digits = pc.fill_null(pc.match_substring_regex(text, r"^[0-9]{1,3}$"), False)
        arr = pc.if_else(digits, text, pa.scalar(None, text.type))
    row, _ = region_of_mcc(arr)
    take = pa.array(row, mask=row < 0)
    return _to_frame(networks.table.take(take), index)


def _parse_bands(text: str | None, *, empty_means_none: bool) -> frozenset[int] | None:
    """Bands like "850/900/1800" as a set of MHz; None when unknown or unreadable.

    For a network, "" is a known answer (no GSM at all, ``empty_means_none``); for a
    handset it says nothing, so it reads as unknown.
    """
    if text is None:
        return None
    tokens = [t for t in re.split(r"[/,\s]+", text.strip()) if t]
    if not tokens:
        return frozenset() if empty_means_none else None
    if not all(t.isascii() and t.isdigit() for t in tokens):
        return None
    return frozenset(int(t) for t in tokens)


def _support(handset: frozenset[int] | None, network: frozenset[int] | None) -> int:
    """0 = no common band, 1 = a common band, 2 = unknown."""
    if handset is None or network is None:
        return 2
    return 1 if handset & network else 0


def supports_network(handset_bands: ColumnLike, network_bands: ColumnLike) -> np.ndarray:
    """Whether each handset can use each serving network's GSM bands, row by row.

    Both arguments are columns of band strings of the same length, as in the ``bands``
    column of :func:`lookup_handsets` and the ``gsm_bands`` column of
    :func:`network_bands`. The answer, a NumPy object array, holds per row:

    * True when the handset has at least one GSM band the network uses;
    * False when it has none of them (a 900/1800 handset on an 850/1900 network), and for
      any handset of known bands in a country without GSM (``""``, e.g. Japan);
    * None when either side is unknown (null, or a handset with blank bands).

    Only GSM is considered: a handset that also has 3G may still find service in a country
    where this says False.
    """
    answers = np.array([False, True, None], dtype=object)
    return answers[_support_codes(handset_bands, network_bands)]


def _support_codes(handset_bands: ColumnLike, network_bands: ColumnLike) -> np.ndarray:
    """0 = no common band, 1 = a common band, 2 = unknown, per row (int8)."""
    hand_values, hand_idx = _distinct(handset_bands)
    net_values, net_idx = _distinct(network_bands)
    if len(hand_idx) != len(net_idx):
        raise ValueError(
            f"supports_network: {len(hand_idx)} handset rows but {len(net_idx)} network rows"
        )
    hands = [_parse_bands(v, empty_means_none=False) for v in hand_values.to_pylist()]
    nets = [_parse_bands(v, empty_means_none=True) for v in net_values.to_pylist()]
    # The last code on each side stands for a null row.
    hands.append(None)
    nets.append(None)
    width = len(nets)
    pair = _codes(hand_idx, len(hands) - 1) * width + _codes(net_idx, width - 1)
    size = len(hands) * width
    if size <= _PAIR_TABLE_LIMIT:
        present = np.zeros(size, dtype=bool)
        present[pair] = True
        outcome = np.full(size, 2, dtype=np.int8)
        for code in np.flatnonzero(present).tolist():
            outcome[code] = _support(hands[code // width], nets[code % width])
        result = outcome[pair]
    else:
        unique_pairs, inverse = np.unique(pair, return_inverse=True)
        per_pair = np.array(
            [_support(hands[c // width], nets[c % width]) for c in unique_pairs.tolist()],
            dtype=np.int8,
        )
        result = per_pair[inverse]
    return np.asarray(result, dtype=np.int8)


def supports_network_arrow(handset_bands: ColumnLike, network_bands: ColumnLike) -> pa.Array:
    """:func:`supports_network` as an Arrow boolean array (null where unknown), without a
    Python object per row."""
    codes = _support_codes(handset_bands, network_bands)
    return pa.array(codes == 1, mask=codes == 2)


def region_of_mcc(visited_mcc: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """For integer MCCs: the row of networks.csv (-1 where none covers it) and the ISO
    region of every row of that table, as NumPy arrays (vectorized, no per-row text)."""
    networks = network_table()
    mcc = _codes(pc.cast(visited_mcc, pa.int64()), -1)
    known = (mcc >= 0) & (mcc < _MCC_LIMIT)
    row = np.full(mcc.shape[0], -1, dtype=np.int64)
    row[known] = networks.row_of_mcc[mcc[known]]
    regions = np.asarray(networks.table["region"].to_pylist(), dtype=object)
    return row, regions
