"""Handset and network look-ups: packaged catalogs, vectorized lookups, band support."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telediag import devices
from telediag.catalog import ROOT_CAUSES
from telediag.devices import (
    handset_catalog,
    handset_has_quirk,
    lookup_handsets,
    model_name,
    network_bands,
    network_table,
    supports_network,
)

# TACs from devices.csv, completed to 15-digit IMEIs.
NOKIA_6108 = "358850001234567"  # 900/1800/1900, mms_retry_loop;mail_polling
NOKIA_3108 = "352538009876543"  # 900/1800/1900, mms_retry_loop
NOKIA_8910 = "350698001112223"  # 900/1800, roaming_band_unsupported
NOKIA_6230 = "35293300555666"  # tri-band 900/1800/1900, no quirk (14 digits: no check digit)
SAMSUNG_D838 = "3548440011223344"  # 16 digits (IMEISV), mms_sender_blocklisted
# Only in tacdb.csv: vendor and model, no bands or quirks.
OPPO_N1 = "356759040000001"
LG_2000 = "010628001234567"  # a TAC with a leading zero
UNKNOWN_TAC = "999999990000001"

COLUMNS = ["tac", "vendor", "model", "bands", "quirks"]

MCC_CHINA, MCC_CANADA, MCC_GERMANY, MCC_JAPAN, MCC_USA = 460, 302, 262, 440, 310


def row(frame: pd.DataFrame, i: int) -> dict[str, object]:
    return {str(k): (None if pd.isna(v) else v) for k, v in frame.iloc[i].items()}


# --------------------------------------------------------------------------- data files


def test_data_files_are_packaged_resources() -> None:
    data = resources.files("telediag") / "data"
    for name in ("devices.csv", "tacdb.csv", "networks.csv", "NOTICE.md"):
        assert (data / name).is_file(), name
    notice = (data / "NOTICE.md").read_text(encoding="utf-8")
    assert "Harald Welte and contributors" in notice
    assert "CC BY-SA 3.0" in notice
    assert "devices.csv" in notice


def test_catalog_is_loaded_once() -> None:
    assert handset_catalog() is handset_catalog()
    assert network_table() is network_table()


def test_catalog_prefers_devices_csv_and_keeps_tacdb_for_the_rest() -> None:
    table = handset_catalog().table.to_pandas().set_index("tac")
    assert table.index.is_unique
    assert table.index.str.fullmatch(r"[0-9]{8}").all()
    assert table.loc["35885000", "source"] == "devices"
    assert table.loc["35885000", "bands"] == "900/1800/1900"
    assert table.loc["35675904", "source"] == "tacdb"
    assert pd.isna(table.loc["35675904", "bands"])
    # tacdb has about 22.5k TACs; the two TACs devices.csv assumes are added to them.
    assert len(table) > 22_000
    assert {"35484400", "86091200"} <= set(table.index)


def test_every_quirk_is_a_root_cause_label() -> None:
    labels = handset_catalog().quirk_labels()
    assert set(labels) <= set(ROOT_CAUSES)
    assert set(labels) == {
        "anti_theft_sms_forwarding",
        "handset_auto_international_sms",
        "mail_polling",
        "mms_retry_loop",
        "mms_sender_blocklisted",
        "roaming_band_unsupported",
    }


# --------------------------------------------------------------------------- handsets


def test_nokia_6108_and_3108_resolve_with_their_quirks() -> None:
    frame = lookup_handsets([NOKIA_6108, NOKIA_3108])
    assert list(frame.columns) == COLUMNS
    assert row(frame, 0) == {
        "tac": "35885000",
        "vendor": "Nokia",
        "model": "NOKIA 6108",
        "bands": "900/1800/1900",
        "quirks": "mms_retry_loop;mail_polling",
    }
    assert row(frame, 1) == {
        "tac": "35253800",
        "vendor": "Nokia",
        "model": "NOKIA 3108",
        "bands": "900/1800/1900",
        "quirks": "mms_retry_loop",
    }


def test_handset_has_quirk() -> None:
    imeis = [NOKIA_6108, NOKIA_3108, NOKIA_8910, None, "garbage", SAMSUNG_D838]
    retry = handset_has_quirk(imeis, "mms_retry_loop")
    assert retry.dtype == np.bool_
    assert retry.tolist() == [True, True, False, False, False, False]
    assert handset_has_quirk(imeis, "mail_polling").tolist() == [
        True,
        False,
        False,
        False,
        False,
        False,
    ]
    blocklist = handset_has_quirk(imeis, "mms_sender_blocklisted")
    assert blocklist.tolist() == [False, False, False, False, False, True]
    # A label is matched whole, never as a piece of another.
    assert not handset_has_quirk([NOKIA_6108], "mms_retry").any()


def test_tacdb_only_handset_has_vendor_and_model_but_no_bands() -> None:
    frame = lookup_handsets([OPPO_N1, LG_2000])
    assert row(frame, 0) == {
        "tac": "35675904",
        "vendor": "Oppo",
        "model": "Oppo N1",
        "bands": None,
        "quirks": None,
    }
    assert row(frame, 1)["tac"] == "01062800"
    assert row(frame, 1)["model"] == "LG-2000"


def test_imei_lengths_14_to_16_are_accepted() -> None:
    frame = lookup_handsets([NOKIA_6230, NOKIA_8910, SAMSUNG_D838, f"  {NOKIA_8910}\t"])
    assert frame["model"].tolist() == [
        "NOKIA 6230",
        "NOKIA 8910",
        "Samsung SGH-D838",
        "NOKIA 8910",
    ]


@pytest.mark.parametrize(
    "bad",
    [
        "3588500012345",  # 13 digits
        "35885000123456789",  # 17 digits
        "3588500012345X",  # a letter
        "35-885000-123456",  # separators
        "",
        "   ",
        "358850001234567".replace("5", "٥"),  # Arabic-Indic digits are not ASCII digits
    ],
)
def test_malformed_imeis_give_nulls(bad: str) -> None:
    frame = lookup_handsets([bad])
    assert frame.isna().all(axis=None)


def test_unknown_tac_keeps_its_tac_and_nulls_the_rest() -> None:
    frame = lookup_handsets([UNKNOWN_TAC])
    assert row(frame, 0) == {
        "tac": "99999999",
        "vendor": None,
        "model": None,
        "bands": None,
        "quirks": None,
    }


def test_order_is_kept_with_nulls_interleaved() -> None:
    imeis = [None, NOKIA_8910, None, "junk", NOKIA_6108, None, NOKIA_8910, OPPO_N1, None]
    frame = lookup_handsets(pa.array(imeis, type=pa.string()))
    assert len(frame) == len(imeis)
    assert frame["model"].tolist()[1:8] == [
        "NOKIA 8910",
        pd.NA,
        pd.NA,
        "NOKIA 6108",
        pd.NA,
        "NOKIA 8910",
        "Oppo N1",
    ]
    assert frame["model"].isna().tolist() == [
        True,
        False,
        True,
        True,
        False,
        True,
        False,
        False,
        True,
    ]
    assert all(str(frame[c].dtype) == "string" for c in COLUMNS)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda xs: xs, id="list"),
        pytest.param(lambda xs: pa.array(xs, type=pa.string()), id="arrow"),
        pytest.param(lambda xs: pa.array(xs, type=pa.large_string()), id="arrow-large"),
        pytest.param(lambda xs: pa.array(xs).dictionary_encode(), id="arrow-dictionary"),
        pytest.param(
            lambda xs: pa.chunked_array([pa.array(xs[:2]), pa.array([], pa.string()), xs[2:]]),
            id="chunked",
        ),
        pytest.param(
            lambda xs: pa.chunked_array(
                [pa.array(xs[:3]).dictionary_encode(), pa.array(xs[3:]).dictionary_encode()]
            ),
            id="chunked-dictionary",
        ),
        pytest.param(lambda xs: pd.Series(xs, dtype="string"), id="series-string"),
        pytest.param(lambda xs: pd.Series(xs, dtype=object), id="series-object"),
        pytest.param(lambda xs: pd.Series(xs, dtype="category"), id="series-category"),
        pytest.param(lambda xs: np.array(xs, dtype=object), id="numpy"),
    ],
)
def test_every_input_kind_gives_the_same_answer(make) -> None:  # type: ignore[no-untyped-def]
    imeis = [NOKIA_8910, None, OPPO_N1, "bad", NOKIA_8910, NOKIA_6108]
    expected = lookup_handsets(imeis)
    got = lookup_handsets(make(imeis))
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected)


def test_series_index_is_kept() -> None:
    imeis = pd.Series([NOKIA_8910, None], index=[10, 3])
    assert lookup_handsets(imeis).index.tolist() == [10, 3]


def test_empty_input() -> None:
    frame = lookup_handsets([])
    assert list(frame.columns) == COLUMNS
    assert len(frame) == 0
    assert len(lookup_handsets(pa.chunked_array([], pa.string()))) == 0
    assert handset_has_quirk([], "mms_retry_loop").shape == (0,)


def test_a_single_string_is_refused() -> None:
    with pytest.raises(TypeError):
        lookup_handsets(NOKIA_6108)


def test_lookup_runs_once_on_the_distinct_values(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str | None]] = []
    original = devices._lookup_distinct

    def counting(values: pa.Array) -> pa.Table:
        seen.append(values.to_pylist())
        return original(values)

    monkeypatch.setattr(devices, "_lookup_distinct", counting)
    n = 30_000
    pool = np.array([NOKIA_8910, NOKIA_6108, None, "junk"], dtype=object)
    imeis = pa.array(pool[np.arange(n) % 4], type=pa.string())

    frame = lookup_handsets(imeis)
    assert len(seen) == 1
    assert set(seen[0]) == {NOKIA_8910, NOKIA_6108, "junk"} and len(seen[0]) == 3
    assert frame["model"].value_counts().to_dict() == {"NOKIA 8910": n // 4, "NOKIA 6108": n // 4}

    seen.clear()
    flags = handset_has_quirk(imeis, "roaming_band_unsupported")
    assert len(seen) == 1 and len(seen[0]) == 3
    assert flags.sum() == n // 4


# Hypothesis: strings that are sometimes real IMEIs, sometimes near misses.
_known_tacs = st.sampled_from(["35885000", "35069800", "35675904", "01062800", "99999999"])
_imei_like = st.builds(
    lambda tac, rest: tac + rest,
    _known_tacs,
    st.text(alphabet="0123456789", min_size=4, max_size=10),
)
_any_imei = st.one_of(
    st.none(),
    _imei_like,
    st.text(alphabet="0123456789 x-", max_size=18),
    st.text(max_size=20),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_any_imei, min_size=1, max_size=25))
def test_lookup_of_a_list_equals_lookup_of_each_element(imeis: list[str | None]) -> None:
    together = lookup_handsets(imeis)
    alone = pd.concat([lookup_handsets([x]) for x in imeis], ignore_index=True)
    pd.testing.assert_frame_equal(together, alone)
    quirks = handset_has_quirk(imeis, "mms_retry_loop")
    assert quirks.tolist() == [bool(handset_has_quirk([x], "mms_retry_loop")[0]) for x in imeis]


# --------------------------------------------------------------------------- networks


def test_network_bands_by_mcc() -> None:
    mcc = pa.array([MCC_CHINA, None, MCC_CANADA, 313, MCC_JAPAN, 441, 450, 235, 1, 5000])
    frame = network_bands(mcc)
    assert list(frame.columns) == ["country", "region", "gsm_bands"]
    assert frame["region"].tolist()[:8] == ["CN", pd.NA, "CA", "US", "JP", "JP", "KR", "GB"]
    assert frame["gsm_bands"].tolist()[:8] == [
        "900/1800",
        pd.NA,
        "850/1900",
        "850/1900",
        "",
        "",
        "",
        "900/1800",
    ]
    # MCC 1 (a test network) and 5000 (not a code at all) are unknown, not "no GSM".
    assert frame.iloc[8:].isna().all(axis=None)
    assert frame.iloc[1].isna().all()


def test_network_bands_inputs() -> None:
    expected = network_bands([MCC_CHINA, None, MCC_GERMANY])
    series = pd.Series([MCC_CHINA, np.nan, MCC_GERMANY])  # float with NaN, as pandas gives
    pd.testing.assert_frame_equal(network_bands(series), expected)
    chunked = pa.chunked_array([[MCC_CHINA], [None, MCC_GERMANY]], type=pa.int32())
    pd.testing.assert_frame_equal(network_bands(chunked), expected)
    text = network_bands(["460", " 262 ", "abc", None])
    assert text["region"].tolist() == ["CN", "DE", pd.NA, pd.NA]


def test_networks_csv_covers_the_documented_countries() -> None:
    wanted = {
        460: "900/1800",
        302: "850/1900",
        310: "850/1900",
        316: "850/1900",
        334: "850/1900",
        454: "900/1800",
        455: "900/1800",
        466: "900/1800",
        440: "",
        441: "",
        450: "",
        234: "900/1800",
        235: "900/1800",
        262: "900/1800",
        208: "900/1800",
        232: "900/1800",
        240: "900/1800",
        222: "900/1800",
        214: "900/1800",
        204: "900/1800",
        250: "900/1800",
        505: "900/1800",
        525: "900/1800",
        520: "900/1800",
    }
    frame = network_bands(list(wanted))
    assert frame["gsm_bands"].tolist() == list(wanted.values())


# --------------------------------------------------------------------------- band support


def _support(imei: str, mcc: int) -> object:
    handset = lookup_handsets([imei])["bands"]
    network = network_bands([mcc])["gsm_bands"]
    return supports_network(handset, network)[0]


def test_nokia_8910_is_dual_band_and_fails_in_canada_but_works_in_germany() -> None:
    assert lookup_handsets([NOKIA_8910])["bands"].iloc[0] == "900/1800"
    assert _support(NOKIA_8910, MCC_CANADA) is False
    assert _support(NOKIA_8910, MCC_USA) is False
    assert _support(NOKIA_8910, MCC_GERMANY) is True
    assert _support(NOKIA_8910, MCC_CHINA) is True


def test_tri_band_handset_works_in_canada() -> None:
    assert lookup_handsets([NOKIA_6230])["bands"].iloc[0] == "900/1800/1900"
    assert _support(NOKIA_6230, MCC_CANADA) is True
    assert _support(NOKIA_6108, MCC_CANADA) is True


def test_no_gsm_country_supports_no_handset() -> None:
    assert _support(NOKIA_6230, MCC_JAPAN) is False
    assert _support("35153001000000", 450) is False  # quad-band RAZR V3 in South Korea


def test_unknown_side_gives_null() -> None:
    assert _support(OPPO_N1, MCC_CANADA) is None  # tacdb-only: bands unknown
    assert _support(UNKNOWN_TAC, MCC_CANADA) is None
    assert _support(NOKIA_8910, 1) is None  # MCC not in networks.csv
    assert _support(OPPO_N1, MCC_JAPAN) is None


def test_supports_network_row_by_row() -> None:
    handset = pd.Series(["900/1800", "900/1800/1900", None, "850/900/1800/1900", "", "900"])
    network = pa.array(["850/1900", "850/1900", "900/1800", "", "900/1800", None])
    result = supports_network(handset, network)
    assert result.dtype == object
    assert result.tolist() == [False, True, None, False, None, None]


def test_supports_network_needs_equal_lengths() -> None:
    with pytest.raises(ValueError, match="rows"):
        supports_network(["900/1800"], ["900/1800", "850/1900"])


def test_supports_network_large_column_matches_small() -> None:
    rng = np.random.default_rng(7)
    hands = np.array(["900/1800", "900/1800/1900", None, "850/900/1800/1900"], dtype=object)
    nets = np.array(["850/1900", "900/1800", "", None], dtype=object)
    h = hands[rng.integers(0, 4, 5_000)]
    n = nets[rng.integers(0, 4, 5_000)]
    result = supports_network(pa.array(h, type=pa.string()), pa.array(n, type=pa.string()))
    one_by_one = [supports_network([a], [b])[0] for a, b in zip(h, n, strict=True)]
    assert result.tolist() == one_by_one


def test_supports_network_unique_pair_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # Force the sort-based path that a very wide pair space would take.
    monkeypatch.setattr(devices, "_PAIR_TABLE_LIMIT", 0)
    handset = ["900/1800", "900/1800/1900", None, "900/1800"]
    network = ["850/1900", "850/1900", "900/1800", ""]
    assert supports_network(handset, network).tolist() == [False, True, None, False]


# --------------------------------------------------------------------------- display


@pytest.mark.parametrize(
    ("vendor", "model", "expected"),
    [
        ("Nokia", "8910", "Nokia 8910"),
        ("Nokia", "NOKIA 6108", "NOKIA 6108"),
        ("LG", "LG-2000", "LG-2000"),
        (" Oppo ", " N1 ", "Oppo N1"),
        ("Nokia", None, "Nokia"),
        (None, "8910", "8910"),
        (pd.NA, float("nan"), None),
        ("", "  ", None),
    ],
)
def test_model_name(vendor: object, model: object, expected: str | None) -> None:
    assert model_name(vendor, model) == expected


def test_the_catalogs_are_built_once_when_rules_ask_at_the_same_time(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Rules run in threads and two may ask for the handset catalog at the same moment:
    it is built once (before, each built its own: twice the work and the memory)."""
    import threading
    import time

    import telediag.devices as devices

    pairs = [
        (devices.handset_catalog, devices.HandsetCatalog),
        (devices.network_table, devices.NetworkTable),
    ]
    for loader, kind in pairs:
        loader.cache_clear()
        built: list[int] = []
        real = kind.load.__func__

        def slow(cls, real=real, built=built):  # type: ignore[no-untyped-def]
            built.append(1)
            time.sleep(0.2)  # long enough for every thread to ask meanwhile
            return real(cls)

        monkeypatch.setattr(kind, "load", classmethod(slow))
        got: list[object] = []

        def ask(loader=loader, got=got):  # type: ignore[no-untyped-def]
            got.append(loader())

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(built) == 1
        assert len(got) == 4 and all(g is got[0] for g in got)
        monkeypatch.undo()
        loader.cache_clear()
