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


# ------------------------------------------------------------------------ worker processes
#: logreg's running ROC AUC on the small data below, per fold: C=1e-6 is clearly better than
#: C=1.0 at every fold (0.563 vs 0.500 after the first), so once a C=1e-6 trial is complete
#: the median rule prunes every C=1.0 trial after its first fold, whichever process runs it.
GOOD_C, BAD_C = 1e-6, 1.0


@pytest.fixture(scope="module")
def small_root(tmp_path_factory):
    """One synthetic store (and feature cache) for the worker tests: fetched once."""
    return tmp_path_factory.mktemp("model-workers")


def small_config(root, **changes) -> dict:
    cfg = model_config(
        root,
        name="tune_workers",
        # the threshold is continuous and leaves the ROC AUC objective alone: distinct
        # draws show the processes never sample the same sequence
        space={"model.params.C": [GOOD_C, BAD_C], "strategy.long_above": {"low": 0.5, "high": 0.6}},
        validation={"n_splits": 3, "test_size": 150},
        pruning={"n_startup_trials": 1},
    )
    cfg["data"]["end"] = "2024-01-25"
    cfg.update(changes)
    return cfg


def stored(db) -> dict[int, dict]:
    """The study's trials read from the SQLite file itself: number -> state, params, worker,
    folds reported."""
    import json
    import sqlite3

    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT trial_id, number, state FROM trials").fetchall()
        params = con.execute(
            "SELECT trial_id, param_name, param_value FROM trial_params"
        ).fetchall()
        attrs = con.execute(
            "SELECT trial_id, value_json FROM trial_user_attributes WHERE key = 'cryptoai'"
        ).fetchall()
        steps = con.execute("SELECT trial_id, step FROM trial_intermediate_values").fetchall()
    by_id = {tid: {"number": n, "state": s, "params": {}, "steps": []} for tid, n, s in rows}
    for tid, name, value in params:
        by_id[tid]["params"][name] = value
    for tid, value in attrs:
        by_id[tid]["worker"] = json.loads(value)["worker"]
    for tid, step in steps:
        by_id[tid]["steps"].append(step)
    assert len({t["number"] for t in by_id.values()}) == len(by_id)  # no number twice
    return {t["number"]: t for t in by_id.values()}


def run_small(root, name, cfg, db, workers):
    return run_optimization(
        cfg,
        out=root / name,
        storage=f"sqlite:///{db}",
        workers=workers,
        tracking=False,
        checkpoints_root=root / "checkpoints",
    )


@pytest.mark.slow  # ~7 s alone, ~18 s beside another test on two cores
def test_two_workers_share_the_study_prune_across_processes_and_resume(small_root):
    import os

    import optuna

    db = small_root / "shared.db"
    c_index = {GOOD_C: 0.0, BAD_C: 1.0}  # optuna stores a categorical as its index

    # one process first: the study's opening trials, complete, in the parent process
    run_small(small_root, "one", small_config(small_root, n_trials=2), db, workers=1)
    opening = stored(db)
    assert sorted(opening) == [0, 1]
    assert {t["worker"] for t in opening.values()} == {os.getpid()}
    assert any(t["params"]["model.params.C"] == c_index[GOOD_C] for t in opening.values()), (
        opening  # with a C=1e-6 trial complete, the median rule below is certain
    )

    # two processes bring the same study to 10
    two = run_small(small_root, "two", small_config(small_root, n_trials=10), db, workers=2)
    trials = stored(db)
    assert sorted(trials) == list(range(10))
    assert all(t["state"] in ("COMPLETE", "PRUNED") for t in trials.values())
    new = [trials[n] for n in range(2, 10)]
    assert len({t["worker"] for t in new}) == 2 and os.getpid() not in {t["worker"] for t in new}
    draws = [t["params"]["strategy.long_above"] for t in trials.values()]
    assert len(set(draws)) == 10  # per-trial seeds: no two trials drew the same values
    # pruning across processes: every C=1.0 trial stopped after its first fold, every
    # C=1e-6 one ran all three (its reports are in the storage for the other process)
    bad = [t for t in new if t["params"]["model.params.C"] == c_index[BAD_C]]
    good = [t for t in new if t["params"]["model.params.C"] == c_index[GOOD_C]]
    assert bad and good, new
    assert all(t["state"] == "PRUNED" and t["steps"] == [0] for t in bad)
    assert all(t["state"] == "COMPLETE" and sorted(t["steps"]) == [0, 1, 2] for t in good)
    # the result is the storage's: in number order, states as stored
    assert [t.number for t in two.trials] == list(range(10))
    assert [t.state for t in two.trials] == [trials[n]["state"].lower() for n in range(10)]
    assert two.statistics["n_pruned"] == sum(t["state"] == "PRUNED" for t in trials.values())
    assert two.best["params"]["model.params.C"] == GOOD_C
    assert (small_root / "checkpoints" / "tune_workers" / "model.pkl").is_file()
    assert "ran in 2 worker processes" in (two.out_dir / "report.md").read_text()

    # a process killed mid-trial leaves it RUNNING; the resumed study still reaches 12
    # finished trials, and the 10 before are kept as they were
    optuna.load_study(study_name="tune_workers", storage=f"sqlite:///{db}").ask()
    again = run_small(small_root, "three", small_config(small_root, n_trials=12), db, workers=2)
    after = stored(db)
    assert len(after) == 13
    assert [n for n, t in after.items() if t["state"] == "RUNNING"] == [10]
    finished = sorted(n for n, t in after.items() if t["state"] != "RUNNING")
    assert finished == [*range(10), 11, 12]
    assert all(after[n] == trials[n] for n in range(10))
    assert [t.number for t in again.trials] == finished


def test_one_process_is_reproducible(small_root):
    """The same config and seed, one worker, fresh storages: the same results.json bytes."""
    cfg = small_config(small_root, name="tune_repeat", n_trials=6)
    a = run_small(small_root, "rep-a", cfg, small_root / "rep-a.db", workers=1)
    b = run_small(small_root, "rep-b", cfg, small_root / "rep-b.db", workers=1)
    assert [t.state for t in a.trials].count("pruned") >= 1  # pruning is part of what repeats
    assert (a.out_dir / "results.json").read_bytes() == (b.out_dir / "results.json").read_bytes()
    assert stored(small_root / "rep-a.db") == stored(small_root / "rep-b.db")


def test_cli_workers_on_a_model_config(small_root, tmp_path, monkeypatch):
    from cryptoai.cli import main
    from cryptoai.paths import repo_root

    features = repo_root() / "configs" / "features" / "default.yaml"
    cfg = small_config(small_root, name="tune_cli", n_trials=4, features=str(features))
    path = tmp_path / "tune_cli.yaml"
    path.write_text(yaml.safe_dump(cfg))
    monkeypatch.chdir(tmp_path)  # the default checkpoint folder: tmp_path/models/checkpoints
    db = tmp_path / "cli.db"
    args = ["optimize", "--config", str(path), "--workers", "2", "--no-tracking"]
    code = main([*args, "--storage", f"sqlite:///{db}", "--out", str(tmp_path / "o")])
    assert code == 0
    trials = stored(db)
    assert sorted(trials) == [0, 1, 2, 3]
    assert len({t["worker"] for t in trials.values()}) == 2
    report = (tmp_path / "o" / "report.md").read_text()
    assert "this run's trials ran in 2 worker processes" in report
    results = yaml.safe_load((tmp_path / "o" / "results.json").read_text())
    assert [t["number"] for t in results["trials"]] == [0, 1, 2, 3]
    assert (tmp_path / "models" / "checkpoints" / "tune_cli" / "model.pkl").is_file()


def test_a_worker_caps_the_threads_a_model_asks_for():
    from cryptoai.modeling.models import make_model
    from cryptoai.optimize.model import _cap_threads

    forest = make_model("random_forest", "classification", n_jobs=-1)  # every core
    _cap_threads(forest, 2)
    assert forest.get_params()["n_jobs"] == 2
    single = make_model("random_forest", "classification", n_jobs=1)
    _cap_threads(single, 2)
    assert single.get_params()["n_jobs"] == 1  # already within the budget: untouched
    logreg = make_model("logreg", "classification")
    _cap_threads(logreg, 2)  # no thread parameter: nothing to set
    assert "n_jobs" not in logreg.get_params()
