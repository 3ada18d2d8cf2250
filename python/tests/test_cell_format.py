"""The independent day-cell reader (cell_reader.py, written from docs/day-cell-format.md) against
the spec's golden vectors: each decodes to exactly the documented values, bit for bit; and the
refusals the spec lists. Needs no database and no bar_ingest: only zstandard and numpy."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest

from cell_reader import CellError, decode, read_summary

SPEC = Path(__file__).resolve().parents[2] / "docs" / "day-cell-format.md"
COLUMNS = ("open", "high", "low", "close", "volume")


def golden_value(token: str) -> float:
    """A value as the spec writes it: a decimal number, or 0x and the double's bits."""
    if token.startswith("0x"):
        return struct.unpack("<d", struct.pack("<Q", int(token[2:], 16)))[0]
    return float(token)


def goldens() -> List[Dict]:
    """The ```golden blocks of the spec."""
    out: List[Dict] = []
    block = None
    for line in SPEC.read_text().splitlines():
        if line == "```golden":
            block = {"name": "", "cell": "", "times": []}
            block.update({c: [] for c in COLUMNS})
            continue
        if block is None:
            continue
        if line == "```":
            out.append(block)
            block = None
            continue
        key, _, rest = line.partition(":")
        tokens = rest.split()
        if key == "name":
            block["name"] = rest.strip()
        elif key == "encoder":
            block["encoder"] = rest.strip()
        elif key == "cell":
            block["cell"] += "".join(tokens)
        elif key == "times":
            block["times"] += [int(t) for t in tokens]
        else:
            block[key] += [golden_value(t) for t in tokens]
    return out


def bits(values) -> List[int]:
    """Each double's bits (NaN payloads and signed zeros compared exactly)."""
    return [struct.unpack("<Q", struct.pack("<d", float(v)))[0] for v in values]


GOLDENS = goldens()


def test_the_spec_has_the_five_golden_vectors():
    assert [g["name"] for g in GOLDENS] == [
        "regular-day",
        "fractional-volumes",
        "non-decimal-prices",
        "one-bar",
        "empty",
    ]


@pytest.mark.parametrize("golden", GOLDENS, ids=[g["name"] for g in GOLDENS])
def test_golden_vector_decodes_to_the_documented_values(golden):
    cell = bytes.fromhex(golden["cell"])
    day = decode(cell)
    assert day.times.dtype == np.int64
    assert day.times.tolist() == golden["times"]
    for column in COLUMNS:
        got = getattr(day, column)
        assert got.dtype == np.float64
        assert bits(got) == bits(golden[column]), column
    version, bars, first, last = read_summary(cell[:20])
    assert (version, bars) == (1, len(golden["times"]))
    if golden["times"]:
        assert (first, last) == (golden["times"][0], golden["times"][-1])


def test_the_regular_day_is_zstd_and_the_edges_are_stored():
    by_name = {g["name"]: bytes.fromhex(g["cell"]) for g in GOLDENS}
    assert by_name["regular-day"][1] == 1
    assert by_name["one-bar"][1] == 0
    assert len(by_name["empty"]) == 36


def regular_day() -> bytes:
    return bytes.fromhex(GOLDENS[0]["cell"])


def one_bar() -> bytes:
    return bytes.fromhex(GOLDENS[3]["cell"])


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda c: bytes([2]) + c[1:], "unknown format version 2"),
        (lambda c: c[:2] + struct.pack("<H", 1501) + c[4:], "1501 bars"),
        (lambda c: c[:10], "shorter than the 20-byte summary"),
        (lambda c: c[:30], "shorter than the 36-byte header"),
        (lambda c: c[:-1], "does not decompress"),
        (lambda c: c[:1] + bytes([9]) + c[2:], "unknown compression 9"),
        (lambda c: c[:22] + bytes([3]) + c[23:], "open descriptor (3, 4)"),
        (lambda c: c[:32] + struct.pack("<I", 2**32 - 1) + c[36:], "too long"),
    ],
)
def test_damaged_cells_are_refused(damage, message):
    with pytest.raises(CellError, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode(damage(regular_day()))


def test_a_stored_body_with_a_byte_left_over_is_refused():
    cell = one_bar()
    length = struct.unpack_from("<I", cell, 32)[0]
    damaged = cell[:32] + struct.pack("<I", length + 1) + cell[36:] + b"\x00"
    with pytest.raises(CellError, match="1 bytes left after the volume column"):
        decode(damaged)
