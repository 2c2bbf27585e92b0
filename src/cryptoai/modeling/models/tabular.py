"""Tabular models: each bar's prediction uses that bar's feature row only.

Thin wrappers over scikit-learn and xgboost that add the shared contract (NaN rows in,
NaN predictions out; any label set, encoded for the library; feature names checked at
predict time) and nothing else. The naive baselines live here too, so they run through
exactly the same fold loop as the models they are compared with.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from cryptoai.modeling.models.base import (
    BaseModel,
    ClassifierModel,
    RegressorModel,
    as_features,
    as_target,
    encode_classes,
    finite_rows,
    require_rows,
)
from cryptoai.modeling.models.registry import register_model


class _Tabular(BaseModel):
    """Shared fit/predict plumbing; subclasses build the library estimator."""

    _min_classes = 2

    def _build(self):
        raise NotImplementedError

    def _raw_importances(self) -> np.ndarray | None:
        return getattr(self.estimator_, "feature_importances_", None)

    def fit(self, X, y) -> _Tabular:
        frame = as_features(X)
        target = as_target(y, len(frame))
        rows = finite_rows(frame) & np.isfinite(target)
        require_rows(rows, type(self).__name__)
        values = target[rows]
        if self.task == "classification":
            self.classes_, values = encode_classes(values, min_classes=self._min_classes)
        self.feature_names_ = list(frame.columns)
        self.n_features_in_ = len(self.feature_names_)
        self.estimator_ = self._build().fit(frame.to_numpy()[rows], values)
        return self

    def _rows(self, X) -> tuple[np.ndarray, np.ndarray]:
        frame = as_features(X, self.feature_names_)
        ok = finite_rows(frame)
        return frame.to_numpy()[ok], ok

    def predict_rows(self, values: np.ndarray) -> np.ndarray:
        """The fitted estimator's output on a matrix of finite feature rows in
        ``feature_names_`` order: class probabilities (columns follow ``classes_``) for a
        classifier, predictions for a regressor. ``predict_proba``/``predict`` give these
        numbers for their finite rows (NaN for the others), after the frame checks."""
        raise NotImplementedError

    def row_predictor(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """``predict_rows`` where this model's ``predict_proba`` (classifier) or ``predict``
        (regressor) is exactly "finite rows in fit order -> ``predict_rows``, NaN elsewhere"
        (the shared one, not overridden), else None: a caller that has the feature matrix
        in fit order (the serving plan) may then call it directly."""
        cls = type(self)
        if cls._rows is not _Tabular._rows:
            return None
        if isinstance(self, _TabularClassifier):
            shared = cls.predict_proba is _TabularClassifier.predict_proba
        else:
            shared = (
                isinstance(self, _TabularRegressor) and cls.predict is _TabularRegressor.predict
            )
        return self.predict_rows if shared else None

    def feature_importances(self) -> pd.Series | None:
        raw = self._raw_importances()
        return None if raw is None else pd.Series(np.asarray(raw, float), index=self.feature_names_)


class _TabularClassifier(ClassifierModel, _Tabular):
    def predict_proba(self, X) -> np.ndarray:
        values, ok = self._rows(X)
        out = np.full((ok.size, len(self.classes_)), np.nan)
        if values.shape[0]:
            out[ok] = self.predict_rows(values)
        return out

    def predict_rows(self, values: np.ndarray) -> np.ndarray:
        return self.estimator_.predict_proba(values)


class _TabularRegressor(RegressorModel, _Tabular):
    def predict(self, X) -> np.ndarray:
        values, ok = self._rows(X)
        out = np.full(ok.size, np.nan)
        if values.shape[0]:
            out[ok] = self.predict_rows(values)
        return out

    def predict_rows(self, values: np.ndarray) -> np.ndarray:
        return self.estimator_.predict(values)


def _scaled(pipeline, values: np.ndarray) -> np.ndarray | None:
    """``StandardScaler.transform`` of ``values`` as scikit-learn computes it (a float64 copy
    in the same memory order, minus ``mean_``, divided by ``scale_``), for a fitted
    two-step pipeline that starts with a plain ``StandardScaler``; None otherwise."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if type(pipeline) is not Pipeline or len(pipeline.steps) != 2:
        return None
    scaler = pipeline.steps[0][1]
    if type(scaler) is not StandardScaler or values.dtype != np.float64 or values.ndim != 2:
        return None
    if values.shape[1] != getattr(scaler, "n_features_in_", -1):
        return None
    X = np.array(values, dtype=np.float64, copy=True)  # check_array's copy: order "K"
    if scaler.with_mean:
        X -= scaler.mean_
    if scaler.with_std:
        X /= scaler.scale_
    return X


# -------------------------------------------------------------------------- linear
@register_model("logreg")
class LogisticModel(_TabularClassifier):
    """Logistic regression on standardized features (scaling is fitted on the training rows)."""

    def __init__(
        self, C: float = 1.0, class_weight=None, max_iter: int = 1000, random_state: int = 0
    ):
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.random_state = random_state

    def _build(self):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(
            StandardScaler(),
            LogisticRegression(
                C=self.C,
                class_weight=self.class_weight,
                max_iter=self.max_iter,
                random_state=self.random_state,
            ),
        )

    def _raw_importances(self) -> np.ndarray:
        """Mean absolute coefficient per standardized feature."""
        return np.abs(self.estimator_[-1].coef_).mean(axis=0)

    def predict_rows(self, values: np.ndarray) -> np.ndarray:
        """The pipeline's ``predict_proba`` for two classes, computed as scikit-learn does
        (scaled copy, ``X @ coef_.T + intercept_``, ``scipy.special.expit`` in place,
        ``[1 - p, p]``) without its per-call input validation: the same bits (tested against
        scikit-learn's own ``predict_proba``). Anything else goes to scikit-learn."""
        from sklearn.linear_model import LogisticRegression

        lr = self.estimator_[-1]
        X = _scaled(self.estimator_, values) if type(lr) is LogisticRegression else None
        if X is None or len(lr.classes_) != 2 or lr.coef_.shape != (1, X.shape[1]):
            return super().predict_rows(values)
        from scipy.special import expit

        prob = (X @ lr.coef_.T + lr.intercept_).reshape(-1)
        prob = expit(prob, out=prob)
        return np.stack([1 - prob, prob], axis=1)


@register_model("ridge")
class RidgeModel(_TabularRegressor):
    """Ridge regression on standardized features: the linear model for return targets."""

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def _build(self):
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), Ridge(alpha=self.alpha))

    def _raw_importances(self) -> np.ndarray:
        return np.abs(np.ravel(self.estimator_[-1].coef_))

    def predict_rows(self, values: np.ndarray) -> np.ndarray:
        """The pipeline's ``predict``, computed as scikit-learn does (scaled copy, then
        ``X @ coef_ + intercept_``, ``coef_.T`` for a 2-D ``coef_``) without its per-call
        input validation: the same bits (tested against scikit-learn's ``predict``)."""
        from sklearn.linear_model import Ridge

        reg = self.estimator_[-1]
        X = _scaled(self.estimator_, values) if type(reg) is Ridge else None
        if X is None or reg.coef_.shape[-1] != X.shape[1]:
            return super().predict_rows(values)
        coef = reg.coef_
        return X @ coef + reg.intercept_ if coef.ndim == 1 else X @ coef.T + reg.intercept_


# -------------------------------------------------------------------------- forests
def _forest_output(forest, values: np.ndarray, method: str) -> np.ndarray:
    """Mean of the trees' outputs, summed in tree order whatever ``n_jobs`` is.

    scikit-learn adds each tree's output to a shared total as its thread finishes, so with
    ``n_jobs != 1`` the order of the additions (and the last bits of every probability)
    changes from run to run. Here the trees still run in parallel but their outputs are
    summed in tree order, exactly as ``n_jobs=1`` does: same fit, same bytes. Fitting needs
    no such care: each tree's seed is drawn before the trees are built.
    """
    if forest.n_jobs in (None, 1):
        return getattr(forest, method)(values)
    from sklearn.utils.parallel import Parallel, delayed

    X = np.ascontiguousarray(values, dtype=np.float32)  # the trees' own input dtype
    outputs = Parallel(n_jobs=forest.n_jobs, prefer="threads", return_as="generator")(
        delayed(getattr(tree, method))(X, check_input=False) for tree in forest.estimators_
    )  # a generator yields in submission order, so the sum below is in tree order
    total = None
    for out in outputs:
        if total is None:
            total = np.zeros(out.shape, dtype=np.float64)
        total += out
    total /= len(forest.estimators_)
    return total


class _ForestParams:
    def __init__(
        self,
        n_estimators: int = 200,
        max_depth: int | None = None,
        min_samples_leaf: int = 1,
        max_features: str | float | int | None = "sqrt",
        n_jobs: int = 1,
        random_state: int = 0,
    ):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.n_jobs = n_jobs
        self.random_state = random_state


@register_model("random_forest")
class ForestClassifier(_ForestParams, _TabularClassifier):
    """Random forest classifier (scikit-learn)."""

    def __init__(
        self,
        n_estimators: int = 200,
        max_depth: int | None = None,
        min_samples_leaf: int = 1,
        max_features: str | float | int | None = "sqrt",
        class_weight=None,
        n_jobs: int = 1,
        random_state: int = 0,
    ):
        super().__init__(
            n_estimators, max_depth, min_samples_leaf, max_features, n_jobs, random_state
        )
        self.class_weight = class_weight

    def _build(self):
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(**self.get_params())  # the estimator's own parameters

    def predict_proba(self, X) -> np.ndarray:
        values, ok = self._rows(X)
        out = np.full((ok.size, len(self.classes_)), np.nan)
        if values.shape[0]:
            out[ok] = _forest_output(self.estimator_, values, "predict_proba")
        return out


@register_model("random_forest")
class ForestRegressor(_ForestParams, _TabularRegressor):
    """Random forest regressor (scikit-learn)."""

    def __init__(
        self,
        n_estimators: int = 200,
        max_depth: int | None = None,
        min_samples_leaf: int = 1,
        max_features: str | float | int | None = 1.0,
        n_jobs: int = 1,
        random_state: int = 0,
    ):
        super().__init__(
            n_estimators, max_depth, min_samples_leaf, max_features, n_jobs, random_state
        )

    def _build(self):
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(**self.get_params())

    def predict(self, X) -> np.ndarray:
        values, ok = self._rows(X)
        out = np.full(ok.size, np.nan)
        if values.shape[0]:
            out[ok] = _forest_output(self.estimator_, values, "predict")
        return out


# -------------------------------------------------------------------------- xgboost
class _BoostParams:
    def __init__(
        self,
        n_estimators: int = 300,
        max_depth: int = 4,
        learning_rate: float = 0.05,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        min_child_weight: float = 1.0,
        reg_lambda: float = 1.0,
        n_jobs: int = 1,
        random_state: int = 0,
    ):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.n_jobs = n_jobs
        self.random_state = random_state


@register_model("xgboost")
class BoostedClassifier(_BoostParams, _TabularClassifier):
    """Gradient-boosted trees classifier (xgboost); labels are encoded to 0..K-1 for it."""

    def _build(self):
        from xgboost import XGBClassifier

        return XGBClassifier(**self.get_params())


@register_model("xgboost")
class BoostedRegressor(_BoostParams, _TabularRegressor):
    """Gradient-boosted trees regressor (xgboost, squared error)."""

    def _build(self):
        from xgboost import XGBRegressor

        return XGBRegressor(**self.get_params())


# ------------------------------------------------------------------------ baselines
@register_model("baseline")
class BaselineClassifier(_TabularClassifier):
    """Naive classifier: the training fold's class frequencies; predicts its majority class."""

    _min_classes = 1

    def _build(self):
        from sklearn.dummy import DummyClassifier

        return DummyClassifier(strategy="prior")


@register_model("baseline")
class BaselineRegressor(_TabularRegressor):
    """Naive forecast of a zero return for every bar (a random walk's best guess)."""

    def _build(self):
        from sklearn.dummy import DummyRegressor

        return DummyRegressor(strategy="constant", constant=0.0)
