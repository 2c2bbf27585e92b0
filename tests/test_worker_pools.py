"""Worker processes for trials: fork by default, spawn once GNU OpenMP is loaded.

libgomp aborts a forked child that uses OpenMP after the parent did ("fork() called from a
process already using GNU OpenMP"), as happens when a notebook trains an xgboost model and
then optimizes with workers. Spawned workers start bare, so they load the parent's plugins
before any work arrives.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from cryptoai.optimize import search

PLUGIN = """
from cryptoai import Strategy, register_strategy


@register_strategy("spawn_probe")
class SpawnProbe(Strategy):
    params = {"k": 1}

    def signals(self, data):
        return data["close"] * 0.0 + 1.0
"""


def test_spawned_workers_load_the_plugins_of_this_process(tmp_path, monkeypatch):
    from cryptoai.plugins import load_plugins
    from cryptoai.strategies.registry import get_strategy

    plugin = tmp_path / "probe_plugin.py"
    plugin.write_text(PLUGIN)
    load_plugins([plugin])
    monkeypatch.setattr(search, "_openmp_loaded", lambda: True)
    assert search._context().get_start_method() == "spawn"
    with search._pool(2) as pool:
        found = pool.map(get_strategy, ["spawn_probe", "spawn_probe"])
    assert found == [get_strategy("spawn_probe")] * 2  # the same class, by module and name


def test_xgboost_loads_gnu_openmp_so_workers_are_spawned():
    pytest.importorskip("xgboost")
    import xgboost  # noqa: F401 - loads libxgboost, linked against libgomp

    with open("/proc/self/maps") as fh:
        assert "libgomp" in fh.read()
    assert search._context().get_start_method() == "spawn"


@pytest.mark.slow
def test_model_tuning_with_workers_after_training_xgboost_in_this_process(tmp_path):
    """The notebook case: OpenMP is live in this process, then a two-worker model search."""
    xgb = pytest.importorskip("xgboost")
    from cryptoai.optimize import run_optimization

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    xgb.XGBClassifier(n_estimators=5, n_jobs=2).fit(X, (X[:, 0] > 0).astype(int))
    cfg = {
        "name": "tune_after_xgb",
        "strategy": "model",
        "data": {
            "source": "synthetic",
            "start": "2024-01-01",
            "end": "2024-02-10",
            "store_root": str(tmp_path / "raw"),
        },
        "features": "configs/features/minimal.yaml",
        "target": {"kind": "direction", "horizon": 1},
        "model": {"name": "logreg", "params": {"max_iter": 300}},
        "validation": {"n_splits": 2, "test_size": 150},
        "space": {"model.params.C": [1.0, 0.1, 0.01, 0.001]},
        "method": "optuna",
        "sampler": "random",
        "n_trials": 4,
        "objective": "roc_auc",
        "seed": 3,
    }
    db = tmp_path / "optuna.db"
    result = run_optimization(
        cfg,
        out=tmp_path / "out",
        storage=f"sqlite:///{db}",
        workers=2,
        tracking=False,
        checkpoints_root=tmp_path / "checkpoints",
    )
    with sqlite3.connect(db) as con:
        states = [row[0] for row in con.execute("SELECT state FROM trials ORDER BY number")]
    assert len(states) == 4 and "RUNNING" not in states
    assert len(result.trials) == 4
    assert result.best is not None


@pytest.mark.timeout(120)
def test_work_a_worker_cannot_rebuild_fails_with_its_error_instead_of_hanging(
    tmp_path, monkeypatch
):
    """A plugin loaded here from a file since deleted: the spawned worker cannot import it,
    so the call that needs its class fails (a pool unpickling the task itself would lose
    the worker, start another and wait for ever)."""
    from cryptoai.plugins import load_plugins
    from cryptoai.strategies.registry import get_strategy

    plugin = tmp_path / "gone_plugin.py"
    plugin.write_text(PLUGIN.replace("spawn_probe", "gone_probe"))
    load_plugins([plugin])
    probe = get_strategy("gone_probe")(k=2)
    plugin.unlink()
    monkeypatch.setattr(search, "_openmp_loaded", lambda: True)
    assert search.run_in_workers(len, [([1, 2],), ([3],)], 2) == [2, 1]  # the pool works
    with pytest.raises(ModuleNotFoundError, match="cryptoai_plugin_gone_plugin"):
        search.run_in_workers(repr, [(probe,)], 2)
