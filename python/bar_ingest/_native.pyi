"""Type stubs of the Rust extension module (python/src/lib.rs); use the package bar_ingest."""

import os
import pathlib
from typing import Iterable, Optional, Union

import pyarrow

__version__: str
MAX_CONCURRENCY: int

class Error(RuntimeError): ...
class ConfigError(Error): ...
class ConnectError(Error): ...
class FetchError(Error): ...

class Client:
    def __init__(self, config: Union[str, os.PathLike[str], None] = None) -> None: ...
    @property
    def timezone(self) -> str: ...
    @property
    def config(self) -> Optional[pathlib.Path]: ...
    def fetch(
        self,
        symbols: Union[str, Iterable[str]],
        start: str,
        end: str,
        session: str = "regular",
        interval: str = "1m",
        exchange_time: bool = False,
        concurrency: int = 8,
    ) -> pyarrow.Table: ...
    def coverage(
        self,
        symbols: Union[str, Iterable[str]],
        start: str,
        end: str,
        session: str = "regular",
        anomalies: bool = False,
    ) -> pyarrow.Table: ...
