"""Tabular models behind the shared estimator interface, and the registry that names them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cryptoai.errors import BadInputError
from cryptoai.modeling.models import available_models, make_model

CLASSIFIERS = ["logreg", "random_forest", "xgboost"]
REGRESSORS = ["ridge", "random_forest", "xgboost"]
SMALL = {"random_forest": {"n_estimators": 30}, "xgboost": {"n_estimators": 40}}


def _data(n=400, seed=0, labels=(0.0, 1.0)):
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    X = pd.DataFrame(rng.normal(size=(n, 4)), index=idx, columns=["sig", "n1", "n2", "n3"])
    y = pd.Series(np.where(X["sig"] > 0, labels[1], labels[0]), index=idx)
    return X, y


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifiers_learn_a_clear_signal_out_of_sample(name):
    X, y = _data()
    model = make_model(name, **SMALL.get(name, {})).fit(X.iloc[:300], y.iloc[:300])
    proba = model.predict_proba(X.iloc[300:])
    assert proba.shape == (100, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    pred = model.predict(X.iloc[300:])
    assert np.mean(pred == y.iloc[300:].to_numpy()) > 0.85
    assert list(model.classes_) == [0.0, 1.0]
    imp = model.feature_importances()
    assert list(imp.index) == list(X.columns) and imp.idxmax() == "sig"


@pytest.mark.parametrize("name", REGRESSORS)
def test_regressors_learn_a_clear_signal_out_of_sample(name):
    X, _ = _data()
    y = 0.01 * X["sig"] + 0.001 * np.random.default_rng(1).normal(size=len(X))
    model = make_model(name, task="regression", **SMALL.get(name, {})).fit(X[:300], y[:300])
    pred = model.predict(X.iloc[300:])
    assert pred.shape == (100,)
    assert np.corrcoef(pred, y.iloc[300:])[0, 1] > 0.9


def test_logreg_matches_a_plain_sklearn_pipeline():
    X, y = _data(seed=4)
    y[::7] = 1 - y[::7]  # some noise so the fit is not degenerate
    ours = make_model("logreg", C=0.5).fit(X, y).predict_proba(X)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=1000, random_state=0))
    np.testing.assert_allclose(ours, ref.fit(X.to_numpy(), y).predict_proba(X.to_numpy()))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_nan_rows_are_skipped_in_fit_and_predicted_as_nan(name):
    X, y = _data()
    X.iloc[:20, 1] = np.nan  # warm-up
    y.iloc[-5:] = np.nan  # unknown labels at the end
    model = make_model(name, **SMALL.get(name, {})).fit(X, y)
    proba = model.predict_proba(X)
    assert np.isnan(proba[:20]).all() and np.isfinite(proba[20:]).all()
    pred = model.predict(X)
    assert np.isnan(pred[:20]).all() and set(pred[20:]) <= {0.0, 1.0}


def test_any_label_set_is_encoded_for_xgboost():
    X, y = _data(labels=(-1.0, 1.0))
    y.iloc[::5] = 0.0  # three classes like the triple barrier
    model = make_model("xgboost", n_estimators=20).fit(X, y)
    assert list(model.classes_) == [-1.0, 0.0, 1.0]
    assert set(model.predict(X)) <= {-1.0, 0.0, 1.0}
    assert model.predict_proba(X).shape == (len(X), 3)


def test_columns_are_matched_by_name_at_predict_time():
    X, y = _data()
    model = make_model("xgboost", n_estimators=20).fit(X, y)
    shuffled = X[["n3", "sig", "n2", "n1"]]
    np.testing.assert_array_equal(model.predict_proba(shuffled), model.predict_proba(X))
    with pytest.raises(BadInputError, match="sig"):
        model.predict_proba(X.drop(columns="sig"))


@pytest.mark.parametrize("name", ["random_forest", "xgboost"])
def test_same_seed_same_predictions_other_seed_differs(name):
    X, y = _data()
    y.iloc[::3] = 1 - y.iloc[::3]
    kw = SMALL[name]
    a = make_model(name, random_state=7, **kw).fit(X, y).predict_proba(X)
    b = make_model(name, random_state=7, **kw).fit(X, y).predict_proba(X)
    c = make_model(name, random_state=8, **kw).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_sklearn_params_and_clone():
    model = make_model("random_forest", n_estimators=12, max_depth=3)
    assert model.get_params()["n_estimators"] == 12
    copy = clone(model).set_params(max_depth=5)
    assert copy.get_params()["max_depth"] == 5 and model.get_params()["max_depth"] == 3
    X, y = _data()
    fitted = copy.fit(X, y)
    assert not hasattr(clone(fitted), "estimator_")


def test_one_class_training_is_a_clear_error():
    X, _ = _data()
    with pytest.raises(BadInputError, match="at least two"):
        make_model("logreg").fit(X, pd.Series(1.0, index=X.index))


def test_no_usable_rows_is_a_clear_error():
    X, y = _data(n=20)
    X.iloc[:, 0] = np.nan
    with pytest.raises(BadInputError, match="no usable rows"):
        make_model("logreg").fit(X, y)


def test_registry_names_tasks_and_errors():
    assert {"logreg", "random_forest", "xgboost", "lstm", "gru", "tft", "baseline"} <= set(
        available_models("classification")
    )
    assert "nhits" in available_models("regression") and "ridge" in available_models("regression")
    assert type(make_model("xgboost", task="regression")).__name__ == "BoostedRegressor"
    with pytest.raises(BadInputError, match="unknown model"):
        make_model("svm")
    with pytest.raises(BadInputError, match="does not do regression"):
        make_model("logreg", task="regression")
    with pytest.raises(BadInputError, match="n_trees"):
        make_model("random_forest", n_trees=10)
    with pytest.raises(BadInputError, match="unknown task"):
        make_model("logreg", task="ranking")
