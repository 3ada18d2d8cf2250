"""An independent reader of day cells (format version 1), written from docs/day-cell-format.md
alone: no import of bar_ingest, only the standard library, zstandard and numpy. It exists to
show that the spec is enough to read the store's cells, and to check the Rust codec against it.

    day = decode(cell_bytes)      # Day: times (int64 ms UTC), open .. volume (float64)
    summary = read_summary(cell)  # (version, bars, first_ms, last_ms) from the first 20 bytes
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np
import zstandard

VERSION = 1
MAX_BARS = 1500
HEADER_BYTES = 36
SUMMARY_BYTES = 20
MAX_BODY_BYTES_PER_BAR = 60
MAX_SCALE = 15
MAX_MAGNITUDE = 2**53
MINUTE_MS = 60_000
VALUE_COLUMNS = ("open", "high", "low", "close", "volume")

# version, compression, bars, first, last, six descriptors (12 bytes), body length
_HEADER = struct.Struct("<BBHqq12sI")
_SUMMARY = struct.Struct("<BBHqq")


class CellError(ValueError):
    """The bytes are not a valid version-1 day cell; the message says what is wrong."""


@dataclass
class Day:
    """One day's bars as columns."""

    times: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.times)


def read_summary(cell: bytes) -> Tuple[int, int, int, int]:
    """(version, bars, first instant, last instant) from the first 20 bytes, checked."""
    if len(cell) < SUMMARY_BYTES:
        raise CellError(f"cell of {len(cell)} bytes is shorter than the {SUMMARY_BYTES}-byte summary")
    version, _compression, bars, first, last = _SUMMARY.unpack_from(cell, 0)
    if version != VERSION:
        raise CellError(f"unknown format version {version}")
    if bars > MAX_BARS:
        raise CellError(f"{bars} bars, more than {MAX_BARS}")
    ok = (first == 0 and last == 0) if bars == 0 else (first == last) if bars == 1 else (first < last)
    if not ok:
        raise CellError(f"first {first} and last {last} do not fit {bars} bars")
    return version, bars, first, last


class _Body:
    """The body, read front to back."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varint(self, column: str) -> int:
        value = 0
        for i in range(10):
            if self.pos + i >= len(self.data):
                raise CellError(f"{column} column runs past the end of the body")
            byte = self.data[self.pos + i]
            if i == 9 and (byte & 0x7F) > 1:
                raise CellError(f"{column} column has a varint over 64 bits")
            value |= (byte & 0x7F) << (7 * i)
            if byte & 0x80 == 0:
                self.pos += i + 1
                return value
        raise CellError(f"{column} column has a varint longer than 10 bytes")

    def raw_double(self, column: str) -> float:
        if self.pos + 8 > len(self.data):
            raise CellError(f"{column} column runs past the end of the body")
        (value,) = struct.unpack_from("<d", self.data, self.pos)
        self.pos += 8
        return value


def _unzigzag(u: int) -> int:
    return (u >> 1) ^ -(u & 1)


def _wrap64(n: int) -> int:
    """n as a two's-complement 64-bit integer."""
    return ((n + 2**63) % 2**64) - 2**63


def _values(body: _Body, column: str, code: int, scale: int, bars: int) -> List[float]:
    if code == 0:
        return [body.raw_double(column) for _ in range(bars)]
    divisor = float(10**scale)
    out = []
    m = 0
    for _ in range(bars):
        d = _unzigzag(body.varint(column))
        m = d if code == 1 else _wrap64(m + d)
        if abs(m) > MAX_MAGNITUDE:
            raise CellError(f"{column} column has a scaled integer beyond 2^53")
        out.append(float(m) / divisor)
    return out


def _descriptors(raw: bytes) -> List[Tuple[int, int]]:
    pairs = [(raw[i], raw[i + 1]) for i in range(0, 12, 2)]
    time_code, time_scale = pairs[0]
    if time_code not in (0, 1) or time_scale != 0:
        raise CellError(f"time descriptor ({time_code}, {time_scale}) is not defined")
    for name, (code, scale) in zip(VALUE_COLUMNS, pairs[1:]):
        if not ((code == 0 and scale == 0) or (code in (1, 2) and scale <= MAX_SCALE)):
            raise CellError(f"{name} descriptor ({code}, {scale}) is not defined")
    return pairs


def _decompress(payload: bytes, length: int) -> bytes:
    """A zstd payload that must decompress to exactly `length` bytes (read no more than that)."""
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(payload, read_across_frames=True)
        chunks = []
        total = 0
        while total <= length:
            chunk = reader.read(length + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except zstandard.ZstdError as e:
        raise CellError(f"zstd: {e}") from e
    body = b"".join(chunks)
    if len(body) != length:
        raise CellError(f"zstd payload does not decompress to the declared {length} bytes")
    return body


def decode(cell: bytes) -> Day:
    """The bars of a cell; raises CellError for anything the spec refuses."""
    cell = bytes(cell)
    _version, bars, first, last = read_summary(cell)
    if len(cell) < HEADER_BYTES:
        raise CellError(f"cell of {len(cell)} bytes is shorter than the {HEADER_BYTES}-byte header")
    _, compression, _, _, _, raw_descriptors, length = _HEADER.unpack_from(cell, 0)
    payload = cell[HEADER_BYTES:]
    empty = Day(*(np.array([], dtype=t) for t in (np.int64,) + (np.float64,) * 5))
    if bars == 0:
        if compression != 0 or any(raw_descriptors) or length != 0 or payload:
            raise CellError("an empty cell must be the bare header")
        return empty
    descriptors = _descriptors(raw_descriptors)
    if length > MAX_BODY_BYTES_PER_BAR * bars:
        raise CellError(f"body of {length} bytes is too long for {bars} bars")
    if compression == 0:
        if len(payload) != length:
            raise CellError(f"stored body is {len(payload)} bytes, the header says {length}")
        body_bytes = payload
    elif compression == 1:
        body_bytes = _decompress(payload, length)
    else:
        raise CellError(f"unknown compression {compression}")

    body = _Body(body_bytes)
    unit = MINUTE_MS if descriptors[0][0] == 0 else 1
    times = [first]
    for _ in range(bars - 1):
        step = body.varint("time") * unit
        if step == 0:
            raise CellError("a time step of zero")
        t = times[-1] + step
        if t >= 2**63:
            raise CellError("an instant beyond the 64-bit range")
        times.append(t)
    if times[-1] != last:
        raise CellError(f"times end at {times[-1]}, the header says {last}")
    columns = [
        _values(body, name, code, scale, bars)
        for name, (code, scale) in zip(VALUE_COLUMNS, descriptors[1:])
    ]
    if body.pos != len(body_bytes):
        raise CellError(f"{len(body_bytes) - body.pos} bytes left after the volume column")
    return Day(
        np.array(times, dtype=np.int64),
        *(np.array(c, dtype=np.float64) for c in columns),
    )
