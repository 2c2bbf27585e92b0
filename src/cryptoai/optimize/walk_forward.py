"""Walk-forward optimization: choose on the past, trade the next window, stitch the windows.

The last ``n_splits * test_size`` bars are cut into test windows. For each, parameters are
chosen by a grid or random search on its in-sample window only (every earlier bar when
anchored, else the last ``train_size``), then traded on the test window: the strategy's
signals are computed over in-sample + test bars (indicators warm up on the past, and every
signal is causal), and the test window is backtested on its own, starting flat with the
sweep's costs. The windows' equity curves are chained into one out-of-sample curve.

Walk-forward efficiency is the mean out-of-sample objective over the mean in-sample (best)
objective: near 1 the in-sample edge carried over, near 0 or below it did not.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError
from cryptoai.optimize.search import grid_candidates, random_candidates, run_candidates
from cryptoai.optimize.space import Constraint, Dimension
from cryptoai.optimize.trials import COMPLETE, Trial, TrialRunner

log = logging.getLogger(__name__)

MIN_TRAIN_BARS = 50


@dataclass
class Window:
    """One walk-forward step: bar positions ``[train_start, train_end)`` then
    ``[train_end, test_end)``."""

    index: int
    train_start: int
    train_end: int
    test_end: int
    params: dict[str, Any] | None = None
    in_sample: float | None = None
    out_of_sample: float | None = None
    oos_metrics: dict[str, Any] = field(default_factory=dict)
    trials: list[Trial] = field(default_factory=list)


def make_windows(
    n_bars: int, n_splits: int, test_size: int | None, train_size: int | None, anchored: bool
) -> list[Window]:
    """The windows; ``test_size`` defaults to ``n_bars // (n_splits + 2)``."""
    test = test_size or n_bars // (n_splits + 2)
    first = n_bars - n_splits * test
    if test < 2 or first < MIN_TRAIN_BARS:
        raise BadInputError(
            f"walk_forward: {n_splits} test windows of {test} bars leave {first} in-sample bars"
            f" of {n_bars}: use fewer splits, a smaller test_size or more data"
        )
    train = train_size or first
    out = []
    for i in range(n_splits):
        start = first + i * test
        out.append(Window(i, 0 if anchored else max(0, start - train), start, start + test))
    return out


def _search(
    runner: TrialRunner,
    dims: Sequence[Dimension],
    constraints: Sequence[Constraint],
    inner: str,
    n_trials: int,
    seed: int,
    workers: int,
) -> list[Trial]:
    if inner == "grid":
        candidates, _ = grid_candidates(dims, constraints)
    else:
        candidates, _ = random_candidates(dims, constraints, n_trials, seed)
    trials, _ = run_candidates(runner, candidates, workers)
    return trials


def best_trial(trials: Sequence[Trial], maximize: bool) -> Trial | None:
    """The completed trial with the best objective (ties: the lower trial number)."""
    done = [t for t in trials if t.state == COMPLETE and t.value is not None]
    if not done:
        return None
    sign = 1.0 if maximize else -1.0
    return max(done, key=lambda t: (sign * t.value, -t.number))


def trade_window(data: pd.DataFrame, runner: TrialRunner, window: Window, params: dict):
    """The test window's backtest with ``params`` (signals warmed up on the in-sample bars)."""
    from cryptoai.backtest.vectorized import run_vectorized
    from cryptoai.strategies.registry import get_strategy

    strat = get_strategy(runner.strategy)(**{**runner.fixed, **params})
    history = data.iloc[window.train_start : window.test_end]
    target = strat.signals(history).iloc[window.train_end - window.train_start :]
    test = data.iloc[window.train_end : window.test_end]
    return run_vectorized(test, target, runner.settings, name=strat.name, validate=False)


def walk_forward(
    runner: TrialRunner,
    dims: Sequence[Dimension],
    constraints: Sequence[Constraint],
    *,
    n_splits: int,
    test_size: int | None,
    train_size: int | None,
    anchored: bool,
    inner: str,
    n_trials: int,
    seed: int,
    maximize: bool,
    workers: int = 1,
) -> tuple[list[Window], Any]:
    """Run every window; returns the windows and the stitched out-of-sample backtest."""
    from cryptoai.backtest.metrics import compute_metrics

    data = runner.data
    windows = make_windows(len(data), n_splits, test_size, train_size, anchored)
    results = []
    number = 0
    for w in windows:
        inner_runner = replace(runner, data=data.iloc[w.train_start : w.train_end])
        trials = _search(inner_runner, dims, constraints, inner, n_trials, seed + w.index, workers)
        for t in trials:
            t.window, t.number = w.index, number
            number += 1
        w.trials = trials
        best = best_trial(trials, maximize)
        if best is None:
            log.warning("walk-forward window %d: no trial completed; it stays flat", w.index)
            results.append(None)
            continue
        w.params, w.in_sample = dict(best.params), best.value
        res = trade_window(data, runner, w, w.params)
        results.append(res)
        metrics = compute_metrics(res, _ppy(data))
        w.oos_metrics = metrics
        value = metrics.get(runner.metric)
        w.out_of_sample = float(value) if value is not None and math.isfinite(value) else None
    return windows, stitch(data, windows, results, runner)


def _ppy(data: pd.DataFrame) -> float:
    from cryptoai.backtest.metrics import periods_per_year

    return periods_per_year(data.index)


def stitch(data: pd.DataFrame, windows: Sequence[Window], results: Sequence[Any], runner):
    """One out-of-sample backtest from the windows' (each window's gains compound on the
    previous ones; a window with no result is flat)."""
    from cryptoai.backtest.result import BacktestResult

    cash = float(runner.settings.initial_cash)
    level = cash
    equity, position, trades, fills = [], [], [], []
    for w, res in zip(windows, results, strict=True):
        idx = data.index[w.train_end : w.test_end]
        if res is None:
            equity.append(pd.Series(level, index=idx))
            position.append(pd.Series(0.0, index=idx))
            continue
        scale = level / res.initial_cash
        equity.append(res.equity * scale)
        position.append(res.position * scale)
        if len(res.trades):
            t = res.trades.copy()
            for col in ("size", "fees", "pnl"):
                if col in t:
                    t[col] = t[col] * scale
            trades.append(t)
        if len(res.fills):
            f = res.fills.copy()
            for col in ("size", "fee"):
                if col in f:
                    f[col] = f[col] * scale
            fills.append(f)
        level = float(res.equity.iloc[-1]) * scale
    template = next((r for r in results if r is not None), None)
    empty_t = template.trades.iloc[:0] if template is not None else pd.DataFrame()
    empty_f = template.fills.iloc[:0] if template is not None else pd.DataFrame()
    return BacktestResult(
        equity=pd.concat(equity).rename("equity"),
        position=pd.concat(position).rename("position"),
        trades=pd.concat(trades, ignore_index=True) if trades else empty_t,
        fills=pd.concat(fills, ignore_index=True) if fills else empty_f,
        initial_cash=cash,
        settings=template.settings if template is not None else {},
        name=f"{runner.strategy} walk-forward",
    )


def efficiency(windows: Sequence[Window]) -> float | None:
    """Mean out-of-sample objective / mean in-sample objective over the traded windows."""
    pairs = [(w.in_sample, w.out_of_sample) for w in windows if w.in_sample is not None]
    pairs = [(a, b) for a, b in pairs if b is not None]
    if not pairs:
        return None
    ins = float(np.mean([a for a, _ in pairs]))
    oos = float(np.mean([b for _, b in pairs]))
    return oos / ins if ins != 0 else None


def window_record(data: pd.DataFrame, w: Window) -> dict[str, Any]:
    ix = data.index

    def at(i: int) -> str:
        return ix[min(i, len(ix) - 1)].isoformat()

    ratio = (
        w.out_of_sample / w.in_sample
        if w.in_sample not in (None, 0) and w.out_of_sample is not None
        else None
    )
    return {
        "window": w.index,
        "train_start": at(w.train_start),
        "train_end": at(w.train_end - 1),
        "test_start": at(w.train_end),
        "test_end": at(w.test_end - 1),
        "n_train": w.train_end - w.train_start,
        "n_test": w.test_end - w.train_end,
        "params": w.params,
        "in_sample": w.in_sample,
        "out_of_sample": w.out_of_sample,
        "efficiency": ratio,
        "n_trials": len(w.trials),
    }
