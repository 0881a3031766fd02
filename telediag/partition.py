"""Splitting a month for parallel scans without cutting a handset's story in two.

Most rules look at one subscriber at a time, so any split by subscriber gives the same
findings. Rules that follow a handset across subscribers (a failed MMS re-sent under
the next SIM) need every subscriber who used the handset in the same part. This module
assigns each row a part so that subscribers linked through a shared IMEI, directly or
through a chain, always land together.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _codes(arr: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    encoded = pc.dictionary_encode(arr.cast(pa.string()))
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    return np.asarray(codes, dtype=np.int64), encoded.dictionary


def _handsets_only(imei: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The IMEI column with everything that is not a plausible IMEI made null."""
    from telediag.devices import plausible_imei

    if isinstance(imei, pa.ChunkedArray):
        imei = imei.combine_chunks()
    text = pc.utf8_trim_whitespace(imei.cast(pa.string()))
    return pc.if_else(pc.fill_null(plausible_imei(text), False), text, pa.scalar(None, pa.string()))


def linked_groups(
    msisdn: pa.ChunkedArray | pa.Array, imei: pa.ChunkedArray | pa.Array
) -> tuple[np.ndarray, pa.Array]:
    """For each distinct subscriber, the smallest subscriber code it is linked to.

    Two subscribers are linked when they used the same handset; links are followed
    transitively. Only plausible IMEIs count as handsets (blanks and placeholders such
    as ``000000000000000`` link nobody, see :func:`telediag.devices.plausible_imei`).
    Returns (group label per subscriber code, the subscriber values). Works on the
    distinct (subscriber, handset) pairs, by label propagation.
    """
    subs, sub_values = _codes(msisdn)
    handsets, _ = _codes(_handsets_only(imei))
    n_subs = len(sub_values)
    label = np.arange(n_subs, dtype=np.int64)
    known = (subs >= 0) & (handsets >= 0)
    if not known.any():
        return label, sub_values
    width = int(handsets.max()) + 1
    pairs = np.unique(subs[known] * width + handsets[known])
    ps, ph = pairs // width, pairs % width
    while True:
        per_handset = np.full(width, np.iinfo(np.int64).max)
        np.minimum.at(per_handset, ph, label[ps])
        new = label.copy()
        np.minimum.at(new, ps, per_handset[ph])
        new = new[new]  # follow labels to their own labels (pointer jumping)
        if np.array_equal(new, label):
            return label, sub_values
        label = new


def part_of_rows(table: pa.Table, parts: int) -> np.ndarray:
    """Part number (0..parts-1) of every row, keeping handset-linked subscribers together.

    The part is a stable hash of the group's smallest subscriber value, so the same
    subscriber lands in the same part whatever else the table holds.
    """
    if parts < 1:
        raise ValueError("parts must be at least 1")
    label, values = linked_groups(table["msisdn"], table["imei"])
    names = values.to_pylist()
    part_of_group = np.array(
        [
            int.from_bytes(hashlib.blake2b(str(names[g]).encode(), digest_size=4).digest()) % parts
            for g in label
        ],
        dtype=np.int64,
    )
    subs, _ = _codes(table["msisdn"])
    return np.where(subs >= 0, part_of_group[np.maximum(subs, 0)], 0)
