"""Notebook 08 (reinforcement learning), run once in smoke mode by papermill in a real kernel
(as tests/test_notebooks.py runs 01-06), its metrics checked against recomputations here:
the agent's saved evaluation actions and buy-and-hold through run_vectorized on the stored
candles, and the supervised baseline's trades from the model_signal thresholds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from helpers import execute_notebook

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
NAME = "08-reinforcement-learning"
START, END = "2024-10-01", "2025-01-01"


@pytest.fixture(scope="module")
def run(tmp_path_factory, kernel_env):
    tmp = tmp_path_factory.mktemp("nb08")
    work, out, store = tmp / "cwd", tmp / "out", tmp / "raw"
    work.mkdir()
    params = {
        "smoke": True,
        "output_dir": str(out),
        "store_root": str(store),
        "start": START,
        "end": END,
        "timesteps": 256,  # a barely trained agent still trades: a real check
    }
    execute_notebook(NB_DIR / f"{NAME}.ipynb", tmp / f"{NAME}.ipynb", params, work)
    return {"tmp": tmp, "out": out / NAME, "store": store, "work": work}


@pytest.mark.slow
def test_08_metrics_are_the_backtests_of_its_actions(run):
    from cryptoai.backtest import run_vectorized
    from cryptoai.backtest.metrics import compute_metrics
    from cryptoai.data.store import RawStore
    from cryptoai.rl.config import resolve

    m = json.loads((run["out"] / "metrics.json").read_text())
    assert list(run["work"].iterdir()) == [], "the notebook wrote into its working directory"
    nb = nbformat.read(run["tmp"] / f"{NAME}.ipynb", as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert (run["out"] / "equity.png").stat().st_size > 1000
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "identical metrics and actions" in text and m["rl.reproducible"] == 1.0
    assert m["rl.timesteps"] == 256

    # the agent: run_vectorized on its saved actions over the stored candles
    targets = pd.read_csv(run["out"] / "agent_targets.csv", index_col=0, parse_dates=True)
    targets = targets["target"]
    stored = RawStore(run["store"]).load("synthetic", "BTC/USDT", "1h", START, END)
    bars = stored.loc[targets.index[0] : targets.index[-1]]
    assert len(bars) == len(targets) == m["rl.eval_bars"] and bars.index[-1] == stored.index[-1]
    res, _ = resolve(REPO / "configs" / "rl" / "ppo.yaml")
    agent = compute_metrics(run_vectorized(bars, targets.to_numpy(), res.settings))
    for key in ("total_return", "sharpe", "max_drawdown", "n_trades", "final_equity"):
        want = agent[key]
        if isinstance(want, float) and not math.isfinite(want):
            assert m[f"rl.agent.{key}"] is None
        else:
            assert m[f"rl.agent.{key}"] == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert m["rl.agent.n_trades"] >= 1
    # buy-and-hold: all in at the second bar's open, out at the last close; the medium
    # bucket's 10 bps fee and 2 bps slippage each way (sizing budgets the fee)
    fee, slip = 10e-4, 2e-4
    buy = bars["open"].iloc[1] * (1 + slip) * (1 + fee)
    sell = bars["close"].iloc[-1] * (1 - slip) * (1 - fee)
    hold = m["rl.buy_and_hold.total_return"]
    assert hold == pytest.approx(sell / buy - 1, rel=1e-9)
    assert m["rl.flat.total_return"] == 0.0 and m["rl.flat.n_trades"] == 0
    # the supervised baseline trades; its metrics are in range and differ from the others'
    assert m["rl.model_signal.n_trades"] >= 1
    assert -1.0 < m["rl.model_signal.total_return"] < 1.0
    assert m["rl.model_signal.total_return"] != pytest.approx(hold)
    assert np.isfinite(m["rl.agent.total_return"])
