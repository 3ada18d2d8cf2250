"""One-minute OHLCV bars stored by bar-ingest, read back as pyarrow Tables.

The reading is done in Rust (the same code as ``bar-ingest fetch``): every month of the range is
queried concurrently, the bars are filtered to a trading session and optionally aggregated, and
the columns are handed to pyarrow without a copy. The GIL is released meanwhile, so other Python
threads keep running, and Ctrl-C interrupts a fetch.

>>> import bar_ingest
>>> bars = bar_ingest.fetch("AAPL", "2024-03-01", "2024-03-31")        # doctest: +SKIP
>>> df = bars.to_pandas()                                              # doctest: +SKIP

Functions: :func:`fetch` (a ``pyarrow.Table``), :func:`fetch_minute_data` (the pandas DataFrame of
the old Python script). :class:`Client` keeps one connection for repeated fetches; ``fetch``
keeps one per configuration by itself.

Errors: bad arguments raise ``ValueError`` (or ``TypeError``) naming the argument; everything
else raises a subclass of :class:`Error` (a ``RuntimeError``): :class:`ConfigError`,
:class:`ConnectError`, :class:`FetchError`, with the full message of the Rust error.
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
from typing import TYPE_CHECKING, Dict, Iterable, Optional, Tuple, Union

import pyarrow

from ._native import (
    MAX_CONCURRENCY,
    ConfigError,
    ConnectError,
    Error,
    FetchError,
    __version__,
)
from ._native import Client as _NativeClient

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = [
    "Client",
    "ConfigError",
    "ConnectError",
    "Error",
    "FetchError",
    "MAX_CONCURRENCY",
    "__version__",
    "coverage",
    "fetch",
    "fetch_minute_data",
]

#: What ``start`` and ``end`` accept: a string as on the command line, a ``datetime.date`` (a whole
#: exchange day), a naive ``datetime.datetime`` (exchange time) or an aware one (an instant;
#: ``pandas.Timestamp`` included).
TimeLike = Union[str, _dt.date, _dt.datetime]
#: Where a configuration file is: a path, or None for ``$BAR_INGEST_CONFIG`` / the defaults.
ConfigPath = Union[str, "os.PathLike[str]", None]


def _time_text(value: TimeLike, name: str) -> str:
    """The string form of a ``start``/``end`` value that the Rust side parses (``parse_time``).

    - ``str``: unchanged (``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM[:SS]`` in exchange time, RFC 3339);
    - ``datetime.datetime`` (``pandas.Timestamp`` too), naive: exchange time,
      ``YYYY-MM-DD HH:MM:SS[.ffffff]``; aware: the instant in UTC, RFC 3339;
    - ``datetime.date``: ``YYYY-MM-DD``, so a whole exchange day (the end of that day as ``end``).
    """
    if isinstance(value, str):
        return value
    if isinstance(value, _dt.datetime):  # before date: a datetime is a date
        if value.tzinfo is None or value.utcoffset() is None:
            return value.isoformat(sep=" ")
        return value.astimezone(_dt.timezone.utc).isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    raise TypeError(
        f"{name} must be a str, datetime.date or datetime.datetime (or pandas.Timestamp), "
        f"not {type(value).__name__}"
    )


class Client:
    """A connection to the bars table for repeated fetches.

    Connecting loads the configuration, opens the database session, checks the permission to
    read the bars and prepares the query, once; :meth:`fetch` can then be called any number of
    times, from any thread. A client made before ``os.fork()`` cannot be used in the child
    process: make a new one there (the module-level :func:`fetch` does so by itself).

    :param config: path of a bar-ingest configuration file (``[database]`` contact_points,
        keyspace, credentials, TLS; ``[input]`` timezone). Without it, the file named by
        ``$BAR_INGEST_CONFIG``, else the built-in defaults (``127.0.0.1:9042``, keyspace
        ``market_data``, ``America/New_York``). ``$BAR_INGEST_CONTACT_POINTS`` overrides
        ``database.contact_points``.
    :raises ConfigError: the file cannot be read or holds an unusable value.
    :raises ConnectError: no usable session: the cluster is unreachable, or refused the
        credentials, the TLS handshake or the permission to read the bars.
    :raises FetchError: the bars table is missing or differs from what bar-ingest writes.
    """

    def __init__(self, config: ConfigPath = None) -> None:
        self._native = _NativeClient(None if config is None else os.fspath(config))

    @property
    def timezone(self) -> str:
        """The exchange time zone of the configuration (``input.timezone``), an IANA name."""
        return self._native.timezone

    @property
    def config(self) -> Optional[str]:
        """The configuration file that was read, or None for the built-in defaults."""
        path = self._native.config
        return None if path is None else os.fspath(path)

    def __repr__(self) -> str:
        return f"bar_ingest.Client(config={self.config!r})"

    def fetch(
        self,
        symbols: Union[str, Iterable[str]],
        start: TimeLike,
        end: TimeLike,
        session: str = "regular",
        interval: str = "1m",
        *,
        exchange_time: bool = False,
        concurrency: int = 8,
    ) -> pyarrow.Table:
        """The bars whose open time lies in ``[start, end]``, both ends included.

        See :func:`fetch` for the arguments and the table.
        """
        return self._native.fetch(
            symbols,
            _time_text(start, "start"),
            _time_text(end, "end"),
            session,
            interval,
            exchange_time,
            concurrency,
        )


    # --- coverage (issue 21) ---
    def coverage(
        self,
        symbols: Union[str, Iterable[str]],
        start: Union[str, _dt.date],
        end: Union[str, _dt.date],
        session: str = "regular",
        *,
        anomalies: bool = False,
    ) -> pyarrow.Table:
        """The coverage report, one row per symbol-day; see :func:`coverage`."""
        day = lambda v: v.isoformat() if isinstance(v, _dt.date) else str(v)
        return self._native.coverage(symbols, day(start), day(end), session, anomalies)

    # --- end coverage ---


_clients: Dict[Tuple[Optional[str], Optional[str], Optional[str]], Client] = {}
_clients_lock = threading.Lock()


def _forget_clients() -> None:
    """After ``fork()``, in the child: the parent's clients and lock are not usable there."""
    global _clients_lock
    _clients.clear()
    _clients_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_clients)


def _client(config: ConfigPath) -> Client:
    """The cached client of ``config`` (and of the environment variables that stand in for it),
    connected at the first use. A failed connection is not cached: the next call tries again."""
    key = (
        None if config is None else os.path.abspath(os.fspath(config)),
        os.environ.get("BAR_INGEST_CONFIG"),
        os.environ.get("BAR_INGEST_CONTACT_POINTS"),
    )
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = Client(config)
            _clients[key] = client
        return client


def fetch(
    symbols: Union[str, Iterable[str]],
    start: TimeLike,
    end: TimeLike,
    session: str = "regular",
    interval: str = "1m",
    config: ConfigPath = None,
    *,
    exchange_time: bool = False,
    concurrency: int = 8,
) -> pyarrow.Table:
    """The bars of ``symbols`` whose open time lies in ``[start, end]``, as a ``pyarrow.Table``.

    :param symbols: one symbol (``"AAPL"``; the table has no ``symbol`` column) or an iterable
        of them (``["AAPL", "MSFT"]``; a ``symbol`` column comes first and the rows are ordered
        by symbol, then time). Symbols are case-insensitive (stored upper-case); an unknown one
        has no rows.
    :param start: the first instant included, as:

        - ``str``: ``"2024-03-01"`` (the start of that exchange day), ``"2024-03-01 09:30"``
          (exchange time), or RFC 3339 with an offset (``"2024-03-01T14:30:00Z"``), as
          ``bar-ingest fetch --from``;
        - ``datetime.date``: the start of that exchange day;
        - naive ``datetime.datetime``: exchange time (a time that occurs twice in the autumn
          means its first occurrence; one the clocks skip is a ``ValueError``);
        - aware ``datetime.datetime`` or ``pandas.Timestamp``: that instant.
    :param end: the last instant included, in the same forms; a date (``"2024-03-31"`` or
        ``datetime.date``) includes that whole day, an ambiguous autumn time its second
        occurrence.
    :param session: ``"regular"`` (default): bars opening in [09:30, 16:00) exchange time on NYSE
        trading days, [09:30, 13:00) on half days; ``"extended"``: pre- and post-market of trading
        days; ``"all"``: every stored bar.
    :param interval: ``"1m"`` (the stored bars), ``"5m"``, ``"15m"``, ``"30m"``, ``"1h"``
        (aggregated, aligned to 09:30) or ``"1d"`` (one bar per trading day from the regular
        session, labelled 09:30).
    :param config: a configuration file (see :class:`Client`); one connection per file is kept
        for the next calls.
    :param exchange_time: annotate ``timestamp`` with the exchange's zone
        (``America/New_York``) instead of UTC; the instants are the same.
    :param concurrency: month partitions (of any symbol) queried at once, 1 to
        :data:`MAX_CONCURRENCY`.
    :returns: a table with the columns [``symbol`` (string)], ``timestamp``
        (``timestamp[ns, tz=UTC]``: the bar's open), ``open``, ``high``, ``low``, ``close``
        and ``volume`` (float64; volumes as delivered, fractional ones included), none
        nullable. A range without bars gives an empty table with these columns.
    :raises ValueError: an unusable argument (bad symbol, date, session or interval, ``start``
        after ``end``), named in the message.
    :raises ConfigError, ConnectError, FetchError: see :class:`Client`; ``FetchError`` also when
        a query fails.
    """
    return _client(config).fetch(
        symbols,
        start,
        end,
        session,
        interval,
        exchange_time=exchange_time,
        concurrency=concurrency,
    )


# --- coverage (issue 21) ---
def coverage(
    symbols: Union[str, Iterable[str]],
    start: Union[str, _dt.date],
    end: Union[str, _dt.date],
    session: str = "regular",
    config: ConfigPath = None,
    *,
    anomalies: bool = False,
) -> pyarrow.Table:
    """What is missing: for each symbol and NYSE trading day in ``[start, end]`` (exchange days,
    ``YYYY-MM-DD`` or ``datetime.date``), and each other day with bars, the same rows as
    ``bar-ingest coverage --format json`` as a ``pyarrow.Table`` (``.to_pandas()`` for a
    DataFrame). Columns: ``symbol``, ``day`` (date32), ``trading_day``, ``half_day``,
    ``expected`` (minutes in the session), ``present``, ``missing``, ``longest_gap_minutes``,
    ``bars`` (every bar of the day), ``anomalies`` (``kind: reason`` joined with ``; ``).

    :param session: ``regular`` (09:30-16:00, 13:00 on half days), ``extended`` (04:00-20:00,
        17:00 on half days) or ``all`` (every minute of the day).
    :param anomalies: also check prices (suspected unadjusted splits, jumps, runs of identical
        bars): reads whole day cells, slower. Bars after a half day's close are always reported.
    """
    return _client(config).coverage(symbols, start, end, session, anomalies=anomalies)


# --- end coverage ---


def fetch_minute_data(
    symbol: str,
    start: TimeLike,
    end: TimeLike,
    trading_hours: bool = False,
    config: ConfigPath = None,
) -> "pandas.DataFrame":
    """The one-minute bars of ``symbol`` as the pandas DataFrame the old Python script returned.

    The frame has the columns ``open``, ``high``, ``low``, ``close`` and ``volume`` (float64,
    always: volumes as delivered, fractional ones included; the old script's were int64),
    indexed by a ``DatetimeIndex`` named ``ts``: the bars' open times in exchange time
    (tz-aware, ``America/New_York`` or the configuration's ``input.timezone``), ascending.

    :param symbol: one symbol (``str``).
    :param start: first bar time included; :func:`fetch` lists the forms. A naive ``datetime``
        is exchange time, as in the old script. Unlike the old script, a date string or a
        ``datetime.date`` as ``end`` includes that whole day (the old script's ``end`` was an
        instant: a date meant its midnight).
    :param end: last bar time included.
    :param trading_hours: only the regular session (``session="regular"``); else every stored
        bar (``session="all"``). **Differs from the old script**, whose filter was pandas
        ``between_time("09:30", "16:00")``: that kept the bar opening at 16:00 (it belongs to
        the post-market) and, ignoring early closes, three hours of post-market bars on half
        days (13:00 to 16:00). Here the regular session is [09:30, 16:00) on NYSE trading days and
        [09:30, 13:00) on half days, and it excludes weekends and holidays. For the old rows,
        fetch with ``trading_hours=False`` and apply ``between_time("09:30", "16:00")`` yourself.
    :param config: a configuration file (see :class:`Client`).
    :returns: ``pandas.DataFrame`` (empty, with the same columns and index type, when there are
        no bars).
    :raises ImportError: pandas is not installed (``pip install pandas``).
    :raises ValueError, ConfigError, ConnectError, FetchError: as :func:`fetch`.
    """
    if not isinstance(symbol, str):
        raise TypeError(
            f"symbol must be one symbol as a str, not {type(symbol).__name__} "
            "(use bar_ingest.fetch for several)"
        )
    try:
        import pandas  # noqa: F401  (to_pandas needs it; say so before fetching)
    except ImportError as e:
        raise ImportError(
            "fetch_minute_data returns a pandas DataFrame: install pandas "
            "(pip install pandas)"
        ) from e
    table = fetch(
        symbol,
        start,
        end,
        session="regular" if trading_hours else "all",
        interval="1m",
        config=config,
        exchange_time=True,
    )
    frame = table.to_pandas().set_index("timestamp")
    frame.index.name = "ts"
    return frame
