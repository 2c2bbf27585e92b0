"""`strategy: model`: a model's hyper-parameters tuned under purged walk-forward folds, with
Optuna's median pruning, checked against independent `train()` runs."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import yaml

from cryptoai.errors import ConfigError
from cryptoai.optimize import run_optimization
from cryptoai.optimize.config import resolve_config


def model_config(tmp_path, **changes) -> dict:
    cfg = {
        "name": "tune_logreg",
        "strategy": "model",
        "data": {
            "source": "synthetic",
            "start": "2024-01-01",
            "end": "2024-02-20",
            "store_root": str(tmp_path / "data" / "raw"),
        },
        "features": "configs/features/default.yaml",
        "target": {"kind": "direction", "horizon": 1},
        "model": {"name": "logreg", "params": {"max_iter": 500}},
        "validation": {"n_splits": 3, "test_size": 200},
        # a good region (C >= 0.01) and a deliberately bad one (C <= 1e-4: barely fitted)
        "space": {"model.params.C": [1.0, 0.1, 0.01, 1e-4, 1e-6, 1e-9]},
        "method": "optuna",
        "sampler": "random",
        "n_trials": 10,
        "objective": "roc_auc",
        "pruning": {"n_startup_trials": 2},
        "backtest": {"fee_bps": 10, "slippage_bps": 2},
        "seed": 7,
    }
    cfg.update(changes)
    return cfg


def train_config(cfg: dict, model_params: dict) -> dict:
    return {
        "name": "independent",
        "data": cfg["data"],
        "features": cfg["features"],
        "target": cfg["target"],
        "model": {"name": "logreg", "params": {**cfg["model"]["params"], **model_params}},
        "validation": cfg["validation"],
        "seed": cfg["seed"],
    }


def run(tmp_path, name: str, cfg: dict):
    return run_optimization(
        cfg,
        out=tmp_path / name,
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
        tracking=False,
        checkpoints_root=tmp_path / "checkpoints",
    )


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("model-opt")
    cfg = model_config(tmp)
    return tmp, cfg, run(tmp, "auc", cfg)


@pytest.mark.slow
def test_best_trial_objective_equals_an_independent_train(tuned):
    from cryptoai.modeling.training import train

    _, cfg, result = tuned
    best = result.best
    assert best is not None
    C = best["params"]["model.params.C"]
    independent = train(train_config(cfg, {"C": C}), tracking=False, progress=False)
    assert best["metrics"]["model.roc_auc"] == pytest.approx(independent.aggregate["roc_auc"])
    by_number = {t.number: t for t in result.trials}
    assert by_number[best["number"]].value == pytest.approx(independent.aggregate["roc_auc"])
    # every complete trial is at least as bad as the best (maximize)
    values = [t.value for t in result.trials if t.value is not None]
    assert max(values) == pytest.approx(best["metrics"]["model.roc_auc"])
    # the checkpoint is the final model train() fits with those parameters
    folder = result.out_dir.parent / "checkpoints" / "tune_logreg"
    with open(folder / "model.pkl", "rb") as fh:
        model = pickle.load(fh)
    X = independent.input_example
    np.testing.assert_allclose(model.predict_proba(X), independent.model.predict_proba(X))
    params = yaml.safe_load((folder / "params.yaml").read_text())
    assert params["model"] == "logreg" and params["params"]["C"] == C
    assert params["objective"]["value"] == pytest.approx(best["metrics"]["model.roc_auc"])


@pytest.mark.slow
def test_bad_region_is_pruned(tuned):
    _, _, result = tuned
    pruned = [t for t in result.trials if t.state == "pruned"]
    assert pruned, [(t.number, t.params, t.state) for t in result.trials]
    assert all(t.metrics["folds_run"] < 3 and t.returns is None for t in pruned)
    assert any(t.params["model.params.C"] <= 1e-4 for t in pruned)
    stats = result.statistics
    assert stats["n_pruned"] == len(pruned)
    assert stats["n_trials"] == len(result.trials)  # pruned trials were tried: they count
    assert stats["n_complete"] + stats["n_failed"] == stats["n_trials"]
    assert stats["pbo"] is not None and 0 <= stats["pbo"] <= 1
    assert stats["deflated_sharpe"] is None  # ranked by ROC AUC, not by a Sharpe ratio
    for name in ("results.json", "trials.csv", "best_params.yaml", "report.md", "trades.csv"):
        assert (result.out_dir / name).is_file()


@pytest.mark.slow
def test_backtest_objective_equals_the_predictions_traded(tmp_path):
    from cryptoai.backtest import run_strategy
    from cryptoai.backtest.metrics import compute_metrics
    from cryptoai.modeling.training import load_training_data, train
    from cryptoai.research.robustness import backtest_window, prediction_signal
    from cryptoai.strategies.model_signal import ModelSignal

    cfg = model_config(
        tmp_path,
        name="tune_logreg_sharpe",
        space={"model.params.C": [0.1, 0.01], "strategy.long_above": [0.5, 0.52]},
        params={"short_below": 0.48},
        n_trials=3,
        objective="sharpe",
        pruning={"enabled": False},
        validation={"n_splits": 3, "test_size": 260},  # 32 days: a Sharpe ratio is defined
    )
    result = run(tmp_path, "sharpe", cfg)
    best = result.best
    C, long_above = best["params"]["model.params.C"], best["params"]["strategy.long_above"]
    res = train(train_config(cfg, {"C": C}), tracking=False, progress=False)
    preds = res.predictions  # the stitched out-of-sample predictions
    bars = backtest_window(load_training_data(res.config.data), preds)
    strat = ModelSignal(
        predictions=prediction_signal(preds), long_above=long_above, short_below=0.48
    )
    traded = run_strategy(bars, strat, settings={"fee_bps": 10, "slippage_bps": 2})
    expected = compute_metrics(traded)["sharpe"]
    assert math.isfinite(expected)
    assert best["metrics"]["sharpe"] == pytest.approx(expected)
    assert result.statistics["deflated_sharpe"] is not None  # ranked by Sharpe: deflated
    assert result.statistics["n_pruned"] == 0


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        (
            {"space": {"model.params.foo": [1, 2]}},
            "space.model.params.foo",
            "model logreg has no parameter 'foo': valid parameters are",
        ),
        ({"space": {"C": [1.0]}}, "space.C", "model.params.NAME"),
        ({"space": {"strategy.fast": [1.0]}}, "space.strategy.fast", "no tunable parameter"),
        ({"method": "grid"}, "method", "optuna"),
        ({"objective": "nonsense"}, "objective.metric", "roc_auc"),
        ({"model": {"name": "nope"}}, "train", "model"),
        ({"params": {"C": 1.0}}, "params.C", "model_signal"),
        ({"space": {"strategy.min_hold": [2, -1]}}, "space.strategy.min_hold", "-1"),
    ],
)
def test_bad_configs_are_one_line_errors_before_data_loads(tmp_path, changes, field, reason):
    cfg = model_config(tmp_path, **changes)
    with pytest.raises(ConfigError) as exc:
        resolve_config(cfg)
    text = str(exc.value)
    assert "\n" not in text
    assert f"field '{field}'" in text and reason in text, text
    assert not (tmp_path / "data").exists()  # nothing was fetched


def test_train_file_is_the_base_and_inline_parts_override(tmp_path):
    cfg, _ = resolve_config(
        {
            "name": "t",
            "strategy": "model",
            "train": "configs/models/logreg.yaml",
            "space": {"model.params.C": {"low": 0.01, "high": 10, "log": True}},
            "method": "optuna",
            "validation": {"n_splits": 2, "test_size": 100},
        }
    )
    tcfg, source = cfg.train_config
    assert source.endswith("configs/models/logreg.yaml")
    assert tcfg.data.start == "2023-01-01" and tcfg.model.params["C"] == 0.1
    assert tcfg.validation.n_splits == 2
    (dim,) = cfg.dimensions
    assert dim.kind == "float" and dim.log
    with pytest.raises(ConfigError, match="field 'train'"):
        resolve_config(
            {"name": "t", "strategy": "ema_cross", "train": "x.yaml", "space": {"fast": [5]}}
        )
