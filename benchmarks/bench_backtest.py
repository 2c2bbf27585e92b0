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
# Speed-up wanted vs the peer, and the smallest size it applies to.
TARGETS = {"vectorized": (10.0, 1_000_000), "event": (1.0, 0), "sweep": (50.0, 0)}
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


def _utc(times) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(times)
    return (idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")).as_unit("ns")


def naive(data: pd.DataFrame) -> pd.DataFrame:
    """The same bars on a tz-naive UTC index: vectorbt turns a tz-aware index into Python
    objects in its shape checks (seconds per million bars), so it gets the fast form."""
    out = data.copy()
    out.index = out.index.tz_localize(None)
    return out


def _trades(entry_time, exit_time, size, entry_price, exit_price) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "entry_time": _utc(entry_time),
            "exit_time": _utc(exit_time),
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
    pf.final_value()
    return pf


def vectorbt_sweep_outcome(pf) -> tuple[np.ndarray, np.ndarray]:
    """Final equity and closed round trips of every combination."""
    closed = pf.trades.closed.count()
    return np.asarray(pf.final_value(), dtype="float64"), np.asarray(closed, dtype="int64")


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
    from cryptoai.backtest import run_vectorized
    from cryptoai.strategies.ema_cross import EmaCross

    target = EmaCross(fast=fast, slow=slow).signals(data)
    return run_vectorized(data, target, _settings(), validate=False)


def ours_event(data: pd.DataFrame, fast: int = FAST, slow: int = SLOW):
    """The same strategy's ``on_bar`` called at every bar by the event engine."""
    from cryptoai.backtest import run_event
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


def ours_sweep(data: pd.DataFrame) -> pd.DataFrame:
    from cryptoai.backtest import sweep
    from cryptoai.strategies.ema_cross import EmaCross

    grid = {"fast": list(SWEEP_FAST), "slow": list(SWEEP_SLOW)}
    return sweep(data, EmaCross, grid, _settings(), validate=False)


def ours_sweep_outcome(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return table["final_equity"].to_numpy(dtype="float64"), table["n_trades"].to_numpy("int64")


# --- timing ----------------------------------------------------------------------------------


def best_of_pair(
    ours: Callable[[], Any], peer: Callable[[], Any], repeats: int, peer_repeats: int
) -> tuple[float, Any, float, Any]:
    """Fastest of several calls of each side, interleaved so that both sides meet the same
    background load; returns (ours seconds, ours value, peer seconds, peer value)."""
    best = [float("inf"), float("inf")]
    values: list[Any] = [None, None]
    for round_ in range(max(repeats, peer_repeats)):
        for side, (fn, n) in enumerate(((ours, repeats), (peer, peer_repeats))):
            if round_ >= n:
                continue
            gc.collect()
            start = time.perf_counter()
            values[side] = fn()
            best[side] = min(best[side], time.perf_counter() - start)
    return best[0], values[0], best[1], values[1]


def warm_up() -> None:
    """Compile (or load from the disk cache) every engine's numba code before timing."""
    data = make_data(5_000)
    plain = naive(data)
    fast, slow = 20, 80
    ours_vectorized(data, fast, slow)
    ours_event(data, fast, slow)
    vectorbt_run(plain, fast, slow)
    backtesting_run(plain, fast, slow)
    ours_sweep(data)
    vectorbt_sweep(plain)


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
        row["seconds"], ours_value, row["peer_seconds"], peer_value = best_of_pair(
            ours[1], peer[1], repeats, peer_repeats
        )
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


def compare_sweep(report: Report, n_bars: int, repeats: int, peer_repeats: int) -> None:
    data = make_data(n_bars)
    plain = naive(data)
    n_combos = len(SWEEP_FAST) * len(SWEEP_SLOW)
    row: dict[str, Any] = {"kind": "sweep", "bars": n_bars, "engine": "sweep", "peer": "vectorbt"}
    row["combinations"] = n_combos
    try:
        row["seconds"], table, row["peer_seconds"], pf = best_of_pair(
            lambda: ours_sweep(data), lambda: vectorbt_sweep(plain), repeats, peer_repeats
        )
        row["speedup"] = row["peer_seconds"] / row["seconds"]
        ours_eq, ours_n = ours_sweep_outcome(table)
        peer_eq, peer_n = vectorbt_sweep_outcome(pf)
        diff = float(np.max(np.abs(ours_eq / peer_eq - 1.0)))
        same = bool((ours_n == peer_n).all())
        row.update(final_equity_rel_diff=diff, same_trades=same)
        row.update(trades=int(ours_n.sum()), peer_trades=int(peer_n.sum()))
        row["ok"] = same and diff <= TOLERANCE["vectorbt"]
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
        "os": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "packages": packages,
        "date": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d"),
        "load_start": load_average(),
    }


def load_average() -> float | None:
    """1-minute load average (other work on the machine slows every engine alike)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


_WHAT = {
    "vectorized": "vectorized engine vs vectorbt",
    "event": "event engine vs backtesting.py",
    "sweep": "100-combination sweep vs vectorbt",
}


def render(report: Report) -> str:
    m, pk = report.machine, report.machine["packages"]
    sweep_bars = [r["bars"] for r in report.rows if r["kind"] == "sweep"]
    lines = [
        "# Performance",
        "",
        "Speed of the backtest engines against the peer libraries, on the same data with the same",
        "strategy, fills and fees. Every comparison first checks that both sides produce the same",
        "closed trades and final equity; only then is the time reported. Regenerate with",
        "`make bench` (or `python benchmarks/run.py`); the method is in `benchmarks/README.md`.",
        "",
        *_summary(report),
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} logical cores (numba threads: {m['numba_threads']}),"
        f" {m['memory_gb']} GiB RAM; {m['os']}.",
        f"- Python {m['python']}; numpy {pk['numpy']}, pandas {pk['pandas']}, numba {pk['numba']};"
        f" vectorbt {pk['vectorbt']}, backtesting.py {pk['backtesting']}.",
        f"- Measured {m['date']}; 1-minute load average {m.get('load_start')} at the start and"
        f" {m.get('load_end')} at the end (other work on the machine slows both sides alike;"
        " ratios are steadier than absolute times).",
        "- Quick mode: one run each, a smoke test of the harness, not a measurement."
        if m.get("quick")
        else "- Times: best of several warm runs, the two sides interleaved (7 each for the vectorized"
        " comparison; 5 and 3 for the event engine and backtesting.py, 3 and 1 on 1M bars; 5 and"
        " 3 for the sweep). Numba code is compiled (or loaded from its disk cache) before timing.",
        "",
        "## Setup",
        "",
        "- Data: seeded synthetic BTC/USDT 1-minute candles"
        f" ({', '.join(f'{n:,}' for n in _sizes(report))} bars).",
        f"- Strategy: go long when EMA({FAST}) crosses above EMA({SLOW}) at a bar's close, go flat"
        " when it crosses below. Each side computes its own EMAs and crossovers, timed end to end"
        " (cryptoai: `EmaCross.signals` + `run_vectorized`, or `run_event` calling `on_bar`).",
        f"- Fills at the next bar's open; fee {FEE * 1e4:g} bps per side; no slippage; all equity"
        f" committed at entry; initial cash {CASH:,.0f}; an open position is marked to market at"
        " the end.",
        f"- Sweep: fast spans {list(SWEEP_FAST)} x slow spans {list(SWEEP_SLOW)}"
        f" ({len(SWEEP_FAST) * len(SWEEP_SLOW)} combinations) on"
        f" {', '.join(f'{n:,}' for n in sweep_bars) or '-'} bars; cryptoai's sweep runs the"
        f" combinations in parallel on {m['numba_threads']} numba threads, vectorbt simulates its"
        " columns one after another.",
        "",
        "## Results",
        "",
        "Speed-up = peer time / cryptoai time.",
        "",
        "| comparison | bars | cryptoai | peer | speed-up | target | met | same trades and equity"
        " | round trips | equity rel. diff |",
        "|---|---:|---:|---:|---:|---:|:---:|:---:|---:|---:|",
    ]
    for r in report.rows:
        want, from_bars = TARGETS[r["kind"]]
        target = f"{want:g}x" if r["bars"] >= from_bars else "-"
        if "error" in r:
            lines.append(f"| {_WHAT[r['kind']]} | {r['bars']:,} | error | | | {target} | | | | |")
            continue
        met = "-" if target == "-" else ("yes" if r["speedup"] >= want else "no")
        lines.append(
            f"| {_WHAT[r['kind']]} | {r['bars']:,} | {_secs(r['seconds'])} |"
            f" {_secs(r['peer_seconds'])} | **{r['speedup']:.1f}x** | {target} | {met} |"
            f" {'yes' if r['ok'] else 'NO'} | {r['trades']:,} | {r['final_equity_rel_diff']:.1e} |"
        )
    lines += ["", "Throughput:", ""]
    for r in report.rows:
        if "error" in r:
            continue
        if r["kind"] == "sweep":
            combos = r["combinations"]
            lines.append(
                f"- sweep on {r['bars']:,} bars: {combos / r['seconds']:,.1f} combinations/s"
                f" vs {combos / r['peer_seconds']:,.1f} combinations/s"
            )
        else:
            ours = r["seconds"] / r["bars"] * 1e9
            peer = r["peer_seconds"] / r["bars"] * 1e9
            lines.append(
                f"- {_WHAT[r['kind']]} on {r['bars']:,} bars: {ours:,.0f} ns/bar vs {peer:,.0f} ns/bar"
            )
    if report.problems:
        lines += ["", "## Problems in this run", ""] + [f"- {p}" for p in report.problems]
    others = sorted((ROOT / "docs").glob("performance_*.md"))
    if others:
        lines += ["", "## Other benchmarks", ""]
        lines += [_other(p) for p in others]
    lines.append("")
    return "\n".join(lines)


def _other(page: Path) -> str:
    """A link to another benchmark page, with its ``Summary:`` line when it has one."""
    link = f"- [{page.stem.replace('_', ' ')}]({page.name})"
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("Summary: "):
            return f"{link}: {line[len('Summary: ') :]}"
    return link


def _summary(report: Report) -> list[str]:
    """One line per target: the measured speed-up and whether it is met."""
    lines = ["## Summary", ""]
    for r in report.rows:
        want, from_bars = TARGETS[r["kind"]]
        if r["bars"] < from_bars or (r["kind"] == "event" and r["bars"] != max(_sizes(report))):
            continue
        if "error" in r:
            lines.append(f"- {_WHAT[r['kind']]}, {r['bars']:,} bars: not measured ({r['error']})")
            continue
        verdict = "met" if r["speedup"] >= want and r["ok"] else "not met"
        lines.append(
            f"- {_WHAT[r['kind']]}, {r['bars']:,} bars: **{r['speedup']:.1f}x** faster"
            f" (target {want:g}x: {verdict}); same trades and final equity:"
            f" {'yes' if r['ok'] else 'NO'}."
        )
    return [*lines, ""]


def _sizes(report: Report) -> list[int]:
    return sorted({r["bars"] for r in report.rows if r["kind"] != "sweep"})


def _secs(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--sweep-bars", type=int, default=SWEEP_BARS)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (smoke)")
    parser.add_argument("--out", type=Path, default=None, help=f"default {OUT_MD.name}")
    args = parser.parse_args(argv)
    if args.out is None:  # a smoke run must not overwrite the published results
        args.out = OUT_JSON.with_name("performance_quick.md") if args.quick else OUT_MD
    sizes = [2_000, 10_000] if args.quick else args.sizes
    sweep_bars = 10_000 if args.quick else args.sweep_bars

    report = Report(machine())
    report.machine["quick"] = args.quick
    warm_up()
    for n in sizes:
        data = make_data(n)
        plain = naive(data)
        big = n >= 1_000_000
        compare(
            report,
            "vectorized",
            n,
            ("vectorized", lambda d=data: ours_vectorized(d), ours_outcome),
            ("vectorbt", lambda d=plain: vectorbt_run(d), vectorbt_outcome),
            1 if args.quick else 7,
            1 if args.quick else 7,
        )
        compare(
            report,
            "event",
            n,
            ("event", lambda d=data: ours_event(d), ours_outcome),
            ("backtesting.py", lambda d=plain: backtesting_run(d), backtesting_outcome),
            1 if args.quick else (3 if big else 5),
            1 if args.quick or big else 3,
        )
    compare_sweep(report, sweep_bars, 1 if args.quick else 5, 1 if args.quick else 3)
    report.machine["load_end"] = load_average()

    raw = OUT_JSON.with_name("backtest_quick.json") if args.quick else OUT_JSON
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(
        json.dumps({"machine": report.machine, "rows": report.rows}, indent=2, default=str)
    )
    args.out.write_text(render(report))
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    for problem in report.problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
