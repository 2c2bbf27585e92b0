"""`cryptoai optimize` and scripts/optimize.py on the shipped configs (smoke mode)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cryptoai.cli import main
from cryptoai.optimize import load_optimize_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs" / "optimize").glob("*.yaml"))


def test_shipped_configs_are_valid():
    names = {p.stem for p in CONFIGS}
    assert {"ema_cross_grid", "ema_cross_optuna", "ema_cross_walk_forward"} <= names
    for path in CONFIGS:
        cfg = load_optimize_config(path)
        assert cfg.name == path.stem and cfg.data.source == "synthetic"


@pytest.mark.slow
def test_cli_smoke_run_prints_the_table_and_writes_the_report(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the synthetic store goes to tmp_path/data/raw
    cfg = ROOT / "configs" / "optimize" / "ema_cross_grid.yaml"
    code = main(["optimize", "--config", str(cfg), "--smoke", "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert code == 0
    assert "deflated Sharpe ratio" in out and "probability of backtest overfitting" in out
    assert "trials this data has seen" in out
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert results["config"]["smoke"] is True
    assert results["statistics"]["n_trials"] == len(results["trials"]) <= 9
    assert (tmp_path / "o" / "ledger.json").is_file()
    assert "MLflow run" in out
