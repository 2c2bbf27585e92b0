"""Small helpers shared by tests (importable as ``helpers``: pytest puts tests/ on the path)."""

import functools
import hashlib
from pathlib import Path

import pandas as pd


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (lock files aside): equal snapshots, untouched store."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


OHLCV = ["open", "high", "low", "close", "volume"]


@functools.lru_cache(maxsize=64)
def _synthetic(n: int, seed: int, timeframe: str, symbol: str, start: str) -> pd.DataFrame:
    from cryptoai.data.sources.synthetic import synthetic_ohlcv
    from cryptoai.data.timeframes import timeframe_to_timedelta

    begin = pd.Timestamp(start, tz="UTC")
    end = begin + max(n, 1) * timeframe_to_timedelta(timeframe)
    frame = synthetic_ohlcv(symbol, timeframe, begin, end, seed=seed).iloc[:n]
    if len(frame) != n:
        raise AssertionError(f"synthetic source gave {len(frame)} bars, wanted {n}")
    return frame


def ohlcv_frame(
    n: int = 500,
    seed: int = 0,
    timeframe: str = "1h",
    *,
    symbol: str = "BTC/USDT",
    start: str = "2024-01-01",
    extra: bool = False,
) -> pd.DataFrame:
    """``n`` bars from the synthetic source (realistic: fat tails, volatility regimes, wicks),
    the one candle generator the tests share. Columns ``open high low close volume``; with
    ``extra``, also the source's ``quote_volume``, ``trades`` and taker-buy columns. A fresh
    copy each call, so a test may change it."""
    frame = _synthetic(int(n), int(seed), timeframe, symbol, str(start))
    return (frame if extra else frame[OHLCV]).copy()


REPO = Path(__file__).resolve().parents[1]


def python_kernel_env(jupyter: Path) -> dict[str, str]:
    """Write a kernel spec ``python3`` for this very interpreter under ``jupyter`` and return
    the environment that makes papermill find it first (and draw plots without a display)."""
    import json
    import os
    import sys

    kernels = jupyter / "kernels" / "python3"
    kernels.mkdir(parents=True, exist_ok=True)
    pythonpath = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "python3",
        "language": "python",
        "env": {"PYTHONPATH": pythonpath},
    }
    (kernels / "kernel.json").write_text(json.dumps(spec))
    return {"JUPYTER_PATH": str(jupyter), "MPLBACKEND": "Agg"}


def execute_notebook(source: Path, executed: Path, parameters: dict, cwd: Path) -> None:
    """Run a notebook through papermill in the ``python3`` kernel, from ``cwd``."""
    import papermill as pm

    pm.execute_notebook(
        str(source),
        str(executed),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(cwd),
        progress_bar=False,
    )
