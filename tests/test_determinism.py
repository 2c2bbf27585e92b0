"""Same config + seed + data = the same bytes, also when a model runs on several threads.

scikit-learn's forests add each tree's output to a shared total in whatever order the
threads finish, so with ``n_jobs=-1`` (as ``configs/models/random_forest.yaml`` sets) the
last bits of the probabilities used to change from call to call. The expected values here
are the trees' outputs summed in tree order, computed independently from ``estimators_``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptoai.modeling.models import make_model
from cryptoai.modeling.training import train

#: Repeated calls: the old threaded sum matched tree order in about one call in ten, so ten
#: calls all matching by chance is out of reach.
CALLS = 10


def _data(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    X = pd.DataFrame(rng.normal(size=(n, 6)), index=idx, columns=[f"f{i}" for i in range(6)])
    noisy = X["f0"] + rng.normal(size=n)
    return X, noisy


def _tree_order_mean(forest, X: pd.DataFrame, method: str) -> np.ndarray:
    values = X.to_numpy(dtype=np.float32)
    total = None
    for tree in forest.estimators_:
        out = getattr(tree, method)(values)
        total = np.zeros(out.shape) if total is None else total
        total += out
    return total / len(forest.estimators_)


@pytest.mark.parametrize("n_jobs", [-1, 2])
def test_random_forest_probabilities_are_bit_identical_across_calls_and_fits(n_jobs):
    X, noisy = _data()
    y = (noisy > 0).astype(float)
    params = {"n_estimators": 60, "min_samples_leaf": 5, "n_jobs": n_jobs, "random_state": 3}
    model = make_model("random_forest", **params).fit(X, y)
    expected = _tree_order_mean(model.estimator_, X, "predict_proba")
    for _ in range(CALLS):
        assert model.predict_proba(X).tobytes() == expected.tobytes()
    again = make_model("random_forest", **params).fit(X, y)
    assert again.predict_proba(X).tobytes() == expected.tobytes()
    serial = make_model("random_forest", **{**params, "n_jobs": 1}).fit(X, y)
    assert serial.predict_proba(X).tobytes() == expected.tobytes()


def test_random_forest_regression_is_bit_identical_across_calls():
    X, noisy = _data(seed=1)
    params = {"n_estimators": 60, "min_samples_leaf": 5, "n_jobs": -1, "random_state": 3}
    model = make_model("random_forest", task="regression", **params).fit(X, 0.01 * noisy)
    expected = _tree_order_mean(model.estimator_, X, "predict")
    for _ in range(CALLS):
        assert model.predict(X).tobytes() == expected.tobytes()


def test_random_forest_keeps_nan_rows_as_nan():
    X, noisy = _data(n=300)
    y = (noisy > 0).astype(float)
    model = make_model("random_forest", n_estimators=20, n_jobs=-1).fit(X, y)
    holed = X.copy()
    holed.iloc[5, 2] = np.nan
    proba = model.predict_proba(holed)
    assert np.isnan(proba[5]).all() and np.isfinite(np.delete(proba, 5, axis=0)).all()


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_xgboost_on_two_threads_repeats_its_bytes(task):
    X, noisy = _data(seed=2)
    y = (noisy > 0).astype(float) if task == "classification" else 0.01 * noisy
    params = {"n_estimators": 40, "n_jobs": 2, "random_state": 5}
    a = make_model("xgboost", task=task, **params).fit(X, y)
    b = make_model("xgboost", task=task, **params).fit(X, y)
    out = (lambda m: m.predict_proba(X)) if task == "classification" else (lambda m: m.predict(X))
    assert out(a).tobytes() == out(b).tobytes()


def test_training_a_threaded_forest_twice_gives_the_same_prediction_bytes(tmp_path):
    repo = Path(__file__).resolve().parents[1]
    cfg = {
        "name": "rf-bytes",
        "data": {
            "source": "synthetic",
            "start": "2024-02-01",
            "end": "2024-02-15",
            "store_root": str(tmp_path / "raw"),
        },
        "features": str(repo / "configs" / "features" / "minimal.yaml"),
        "model": {"name": "random_forest", "params": {"n_estimators": 40, "n_jobs": -1}},
        "validation": {"n_splits": 2, "test_size": 60},
        "output_dir": str(tmp_path / "runs"),
        "fit_final": False,
    }
    a = train(cfg, tracking=False, progress=False)
    b = train(cfg, tracking=False, progress=False)
    for col in a.predictions.columns:
        assert a.predictions[col].to_numpy().tobytes() == b.predictions[col].to_numpy().tobytes()
    assert a.aggregate.keys() == b.aggregate.keys()
    assert all(
        np.asarray(a.aggregate[k]).tobytes() == np.asarray(b.aggregate[k]).tobytes()
        for k in a.aggregate
    )
