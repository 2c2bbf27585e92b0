"""Loopback mock servers for real HTTP tests: Binance spot, Coinbase Exchange, CoinGecko.

Each mock is a real ``ThreadingHTTPServer`` on ``127.0.0.1`` (a free port), started by
``with``. Candles come from ``make_candles`` (a seeded random walk), so a test can compare
what a client fetched with the mock's own data, bar for bar::

    with MockBinance(symbols=["BTC/USDT"], start="2024-01-01", end="2024-02-01",
                     timeframe="1h", gaps=[("2024-01-10", "2024-01-11")], seed=0) as mock:
        mock.url                      # "http://127.0.0.1:PORT" (pass as --api-url)
        mock.fail_next(429, times=2, headers={"Retry-After": "1"})
        ...
        mock.frame("BTC/USDT")        # every generated bar (OHLCV + Binance extras)
        mock.requests                 # log of every request: path, params, status, time

Like the real exchange, a mock serves only bars that have opened by the wall clock, so the
bar in progress comes back (partial) and future bars do not.

``MockBinance.corrupt(kind, times=1, bar=None)`` makes klines answers misbehave the way
exchanges and proxies do (see ``KLINE_FAULTS``): empty or short pages, malformed JSON, an
HTML page with status 200, null / non-numeric / NaN fields, negative volume, high below low,
one open time twice with different values. ``times=None`` keeps the fault on; ``bar`` limits
it to pages holding that open time. ``hold()`` / ``release()`` park klines requests, to test
what a second client does meanwhile.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pandas as pd

from cryptoai.data.symbols import canonical
from cryptoai.data.timeframes import bar_grid, timeframe_to_ms

Window = tuple[Any, Any]

BINANCE_INTERVALS = (
    "1s",
    "1m",
    "3m",
    "5m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "8h",
    "12h",
    "1d",
    "3d",
    "1w",
    "1M",
)
CANDLE_COLUMNS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
    "taker_buy_base",
    "taker_buy_quote",
)


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)  # .value is nanoseconds whatever the unit


def make_candles(
    start: Any,
    end: Any,
    timeframe: str = "1h",
    *,
    seed: int = 0,
    gaps: Iterable[Window] = (),
    start_price: float = 100.0,
) -> pd.DataFrame:
    """Seeded random-walk candles on the epoch-aligned grid of ``[start, end)``.

    Columns are OHLCV plus Binance's extras; values are rounded to 8 decimals so they
    survive the exchange's string encoding exactly. Bars opening inside a ``gaps`` window
    ``[from, to)`` are absent, as when an exchange was down.
    """
    idx = bar_grid(_utc(start), _utc(end), timeframe).as_unit("ns")
    n = len(idx)
    rng = np.random.default_rng(seed)
    close = start_price * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate([[start_price], close[:-1]])
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0.0, 0.004, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0.0, 0.004, n)))
    volume = rng.gamma(2.0, 50.0, n)
    mid = (open_ + close) / 2
    taker = volume * rng.uniform(0.3, 0.7, n)
    data = {
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": volume,
        "quote_volume": volume * mid,
        "trades": rng.integers(100, 5000, n).astype("float64"),
        "taker_buy_base": taker,
        "taker_buy_quote": taker * mid,
    }
    frame = pd.DataFrame({k: np.round(v, 8) for k, v in data.items()}, index=idx)
    # Rounding must not break high >= max(open, close) >= min(open, close) >= low.
    frame["high"] = frame[["open", "high", "close"]].max(axis=1)
    frame["low"] = frame[["open", "low", "close"]].min(axis=1)
    for g0, g1 in gaps:
        frame = frame[(frame.index < _utc(g0)) | (frame.index >= _utc(g1))]
    return frame


@dataclass
class Request:
    """One request the mock received, and the status it answered."""

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    status: int = 0
    time: float = field(default_factory=time.monotonic)


@dataclass
class _Failure:
    status: int
    headers: dict[str, str]
    body: Any
    path: str | None


Reply = tuple[int, dict[str, str], Any]

#: Ways ``MockBinance.corrupt`` can spoil a klines answer.
KLINE_FAULTS = (
    "empty",
    "short",
    "malformed_json",
    "html",
    "null_field",
    "string_field",
    "nan_close",
    "negative_volume",
    "high_below_low",
    "dup_conflict",
)


@dataclass
class RawBody:
    """A body sent exactly as given (malformed JSON, an HTML page), with its content type."""

    text: str
    content_type: str = "application/json;charset=UTF-8"


@dataclass
class _Corruption:
    kind: str
    times: int | None
    bar_ms: int | None


class MockServer:
    """Threaded HTTP server on a free loopback port with a request log and failure script.

    Subclasses implement ``route(method, path, params, headers) -> (status, headers, body)``
    (a ``dict``/``list`` body is sent as JSON, ``str`` as text) and ``error_body(status)``.
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._failures: deque[_Failure] = deque()
        self._always: _Failure | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> Self:
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else keep-alive replies stall ~40 ms each

            def do_GET(self) -> None:
                mock._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash; kept after stop)."""
        if self._port is None:
            raise RuntimeError("mock server not started: use it in a with block")
        return f"http://127.0.0.1:{self._port}"

    # -- failure injection -------------------------------------------------------------
    def fail_next(
        self,
        status: int,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
        path: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests (to paths starting with ``path``, if given)
        with ``status``; scripts queue in call order. ``body`` defaults to the
        exchange's own error shape for that status."""
        for _ in range(times):
            self._failures.append(_Failure(status, dict(headers or {}), body, path))

    def fail_always(
        self, status: int, headers: dict[str, str] | None = None, path: str | None = None
    ) -> None:
        """Answer every request (after any scripted ones) with ``status``."""
        self._always = _Failure(status, dict(headers or {}), None, path)

    def clear_failures(self) -> None:
        self._failures.clear()
        self._always = None

    def requests_to(self, path: str) -> list[Request]:
        """Logged requests whose path ends with ``path`` (e.g. ``/klines``)."""
        return [r for r in self.requests if r.path.endswith(path)]

    # -- overridables --------------------------------------------------------------------
    def route(
        self, method: str, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> Reply:
        raise NotImplementedError

    def error_body(self, status: int) -> Any:
        return {"error": f"HTTP {status}"}

    # -- plumbing ------------------------------------------------------------------------
    def _scripted(self, path: str) -> _Failure | None:
        with self._lock:
            for i, f in enumerate(self._failures):
                if f.path is None or path.startswith(f.path):
                    del self._failures[i]
                    return f
            a = self._always
            if a is not None and (a.path is None or path.startswith(a.path)):
                return a
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        req = Request("GET", parts.path, params, headers)
        failure = self._scripted(parts.path)
        if failure is not None:
            body = failure.body if failure.body is not None else self.error_body(failure.status)
            status, extra = failure.status, failure.headers
        else:
            try:
                status, extra, body = self.route("GET", parts.path, params, headers)
            except Exception as exc:  # a bug in the mock must show up as a 500, not a hang
                status, extra, body = 500, {}, {"error": f"mock crashed: {exc!r}"}
        req.status = status
        with self._lock:
            self.requests.append(req)
        if isinstance(body, RawBody):
            payload, ctype = body.text.encode(), body.content_type
        elif isinstance(body, dict | list):
            payload, ctype = json.dumps(body).encode(), "application/json;charset=UTF-8"
        else:
            payload, ctype = str(body).encode(), "text/html; charset=utf-8"
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(payload)))
        for k, v in extra.items():
            handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(payload)


def _pair(symbol: str) -> tuple[str, str]:
    base, quote = canonical(symbol).split("/")
    return base, quote


def _symbol_seed(seed: int, key: str) -> int:
    return seed * 1_000_003 + zlib.crc32(key.encode())


def _now_ms() -> int:
    return int(time.time() * 1000)


class _CandleBook:
    """Per-(symbol, timeframe) candles, generated lazily and cached."""

    def __init__(
        self, symbols: Sequence[str], start: Any, end: Any, gaps: Iterable[Window], seed: int
    ):
        self.symbols = [canonical(s) for s in symbols]
        self.start, self.end = _utc(start), _utc(end)
        self.gaps = [(_utc(a), _utc(b)) for a, b in gaps]
        self.seed = seed
        self._cache: dict[tuple[str, str], pd.DataFrame] = {}
        self._lock = threading.Lock()

    def frame(self, symbol: str, timeframe: str) -> pd.DataFrame:
        sym = canonical(symbol)
        with self._lock:
            if (sym, timeframe) not in self._cache:
                price = 100.0 * (1 + self.symbols.index(sym)) if sym in self.symbols else 100.0
                self._cache[(sym, timeframe)] = make_candles(
                    self.start,
                    self.end,
                    timeframe,
                    seed=_symbol_seed(self.seed, sym),
                    gaps=self.gaps,
                    start_price=price,
                )
            return self._cache[(sym, timeframe)]

    def served(self, symbol: str, timeframe: str) -> tuple[np.ndarray, pd.DataFrame]:
        """Open times (ms) and rows of bars that have opened by now."""
        frame = self.frame(symbol, timeframe)
        opens = frame.index.as_unit("ms").asi8
        keep = opens <= _now_ms()
        return opens[keep], frame[keep]


class MockBinance(MockServer):
    """Binance spot REST: ``/api/v3/exchangeInfo``, ``/klines``, ``/time``, ``/ping``.

    ``symbols`` as ``BTC/USDT`` or ``BTCUSDT``. Klines follow the real endpoint: ``startTime``
    and ``endTime`` (inclusive, on open times), ``limit`` default 500 and max 1000, 12-field
    rows with prices as strings; without ``startTime`` the latest bars up to ``endTime``.
    Any valid interval is served (each generated from the seed); unknown symbols get
    ``{"code": -1121, "msg": "Invalid symbol."}`` with HTTP 400.
    """

    def __init__(
        self,
        symbols: Sequence[str] = ("BTC/USDT", "ETH/USDT", "ETH/BTC"),
        start: Any = "2024-01-01",
        end: Any = "2024-01-15",
        timeframe: str = "1h",
        gaps: Iterable[Window] = (),
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.timeframe = timeframe
        self.book = _CandleBook(symbols, start, end, gaps, seed)
        self._corruptions: list[_Corruption] = []
        self._gate = threading.Event()
        self._gate.set()
        self.arrived = threading.Event()  # set by each klines request (before any hold)

    def frame(self, symbol: str, timeframe: str | None = None) -> pd.DataFrame:
        """Every generated bar for ``symbol`` (future and in-progress ones included)."""
        return self.book.frame(symbol, timeframe or self.timeframe)

    def corrupt(self, kind: str, times: int | None = 1, bar: Any = None) -> None:
        """Spoil the next ``times`` klines answers (``None``: all) holding ``bar``, if given."""
        if kind not in KLINE_FAULTS:
            raise ValueError(f"unknown fault {kind!r}: one of {KLINE_FAULTS}")
        bar_ms = None if bar is None else _ms(_utc(bar))
        with self._lock:
            self._corruptions.append(_Corruption(kind, times, bar_ms))

    def clear_corruptions(self) -> None:
        with self._lock:
            self._corruptions.clear()

    def hold(self) -> None:
        """Park every klines request until ``release()``."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def _corruption(self, rows: list[list[Any]]) -> _Corruption | None:
        opens = {r[0] for r in rows}
        with self._lock:
            for c in self._corruptions:
                if c.bar_ms is not None and c.bar_ms not in opens:
                    continue
                if c.bar_ms is None and not rows and c.kind != "empty":
                    continue
                if c.times is not None:
                    c.times -= 1
                    if c.times <= 0:
                        self._corruptions.remove(c)
                return c
        return None

    @staticmethod
    def _spoil(c: _Corruption, rows: list[list[Any]]) -> Any:
        if c.kind == "empty":
            return []
        if c.kind == "short":
            return rows[: max(1, len(rows) // 2)]
        if c.kind == "malformed_json":
            return RawBody(json.dumps(rows)[:-7])
        if c.kind == "html":
            return RawBody("<html><body><h1>Down for maintenance</h1></body></html>", "text/html")
        rows = [list(r) for r in rows]
        i = next((k for k, r in enumerate(rows) if r[0] == c.bar_ms), len(rows) // 2)
        row = rows[i]
        if c.kind == "null_field":
            row[4] = None
        elif c.kind == "string_field":
            row[4] = "n/a"
        elif c.kind == "nan_close":
            row[4] = "NaN"
        elif c.kind == "negative_volume":
            row[5] = "-5.00000000"
        elif c.kind == "high_below_low":
            row[2] = f"{float(row[3]) * 0.5:.8f}"
        elif c.kind == "dup_conflict":
            twin = list(row)
            twin[4] = f"{float(row[4]) * 1.01:.8f}"
            twin[2] = f"{max(float(row[2]), float(twin[4])):.8f}"
            rows.insert(i + 1, twin)
        return rows

    @property
    def ids(self) -> dict[str, str]:
        """Exchange id -> canonical symbol, e.g. ``BTCUSDT -> BTC/USDT``."""
        return {s.replace("/", ""): s for s in self.book.symbols}

    def error_body(self, status: int) -> Any:
        if status in (418, 429):
            return {
                "code": -1003,
                "msg": "Too much request weight used; please use WebSocket Streams.",
            }
        if status >= 500:
            return {"code": -1000, "msg": "An unknown error occurred while processing the request."}
        return {"code": -1100, "msg": "Illegal characters found in a parameter."}

    def route(
        self, method: str, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> Reply:
        if path == "/api/v3/ping":
            return 200, {}, {}
        if path == "/api/v3/time":
            return 200, {}, {"serverTime": _now_ms()}
        if path == "/api/v3/exchangeInfo":
            return self._exchange_info(params)
        if path == "/api/v3/klines":
            self.arrived.set()
            self._gate.wait(timeout=30)
            status, headers, rows = self._klines(params)
            fault = self._corruption(rows) if status == 200 else None
            return (status, headers, rows if fault is None else self._spoil(fault, rows))
        return 404, {}, "<html><body><h1>404 Not Found</h1></body></html>"

    def _symbol_info(self, sym: str) -> dict[str, Any]:
        base, quote = sym.split("/")
        return {
            "symbol": base + quote,
            "status": "TRADING",
            "baseAsset": base,
            "baseAssetPrecision": 8,
            "quoteAsset": quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT_LIMIT",
            ],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": True,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": "0.01000000",
                    "maxPrice": "1000000.00000000",
                    "tickSize": "0.01000000",
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": "0.00001000",
                    "maxQty": "9000.00000000",
                    "stepSize": "0.00001000",
                },
                {
                    "filterType": "NOTIONAL",
                    "minNotional": "5.00000000",
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": "0.00000000",
                    "maxQty": "100.00000000",
                    "stepSize": "0.00000000",
                },
            ],
            "permissions": [],
            "permissionSets": [["SPOT", "MARGIN"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }

    def _exchange_info(self, params: dict[str, str]) -> Reply:
        ids = self.ids
        wanted = list(ids)
        if "symbol" in params:
            wanted = [params["symbol"]]
        if any(w not in ids for w in wanted):
            return 400, {}, {"code": -1121, "msg": "Invalid symbol."}
        body = {
            "timezone": "UTC",
            "serverTime": _now_ms(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 61000,
                },
            ],
            "exchangeFilters": [],
            "symbols": [self._symbol_info(ids[w]) for w in wanted],
        }
        return 200, {}, body

    def _klines(self, params: dict[str, str]) -> Reply:
        sym = self.ids.get(params.get("symbol", ""))
        if sym is None:
            return 400, {}, {"code": -1121, "msg": "Invalid symbol."}
        interval = params.get("interval", "")
        if interval not in BINANCE_INTERVALS:
            return 400, {}, {"code": -1120, "msg": "Invalid interval."}
        try:
            limit = int(params.get("limit", 500))
            start = int(params["startTime"]) if "startTime" in params else None
            end = int(params["endTime"]) if "endTime" in params else None
        except ValueError:
            return 400, {}, {"code": -1100, "msg": "Illegal characters found in a parameter."}
        if not 1 <= limit <= 1000:
            return 400, {}, {"code": -1130, "msg": "Invalid data sent for a parameter."}
        if interval == "1M":
            return 200, {}, []
        opens, frame = self.book.served(sym, interval)
        mask = np.ones(len(opens), dtype=bool)
        if start is not None:
            mask &= opens >= start
        if end is not None:
            mask &= opens <= end
        pos = np.flatnonzero(mask)
        pos = pos[:limit] if start is not None else pos[-limit:]
        tf_ms = timeframe_to_ms(interval)
        values = frame[list(CANDLE_COLUMNS)].to_numpy()
        rows = []
        for i in pos:
            o, h, lo, c, v, qv, n, tb, tq = values[i]
            rows.append(
                [
                    int(opens[i]),
                    f"{o:.8f}",
                    f"{h:.8f}",
                    f"{lo:.8f}",
                    f"{c:.8f}",
                    f"{v:.8f}",
                    int(opens[i]) + tf_ms - 1,
                    f"{qv:.8f}",
                    int(n),
                    f"{tb:.8f}",
                    f"{tq:.8f}",
                    "0",
                ]
            )
        return 200, {}, rows


class MockCoinbaseExchange(MockServer):
    """Coinbase Exchange public REST (``/products``, ``/currencies``, ``/products/ID/candles``):
    a second exchange shape for the generic ccxt path (``fetch_ohlcv``, OHLCV only).

    Candles: ``granularity`` in seconds, ``start``/``end`` ISO times (inclusive), at most
    300 per request, rows ``[time_s, low, high, open, close, volume]`` newest first.
    """

    GRANULARITIES = (60, 300, 900, 3600, 21600, 86400)

    def __init__(
        self,
        symbols: Sequence[str] = ("BTC/USD", "ETH/USD"),
        start: Any = "2024-01-01",
        end: Any = "2024-01-15",
        timeframe: str = "1h",
        gaps: Iterable[Window] = (),
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.timeframe = timeframe
        self.book = _CandleBook(symbols, start, end, gaps, seed)

    def frame(self, symbol: str, timeframe: str | None = None) -> pd.DataFrame:
        return self.book.frame(symbol, timeframe or self.timeframe)

    def error_body(self, status: int) -> Any:
        return {"message": "Internal server error" if status >= 500 else "Too many requests"}

    def route(
        self, method: str, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> Reply:
        if path == "/products":
            return 200, {}, [self._product(s) for s in self.book.symbols]
        if path == "/currencies":
            codes = sorted({c for s in self.book.symbols for c in _pair(s)})
            return 200, {}, [self._currency(c) for c in codes]
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "products" and parts[2] == "candles":
            return self._candles(parts[1], params)
        return 404, {}, {"message": "NotFound"}

    @staticmethod
    def _product(sym: str) -> dict[str, Any]:
        base, quote = sym.split("/")
        return {
            "id": f"{base}-{quote}",
            "base_currency": base,
            "quote_currency": quote,
            "quote_increment": "0.01",
            "base_increment": "0.00000001",
            "display_name": f"{base}-{quote}",
            "min_market_funds": "1",
            "margin_enabled": False,
            "post_only": False,
            "limit_only": False,
            "cancel_only": False,
            "status": "online",
            "status_message": "",
            "trading_disabled": False,
            "fx_stablecoin": False,
            "max_slippage_percentage": "0.02000000",
            "auction_mode": False,
        }

    @staticmethod
    def _currency(code: str) -> dict[str, Any]:
        return {
            "id": code,
            "name": code,
            "min_size": "0.00000001",
            "status": "online",
            "message": "",
            "max_precision": "0.00000001",
            "convertible_to": [],
            "details": {"type": "crypto", "symbol": code, "sort_order": 1},
            "default_network": "",
            "supported_networks": [],
        }

    def _candles(self, product: str, params: dict[str, str]) -> Reply:
        sym = product.replace("-", "/")
        if sym not in self.book.symbols:
            return 404, {}, {"message": "NotFound"}
        try:
            gran = int(params.get("granularity", "0"))
        except ValueError:
            gran = 0
        if gran not in self.GRANULARITIES:
            return 400, {}, {"message": "Unsupported granularity"}
        tf = {60: "1m", 300: "5m", 900: "15m", 3600: "1h", 21600: "6h", 86400: "1d"}[gran]
        opens, frame = self.book.served(sym, tf)
        end_ms = _ms(_utc(params["end"])) if "end" in params else _now_ms()
        start_ms = _ms(_utc(params["start"])) if "start" in params else end_ms - 300 * gran * 1000
        if (end_ms - start_ms) // (gran * 1000) + 1 > 300:
            return (
                400,
                {},
                {
                    "message": "granularity too small for the requested time range. Count of aggregations requested exceeds 300"
                },
            )
        mask = (opens >= start_ms) & (opens <= end_ms)
        values = frame[["low", "high", "open", "close", "volume"]].to_numpy()
        rows = [[int(opens[i] // 1000), *values[i].tolist()] for i in np.flatnonzero(mask)[::-1]]
        return 200, {}, rows


COINGECKO_ERRORS = {
    429: {
        "status": {
            "error_code": 429,
            "error_message": "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing to subscribe to our API plans for higher rate limits.",
        }
    },
    10002: {"status": {"error_code": 10002, "error_message": "API Key Missing"}},
    10005: {
        "status": {
            "error_code": 10005,
            "error_message": "This request is limited Pro API subscribers. You may wanna subscribe to some paid plan https://www.coingecko.com/en/api/pricing",
        }
    },
    10012: {
        "error": {
            "status": {
                "error_code": 10012,
                "error_message": "Your request exceeds the allowed time range. Public API users are limited to querying historical data within the past 365 days.",
            }
        }
    },
}


@dataclass(frozen=True)
class Coin:
    id: str
    symbol: str
    name: str
    market_cap_rank: int | None


DEFAULT_COINS = (
    Coin("bitcoin", "btc", "Bitcoin", 1),
    Coin("ethereum", "eth", "Ethereum", 2),
    Coin("batcat", "btc", "batcat", 4242),  # a second "btc": the ranked one must win
)


class MockCoinGecko(MockServer):
    """CoinGecko API v3 under ``/api/v3``: ``/ping``, ``/search``, ``/coins/list``,
    ``/simple/supported_vs_currencies``, ``/coins/{id}/ohlc``, ``/coins/{id}/market_chart/range``.

    Prices come from a 30-minute random walk over the last ``days`` days up to now.
    ``/ohlc`` follows CoinGecko's automatic granularity (1-2 days: 30m, 3-30 days: 4h,
    longer: 4d; ``interval=hourly|daily`` for paid plans) and stamps each candle with its
    *close* time; the candle in progress is included. ``market_chart/range`` gives
    30-minute (up to 1 day), hourly (up to 90 days) or daily samples; ``total_volumes`` is a
    rolling 24 h volume in the vs currency.

    ``plan``: ``public`` (no key), ``demo`` or ``pro`` (``api_key`` required in the
    ``x-cg-demo-api-key`` / ``x-cg-pro-api-key`` header). Non-pro plans see 365 days.
    """

    VS = {"usd": 1.0, "eur": 0.9, "btc": 1 / 50_000}

    def __init__(
        self,
        coins: Sequence[Coin] = DEFAULT_COINS,
        days: int = 400,
        seed: int = 0,
        plan: str = "public",
        api_key: str | None = None,
    ) -> None:
        super().__init__()
        self.coins = list(coins)
        self.plan = plan
        self.api_key = api_key
        self.now = pd.Timestamp.now(tz="UTC")
        end = self.now.floor("30min") + pd.Timedelta("30min")
        start = end - pd.Timedelta(days=days)
        self._paths = {
            c.id: make_candles(
                start, end, "30m", seed=_symbol_seed(seed, c.id), start_price=100.0 * (i + 1)
            )
            for i, c in enumerate(self.coins)
        }

    def path(self, coin_id: str, vs: str = "usd") -> pd.DataFrame:
        """The 30-minute bars (open-stamped) everything is built from, in ``vs``."""
        frame = self._paths[coin_id].copy()
        cols = ["open", "high", "low", "close"]
        frame[cols] = frame[cols] * self.VS[vs]
        frame["volume_quote"] = frame["volume"] * frame["close"]
        return frame[frame.index <= pd.Timestamp.now(tz="UTC")]

    def candles(self, coin_id: str, vs: str, granularity: str) -> pd.DataFrame:
        """OHLC candles of ``granularity`` indexed by their *close* time, as ``/ohlc`` serves."""
        path = self.path(coin_id, vs)
        td = pd.Timedelta(granularity)
        epoch = pd.Timestamp(0, tz="UTC")
        close_at = epoch + ((path.index - epoch) // td + 1) * td
        g = path.groupby(close_at)
        out = pd.DataFrame(
            {
                "open": g["open"].first(),
                "high": g["high"].max(),
                "low": g["low"].min(),
                "close": g["close"].last(),
            }
        )
        return out.iloc[1:]  # the first candle is cut by the start of the path

    def volume_24h(self, coin_id: str, vs: str) -> pd.Series:
        """Rolling 24 h volume in ``vs`` at each 30-minute bar's close time."""
        path = self.path(coin_id, vs)
        vol = path["volume_quote"].rolling(48, min_periods=1).sum()
        vol.index = path.index + pd.Timedelta("30min")
        return vol

    def error_body(self, status: int) -> Any:
        if status == 429:
            return COINGECKO_ERRORS[429]
        return {"status": {"error_code": status, "error_message": "Internal Server Error"}}

    def _auth(self, headers: dict[str, str], params: dict[str, str]) -> Reply | None:
        if self.plan == "public":
            return None
        header = "x-cg-pro-api-key" if self.plan == "pro" else "x-cg-demo-api-key"
        if (
            headers.get(header) != self.api_key
            and params.get(header.replace("-", "_")) != self.api_key
        ):
            return 401, {}, COINGECKO_ERRORS[10002]
        return None

    def route(
        self, method: str, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> Reply:
        denied = self._auth(headers, params)
        if denied is not None:
            return denied
        if not path.startswith("/api/v3/"):
            return 404, {}, "<html><body>Not Found</body></html>"
        p = path[len("/api/v3") :]
        if p == "/ping":
            return 200, {}, {"gecko_says": "(V3) To the Moon!"}
        if p == "/coins/list":
            return 200, {}, [{"id": c.id, "symbol": c.symbol, "name": c.name} for c in self.coins]
        if p == "/simple/supported_vs_currencies":
            return 200, {}, list(self.VS)
        if p == "/search":
            return 200, {}, self._search(params.get("query", ""))
        parts = p.strip("/").split("/")
        if len(parts) >= 3 and parts[0] == "coins":
            coin_id, rest = parts[1], "/".join(parts[2:])
            if coin_id not in self._paths:
                return 404, {}, {"error": "coin not found"}
            vs = params.get("vs_currency", "")
            if vs not in self.VS:
                return 400, {}, {"error": "invalid vs_currency"}
            if rest == "ohlc":
                return self._ohlc(coin_id, vs, params)
            if rest == "market_chart/range":
                return self._range(coin_id, vs, params)
        return 404, {}, {"error": "Not Found"}

    def _search(self, query: str) -> dict[str, Any]:
        q = query.lower()
        hits = [c for c in self.coins if q and (q in c.id or q in c.symbol or q in c.name.lower())]
        hits.sort(key=lambda c: (c.market_cap_rank is None, c.market_cap_rank or 0))
        coins = [
            {
                "id": c.id,
                "name": c.name,
                "api_symbol": c.id,
                "symbol": c.symbol.upper(),
                "market_cap_rank": c.market_cap_rank,
                "thumb": "",
                "large": "",
            }
            for c in hits
        ]
        return {"coins": coins, "exchanges": [], "icons": [], "categories": [], "nfts": []}

    def _ohlc(self, coin_id: str, vs: str, params: dict[str, str]) -> Reply:
        days_text = params.get("days", "")
        interval = params.get("interval")
        if interval is not None and self.plan != "pro":
            return 401, {}, COINGECKO_ERRORS[10005]
        if days_text == "max":
            if self.plan != "pro":
                return 401, {}, COINGECKO_ERRORS[10012]
            days = 10**6
        else:
            try:
                days = int(days_text)
            except ValueError:
                return 400, {}, {"error": "invalid days"}
        if days > 365 and self.plan != "pro":
            return 401, {}, COINGECKO_ERRORS[10012]
        if interval == "hourly":
            gran = "1h"
        elif interval == "daily":
            gran = "1D"
        else:
            gran = "30min" if days <= 2 else "4h" if days <= 30 else "4D"
        candles = self.candles(coin_id, vs, gran)
        now = pd.Timestamp.now(tz="UTC")
        candles = candles[candles.index > now - pd.Timedelta(days=days)]
        rows = [
            [_ms(ts), *row.tolist()]
            for ts, row in zip(candles.index, candles.to_numpy(), strict=True)
        ]
        return 200, {}, rows

    def _range(self, coin_id: str, vs: str, params: dict[str, str]) -> Reply:
        try:
            t0 = pd.Timestamp(float(params["from"]), unit="s", tz="UTC")
            t1 = pd.Timestamp(float(params["to"]), unit="s", tz="UTC")
        except (KeyError, ValueError):
            return 400, {}, {"error": "invalid from/to"}
        if self.plan != "pro" and t0 < pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=365):
            return 401, {}, COINGECKO_ERRORS[10012]
        span = t1 - t0
        step = (
            "30min"
            if span <= pd.Timedelta(days=1)
            else "1h"
            if span <= pd.Timedelta(days=90)
            else "1D"
        )
        vol = self.volume_24h(coin_id, vs)
        price = self.path(coin_id, vs)["close"]
        price.index = vol.index
        sample = vol.index[
            (vol.index >= t0) & (vol.index <= t1) & (vol.index == vol.index.floor(step))
        ]
        prices = [[_ms(t), float(price[t])] for t in sample]
        return (
            200,
            {},
            {
                "prices": prices,
                "market_caps": [[t, p * 19_000_000] for t, p in prices],
                "total_volumes": [[_ms(t), float(vol[t])] for t in sample],
            },
        )
