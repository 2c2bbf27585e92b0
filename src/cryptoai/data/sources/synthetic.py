"""Offline, seeded, realistic candles for any symbol, timeframe and date range.

The generator reproduces the stylized facts models are tested against: fat-tailed returns
(Student-t shocks), volatility clustering (GARCH(1,1) on top of a slow daily volatility
level), persistent bull / bear / sideways regimes, and intraday and weekend seasonality of
volatility and volume, with volume tied to volatility and taker flow tied to the bar's move.

Candles never depend on the requested range: every random number is a pure function of
(seed, symbol, timeframe, bar number counted from a fixed anchor) -- a counter-based RNG --
and the price path is always run forward from the anchor. So ``fetch(a, c)`` equals
``fetch(a, b)`` followed by ``fetch(b, c)`` bar for bar, which the store relies on when it
merges pieces fetched at different times.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd

from cryptoai.data.frame import EXTRA_COLUMNS, INDEX_NAME, OHLCV_COLUMNS, empty_ohlcv
from cryptoai.data.sources.base import Source
from cryptoai.data.sources.registry import register_source
from cryptoai.data.symbols import canonical
from cryptoai.data.timeframes import bar_grid, parse_utc, timeframe_to_timedelta
from cryptoai.errors import BadInputError

log = logging.getLogger(__name__)

#: First day with candles; bars are counted from here so any range gives the same bars.
ANCHOR = pd.Timestamp("2015-01-01", tz="UTC")
PAGE_BARS = 50_000
#: The path state (3 numbers) is remembered every this many bars, so a later fetch of a
#: recent range does not rerun the path from the anchor; resuming gives identical bars.
CHECKPOINT_BARS = 1 << 18
_CHECKPOINT_SERIES = 64
_checkpoint_store: OrderedDict[tuple, dict[int, np.ndarray]] = OrderedDict()
#: Refuse ranges that would need more bars than this from the anchor (memory and time guard).
MAX_BARS = 25_000_000

_DAY_NS = 86_400 * 10**9
_COLUMNS = (*OHLCV_COLUMNS, *EXTRA_COLUMNS)

# Rough price (in USD) and annualised volatility of well-known assets, so series look plausible.
_USD_LEVEL = {
    "BTC": 3.0e4, "ETH": 2.0e3, "BNB": 300.0, "SOL": 60.0, "XRP": 0.5, "ADA": 0.4, "DOGE": 0.08,
    "DOT": 6.0, "LTC": 80.0, "LINK": 12.0, "AVAX": 25.0, "MATIC": 0.8, "TRX": 0.1, "EUR": 1.1,
    "GBP": 1.27,
}  # fmt: skip
_STABLE = {"USDT", "USDC", "USD", "BUSD", "FDUSD", "TUSD", "DAI"}
_ANN_VOL = {"BTC": 0.6, "ETH": 0.75, "BNB": 0.7, "EUR": 0.08, "GBP": 0.09}
_DAILY_USD_VOLUME = {"BTC": 1.5e9, "ETH": 8.0e8, "BNB": 1.5e8, "SOL": 2.0e8, "XRP": 1.5e8}

# Regimes: 0 bull, 1 bear, 2 sideways. Drift per year (log, for an asset with 70% annual
# volatility), volatility and volume multipliers, and mean duration in days (weeks long).
_REGIME_DRIFT = np.array([1.2, -1.0, 0.0])
_REGIME_VOL = np.array([1.0, 1.3, 0.7])
_REGIME_VOLUME = np.array([1.1, 1.3, 0.7])
_REGIME_DAYS = np.array([70.0, 50.0, 40.0])


@dataclass(frozen=True)
class _Params:
    """Per-symbol constants derived from the symbol name (stable across runs and machines)."""

    level: float  # price level the long-run log price is pulled toward
    ann_vol: float
    daily_quote_volume: float  # in quote currency
    trade_size: float  # mean trade value, in quote currency


class SyntheticSource(Source):
    """Seeded candle generator; the same seed, symbol and timeframe always give the same bars."""

    def __init__(self, seed: int = 42) -> None:
        self.seed = int(seed)
        # Another seed is another market: keep its candles in their own store folder.
        self.exchange = "synthetic" if self.seed == 42 else f"synthetic-seed{self.seed}"

    def resolve_symbol(self, symbol: str) -> str:
        return canonical(symbol)

    def fetch(
        self, symbol: str, timeframe: str, start: pd.Timestamp, end: pd.Timestamp
    ) -> Iterator[pd.DataFrame]:
        """Yield pages of at most ``PAGE_BARS`` bars covering ``[start, end)``.

        Bars before ``ANCHOR`` do not exist, like candles before an exchange listed a pair.
        """
        symbol = canonical(symbol)
        td = timeframe_to_timedelta(timeframe)
        start, end = parse_utc(start, "start"), parse_utc(end, "end")
        td_ns = td.value
        first_ns = bar_grid(ANCHOR, ANCHOR + 2 * td, timeframe)[0].value
        i0 = max(0, -((first_ns - start.value) // td_ns))  # ceil division
        i1 = max(0, -((first_ns - end.value) // td_ns))
        if start < ANCHOR:
            log.info("synthetic candles start at %s; nothing before it", ANCHOR.date())
        if i1 > MAX_BARS:
            raise BadInputError(
                f"synthetic {timeframe} candles up to {end:%Y-%m-%d} would need {i1:,} bars from"
                f" {ANCHOR:%Y-%m-%d}: use an earlier --end or a longer --timeframe"
            )
        if i1 <= i0:
            return
        params = _symbol_params(symbol)
        key_sym = _key(f"{self.seed}|{symbol}")
        key_tf = np.uint64(_key(f"{self.seed}|{symbol}|{td_ns}"))  # 60m and 1h: same bars
        n_days = (first_ns + i1 * td_ns - ANCHOR.value) // _DAY_NS + 2
        mu_rate, var_rate, volume_rate = _daily_layer(key_sym, n_days, params.ann_vol)
        cum_mu = np.concatenate(([0.0], np.cumsum(mu_rate)))
        cum_var = np.concatenate(([0.0], np.cumsum(var_rate)))
        layer = (cum_mu, cum_var, mu_rate, var_rate, volume_rate)
        td_days = td_ns / _DAY_NS
        persistence = math.exp(-td_days / 2.0)  # vol shocks fade over ~2 days at any timeframe
        # ARCH weight small enough for a finite 4th moment, and below the persistence.
        alpha = min(0.5 * math.sqrt((1.0 - persistence**2) / 8.0), 0.5 * persistence)
        consts = np.array(
            [
                first_ns - ANCHOR.value,  # bar 0 offset from the anchor, ns
                td_ns,
                alpha,
                persistence - alpha,  # beta
                math.log(2.0) / 365.0 * td_days,  # pull toward the level: half-life one year
                math.log(params.level),
                params.daily_quote_volume * td_days,
                params.trade_size,
            ],
            dtype=np.float64,
        )
        checkpoints = _checkpoints((self.seed, symbol, td_ns))
        at = max((i for i in checkpoints if i <= i0), default=0)
        state = checkpoints[at].copy() if at else np.array([math.log(params.level), 1.0, 0.0])
        while at < i0:  # run the path forward from the anchor, remembering where it passed
            stop = min((at // CHECKPOINT_BARS + 1) * CHECKPOINT_BARS, i0)
            _run(key_tf, at, stop, consts, layer, state, None)
            at = stop
            if at % CHECKPOINT_BARS == 0:
                checkpoints[at] = state.copy()
        for lo in range(i0, i1, PAGE_BARS):
            hi = min(lo + PAGE_BARS, i1)
            out = np.empty((len(_COLUMNS), hi - lo))
            _run(key_tf, lo, hi, consts, layer, state, out)
            idx = pd.DatetimeIndex(
                first_ns + np.arange(lo, hi, dtype=np.int64) * td_ns, tz="UTC", name=INDEX_NAME
            )
            yield pd.DataFrame(dict(zip(_COLUMNS, out, strict=True)), index=idx)


def synthetic_ohlcv(
    symbol: str = "BTC/USDT",
    timeframe: str = "1h",
    start: str | pd.Timestamp = "2023-01-01",
    end: str | pd.Timestamp = "2025-01-01",
    seed: int = 42,
) -> pd.DataFrame:
    """One frame of synthetic candles: a shortcut for notebooks and tests."""
    pages = list(SyntheticSource(seed).fetch(symbol, timeframe, parse_utc(start), parse_utc(end)))
    return pd.concat(pages) if pages else empty_ohlcv(EXTRA_COLUMNS)


def _checkpoints(series: tuple) -> dict[int, np.ndarray]:
    """Remembered path states of one (seed, symbol, timeframe), least recently used dropped."""
    if series not in _checkpoint_store:
        _checkpoint_store[series] = {}
        while len(_checkpoint_store) > _CHECKPOINT_SERIES:
            _checkpoint_store.popitem(last=False)
    _checkpoint_store.move_to_end(series)
    return _checkpoint_store[series]


def _key(text: str) -> int:
    """Stable 64-bit key (``hash()`` is salted per process, crc32 is not)."""
    raw = text.encode()
    return (zlib.crc32(raw) << 32) | zlib.crc32(raw[::-1])


def _unit(key: int, salt: str) -> float:
    """A stable number in [0, 1) derived from a key, for per-symbol constants."""
    return zlib.crc32(f"{key}|{salt}".encode()) / 2**32


def _usd_level(asset: str) -> float:
    if asset in _STABLE:
        return 1.0
    if asset in _USD_LEVEL:
        return _USD_LEVEL[asset]
    return 10 ** (-1.0 + 3.0 * _unit(_key(asset), "level"))  # 0.1 .. 100


def _ann_vol(asset: str) -> float:
    if asset in _STABLE:
        return 0.005
    return _ANN_VOL.get(asset, 0.8 + 0.4 * _unit(_key(asset), "vol"))


def _symbol_params(symbol: str) -> _Params:
    base, quote = symbol.split("/")
    level = _usd_level(base) / _usd_level(quote)
    vb, vq = _ann_vol(base), _ann_vol(quote)
    ann_vol = max(0.005, math.sqrt(vb**2 + vq**2 - 1.2 * vb * vq)) if quote not in _STABLE else vb
    usd_volume = _DAILY_USD_VOLUME.get(base, 10 ** (7.0 + 1.5 * _unit(_key(base), "volume")))
    if quote not in _STABLE:
        usd_volume *= 0.1
    quote_usd = _usd_level(quote)
    return _Params(level, ann_vol, usd_volume / quote_usd, 400.0 / quote_usd)


# --- counter-based random numbers (splitmix64): value = f(key, bar, stream) -------------------


@numba.njit(cache=True, inline="always")
def _mix(x: np.uint64) -> np.uint64:
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@numba.njit(cache=True, inline="always")
def _uniform(key: np.uint64, i: np.int64, stream: np.int64) -> float:
    """Uniform in (0, 1), never 0 or 1, for bar ``i`` of ``stream``."""
    x = key + np.uint64(i * 16 + stream + 1) * np.uint64(0x9E3779B97F4A7C15)
    bits = _mix(_mix(x)) >> np.uint64(11)
    return (float(bits) + 0.5) / 9007199254740992.0


@numba.njit(cache=True, inline="always")
def _normal(key: np.uint64, i: np.int64, stream: np.int64) -> float:
    u1 = _uniform(key, i, stream)
    u2 = _uniform(key, i, stream + 1)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@numba.njit(cache=True, inline="always")
def _student_t5(key: np.uint64, i: np.int64) -> float:
    """Student-t with 5 degrees of freedom, scaled to unit variance (fat tails, kurtosis 9)."""
    n = _normal(key, i, 0)
    extra = _normal(key, i, 2)
    chi2 = -2.0 * math.log(_uniform(key, i, 4) * _uniform(key, i, 5)) + extra * extra
    return n / math.sqrt(chi2 / 5.0) / math.sqrt(5.0 / 3.0)


@numba.njit(cache=True)
def _daily_regimes(key: np.uint64, n_days: np.int64, ann_vol: float):
    """Per-day drift, variance and volume level from a regime chain and a slow vol factor."""
    mu = np.empty(n_days)
    var = np.empty(n_days)
    volume = np.empty(n_days)
    regime = int(_uniform(key, 0, 8) * 3.0)
    x = 0.0  # AR(1) log-volatility factor, stationary sd 0.35
    phi = 0.97
    sd = 0.35
    for d in range(n_days):
        if d > 0:
            if _uniform(key, d, 8) < 1.0 / _REGIME_DAYS[regime]:
                regime = (regime + 1 + int(_uniform(key, d, 9) * 2.0)) % 3
            x = phi * x + math.sqrt(1.0 - phi * phi) * sd * _normal(key, d, 10)
        factor = math.exp(x - sd * sd)  # E[factor^2] = 1
        mu[d] = _REGIME_DRIFT[regime] * (ann_vol / 0.7) / 365.0  # trends scale with volatility
        sigma = ann_vol * _REGIME_VOL[regime] * factor
        var[d] = sigma * sigma / 365.0
        volume[d] = _REGIME_VOLUME[regime] * factor**0.8
    return mu, var, volume


def _daily_layer(key: int, n_days: int, ann_vol: float) -> tuple[np.ndarray, ...]:
    return _daily_regimes(np.uint64(key), np.int64(n_days), ann_vol)


@numba.njit(cache=True, inline="always")
def _integral(cum: np.ndarray, rate: np.ndarray, t_ns: np.int64) -> float:
    """Integral of a per-day rate from the anchor to ``t_ns`` (ns after the anchor)."""
    d = t_ns // _DAY_NS
    return cum[d] + rate[d] * ((t_ns - d * _DAY_NS) / _DAY_NS)


@numba.njit(cache=True, inline="always")
def _season(t_mid_ns: np.int64, bar_ns: np.int64) -> float:
    """Variance multiplier: busier around 15:00 UTC, quieter on weekends (mean 1)."""
    if bar_ns > _DAY_NS:
        return 1.0
    anchor_weekday = 3  # 2015-01-01 was a Thursday (Monday = 0)
    weekday = (t_mid_ns // _DAY_NS + anchor_weekday) % 7
    weekend = 0.7 if weekday >= 5 else 1.0
    weekend /= (5.0 + 2.0 * 0.7) / 7.0
    if bar_ns == _DAY_NS:
        return weekend
    hour = (t_mid_ns % _DAY_NS) / 3.6e12
    a = 0.3
    intraday = (1.0 + a * math.cos(2.0 * math.pi * (hour - 15.0) / 24.0)) ** 2 / (1.0 + a * a / 2)
    return intraday * weekend


@numba.njit(cache=True)
def _run(key, lo, hi, consts, layer, state, out):
    """Advance the price path over bars ``[lo, hi)``; write candles into ``out`` unless None."""
    cum_mu, cum_var, mu_rate, var_rate, volume_rate = layer
    key = np.uint64(key)
    offset = np.int64(consts[0])
    bar_ns = np.int64(consts[1])
    alpha, beta, pull, log_level = consts[2], consts[3], consts[4], consts[5]
    quote_volume_per_bar, trade_size = consts[6], consts[7]
    lp, g, z_prev = state[0], state[1], state[2]
    for i in range(lo, hi):
        t0 = offset + np.int64(i) * bar_ns
        t1 = t0 + bar_ns
        mu = _integral(cum_mu, mu_rate, t1) - _integral(cum_mu, mu_rate, t0)
        base_var = _integral(cum_var, var_rate, t1) - _integral(cum_var, var_rate, t0)
        season = _season(t0 + bar_ns // 2, bar_ns)
        g = (1.0 - alpha - beta) + alpha * z_prev * z_prev * g + beta * g
        var = base_var * season * g
        sigma = math.sqrt(var)
        z = _student_t5(key, i)
        r = mu - pull * (lp - log_level) + sigma * z
        if out is not None:
            j = i - lo
            o = math.exp(lp)
            c = math.exp(lp + r)
            # Extremes of a Brownian bridge from 0 to r with variance var (exact sampling).
            e_hi = -math.log(_uniform(key, i, 6))
            e_lo = -math.log(_uniform(key, i, 7))
            up = 0.5 * (r + math.sqrt(r * r + 2.0 * var * e_hi))
            down = 0.5 * (r - math.sqrt(r * r + 2.0 * var * e_lo))
            h = max(math.exp(lp + up), o, c)
            lo_ = min(math.exp(lp + down), o, c)
            vwap = 0.25 * (o + h + lo_ + c)
            d = t0 // _DAY_NS
            activity = (season * g) ** 0.4 * volume_rate[d] * (0.7 + 0.3 * abs(z))
            quote_volume = (
                quote_volume_per_bar * activity * math.exp(0.25 * _normal(key, i, 10) - 0.03125)
            )
            size = trade_size * math.exp(0.3 * _normal(key, i, 12))
            buy_share = 0.5 + 0.08 * math.tanh(z) + 0.03 * _normal(key, i, 14)
            buy_share = min(0.98, max(0.02, buy_share))
            volume = quote_volume / vwap
            out[0, j] = o
            out[1, j] = h
            out[2, j] = lo_
            out[3, j] = c
            out[4, j] = volume
            out[5, j] = quote_volume
            out[6, j] = max(1.0, math.floor(quote_volume / size + 0.5))
            out[7, j] = volume * buy_share
            out[8, j] = quote_volume * buy_share
        lp = lp + r
        z_prev = z
    state[0], state[1], state[2] = lp, g, z_prev


@register_source("synthetic")
def synthetic_source(*, seed: int = 42) -> SyntheticSource:
    """The offline default: seeded, realistic candles for any symbol."""
    return SyntheticSource(seed=seed)
