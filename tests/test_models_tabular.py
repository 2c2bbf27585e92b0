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


# ------------------------------------------------------- the matrix hook (serving plan)
def _random_problem(rng, task):
    n, k = int(rng.integers(60, 400)), int(rng.integers(1, 25))
    X = rng.normal(size=(n, k)) * rng.lognormal(size=k) + rng.normal(size=k) * 10
    signal = X @ rng.normal(size=k)
    if task == "classification":
        y = (signal + rng.normal(size=n) > np.median(signal)).astype(float)
    else:
        y = signal + rng.normal(size=n)
    return pd.DataFrame(X, columns=[f"f{i}" for i in range(k)]), y


@pytest.mark.parametrize(("name", "task"), [("logreg", "classification"), ("ridge", "regression")])
def test_predict_rows_is_scikit_learns_own_answer_bit_for_bit(name, task):
    """The closed-form linear path against the fitted pipeline's own predict_proba/predict,
    on many fits and inputs in both memory orders (a matmul's bits can depend on layout)."""
    rng = np.random.default_rng(11)
    for trial in range(60):
        X, y = _random_problem(rng, task)
        params = {"C": float(rng.uniform(0.01, 10))} if name == "logreg" else {}
        model = make_model(name, task, **params).fit(X, y)
        for order in ("C", "F"):
            Z = np.array(rng.normal(size=(int(rng.integers(1, 700)), X.shape[1])) * 4, order=order)
            Z[rng.random(Z.shape) < 0.01] *= 1e6  # a few extreme rows: saturated sigmoids
            ours = model.predict_rows(Z)
            theirs = (
                model.estimator_.predict_proba(Z)
                if task == "classification"
                else model.estimator_.predict(Z)
            )
            assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
            assert np.array_equal(ours, theirs), (trial, order)


def test_predict_rows_hands_other_shapes_to_scikit_learn():
    """Three classes: not the binary closed form, still scikit-learn's numbers."""
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    y = np.digitize(X["a"].to_numpy(), [-0.5, 0.5]).astype(float)
    model = make_model("logreg", "classification").fit(X, y)
    Z = rng.normal(size=(50, 3))
    assert np.array_equal(model.predict_rows(Z), model.estimator_.predict_proba(Z))
    assert np.array_equal(model.predict_proba(pd.DataFrame(Z, columns=["a", "b", "c"])),
                          model.estimator_.predict_proba(Z))  # fmt: skip


def test_row_predictor_only_where_predict_is_the_shared_row_wise_one():
    X, y = _data(200)
    assert make_model("logreg", "classification").fit(X, y).row_predictor() is not None
    assert make_model("ridge", "regression").fit(X, y.astype(float)).row_predictor() is not None
    forest = make_model("random_forest", "classification", n_estimators=5).fit(X, y)
    assert forest.row_predictor() is None  # forests sum their trees in their own order

    class Shifted(type(make_model("logreg", "classification"))):
        def predict_proba(self, X):
            return super().predict_proba(X) * 0.5

    assert Shifted().fit(X, y).row_predictor() is None


def test_as_features_returns_a_frame_in_fit_order_unchanged_and_fixes_others():
    from cryptoai.modeling.models.base import as_features

    X, _ = _data(50)
    columns = list(X.columns)
    assert as_features(X, columns) is X  # already float64 in fit order: no copy
    shuffled = X[columns[::-1]]
    fixed = as_features(shuffled, columns)
    assert fixed is not shuffled and list(fixed.columns) == columns
    pd.testing.assert_frame_equal(fixed, X)
    as_int = X.assign(n1=np.arange(len(X)))
    assert as_int["n1"].dtype != np.float64
    cast = as_features(as_int, columns)
    assert cast is not as_int and (cast.dtypes == np.float64).all()
    np.testing.assert_array_equal(cast["n1"].to_numpy(), np.arange(len(X), dtype=float))
    with pytest.raises(BadInputError, match="n3"):
        as_features(X.drop(columns="n3"), columns)


def test_predictions_equal_through_either_as_features_route():
    X, y = _data(300, seed=2)
    model = make_model("logreg", "classification").fit(X, y)
    shuffled = X[list(X.columns)[::-1]]
    assert np.array_equal(model.predict_proba(X), model.predict_proba(shuffled))
    rows = X.to_numpy()[np.isfinite(X.to_numpy()).all(axis=1)]  # the rows predict_proba reads
    assert np.array_equal(model.predict_proba(X), model.estimator_.predict_proba(rows))
