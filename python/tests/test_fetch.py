"""The package bar_ingest against the real dev node: results equal the CLI's, the types, pandas and
polars, the old script's DataFrame, errors, and the GIL released during a fetch (fixtures in
conftest.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import bar_ingest
from conftest import Env, counts_by_symbol, table_bars, write_config

NY = "America/New_York"
# The range of most tests: a bare date and an exchange-time minute (both ends included).
START, END = "2024-03-04", "2024-04-12 12:00"


def expected_schema(tz: str = "UTC", symbol: bool = False) -> pa.Schema:
    fields = [pa.field("symbol", pa.string(), nullable=False)] if symbol else []
    fields.append(pa.field("timestamp", pa.timestamp("ns", tz=tz), nullable=False))
    fields += [pa.field(n, pa.float64(), nullable=False) for n in ("open", "high", "low", "close")]
    fields.append(pa.field("volume", pa.float64(), nullable=False))
    return pa.schema(fields)


# ---- (a) one symbol equals the CLI ----


def test_one_symbol_equals_the_cli(env: Env) -> None:
    table = bar_ingest.fetch("AAPL", START, END, "regular", config=env.config)
    cli = env.cli_fetch("AAPL", START, END, "regular")
    assert len(cli) > 5000, "the generated data should give thousands of regular-session bars"
    assert table.column_names == ["timestamp", "open", "high", "low", "close", "volume"]
    assert table_bars(table) == cli  # instants and every value, exactly


@pytest.mark.parametrize("session", ["extended", "all"])
def test_other_sessions_equal_the_cli(env: Env, session: str) -> None:
    table = bar_ingest.fetch("MSFT", START, END, session, config=env.config)
    assert table_bars(table) == env.cli_fetch("MSFT", START, END, session)


@pytest.mark.parametrize("interval", ["5m", "1h", "1d"])
def test_intervals_equal_the_cli(env: Env, interval: str) -> None:
    table = bar_ingest.fetch("AAPL", START, END, "all", interval, config=env.config)
    cli = env.cli_fetch("AAPL", START, END, "all", interval)
    assert len(cli) > 0
    assert table_bars(table) == cli


def test_times_as_python_objects(env: Env) -> None:
    """date = a whole exchange day; naive datetime = exchange time; aware = an instant."""
    reference = bar_ingest.fetch("AAPL", START, END, config=env.config)
    as_objects = bar_ingest.fetch(
        "AAPL", date(2024, 3, 4), datetime(2024, 4, 12, 12, 0), config=env.config
    )
    assert as_objects.equals(reference)
    # 2024-03-04 00:00 EST is 05:00 UTC; 2024-04-12 12:00 EDT is 16:00 UTC.
    aware = bar_ingest.fetch(
        "AAPL",
        datetime(2024, 3, 4, 5, 0, tzinfo=timezone.utc),
        pd.Timestamp("2024-04-12 12:00", tz=NY),
        config=env.config,
    )
    assert aware.equals(reference)
    rfc3339 = bar_ingest.fetch(
        "AAPL", "2024-03-04T05:00:00Z", "2024-04-12T12:00:00-04:00", config=env.config
    )
    assert rfc3339.equals(reference)
    # A date as `end` includes that whole day.
    day = bar_ingest.fetch("AAPL", date(2024, 3, 8), date(2024, 3, 8), "all", config=env.config)
    assert day.equals(bar_ingest.fetch("AAPL", "2024-03-08", "2024-03-08", "all", config=env.config))
    local = day.column("timestamp").cast(pa.timestamp("ns", tz=NY)).to_pandas()
    assert len(day) > 390 and (local.dt.date == date(2024, 3, 8)).all()


# ---- (b) several symbols ----


def test_several_symbols(env: Env) -> None:
    table = bar_ingest.fetch(["msft", "AAPL", "NOPE"], START, END, config=env.config)
    assert table.column_names[0] == "symbol"
    counts = counts_by_symbol(table)
    assert counts == {s: len(env.cli_fetch(s, START, END)) for s in ("AAPL", "MSFT")}
    symbols = table.column("symbol").to_pylist()
    ts = table.column("timestamp").cast(pa.int64()).to_pylist()
    rows = list(zip(symbols, ts))
    assert rows == sorted(rows), "rows are ordered by symbol, then time"
    assert len(set(rows)) == len(rows), "each symbol's times strictly increase"
    # Each symbol's rows are what a fetch of it alone returns.
    for s in ("AAPL", "MSFT"):
        alone = bar_ingest.fetch(s, START, END, config=env.config)
        part = table.filter(pc.equal(table.column("symbol"), s)).drop_columns(["symbol"])
        assert part.equals(alone)


def test_a_list_of_one_symbol_has_the_symbol_column(env: Env) -> None:
    table = bar_ingest.fetch(("AAPL",), "2024-03-08", "2024-03-08", config=env.config)
    assert table.schema == expected_schema(symbol=True)
    assert set(table.column("symbol").to_pylist()) == {"AAPL"}


# ---- (c) schema ----


def test_schema_types(env: Env) -> None:
    utc = bar_ingest.fetch("AAPL", START, END, config=env.config)
    assert utc.schema == expected_schema()
    assert all(not f.nullable for f in utc.schema)
    exchange = bar_ingest.fetch("AAPL", START, END, config=env.config, exchange_time=True)
    assert exchange.schema == expected_schema(NY)
    # The same instants, only annotated with another zone.
    assert exchange.column("timestamp").cast(pa.int64()).equals(
        utc.column("timestamp").cast(pa.int64())
    )
    several = bar_ingest.fetch(["AAPL", "MSFT"], START, END, config=env.config, exchange_time=True)
    assert several.schema == expected_schema(NY, symbol=True)


def test_client_reuse_and_concurrency(env: Env) -> None:
    client = bar_ingest.Client(env.config)
    assert client.timezone == NY
    assert client.config == str(env.config)
    first = client.fetch(["AAPL", "MSFT"], START, END, "all", concurrency=1)
    again = client.fetch(["AAPL", "MSFT"], START, END, "all", concurrency=bar_ingest.MAX_CONCURRENCY)
    assert first.equals(again)
    # The module-level fetch keeps one client per configuration file.
    assert bar_ingest._client(env.config) is bar_ingest._client(str(env.config))


# ---- (d) pandas and polars ----


def test_to_pandas(env: Env) -> None:
    df = bar_ingest.fetch(["AAPL", "MSFT"], START, END, config=env.config).to_pandas()
    assert list(df.columns) == ["symbol", "timestamp", "open", "high", "low", "close", "volume"]
    assert str(df["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert all(df[c].dtype == "float64" for c in ("open", "high", "low", "close"))
    # float64 always (volumes as delivered, fractional ones included), whole or not.
    assert df["volume"].dtype == "float64"
    assert pd.api.types.is_string_dtype(df["symbol"])
    local = bar_ingest.fetch("AAPL", START, END, config=env.config, exchange_time=True).to_pandas()
    assert str(local["timestamp"].dtype) == f"datetime64[ns, {NY}]"
    assert local["timestamp"].iloc[0] == pd.Timestamp("2024-03-04 09:30", tz=NY)


def test_polars(env: Env) -> None:
    table = bar_ingest.fetch(["AAPL", "MSFT"], START, END, config=env.config)
    frame = pl.from_arrow(table)
    assert frame.height == table.num_rows
    assert frame.schema == pl.Schema(
        {
            "symbol": pl.String,
            "timestamp": pl.Datetime("ns", "UTC"),
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
        }
    )
    assert frame["close"].to_list() == table.column("close").to_pylist()


# ---- (e) the old script's DataFrame ----


def test_fetch_minute_data_regular_session(env: Env) -> None:
    df = bar_ingest.fetch_minute_data(
        "AAPL", datetime(2024, 3, 1), datetime(2024, 4, 30, 23, 59), trading_hours=True, config=env.config
    )
    assert isinstance(df.index, pd.DatetimeIndex)
    assert df.index.name == "ts"
    assert str(df.index.tz) == NY
    assert str(df.index.dtype) == f"datetime64[ns, {NY}]"
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert list(map(str, df.dtypes)) == ["float64"] * 5
    assert df.index.is_monotonic_increasing and df.index.is_unique
    minutes = df.index.hour * 60 + df.index.minute
    assert ((minutes >= 9 * 60 + 30) & (minutes < 16 * 60)).all(), "[09:30, 16:00) only"
    assert (df.index.day_of_week < 5).all()
    cli = env.cli_fetch("AAPL", "2024-03-01 00:00", "2024-04-30 23:59", "regular")
    assert len(df) == len(cli)
    assert df.index.asi8.tolist() == cli.timestamp
    assert df["close"].tolist() == cli.close and df["volume"].tolist() == cli.volume


def test_fetch_minute_data_all_bars(env: Env) -> None:
    df = bar_ingest.fetch_minute_data("AAPL", "2024-03-01", "2024-04-30", config=env.config)
    assert len(df) == len(env.cli_fetch("AAPL", "2024-03-01", "2024-04-30", "all"))
    regular = bar_ingest.fetch_minute_data("AAPL", "2024-03-01", "2024-04-30", True, env.config)
    assert len(df) > len(regular)
    assert (df.index.hour < 9).any() and (df.index.hour >= 16).any(), "pre- and post-market bars"
    # The old filter on all bars keeps the regular session and the 16:00 bars (documented).
    old = df.between_time("09:30", "16:00")
    at_four = old[(old.index.hour == 16) & (old.index.minute == 0)]
    assert len(at_four) > 0
    assert len(old) == len(regular) + len(at_four)


def test_fetch_minute_data_empty(env: Env) -> None:
    df = bar_ingest.fetch_minute_data("NOPE", "2024-03-01", "2024-03-31", config=env.config)
    assert df.empty and list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert df.index.name == "ts" and str(df.index.tz) == NY
    # The same dtype with no rows: one stable schema.
    assert list(map(str, df.dtypes)) == ["float64"] * 5
    with pytest.raises(TypeError, match="one symbol"):
        bar_ingest.fetch_minute_data(["AAPL"], "2024-03-01", "2024-03-31", config=env.config)


# ---- (f) errors ----


@pytest.mark.parametrize(
    "kwargs, names",
    [
        (dict(session="lunch"), "session `lunch`"),
        (dict(start="2024-02-30"), "start `2024-02-30`"),
        (dict(end="soon"), "end `soon`"),
        (dict(start="2024-04-02", end="2024-04-01"), "start `2024-04-02`: is after end"),
        (dict(start="2024-03-10 02:30"), "does not exist"),  # skipped by the DST change
        (dict(symbols="A B"), "symbols `A B`"),
        (dict(symbols=[]), "symbols"),
        (dict(interval="2m"), "interval `2m`"),
        (dict(interval="1d", session="extended"), "interval `1d`"),
        (dict(concurrency=0), "concurrency `0`"),
        (dict(concurrency=-1), "concurrency `-1`"),
        (dict(concurrency=bar_ingest.MAX_CONCURRENCY + 1), "concurrency"),
    ],
)
def test_bad_arguments_raise_value_error(env: Env, kwargs: dict, names: str) -> None:
    args = dict(symbols="AAPL", start="2024-03-01", end="2024-03-31", config=env.config)
    args.update(kwargs)
    with pytest.raises(ValueError) as raised:
        bar_ingest.fetch(**args)
    assert names in str(raised.value)


@pytest.mark.parametrize(
    "kwargs", [dict(symbols=["AAPL", 1]), dict(symbols=42), dict(start=3.5), dict(end=None)]
)
def test_wrong_types_raise_type_error(env: Env, kwargs: dict) -> None:
    args = dict(symbols="AAPL", start="2024-03-01", end="2024-03-31", config=env.config)
    args.update(kwargs)
    with pytest.raises(TypeError):
        bar_ingest.fetch(**args)


def test_unknown_symbol_gives_an_empty_table(env: Env) -> None:
    table = bar_ingest.fetch("NOPE", START, END, config=env.config)
    assert table.num_rows == 0 and table.schema == expected_schema()
    several = bar_ingest.fetch(["NOPE", "NADA"], START, END, config=env.config, exchange_time=True)
    assert several.num_rows == 0 and several.schema == expected_schema(NY, symbol=True)
    # Before the stored range: no rows either.
    assert bar_ingest.fetch("AAPL", "2020-01-01", "2020-12-31", config=env.config).num_rows == 0


def test_unreachable_database_raises_connect_error(env: Env) -> None:
    config = write_config(
        env.workdir / "closed.toml", env.keyspace, "127.0.0.1:1", 'connect_timeout = "2s"'
    )
    began = time.monotonic()
    with pytest.raises(bar_ingest.ConnectError) as raised:
        bar_ingest.fetch("AAPL", START, END, config=config)
    assert time.monotonic() - began < 10
    message = str(raised.value)
    assert "cannot connect to the database at 127.0.0.1:1" in message, message
    assert isinstance(raised.value, bar_ingest.Error) and isinstance(raised.value, RuntimeError)
    # Not cached: the next call tries again (and fails again).
    with pytest.raises(bar_ingest.ConnectError):
        bar_ingest.fetch("AAPL", START, END, config=config)


def test_configuration_errors(env: Env) -> None:
    with pytest.raises(bar_ingest.ConfigError, match="cannot read the config file"):
        bar_ingest.Client(env.workdir / "missing.toml")
    bad = env.workdir / "bad.toml"
    bad.write_text('[database]\nconsistency = "SOMETIMES"\n')
    with pytest.raises(bar_ingest.ConfigError, match="consistency"):
        bar_ingest.Client(bad)


def test_missing_table_raises_fetch_error(env: Env) -> None:
    config = write_config(env.workdir / "other.toml", f"{env.keyspace}_none", env.contact_points)
    with pytest.raises(bar_ingest.FetchError, match="does not exist"):
        bar_ingest.Client(config)


# ---- (g) the GIL is released ----


def test_other_threads_run_during_a_fetch(env: Env) -> None:
    """A thread that needs the GIL every millisecond keeps counting while fetches run: it could
    not if the GIL were held (at most a switch or two at the calls' edges)."""
    client = bar_ingest.Client(env.config)
    count = 0
    stop = threading.Event()

    def counter() -> None:
        nonlocal count
        while not stop.is_set():
            count += 1
            time.sleep(0.001)

    thread = threading.Thread(target=counter, daemon=True)
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.5)  # no forced switch during a call: only a released GIL lets it run
    thread.start()
    try:
        during, calls, busy = 0, 0, 0.0
        while busy < 0.5 or calls < 3:
            before, began = count, time.perf_counter()
            client.fetch(["AAPL", "MSFT"], "2024-03-01", "2024-04-30", "all", concurrency=1)
            busy += time.perf_counter() - began
            during += count - before
            calls += 1
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(old_interval)
    assert during >= 50 and during > 5 * calls, (
        f"the counting thread advanced {during} times during {calls} fetches of {busy:.2f} s"
    )


# ---- the columns are not copied ----


def test_columns_are_handed_over_without_a_copy(env: Env) -> None:
    """The buffers come from Rust through the Arrow C data interface: pyarrow's allocator holds
    none of them (a copy into pyarrow would allocate the table's size there)."""
    client = bar_ingest.Client(env.config)
    before = pa.total_allocated_bytes()
    table = client.fetch(["AAPL", "MSFT"], "2024-03-01", "2024-04-30", "all")
    allocated = pa.total_allocated_bytes() - before
    assert table.nbytes > 1_000_000
    assert allocated < table.nbytes / 100, f"pyarrow allocated {allocated} of {table.nbytes} bytes"


# ---- signals (Ctrl-C) interrupt a fetch ----


class Interrupted(Exception):
    pass


def test_a_signal_interrupts_a_fetch(env: Env) -> None:
    """An exception raised by a signal handler (KeyboardInterrupt on Ctrl-C) ends a running fetch
    within about 0.1 s, not when the fetch is done: the native code lets Python handle signals
    while it waits."""
    client = bar_ingest.Client(env.config)
    args = (["AAPL", "MSFT"], "2024-03-01", "2024-04-30", "all")
    began = time.perf_counter()
    client.fetch(*args, concurrency=1)
    duration = time.perf_counter() - began

    def handler(signum, frame):
        raise Interrupted()

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        alarm = time.perf_counter() + 0.05
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(Interrupted):
            for _ in range(1000):
                client.fetch(*args, concurrency=1)
        latency = time.perf_counter() - alarm
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert latency < max(0.2, 0.6 * duration), (
        f"interrupted {latency:.3f} s after the signal; a whole fetch takes {duration:.3f} s"
    )
    # The client is still usable.
    assert client.fetch("AAPL", "2024-03-08", "2024-03-08").num_rows > 0


# ---- the command's Parquet and Arrow outputs, read by pyarrow, pandas and polars ----


def cli_output(env: Env, fmt: str, *extra: str) -> bytes:
    """`bar-ingest fetch AAPL MSFT ... --session regular --format FMT` into a pipe (stdout)."""
    args = [env.bar_ingest, "--config", env.config, "fetch", "AAPL", "MSFT"]
    args += ["--from", START, "--to", END, "--session", "regular", "--format", fmt, *extra]
    return subprocess.run(args, check=True, capture_output=True, timeout=300).stdout


def test_the_commands_parquet_and_arrow_outputs_read_everywhere_with_the_csv_values(
    env: Env, tmp_path
) -> None:
    import io

    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    path = tmp_path / "bars.parquet"
    args = [env.bar_ingest, "--config", env.config, "fetch", "AAPL", "MSFT", "--from", START]
    args += ["--to", END, "--session", "regular", "--format", "parquet", "-o", str(path)]
    subprocess.run(args, check=True, timeout=300)
    by_pyarrow = pq.read_table(path)
    assert by_pyarrow.schema.remove_metadata() == expected_schema(symbol=True)
    arrow_bytes = cli_output(env, "arrow", "--exchange-time")
    by_ipc = ipc.open_stream(io.BytesIO(arrow_bytes)).read_all()
    assert by_ipc.schema == expected_schema(tz=NY, symbol=True)

    # Every value equals the CSV output of the same range, symbol by symbol.
    for s in ("AAPL", "MSFT"):
        cli = env.cli_fetch(s, START, END, "regular")
        assert len(cli) > 1000
        for table in (by_pyarrow, by_ipc):
            part = table.filter(pc.equal(table.column("symbol"), s))
            assert table_bars(part) == cli

    # pandas and polars read both, with tz-aware timestamps and the same rows.
    frame = pd.read_parquet(path)
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert frame["volume"].dtype == "float64" and frame["open"].dtype == "float64"
    assert frame["timestamp"].astype("int64").tolist() == by_pyarrow.column("timestamp").cast(pa.int64()).to_pylist()
    polars_parquet = pl.read_parquet(path)
    polars_ipc = pl.read_ipc_stream(io.BytesIO(arrow_bytes))
    assert polars_parquet.schema["timestamp"] == pl.Datetime("ns", "UTC")
    assert polars_ipc.schema["timestamp"] == pl.Datetime("ns", NY)
    assert polars_parquet["close"].to_list() == by_pyarrow.column("close").to_pylist()
    assert polars_ipc.height == by_pyarrow.num_rows
    assert polars_ipc["volume"].to_list() == by_pyarrow.column("volume").to_pylist()
