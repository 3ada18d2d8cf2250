"""In one warm Python process (a notebook calling again), the same bars into pandas (and Arrow)
by every approach, outputs compared before timing, median of RUNS runs after a warm-up.

usage: fetch_inprocess.py ROWS_CONFIG DAYS_CONFIG KEYSPACE SYMBOL SYMBOLS_FILE WORKDIR RUNS

Approaches (every stored bar of the range, all sessions: the issue's 1.3 M bars for 10 years):
  old       cassandra-driver + pandas on the bars table (the old script: one execute_async per
            month, rows into a DataFrame, ts to exchange time, index, range filter)
  rows      bar_ingest.fetch_minute_data on a keyspace read as `rows` (DataFrame)
  days      bar_ingest.fetch_minute_data on the same keyspace read as `days` (DataFrame)
  days-arrow  bar_ingest.fetch(..., session="all") on `days`: the pyarrow Table only
  parquet   pandas.read_parquet of a local file holding the same frame
  arcticdb  ArcticDB on LMDB (a local library holding the same frame per symbol)
For 50 symbols the package calls are bar_ingest.fetch([...]).to_pandas() (one frame with a
symbol column), the old approach calls its function per symbol, ArcticDB reads with read_batch.
Also a split of the days DataFrame's time: the cells' bytes alone from the node (cassandra-driver,
no decode), the Arrow table (node + decode + Arrow), and Table.to_pandas.
Prints one table (median ms and ratios against the old approach and against the rows store)."""
import os
import shutil
import statistics
import sys
import time
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
from cassandra.cluster import Cluster

import bar_ingest

rows_config, days_config, keyspace, symbol, symbols_file, workdir, runs = sys.argv[1:8]
# An optional eighth argument: which cases to run (indices, e.g. "0,1"), for trying the script.
only = [int(i) for i in sys.argv[8].split(",")] if len(sys.argv) > 8 else None
runs = int(runs)
many = [s.strip() for s in open(symbols_file) if s.strip()]
NY = "America/New_York"
COLUMNS = ["open", "high", "low", "close", "volume"]

cluster = Cluster(["127.0.0.1"], port=9042)
session = cluster.connect(keyspace)
bars_select = session.prepare(
    "SELECT ts, open, high, low, close, volume FROM bars_1min WHERE symbol = ? AND bucket = ?"
)
cells_select = session.prepare(
    "SELECT cell FROM bars_1min_days WHERE symbol = ? AND bucket = ?"
)


def months(start, end):
    y, m = start.year, start.month
    while (y, m) <= (end.year, end.month):
        yield f"{y:04d}-{m:02d}"
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


def old_one(sym, start, end):
    lo, hi = datetime.fromisoformat(start), datetime.fromisoformat(end + "T23:59:59.999")
    futures = [session.execute_async(bars_select, (sym, b)) for b in months(lo, hi)]
    rows = []
    for f in futures:
        rows.extend(f.result())
    df = pd.DataFrame(rows, columns=["ts"] + COLUMNS)
    df["ts"] = pd.to_datetime(df["ts"], utc=True).dt.tz_convert(NY)
    df = df.set_index("ts")
    df = df[(df.index >= pd.Timestamp(lo, tz=NY)) & (df.index <= pd.Timestamp(hi, tz=NY))]
    return df


def old(symbols, start, end):
    if len(symbols) == 1:
        return old_one(symbols[0], start, end)
    frames = []
    for s in symbols:
        df = old_one(s, start, end)
        df["symbol"] = s
        frames.append(df)
    return pd.concat(frames)


def package(config, symbols, start, end):
    if len(symbols) == 1:
        return bar_ingest.fetch_minute_data(symbols[0], start, end, False, config=config)
    return bar_ingest.fetch(symbols, start, end, "all", config=config).to_pandas()


def arrow(config, symbols, start, end, concurrency=8):
    one = symbols[0] if len(symbols) == 1 else symbols
    return bar_ingest.fetch(one, start, end, "all", config=config, concurrency=concurrency)


def cell_bytes(symbols, start, end):
    lo, hi = datetime.fromisoformat(start), datetime.fromisoformat(end)
    futures = [session.execute_async(cells_select, (s, b)) for s in symbols for b in months(lo, hi)]
    n = 0
    for f in futures:
        for r in f.result():
            n += len(r.cell)
    return n


def canon(x):
    """(symbols or None, ns int64, five float64 arrays) of any approach's result."""
    if isinstance(x, list):  # ArcticDB read_batch: one frame per symbol
        parts = [canon(item.data) for item in x]
        names = [item.symbol.removesuffix("-many") for item in x]
        syms = np.concatenate([np.full(len(p[1]), n) for p, n in zip(parts, names)])
        return (syms, np.concatenate([p[1] for p in parts]),
                [np.concatenate([p[2][i] for p in parts]) for i in range(5)])
    if isinstance(x, pa.Table):
        x = x.to_pandas()
    if "timestamp" in x.columns:
        ts = pd.DatetimeIndex(x["timestamp"])
    else:
        ts = x.index
    if ts.tz is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    ns = ts.values.astype("datetime64[ns]").astype(np.int64)
    syms = x["symbol"].to_numpy().astype(str) if "symbol" in x.columns else None
    return syms, ns, [x[c].to_numpy().astype(np.float64) for c in COLUMNS]


def same(name, a, b):
    (sa, ta, va), (sb, tb, vb) = canon(a), canon(b)
    if len(ta) != len(tb) or not np.array_equal(ta, tb):
        sys.exit(f"{name}: {len(tb)} rows or their instants differ from the reference ({len(ta)})")
    if sa is not None and sb is not None and not np.array_equal(sa, sb):
        sys.exit(f"{name}: symbols differ from the reference")
    for c, x, y in zip(COLUMNS, va, vb):
        if not np.array_equal(x.view(np.uint64), y.view(np.uint64)):
            sys.exit(f"{name}: column {c} differs from the reference (bit for bit)")


def median_ms(f):
    f()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


import arcticdb  # noqa: E402

lmdb = os.path.join(workdir, "arcticdb-lmdb")
shutil.rmtree(lmdb, ignore_errors=True)
arctic = arcticdb.Arctic(f"lmdb://{lmdb}")
library = arctic.get_library("bars", create_if_missing=True)

cases = [
    ("1 year", [symbol], "2024-01-01", "2024-12-31"),
    ("10 years", [symbol], "2015-01-01", "2024-12-31"),
    ("50 symbols x 1 year", many, "2024-01-01", "2024-12-31"),
]
if only is not None:
    cases = [c for i, c in enumerate(cases) if i in only]
results = []
for name, symbols, start, end in cases:
    reference = package(rows_config, symbols, start, end)
    approaches = {
        "old: cassandra-driver + pandas, bars table": lambda: old(symbols, start, end),
        "fetch_minute_data, rows": lambda: package(rows_config, symbols, start, end),
        "fetch_minute_data, days": lambda: package(days_config, symbols, start, end),
        "fetch -> pyarrow.Table, days": lambda: arrow(days_config, symbols, start, end),
        "fetch -> pyarrow.Table, days, concurrency 32":
            lambda: arrow(days_config, symbols, start, end, 32),
    }
    parquet = os.path.join(workdir, f"bench-{len(symbols)}-{start}.parquet")
    reference.to_parquet(parquet)
    approaches["pandas.read_parquet, local file"] = lambda: pd.read_parquet(parquet)
    if len(symbols) == 1:
        library.write(f"{symbols[0]}-{start}", reference)
        approaches["ArcticDB on LMDB"] = lambda: library.read(f"{symbols[0]}-{start}").data
    else:
        for s in symbols:
            part = reference[reference["symbol"] == s].drop(columns="symbol")
            library.write(f"{s}-many", part.set_index("timestamp"))
        approaches["ArcticDB on LMDB"] = lambda: library.read_batch([f"{s}-many" for s in symbols])
    for label, f in approaches.items():
        out = f()
        if label.startswith("old"):
            # The old table's volumes may be integers; compared as doubles.
            out = out.astype({"volume": np.float64})
        same(f"{name}: {label}", reference, out)
    timed = {label: median_ms(f) for label, f in approaches.items()}
    timed["  split: cells' bytes from the node (no decode)"] = median_ms(
        lambda: cell_bytes(symbols, start, end))
    table = arrow(days_config, symbols, start, end)
    timed["  split: Table.to_pandas of the days Table"] = median_ms(lambda: table.to_pandas())
    results.append((name, len(reference), timed))

print(f"in-process, warm, median of {runs} runs (ms); x old = the old approach's time / this one's;"
      f" x rows = the row store's (fetch_minute_data, rows) / this one's")
for name, bars, timed in results:
    old_ms = timed["old: cassandra-driver + pandas, bars table"]
    rows_ms = timed["fetch_minute_data, rows"]
    print(f"\n{name}: {bars:,} bars")
    print(f"| {'approach':<48} | {'ms':>9} | {'x old':>7} | {'x rows':>7} |")
    print(f"|{'-' * 50}|{'-' * 11}|{'-' * 9}|{'-' * 9}|")
    for label, ms in timed.items():
        print(f"| {label:<48} | {ms:9.1f} | {old_ms / ms:7.1f} | {rows_ms / ms:7.1f} |")
cluster.shutdown()
