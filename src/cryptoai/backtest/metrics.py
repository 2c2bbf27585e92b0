"""Performance metrics of a backtest, written as readable one- or two-line formulas.

Everything is defined on per-bar simple returns of the equity curve,
``r_t = E_t / E_{t-1} - 1`` with ``E_{-1} = initial_cash``, so that compounding the
returns gives the total return exactly. Formulas, annualization and minimum spans are in
docs/metrics.md:

- CAGR (and so Calmar) compounds over **calendar time**: the span from the first bar's open
  to the last bar's close (``span_days``), in 365-day years, whatever the number of bars;
- volatility, Sharpe and Sortino scale by the bars per year: the timeframe's 24/7 figure
  (crypto), the figure observed in the data when the market closes (fewer bars per year
  than the timeframe makes around the clock), or an explicit ``periods_per_year``;
- below ``MIN_SPAN_DAYS`` of calendar time or ``MIN_BARS`` bars, annualized figures are NaN
  (``annualization`` says why): a few bars extrapolated to a year mean nothing.

Edge cases (documented, never hidden):

- no trades: ``win_rate``, ``profit_factor``, ``expectancy``, ``avg_trade_return`` are NaN;
- no losing trades: ``profit_factor`` is +inf (no losses to divide by);
- flat equity (zero volatility): ``sharpe`` and ``sortino`` are NaN;
- no drawdown: ``calmar`` is NaN;
- a single bar: ``volatility``/``sharpe`` need two returns and are NaN;
- a wiped-out account (equity <= 0) earns 0 per bar afterwards; ``cagr`` is -1 (at any span).

Counts (``n_trades``, ``n_bars``, ``max_drawdown_bars``) are ints, everything else floats.

NaN and infinities are kept as floats here; ``to_jsonable`` turns them into ``None`` (JSON
``null``) when metrics are written to disk.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError

if TYPE_CHECKING:
    from cryptoai.backtest.result import BacktestResult

DAYS_PER_YEAR = 365.0
MIN_SPAN_DAYS = 30.0  # below this calendar span, annualized figures are NaN
MIN_BARS = 30  # ... and below this many bars
CLOSED_MARKET_RATIO = 0.9  # observed bars per year below this share of 24/7: market closes
ANNUALIZED = ("cagr", "volatility", "sharpe", "sortino", "calmar")
# Calendar timeframes whose bar spacing varies (months are 28 to 31 days): bars per year.
_CALENDAR_BARS = ((28.0, 31.0, 12.0), (89.0, 92.0, 4.0), (365.0, 366.0, 1.0))

#: Order of the metrics in ``compute_metrics`` output and in reports.
METRIC_NAMES: tuple[str, ...] = (
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_bars",
    "max_drawdown_days",
    "calmar",
    "n_trades",
    "win_rate",
    "profit_factor",
    "expectancy",
    "avg_trade_return",
    "exposure",
    "turnover",
    "fees_paid",
    "funding_paid",
    "final_equity",
    "n_bars",
    "span_days",
    "periods_per_year",
)


def bar_length(index: pd.DatetimeIndex) -> pd.Timedelta:
    """Median spacing of the bars (robust to a few gaps); one hour for a single bar."""
    if len(index) < 2:
        return pd.Timedelta(hours=1)
    steps = np.diff(index.asi8)
    if (steps == steps[0]).all():  # a regular grid: the median is the step (same Timedelta)
        return pd.Timedelta(int(steps[0]), unit=index.unit)
    return pd.Series(index).diff().median()


def periods_per_year(index: pd.DatetimeIndex, *, strict: bool = True) -> float:
    """Bars per 365-day year of the timeframe traded around the clock (crypto), from the
    median bar spacing; monthly bars (28-31 days apart) are 12 a year, quarterly 4, yearly 1.

    ``strict`` refuses to guess from a single bar; the execution kernel passes
    ``strict=False`` and assumes hourly bars there, where nothing is annualized anyway.
    """
    if strict and len(index) < 2:
        raise BadInputError(
            f"cannot infer the bar length from {len(index)} bar(s): pass periods_per_year"
            " or give at least two bars"
        )
    step = bar_length(index)
    if not step > pd.Timedelta(0):
        raise BadInputError("bar timestamps are not increasing: sort and de-duplicate the data")
    days = step / pd.Timedelta(days=1)
    for low, high, bars in _CALENDAR_BARS:
        if low <= days <= high:
            return bars
    return pd.Timedelta(days=DAYS_PER_YEAR) / step


def span_days(index: pd.DatetimeIndex) -> float:
    """Calendar days a backtest covers: from the first bar's open to the last bar's close
    (stamps are bar open times, so the last bar adds one bar length)."""
    if len(index) == 0:
        return 0.0
    return float((index[-1] - index[0] + bar_length(index)) / pd.Timedelta(days=1))


def observed_periods_per_year(index: pd.DatetimeIndex) -> float:
    """Bars per 365-day year actually present in the data (markets that close have fewer
    than their timeframe makes around the clock: ~252 daily bars for equities)."""
    return len(index) / (span_days(index) / DAYS_PER_YEAR)


def annualization(
    index: pd.DatetimeIndex,
    periods_per_year: float | None = None,
    *,
    min_days: float = MIN_SPAN_DAYS,
    min_bars: int = MIN_BARS,
) -> dict[str, Any]:
    """How figures are annualized: bars per year, where that figure comes from, and
    whether the sample is long enough to annualize at all (``ok``; ``note`` says why not).

    Bars per year: ``periods_per_year`` when given; else the timeframe's 24/7 figure,
    unless the data has clearly fewer bars per year than that (a market that closes, e.g.
    equities on business days: fewer than ``CLOSED_MARKET_RATIO`` of it over at least
    ``min_days``), in which case the observed figure is used and said so.
    """
    days = span_days(index)
    if periods_per_year:
        ppy, source = float(periods_per_year), "given (periods_per_year)"
    else:
        ppy, source = _ppy(index), "24/7 timeframe"
        if days >= max(min_days, 1.0):
            seen = observed_periods_per_year(index)
            if seen < CLOSED_MARKET_RATIO * ppy:
                ppy = seen
                source = "observed in the data (the market closes)"
    ok = len(index) >= min_bars and days >= min_days
    note = ""
    if not ok:
        note = (
            f"{len(index)} bars over {days:.1f} days: below the minimum of {min_bars} bars and"
            f" {min_days:g} days, annualized figures ({', '.join(ANNUALIZED)}) are not computed"
        )
    return {"periods_per_year": ppy, "source": source, "span_days": days, "ok": ok, "note": note}


def bar_returns(equity: pd.Series, initial_cash: float) -> pd.Series:
    """Per-bar simple returns; the first bar is measured against the initial cash.

    Once the account is wiped out (equity <= 0) it stays dead: later returns are 0.
    """
    values = equity.to_numpy(dtype="float64")
    rets = path_returns(values[None, :], float(initial_cash))[0]
    return pd.Series(rets, index=equity.index, name="return")


def drawdown(equity: pd.Series, initial_cash: float | None = None) -> pd.Series:
    """Fractional distance below the running peak (0 at a peak, -0.2 means 20% under it).

    The initial cash counts as the first peak, so losing money from the start is a drawdown.
    """
    values = equity.to_numpy(dtype="float64")
    start = values[0] if initial_cash is None else float(initial_cash)
    peak = np.maximum.accumulate(np.concatenate(([start], values)))[1:]
    return pd.Series(values / peak - 1.0, index=equity.index, name="drawdown")


def max_drawdown_duration(equity: pd.Series, initial_cash: float) -> int:
    """Longest time under water, in bars: from a peak to the bar that regains it (or the end)."""
    values = np.concatenate(([float(initial_cash)], equity.to_numpy(dtype="float64")))
    peak = np.maximum.accumulate(values)
    at_peak = values >= peak
    positions = np.arange(len(values))
    last_peak = np.maximum.accumulate(np.where(at_peak, positions, 0))
    recovered = at_peak[1:] & ~at_peak[:-1]  # bar t regains the peak lost after last_peak[t-1]
    durations = list(positions[1:][recovered] - last_peak[:-1][recovered])
    if not at_peak[-1]:  # still under water at the end
        durations.append(positions[-1] - last_peak[-1])
    return int(max(durations, default=0))


def monthly_returns(equity: pd.Series, initial_cash: float) -> pd.DataFrame:
    """Compounded return of each calendar month (UTC) as a year x month (1..12) table."""
    month_end = equity.resample("ME").last().dropna()
    previous = month_end.shift(1).fillna(float(initial_cash))
    rets = month_end / previous - 1.0
    table = pd.DataFrame({"year": rets.index.year, "month": rets.index.month, "ret": rets.values})
    out = table.pivot(index="year", columns="month", values="ret")
    return out.reindex(columns=range(1, 13))


#: What ``metrics_table`` needs besides the equity: per run, the round trips' count and
#: tallies, the bars closed holding a position, fees, traded value and funding paid.
TALLY_NAMES: tuple[str, ...] = (
    "n_trades",
    "wins",
    "gains",
    "losses",
    "pnl",
    "trade_returns",
    "exposed_bars",
    "fees",
    "notional",
    "funding",
)


def compute_metrics(
    result: BacktestResult,
    periods_per_year: float | None = None,
    *,
    min_days: float = MIN_SPAN_DAYS,
    min_bars: int = MIN_BARS,
) -> dict[str, float]:
    """Headline statistics of a backtest (see the module docstring for definitions).

    ``periods_per_year`` scales volatility, Sharpe and Sortino (default: ``annualization``);
    CAGR uses calendar time. Annualized figures are NaN below ``min_days`` / ``min_bars``.
    """
    equity = result.equity.astype("float64")
    if equity.empty:
        raise BadInputError("the backtest has no bars: give data covering at least one bar")
    trades, fills = result.trades, result.fills
    pnl = trades["pnl"].to_numpy(dtype="float64") if len(trades) else np.empty(0)
    tallies = {
        "n_trades": len(trades),
        "wins": int((pnl > 0).sum()),
        "gains": pnl[pnl > 0].sum(),
        "losses": -pnl[pnl < 0].sum(),
        "pnl": pnl.sum(),
        "trade_returns": trades["return"].to_numpy(dtype="float64").sum() if len(trades) else 0.0,
        "exposed_bars": int((result.position.to_numpy() != 0).sum()),
        "fees": fills["fee"].to_numpy(dtype="float64").sum() if len(fills) else 0.0,
        "notional": (fills["size"].abs() * fills["price"]).to_numpy().sum() if len(fills) else 0.0,
        "funding": float(result.funding_paid),
    }
    from cryptoai.backtest._paths import path_stats

    values = equity.to_numpy()
    table = metrics_table(
        values[-1:],
        pd.DatetimeIndex(equity.index),
        float(result.initial_cash),
        {key: np.asarray([value], dtype="float64") for key, value in tallies.items()},
        path_stats(values[None, :], float(result.initial_cash))[1],
        periods_per_year,
        min_days=min_days,
        min_bars=min_bars,
    )
    return metrics_row(table, 0)


def metrics_row(table: dict[str, np.ndarray], row: int) -> dict[str, float]:
    """Run ``row`` of a ``metrics_table`` as ``compute_metrics`` returns it (counts as ints;
    an undefined figure is ``math.nan`` itself, so two identical runs' metrics compare equal)."""
    out: dict[str, float] = {}
    for key in METRIC_NAMES:
        value = table[key][row]
        out[key] = int(value) if key in _COUNTS else (float(value) if value == value else math.nan)
    return out


_COUNTS = frozenset(("n_trades", "n_bars", "max_drawdown_bars"))


def metrics_table(
    final_equity: np.ndarray,
    index: pd.DatetimeIndex,
    initial_cash: float,
    tallies: dict[str, np.ndarray],
    stats: np.ndarray,
    periods_per_year: float | None = None,
    *,
    min_days: float = MIN_SPAN_DAYS,
    min_bars: int = MIN_BARS,
) -> dict[str, np.ndarray]:
    """Every ``METRIC_NAMES`` figure of many runs on the same bars at once, one array each.

    ``final_equity``: each run's equity at the last close; ``tallies``: one array per
    ``TALLY_NAMES`` entry (the round trips are tallied by the kernel as it runs, so a
    sweep needs no fills); ``stats``: the runs' path statistics (``_paths`` columns, from
    ``_paths.path_stats`` or the sweep kernel). ``compute_metrics`` is the one-run case.
    """
    from cryptoai.backtest._paths import DD_BARS, DOWNSIDE, MAX_DD, MEAN, MEAN_EQUITY, STD

    runs = stats.shape[0]
    n = len(index)
    if n == 0:
        raise BadInputError("the backtest has no bars: give data covering at least one bar")
    if not periods_per_year and n < 2:
        _ppy(index)  # one bar and no figure given: a one-line error
    ann = annualization(index, periods_per_year, min_days=min_days, min_bars=min_bars)
    ppy = ann["periods_per_year"]
    cash = float(initial_cash)
    final_equity = np.asarray(final_equity, dtype="float64")
    years = ann["span_days"] / DAYS_PER_YEAR
    t = {key: np.asarray(tallies[key], dtype="float64") for key in TALLY_NAMES}
    n_trades = t["n_trades"]
    traded = n_trades > 0

    total_return = final_equity / cash - 1.0
    with np.errstate(invalid="ignore", over="ignore"):
        grown = np.where(total_return > -1.0, 1.0 + total_return, 1.0) ** (1.0 / years) - 1.0
    cagr = np.where(total_return > -1.0, grown, -1.0)
    mean, std, downside = stats[:, MEAN], stats[:, STD], stats[:, DOWNSIDE]
    max_dd, dd_bars = stats[:, MAX_DD], stats[:, DD_BARS]
    with np.errstate(divide="ignore", invalid="ignore"):
        count = np.where(traded, n_trades, 1.0)
        profit_factor = np.where(t["losses"] > 0, _ratios(t["gains"], t["losses"]), math.inf)
    out = {
        "total_return": total_return,
        "cagr": cagr,
        "volatility": std * math.sqrt(ppy),
        "sharpe": _ratios(mean, std) * math.sqrt(ppy),
        "sortino": _ratios(mean, downside) * math.sqrt(ppy),
        "max_drawdown": max_dd,
        "max_drawdown_bars": dd_bars,
        "max_drawdown_days": dd_bars * DAYS_PER_YEAR / ppy,
        "calmar": _ratios(cagr, np.abs(max_dd)),
        "n_trades": n_trades,
        "win_rate": np.where(traded, t["wins"] / count, math.nan),
        "profit_factor": np.where(traded, profit_factor, math.nan),
        "expectancy": np.where(traded, t["pnl"] / count, math.nan),
        "avg_trade_return": np.where(traded, t["trade_returns"] / count, math.nan),
        "exposure": t["exposed_bars"] / n,
        "turnover": t["notional"] / stats[:, MEAN_EQUITY],
        "fees_paid": t["fees"],
        "funding_paid": t["funding"],
        "final_equity": final_equity.copy(),
        "n_bars": np.full(runs, n),
        "span_days": np.full(runs, ann["span_days"]),
        "periods_per_year": np.full(runs, ppy),
    }
    if not ann["ok"]:
        for key in ANNUALIZED:
            keep = (out[key] == -1.0) if key == "cagr" else False  # a wiped-out account: -100%
            out[key] = np.where(keep, out[key], math.nan)
    return out


def path_returns(equity: np.ndarray, initial_cash: float) -> np.ndarray:
    """Per-bar simple returns of each row of a (runs x bars) equity matrix (as
    ``bar_returns``: the first bar against the initial cash, 0 once wiped out)."""
    runs = equity.shape[0]
    previous = np.concatenate((np.full((runs, 1), float(initial_cash)), equity[:, :-1]), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(previous > 0, equity / previous - 1.0, 0.0)


def _ratios(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den per run, NaN where the denominator is zero or undefined (as ``_ratio``)."""
    num, den = np.broadcast_arrays(np.asarray(num, dtype="float64"), np.asarray(den, "float64"))
    ok = np.isfinite(den) & (den != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, num / np.where(ok, den, 1.0), math.nan)


def to_jsonable(value: Any) -> Any:
    """Recursively replace NaN/inf by None and numpy scalars by Python numbers (valid JSON)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _ppy(index: pd.Index) -> float:
    """The timeframe's 24/7 bars per year, or a one-line error for a single bar."""
    if len(index) < 2:
        raise BadInputError(
            "cannot annualize a one-bar backtest: pass periods_per_year or use more bars"
        )
    return periods_per_year(pd.DatetimeIndex(index))


def _ratio(num: float, den: float) -> float:
    """num / den, NaN when the denominator is zero or undefined (never a ZeroDivisionError)."""
    if not den or not math.isfinite(den):
        return math.nan
    return float(num / den)
