"""Candles from Binance or any other ccxt exchange, over the exchange's REST API.

Binance is read through ccxt's raw ``klines`` endpoint, because ``fetch_ohlcv`` drops the
extra fields (quote volume, trades, taker buy volumes) that we keep. Other exchanges use
``fetch_ohlcv`` (OHLCV only). Requests go through ccxt's rate limiter and are retried on
network errors, 429/418 and 5xx (see ``retry``); pages are yielded as they arrive.
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt
import pandas as pd

from cryptoai.data.frame import EXTRA_COLUMNS, from_epoch_ms, normalize
from cryptoai.data.sources.base import Source
from cryptoai.data.sources.retry import (
    RetryPolicy,
    TransientError,
    call_with_retry,
    is_retry_status,
    parse_retry_after,
)
from cryptoai.data.symbols import canonical
from cryptoai.data.timeframes import timeframe_to_ms
from cryptoai.errors import BadInputError, CryptoaiError, SourceError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Exchanges whose spot API is Binance's (raw klines with the extra fields).
BINANCE_LIKE = frozenset({"binance", "binanceus"})
#: Binance's klines endpoint returns at most this many bars per request.
BINANCE_MAX_LIMIT = 1000
_DEFAULT_LIMIT = 500
_CLOSE_TIME = 6  # index of a Binance kline row's close time; extras follow it


def _check_api_url(api_url: str) -> str:
    parts = urlsplit(api_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadInputError(
            f"--api-url {api_url!r} is not an http(s) URL: give the REST base, e.g."
            " https://testnet.binance.vision"
        )
    return api_url.strip().rstrip("/")


def rewrite_api_urls(urls: Any, api_url: str) -> Any:
    """Point every http(s) endpoint in ccxt's ``urls['api']`` at ``api_url``.

    Scheme and host (with any path prefix of ``api_url``) replace the original's; the
    endpoint's own path is kept, so Binance's ``https://api.binance.com/api/v3`` becomes
    ``{api_url}/api/v3``. WebSocket endpoints are left alone.
    """
    if isinstance(urls, dict):
        return {k: rewrite_api_urls(v, api_url) for k, v in urls.items()}
    if isinstance(urls, str) and urls.startswith(("http://", "https://")):
        parts = urlsplit(urls)
        query = f"?{parts.query}" if parts.query else ""
        return f"{api_url}{parts.path}{query}"
    return urls


class _RequestTrace:
    """The URL, status and headers of the exchange's latest HTTP exchange."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.url: str | None = None
        self.status: int | None = None
        self.headers: dict[str, str] = {}


def _traced(cls: type) -> type:
    """A subclass of a ccxt exchange class that records each request's URL and status,
    which ccxt's exceptions do not expose (and need to tell 404 from 503)."""

    class Traced(cls):  # type: ignore[misc, valid-type]
        def __init__(self, config: dict[str, Any]) -> None:
            self.trace = _RequestTrace()
            super().__init__(config)

        def fetch(
            self, url: str, method: str = "GET", headers: Any = None, body: Any = None
        ) -> Any:
            self.trace.url = url
            return super().fetch(url, method, headers, body)

        def on_rest_response(
            self, code: Any, reason: Any, url: str, method: str, headers: Any, body: Any, *args: Any
        ) -> Any:
            self.trace.status = int(code) if code is not None else None
            self.trace.headers = dict(headers or {})
            return super().on_rest_response(code, reason, url, method, headers, body, *args)

    Traced.__name__ = cls.__name__
    return Traced


def _short(exc: BaseException, n: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= n else text[: n - 3] + "..."


class CcxtSource(Source):
    """Spot candles from a ccxt exchange (``binance``, ``kraken``, ``okx``...).

    ``api_url`` replaces the exchange's REST base (testnet, mirror, proxy); ``page_limit``
    caps bars per request (default: the exchange's maximum, 1000 for Binance). Markets
    are loaded on first use: for Binance only the spot ``exchangeInfo`` is requested.
    """

    def __init__(
        self,
        exchange_id: str,
        api_url: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        page_limit: int | None = None,
        timeout_s: float = 30,
    ) -> None:
        ex_id = exchange_id.strip().lower()
        if ex_id not in ccxt.exchanges:
            close = difflib.get_close_matches(ex_id, ccxt.exchanges, n=3)
            did_you_mean = f"did you mean {', '.join(close)}? " if close else ""
            raise BadInputError(
                f"unknown exchange {exchange_id!r}: {did_you_mean}give a ccxt exchange id such"
                " as binance, kraken, okx or coinbase; list all with:"
                ' python -c "import ccxt; print(ccxt.exchanges)"'
            )
        if page_limit is not None and page_limit < 1:
            raise BadInputError(f"page limit must be at least 1, not {page_limit}")
        config: dict[str, Any] = {"enableRateLimit": True, "timeout": int(timeout_s * 1000)}
        if ex_id in BINANCE_LIKE:
            # Spot exchangeInfo only: no futures (fapi/dapi), margin or currency (sapi) calls.
            config["options"] = {
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
            }
        self.exchange = ex_id
        self._ex = _traced(getattr(ccxt, ex_id))(config)
        if api_url is not None:
            base = _check_api_url(api_url)
            self._ex.urls["api"] = rewrite_api_urls(self._ex.urls["api"], base)
        self._retry = retry or RetryPolicy()
        self._page_limit = page_limit
        self._raw_klines = ex_id in BINANCE_LIKE

    # -- public API ----------------------------------------------------------------------
    @property
    def timeframes(self) -> list[str]:
        """Timeframes the exchange serves candles for."""
        return list((self._ex.timeframes or {}).keys())

    @property
    def page_limit(self) -> int:
        """Bars per request: the exchange's maximum unless capped by the caller."""
        limit = self._max_limit()
        return min(limit, self._page_limit) if self._page_limit else limit

    def resolve_symbol(self, symbol: str) -> str:
        """``BTC/USDT``, ``BTCUSDT``, ``btc-usdt`` -> the exchange's spot ``BTC/USDT``."""
        self._load_markets()
        market = self._find_market(symbol)
        if market is None:
            raise BadInputError(self._unknown_symbol_message(symbol))
        if not market.get("spot", True):
            raise BadInputError(
                f"{symbol!r} is a {market.get('type', 'derivative')} market on {self.exchange};"
                " only spot candles are fetched: give a spot pair such as BTC/USDT"
            )
        return market["symbol"]

    def fetch(
        self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> Iterator[pd.DataFrame]:
        """Yield pages of closed bars with open time in ``[start, end)``, oldest first."""
        sym = self.resolve_symbol(symbol)
        self._check_timeframe(timeframe)
        tf_ms = timeframe_to_ms(timeframe)
        start_ms = _ms(start)
        # A bar is closed once open + timeframe <= now; the one in progress is never kept.
        stop_ms = min(_ms(end), int(time.time() * 1000) - tf_ms + 1)
        if stop_ms <= start_ms:
            log.info(
                "%s %s %s: no closed bars in the requested range yet", self.exchange, sym, timeframe
            )
            return
        log.info(
            "%s %s %s: fetching [%s, %s) (up to %d bars, %d per request)",
            self.exchange,
            sym,
            timeframe,
            f"{pd.Timestamp(start_ms, unit='ms', tz='UTC'):%Y-%m-%d %H:%M}",
            f"{pd.Timestamp(stop_ms, unit='ms', tz='UTC'):%Y-%m-%d %H:%M}",
            -(-(stop_ms - start_ms) // tf_ms),
            self.page_limit,
        )
        pages = (
            self._binance_pages(sym, timeframe, start_ms, stop_ms, tf_ms)
            if self._raw_klines
            else self._ohlcv_pages(sym, timeframe, start_ms, stop_ms, tf_ms)
        )
        total = 0
        for page in pages:
            total += len(page)
            log.debug(
                "%s %s %s: %d bars so far (to %s)",
                self.exchange,
                sym,
                timeframe,
                total,
                page.index[-1],
            )
            yield page
        log.info("%s %s %s: %d bars received", self.exchange, sym, timeframe, total)

    def close(self) -> None:
        session = getattr(self._ex, "session", None)
        if session is not None:
            session.close()

    # -- paging --------------------------------------------------------------------------
    def _binance_pages(
        self, symbol: str, timeframe: str, start_ms: int, stop_ms: int, tf_ms: int
    ) -> Iterator[pd.DataFrame]:
        """Binance klines by ``startTime``/``endTime``: a short page means the range is done."""
        market_id = self._ex.market(symbol)["id"]
        limit = self.page_limit
        since = start_ms
        while since < stop_ms:
            params = {
                "symbol": market_id,
                "interval": self._ex.timeframes[timeframe],
                "startTime": since,
                "endTime": stop_ms - 1,
                "limit": limit,
            }
            rows = self._request(
                lambda p=params: self._ex.publicGetKlines(p), f"klines {symbol} {timeframe}"
            )
            if not rows:
                return
            kept = [
                [
                    int(r[0]),
                    *map(float, r[1:_CLOSE_TIME]),
                    *map(float, r[_CLOSE_TIME + 1 : _CLOSE_TIME + 5]),
                ]
                for r in rows
                if start_ms <= int(r[0]) < stop_ms
            ]
            if kept:
                yield normalize(from_epoch_ms(kept, extra=EXTRA_COLUMNS))
            if len(rows) < limit:
                return
            since = int(rows[-1][0]) + tf_ms

    def _ohlcv_pages(
        self, symbol: str, timeframe: str, start_ms: int, stop_ms: int, tf_ms: int
    ) -> Iterator[pd.DataFrame]:
        """Generic ``fetch_ohlcv`` paging. Exchanges differ on what an empty page means
        (no more data, or a window with no trades), so an empty page moves one window on."""
        limit = self.page_limit
        since = start_ms
        while since < stop_ms:
            rows = self._request(
                lambda s=since: self._ex.fetch_ohlcv(symbol, timeframe, since=s, limit=limit),
                f"fetch_ohlcv {symbol} {timeframe}",
            )
            rows = sorted(
                (r for r in rows or [] if r[0] is not None and r[0] >= since), key=lambda r: r[0]
            )
            if not rows:
                since += limit * tf_ms
                continue
            kept = [r[:6] for r in rows if start_ms <= r[0] < stop_ms]
            if kept:
                yield normalize(from_epoch_ms(kept))
            since = int(rows[-1][0]) + tf_ms

    # -- markets and checks --------------------------------------------------------------
    def _max_limit(self) -> int:
        if self._raw_klines:
            return BINANCE_MAX_LIMIT
        features = (getattr(self._ex, "features", None) or {}).get("spot") or {}
        limit = (features.get("fetchOHLCV") or {}).get("limit")
        return int(limit) if limit else _DEFAULT_LIMIT

    def _load_markets(self) -> None:
        if not self._ex.markets:
            self._request(self._ex.load_markets, "load markets")
            log.debug("%s: %d markets loaded", self.exchange, len(self._ex.markets or {}))

    def _find_market(self, symbol: str) -> dict[str, Any] | None:
        markets = self._ex.markets or {}
        by_id = self._ex.markets_by_id or {}
        text = symbol.strip()
        for candidate in (text, text.upper()):
            if candidate in markets:
                return markets[candidate]
        for candidate in (text, text.upper(), text.lower()):
            found = by_id.get(candidate)
            if found:
                found = found if isinstance(found, list) else [found]
                return next((m for m in found if m.get("spot")), found[0])
        try:
            guess = canonical(text)
        except CryptoaiError:
            return None
        return markets.get(guess)

    def _unknown_symbol_message(self, symbol: str) -> str:
        markets = self._ex.markets or {}
        spot = [s for s, m in markets.items() if m.get("spot", True)]
        try:
            probe = canonical(symbol)
        except CryptoaiError:
            probe = symbol.strip().upper()
        close = difflib.get_close_matches(probe, spot, n=3, cutoff=0.5)
        hint = (
            f"close matches: {', '.join(close)}" if close else f"e.g. {', '.join(sorted(spot)[:3])}"
        )
        return (
            f"unknown symbol {symbol!r} on {self.exchange}: write a spot pair as BASE/QUOTE"
            f" (or the exchange id such as BTCUSDT); {hint}"
        )

    def _check_timeframe(self, timeframe: str) -> None:
        if not self._ex.has.get("fetchOHLCV") and not self._raw_klines:
            raise BadInputError(
                f"{self.exchange} offers no candles through ccxt: pick another exchange"
            )
        if timeframe not in (self._ex.timeframes or {}):
            raise BadInputError(
                f"{self.exchange} has no {timeframe!r} candles: use one of {', '.join(self.timeframes)}"
            )
        timeframe_to_ms(timeframe)  # our own grid must understand it too

    # -- requests and errors ----------------------------------------------------------------
    def _request(self, fn: Callable[[], T], what: str) -> T:
        """One REST call with retries; ccxt exceptions become our one-line errors."""

        def attempt() -> T:
            self._ex.trace.reset()
            try:
                return fn()
            except ccxt.BaseError as exc:
                raise self._translate(exc) from exc

        return call_with_retry(attempt, self._retry, what=f"{self.exchange} {what}")

    def _host(self) -> str:
        url = self._ex.trace.url
        if url:
            parts = urlsplit(url)
            return f"{parts.scheme}://{parts.netloc}"
        return self.exchange

    def _translate(self, exc: ccxt.BaseError) -> Exception:
        status = self._ex.trace.status
        host = self._host()
        if is_retry_status(status):
            rate = status in (418, 429)
            return TransientError(
                f"{self.exchange} at {host} answered HTTP {status}"
                f"{' (rate limit)' if rate else ' (server error)'}",
                retry_after=parse_retry_after(self._ex.trace.headers.get("Retry-After")),
                hint="wait a while and retry; with --api-url, check that the server is healthy",
            )
        if status is None and isinstance(exc, ccxt.NetworkError):
            return TransientError(
                f"cannot reach {self.exchange} at {host} ({_network_reason(exc)})",
                hint="check the network, or pass --api-url URL to use a mirror or proxy; then retry",
            )
        if isinstance(exc, ccxt.BadSymbol):
            return BadInputError(
                f"{self.exchange} does not know this symbol ({_short(exc)}): check --symbol, e.g. BTC/USDT"
            )
        if isinstance(exc, ccxt.AuthenticationError) or status in (401, 403, 451):
            return SourceError(
                f"{self.exchange} at {host} refused access (HTTP {status}): the API may be blocked"
                " where you are; pass --api-url URL for a mirror (for Binance market data:"
                " https://data-api.binance.vision)"
            )
        if status is not None and status >= 400:
            return SourceError(
                f"{self.exchange} at {host} rejected the request (HTTP {status}: {_short(exc)});"
                " check --api-url, --symbol and --timeframe"
            )
        return SourceError(f"{self.exchange} failed: {_short(exc)}; retry later or report it")


def _network_reason(exc: BaseException) -> str:
    """A few words on why a connection failed, from the underlying requests error."""
    text = f"{exc} {exc.__cause__ or ''}".lower()
    if "refused" in text:
        return "connection refused"
    if isinstance(exc, ccxt.RequestTimeout) or "timed out" in text:
        return "timed out"
    if any(k in text for k in ("name or service not known", "nodename", "resolve", "getaddrinfo")):
        return "host name not found"
    return type(exc).__name__


def _ms(ts: pd.Timestamp) -> int:
    ts = pd.Timestamp(ts)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
    return int(ts.value // 1_000_000)


__all__ = ["BINANCE_LIKE", "CcxtSource", "rewrite_api_urls"]
