"""``cryptoai train``: a table of per-fold metrics beside the baseline; one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from cryptoai.cli import main
from cryptoai.modeling.training import train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def config_file(tmp_path_factory, tmp_path) -> Path:
    cfg = {
        "name": "cli-logreg",
        "data": {
            "source": "synthetic",
            "symbol": "ETH/USDT",
            "timeframe": "1h",
            "start": "2023-05-01",
            "end": "2023-05-15",
            "store_root": str(tmp_path_factory.getbasetemp() / "cli-raw"),
        },
        "features": str(REPO / "configs" / "features" / "minimal.yaml"),
        "target": {"kind": "direction", "horizon": 1},
        "model": {"name": "logreg", "params": {"C": 0.5}},
        "validation": {"n_splits": 3, "test_size": 60},
        "output_dir": str(tmp_path / "runs"),
        "tracking": {"experiment": "cli-test", "log_model": False},
    }
    path = tmp_path / "logreg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _table(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in {"accuracy", "roc_auc", "log_loss", "ic", "hit_rate"}:
            rows[parts[0]] = parts[1:]
    return rows


def test_prints_folds_and_metrics_beside_the_baseline(config_file, capsys):
    assert main(["train", "--config", str(config_file), "--no-tracking", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "in 3 folds" in out
    header = next(line for line in out.splitlines() if "baseline" in line).split()
    assert header == ["fold", "0", "fold", "1", "fold", "2", "mean", "all", "baseline"]
    table = _table(out)
    assert set(table) == {"accuracy", "roc_auc", "log_loss", "ic", "hit_rate"}
    # the printed numbers are the run's numbers (same config and seed, so the same run)
    res = train(config_file, tracking=False, progress=False)
    assert table["accuracy"][3] == f"{res.aggregate['accuracy']:.4g}"
    assert table["accuracy"][4] == f"{res.baseline_aggregate['accuracy']:.4g}"
    assert table["log_loss"][0] == f"{res.per_fold[0]['log_loss']:.4g}"
    assert "MLflow run" not in out


def test_smoke_flag_and_tracked_run(config_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    assert main(["train", "-c", str(config_file), "--smoke", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "in 2 folds" in out
    run_id = re.search(r"MLflow run (\w+)", out).group(1)
    run = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["config.smoke"] == "true"
    assert f"{run.data.metrics['accuracy']:.4g}" == _table(out)["accuracy"][3]


def test_errors_are_one_line(config_file, tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: config file") and "\n" not in err
    bad = yaml.safe_load(config_file.read_text())
    bad["validation"]["n_splits"] = 0
    config_file.write_text(yaml.safe_dump(bad))
    assert main(["train", "--config", str(config_file), "--no-tracking"]) == 2
    err = capsys.readouterr().err.strip()
    assert "validation.n_splits" in err and "\n" not in err
    bad["validation"]["n_splits"] = 3
    bad["model"] = {"name": "logreg", "params": {"depth": 3}}
    config_file.write_text(yaml.safe_dump(bad))
    assert main(["train", "--config", str(config_file), "--no-tracking"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{config_file}: field 'model': unknown parameter(s) depth" in err and "\n" not in err


def test_data_errors_name_the_config_file_and_its_fields(config_file, tmp_path, capsys):
    cfg = yaml.safe_load(config_file.read_text())
    cfg["data"] = {"file": str(tmp_path / "bars.csv"), "start": "2030-01-01"}
    # a real file whose bars all lie before the configured start
    import pandas as pd

    from cryptoai.data.sources.synthetic import synthetic_ohlcv

    synthetic_ohlcv("BTC/USDT", "1h", "2024-01-01", "2024-01-03").to_csv(tmp_path / "bars.csv")
    config_file.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(config_file), "--no-tracking"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{config_file}: field 'data'" in err and "data.start" in err, err
    assert "--start" not in err and "\n" not in err
    assert pd.read_csv(tmp_path / "bars.csv").shape[0] == 48  # the input is untouched
