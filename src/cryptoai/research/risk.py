"""Risk of chosen parameters: stress scenarios, margin stress and bootstrap intervals.

A backtest's headline numbers are one path. These functions ask what the same strategy and
parameters do on paths that did not happen but could: a crash bar, a gap of missing days,
three times the volatility, dearer execution (``stress_scenarios``); at higher leverage, when
the maintenance margin liquidates the position (``margin_stress``); and how wide Sharpe and
drawdown are once the bars are resampled in blocks (``bootstrap_metrics``).

Stressed data stays a valid OHLCV frame (``low <= open, close <= high``, prices > 0).
A strategy passed as an instance keeps its parameters; signals are recomputed on the
stressed bars (a ``model_signal`` strategy trades its fixed predictions, aligned by time,
so the model itself is not re-run on the stressed prices).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError

__all__ = [
    "STRESS_METRICS",
    "bootstrap_indices",
    "bootstrap_metrics",
    "insert_crash",
    "insert_gap",
    "liquidation_leverage",
    "margin_stress",
    "risk_summary",
    "scale_costs",
    "scale_volatility",
    "stress_scenarios",
]

#: Figures reported per stress scenario.
STRESS_METRICS: tuple[str, ...] = (
    "total_return",
    "sharpe",
    "max_drawdown",
    "n_trades",
    "fees_paid",
    "final_equity",
)
_PRICES = ("open", "high", "low", "close")


# ============================================================== data stresses
def _position(data: pd.DataFrame, at: int | str | pd.Timestamp) -> int:
    if isinstance(at, int | np.integer) and not isinstance(at, bool):
        i = int(at) if at >= 0 else len(data) + int(at)
    else:
        i = int(data.index.get_indexer([pd.Timestamp(at)], method="bfill")[0])
    if not 0 <= i < len(data):
        raise BadInputError(f"bar {at!r} is outside the data ({len(data)} bars)")
    return i


def insert_crash(
    data: pd.DataFrame, at: int | str | pd.Timestamp, drop: float = 0.30
) -> pd.DataFrame:
    """The data with a crash bar at ``at`` (a position or a timestamp): it opens at its own
    open, closes ``drop`` lower, its high is the open and its low the close. Every later bar
    is scaled by the same factor, so the market stays down and later returns are unchanged;
    earlier bars are untouched."""
    if not 0 < drop < 1:
        raise BadInputError(f"drop={drop!r}: a crash is a fraction in (0, 1), e.g. 0.3")
    i = _position(data, at)
    out = data.copy()
    o = float(data["open"].iloc[i])
    new_close = o * (1.0 - drop)
    factor = new_close / float(data["close"].iloc[i])
    prices = out[list(_PRICES)].to_numpy(dtype="float64", copy=True)
    prices[i] = (o, o, new_close, new_close)
    prices[i + 1 :] *= factor
    out[list(_PRICES)] = prices
    return out


def insert_gap(
    data: pd.DataFrame, start: int | str | pd.Timestamp, days: float = 3.0
) -> pd.DataFrame:
    """The data with every bar from ``start`` for ``days`` days removed (an exchange outage
    or missing history): the next bar opens wherever the market went meanwhile."""
    i = _position(data, start)
    begin = data.index[i]
    end = begin + pd.Timedelta(days=days)
    keep = (data.index < begin) | (data.index >= end)
    if keep.all() or keep.sum() < 2:
        raise BadInputError(f"a {days}-day gap at {begin} leaves {int(keep.sum())} bars")
    return data.loc[keep].copy()


def scale_volatility(data: pd.DataFrame, factor: float = 3.0) -> pd.DataFrame:
    """The data with ``factor`` times the volatility around the same drift.

    Close-to-close log returns become ``mean + factor * (r - mean)`` (the trend of the path
    is kept, the swings around it scaled), and each bar's open, high and low keep their log
    distance from the close times ``factor``, so the bar's shape scales with it and its
    high/low stay the extremes. The first close is unchanged.
    """
    if not factor > 0:
        raise BadInputError(f"factor={factor!r}: scale volatility by a positive number")
    close = data["close"].to_numpy(dtype="float64")
    r = np.diff(np.log(close))
    mean = r.mean() if r.size else 0.0
    new_r = mean + factor * (r - mean)
    new_close = close[0] * np.exp(np.concatenate(([0.0], np.cumsum(new_r))))
    out = data.copy()
    for col in ("open", "high", "low"):
        rel = np.log(data[col].to_numpy(dtype="float64") / close)
        out[col] = new_close * np.exp(factor * rel)
    out["close"] = new_close
    return out


def scale_costs(settings: Any, fees: float = 1.0, slippage: float = 1.0):
    """Execution settings with fees (taker and maker, fee tiers, spread) times ``fees`` and
    slippage (fixed and volatility-scaled, impact) times ``slippage``."""
    from cryptoai.backtest import make_settings

    s = make_settings(settings)
    changes: dict[str, Any] = {
        "fee_bps": s.fee_bps * fees,
        "maker_fee_bps": s.maker_fee_bps * fees,
        "slippage_bps": s.slippage_bps * slippage,
        "vol_slippage": s.vol_slippage * slippage,
        "impact_k": s.impact_k * slippage,
    }
    if s.fee_tiers is not None:
        changes["fee_tiers"] = tuple((lo, t * fees, m * fees) for lo, t, m in s.fee_tiers)
    if s.spread_bps is not None:
        changes["spread_bps"] = s.spread_bps * fees
    return s.with_(**changes)


# ============================================================ stress scenarios
def _metrics(result, ppy: float | None = None) -> dict[str, float]:
    from cryptoai.backtest.metrics import compute_metrics

    m = compute_metrics(result, ppy)
    return {k: float(m[k]) for k in STRESS_METRICS}


def stress_scenarios(
    data: pd.DataFrame,
    strategy: Any,
    params: Mapping[str, Any] | None = None,
    settings: Any = None,
    *,
    crash_at: int | str | pd.Timestamp | None = None,
    crash: float = 0.30,
    gap_at: int | str | pd.Timestamp | None = None,
    gap_days: float = 3.0,
    vol_factor: float = 3.0,
    fee_factor: float = 3.0,
    slippage_factor: float = 5.0,
) -> pd.DataFrame:
    """The strategy with the same parameters on the base case and each stress, one row each
    (``base``, ``crash``, ``gap``, ``vol_x3``, ``fees_x3``, ``slippage_x5``; the names follow
    the factors) with ``STRESS_METRICS`` and, for the stresses, ``delta_total_return``
    against the base. The crash and the gap default to the middle bar."""
    from cryptoai.backtest import make_settings, run_strategy
    from cryptoai.backtest.metrics import periods_per_year

    cfg = make_settings(settings)
    ppy = periods_per_year(data.index)
    mid = len(data) // 2

    def run(frame: pd.DataFrame, s) -> dict[str, float]:
        return _metrics(run_strategy(frame, strategy, params, s, validate=False), ppy)

    scenarios = {
        "base": (data, cfg),
        "crash": (insert_crash(data, mid if crash_at is None else crash_at, crash), cfg),
        "gap": (insert_gap(data, mid if gap_at is None else gap_at, gap_days), cfg),
        f"vol_x{vol_factor:g}": (scale_volatility(data, vol_factor), cfg),
        f"fees_x{fee_factor:g}": (data, scale_costs(cfg, fees=fee_factor)),
        f"slippage_x{slippage_factor:g}": (data, scale_costs(cfg, slippage=slippage_factor)),
    }
    rows = {name: run(frame, s) for name, (frame, s) in scenarios.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "scenario"
    table["delta_total_return"] = table["total_return"] - table.loc["base", "total_return"]
    return table


# =============================================================== margin stress
def margin_stress(
    data: pd.DataFrame,
    strategy: Any,
    params: Mapping[str, Any] | None = None,
    settings: Any = None,
    leverages: Sequence[float] = tuple(range(1, 11)),
) -> pd.DataFrame:
    """The same run at each leverage (the settings' maintenance margin): one row a leverage
    with ``liquidated`` (any liquidation fill), ``n_liquidations``, ``first_liquidation``
    (time), ``worst_equity`` (the lowest bar-close equity), ``total_return`` and
    ``max_drawdown``. A leverage whose initial margin is not above the maintenance margin
    is skipped (the settings refuse it)."""
    from cryptoai.backtest import make_settings, run_strategy
    from cryptoai.backtest.metrics import compute_metrics, periods_per_year

    base = make_settings(settings)
    ppy = periods_per_year(data.index)
    rows = []
    for lev in leverages:
        try:
            s = base.with_(leverage=float(lev))
        except BadInputError:
            continue
        res = run_strategy(data, strategy, params, s, validate=False)
        liq = res.fills[res.fills["reason"] == "liquidation"] if len(res.fills) else res.fills
        m = compute_metrics(res, ppy)
        rows.append(
            {
                "leverage": float(lev),
                "liquidated": bool(len(liq)),
                "n_liquidations": int(len(liq)),
                "first_liquidation": liq["time"].iloc[0] if len(liq) else pd.NaT,
                "worst_equity": float(res.equity.min()),
                "total_return": float(m["total_return"]),
                "max_drawdown": float(m["max_drawdown"]),
            }
        )
    return pd.DataFrame(rows).set_index("leverage")


def liquidation_leverage(table: pd.DataFrame) -> float | None:
    """The lowest leverage of a ``margin_stress`` table at which the run is liquidated."""
    hit = table.index[table["liquidated"].to_numpy(dtype=bool)]
    return float(hit.min()) if len(hit) else None


# =================================================================== bootstrap
def bootstrap_indices(
    n: int,
    n_boot: int,
    block: int,
    method: str = "stationary",
    rng: np.random.Generator | int | None = 0,
) -> np.ndarray:
    """``(n_boot, n)`` bar positions of block-bootstrap resamples of ``n`` bars.

    ``moving``: blocks of ``block`` consecutive bars starting uniformly in ``[0, n - block]``,
    concatenated and cut to ``n``. ``stationary`` (Politis & Romano, 1994): each position
    continues the previous one (wrapping round) with probability ``1 - 1/block``, else it
    starts a new block at a uniform position, so block lengths are geometric with mean
    ``block``. With ``block = 1`` both are the iid bootstrap: they draw
    ``rng.integers(0, n, size=(n_boot, n))`` first, and use nothing else.
    """
    if n < 2 or n_boot < 1:
        raise BadInputError(f"bootstrap needs at least 2 bars and 1 resample, got {n}, {n_boot}")
    if isinstance(block, bool) or int(block) != block or not 1 <= block <= n:
        raise BadInputError(f"block={block!r}: use a whole number of bars in [1, {n}]")
    block = int(block)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if method == "moving":
        n_blocks = -(-n // block)
        starts = gen.integers(0, n - block + 1, size=(n_boot, n_blocks))
        idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(n_boot, -1)
        return idx[:, :n]
    if method == "stationary":
        idx = gen.integers(0, n, size=(n_boot, n))
        if block == 1:
            return idx
        new = gen.random((n_boot, n)) < 1.0 / block
        new[:, 0] = True
        # each position: the last new start at or before it, plus the distance to it
        pos = np.arange(n)[None, :]
        last = np.maximum.accumulate(np.where(new, pos, 0), axis=1)
        start = np.take_along_axis(idx, last, axis=1)
        return (start + pos - last) % n
    raise BadInputError(f"method={method!r}: use stationary or moving")


def _sharpe(r: np.ndarray, ppy: float) -> np.ndarray:
    sd = r.std(axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, r.mean(axis=-1) / sd, np.nan) * math.sqrt(ppy)


def _max_drawdown(r: np.ndarray) -> np.ndarray:
    equity = np.cumprod(1.0 + r, axis=-1)
    peak = np.maximum(np.maximum.accumulate(equity, axis=-1), 1.0)
    return (equity / peak - 1.0).min(axis=-1)


def bootstrap_metrics(
    returns: pd.Series | np.ndarray,
    *,
    periods_per_year: float = 1.0,
    n_boot: int = 1000,
    block: int | None = None,
    method: str = "stationary",
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Percentile intervals of the annualized Sharpe ratio and the maximum drawdown from
    block-bootstrap resamples of per-bar returns (seeded: the same call gives the same
    numbers). ``block`` defaults to ``n ** (1/3)`` bars (rounded), enough to keep the short
    serial dependence of bar returns (volatility clusters) inside blocks.

    Returns ``sharpe``, ``sharpe_low``, ``sharpe_high``, ``max_drawdown``,
    ``max_drawdown_low``, ``max_drawdown_high`` (drawdowns are negative: ``low`` is the
    deeper one), ``block``, ``n_boot`` and ``confidence``.
    """
    r = np.asarray(returns, dtype="float64")
    r = r[np.isfinite(r)]
    n = len(r)
    if not 0 < confidence < 1:
        raise BadInputError(f"confidence={confidence!r}: use a level in (0, 1), e.g. 0.95")
    if block is None:
        block = max(1, round(n ** (1 / 3)))
    rng = np.random.default_rng(seed)
    sharpes, dds = [], []
    chunk = max(1, 2_000_000 // max(n, 1))  # bound memory on long series
    for lo in range(0, n_boot, chunk):
        idx = bootstrap_indices(n, min(chunk, n_boot - lo), block, method, rng)
        sample = r[idx]
        sharpes.append(_sharpe(sample, periods_per_year))
        dds.append(_max_drawdown(sample))
    s, d = np.concatenate(sharpes), np.concatenate(dds)
    tail = (1.0 - confidence) / 2.0 * 100.0
    q = (tail, 100.0 - tail)
    return {
        "sharpe": float(_sharpe(r, periods_per_year)),
        "sharpe_low": float(np.nanpercentile(s, q[0])),
        "sharpe_high": float(np.nanpercentile(s, q[1])),
        "max_drawdown": float(_max_drawdown(r)),
        "max_drawdown_low": float(np.percentile(d, q[0])),
        "max_drawdown_high": float(np.percentile(d, q[1])),
        "block": float(block),
        "n_boot": float(n_boot),
        "confidence": float(confidence),
    }


# ===================================================================== summary
def risk_summary(
    stress: pd.DataFrame | None = None,
    margin: pd.DataFrame | None = None,
    bootstrap: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Flat metrics for ``metrics.json``: ``stress.SCENARIO.METRIC``,
    ``margin.liquidation_leverage`` (NaN when no tested leverage is liquidated; the stored
    value is then null), ``margin.max_leverage``, ``margin.worst_equity`` (at the highest
    leverage), ``margin.n_liquidated`` and ``bootstrap.KEY``."""
    out: dict[str, float] = {}
    if stress is not None:
        for name, row in stress.iterrows():
            for key in ("total_return", "sharpe", "max_drawdown", "n_trades", "fees_paid"):
                out[f"stress.{name}.{key}"] = float(row[key])
    if margin is not None and len(margin):
        lev = liquidation_leverage(margin)
        out["margin.liquidation_leverage"] = math.nan if lev is None else lev
        out["margin.max_leverage"] = float(margin.index.max())
        out["margin.worst_equity"] = float(margin["worst_equity"].iloc[-1])
        out["margin.n_liquidated"] = float(margin["liquidated"].sum())
    if bootstrap is not None:
        out |= {f"bootstrap.{k}": float(v) for k, v in bootstrap.items()}
    return out
