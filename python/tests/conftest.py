"""Fixtures of the Python package's tests: the real dev node, a keyspace of their own loaded with
generated bars by the real CLI, and the CLI's `fetch` as the reference.

The tests need the Cassandra dev node (`./scripts/dev-db start`) and the debug binaries
`bar-ingest` and `bar-gen` (`cargo build -p bar-ingest -p bar-gen --bins`); scripts/test-python
builds everything and runs them. Without the node they fail, never skip.

Environment: BAR_INGEST_TEST_CONTACT_POINTS (host:port of the node, default 127.0.0.1:9042, as
for the Rust tests), BAR_INGEST_BIN_DIR (folder of the binaries, default
$CARGO_TARGET_DIR/debug or target/debug).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ["AAPL", "MSFT"]
# The generated bars: two months, both symbols, trading days only (04:00-20:00 exchange time).
GEN_FROM, GEN_TO, GEN_SEED = "2024-03-01", "2024-04-30", "7"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# The environment variables that would override the tests' configuration files.
for _name in ("BAR_INGEST_CONFIG", "BAR_INGEST_CONTACT_POINTS"):
    os.environ.pop(_name, None)


def contact_point() -> Tuple[str, int]:
    """Host and port of the test node."""
    text = os.environ.get("BAR_INGEST_TEST_CONTACT_POINTS", "127.0.0.1:9042").split(",")[0]
    host, _, port = text.strip().rpartition(":")
    return (host, int(port)) if host else (text.strip(), 9042)


def bin_dir() -> Path:
    """Where the debug binaries are."""
    if os.environ.get("BAR_INGEST_BIN_DIR"):
        return Path(os.environ["BAR_INGEST_BIN_DIR"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    return target / "debug"


def run(args: List[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs a command, failing the test with its output when it exits non-zero."""
    env = dict(os.environ, RUST_LOG="warn")
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env
    )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited with {done.returncode}:\n"
            f"{done.stderr}\n{done.stdout[-2000:]}"
        )
    return done


def write_config(path: Path, keyspace: str, contact_points: str, extra: str = "") -> Path:
    """A bar-ingest configuration file for the tests."""
    path.write_text(
        f'[database]\ncontact_points = ["{contact_points}"]\nkeyspace = "{keyspace}"\n'
        f'consistency = "ONE"\n{extra}\n'
        f'[paths]\ninbox = "{path.parent / "inbox"}"\nstate_root = "{path.parent / "state"}"\n'
    )
    return path


def ns_of(text: str) -> int:
    """Nanoseconds since 1970 of an RFC 3339 UTC timestamp of the CLI (`--utc`)."""
    instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (instant - EPOCH) // timedelta(microseconds=1) * 1000


@dataclass
class Bars:
    """Rows of a fetch, column by column (instants as nanoseconds since 1970, UTC)."""

    timestamp: List[int]
    open: List[float]
    high: List[float]
    low: List[float]
    close: List[float]
    volume: List[float]

    def __len__(self) -> int:
        return len(self.timestamp)


@dataclass
class Env:
    """The loaded test keyspace and the binaries."""

    keyspace: str
    config: Path
    bar_ingest: Path
    workdir: Path
    contact_points: str

    def cli_fetch(
        self,
        symbol: str,
        start: str,
        end: str,
        session: str = "regular",
        interval: Optional[str] = None,
    ) -> Bars:
        """`bar-ingest fetch SYMBOL --from START --to END --session SESSION --utc` as columns."""
        args = [self.bar_ingest, "--config", self.config, "fetch", symbol]
        args += ["--from", start, "--to", end, "--session", session, "--utc"]
        if interval:
            args += ["--interval", interval]
        out = run(args).stdout
        rows = list(csv.DictReader(io.StringIO(out)))
        return Bars(
            timestamp=[ns_of(r["timestamp"]) for r in rows],
            open=[float(r["open"]) for r in rows],
            high=[float(r["high"]) for r in rows],
            low=[float(r["low"]) for r in rows],
            close=[float(r["close"]) for r in rows],
            volume=[float(r["volume"]) for r in rows],
        )


def drop_keyspace(keyspace: str) -> None:
    """DROP KEYSPACE with cqlsh (the venv's, or one on PATH)."""
    cqlsh = Path(sys.executable).parent / "cqlsh"
    exe = str(cqlsh) if cqlsh.exists() else shutil.which("cqlsh")
    if exe is None:
        pytest.fail(f"cannot drop the test keyspace {keyspace}: cqlsh not found (pip install cqlsh)")
    host, port = contact_point()
    run([exe, host, str(port), "--request-timeout=120", "-e", f"DROP KEYSPACE IF EXISTS {keyspace}"])


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    """A keyspace `t_py_<pid>` with AAPL and MSFT bars of March and April 2024, loaded by the CLI
    from bar-gen's files; dropped at the end."""
    host, port = contact_point()
    try:
        socket.create_connection((host, port), timeout=5).close()
        unreachable = None
    except OSError as e:
        unreachable = e
    if unreachable is not None:
        pytest.fail(
            f"these tests need the Cassandra dev node on {host}:{port}, and it is not reachable "
            f"({unreachable}): start it with `./scripts/dev-db start` (or run everything with "
            "`./scripts/test`)",
            pytrace=False,
        )
    binaries = bin_dir()
    bar_ingest, bar_gen = binaries / "bar-ingest", binaries / "bar-gen"
    for b in (bar_ingest, bar_gen):
        if not b.exists():
            pytest.fail(
                f"{b} is missing: build it with `cargo build -p bar-ingest -p bar-gen --bins` "
                "(scripts/test-python does), or set BAR_INGEST_BIN_DIR",
                pytrace=False,
            )
    work = tmp_path_factory.mktemp("bar_ingest")
    keyspace = f"t_py_{os.getpid()}"
    points = f"{host}:{port}"
    config = write_config(work / "bar-ingest.toml", keyspace, points)
    data = work / "data"
    run([bar_gen, "--out", data, "--symbol-list", ",".join(SYMBOLS), "--from", GEN_FROM,
         "--to", GEN_TO, "--seed", GEN_SEED])
    try:
        run([bar_ingest, "--config", config, "load", "--no-progress", data])
        yield Env(keyspace, config, bar_ingest, work, points)
    finally:
        drop_keyspace(keyspace)


def table_bars(table) -> Bars:
    """The columns of a pyarrow Table of bars as a :class:`Bars` (instants as nanoseconds)."""
    import pyarrow as pa

    return Bars(
        timestamp=table.column("timestamp").cast(pa.int64()).to_pylist(),
        open=table.column("open").to_pylist(),
        high=table.column("high").to_pylist(),
        low=table.column("low").to_pylist(),
        close=table.column("close").to_pylist(),
        volume=table.column("volume").to_pylist(),
    )


def counts_by_symbol(table) -> Dict[str, int]:
    """Rows per value of the `symbol` column."""
    out: Dict[str, int] = {}
    for s in table.column("symbol").to_pylist():
        out[s] = out.get(s, 0) + 1
    return out
