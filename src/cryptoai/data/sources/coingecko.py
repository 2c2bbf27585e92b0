"""Candles from the CoinGecko API (aggregated prices across exchanges, not one order book).

CoinGecko has no arbitrary-range candle endpoint on its public plan, so candles come from
``/coins/{id}/ohlc`` ("the last N days"), whose candle length is set by CoinGecko, and
the requested range must fit in what that call reaches back:

====== ================================= ===========================================
 tf     request                           reaches back
====== ================================= ===========================================
 30m    ``days=1``                        1 day
 4h     ``days=7|14|30``                  30 days
 4d     ``days=90|180|365`` (``max``)     365 days (all history with a paid key)
 1h     ``interval=hourly`` (paid plans)  90 days
 1d     ``interval=daily`` (paid plans)   180 days
====== ================================= ===========================================

CoinGecko stamps each candle with its *close* time; we store open times. It reports no
per-candle volume: ``volume`` is the rolling 24-hour volume (``total_volumes`` of
``/coins/{id}/market_chart/range``) at the candle's close, divided by the close to get
base units. That matches a bar's own volume only for ``1d`` bars.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import requests

from cryptoai.data.frame import from_epoch_ms, normalize
from cryptoai.data.sources.base import Source
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
from cryptoai.errors import BadInputError, SourceError

log = logging.getLogger(__name__)

PUBLIC_URL = "https://api.coingecko.com"
PRO_URL = "https://pro-api.coingecko.com"
API_PATH = "/api/v3"
DEMO_KEY_ENV = "COINGECKO_API_KEY"
PRO_KEY_ENV = "COINGECKO_PRO_API_KEY"

#: timeframe -> (``interval`` parameter or None, ``days`` values giving that candle length)
OHLC_PLANS: dict[str, tuple[str | None, tuple[int, ...]]] = {
    "30m": (None, (1,)),
    "4h": (None, (7, 14, 30)),
    "4d": (None, (90, 180, 365)),
    "1h": ("hourly", (1, 7, 14, 30, 90)),
    "1d": ("daily", (1, 7, 14, 30, 90, 180)),
}
PUBLIC_TIMEFRAMES = ("30m", "4h", "4d")
#: Calls per minute by plan (CoinGecko: keyless 5-15, demo 30, paid 500 and more).
CALLS_PER_MINUTE = {"public": 10, "demo": 30, "pro": 500}


def _ms(ts: pd.Timestamp) -> int:
    ts = pd.Timestamp(ts)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
    return int(ts.value // 1_000_000)


class CoinGeckoSource(Source):
    """CoinGecko candles for ``BASE/QUOTE`` symbols: ``BTC/USD`` is coin ``bitcoin`` in ``usd``.

    ``api_key`` defaults to ``$COINGECKO_PRO_API_KEY`` (paid plan: pro URL and header) or
    else ``$COINGECKO_API_KEY`` (demo plan); without either the keyless public API is used.
    An explicit ``api_key`` is a demo key unless ``pro=True``.
    ``api_url`` replaces scheme and host (the ``/api/v3`` path is kept). See the module
    docstring for which timeframes and ranges CoinGecko can serve.
    """

    exchange = "coingecko"

    def __init__(
        self,
        api_url: str | None = None,
        api_key: str | None = None,
        *,
        pro: bool | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 30,
        calls_per_minute: int | None = None,
    ) -> None:
        if api_key is None:
            pro_key, demo_key = os.environ.get(PRO_KEY_ENV), os.environ.get(DEMO_KEY_ENV)
            if pro_key and pro is not False:
                api_key, pro = pro_key, True
            elif demo_key:
                api_key = demo_key
        api_key = api_key.strip() if api_key else None
        self.plan = "pro" if (api_key and pro) else "demo" if api_key else "public"
        base = (api_url or (PRO_URL if self.plan == "pro" else PUBLIC_URL)).strip().rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise BadInputError(
                f"--api-url {api_url!r} is not an http(s) URL: give the API host, e.g. {PUBLIC_URL}"
            )
        self.base_url = base + API_PATH
        self._session = requests.Session()
        self._session.headers.update({"Accept": "application/json", "User-Agent": "cryptoai"})
        if api_key:
            header = "x-cg-pro-api-key" if self.plan == "pro" else "x-cg-demo-api-key"
            self._session.headers[header] = api_key
        self._retry = retry or RetryPolicy()
        self._timeout = timeout_s
        per_minute = CALLS_PER_MINUTE[self.plan] if calls_per_minute is None else calls_per_minute
        self._limiter = CallLimiter(per_minute, 60.0)
        self._coins: dict[str, str] = {}  # BASE -> coin id
        self._vs: set[str] | None = None

    # -- public API ----------------------------------------------------------------------
    @property
    def timeframes(self) -> tuple[str, ...]:
        """Timeframes this plan can get candles for."""
        return tuple(OHLC_PLANS) if self.plan == "pro" else PUBLIC_TIMEFRAMES

    def resolve_symbol(self, symbol: str) -> str:
        """``BTC/USD`` (or ``bitcoin/usd``) -> ``BTC/USD``, checking coin and vs currency."""
        base, quote = canonical(symbol).split("/")
        vs = quote.lower()
        supported = self._vs_currencies()
        if vs not in supported:
            common = [c for c in ("usd", "eur", "btc", "eth") if c in supported]
            raise BadInputError(
                f"CoinGecko has no quote currency {quote!r}: use one of {', '.join(common)}"
                f" (e.g. {base}/USD); stablecoins such as USDT are coins, not quote currencies"
            )
        coin_symbol, _ = self._coin(base)
        return f"{coin_symbol}/{quote}"

    def fetch(
        self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> Iterator[pd.DataFrame]:
        """Yield one page: closed candles with open time in ``[start, end)``."""
        sym = self.resolve_symbol(symbol)
        base, quote = sym.split("/")
        _, coin_id = self._coin(base)
        vs = quote.lower()
        params = self._ohlc_params(timeframe, start, vs)
        tf_ms = timeframe_to_ms(timeframe)
        now_ms = int(time.time() * 1000)
        start_ms, stop_ms = _ms(start), min(_ms(end), now_ms - tf_ms + 1)
        if stop_ms <= start_ms:
            return
        log.info("coingecko %s (%s) %s: requesting /ohlc %s", sym, coin_id, timeframe, params)
        rows = self._get(f"/coins/{coin_id}/ohlc", params) or []
        # [close_ms, o, h, l, c] -> open-stamped rows in range
        bars = sorted(
            [int(r[0]) - tf_ms, *map(float, r[1:5])]
            for r in rows
            if r and r[0] is not None and start_ms <= int(r[0]) - tf_ms < stop_ms
        )
        self._check_spacing(bars, tf_ms, timeframe)
        if not bars:
            log.info("coingecko %s %s: no closed candles in range", sym, timeframe)
            return
        frame = from_epoch_ms([[*b, math.nan] for b in bars])
        frame["volume"] = self._volume(coin_id, vs, frame, tf_ms)
        log.info("coingecko %s %s: %d candles", sym, timeframe, len(frame))
        yield normalize(frame)

    def close(self) -> None:
        self._session.close()

    # -- candles -------------------------------------------------------------------------
    def _ohlc_params(self, timeframe: str, start: pd.Timestamp, vs: str) -> dict[str, Any]:
        if timeframe not in self.timeframes:
            paid = "" if self.plan == "pro" else "; 1h and 1d need a paid key in $" + PRO_KEY_ENV
            raise BadInputError(
                f"CoinGecko has no {timeframe!r} candles: use one of {', '.join(self.timeframes)}{paid}"
            )
        interval, choices = OHLC_PLANS[timeframe]
        age_days = (pd.Timestamp.now(tz="UTC") - pd.Timestamp(start)) / pd.Timedelta(days=1)
        need = max(1, math.ceil(age_days))
        days: int | str | None = next((d for d in choices if d >= need), None)
        if days is None and timeframe == "4d" and self.plan == "pro":
            days = "max"
        if days is None:
            raise BadInputError(
                f"CoinGecko serves {timeframe} candles only for the last {choices[-1]} days and"
                f" --start is {need} days ago: give a later --start, a longer --timeframe"
                f" ({', '.join(self.timeframes)}), or an exchange source such as binance"
            )
        params: dict[str, Any] = {"vs_currency": vs, "days": days}
        if interval:
            params["interval"] = interval
        return params

    @staticmethod
    def _check_spacing(bars: list[list[float]], tf_ms: int, timeframe: str) -> None:
        """CoinGecko picks the candle length itself; refuse to store a different one."""
        steps = pd.Series([b[0] for b in bars]).diff().dropna()
        if len(steps) and steps.min() < tf_ms:
            raise SourceError(
                f"CoinGecko returned candles {int(steps.min()) // 60000} min apart, not {timeframe}:"
                " its granularity rules may have changed; try another --timeframe"
            )

    def _volume(self, coin_id: str, vs: str, frame: pd.DataFrame, tf_ms: int) -> pd.Series:
        """Rolling 24 h volume at each candle's close, in base units (see module doc)."""
        closes = frame.index + pd.Timedelta(milliseconds=tf_ms)
        params = {
            "vs_currency": vs,
            "from": (_ms(closes[0]) - 86_400_000) // 1000,
            "to": _ms(closes[-1]) // 1000,
        }
        data = self._get(f"/coins/{coin_id}/market_chart/range", params) or {}
        samples = [v for v in data.get("total_volumes") or [] if v and v[1] is not None]
        if not samples:
            log.warning("coingecko %s: no volume data; volume left empty", coin_id)
            return pd.Series(math.nan, index=frame.index)
        vol = pd.DataFrame(samples, columns=["t", "v"])
        vol["t"] = pd.to_datetime(vol["t"].astype("int64"), unit="ms", utc=True).dt.as_unit("ns")
        left = pd.DataFrame({"t": closes.as_unit("ns")})
        merged = pd.merge_asof(left, vol.sort_values("t"), on="t", direction="backward")
        quote_volume = merged["v"].to_numpy()
        return pd.Series(quote_volume / frame["close"].to_numpy(), index=frame.index)

    # -- symbols -------------------------------------------------------------------------
    def _vs_currencies(self) -> set[str]:
        if self._vs is None:
            self._vs = {str(v).lower() for v in self._get("/simple/supported_vs_currencies", {})}
        return self._vs

    def _coin(self, base: str) -> tuple[str, str]:
        """(SYMBOL, coin id) for a ticker or coin id; the highest-ranked coin wins a tie."""
        key = base.upper()
        if key in self._coins:
            return key, self._coins[key]
        found = self._get("/search", {"query": base.lower()}) or {}
        coins = found.get("coins") or []
        exact = [c for c in coins if str(c.get("symbol", "")).upper() == key]
        exact.sort(key=lambda c: (c.get("market_cap_rank") is None, c.get("market_cap_rank") or 0))
        by_id = [c for c in coins if str(c.get("id", "")).lower() == base.lower()]
        pick = (exact or by_id or [None])[0]
        if pick is None:
            near = ", ".join(
                f"{str(c.get('symbol', '')).upper()} ({c.get('id')})" for c in coins[:5]
            )
            raise BadInputError(
                f"CoinGecko knows no coin {base!r}: use its ticker or coin id, e.g. BTC/USD or"
                f" bitcoin/usd{'; similar: ' + near if near else ''}"
            )
        symbol = str(pick["symbol"]).upper()
        self._coins[key] = self._coins[symbol] = str(pick["id"])
        return symbol, str(pick["id"])

    # -- HTTP ----------------------------------------------------------------------------
    def _get(self, path: str, params: dict[str, Any]) -> Any:
        url = self.base_url + path
        host = "{0.scheme}://{0.netloc}".format(urlsplit(url))

        def attempt() -> Any:
            self._limiter.wait()
            try:
                resp = self._session.get(url, params=params, timeout=self._timeout)
            except requests.RequestException as exc:
                reason = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                raise TransientError(
                    f"cannot reach CoinGecko at {host} ({reason})",
                    hint="check the network or pass --api-url URL; then retry",
                ) from exc
            if is_retry_status(resp.status_code):
                raise TransientError(
                    f"CoinGecko at {host} answered HTTP {resp.status_code} for {path}",
                    retry_after=parse_retry_after(resp.headers.get("Retry-After")),
                    hint="CoinGecko limits free calls per minute: wait and retry, or set an"
                    f" API key in ${DEMO_KEY_ENV}",
                )
            if resp.status_code >= 400:
                raise self._client_error(resp, host, path)
            try:
                return resp.json()
            except ValueError as exc:
                raise SourceError(
                    f"CoinGecko at {host} sent a non-JSON answer for {path}: check --api-url"
                ) from exc

        return call_with_retry(attempt, self._retry, what=f"coingecko {path}")

    def _client_error(self, resp: requests.Response, host: str, path: str) -> Exception:
        message = _error_message(resp)
        code = resp.status_code
        if code in (401, 403):
            if "10012" in message or "time range" in message.lower():
                return BadInputError(
                    f"CoinGecko refused the date range ({message}): give a later --start, or set a"
                    f" paid key in ${PRO_KEY_ENV}"
                )
            return SourceError(
                f"CoinGecko at {host} refused the request (HTTP {code}: {message}): check the key in"
                f" ${DEMO_KEY_ENV} (demo) or ${PRO_KEY_ENV} (paid plans)"
            )
        if code == 404 and "coin" in message.lower():
            return BadInputError(f"CoinGecko: {message}: check the symbol, e.g. BTC/USD")
        return SourceError(
            f"CoinGecko at {host} rejected {path} (HTTP {code}: {message}): check --api-url and --symbol"
        )


class CallLimiter:
    """At most ``limit`` calls in any ``window_s`` seconds (0 = no limit): a short burst
    goes out at once, a long run is spread to stay under the plan's rate limit."""

    def __init__(
        self,
        limit: int,
        window_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit, self.window_s = limit, window_s
        self._clock, self._sleep = clock, sleep  # injectable: tests drive a fake clock
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if self.limit <= 0:
            return
        with self._lock:
            now = self._clock()
            while self._calls and now - self._calls[0] >= self.window_s:
                self._calls.popleft()
            if len(self._calls) >= self.limit:
                pause = self.window_s - (now - self._calls[0])
                log.info(
                    "coingecko: %d calls in %.0f s, pausing %.1f s",
                    self.limit,
                    self.window_s,
                    pause,
                )
                self._sleep(pause)
                self._calls.popleft()
            self._calls.append(self._clock())


def _error_message(resp: requests.Response) -> str:
    """CoinGecko's error text from its several JSON error shapes (or the raw body)."""
    try:
        body = resp.json()
    except ValueError:
        return " ".join(resp.text.split())[:120] or resp.reason
    if isinstance(body, dict):
        err = body.get("error", body)
        status = err.get("status") if isinstance(err, dict) else None
        if isinstance(status, dict) and status.get("error_message"):
            code = status.get("error_code")
            return f"{status['error_message']} [{code}]" if code else str(status["error_message"])
        if isinstance(err, str):
            return err
    return str(body)[:120]


@register_source("coingecko")
def coingecko_source(
    *, api_url: str | None = None, retry: RetryPolicy | None = None
) -> CoinGeckoSource:
    """CoinGecko's aggregate candles (keys from the environment)."""
    return CoinGeckoSource(api_url=api_url, retry=retry)
