"""The package reading day cells against the real dev node: a keyspace holding the same bars as
bar rows and as day cells (loaded once by the CLI with layout `both`) gives the same DataFrames
and Tables from both layouts, bit for bit; and the independent reader (cell_reader.py, written from docs/day-cell-format.md) decodes the cells read
with cassandra-driver to exactly the bars `fetch` returns."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Tuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import bar_ingest
from cell_reader import decode
from conftest import SYMBOLS, Env, contact_point, drop_keyspace, run, write_config

# Ranges with ends mid-day, across the month end and the spring-forward weekend (2024-03-10).
RANGES = [
    ("2024-03-01", "2024-04-30"),
    ("2024-03-08 10:17", "2024-03-11 15:03"),
    ("2024-03-28 13:00", "2024-04-02 09:45"),
    ("2024-04-05 09:30", "2024-04-05 09:30"),
    ("2024-03-09", "2024-03-10"),
]


@pytest.fixture(scope="module")
def layouts(env: Env) -> Iterator[Tuple[Path, Path, str]]:
    """Configurations of one keyspace read as `rows` and as `days`, and its name: the test bars
    loaded once by the CLI with layout `both`, which writes every bar as a row and into its day
    cell."""
    keyspace = f"t_pyd_{os.getpid()}"
    rows = write_config(env.workdir / "rows.toml", keyspace, env.contact_points,
                        '[storage]\nlayout = "rows"')
    days = write_config(env.workdir / "days.toml", keyspace, env.contact_points,
                        '[storage]\nlayout = "days"')
    both = write_config(env.workdir / "both.toml", keyspace, env.contact_points,
                        '[storage]\nlayout = "both"')
    try:
        run([env.bar_ingest, "--config", both, "load", "--no-progress", env.workdir / "data"])
        yield rows, days, keyspace
    finally:
        drop_keyspace(keyspace)


@pytest.mark.parametrize("start,end", RANGES)
@pytest.mark.parametrize("trading_hours", [True, False])
def test_fetch_minute_data_from_days_equals_rows(layouts, start, end, trading_hours) -> None:
    rows, days, _ = layouts
    want = bar_ingest.fetch_minute_data("AAPL", start, end, trading_hours, config=rows)
    got = bar_ingest.fetch_minute_data("AAPL", start, end, trading_hours, config=days)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    if start == "2024-03-01":
        assert len(want) > 10_000


# Every session and interval `fetch` accepts (daily bars have no extended session).
SESSIONS_AND_INTERVALS = [(s, i) for s in ["regular", "extended", "all"] for i in ["1m", "5m", "1d"]
                          if (s, i) != ("extended", "1d")]


@pytest.mark.parametrize("session,interval", SESSIONS_AND_INTERVALS)
def test_tables_of_several_symbols_from_days_equal_rows(layouts, session, interval) -> None:
    rows, days, _ = layouts
    for start, end in RANGES:
        want = bar_ingest.fetch(SYMBOLS, start, end, session, interval, config=rows)
        got = bar_ingest.fetch(SYMBOLS, start, end, session, interval, config=days)
        assert got.schema == want.schema
        assert got.combine_chunks().equals(want.combine_chunks()), (start, end)


def test_the_independent_reader_agrees_with_fetch(layouts) -> None:
    """Every cell of AAPL, read with cassandra-driver and decoded by cell_reader, back to back,
    equals `fetch(..., session="all")` over the whole range: instants and values, bit for bit."""
    from cassandra.cluster import Cluster

    _, days, keyspace = layouts
    host, port = contact_point()
    cluster = Cluster([host], port=port)
    try:
        session = cluster.connect(keyspace)
        cells = []
        for bucket in ("2024-03", "2024-04"):
            result = session.execute(
                "SELECT day, bar_count, cell FROM bars_1min_days WHERE symbol = %s AND bucket = %s",
                ("AAPL", bucket),
            )
            cells += [(r.day, r.bar_count, r.cell) for r in result]
    finally:
        cluster.shutdown()
    assert len(cells) > 30
    decoded = [decode(cell) for _, _, cell in sorted(cells, key=lambda c: str(c[0]))]
    for (_, count, _), day in zip(sorted(cells, key=lambda c: str(c[0])), decoded):
        assert len(day) == count
    table = bar_ingest.fetch("AAPL", "2024-03-01", "2024-04-30", "all", config=days)
    times = np.concatenate([d.times for d in decoded])
    assert len(times) == table.num_rows
    ns = table.column("timestamp").cast(pa.int64()).to_numpy()
    assert np.array_equal(times * 1_000_000, ns)
    for name in ("open", "high", "low", "close", "volume"):
        mine = np.concatenate([getattr(d, name) for d in decoded])
        theirs = table.column(name).to_numpy()
        assert np.array_equal(mine.view(np.uint64), theirs.view(np.uint64)), name
