"""Technical indicators with the semantics of the `ta` library, computed by compiled kernels.

`ta` (0.11) builds on pandas and, for ATR, on a Python loop; on a million bars it is several
times (for ATR ~1000x) slower than TA-Lib. Each function here reproduces the matching `ta`
routine (same formula, smoothing and first bar) and is tested to equal it after the warm-up,
where these return NaN instead of `ta`'s zeros. Kernels are fused so that each allocates only
its outputs. Every kernel runs forward over the bars: the value at bar t depends only on bars
0..t (no lookahead).
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd

# Running sums are recomputed exactly from the window at bar positions divisible by
# max(window, _RESYNC), which bounds floating-point drift while keeping values causal.
_RESYNC = 1024

_jit = numba.njit(cache=True, error_model="numpy")


def _values(x: pd.Series | np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x, dtype=np.float64))


# --- rolling windows ----------------------------------------------------------------------


@_jit
def _window_sums(x, start, end):  # pragma: no cover - compiled
    """Count, centre k (the mean) and sums of x - k and (x - k)**2 over non-NaN x[start:end]."""
    n = 0
    total = 0.0
    for j in range(start, end):
        v = x[j]
        if v == v:
            n += 1
            total += v
    if n == 0:
        return 0, 0.0, 0.0, 0.0
    k = total / n
    s1 = 0.0
    s2 = 0.0
    for j in range(start, end):
        v = x[j]
        if v == v:
            s1 += v - k
            s2 += (v - k) * (v - k)
    return n, k, s1, s2


@_jit
def _rolling_into(x, window, min_periods, ddof, mean_out, std_out, want_std):  # pragma: no cover
    """Rolling mean (and std) of the last ``window`` bars, NaNs skipped, written in place.

    Sums of deviations from a centre k (re-chosen at each exact resynchronisation) avoid the
    cancellation of raw sums of squares; a window of identical values has exactly that mean
    and zero deviation, as in pandas.
    """
    n = x.shape[0]
    resync = max(window, _RESYNC)
    nobs = 0
    k = 0.0
    s1 = 0.0
    s2 = 0.0
    same = 0  # run of identical non-NaN values ending at bar i
    prev = np.nan
    countdown = 0  # bars until the next exact resynchronisation
    inv_n = 0.0  # 1 / nobs and 1 / (nobs - ddof), recomputed only when nobs changes
    inv_dof = np.nan
    inv_for = -1
    for i in range(n):
        v = x[i]
        if v == v:
            same = same + 1 if v == prev else 1
            prev = v
        else:
            same = 0
            prev = np.nan
        if countdown == 0:
            nobs, k, s1, s2 = _window_sums(x, max(0, i - window + 1), i + 1)
            countdown = resync
        else:
            if i >= window:
                old = x[i - window]
                if old == old:
                    d = old - k
                    nobs -= 1
                    s1 -= d
                    s2 -= d * d
            if v == v:
                if nobs == 0:  # empty window: re-centre on the new value
                    k = v
                    s1 = 0.0
                    s2 = 0.0
                d = v - k
                nobs += 1
                s1 += d
                s2 += d * d
        countdown -= 1
        if nobs >= min_periods and nobs > 0:
            if nobs != inv_for:
                inv_for = nobs
                inv_n = 1.0 / nobs
                inv_dof = 1.0 / (nobs - ddof) if nobs > ddof else np.nan
            flat = same >= nobs
            mean_out[i] = prev if flat else k + s1 * inv_n
            if want_std:
                if flat and nobs > ddof:
                    std_out[i] = 0.0
                else:
                    std_out[i] = np.sqrt(max(s2 - s1 * s1 * inv_n, 0.0) * inv_dof)
        else:
            mean_out[i] = np.nan
            if want_std:
                std_out[i] = np.nan


def rolling_mean(
    x: pd.Series | np.ndarray, window: int, min_periods: int | None = None
) -> np.ndarray:
    """Rolling mean over ``window`` bars; NaN until ``min_periods`` (default window) values."""
    v = _values(x)
    out = np.empty(v.shape[0])
    minp = window if min_periods is None else min_periods
    _rolling_into(v, window, minp, 0, out, out, False)
    return out


def rolling_mean_std(
    x: pd.Series | np.ndarray, window: int, ddof: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Rolling mean and std over ``window`` bars, NaN until ``window`` values were seen."""
    v = _values(x)
    mean, std = np.empty(v.shape[0]), np.empty(v.shape[0])
    _rolling_into(v, window, window, ddof, mean, std, True)
    return mean, std


@_jit
def _rolling_extreme_into(x, window, min_periods, want_max, out):  # pragma: no cover
    """Rolling max (or min) of the non-NaN values in the last ``window`` bars, as pandas'
    ``rolling(window, min_periods).max()``: a monotonic queue of bar positions, so each bar
    enters and leaves it once."""
    n = x.shape[0]
    queue = np.empty(n, dtype=np.int64)
    head = 0
    tail = 0
    nobs = 0
    for i in range(n):
        v = x[i]
        if i >= window:
            old = x[i - window]
            if old == old:
                nobs -= 1
            if head < tail and queue[head] <= i - window:
                head += 1
        if v == v:
            nobs += 1
            if want_max:
                while head < tail and x[queue[tail - 1]] <= v:
                    tail -= 1
            else:
                while head < tail and x[queue[tail - 1]] >= v:
                    tail -= 1
            queue[tail] = i
            tail += 1
        out[i] = x[queue[head]] if (nobs >= min_periods and nobs > 0) else np.nan


def rolling_max(x: pd.Series | np.ndarray, window: int, min_periods: int | None = None):
    """Rolling maximum over ``window`` bars (NaNs skipped), NaN until ``min_periods`` values."""
    v = _values(x)
    out = np.empty(v.shape[0])
    _rolling_extreme_into(v, window, window if min_periods is None else min_periods, True, out)
    return out


def rolling_min(x: pd.Series | np.ndarray, window: int, min_periods: int | None = None):
    """Rolling minimum over ``window`` bars (NaNs skipped), NaN until ``min_periods`` values."""
    v = _values(x)
    out = np.empty(v.shape[0])
    _rolling_extreme_into(v, window, window if min_periods is None else min_periods, False, out)
    return out


# --- exponential smoothing ----------------------------------------------------------------


@numba.njit(cache=True, error_model="numpy", inline="always")
def _ewm_step(weighted, old_wt, cur, alpha):  # pragma: no cover - compiled
    """One step of pandas' ``ewm(adjust=False, ignore_na=False).mean()``.

    pandas divides each update by ``old_wt + alpha``; between observations without gaps that
    is ``(1 - alpha) + alpha``, exactly 1.0 in floating point, so the division is skipped
    there (bit-identical, and the recursion is several times faster without it).
    """
    factor = 1.0 - alpha
    if weighted == weighted:
        old_wt *= factor
        if cur == cur:
            if weighted != cur:
                if old_wt == factor and factor + alpha == 1.0:
                    weighted = factor * weighted + alpha * cur
                else:
                    weighted = (old_wt * weighted + alpha * cur) / (old_wt + alpha)
            old_wt = 1.0
    elif cur == cur:
        weighted = cur
    return weighted, old_wt


@_jit
def _ewm_into(x, alpha, min_periods, out):  # pragma: no cover - compiled
    minp = max(min_periods, 1)
    weighted = np.nan
    old_wt = 1.0
    nobs = 0
    for i in range(x.shape[0]):
        cur = x[i]
        if cur == cur:
            nobs += 1
        weighted, old_wt = _ewm_step(weighted, old_wt, cur, alpha)
        out[i] = weighted if nobs >= minp else np.nan


def ewm_mean(x: pd.Series | np.ndarray, alpha: float, min_periods: int) -> np.ndarray:
    """``pandas.Series.ewm(alpha=alpha, adjust=False, min_periods=...).mean()`` as an array."""
    v = _values(x)
    out = np.empty(v.shape[0])
    _ewm_into(v, alpha, min_periods, out)
    return out


# --- indicator kernels --------------------------------------------------------------------


@_jit
def _rsi_kernel(close, window, out):  # pragma: no cover - compiled
    """Gains and losses smoothed with alpha = 1/window; the first bar counts as no change."""
    alpha = 1.0 / window
    up_w, up_old = np.nan, 1.0
    dn_w, dn_old = np.nan, 1.0
    nobs = 0
    for i in range(close.shape[0]):
        d = close[i] - close[i - 1] if i > 0 else 0.0
        if d == d:
            nobs += 1
            up = d if d > 0 else 0.0
            dn = -d if d < 0 else 0.0
        else:
            up = dn = np.nan
        up_w, up_old = _ewm_step(up_w, up_old, up, alpha)
        dn_w, dn_old = _ewm_step(dn_w, dn_old, dn, alpha)
        if nobs < window:
            out[i] = np.nan
        elif dn_w == 0.0:
            out[i] = 100.0
        else:
            out[i] = 100.0 - 100.0 / (1.0 + up_w / dn_w)


@_jit
def _macd_kernel(close, fast, slow, signal, line, sig, diff):  # pragma: no cover - compiled
    a_fast, a_slow, a_sig = 2.0 / (fast + 1.0), 2.0 / (slow + 1.0), 2.0 / (signal + 1.0)
    f_w, f_old, s_w, s_old, g_w, g_old = np.nan, 1.0, np.nan, 1.0, np.nan, 1.0
    n_close = 0
    n_line = 0
    for i in range(close.shape[0]):
        c = close[i]
        if c == c:
            n_close += 1
        f_w, f_old = _ewm_step(f_w, f_old, c, a_fast)
        s_w, s_old = _ewm_step(s_w, s_old, c, a_slow)
        m = f_w - s_w if (n_close >= fast and n_close >= slow) else np.nan
        if m == m:
            n_line += 1
        g_w, g_old = _ewm_step(g_w, g_old, m, a_sig)
        g = g_w if n_line >= signal else np.nan
        line[i] = m
        sig[i] = g
        diff[i] = m - g


@_jit
def _bands_kernel(close, dev, mavg, hband, lband, pband, wband):  # pragma: no cover - compiled
    """Bands from the rolling mean (in mavg) and population std (passed in wband)."""
    for i in range(close.shape[0]):
        width = dev * wband[i]
        h = mavg[i] + width
        lo = mavg[i] - width
        hband[i] = h
        lband[i] = lo
        pband[i] = (close[i] - lo) / (h - lo) if h != lo else np.nan
        wband[i] = (h - lo) / mavg[i] * 100.0


@_jit
def _atr_kernel(high, low, close, window, out):  # pragma: no cover - compiled
    """Wilder's ATR seeded, as in `ta`, by the mean true range of the first window (the
    first bar's true range is its high - low)."""
    n = close.shape[0]
    total = 0.0
    keep = (window - 1) / window
    add = 1.0 / window
    value = np.nan
    for i in range(n):
        tr = high[i] - low[i]
        if i > 0:
            up = abs(high[i] - close[i - 1])
            down = abs(low[i] - close[i - 1])
            if up > tr:
                tr = up
            if down > tr:
                tr = down
        if i < window - 1:
            total += tr
        elif i == window - 1:
            value = (total + tr) / window
        else:  # (atr * (w - 1) + tr) / w, without a division per bar
            value = value * keep + tr * add
        out[i] = value


@_jit
def _obv_kernel(close, volume, out):  # pragma: no cover - compiled
    total = 0.0
    for i in range(close.shape[0]):
        if i > 0 and close[i] < close[i - 1]:
            total -= volume[i]
        else:
            total += volume[i]
        out[i] = total


# --- public functions ---------------------------------------------------------------------
# Each indicator comes twice: ``*_values`` takes and returns float64 arrays (what feature
# engineering and the serving plan use: no pandas objects made only to be unwrapped), and
# the function of the indicator's name wraps the same arrays in a Series or DataFrame on the
# input's index. Both give the same numbers: the wrapper only labels them.


def sma_values(close: pd.Series | np.ndarray, window: int) -> np.ndarray:
    """Simple moving average as an array (``sma`` without the Series)."""
    return rolling_mean(close, window)


def ema_values(close: pd.Series | np.ndarray, window: int) -> np.ndarray:
    """Exponential moving average as an array (``ema`` without the Series)."""
    return ewm_mean(close, 2.0 / (window + 1.0), window)


def rsi_values(close: pd.Series | np.ndarray, window: int = 14) -> np.ndarray:
    """Wilder's RSI as an array (``rsi`` without the Series)."""
    c = _values(close)
    out = np.empty(c.shape[0])
    _rsi_kernel(c, window, out)
    return out


def macd_values(
    close: pd.Series | np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD line, signal line and histogram as arrays (``macd`` without the frame)."""
    c = _values(close)
    line, sig, diff = (np.empty(c.shape[0]) for _ in range(3))
    _macd_kernel(c, fast, slow, signal, line, sig, diff)
    return line, sig, diff


def bollinger_values(
    close: pd.Series | np.ndarray, window: int = 20, dev: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """mavg, hband, lband, pband, wband as arrays (``bollinger`` without the frame)."""
    c = _values(close)
    mavg, hband, lband, pband, wband = (np.empty(c.shape[0]) for _ in range(5))
    _rolling_into(c, window, window, 0, mavg, wband, True)
    _bands_kernel(c, float(dev), mavg, hband, lband, pband, wband)
    return mavg, hband, lband, pband, wband


def atr_values(
    high: pd.Series | np.ndarray,
    low: pd.Series | np.ndarray,
    close: pd.Series | np.ndarray,
    window: int = 14,
) -> np.ndarray:
    """Average true range as an array (``atr`` without the Series)."""
    c = _values(close)
    out = np.empty(c.shape[0])
    _atr_kernel(_values(high), _values(low), c, window, out)
    return out


def obv_values(close: pd.Series | np.ndarray, volume: pd.Series | np.ndarray) -> np.ndarray:
    """On-balance volume as an array (``obv`` without the Series)."""
    c = _values(close)
    out = np.empty(c.shape[0])
    _obv_kernel(c, _values(volume), out)
    return out


def ichimoku_values(
    high: pd.Series | np.ndarray,
    low: pd.Series | np.ndarray,
    window1: int = 9,
    window2: int = 26,
    window3: int = 52,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """conv, base, a, b as arrays (``ichimoku`` without the frame)."""
    h, lo = _values(high), _values(low)
    hi1, lo1 = rolling_max(h, window1), rolling_min(lo, window1)
    hi2, lo2 = rolling_max(h, window2), rolling_min(lo, window2)
    hi3, lo3 = rolling_max(h, window3), rolling_min(lo, window3)
    conv = 0.5 * (hi1 + lo1)
    base = 0.5 * (hi2 + lo2)
    return conv, base, 0.5 * (conv + base), 0.5 * (hi3 + lo3)


def _series(values: np.ndarray, like: pd.Series, name: str) -> pd.Series:
    return pd.Series(values, index=like.index, name=name, dtype="float64", copy=False)


def _frame(columns: dict[str, np.ndarray], like: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(columns, index=like.index, copy=False)


def sma(close: pd.Series, window: int) -> pd.Series:
    """Simple moving average; equals ``ta.trend.sma_indicator``."""
    return _series(sma_values(close, window), close, f"sma_{window}")


def ema(close: pd.Series, window: int) -> pd.Series:
    """Exponential moving average (span=window, seeded at the first bar); equals ``ta``'s."""
    return _series(ema_values(close, window), close, f"ema_{window}")


def rsi(close: pd.Series, window: int = 14) -> pd.Series:
    """Wilder's RSI as ``ta.momentum.rsi`` computes it (100 where there are no losses; a
    missing close is a missing change, where `ta` would count it as no change)."""
    return _series(rsi_values(close, window), close, f"rsi_{window}")


def macd(close: pd.Series, fast: int = 12, slow: int = 26, signal: int = 9) -> pd.DataFrame:
    """MACD line, signal line and histogram (columns macd, signal, diff); equal ``ta.trend.MACD``."""
    line, sig, diff = macd_values(close, fast, slow, signal)
    return _frame({"macd": line, "signal": sig, "diff": diff}, close)


def bollinger(close: pd.Series, window: int = 20, dev: float = 2.0) -> pd.DataFrame:
    """Bollinger bands (population std, as ``ta``): mavg, hband, lband, pband (%B, NaN for a
    flat window) and wband (width in % of the average)."""
    names = ("mavg", "hband", "lband", "pband", "wband")
    return _frame(dict(zip(names, bollinger_values(close, window, dev), strict=True)), close)


def atr(high: pd.Series, low: pd.Series, close: pd.Series, window: int = 14) -> pd.Series:
    """Average true range with Wilder smoothing; equals ``ta.volatility.average_true_range``
    from bar ``window - 1`` on."""
    return _series(atr_values(high, low, close, window), close, f"atr_{window}")


def obv(close: pd.Series, volume: pd.Series) -> pd.Series:
    """On-balance volume as ``ta`` defines it (an unchanged close adds the volume)."""
    return _series(obv_values(close, volume), close, "obv")


def ichimoku(
    high: pd.Series, low: pd.Series, window1: int = 9, window2: int = 26, window3: int = 52
) -> pd.DataFrame:
    """Ichimoku lines as known at each bar's close: columns conv, base, a, b.

    Conversion line (tenkan-sen) and base line (kijun-sen) are the midpoints of the
    ``window1`` / ``window2``-bar high-low range; leading span A is their mean and span B the
    ``window3``-bar midpoint. Equal to ``ta.trend.IchimokuIndicator(visual=False)`` (span B
    after its ``window3`` warm-up, where `ta` uses partial windows and this gives NaN). Charts
    draw the spans ``window2`` bars ahead; here each value stays at the bar it was computed
    on, so nothing is shifted into the past. The lagging span (chikou, the close drawn
    ``window2`` bars back) is left out: placed at bar t it is the close of bar t + window2.
    """
    lines = ichimoku_values(high, low, window1, window2, window3)
    return _frame(dict(zip(("conv", "base", "a", "b"), lines, strict=True)), high)
