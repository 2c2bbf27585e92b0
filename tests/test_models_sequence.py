"""Sequence models (pytorch-forecasting) behind the tabular interface: aligned, past-only, seeded.

Every model here trains for a few epochs on a few hundred bars with tiny networks.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from cryptoai.errors import BadInputError
from cryptoai.modeling.models import make_model

# torch training, even tiny, takes seconds per test on a 2-core machine: `make test` runs them
pytestmark = pytest.mark.slow

TINY = {"hidden_size": 8, "max_epochs": 1, "batch_size": 32, "learning_rate": 0.02}


def _frame(n=500, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    return pd.DataFrame(rng.normal(size=(n, 3)), index=idx, columns=["a", "b.c", "d"])


@pytest.fixture(scope="module")
def fitted():
    X = _frame()
    y = (X["a"].shift(1) > 0).astype(float)
    model = make_model("gru", window=6, random_state=3, **TINY).fit(X.iloc[:400], y.iloc[:400])
    return model, X


def test_learns_from_past_rows_and_cannot_see_future_rows():
    """A label made from bar t-2 is learnable from the window ending at t; one made from
    bar t+1 must not be, or the window (or the label alignment) leaks the future. The
    windowing is shared by all architectures; the per-architecture window bounds are
    checked in ``test_each_prediction_sees_exactly_its_window``."""
    arch = "gru"
    X = _frame(700)
    past = (X["a"].shift(2) > 0).astype(float)
    future = (X["a"].shift(-1) > 0).astype(float)
    params = {**TINY, "window": 4, "max_epochs": 6, "hidden_size": 16}
    accs = {}
    for name, y in {"past": past, "future": future}.items():
        model = make_model(arch, **params).fit(X.iloc[:500], y.iloc[:500])
        pred = model.predict(X.iloc[450:])[50:]  # 50 bars of context before the test bars
        accs[name] = np.mean(pred == y.iloc[500:].to_numpy())
    assert accs["past"] > 0.8
    assert 0.35 < accs["future"] < 0.65


def test_predictions_before_t_do_not_depend_on_bars_after_t(fitted):
    model, X = fitted
    full = model.predict_proba(X)
    t = 450
    truncated = model.predict_proba(X.iloc[: t + 1])
    np.testing.assert_allclose(truncated, full[: t + 1], rtol=0, atol=1e-6)
    scrambled = X.copy()
    scrambled.iloc[t + 1 :] = np.random.default_rng(9).normal(size=(len(X) - t - 1, 3)) * 50
    np.testing.assert_allclose(model.predict_proba(scrambled)[: t + 1], full[: t + 1], atol=1e-6)


@pytest.mark.parametrize(
    ("arch", "task"),
    [("gru", "classification"), ("tft", "classification"), ("nhits", "regression")],
)
def test_each_prediction_sees_exactly_its_window(arch, task):
    """Changing the first row of the window ending at t moves the prediction at t; changing
    the row just before it does not."""
    X = _frame(300)
    y = (X["a"] > 0).astype(float) if task == "classification" else X["a"].shift(1)
    model = make_model(arch, task=task, window=5, **TINY).fit(X, y)
    out = model.predict_proba if task == "classification" else model.predict
    t, w = 200, model.window
    base = out(X)[t]
    outside = X.copy()
    outside.iloc[t - w] = 25.0
    np.testing.assert_allclose(out(outside)[t], base, atol=1e-6)
    inside = X.copy()
    inside.iloc[t - w + 1] = 25.0
    assert not np.allclose(out(inside)[t], base, atol=1e-6)


def test_output_is_aligned_to_bars_with_nan_without_full_history(fitted):
    model, X = fitted
    Xg = X.copy()
    Xg.iloc[200, 1] = np.nan  # a hole: every window containing bar 200 has no prediction
    proba = model.predict_proba(Xg)
    assert proba.shape == (len(X), 2)
    w = model.window
    missing = np.flatnonzero(np.isnan(proba).any(axis=1))
    assert missing.tolist() == [*range(w - 1), *range(200, 200 + w)]
    np.testing.assert_allclose(np.delete(proba, missing, axis=0).sum(axis=1), 1.0, rtol=1e-6)
    # the same bar predicted from a shorter frame that still holds its window
    sub = model.predict_proba(X.iloc[100:])
    np.testing.assert_allclose(sub[w - 1 :], model.predict_proba(X)[100 + w - 1 :], atol=1e-6)
    assert model.context_length == w - 1


def test_same_seed_same_predictions_other_seed_differs():
    X = _frame(300)
    y = (X["a"] > 0).astype(float)
    runs = [
        make_model("gru", window=5, random_state=s, **TINY).fit(X, y).predict_proba(X)
        for s in (11, 11, 12)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2], equal_nan=True)


def test_checkpoint_and_pickle_round_trip(tmp_path, fitted):
    X = _frame(300)
    y = (X["a"] > 0).astype(float)
    model = make_model("lstm", window=5, checkpoint_dir=str(tmp_path / "ck"), **TINY).fit(X, y)
    assert model.checkpoint_path_ and (tmp_path / "ck" / "last.ckpt").is_file()
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("arch", ["tft", "nhits"])
def test_regressors_forecast_on_the_target_scale(arch):
    X = _frame(500)
    y = 0.01 * X["a"].shift(1) + 0.02  # mean and scale far from 0 and 1
    model = make_model(arch, task="regression", window=4, **{**TINY, "max_epochs": 4})
    pred = model.fit(X.iloc[:400], y.iloc[:400]).predict(X.iloc[350:])[50:]
    assert np.isfinite(pred).all()
    assert np.corrcoef(pred, y.iloc[400:])[0, 1] > 0.7
    assert abs(pred.mean() - 0.02) < 0.005


def test_multiclass_labels_round_trip():
    X = _frame(300)
    y = np.sign(X["a"]).where(X["a"].abs() > 0.3, 0.0)
    model = make_model("gru", window=4, **TINY).fit(X, y)
    assert list(model.classes_) == [-1.0, 0.0, 1.0]
    proba = model.predict_proba(X)
    assert proba.shape == (300, 3)
    assert set(np.unique(model.predict(X)[3:])) <= {-1.0, 0.0, 1.0}


def test_bad_settings_are_clear_errors():
    X = _frame(40)
    y = (X["a"] > 0).astype(float)
    with pytest.raises(BadInputError, match="window"):
        make_model("lstm", window=1).fit(X, y)
    with pytest.raises(BadInputError, match="complete feature rows"):
        make_model("lstm", window=50).fit(X, y)
    with pytest.raises(BadInputError, match="does not do classification"):
        make_model("nhits")
