"""Walk-forward optimization: each window's parameters are the in-sample argmax, computed
here independently with single backtests on the in-sample bars only."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from cryptoai.backtest import make_settings, run_strategy, run_vectorized
from cryptoai.backtest.metrics import compute_metrics
from cryptoai.data.loading import load_frame
from cryptoai.optimize import run_optimization
from cryptoai.strategies import make_strategy

FEES = {"fee_bps": 10.0, "slippage_bps": 2.0}
FASTS, SLOWS = [3, 5, 10], [20, 40, 80]
# Windows of a month and more: annualized figures (the objective) need 30 days of bars.
TEST, TRAIN = 750, 1000


@pytest.mark.parametrize("anchored", [True, False])
def test_windows_choose_the_in_sample_argmax_and_trade_the_next_window(tmp_path, ohlcv, anchored):
    path = tmp_path / "btc.parquet"
    ohlcv(n=3600, seed=5).to_parquet(path)
    cfg = {
        "name": "wf_test",
        "data": {"file": str(path)},
        "strategy": "ema_cross",
        "space": {"fast": FASTS, "slow": SLOWS},
        "method": "walk_forward",
        "walk_forward": {
            "n_splits": 3,
            "test_size": TEST,
            "anchored": anchored,
            "train_size": TRAIN,
        },
        "objective": "sharpe",
        "min_trades": 2,
        "backtest": FEES,
    }
    result = run_optimization(cfg, out=tmp_path / "out", tracking=False)
    frame = load_frame(path)
    settings = make_settings(FEES)
    n = len(frame)
    windows = result.walk_forward["windows"]
    assert len(windows) == 3
    oos = []
    for i, w in enumerate(windows):
        train_end = n - (3 - i) * TEST
        train_start = 0 if anchored else train_end - TRAIN
        train = frame.iloc[train_start:train_end]
        scores = {}
        for fast, slow in itertools.product(FASTS, SLOWS):
            m = compute_metrics(
                run_strategy(train, "ema_cross", {"fast": fast, "slow": slow}, settings)
            )
            if m["n_trades"] >= 2 and math.isfinite(m["sharpe"]):
                scores[(fast, slow)] = m["sharpe"]
        best = max(scores, key=scores.get)
        assert (w["params"]["fast"], w["params"]["slow"]) == best, i
        assert w["in_sample"] == pytest.approx(scores[best], rel=1e-12)
        assert w["test_start"] == frame.index[train_end].isoformat()
        # out of sample: signals warmed up on the past, the test window traded on its own
        strat = make_strategy("ema_cross", {"fast": best[0], "slow": best[1]})
        target = strat.signals(frame.iloc[train_start : train_end + TEST]).iloc[-TEST:]
        res = run_vectorized(frame.iloc[train_end : train_end + TEST], target, settings)
        assert w["out_of_sample"] == pytest.approx(compute_metrics(res)["sharpe"], rel=1e-12)
        oos.append(res.equity.to_numpy() / res.initial_cash)
    # the stitched curve compounds the windows
    stitched = np.concatenate([o * np.prod([p[-1] for p in oos[:k]]) for k, o in enumerate(oos)])
    assert result.walk_forward["oos_metrics"]["total_return"] == pytest.approx(stitched[-1] - 1)
    ins = np.mean([w["in_sample"] for w in windows])
    outs = np.mean([w["out_of_sample"] for w in windows])
    assert result.statistics["walk_forward_efficiency"] == pytest.approx(outs / ins)
    assert result.best["params"] == windows[-1]["params"]
    assert (tmp_path / "out" / "equity.png").is_file()
