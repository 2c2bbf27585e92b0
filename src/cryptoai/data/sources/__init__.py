"""Candle sources, found by name: ``binance``, ``ccxt`` (any exchange), ``coingecko``,
``csv`` and the offline ``synthetic`` default. Imports are lazy so that the offline path
never loads network libraries."""

from __future__ import annotations

from pathlib import Path

from cryptoai.data.sources.base import Source
from cryptoai.errors import BadInputError

SOURCES = ("synthetic", "binance", "ccxt", "coingecko", "csv")


def make_source(
    name: str,
    *,
    exchange: str | None = None,
    api_url: str | None = None,
    path: str | Path | None = None,
    timeframe: str | None = None,
    seed: int = 42,
    retries: int | None = None,
    retry_delay_s: float | None = None,
) -> Source:
    """Build the source a user named on the command line or in a config."""
    key = name.strip().lower()
    retry = _retry_policy(retries, retry_delay_s)
    if key == "synthetic":
        from cryptoai.data.sources.synthetic import SyntheticSource

        return SyntheticSource(seed=seed)
    if key == "csv":
        if path is None:
            raise BadInputError("--source csv needs --path FILE: the CSV or Parquet file to import")
        from cryptoai.data.sources.csv_source import CsvSource

        return CsvSource(path, exchange=exchange or "csv", timeframe=timeframe)
    if key == "coingecko":
        from cryptoai.data.sources.coingecko import CoinGeckoSource

        return CoinGeckoSource(api_url=api_url, retry=retry)
    if key == "ccxt":
        if not exchange:
            raise BadInputError(
                "--source ccxt needs --exchange NAME (a ccxt exchange id such as kraken or okx)"
            )
        key = exchange.strip().lower()
    elif key not in {"binance"} and exchange:
        raise BadInputError(f"--exchange only applies to --source ccxt or csv, not {name!r}")
    from cryptoai.data.sources.ccxt_source import CcxtSource

    # Any other name is taken as a ccxt exchange id (binance, kraken, ...); CcxtSource
    # rejects unknown ids with the list of valid ones.
    return CcxtSource(key, api_url=api_url, retry=retry)


def _retry_policy(retries: int | None, delay_s: float | None):
    """A RetryPolicy when the user overrides the defaults, else None (the source's default)."""
    if retries is None and delay_s is None:
        return None
    from cryptoai.data.sources.retry import RetryPolicy

    if (retries is not None and retries < 0) or (delay_s is not None and delay_s < 0):
        raise BadInputError("--retries and --retry-delay must be >= 0")
    defaults = RetryPolicy()
    return RetryPolicy(
        max_retries=defaults.max_retries if retries is None else retries,
        base_delay_s=defaults.base_delay_s if delay_s is None else delay_s,
    )


__all__ = ["SOURCES", "Source", "make_source"]
