"""Candle sources, found by name: ``binance``, ``ccxt`` (any exchange), ``coingecko``,
``csv`` and the offline ``synthetic`` default, plus any plugin registered with
``@register_source``. Imports are lazy so that the offline path never loads network
libraries."""

from __future__ import annotations

import inspect
from pathlib import Path

from cryptoai.data.sources.base import BAD_CANDLE_POLICIES, Source, Unconfirmed
from cryptoai.data.sources.registry import SOURCES, register_source
from cryptoai.errors import BadInputError

#: Options a user names on the command line: giving one a source does not take is an error.
_USER_OPTIONS = ("exchange", "api_url", "path")


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
    on_bad_candle: str = "fail",
) -> Source:
    """Build the source a user named on the command line or in a config.

    A registered name (see ``SOURCES``) is built by its factory; any other name that is a
    ccxt exchange id (``kraken``, ``okx``) means ``--source ccxt --exchange NAME``.
    """
    if on_bad_candle not in BAD_CANDLE_POLICIES:
        raise BadInputError(
            f"--on-bad-candle {on_bad_candle!r}: choose one of {', '.join(BAD_CANDLE_POLICIES)}"
        )
    key = SOURCES.normalize(name) if isinstance(name, str) else name
    options = {
        "exchange": exchange,
        "api_url": api_url,
        "path": path,
        "timeframe": timeframe,
        "seed": seed,
        "retry": _retry_policy(retries, retry_delay_s),
        "on_bad_candle": on_bad_candle,
    }
    if key not in SOURCES:
        if exchange is None and isinstance(key, str) and _is_ccxt_exchange(key):
            key, options["exchange"] = "ccxt", key
        else:
            SOURCES.get(name)  # raises: unknown source 'foo': choose one of ...
    factory = SOURCES.get(key)
    accepted = _parameters(factory)
    for option in _USER_OPTIONS:
        if options[option] is not None and option not in accepted:
            raise BadInputError(
                f"--{option.replace('_', '-')} does not apply to --source {name}"
                f"{_which_take(option)}"
            )
    return factory(**{k: v for k, v in options.items() if k in accepted and v is not None})


def _parameters(factory: object) -> set[str]:
    params = inspect.signature(factory).parameters.values()  # type: ignore[arg-type]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return {"exchange", "api_url", "path", "timeframe", "seed", "retry", "on_bad_candle"}
    return {p.name for p in params}


def _which_take(option: str) -> str:
    takers = [n for n in SOURCES.names() if option in _parameters(SOURCES.get(n))]
    return f" (only to {', '.join(takers)})" if takers else ""


def _is_ccxt_exchange(name: str) -> bool:
    """Whether ``name`` is a ccxt exchange id (imports ccxt, so only for unknown names)."""
    try:
        import ccxt
    except ImportError:  # pragma: no cover - ccxt is a dependency
        return False
    return name in ccxt.exchanges


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


__all__ = ["SOURCES", "Source", "Unconfirmed", "make_source", "register_source"]
