"""Notebook 07-deployment, run top to bottom in smoke mode by papermill in a real kernel:
train, register, promote, predict, the API, paper trading on a moved clock, a drift report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import execute_notebook

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "07-deployment.ipynb"

pytestmark = pytest.mark.slow


def test_deployment_notebook_runs_in_smoke_mode(kernel_env, tmp_path):
    work, out, store = tmp_path / "cwd", tmp_path / "out", tmp_path / "raw"
    work.mkdir()
    execute_notebook(
        NOTEBOOK,
        tmp_path / "07.ipynb",
        {
            "smoke": True,
            "output_dir": str(out),
            "store_root": str(store),
            "start": "2024-10-01",
            "end": "2025-01-01",
            "paper_bars": 5,
        },
        work,
    )
    folder = out / "07-deployment"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["deploy.model_version"] == 1
    assert metrics["deploy.api_equals_predict"] == 1
    assert metrics["deploy.paper_bars"] == 5
    assert metrics["deploy.paper_equals_backtest"] == 1
    assert (folder / "mlflow.db").is_file()
    assert (folder / "drift" / "report.md").is_file()
    live = folder / "live" / "synthetic" / "BTC-USDT" / "1h"
    assert (live / "predictions.parquet").is_file() and (live / "ledger.json").is_file()
    assert not any(work.iterdir())  # nothing written to the working directory
