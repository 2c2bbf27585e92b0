#!/usr/bin/env python
"""Parameter-search throughput: trials per second of an EMA-cross grid, four ways.

On the same candles (seeded synthetic BTC/USDT hourly bars, two years by default, the data
of ``configs/optimize/ema_cross_grid.yaml``) and the same grid of ``ema_cross`` spans, with
the same costs (10 bps fee, 2 bps slippage, fill at the next bar's open):

- ``cryptoai.sweep``: the compiled sweep kernel, every parameter set in one call (numba,
  parallel over sets); returns a table of statistics per set, no equity curves;
- the optimize grid path: ``run_candidates``, i.e. what ``cryptoai optimize`` does for a grid
  of a strategy with vectorized signals (every set through the parallel kernel, which
  keeps each bar's equity and tallies the round trips, then every ``compute_metrics``
  figure and the per-bar returns the PBO needs), ``TrialRunner.run`` per set (one
  ``run_strategy`` + ``compute_metrics`` each, the path of event-driven strategies and of
  Optuna's workers), and ``run_optimization`` end to end (data loading and validation,
  statistics, stable region, reports and plots included);
- vectorbt (one portfolio column per combination) and backtesting.py ``Backtest.optimize``,
  when they are installed (``pip install -r benchmarks/requirements-bench.txt``);
- the Optuna path: the bookkeeping each trial adds on an SQLite storage (TPE sampling and
  the storage's commits, measured with an objective that does nothing) and ``run_optuna``
  end to end per trial (the search, then every trial re-run in the parent for its returns).

The sweep and the optimize trials are checked to agree (Sharpe ratio, total return and
trade count per set) before anything is timed. Times are the best of ``--repeat`` warm runs
(the first call compiles the numba kernels and is not timed). Writes the table to stdout
and to docs/performance_optimize.md (not with ``--quick``).

    python benchmarks/bench_optimize.py [--quick] [--repeat 3] [--optuna-trials 60]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "performance_optimize.md"
FEE_BPS, SLIPPAGE_BPS = 10.0, 2.0
FULL = {"start": "2023-01-01", "end": "2025-01-01"}
QUICK = {"start": "2024-11-01", "end": "2025-01-01"}
#: 20 fast x 15 slow spans, every combination has fast < slow: 300 trials.
GRID = {"fast": list(range(4, 44, 2)), "slow": list(range(50, 425, 25))}
QUICK_GRID = {"fast": [5, 10, 20], "slow": [50, 100, 200]}


def candles(period: dict[str, str]) -> pd.DataFrame:
    from cryptoai.data.sources.synthetic import synthetic_ohlcv

    data = synthetic_ohlcv("BTC/USDT", "1h", period["start"], period["end"])
    return data[["open", "high", "low", "close", "volume"]]


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    """Best wall time of ``fn`` in seconds (one untimed warm-up call first)."""
    fn()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return min(runs)


def combinations(grid: dict[str, list[int]]) -> list[dict[str, int]]:
    return [{"fast": f, "slow": s} for f in grid["fast"] for s in grid["slow"] if f < s]


def settings():
    from cryptoai.backtest.settings import ExecutionSettings

    return ExecutionSettings(fee_bps=FEE_BPS, slippage_bps=SLIPPAGE_BPS)


def runner(data: pd.DataFrame):
    from cryptoai.optimize.trials import TrialRunner

    return TrialRunner(
        data=data, strategy="ema_cross", fixed={}, settings=settings(), metric="sharpe",
        min_trades=1,
    )  # fmt: skip


# --- cryptoai ---------------------------------------------------------------------------------


def ours_sweep(data: pd.DataFrame, grid: dict[str, list[int]]) -> pd.DataFrame:
    import cryptoai as ca

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fast >= slow sets are skipped with a warning
        return ca.sweep(data, "ema_cross", grid, settings(), validate=False)


def ours_trials(data: pd.DataFrame, combos: list[dict[str, int]]) -> list:
    from cryptoai.optimize.search import run_candidates

    return run_candidates(runner(data), combos, workers=1)[0]


def ours_run_optimization(data_file: Path, grid: dict[str, list[int]], out: Path) -> None:
    from cryptoai.optimize import run_optimization

    cfg = {
        "name": "bench_grid",
        "data": {"file": str(data_file)},
        "strategy": "ema_cross",
        "space": grid,
        "constraints": ["fast < slow"],
        "method": "grid",
        "objective": "sharpe",
        "min_trades": 1,
        "backtest": {"fee_bps": FEE_BPS, "slippage_bps": SLIPPAGE_BPS},
    }
    run_optimization(cfg, out=out, tracking=False)


def ours_single(data: pd.DataFrame, combos: list[dict[str, int]]) -> list:
    r = runner(data)
    return [r.run(i, c) for i, c in enumerate(combos)]


def agreement(table: pd.DataFrame, trials: list) -> str | None:
    """None when the sweep and the optimize trials give the same numbers per set."""
    by_params = {(int(r.fast), int(r.slow)): r for r in table.itertuples()}
    for t in trials:
        row = by_params.get((t.params["fast"], t.params["slow"]))
        if row is None:
            return f"{t.params}: missing from the sweep"
        for key in ("sharpe", "total_return"):
            a, b = float(getattr(row, key)), float(t.metrics[key])
            if not np.isclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True):
                return f"{t.params}: {key} {a} (sweep) vs {b} (trial)"
        if int(row.n_trades) != int(t.metrics["n_trades"]):
            return f"{t.params}: n_trades {row.n_trades} (sweep) vs {t.metrics['n_trades']}"
    return None


def optuna_bookkeeping(n_trials: int, folder: Path, tag: str) -> float:
    """Seconds per trial that Optuna itself costs on SQLite: TPE + storage, no backtest."""
    import optuna

    from cryptoai.optimize.search import _trial_seeded, open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    url = f"sqlite:///{folder / f'bookkeeping-{tag}.db'}"
    study = optuna.create_study(study_name="b", storage=open_storage(url), direction="maximize")
    study.sampler = _trial_seeded("tpe", 42)

    def objective(trial) -> float:
        trial.suggest_int("fast", 2, 60)
        trial.suggest_int("slow", 20, 600, log=True)
        trial.set_user_attr("cryptoai", {"worker": os.getpid(), "state": "complete"})
        return 0.0

    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n_trials, gc_after_trial=False)
    return (time.perf_counter() - t0) / n_trials


def optuna_dims():
    from cryptoai.optimize.space import make_dimension

    return (
        make_dimension("fast", {"low": 2, "high": 60}, 10),
        make_dimension("slow", {"low": 61, "high": 600}, 50),
    )


def optuna_worker(data: pd.DataFrame, n_trials: int, folder: Path) -> float:
    """Seconds per trial of one Optuna worker's loop (what each ``--workers`` process runs):
    TPE, the storage and the backtest, on a fresh SQLite study."""
    import optuna

    from cryptoai.optimize.search import OptunaJob, open_storage, run_optuna_worker

    url = f"sqlite:///{folder / 'worker.db'}"
    optuna.create_study(study_name="w", storage=open_storage(url), direction="maximize")
    job = OptunaJob(
        url, "w", "tpe", 42, n_trials, n_trials, runner=runner(data), dims=optuna_dims(),
        constraints=(),
    )  # fmt: skip
    t0 = time.perf_counter()
    run_optuna_worker(job)
    return (time.perf_counter() - t0) / n_trials


def optuna_end_to_end(data: pd.DataFrame, n_trials: int, folder: Path) -> float:
    """Seconds per trial of ``run_optuna``: storage and study set-up, the search, every
    trial re-run in the parent for its returns, and the fANOVA importance."""
    from cryptoai.optimize.search import run_optuna

    t0 = time.perf_counter()
    run_optuna(
        runner(data), list(optuna_dims()), [], storage=f"sqlite:///{folder / 'e2e.db'}",
        study="e2e", sampler="tpe", seed=42, n_trials=n_trials, direction="maximize",
    )  # fmt: skip
    return (time.perf_counter() - t0) / n_trials


# --- peers --------------------------------------------------------------------------------------


def vectorbt_sweep(data: pd.DataFrame, combos: list[dict[str, int]], full: bool = False) -> None:
    """One 2-D vectorbt portfolio, a column per combination, filled at the next bar's open;
    the Sharpe ratio per column, or (``full``) what an optimize trial keeps: the per-bar
    returns and the same headline metrics per column (return, Sharpe, Sortino, drawdown,
    Calmar, trades, win rate, profit factor, expectancy, fees)."""
    import vectorbt as vbt

    plain = data.copy()
    plain.index = plain.index.tz_localize(None)
    close = plain["close"]
    spans = sorted({c["fast"] for c in combos} | {c["slow"] for c in combos})
    ma = vbt.MA.run(close, spans, ewm=True).ma.to_numpy()
    col = {s: i for i, s in enumerate(spans)}
    f = pd.DataFrame(ma[:, [col[c["fast"]] for c in combos]], index=close.index)
    s = pd.DataFrame(ma[:, [col[c["slow"]] for c in combos]], index=close.index)
    entries = f.vbt.crossed_above(s).vbt.fshift(1, fill_value=False)
    exits = f.vbt.crossed_below(s).vbt.fshift(1, fill_value=False)
    pf = vbt.Portfolio.from_signals(
        close, entries, exits, price=plain["open"], fees=FEE_BPS / 1e4,
        slippage=SLIPPAGE_BPS / 1e4, init_cash=10_000.0, freq="1h",
    )  # fmt: skip
    pf.sharpe_ratio()
    if full:
        pf.returns()
        pf.total_return(), pf.sortino_ratio(), pf.max_drawdown(), pf.calmar_ratio()
        trades = pf.trades
        trades.count(), trades.win_rate(), trades.profit_factor(), trades.expectancy()
        pf.orders.fees.sum()


def backtesting_optimize(data: pd.DataFrame, grid: dict[str, list[int]]) -> None:
    """backtesting.py's own grid search: ``Backtest.optimize`` over the same spans."""
    import multiprocessing

    import backtesting
    from backtesting import Backtest

    # backtesting.py's optimizer is built for forked workers (they inherit the strategy);
    # this process may have chosen another start method for its own workers.
    backtesting.Pool = multiprocessing.get_context("fork").Pool
    EmaCross = _backtesting_strategy()
    frame = data.rename(columns=str.capitalize)
    frame.index = frame.index.tz_localize(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(frame, EmaCross, cash=1e9, commission=(FEE_BPS + SLIPPAGE_BPS) / 1e4)
        bt.optimize(
            fast=grid["fast"], slow=grid["slow"], constraint=lambda p: p.fast < p.slow,
            maximize="Sharpe Ratio", max_tries=None,
        )  # fmt: skip


def _ema(values, span):
    return pd.Series(values).ewm(span=span, adjust=False, min_periods=span).mean().to_numpy()


_BT_STRATEGY = None


def _backtesting_strategy():
    """backtesting.py's EMA cross, made once at module level: its optimizer sends the class to
    worker processes, which must find it by name (a class local to a function cannot be)."""
    global _BT_STRATEGY, BacktestingEmaCross
    if _BT_STRATEGY is None:
        from backtesting import Strategy
        from backtesting.lib import crossover

        class BacktestingEmaCross(Strategy):
            fast = 10
            slow = 50

            def init(self) -> None:
                self.f = self.I(_ema, self.data.Close, self.fast)
                self.s = self.I(_ema, self.data.Close, self.slow)

            def next(self) -> None:
                if crossover(self.f, self.s) and not self.position:
                    self.buy()
                elif crossover(self.s, self.f) and self.position:
                    self.position.close()

        BacktestingEmaCross.__qualname__ = "BacktestingEmaCross"
        _BT_STRATEGY = BacktestingEmaCross
    return _BT_STRATEGY


# --- the run ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two months, a 3 x 3 grid, no doc")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--optuna-trials", type=int, default=60)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    period, grid = (QUICK, QUICK_GRID) if args.quick else (FULL, GRID)
    repeat = 1 if args.quick else args.repeat
    n_optuna = 8 if args.quick else args.optuna_trials

    data = candles(period)
    combos = combinations(grid)
    n = len(combos)
    print(f"{len(data):,} hourly bars, {n} parameter sets", flush=True)
    problem = agreement(ours_sweep(data, grid), ours_trials(data, combos))
    if problem is not None:
        print(f"PROBLEM: the sweep and the optimize trials disagree: {problem}")
        return 1

    rows: list[tuple[str, float | None, str]] = []  # (what, seconds per trial, note)
    sweep_s = best_of(lambda: ours_sweep(data, grid), repeat) / n
    rows.append(("`cryptoai.sweep` (compiled sweep kernel)", sweep_s, "statistics only"))
    single = ours_single(data, combos)
    for a, b in zip(ours_trials(data, combos), single, strict=True):
        sa, sb = a.metrics["sharpe"], b.metrics["sharpe"]
        if not np.isclose(sa, sb, rtol=1e-9, equal_nan=True) or (
            a.metrics["n_trades"] != b.metrics["n_trades"]
        ):
            print(f"PROBLEM: compiled and single trials disagree at {a.params}")
            return 1
    trial_s = best_of(lambda: ours_trials(data, combos), repeat) / n
    rows.append(("optimize grid trials (parallel kernel)", trial_s, "all metrics + moments"))
    single_s = best_of(lambda: ours_single(data, combos), repeat) / n
    rows.append(("one backtest per trial (`TrialRunner.run`)", single_s, "all metrics + returns"))
    with tempfile.TemporaryDirectory(prefix="bench-optimize-") as tmp:
        folder = Path(tmp)
        data_file = folder / "candles.parquet"
        data.to_parquet(data_file)
        runs = iter(range(1_000))
        e2e_s = (
            best_of(
                lambda: ours_run_optimization(data_file, grid, folder / f"r{next(runs)}"), repeat
            )
            / n
        )
        rows.append(("`run_optimization`, grid, end to end", e2e_s, "+ statistics, reports"))
        if importlib.util.find_spec("vectorbt") is not None:
            vbt_s = best_of(lambda: vectorbt_sweep(data, combos), repeat) / n
            rows.append(("vectorbt, one portfolio column per set", vbt_s, "Sharpe per column"))
            full_s = best_of(lambda: vectorbt_sweep(data, combos, full=True), repeat) / n
            rows.append(
                ("vectorbt, the same, with returns and metrics", full_s, "as a trial keeps")
            )
        else:
            rows.append(("vectorbt, one portfolio column per set", None, "not installed"))
        if importlib.util.find_spec("backtesting") is not None:
            bt_s = best_of(lambda: backtesting_optimize(data, grid), 1) / n
            rows.append(("backtesting.py `Backtest.optimize`", bt_s, "one run (slow)"))
        else:
            rows.append(("backtesting.py `Backtest.optimize`", None, "not installed"))
        optuna_bookkeeping(5, folder, "warm-up")  # imports, first schema creation
        book_s = optuna_bookkeeping(n_optuna, folder, "timed")
        worker_s = optuna_worker(data, n_optuna, folder)
        optuna_s = optuna_end_to_end(data, n_optuna, folder)
        rows.append(("Optuna bookkeeping only (TPE + SQLite, empty objective)", book_s, ""))
        rows.append(("Optuna worker loop (`run_optuna_worker`)", worker_s, "TPE + SQLite + trial"))
        rows.append(("Optuna `run_optuna` end to end", optuna_s, "+ re-run, fANOVA"))

    text = report(
        rows,
        data,
        grid,
        n_optuna,
        repeat,
        (sweep_s, trial_s, single_s, book_s, worker_s, optuna_s),
        e2e_s,
    )
    print(text)
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    return 0


def report(rows, data, grid, n_optuna, repeat, times, e2e_s) -> str:
    import numba

    sweep_s, trial_s, single_s, book_s, worker_s, optuna_s = times
    peers = {what: sec for what, sec, _ in rows}
    vbt_s = peers.get("vectorbt, one portfolio column per set")
    vbt_full_s = peers.get("vectorbt, the same, with returns and metrics")
    bt_s = peers.get("backtesting.py `Backtest.optimize`")
    n = len(combinations(grid))
    fast, slow = grid["fast"], grid["slow"]

    def cell(seconds: float | None) -> tuple[str, ...]:
        if seconds is None:
            return "–", "–", "–", "–"
        vs = f"{vbt_s / seconds:.1f}x" if vbt_s else "–"
        return f"{1e3 * seconds:.3f}", f"{1 / seconds:,.0f}", f"{seconds / sweep_s:.1f}x", vs

    installed = {
        name: importlib.util.find_spec(name) is not None for name in ("vectorbt", "backtesting")
    }
    missing = [k for k, v in installed.items() if not v]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "# Optimization throughput",
        "",
        f"Summary: the optimizer's grid runs {1 / trial_s:,.0f} trials/s with every metric"
        + (f", {vbt_s / trial_s:.0f}x vectorbt" if vbt_s else "")
        + (f" and {bt_s / trial_s:,.0f}x backtesting.py" if bt_s else "")
        + " (goals 50x and 1,000x).",
        "",
        f"A grid of {n} `ema_cross` parameter sets (fast {fast[0]}..{fast[-1]}, {len(fast)}"
        f" values x slow {slow[0]}..{slow[-1]}, {len(slow)} values)"
        f" on {len(data):,} seeded synthetic BTC/USDT hourly bars"
        f" ({data.index[0]:%Y-%m-%d} to {data.index[-1]:%Y-%m-%d}), 10 bps fee + 2 bps"
        f" slippage, fill at the next open; best of {repeat} warm runs. Python"
        f" {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores"
        f" ({numba.config.NUMBA_NUM_THREADS} numba threads), load average {load:.1f}."
        " From `python benchmarks/bench_optimize.py`.",
        "",
        "| path | ms / trial | trials / s | cost vs `sweep` | speed vs vectorbt | note |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
        *(f"| {what} | {' | '.join(cell(s))} | {note} |" for what, s, note in rows),
        "",
        "The sweep and the optimize trials were checked to give the same Sharpe ratio, total"
        " return and trade count for every set before timing, and the grid's trials the"
        " same Sharpe ratio and trade count as one backtest each."
        " Speed vs vectorbt: its time per trial over the row's."
        f" Optuna rows: {n_optuna} trials"
        " each on a fresh SQLite file (WAL journal), TPE sampler seeded per trial.",
        "",
        "## Reading it",
        "",
        f"- **The optimizer's grid** runs {1 / trial_s:,.0f} trials a second"
        + (
            f", {vbt_full_s / trial_s:.0f}x vectorbt doing the same work (returns and the"
            f" headline metrics per column) and {vbt_s / trial_s:.0f}x vectorbt computing"
            " only a Sharpe ratio per column"
            if vbt_s and vbt_full_s
            else ""
        )
        + (f"; {bt_s / trial_s:,.0f}x backtesting.py" if bt_s else "")
        + f" (goals: 50x and 1,000x). Every trial keeps every `compute_metrics` figure and"
        " what the PBO and the deflated Sharpe need of its returns (moments and per-block"
        f" sums, accumulated by the kernel as it runs). It costs {trial_s / sweep_s:.1f}x a"
        " `sweep` set: the extra accumulations, and a dict of metrics and a trial object"
        " per set. One backtest per"
        f" trial costs {single_s / trial_s:.0f}x more ({1e3 * single_s:.2f} ms: a full"
        " `BacktestResult` with fills and trades, then pandas metrics); that is the path of"
        " event-driven strategies and of each Optuna trial.",
        f"- **The Optuna path's overhead** is {1e3 * (worker_s - single_s):.1f} ms a trial"
        f" (the worker loop minus the backtest), {(worker_s - single_s) / single_s:.1f}x the"
        f" backtest itself: Optuna's bookkeeping alone is {1e3 * book_s:.1f} ms a trial on"
        " SQLite, some 25 SQL statements through SQLAlchemy's ORM (trial creation, reading"
        " the study's trials for the sampler and the stopping rule, parameters, the user"
        " attribute, value and state), not disk time (a commit in WAL mode is under 0.1 ms)."
        f" `run_optuna` end to end costs {1e3 * optuna_s:.1f} ms a trial: the worker loop,"
        " then every trial re-run in the parent process for its returns (so that metrics"
        " never depend on which worker ran what), the study's set-up and the fANOVA"
        " importance. TPE's sampling cost grows with the number of finished trials, so long"
        " studies cost more per trial than this. For a space a grid can cover, the grid is"
        f" {optuna_s / e2e_s:.0f}x cheaper per trial; Optuna pays where the space is too"
        " large or continuous to enumerate, and when many machines share one study.",
        "- **End to end**, `run_optimization` adds what makes a sweep honest: the statistics"
        " (PBO over every half/half split of 16 blocks), the stable region, results.json,"
        " trials.csv, the report and four plots.",
    ]
    if vbt_s:
        lines.insert(
            lines.index("## Reading it") + 2,
            f"- **Statistics only**, `sweep` is {vbt_s / sweep_s:.0f}x vectorbt"
            + (f" and {bt_s / sweep_s:,.0f}x backtesting.py" if bt_s else "")
            + " (one Sharpe ratio, return, drawdown and trade count per set).",
        )
    if missing:
        names = " and ".join("backtesting.py" if m == "backtesting" else m for m in missing)
        lines += [
            "",
            f"{names} {'is' if len(missing) == 1 else 'are'} not installed here, so"
            f" {'its row is' if len(missing) == 1 else 'their rows are'} empty; install the"
            " peers (`pip install -r benchmarks/requirements-bench.txt`, or"
            " `python benchmarks/run.py`) and re-run to fill them in.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
