"""Incremental sync of the series listed in a data config (``scripts/sync_data.sh``)."""

from __future__ import annotations

import logging
import sys
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from cryptoai.config import load_config
from cryptoai.errors import CryptoaiError

log = logging.getLogger(__name__)


class SyncEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str
    exchange: str | None = None
    api_url: str | None = None
    symbols: list[str] = Field(min_length=1)
    timeframes: list[str] = Field(min_length=1)
    start: date
    end: date | None = None


class SyncConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    root: Path = Path("data/raw")
    series: list[SyncEntry] = Field(min_length=1)


def sync(config: SyncConfig, progress: bool = False) -> list[str]:
    """Fetch what is missing for every listed series; returns one line per failure."""
    from cryptoai.data.fetch import fetch_to_store
    from cryptoai.data.sources import make_source
    from cryptoai.data.store import RawStore
    from cryptoai.data.timeframes import parse_range

    store = RawStore(config.root)
    failures: list[str] = []
    for entry in config.series:
        start, end = parse_range(str(entry.start), str(entry.end) if entry.end else None)
        try:
            source = make_source(entry.source, exchange=entry.exchange, api_url=entry.api_url)
        except CryptoaiError as exc:
            failures.append(f"{entry.source} {entry.exchange or ''}: {exc}")
            log.error("%s", failures[-1])
            continue
        try:
            for symbol in entry.symbols:
                for timeframe in entry.timeframes:
                    try:
                        fetch_to_store(
                            source, store, symbol, timeframe, start, end, progress=progress
                        )
                    except CryptoaiError as exc:
                        failures.append(f"{source.exchange} {symbol} {timeframe}: {exc}")
                        log.error("%s", failures[-1])
        finally:
            source.close()
    return failures


def main(argv: list[str] | None = None) -> int:
    from cryptoai.log import setup_logging

    setup_logging()
    args = sys.argv[1:] if argv is None else argv
    path = args[0] if args else "configs/data/sync.yaml"
    try:
        failures = sync(load_config(path, SyncConfig))
    except CryptoaiError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return exc.exit_code
    if failures:
        print(f"error: {len(failures)} series failed; first: {failures[0]}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
