"""Feature speed against TA-Lib (and the pure-pandas `ta` library) on the same bars.

    python benchmarks/bench_features.py [--bars 1000000] [--repeat 5] [--out docs/performance_features.md]

Two comparisons, both best-of-N wall time on one core, compilation excluded:

* indicators: SMA/EMA/RSI/MACD/Bollinger/ATR/OBV as in the default spec, through
  ``build_features`` (frame assembly included) vs the bare TA-Lib calls;
* default set: all of ``configs/features/default.yaml`` vs the same columns computed with
  TA-Lib functions (ROCR, LN, STDDEV, SMA...) and numpy for the ratios.

The target is a ratio of at most 3. Writes a Markdown section for docs/performance.md. Needs TA-Lib (``pip install ta-lib``,
a binary wheel); it is a benchmark-only dependency.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from cryptoai.features.engineering import build_features  # noqa: E402
from cryptoai.features.spec import FeatureSpec, load_feature_spec  # noqa: E402

INDICATORS = FeatureSpec.model_validate(
    {
        "features": [
            {"name": "sma", "params": {"window": 10}},
            {"name": "sma", "params": {"window": 20}},
            {"name": "sma", "params": {"window": 50}},
            {"name": "ema", "params": {"window": 12}},
            {"name": "ema", "params": {"window": 26}},
            {"name": "rsi", "params": {"window": 14}},
            {"name": "macd", "params": {"fast": 12, "slow": 26, "signal": 9}},
            {"name": "bollinger", "params": {"window": 20, "dev": 2}},
            {"name": "atr", "params": {"window": 14}},
            {"name": "obv"},
        ]
    }
)


def random_walk(n: int, seed: int = 7) -> pd.DataFrame:
    """Seeded one-minute OHLCV bars with realistic ranges."""
    rng = np.random.default_rng(seed)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = np.abs(rng.normal(0, 0.0007, (2, n)))
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    volume = rng.lognormal(3, 1, n)
    index = pd.date_range("2020-01-01", periods=n, freq="1min", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def best_of(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Best wall time of each function, run in turn ``repeat`` times so that both sides of a
    comparison see the same machine load."""
    for fn in fns:
        fn()  # warm-up: JIT compilation and caches
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def talib_indicators(df: pd.DataFrame) -> list[np.ndarray]:
    import talib

    o = {c: df[c].to_numpy() for c in ("high", "low", "close", "volume")}
    c = o["close"]
    out = [talib.SMA(c, w) for w in (10, 20, 50)] + [talib.EMA(c, w) for w in (12, 26)]
    out += [talib.RSI(c, 14), *talib.MACD(c, 12, 26, 9), *talib.BBANDS(c, 20, 2, 2)]
    out += [talib.ATR(o["high"], o["low"], c, 14), talib.OBV(c, o["volume"])]
    return out


def talib_default(df: pd.DataFrame) -> list[np.ndarray]:
    """The columns of the default spec, each with the nearest TA-Lib primitive."""
    import talib

    c, h, lo, v = (df[k].to_numpy() for k in ("close", "high", "low", "volume"))
    logret = {p: talib.LN(talib.ROCR(c, p)) for p in (1, 4, 24)}
    out = list(logret.values()) + [talib.ROCR(c, 1) - 1]
    out += [c / talib.SMA(c, w) - 1 for w in (10, 20, 50)]
    out += [c / talib.EMA(c, w) - 1 for w in (12, 26)]
    out += [talib.RSI(c, 14)] + [x / c for x in talib.MACD(c, 12, 26, 9)]
    up, mid, low = talib.BBANDS(c, 20, 2, 2)
    out += [(c - low) / (up - low), (up - low) / mid * 100]
    out += [talib.ATR(h, lo, c, 14) / c, talib.OBV(c, v)]
    vols = {w: talib.STDDEV(logret[1], w) for w in (10, 20, 50)}
    out += [vols[20], vols[50]]
    out += [talib.LN(talib.ROCR(c, w)) / (vols[w] * np.sqrt(w)) for w in (10, 50)]
    out += [(v - talib.SMA(v, 20)) / talib.STDDEV(v, 20)]
    out += [talib.SMA(np.abs(talib.ROCR(c, 1) - 1) / (c * v), 20)]
    return out


def ta_indicators(df: pd.DataFrame, atr_bars: int) -> tuple[float, float]:
    """Seconds for the `ta` library: vectorized indicators on all bars, ATR (a Python loop)
    timed on ``atr_bars`` bars and scaled linearly."""
    import ta

    c, v = df["close"], df["volume"]

    def vectorized() -> None:
        for w in (10, 20, 50):
            ta.trend.sma_indicator(c, w)
        for w in (12, 26):
            ta.trend.ema_indicator(c, w)
        ta.momentum.rsi(c, 14)
        m = ta.trend.MACD(c, 26, 12, 9)
        m.macd(), m.macd_signal(), m.macd_diff()
        b = ta.volatility.BollingerBands(c, 20, 2)
        b.bollinger_mavg(), b.bollinger_hband(), b.bollinger_lband()
        ta.volume.on_balance_volume(c, v)

    small = df.iloc[:atr_bars]
    start = time.perf_counter()
    ta.volatility.average_true_range(small["high"], small["low"], small["close"], 14)
    atr_scaled = (time.perf_counter() - start) * len(df) / atr_bars
    return best_of([vectorized], 1)[0], atr_scaled


def run(bars: int, repeat: int) -> str:
    df = random_walk(bars)
    default = load_feature_spec(ROOT / "configs/features/default.yaml")
    rows = []
    ours_ind, talib_ind = best_of(
        [lambda: build_features(df, INDICATORS), lambda: talib_indicators(df)], repeat
    )
    ours_all, talib_all = best_of(
        [lambda: build_features(df, default), lambda: talib_default(df)], repeat
    )
    ta_vec, ta_atr = ta_indicators(df, atr_bars=min(bars, 20_000))
    rows.append(("indicators (10 specs, 16 columns)", ours_ind, talib_ind))
    rows.append((f"default set ({len(default.columns())} columns)", ours_all, talib_all))
    import numba
    import talib

    lines = [
        "## Features",
        "",
        f"`benchmarks/bench_features.py`: {bars:,} one-minute bars, best of {repeat} runs taken "
        f"in turn with TA-Lib, one thread ({cpu_name()}; Python {platform.python_version()}, "
        f"pandas {pd.__version__}, numba {numba.__version__}, TA-Lib {talib.__version__}). "
        "Ratio = cryptoai / TA-Lib; the target is <= 3.",
        "",
        "| workload | cryptoai (ms) | TA-Lib (ms) | ratio |",
        "|---|---:|---:|---:|",
    ]
    for name, ours, ref in rows:
        lines.append(f"| {name} | {ours * 1e3:.1f} | {ref * 1e3:.1f} | {ours / ref:.2f} |")
    lines += [
        "",
        f"The `ta` library itself needs {ta_vec * 1e3:.0f} ms for the vectorized indicators and "
        f"about {ta_atr:.1f} s for ATR (a Python loop, timed on 20,000 bars and scaled); "
        "cryptoai reproduces its formulas with compiled kernels, tested equal after warm-up.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "docs/performance_features.md")
    args = parser.parse_args(argv)
    try:
        import talib  # noqa: F401
    except ImportError:
        print("TA-Lib is missing: pip install ta-lib (a binary wheel), then re-run")
        return 1
    text = run(args.bars, args.repeat)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
