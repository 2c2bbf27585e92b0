"""Parameter sweeps: many parameter sets of one strategy on the same data, in parallel.

Indicators are computed once per distinct value (a cache shared by all parameter sets),
target series are built in blocks, and each block runs through the shared execution
kernel in parallel over parameter sets (``numba.prange``). Only summary statistics come
back; run the best sets again with ``run_vectorized`` for their fills and trades.

A strategy whose signal is a plain crossover of two lines (long after A crosses above B,
flat after it crosses below) can say so with ``crossover_lines(data)`` and ``line_keys()``;
the sweep then runs it fused, without building any target series. Such a class can also
compute all the distinct lines at once with ``line_table(data, keys)`` (e.g. several EMAs
per pass over the data).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from cryptoai._progress import tqdm
from cryptoai.backtest import _kernel as k
from cryptoai.backtest._market import (
    check_data,
    market_matrix,
    may_fund,
    params,
)
from cryptoai.backtest._paths import N_STATS
from cryptoai.backtest.metrics import periods_per_year
from cryptoai.backtest.settings import ExecutionSettings, make_settings
from cryptoai.backtest.vectorized import align
from cryptoai.errors import BadInputError
from cryptoai.strategies.base import BaseStrategy
from cryptoai.strategies.registry import get_strategy

log = logging.getLogger(__name__)

BLOCK_BYTES = 64 * 2**20  # target series held in memory at once
STAT_COLUMNS = (
    "final_equity",
    "total_return",
    "max_drawdown",
    "sharpe",
    "n_trades",
    "funding_paid",
)


def grid_combinations(grid: Mapping[str, Iterable[Any]]) -> list[dict[str, Any]]:
    """Cartesian product of a ``{param: values}`` grid, in the grid's order."""
    keys = list(grid)
    values = []
    for key in keys:
        v = grid[key]
        v = [v] if isinstance(v, str | bytes) or not isinstance(v, Iterable) else list(v)
        if not v:
            raise BadInputError(f"grid: parameter {key} has no values: give at least one")
        values.append(v)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def run_many(
    data: pd.DataFrame,
    targets: np.ndarray,
    settings: ExecutionSettings | dict | None = None,
    *,
    funding: pd.Series | None = None,
    validate: bool = True,
) -> pd.DataFrame:
    """Summary statistics of many target series (one per row of ``targets``) on ``data``."""
    cfg = make_settings(settings)
    if validate:
        check_data(data)
    elif len(data) == 0:
        raise BadInputError("data has no bars: load a non-empty date range")
    targets = np.asarray(targets, dtype="float64")
    if targets.ndim != 2 or targets.shape[1] != len(data):
        raise BadInputError(
            f"targets must be a 2-D array of shape (series, {len(data)} bars), got {targets.shape}"
        )
    m = market_matrix(data, cfg, funding, lean=True)
    p = params(cfg, data.index, m, record=False, funded=may_fund(cfg, funding))
    res, _ = _simulate_block(m, p, cfg, data.index, targets=np.ascontiguousarray(targets))
    return _stats_frame(res, cfg)


def sweep(
    data: pd.DataFrame,
    strategy: str | type[BaseStrategy],
    grid: Mapping[str, Iterable[Any]],
    settings: ExecutionSettings | dict | None = None,
    *,
    funding: pd.Series | None = None,
    validate: bool = True,
    progress: bool = False,
) -> pd.DataFrame:
    """Backtest every parameter set of ``grid`` with the vectorized engine.

    Returns one row per valid parameter set: the parameters, then ``final_equity``,
    ``total_return``, ``max_drawdown``, ``sharpe`` (annualized, bar returns), ``n_trades``
    (round trips) and ``funding_paid``. Parameter sets the strategy rejects (e.g.
    fast >= slow) are skipped with a warning.
    """
    cls = get_strategy(strategy) if isinstance(strategy, str) else strategy
    if not (isinstance(cls, type) and issubclass(cls, BaseStrategy)):
        raise BadInputError(f"sweep needs a strategy name or class, got {strategy!r}")
    if not cls.has_signals():
        raise BadInputError(f"strategy {cls.name} has no vectorized signals: sweeps need them")
    cfg = make_settings(settings)
    if validate:
        check_data(data)
    elif len(data) == 0:
        raise BadInputError("data has no bars: load a non-empty date range")
    unknown = sorted(set(grid) - set(cls.params))
    if unknown:
        raise BadInputError(
            f"sweep grid: strategy {cls.name} has no parameter {', '.join(unknown)}:"
            f" valid parameters are {', '.join(sorted(cls.params))}"
        )
    combos, skipped, strategies = [], [], []
    for combo in grid_combinations(grid):
        try:
            strategies.append(cls(**combo))
            combos.append(combo)
        except BadInputError as exc:
            skipped.append(str(exc))
    if skipped:
        log.warning("sweep: skipped %d invalid parameter set(s), e.g. %s", len(skipped), skipped[0])
    if not combos:
        raise BadInputError(f"sweep: no valid parameter set in the grid ({skipped[0]})")

    table = pd.DataFrame(combos)
    parts = [
        res
        for _, res, _ in simulate_strategies(
            data, strategies, cfg, funding=funding, progress=progress
        )
    ]
    return pd.concat([table, _stats_frame(np.vstack(parts), cfg)], axis=1)


def simulate_strategies(
    data: pd.DataFrame,
    strategies: list[BaseStrategy],
    settings: ExecutionSettings,
    *,
    funding: pd.Series | None = None,
    paths: int | None = None,
    progress: bool = False,
) -> Iterator[tuple[int, np.ndarray, tuple[np.ndarray, np.ndarray] | None]]:
    """Run strategies of one class (all with vectorized signals) on ``data`` through the
    parallel kernel, in blocks: yields ``(first, res, paths)`` per block, ``res`` the
    kernel's ``RES_*`` columns for strategies ``first ..``, and, when ``paths`` is a number
    of blocks (else None), each run's path statistics (``_paths`` columns) and the sums of
    its returns and squared returns per block (``paths`` blocks of ``len(data) // paths``
    bars: what the PBO needs, without keeping any per-bar array). The data must already be
    validated.
    """
    cls = type(strategies[0])
    m = market_matrix(data, settings, funding, lean=True)
    p = params(settings, data.index, m, record=False, funded=may_fund(settings, funding))
    n = len(data)
    block = max(1, min(len(strategies), BLOCK_BYTES // (8 * n)))
    crossover = hasattr(cls, "crossover_lines")
    if crossover:  # no per-bar array is built: every strategy in one call
        block = len(strategies)
    starts = range(0, len(strategies), block)
    bar = tqdm(starts, disable=not progress, desc=f"sweep {cls.name}", unit="block")
    if crossover:
        lines, fast_rows, slow_rows = _crossover_table(cls, strategies, data)
        for first in bar:
            rows = slice(first, first + block)
            res, out = _simulate_block(
                m, p, settings, data.index, paths=paths,
                lines=lines, fast_rows=fast_rows[rows], slow_rows=slow_rows[rows],
            )  # fmt: skip
            yield first, res, out
        return
    shared: dict[Any, Any] = {}
    for first in bar:
        chunk = strategies[first : first + block]
        targets = np.empty((len(chunk), n))
        for row, strat in enumerate(chunk):
            strat.cache = shared
            targets[row] = align(strat.signals(data), data.index, f"{cls.name} signals")
        res, out = _simulate_block(m, p, settings, data.index, targets=targets, paths=paths)
        yield first, res, out


def _crossover_table(
    cls: type[BaseStrategy], strategies: list[BaseStrategy], data: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strategies whose signal is "long after line A crosses above line B, flat after it
    crosses below" run fused: each distinct line is computed once (a table of lines), and
    each strategy names its two rows; no target series is built."""
    rows: dict[Any, int] = {}
    fast_rows = np.empty(len(strategies), dtype=np.int64)
    slow_rows = np.empty(len(strategies), dtype=np.int64)
    for j, strat in enumerate(strategies):
        for key, out in zip(strat.line_keys(), (fast_rows, slow_rows), strict=True):
            out[j] = rows.setdefault(key, len(rows))
    # a table of lines in bulk, unless a subclass redefined the lines but not the table
    if _owner(cls, "line_table") is _owner(cls, "crossover_lines"):
        lines = np.ascontiguousarray(cls.line_table(data, list(rows)), dtype="float64")
    else:
        shared: dict[Any, Any] = {}
        lines = np.empty((len(rows), len(data)))
        for strat in strategies:
            strat.cache = shared
            for key, line in zip(strat.line_keys(), strat.crossover_lines(data), strict=True):
                lines[rows[key]] = line
    return lines, fast_rows, slow_rows


def _owner(cls: type, name: str) -> type | None:
    """The class in ``cls``'s MRO that defines ``name`` (None if none does)."""
    return next((c for c in cls.__mro__ if name in vars(c)), None)


def _simulate_block(
    m: tuple[np.ndarray, ...],
    p: np.ndarray,
    cfg: ExecutionSettings,
    index: pd.DatetimeIndex,
    targets: np.ndarray | None = None,
    lines: np.ndarray | None = None,
    fast_rows: np.ndarray | None = None,
    slow_rows: np.ndarray | None = None,
    paths: int | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Run a block of target series, or of crossovers of ``lines`` rows, in parallel:
    the kernel's ``RES_*`` columns, and with ``paths`` (a number of blocks) every run's
    path statistics and per-block sums of returns and squared returns."""
    if targets is None:
        runs = len(fast_rows)
        targets = np.empty((0, 0))
    else:
        runs = targets.shape[0]
        lines = np.empty((0, 0))
        fast_rows = slow_rows = np.empty(0, dtype=np.int64)
    p = p.copy()
    p[k.P_RECORD] = 0.0  # the parallel kernel has no fill buffers
    states = np.tile(k.new_state(cfg.initial_cash), (runs, 1))
    res = np.empty((runs, k.N_RES))
    full = paths is not None
    stats = np.empty((runs, N_STATS)) if full else np.empty((1, 0))
    blocks = np.zeros((runs, 2 * paths)) if full else np.empty((1, 0))
    size = len(index) // paths if full and paths > 0 else 0
    k.simulate_many(
        states,
        p,
        m,
        targets,
        lines,
        fast_rows,
        slow_rows,
        np.empty((0, k.N_FILL)),
        np.empty((k.N_OUT, 0)),
        periods_per_year(index, strict=False),
        res,
        stats,
        blocks,
        size,
    )
    return res, ((stats, blocks) if full else None)


def _stats_frame(res: np.ndarray, cfg: ExecutionSettings) -> pd.DataFrame:
    # a dict in column order (naming the columns again costs pandas a reindex)
    columns = (
        res[:, 0],
        res[:, 0] / cfg.initial_cash - 1.0,
        res[:, 1],
        res[:, 2],
        res[:, 3].astype(np.int64),
        res[:, 4],
    )
    return pd.DataFrame(dict(zip(STAT_COLUMNS, columns, strict=True)))
