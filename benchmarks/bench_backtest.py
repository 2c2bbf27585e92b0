"""Backtest speed against vectorbt and backtesting.py, on the same data with the same fills.

    python benchmarks/bench_backtest.py [--sizes 10000 100000 1000000] [--quick]

Every engine runs the same strategy on the same candles (synthetic 1-minute BTC/USDT): go
long when EMA(100) crosses above EMA(400) at a bar's close, go flat when it crosses below;
fill at the next bar's open, 10 bps fee per side, no slippage, all equity committed at
entry. Each side runs it end to end the way its documentation shows (its own EMAs and
crossovers), and the two must produce the same closed trades and final equity before any
timing is reported:

* cryptoai vectorized engine (strategy ``signals``) vs vectorbt ``Portfolio.from_signals``;
* cryptoai event engine (strategy ``on_bar`` at every bar) vs backtesting.py (``next``);
* a 100-combination EMA sweep on 100k bars: cryptoai ``sweep`` vs vectorbt's 2-D portfolio.

Times are the best of N warm runs (numba compilation, cached on disk by both libraries, is
excluded). Results go to ``docs/performance.md`` and ``benchmarks/.cache/backtest.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py draws a progress bar per run

CASH = 10_000.0
FEE = 0.001  # 10 bps per side, every engine
FAST, SLOW = 100, 400  # minute bars: slow enough that 10 bps fees do not eat the equity
SIZES = (10_000, 100_000, 1_000_000)
SWEEP_BARS = 100_000
SWEEP_FAST = tuple(range(20, 220, 20))  # 10 values
SWEEP_SLOW = tuple(range(250, 750, 50))  # 10 values -> 100 combinations
BT_UNIT = 1e-10  # backtesting.py trades whole units: trade tiny fractions, as its docs advise
TOLERANCE = {"vectorbt": 1e-9, "backtesting.py": 1e-6}  # relative, on final equity
TARGETS = {"vectorized": 10.0, "event": 1.0, "sweep": 50.0}  # speed-up wanted vs the peer
OUT_MD = ROOT / "docs" / "performance.md"
OUT_JSON = ROOT / "benchmarks" / ".cache" / "backtest.json"


# --- data and decisions ----------------------------------------------------------------------


def make_data(n_bars: int, seed: int = 7) -> pd.DataFrame:
    """``n_bars`` synthetic 1-minute candles (the project's seeded generator)."""
    from cryptoai.data.sources.synthetic import synthetic_ohlcv

    start = pd.Timestamp("2016-01-01", tz="UTC")
    end = start + pd.Timedelta(minutes=n_bars)
    data = synthetic_ohlcv("BTC/USDT", "1m", start, end, seed=seed)
    return data[["open", "high", "low", "close", "volume"]]


def ema(close: np.ndarray | pd.Series, span: int) -> np.ndarray:
    """EMA as pandas and vectorbt define it (adjust=False, NaN for the first span - 1 bars)."""
    return pd.Series(close).ewm(span=span, adjust=False, min_periods=span).mean().to_numpy()


# --- one comparable outcome per engine run ---------------------------------------------------


@dataclass
class Outcome:
    final_equity: float
    trades: pd.DataFrame  # closed round trips: entry_time exit_time size entry_price exit_price


def _trades(entry_time, exit_time, size, entry_price, exit_price) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "entry_time": pd.DatetimeIndex(entry_time).tz_convert("UTC").as_unit("ns"),
            "exit_time": pd.DatetimeIndex(exit_time).tz_convert("UTC").as_unit("ns"),
            "size": np.asarray(size, dtype="float64"),
            "entry_price": np.asarray(entry_price, dtype="float64"),
            "exit_price": np.asarray(exit_price, dtype="float64"),
        }
    )
    return frame.sort_values("entry_time", ignore_index=True)


def agreement(ours: Outcome, peer: Outcome, rtol: float) -> dict[str, Any]:
    """Same round trips (times exact, prices and sizes within rtol) and same final equity."""
    a, b = ours.trades, peer.trades
    same_count = len(a) == len(b)
    times = same_count and bool(
        (a["entry_time"].to_numpy() == b["entry_time"].to_numpy()).all()
        and (a["exit_time"].to_numpy() == b["exit_time"].to_numpy()).all()
    )
    values = same_count and all(
        np.allclose(a[c].to_numpy(), b[c].to_numpy(), rtol=rtol, atol=0)
        for c in ("size", "entry_price", "exit_price")
    )
    equity_diff = abs(ours.final_equity / peer.final_equity - 1.0)
    return {
        "trades": len(a),
        "peer_trades": len(b),
        "same_trades": bool(times and values),
        "final_equity": ours.final_equity,
        "peer_final_equity": peer.final_equity,
        "final_equity_rel_diff": equity_diff,
        "ok": bool(times and values and equity_diff <= rtol),
    }


# --- peers, each used the way its documentation shows ------------------------------------


def vectorbt_run(data: pd.DataFrame, fast: int = FAST, slow: int = SLOW):
    """vectorbt: EMA crossovers as entries/exits, executed at the next bar's open, all cash in."""
    import vectorbt as vbt

    close = data["close"]
    ma = vbt.MA.run(close, [fast, slow], ewm=True, param_product=False)
    f, s = ma.ma.iloc[:, 0], ma.ma.iloc[:, 1]
    entries = f.vbt.crossed_above(s).vbt.fshift(1, fill_value=False)
    exits = f.vbt.crossed_below(s).vbt.fshift(1, fill_value=False)
    pf = vbt.Portfolio.from_signals(
        close, entries, exits, price=data["open"], fees=FEE, init_cash=CASH, freq="1min"
    )
    pf.trades.count()  # build the trade records (cryptoai builds its trades too)
    return pf


def vectorbt_outcome(pf) -> Outcome:
    rec = pf.trades.records_readable
    rec = rec[rec["Status"] == "Closed"]
    return Outcome(
        float(pf.final_value()),
        _trades(
            rec["Entry Timestamp"],
            rec["Exit Timestamp"],
            rec["Size"],
            rec["Avg Entry Price"],
            rec["Avg Exit Price"],
        ),
    )


def vectorbt_sweep(data: pd.DataFrame) -> np.ndarray:
    """All combinations as columns of one 2-D portfolio (vectorbt's way to sweep)."""
    import vectorbt as vbt

    close = data["close"]
    fast = vbt.MA.run(close, list(SWEEP_FAST), ewm=True).ma.to_numpy()
    slow = vbt.MA.run(close, list(SWEEP_SLOW), ewm=True).ma.to_numpy()
    n_slow = len(SWEEP_SLOW)
    f = pd.DataFrame(np.repeat(fast, n_slow, axis=1), index=close.index)  # fast-major order
    s = pd.DataFrame(np.tile(slow, (1, len(SWEEP_FAST))), index=close.index)
    entries = f.vbt.crossed_above(s).vbt.fshift(1, fill_value=False)
    exits = f.vbt.crossed_below(s).vbt.fshift(1, fill_value=False)
    pf = vbt.Portfolio.from_signals(
        close, entries, exits, price=data["open"], fees=FEE, init_cash=CASH, freq="1min"
    )
    return np.asarray(pf.final_value(), dtype="float64")


def backtesting_run(data: pd.DataFrame, fast: int = FAST, slow: int = SLOW):
    """backtesting.py: indicators in ``init``, ``crossover`` in ``next``, fills at the next open."""
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest, crossover

    class EmaCross(Strategy):
        def init(self) -> None:
            self.fast = self.I(ema, self.data.Close, fast)
            self.slow = self.I(ema, self.data.Close, slow)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                if not self.position:
                    self.buy(size=1 - 1e-12)  # all in (a fraction of equity must be < 1)
            elif crossover(self.slow, self.fast) and self.position:
                self.position.close()

    frame = data.rename(columns=str.capitalize)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = FractionalBacktest(
            frame,
            EmaCross,
            cash=CASH,
            commission=FEE,
            fractional_unit=BT_UNIT,
            finalize_trades=False,
        )
        return bt.run()


def backtesting_outcome(stats) -> Outcome:
    t = stats["_trades"]
    return Outcome(
        float(stats["Equity Final [$]"]),
        _trades(t["EntryTime"], t["ExitTime"], t["Size"], t["EntryPrice"], t["ExitPrice"]),
    )


# --- cryptoai --------------------------------------------------------------------------------


def _settings():
    from cryptoai.backtest.settings import ExecutionSettings

    return ExecutionSettings(
        initial_cash=CASH, fee_bps=FEE * 1e4, slippage_bps=0.0, size="all_in", close_at_end=False
    )


def ours_vectorized(data: pd.DataFrame, fast: int = FAST, slow: int = SLOW):
    """The strategy's vectorized signals through the vectorized engine."""
    from cryptoai.backtest.vectorized import run_vectorized
    from cryptoai.strategies.ema_cross import EmaCross

    target = EmaCross(fast=fast, slow=slow).signals(data)
    return run_vectorized(data, target, _settings(), validate=False)


def ours_event(data: pd.DataFrame, fast: int = FAST, slow: int = SLOW):
    """The same strategy's ``on_bar`` called at every bar by the event engine."""
    from cryptoai.backtest.event import run_event
    from cryptoai.strategies.ema_cross import EmaCross

    return run_event(
        data, EmaCross(fast=fast, slow=slow), _settings(), validate=False, progress=False
    )


def ours_outcome(result) -> Outcome:
    t = result.trades
    return Outcome(
        float(result.equity.iloc[-1]),
        _trades(t["entry_time"], t["exit_time"], t["size"], t["entry_price"], t["exit_price"]),
    )


def ours_sweep(data: pd.DataFrame) -> np.ndarray:
    from cryptoai.backtest.sweep import sweep
    from cryptoai.strategies.ema_cross import EmaCross

    grid = {"fast": list(SWEEP_FAST), "slow": list(SWEEP_SLOW)}
    table = sweep(data, EmaCross, grid, _settings(), validate=False)
    return table["final_equity"].to_numpy(dtype="float64")


# --- timing ----------------------------------------------------------------------------------


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Fastest of ``repeats`` calls (the least disturbed by the machine) and the last value."""
    best, value = float("inf"), None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


@dataclass
class Report:
    machine: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def compare(
    report: Report,
    kind: str,
    n_bars: int,
    ours: tuple[str, Callable[[], Any], Callable[[Any], Outcome]],
    peer: tuple[str, Callable[[], Any], Callable[[Any], Outcome]],
    repeats: int,
    peer_repeats: int,
) -> None:
    """Time both sides, check they agree, record one row."""
    row: dict[str, Any] = {"kind": kind, "bars": n_bars, "engine": ours[0], "peer": peer[0]}
    try:
        ours[1]()  # warm-up: compile (or load the compiled cache)
        peer[1]()
        row["seconds"], ours_value = best_of(ours[1], repeats)
        row["peer_seconds"], peer_value = best_of(peer[1], peer_repeats)
        row["speedup"] = row["peer_seconds"] / row["seconds"]
        row.update(agreement(ours[2](ours_value), peer[2](peer_value), TOLERANCE[peer[0]]))
    except Exception as exc:  # report and go on: one missing engine must not hide the rest
        row["error"] = f"{type(exc).__name__}: {exc}"
        report.problems.append(f"{kind} on {n_bars:,} bars: {row['error']}")
    else:
        if not row["ok"]:
            report.problems.append(f"{kind} on {n_bars:,} bars: results differ from {peer[0]}")
    report.rows.append(row)
    print(_row_line(row), flush=True)


def compare_sweep(report: Report, n_bars: int, repeats: int) -> None:
    data = make_data(n_bars)
    n_combos = len(SWEEP_FAST) * len(SWEEP_SLOW)
    row: dict[str, Any] = {"kind": "sweep", "bars": n_bars, "engine": "sweep", "peer": "vectorbt"}
    row["combinations"] = n_combos
    try:
        ours_sweep(data)
        vectorbt_sweep(data)
        row["seconds"], ours_eq = best_of(lambda: ours_sweep(data), repeats)
        row["peer_seconds"], peer_eq = best_of(lambda: vectorbt_sweep(data), repeats)
        row["speedup"] = row["peer_seconds"] / row["seconds"]
        diff = float(np.max(np.abs(ours_eq / peer_eq - 1.0)))
        row.update(final_equity_rel_diff=diff, ok=bool(diff <= TOLERANCE["vectorbt"]))
        row["trades"] = row["peer_trades"] = None
    except Exception as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
        report.problems.append(f"sweep on {n_bars:,} bars: {row['error']}")
    else:
        if not row["ok"]:
            report.problems.append("sweep: final equities differ from vectorbt")
    report.rows.append(row)
    print(_row_line(row), flush=True)


def _row_line(row: dict[str, Any]) -> str:
    head = f"{row['kind']:>10} {row['bars']:>9,} bars  {row['engine']} vs {row['peer']}: "
    if "error" in row:
        return head + "ERROR " + row["error"]
    return head + (
        f"{row['seconds']:.4f}s vs {row['peer_seconds']:.4f}s = {row['speedup']:.1f}x,"
        f" agree={row['ok']} (equity rel diff {row['final_equity_rel_diff']:.1e})"
    )


# --- machine and output ----------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the numbers were measured on (they only mean something relative to each other)."""
    try:
        import llvmlite.binding as llvm

        cpu = llvm.get_host_cpu_name()
    except Exception:
        cpu = platform.processor() or "unknown"
    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        memory_gb = float("nan")
    packages = {}
    for name in ("numpy", "pandas", "numba", "vectorbt", "backtesting"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = "not installed"
    import numba

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "memory_gb": round(memory_gb, 1),
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": platform.python_version(),
        "packages": packages,
        "date": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d"),
    }


def render(report: Report) -> str:
    m = report.machine
    pk = m["packages"]
    lines = [
        "# Performance",
        "",
        "Speed of the backtest engines against the peer libraries on the same data, with the",
        "same decisions and the same fills; every comparison first checks that both sides",
        "produce the same closed trades and final equity. Regenerate with `make bench`",
        "(or `python benchmarks/run.py`); method and caveats in `benchmarks/README.md`.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} logical cores (numba threads: {m['numba_threads']}),"
        f" {m['memory_gb']} GiB RAM; {m['os']}",
        f"- Python {m['python']}; numpy {pk['numpy']}, pandas {pk['pandas']}, numba {pk['numba']};"
        f" vectorbt {pk['vectorbt']}, backtesting.py {pk['backtesting']}",
        f"- Measured {m['date']}. Times are the best of several warm runs (compilation excluded).",
        "",
        "## Setup",
        "",
        f"- Data: synthetic BTC/USDT 1-minute candles (seeded), {', '.join(f'{n:,}' for n in _sizes(report))} bars.",
        f"- Strategy: long when EMA({FAST}) crosses above EMA({SLOW}) at a bar's close, flat when"
        " it crosses below; each side computes its own EMAs and crossovers (timed end to end).",
        f"- Fills at the next bar's open; fee {FEE * 1e4:g} bps per side; no slippage; all equity"
        f" committed at entry; initial cash {CASH:,.0f}; open positions marked to market at the end.",
        f"- Sweep: {len(SWEEP_FAST)} fast x {len(SWEEP_SLOW)} slow EMA spans"
        f" ({len(SWEEP_FAST) * len(SWEEP_SLOW)} combinations) on {SWEEP_BARS:,} bars; compared on the"
        " final equity of every combination.",
        "",
        "## Results",
        "",
        "Speed-up = peer time / cryptoai time (higher is better for cryptoai).",
        "",
        "| comparison | bars | cryptoai | peer | speed-up | target | agree | trades | equity rel. diff |",
        "|---|---:|---:|---:|---:|---:|:---:|---:|---:|",
    ]
    for r in report.rows:
        what = {
            "vectorized": "vectorized engine vs vectorbt",
            "event": "event engine vs backtesting.py",
            "sweep": "100-combination sweep vs vectorbt",
        }[r["kind"]]
        target = f">= {TARGETS[r['kind']]:g}x"
        if "error" in r:
            lines.append(f"| {what} | {r['bars']:,} | error | | | {target} | | | |")
            continue
        trades = "" if r.get("trades") is None else f"{r['trades']:,}"
        lines.append(
            f"| {what} | {r['bars']:,} | {_secs(r['seconds'])} | {_secs(r['peer_seconds'])} |"
            f" **{r['speedup']:.1f}x** | {target} | {'yes' if r['ok'] else 'NO'} | {trades} |"
            f" {r['final_equity_rel_diff']:.1e} |"
        )
    lines += ["", "Per bar:", ""]
    for r in report.rows:
        if "error" in r:
            continue
        if r["kind"] == "sweep":
            combos = r["combinations"]
            lines.append(
                f"- sweep: {combos / r['seconds']:,.0f} combinations/s vs"
                f" {combos / r['peer_seconds']:,.0f} combinations/s ({r['bars']:,} bars each)"
            )
        else:
            per_ours = r["seconds"] / r["bars"] * 1e9
            per_peer = r["peer_seconds"] / r["bars"] * 1e9
            lines.append(
                f"- {r['kind']} on {r['bars']:,} bars: {per_ours:,.0f} ns/bar vs {per_peer:,.0f} ns/bar"
            )
    if report.problems:
        lines += ["", "## Problems in this run", ""] + [f"- {p}" for p in report.problems]
    others = sorted(p for p in (ROOT / "docs").glob("performance_*.md"))
    if others:
        lines += ["", "## Other benchmarks", ""]
        lines += [f"- [{p.stem.replace('_', ' ')}]({p.name})" for p in others]
    lines.append("")
    return "\n".join(lines)


def _sizes(report: Report) -> list[int]:
    return sorted({r["bars"] for r in report.rows if r["kind"] != "sweep"})


def _secs(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--sweep-bars", type=int, default=SWEEP_BARS)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (smoke)")
    parser.add_argument("--out", type=Path, default=OUT_MD)
    args = parser.parse_args(argv)
    sizes = [2_000, 10_000] if args.quick else args.sizes
    sweep_bars = 10_000 if args.quick else args.sweep_bars

    report = Report(machine())
    for n in sizes:
        data = make_data(n)
        repeats = 1 if args.quick else (5 if n <= 100_000 else 3)
        compare(
            report,
            "vectorized",
            n,
            ("vectorized", lambda d=data: ours_vectorized(d), ours_outcome),
            ("vectorbt", lambda d=data: vectorbt_run(d), vectorbt_outcome),
            repeats,
            repeats,
        )
        compare(
            report,
            "event",
            n,
            ("event", lambda d=data: ours_event(d), ours_outcome),
            ("backtesting.py", lambda d=data: backtesting_run(d), backtesting_outcome),
            repeats,
            1 if n >= 1_000_000 else min(repeats, 3),
        )
    compare_sweep(report, sweep_bars, 1 if args.quick else 3)

    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(
        json.dumps({"machine": report.machine, "rows": report.rows}, indent=2, default=str)
    )
    args.out.write_text(render(report))
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    for problem in report.problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
