"""Pure transforms of OHLCV frames: timezone, resampling, explicit gap fills, return outliers.

Every function returns a new frame and never hides what it did: resampling drops partial
bars, fills mark synthesized bars in a ``filled`` column, and outlier clipping returns the
bars it touched.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import pandas as pd

from cryptoai.data.frame import INDEX_NAME
from cryptoai.data.timeframes import timeframe_to_timedelta
from cryptoai.data.validate import infer_timeframe
from cryptoai.errors import BadInputError

log = logging.getLogger(__name__)

GapPolicy = Literal["none", "ffill", "bfill", "flat"]
GAP_POLICIES: tuple[str, ...] = ("none", "ffill", "bfill", "flat")
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

    ``ffill``/``bfill`` copy the previous/next bar; ``flat`` carries the last close into
    open/high/low/close with zero volume (the usual choice: no invented trading); ``none``
    inserts nothing. Gaps longer than ``limit`` bars are left as gaps.
    """
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
        copied = full.ffill() if policy == "ffill" else full.bfill()
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
    df: pd.DataFrame, lower_q: float = 0.001, upper_q: float = 0.999
) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """Clip close-to-close log returns to their ``[lower_q, upper_q]`` quantiles.

    Prices are rebuilt from the clipped returns (each touched bar's intrabar path is scaled
    with its return; later bars shift level). Returns the new frame and the touched bars.
    """
    if not 0.0 <= lower_q < upper_q <= 1.0:
        raise BadInputError(
            f"quantiles lower_q={lower_q}, upper_q={upper_q} are not 0 <= lower < upper <= 1:"
            " use e.g. 0.001 and 0.999"
        )
    r = _log_returns(df)
    lo, hi = np.nanquantile(r, [lower_q, upper_q]) if np.isfinite(r).any() else (-np.inf, np.inf)
    return _rebuild(df, r, lo, hi)


def clip_returns(
    df: pd.DataFrame, n_sigma: float = 5.0, robust: bool = False
) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """Clip log returns to mean +- ``n_sigma`` standard deviations, rebuilding prices.

    ``robust=True`` uses median and 1.4826 * MAD instead, which outliers cannot inflate.
    """
    if not n_sigma > 0:
        raise BadInputError(f"n_sigma must be positive, got {n_sigma}: use e.g. 5")
    r = _log_returns(df)
    finite = r[np.isfinite(r)]
    if len(finite) < 2:
        return _rebuild(df, r, -np.inf, np.inf)
    if robust:
        center = float(np.median(finite))
        scale = 1.4826 * float(np.median(np.abs(finite - center)))
    else:
        center, scale = float(finite.mean()), float(finite.std(ddof=1))
    return _rebuild(df, r, center - n_sigma * scale, center + n_sigma * scale)


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
    df: pd.DataFrame, r: np.ndarray, lo: float, hi: float
) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """Prices consistent with returns clipped to ``[lo, hi]``; bars before a touch are exact."""
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
    log.info("return clipping touched %d bars (bounds %.4g, %.4g)", len(stamps), lo, hi)
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
