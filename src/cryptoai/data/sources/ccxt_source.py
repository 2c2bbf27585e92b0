"""Candles from Binance or any other ccxt exchange, over the exchange's REST API.

Binance is read through ccxt's raw ``klines`` endpoint, because ``fetch_ohlcv`` drops the
extra fields (quote volume, trades, taker buy volumes) that we keep. Other exchanges use
``fetch_ohlcv`` (OHLCV only). Requests go through ccxt's rate limiter and are retried on
network errors, 429/418, 5xx and pages that fail their check (unparseable, non-numeric,
off the grid, outside what was asked, contract breaks, conflicting repeats; see ``retry``
and ``validate.check_page``); pages are yielded as they arrive.

No single answer is taken to mean "no more data": a short page continues from its last
bar, and an empty one is asked again and then probed past before its span counts as a hole
of the exchange; a span that cannot be confirmed is yielded as ``Unconfirmed``.

ccxt is imported on first use, so registering these sources costs nothing.
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from cryptoai.data.frame import EXTRA_COLUMNS, from_epoch_ms
from cryptoai.data.sources.base import BAD_CANDLE_POLICIES, Source, Unconfirmed
from cryptoai.data.sources.registry import register_source
from cryptoai.data.sources.retry import (
    RetryPolicy,
    TransientError,
    call_with_retry,
    is_retry_status,
    parse_retry_after,
)
from cryptoai.data.symbols import canonical
from cryptoai.data.timeframes import timeframe_to_ms
from cryptoai.data.validate import check_page
from cryptoai.errors import BadInputError, CryptoaiError, SourceError

if TYPE_CHECKING:
    import ccxt

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


def _ccxt():  # noqa: ANN202 - the ccxt module, imported on first use (it is slow to import)
    import ccxt

    return ccxt


class BadPage(TransientError):
    """A page that failed its check; ``frame`` holds its parsed rows when it had any."""

    def __init__(self, message: str, *, frame: pd.DataFrame | None = None) -> None:
        super().__init__(
            message,
            hint="nothing of that page was stored and its range stays missing: re-run later"
            " to fetch it again, or pass --on-bad-candle skip to store the good candles and"
            " leave the bad ones missing",
        )
        self.frame = frame


def _number(value: Any) -> float:
    """A candle field as a float; anything that is not a number becomes NaN (then refused)."""
    if value is None or isinstance(value, bool):
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _open_time(row: Any, what: str) -> int:
    value = row[0] if isinstance(row, list | tuple) and row else None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadPage(f"{what} sent a candle without an open time: {_clip(row)}")
    try:
        ms = float(value)
    except ValueError:
        raise BadPage(
            f"{what} sent a candle whose open time is not a number: {_clip(row)}"
        ) from None
    if not np.isfinite(ms) or ms != int(ms):
        raise BadPage(f"{what} sent a candle whose open time is not whole ms: {_clip(row)}")
    return int(ms)


def _rows(body: Any, what: str, width: int) -> list[list[Any]]:
    """The answer as candle rows, or a `BadPage` saying what came instead."""
    if not isinstance(body, list):
        kind = "an HTML page" if isinstance(body, str) and "<" in body[:200] else _clip(body)
        raise BadPage(f"{what} answered {kind} instead of a list of candles")
    for row in body:
        if not isinstance(row, list | tuple) or len(row) < width:
            raise BadPage(f"{what} sent a malformed candle: {_clip(row)}")
    return body


def _clip(value: Any, n: int = 60) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= n else text[: n - 3] + "..."


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
    ``on_bad_candle``: ``fail`` (a page that stays bad ends the fetch) or ``skip`` (its
    good candles are kept, the bad ones left missing). ``rate_limit=False`` turns ccxt's
    request spacing off (for loopback tests).
    """

    def __init__(
        self,
        exchange_id: str,
        api_url: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        page_limit: int | None = None,
        timeout_s: float = 30,
        on_bad_candle: str = "fail",
        rate_limit: bool = True,
    ) -> None:
        ccxt = _ccxt()
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
        if on_bad_candle not in BAD_CANDLE_POLICIES:
            raise BadInputError(
                f"--on-bad-candle {on_bad_candle!r}: choose one of {', '.join(BAD_CANDLE_POLICIES)}"
            )
        config: dict[str, Any] = {"enableRateLimit": rate_limit, "timeout": int(timeout_s * 1000)}
        if ex_id in BINANCE_LIKE:
            # Spot exchangeInfo only: no futures (fapi/dapi), margin or currency (sapi) calls.
            config["options"] = {
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
            }
        self.exchange = ex_id
        self.on_bad_candle = on_bad_candle
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
        """Timeframes the exchange serves candles for and the store can hold (a fixed bar
        length: monthly ``1M`` bars are left out)."""
        out = []
        for tf in self._ex.timeframes or {}:
            try:
                timeframe_to_ms(tf)
            except BadInputError:
                continue
            out.append(tf)
        return out

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
    ) -> Iterator[pd.DataFrame | Unconfirmed]:
        """Yield pages of closed bars with open time in ``[start, end)``, oldest first, and
        an ``Unconfirmed`` for any span the exchange left empty without confirming it."""
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
            _fmt_ms(start_ms),
            _fmt_ms(stop_ms),
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
            if isinstance(page, pd.DataFrame):
                total += len(page)
                log.debug("%s %s %s: %d bars so far", self.exchange, sym, timeframe, total)
            yield page
        log.info("%s %s %s: %d bars received", self.exchange, sym, timeframe, total)

    def close(self) -> None:
        session = getattr(self._ex, "session", None)
        if session is not None:
            session.close()

    # -- paging --------------------------------------------------------------------------
    def _binance_pages(
        self, symbol: str, timeframe: str, start_ms: int, stop_ms: int, tf_ms: int
    ) -> Iterator[pd.DataFrame | Unconfirmed]:
        """Binance klines by ``startTime``/``endTime``. Binance answers with the first bars
        at or after ``startTime``, so bars it skips inside a page are holes it confirmed. A
        short page is not the end (a proxy may cut pages): paging goes on from its last bar.
        An empty page is asked again, then probed past the range (``limit=1`` and no
        ``endTime``): a bar after the range confirms the hole, none leaves it unconfirmed,
        one inside the range means the empty answers were wrong, and the span is asked again."""
        market_id = self._ex.market(symbol)["id"]
        interval = self._ex.timeframes[timeframe]
        limit = self.page_limit
        since, contradictions = start_ms, 0

        def klines(first: int, last: int | None, n: int) -> pd.DataFrame:
            params = {"symbol": market_id, "interval": interval, "startTime": first, "limit": n}
            if last is not None:
                params["endTime"] = last
            what = f"klines {symbol} {timeframe} from {_fmt_ms(first)}"
            return self._request(
                lambda: self._ex.publicGetKlines(params),
                what,
                parse=lambda body: self._page(body, timeframe, first, last, what, binance=True),
            )

        while since < stop_ms:
            page = klines(since, stop_ms - 1, limit)
            if page.empty:
                log.info("%s: empty page from %s, asking again", self.exchange, _fmt_ms(since))
                page = klines(since, stop_ms - 1, limit)
            if page.empty:
                probe = klines(since, None, 1)
                if probe.empty:
                    yield Unconfirmed(
                        _ts(since),
                        _ts(stop_ms),
                        f"{self.exchange} sent no bars from {_fmt_ms(since)} and none after",
                    )
                    return
                if _ms(probe.index.min()) >= stop_ms:
                    log.info(
                        "%s %s %s: no bars in [%s, %s), confirmed (the next is at %s)",
                        self.exchange,
                        symbol,
                        timeframe,
                        _fmt_ms(since),
                        _fmt_ms(stop_ms),
                        probe.index.min(),
                    )
                    return
                contradictions += 1
                if contradictions > self._retry.max_retries:
                    raise SourceError(
                        f"{self.exchange} at {self._host()} keeps answering empty pages from"
                        f" {_fmt_ms(since)} although it has a bar at {probe.index.min()}:"
                        " the server or a proxy in between is misbehaving; retry later"
                    )
                continue
            yield page
            since = _ms(page.index.max()) + tf_ms

    def _ohlcv_pages(
        self, symbol: str, timeframe: str, start_ms: int, stop_ms: int, tf_ms: int
    ) -> Iterator[pd.DataFrame | Unconfirmed]:
        """Generic ``fetch_ohlcv`` paging by ``since`` windows. Exchanges differ on what an
        empty page means (no more data, or a window with no trades), so an empty window is
        asked again and then passed; empty windows count as holes once a later bar shows the
        exchange has data after them, or a probe past the range finds one."""
        limit = self.page_limit
        since, empty_from = start_ms, None

        def window(first: int) -> pd.DataFrame:
            what = f"fetch_ohlcv {symbol} {timeframe} from {_fmt_ms(first)}"
            return self._request(
                lambda: self._ex.fetch_ohlcv(symbol, timeframe, since=first, limit=limit),
                what,
                parse=lambda body: self._page(body, timeframe, first, None, what, binance=False),
            )

        while since < stop_ms:
            page = window(since)
            if page.empty:
                page = window(since)
            if page.empty:
                empty_from = since if empty_from is None else empty_from
                since += limit * tf_ms
                continue
            empty_from = None  # a bar after the empty windows: they were holes
            kept = page[page.index < _ts(stop_ms)]
            if not kept.empty:
                yield kept
            if len(kept) < len(page):
                return  # the exchange has bars past the range: all before it is confirmed
            since = _ms(page.index.max()) + tf_ms
        if empty_from is not None:
            probe = window(stop_ms) if stop_ms + tf_ms <= time.time() * 1000 else None
            if probe is None or probe.empty:
                yield Unconfirmed(
                    _ts(empty_from),
                    _ts(stop_ms),
                    f"{self.exchange} sent no bars from {_fmt_ms(empty_from)} and none after",
                )

    def _page(
        self,
        body: Any,
        timeframe: str,
        first_ms: int,
        last_ms: int | None,
        what: str,
        *,
        binance: bool,
    ) -> pd.DataFrame:
        """Parse and check one answer (inside the retry loop, so a bad page is asked again).

        Raises `BadPage` naming the first bad bar; in ``skip`` mode the caller gets the
        page's rows back once the retries are spent, and the fetcher drops the bad ones.
        """
        where = f"{self.exchange} at {self._host()}"
        if binance:
            rows = _rows(body, where, 11)
            frame = from_epoch_ms(
                [
                    [_open_time(r, where), *map(_number, r[1:6]), *map(_number, r[7:11])]
                    for r in rows
                ],
                extra=EXTRA_COLUMNS,
            )
        else:
            rows = _rows(body, where, 6)
            frame = from_epoch_ms([[_open_time(r, where), *map(_number, r[1:6])] for r in rows])
            frame = frame[frame.index >= _ts(first_ms)]  # some exchanges start a page early
        lo, hi = _ts(first_ms), None if last_ms is None else _ts(last_ms + 1)
        outside = (frame.index < lo) | (frame.index >= hi if hi is not None else False)
        if outside.any():
            raise BadPage(
                f"{where} sent bar {frame.index[outside][0]} for {what}, outside what was asked"
                f" ({lo} .. {hi or 'open end'})",
                frame=frame[~outside],
            )
        checked = check_page(frame, timeframe)
        if not checked.ok:
            raise BadPage(
                f"{where} sent a bad page for {what}: {checked.first_problem()}", frame=frame
            )
        return checked.clean

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
    def _request(
        self, fn: Callable[[], Any], what: str, parse: Callable[[Any], T] | None = None
    ) -> T:
        """One REST call with retries (its answer parsed and checked by ``parse`` inside
        each try); ccxt exceptions become our one-line errors."""
        ccxt = _ccxt()

        def attempt() -> T:
            self._ex.trace.reset()
            try:
                body = fn()
            except ccxt.BaseError as exc:
                raise self._translate(exc) from exc
            return parse(body) if parse is not None else body

        try:
            return call_with_retry(attempt, self._retry, what=f"{self.exchange} {what}")
        except SourceError as err:
            bad = err.__cause__
            if isinstance(bad, BadPage) and bad.frame is not None and self.on_bad_candle == "skip":
                log.warning("%s; keeping its good candles, the bad ones stay missing", bad)
                return bad.frame  # type: ignore[return-value]
            raise

    def _host(self) -> str:
        url = self._ex.trace.url
        if url:
            parts = urlsplit(url)
            return f"{parts.scheme}://{parts.netloc}"
        return self.exchange

    def _translate(self, exc: ccxt.BaseError) -> Exception:
        ccxt = _ccxt()
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
    ccxt = _ccxt()
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


def _ts(ms: int) -> pd.Timestamp:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").as_unit("ns")


def _fmt_ms(ms: int) -> str:
    return f"{_ts(ms):%Y-%m-%d %H:%M}"


@register_source("binance")
def binance_source(
    *, api_url: str | None = None, retry: RetryPolicy | None = None, on_bad_candle: str = "fail"
) -> CcxtSource:
    """Binance spot, through its raw klines endpoint (keeps the extra columns)."""
    return CcxtSource("binance", api_url=api_url, retry=retry, on_bad_candle=on_bad_candle)


@register_source("ccxt")
def ccxt_source(
    *,
    exchange: str | None = None,
    api_url: str | None = None,
    retry: RetryPolicy | None = None,
    on_bad_candle: str = "fail",
) -> CcxtSource:
    """Any ccxt exchange, named by ``--exchange``."""
    if not exchange:
        raise BadInputError(
            "--source ccxt needs --exchange NAME (a ccxt exchange id such as kraken or okx)"
        )
    return CcxtSource(exchange, api_url=api_url, retry=retry, on_bad_candle=on_bad_candle)


__all__ = ["BINANCE_LIKE", "BadPage", "CcxtSource", "rewrite_api_urls"]
