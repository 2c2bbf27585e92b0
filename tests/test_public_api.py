"""`import cryptoai`: a small, lazy, documented surface that the README's example uses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cryptoai as ca

PACKAGE = Path(ca.__file__).parent
SURFACE = {
    "load",
    "fetch",
    "validate",
    "build_features",
    "make_target",
    "train",
    "run_backtest",
    "sweep",
    "run_optimization",
    "predict",
    "Strategy",
    "register_strategy",
    "ExecutionSettings",
    "load_plugins",
}


def test_the_surface_is_the_documented_one_and_visible_to_dir():
    assert set(ca.__all__) == SURFACE
    assert set(dir(ca)) >= SURFACE
    for name in SURFACE:
        assert getattr(ca, name) is not None


def test_no_public_name_shadows_a_subpackage_or_module():
    children = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    assert not (SURFACE & children)


def test_importing_cryptoai_loads_nothing_heavy():
    code = (
        "import json, sys, cryptoai; "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in {'mlflow','torch','numba','sklearn','pandas','optuna','ccxt'})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_the_readme_example_end_to_end(tmp_path):
    store = tmp_path / "raw"
    report = ca.fetch("synthetic", "BTC/USDT", "1h", "2024-01-01", "2024-03-01", store=store)
    assert report.bars_written == 60 * 24
    btc = ca.load("synthetic/BTC-USDT/1h", start="2024-01-01", store=store)
    assert len(btc) == 60 * 24 and ca.validate(btc).issues == []

    y = ca.make_target(btc, kind="direction", horizon=1)
    up = (btc["close"].shift(-1) > btc["close"]).astype(float).where(btc["close"].shift(-1).notna())
    pd.testing.assert_series_equal(y, up, check_names=False)

    settings = ca.ExecutionSettings(fee_bps=10, slippage_bps=2)
    result, benchmark = ca.run_backtest(btc, "ema_cross", {"fast": 10, "slow": 50}, settings)
    grid = ca.sweep(btc, "ema_cross", {"fast": [10, 20], "slow": [50, 100]}, settings)
    assert len(grid) == 4
    row = grid[(grid["fast"] == 10) & (grid["slow"] == 50)].iloc[0]
    # the compiled sweep and the single run are one execution model: the same equity
    assert row["final_equity"] == pytest.approx(result.equity.iloc[-1], rel=1e-9)
    assert benchmark.equity.iloc[-1] != pytest.approx(result.equity.iloc[-1])
    assert np.isfinite(benchmark.equity.to_numpy()).all()
