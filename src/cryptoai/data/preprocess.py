"""Pure transforms of OHLCV frames: timezone, resampling, explicit gap fills, return outliers.

Every function returns a new frame and never hides what it did: resampling drops partial
bars, fills mark synthesized bars in a ``filled`` column, and outlier clipping returns the
bars it touched.

The defaults are causal: the output up to bar t is the same whatever bars follow, so a
frame preprocessed once can feed features and backtests without lookahead. Transforms that
read later bars say so in their names (``winsorize_returns_full_sample``,
``clip_returns_full_sample``, the ``bfill_lookahead`` gap policy) and are for describing a
sample after the fact, never for data a model trains or trades on.
"""

from __future__ import annotations

import logging
from typing import Literal

import numba
import numpy as np
import pandas as pd

from cryptoai.data.frame import INDEX_NAME
from cryptoai.data.timeframes import timeframe_to_timedelta
from cryptoai.data.validate import infer_timeframe
from cryptoai.errors import BadInputError

log = logging.getLogger(__name__)

GapPolicy = Literal["none", "ffill", "flat", "bfill_lookahead"]
GAP_POLICIES: tuple[str, ...] = ("none", "ffill", "flat", "bfill_lookahead")
#: Earlier returns a causal clipping bound needs before it clips anything.
MIN_HISTORY = 250
PRICES: tuple[str, ...] = ("open", "high", "low", "close")
#: Columns that add up over time (summed by resampling, zero in a flat fill).
ADDITIVE: tuple[str, ...] = (
    "volume", "quote_volume", "trades", "taker_buy_base", "taker_buy_quote",
)  # fmt: skip
_QUOTE_VALUED = ("quote_volume", "taker_buy_quote")
_AGG = {"open": "first", "high": "max", "low": "min", "close": "last"}


def to_utc(df: pd.DataFrame, source_tz: str | None = None) -> pd.DataFrame:
    """Index in UTC. Naive timestamps are read in ``source_tz`` (default UTC), DST-aware."""
    idx = df.index
    if not isinstance(idx, pd.DatetimeIndex):
        try:
            idx = pd.DatetimeIndex(idx)
        except (TypeError, ValueError) as exc:
            raise BadInputError(
                "the frame is not indexed by timestamps: set the bar open time as the index"
            ) from exc
    if idx.tz is None:
        tz = source_tz or "UTC"
        try:
            idx = idx.tz_localize(tz, ambiguous="infer", nonexistent="raise")
        except (ValueError, TypeError, KeyError) as exc:  # unknown zone, ambiguous or skipped hour
            reason = " ".join(str(exc).split())
            raise BadInputError(
                f"cannot read the timestamps as {tz} local time ({reason}): check source_tz,"
                " or export the data in UTC"
            ) from exc
    elif source_tz is not None and str(idx.tz) != str(source_tz):
        log.warning(
            "timestamps already carry timezone %s; ignoring source_tz=%s", idx.tz, source_tz
        )
    out = df.copy()
    out.index = idx.tz_convert("UTC").rename(INDEX_NAME)
    return out


def resample_ohlcv(
    df: pd.DataFrame,
    timeframe: str,
    drop_partial: bool = True,
    source_timeframe: str | None = None,
) -> pd.DataFrame:
    """Aggregate to a longer timeframe (epoch-aligned bars, like ``bar_grid``).

    A target bar is complete only when every source bar inside it is present; partial bars
    are dropped unless ``drop_partial=False``. Columns other than OHLC, the additive ones and
    ``filled`` are dropped.
    """
    _require_sorted_utc(df, "resample_ohlcv")
    target = timeframe_to_timedelta(timeframe)
    source_tf = source_timeframe or infer_timeframe(df.index)
    if source_tf is None:
        if drop_partial or df.empty:
            raise BadInputError(
                "cannot tell the bar length of fewer than two bars: pass source_timeframe"
            )
        source_tf = timeframe
    source = timeframe_to_timedelta(source_tf)
    if target < source or target % source:
        raise BadInputError(
            f"cannot resample {source_tf} bars to {timeframe}: pick a timeframe that is a whole"
            f" multiple of {source_tf}"
        )
    agg = {c: _AGG[c] for c in PRICES if c in df.columns}
    agg |= {c: "sum" for c in ADDITIVE if c in df.columns}
    if "filled" in df.columns:
        agg["filled"] = "max"
    dropped = [c for c in df.columns if c not in agg]
    if dropped:
        log.debug("resample_ohlcv drops columns %s", dropped)
    grouped = df.resample(target, origin="epoch", label="left", closed="left")
    out = grouped.agg(agg)
    counts = grouped.size()
    keep = counts == target // source if drop_partial else counts > 0
    partial = int(((counts > 0) & ~keep).sum())
    if partial:
        log.info("resample_ohlcv dropped %d partial %s bars", partial, timeframe)
    out = out[keep.to_numpy()]
    out.index = pd.DatetimeIndex(out.index, freq=None, name=INDEX_NAME)
    if "filled" in out.columns:
        out["filled"] = out["filled"].astype(bool)
    return out.astype({c: "float64" for c in out.columns if c != "filled"})


def fill_gaps(
    df: pd.DataFrame,
    timeframe: str | None,
    policy: GapPolicy,
    limit: int | None = None,
) -> pd.DataFrame:
    """Insert the missing bars by an explicit policy; a boolean ``filled`` column marks them.

    ``flat`` carries the last close into open/high/low/close with zero volume (the usual
    choice: no invented trading); ``ffill`` copies the previous bar; ``none`` inserts
    nothing. ``bfill_lookahead`` copies the *next* bar into the gap: the filled bars show
    prices from the future, so it is for plots only, never for features or backtests. Gaps
    longer than ``limit`` bars are left as gaps.
    """
    if policy == "bfill":
        raise BadInputError(
            "gap policy 'bfill' copies the next bar into the gap, which looks ahead: use"
            " 'flat' or 'ffill' (or 'bfill_lookahead' for plots only)"
        )
    if policy not in GAP_POLICIES:
        raise BadInputError(f"unknown gap policy {policy!r}: use one of {', '.join(GAP_POLICIES)}")
    _require_sorted_utc(df, "fill_gaps")
    out = df.copy()
    previous = out["filled"].astype(bool) if "filled" in out.columns else None
    out["filled"] = False if previous is None else previous
    tf = timeframe or infer_timeframe(df.index)
    if policy == "none" or tf is None or len(df) < 2:
        return out
    step = timeframe_to_timedelta(tf)
    ns = df.index.as_unit("ns").asi8
    if ((ns - ns[0]) % step.value).any():
        raise BadInputError(
            f"bars are not on one {tf} grid: resample_ohlcv to {tf} first, or check the timeframe"
        )
    grid = pd.date_range(df.index[0], df.index[-1], freq=step, name=INDEX_NAME)
    new = ~grid.isin(df.index)
    run_id = np.cumsum(~new)  # each gap's bars share the id of the bar before it
    run_len = np.bincount(run_id, weights=new)[run_id]
    fill = new & (run_len <= limit) if limit is not None else new
    if not fill.any():
        return out
    full = out.reindex(grid)
    if policy == "flat":
        last_close = full["close"].ffill()
        for c in full.columns:
            if c in PRICES:
                full.loc[fill, c] = last_close[fill]
            elif c in ADDITIVE:
                full.loc[fill, c] = 0.0
            elif c != "filled":
                full.loc[fill, c] = full[c].ffill()[fill]
    else:
        copied = full.ffill() if policy == "ffill" else full.bfill()  # bfill_lookahead
        full.loc[fill] = copied.loc[fill]
    full.loc[fill, "filled"] = True
    result = full[~new | fill]
    result = result.astype(
        {"filled": bool, **{c: df[c].dtype for c in df.columns if c != "filled"}}
    )
    result.index = pd.DatetimeIndex(result.index, freq=None, name=INDEX_NAME)
    left = int((new & ~fill).sum())
    log.info(
        "fill_gaps(%s) inserted %d bars%s", policy, int(fill.sum()),
        f"; left {left} bars in gaps longer than {limit} bars" if left else "",
    )  # fmt: skip
    return result


def winsorize_returns(
    df: pd.DataFrame,
    lower_q: float = 0.001,
    upper_q: float = 0.999,
    *,
    window: int | None = None,
    min_periods: int = MIN_HISTORY,
) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """Clip each close-to-close log return to the quantiles of the returns *before* it.

    Causal: the bounds at bar t come from the raw returns of bars before t only (all of them,
    or the last ``window``), so the output up to t does not depend on later bars; a bar with
    fewer than ``min_periods`` earlier returns is left as it is. Prices are rebuilt from the
    clipped returns (each touched bar's intrabar path is scaled with its return; later bars
    shift level). Returns the new frame and the touched bars.
    """
    _check_quantiles(lower_q, upper_q)
    r = _log_returns(df)
    prior = _trailing(r, window, min_periods)
    lo = _bound(prior.quantile(lower_q), -np.inf)
    hi = _bound(prior.quantile(upper_q), np.inf)
    return _rebuild(df, r, lo, hi, "trailing quantiles")


def clip_returns(
    df: pd.DataFrame,
    n_sigma: float = 5.0,
    robust: bool = False,
    *,
    window: int | None = None,
    min_periods: int = MIN_HISTORY,
) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """Clip each log return to mean +- ``n_sigma`` standard deviations of the returns before it.

    Causal like ``winsorize_returns``: the statistics at bar t use the raw returns of bars
    before t (all, or the last ``window``), at least ``min_periods`` of them. ``robust=True``
    uses their median and 1.4826 * MAD instead, which outliers cannot inflate.
    """
    _check_sigma(n_sigma)
    r = _log_returns(df)
    if robust:
        center, scale = _trailing_median_mad(
            r, _window_arg(window), _min_periods_arg(min_periods, 1)
        )
        scale = 1.4826 * scale
    else:
        prior = _trailing(r, window, max(min_periods, 2))
        center, scale = prior.mean().to_numpy(), prior.std(ddof=1).to_numpy()
    lo = _bound(center - n_sigma * scale, -np.inf)
    hi = _bound(center + n_sigma * scale, np.inf)
    return _rebuild(df, r, lo, hi, "trailing sigma bounds")


def winsorize_returns_full_sample(
    df: pd.DataFrame, lower_q: float = 0.001, upper_q: float = 0.999
) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """Clip log returns to the ``[lower_q, upper_q]`` quantiles of the *whole* sample.

    Looks ahead: every bar's bounds depend on returns that come after it, so the output at
    bar t changes when later bars are added. For describing a finished sample only; use
    ``winsorize_returns`` (causal) for anything a model trains or trades on.
    """
    _check_quantiles(lower_q, upper_q)
    r = _log_returns(df)
    lo, hi = np.nanquantile(r, [lower_q, upper_q]) if np.isfinite(r).any() else (-np.inf, np.inf)
    return _rebuild(df, r, lo, hi, "full-sample quantiles")


def clip_returns_full_sample(
    df: pd.DataFrame, n_sigma: float = 5.0, robust: bool = False
) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """Clip log returns to mean +- ``n_sigma`` standard deviations of the *whole* sample.

    Looks ahead (the statistics include later returns); see ``winsorize_returns_full_sample``.
    ``robust=True`` uses median and 1.4826 * MAD instead. Use ``clip_returns`` (causal) for
    anything a model trains or trades on.
    """
    _check_sigma(n_sigma)
    r = _log_returns(df)
    finite = r[np.isfinite(r)]
    if len(finite) < 2:
        return _rebuild(df, r, -np.inf, np.inf, "full-sample sigma bounds")
    if robust:
        center = float(np.median(finite))
        scale = 1.4826 * float(np.median(np.abs(finite - center)))
    else:
        center, scale = float(finite.mean()), float(finite.std(ddof=1))
    lo, hi = center - n_sigma * scale, center + n_sigma * scale
    return _rebuild(df, r, lo, hi, "full-sample sigma bounds")


def _check_quantiles(lower_q: float, upper_q: float) -> None:
    if not 0.0 <= lower_q < upper_q <= 1.0:
        raise BadInputError(
            f"quantiles lower_q={lower_q}, upper_q={upper_q} are not 0 <= lower < upper <= 1:"
            " use e.g. 0.001 and 0.999"
        )


def _check_sigma(n_sigma: float) -> None:
    if not n_sigma > 0:
        raise BadInputError(f"n_sigma must be positive, got {n_sigma}: use e.g. 5")


def _window_arg(window: int | None) -> int:
    """``window`` checked; 0 stands for expanding (every earlier bar)."""
    if window is None:
        return 0
    if isinstance(window, bool) or int(window) != window or window < 2:
        raise BadInputError(f"window must be a whole number of bars >= 2 or None, got {window!r}")
    return int(window)


def _min_periods_arg(min_periods: int, least: int) -> int:
    if isinstance(min_periods, bool) or int(min_periods) != min_periods or min_periods < least:
        raise BadInputError(
            f"min_periods must be a whole number >= {least}, got {min_periods!r}: use e.g. 250"
        )
    return int(min_periods)


def _trailing(r: np.ndarray, window: int | None, min_periods: int):
    """Expanding (``window=None``) or rolling statistics of the returns before each bar."""
    w = _window_arg(window)
    need = _min_periods_arg(min_periods, 1)
    prior = pd.Series(r).shift(1)  # bar t sees returns of bars < t
    if w == 0:
        return prior.expanding(min_periods=need)
    return prior.rolling(w, min_periods=min(need, w))


def _bound(values, missing: float) -> np.ndarray:
    """Bounds as an array, ``missing`` (no clipping) where history is too short."""
    out = np.asarray(values, dtype="float64")
    return np.where(np.isfinite(out), out, missing)


@numba.njit(cache=True)
def _trailing_median_mad(r, window, min_periods):  # pragma: no cover - compiled
    """Median and median absolute deviation of the finite ``r`` before each bar.

    Over the last ``window`` bars (``0``: all earlier bars), NaN with fewer than
    ``min_periods`` values. A sorted buffer of the window is kept; the MAD is the middle of
    the deviations, which are two sorted runs either side of the median (selected by
    bisection, so each bar costs one insertion and one removal).
    """
    n = r.shape[0]
    med = np.full(n, np.nan)
    mad = np.full(n, np.nan)
    buf = np.empty(n)
    m = 0
    for t in range(n):
        if m >= min_periods and m > 0:
            center = buf[m // 2] if m % 2 else 0.5 * (buf[m // 2 - 1] + buf[m // 2])
            med[t] = center
            j = np.searchsorted(buf[:m], center)  # buf[:j] < center <= buf[j:]
            if m % 2:
                mad[t] = _kth_deviation(buf, j, m, center, m // 2)
            else:
                a = _kth_deviation(buf, j, m, center, m // 2 - 1)
                b = _kth_deviation(buf, j, m, center, m // 2)
                mad[t] = 0.5 * (a + b)
        x = r[t]
        if x == x:  # insert r[t] for the next bar
            p = np.searchsorted(buf[:m], x)
            for i in range(m, p, -1):
                buf[i] = buf[i - 1]
            buf[p] = x
            m += 1
        if window > 0 and t - window >= 0:  # r[t - window] leaves the next bar's window
            old = r[t - window]
            if old == old:
                p = np.searchsorted(buf[:m], old)
                for i in range(p, m - 1):
                    buf[i] = buf[i + 1]
                m -= 1
    return med, mad


@numba.njit(cache=True)
def _kth_deviation(buf, j, m, center, k):  # pragma: no cover - compiled
    """The k-th smallest (0-based) of |buf[:m] - center|: merges ``center - buf[j-1::-1]``
    and ``buf[j:m] - center``, both ascending, by bisection on how many come from the left."""
    n_left = j
    n_right = m - j
    lo = max(0, k + 1 - n_right)
    hi = min(k + 1, n_left)
    while lo < hi:
        i = (lo + hi) // 2  # i from the left run, k + 1 - i from the right run
        if center - buf[j - 1 - i] < buf[j + k - i] - center:
            lo = i + 1
        else:
            hi = i
    best = -np.inf
    if lo > 0:
        best = max(best, center - buf[j - lo])
    if k + 1 - lo > 0:
        best = max(best, buf[j + k - lo] - center)
    return best


def _log_returns(df: pd.DataFrame) -> np.ndarray:
    _require_sorted_utc(df, "return clipping")
    missing = [c for c in PRICES if c not in df.columns]
    if missing:
        raise BadInputError(f"frame has no {', '.join(missing)} column: give an OHLCV frame")
    close = df["close"].to_numpy(dtype="float64")
    if not (np.isfinite(close) & (close > 0)).all():
        raise BadInputError(
            "close has missing or non-positive prices: run check_ohlcv and fix them"
        )
    r = np.empty(len(close))
    r[:1] = np.nan
    r[1:] = np.diff(np.log(close))
    return r


def _rebuild(
    df: pd.DataFrame, r: np.ndarray, lo, hi, how: str
) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """Prices consistent with returns clipped to ``[lo, hi]`` (numbers, or one per bar); bars
    before a touch are exact, and each bar's prices depend on it and earlier bars only."""
    clipped = np.clip(r, lo, hi)
    touched = np.isfinite(r) & (clipped != r)
    out = df.copy()
    if not touched.any():
        return out, df.index[touched]
    change = np.where(touched, clipped - r, 0.0)
    shift = np.cumsum(change)  # log-level change of each close
    prev_shift = np.concatenate(([0.0], shift[:-1]))
    prices = {c: df[c].to_numpy(dtype="float64") for c in PRICES}
    prev_close = np.concatenate(([np.nan], prices["close"][:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(touched & (r != 0), clipped / r, np.nan)
    scalable = touched & (scale > 0)
    new: dict[str, np.ndarray] = {}
    for c, x in prices.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.log(x / prev_close)  # the bar's path relative to the previous close
        reshaped = np.where(scalable, rel * scale, rel + change)
        rebuilt = prev_close * np.exp(prev_shift + reshaped)
        new[c] = np.where(touched, rebuilt, x * np.exp(prev_shift))  # exp(0) == 1: exact
    body_hi = np.maximum(new["open"], new["close"])
    body_lo = np.minimum(new["open"], new["close"])
    new["high"] = np.maximum(new["high"], body_hi)
    new["low"] = np.minimum(new["low"], body_lo)
    for c in PRICES:
        out[c] = new[c]
    typical_ratio = sum(new[c] for c in PRICES) / sum(prices[c] for c in PRICES)
    for c in _QUOTE_VALUED:
        if c in out.columns:
            out[c] = df[c].to_numpy(dtype="float64") * typical_ratio
    stamps = df.index[touched]
    log.info("return clipping (%s) touched %d bars", how, len(stamps))
    return out, stamps


def _require_sorted_utc(df: pd.DataFrame, what: str) -> None:
    if not isinstance(df, pd.DataFrame) or not isinstance(df.index, pd.DatetimeIndex):
        raise BadInputError(f"{what} needs an OHLCV frame indexed by timestamps")
    if df.index.tz is None or str(df.index.tz) != "UTC":
        raise BadInputError(f"{what} needs UTC timestamps: convert with to_utc first")
    if not (df.index.is_monotonic_increasing and df.index.is_unique):
        raise BadInputError(
            f"{what} needs sorted, unique timestamps: run check_ohlcv and fix the frame first"
        )
