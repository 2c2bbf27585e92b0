#!/usr/bin/env python
"""What validation costs on the default backtest path, on 1,000,000 one-minute bars.

Times (the best of repeated runs after a warm-up, as ``timeit`` advises: on a shared machine
the other runs measure the neighbours):
- ``check_ohlcv`` (the contract check every default ``run_vectorized`` call makes): the
  one-pass vectorized check, and the full survey plus pandera schema it replaced;
- ``run_vectorized`` with validation on (the default) and off.

vectorbt is timed too when it is installed (``pip install vectorbt``); otherwise it is left
out and the table says so. Writes the numbers to stdout and to docs/performance_validation.md.

    python benchmarks/bench_validation.py [--bars 1000000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "docs" / "performance_validation.md"


def candles(n: int, seed: int = 0) -> pd.DataFrame:
    """A contract-shaped random walk of ``n`` one-minute bars."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    idx = pd.date_range("2020-01-01", periods=n, freq="1min", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * (1 + rng.random(n) * 1e-3),
            "low": np.minimum(open_, close) * (1 - rng.random(n) * 1e-3),
            "close": close,
            "volume": rng.gamma(2.0, 5.0, n),
        },
        index=idx.as_unit("ns"),
    )


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``fn`` in milliseconds (one warm-up call first)."""
    fn()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return 1e3 * min(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    from cryptoai.backtest import run_vectorized
    from cryptoai.data.validate import check_ohlcv, ohlcv_schema, validate_ohlcv

    data = candles(args.bars)
    fast = data["close"].rolling(20).mean()
    slow = data["close"].rolling(100).mean()
    target = pd.Series(np.where(fast > slow, 1.0, 0.0), index=data.index)

    def old_check() -> None:  # what check_ohlcv did before: full survey, then pandera
        assert validate_ohlcv(data).ok
        ohlcv_schema().validate(data)

    rows = [
        ("check_ohlcv (one vectorized pass)", timed(lambda: check_ohlcv(data), args.repeat)),
        ("full survey + pandera (the old check_ohlcv)", timed(old_check, max(3, args.repeat // 3))),
        ("run_vectorized, validation on (default)", timed(
            lambda: run_vectorized(data, target), args.repeat)),
        ("run_vectorized, validation off", timed(
            lambda: run_vectorized(data, target, validate=False), args.repeat)),
    ]  # fmt: skip
    if importlib.util.find_spec("vectorbt") is not None:
        import vectorbt as vbt

        entries, exits = target.diff() > 0, target.diff() < 0

        def vbt_run() -> None:
            vbt.Portfolio.from_signals(data["close"], entries, exits, fees=0.001, freq="1min")

        rows.append(("vectorbt Portfolio.from_signals", timed(vbt_run, args.repeat)))
        vbt_note = ""
    else:
        vbt_note = (
            "vectorbt is not installed here, so it is not in the table; install it"
            " (`pip install vectorbt`) and re-run to add the row."
        )
    on = rows[2][1]
    off = rows[3][1]
    lines = [
        "# Validation on the default path",
        "",
        f"{args.bars:,} one-minute bars, best of {args.repeat} runs"
        f" (Python {platform.python_version()}, {platform.machine()}),"
        " from `python benchmarks/bench_validation.py`.",
        "",
        "| what | ms |",
        "| --- | ---: |",
        *(f"| {name} | {ms:.1f} |" for name, ms in rows),
        "",
        f"Validation adds {on - off:.1f} ms ({100 * (on - off) / on:.0f}%) to a default"
        " `run_vectorized` call. The contract check is one pass over the arrays; the survey"
        " (`validate_ohlcv`) and the pandera schema run only when that pass fails, to say"
        " what is wrong and where.",
    ]
    if vbt_note:
        lines += ["", vbt_note]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
