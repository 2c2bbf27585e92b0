"""One estimator interface for every model: tabular or sequence, classifier or regressor.

Models are scikit-learn estimators (``get_params``/``set_params``/``clone`` work) that take
the feature frame as it comes from feature engineering: one row per bar, indexed by
timestamp, NaN during indicator warm-up. ``fit`` skips rows it cannot learn from;
``predict`` returns one value per input row, NaN where a row cannot be predicted (missing
features, or too little history for a sequence model), so outputs stay aligned to bars.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from cryptoai.errors import BadInputError


class BaseModel(BaseEstimator, ABC):
    """What every model offers; subclasses implement ``fit`` and ``predict``/``predict_proba``."""

    task: ClassVar[str] = ""

    @property
    def context_length(self) -> int:
        """Rows of history a prediction needs before its own row (0 for tabular models)."""
        return 0

    @abstractmethod
    def fit(self, X: pd.DataFrame, y) -> BaseModel:
        """Learn from the rows whose features and label are known; returns ``self``."""

    @abstractmethod
    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """One value per input row, NaN where the row cannot be predicted."""

    def feature_importances(self) -> pd.Series | None:
        """Importance per feature (fitted model), or None where the model has no such notion."""
        return None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class ClassifierModel(ClassifierMixin, BaseModel):
    """A classifier: ``predict_proba`` columns follow ``classes_``; ``predict`` is the argmax."""

    task: ClassVar[str] = "classification"

    @abstractmethod
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities per row (columns follow ``classes_``), NaN rows where unknown."""

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Most probable class per row (float, NaN where the row has no prediction)."""
        proba = self.predict_proba(X)
        out = np.full(proba.shape[0], np.nan)
        ok = np.isfinite(proba).all(axis=1)
        out[ok] = np.asarray(self.classes_, dtype=float)[np.argmax(proba[ok], axis=1)]
        return out


class RegressorModel(RegressorMixin, BaseModel):
    """A regressor: ``predict`` is the point forecast."""

    task: ClassVar[str] = "regression"


# ------------------------------------------------------------------- input helpers
def as_features(X, columns: list[str] | None = None) -> pd.DataFrame:
    """Feature frame as float64; with ``columns`` (from fit), checked and put in fit's order.

    A frame already in that form (exactly ``columns``, in order, all float64) is returned as
    it is, not copied: callers read it and never write to it.
    """
    if columns is not None and _in_fit_order(X, columns):
        return X
    frame = X.copy() if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    frame.columns = [str(c) for c in frame.columns]
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise BadInputError(
                f"features {', '.join(missing[:5])} were used in fit but are missing here: "
                "predict with the same feature spec the model was trained on"
            )
        frame = frame[columns]
    try:
        return frame.astype("float64")
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"features must be numeric: {exc}") from exc


def _in_fit_order(X, columns: list[str]) -> bool:
    """Whether ``X`` is a frame of exactly ``columns`` (string labels, in order, no repeats),
    every one float64: what ``as_features`` would make of it, already."""
    if not isinstance(X, pd.DataFrame) or X.shape[1] != len(columns):
        return False
    labels = list(X.columns)
    if labels != columns or len(set(labels)) != len(labels):
        return False
    return all(type(c) is str for c in labels) and all(t == np.float64 for t in X.dtypes)


def as_target(y, n: int) -> np.ndarray:
    """Target values as a float array of the same length as the features."""
    arr = np.asarray(y, dtype=float).ravel()
    if arr.size != n:
        raise BadInputError(f"got {n} feature rows but {arr.size} target values: align X and y")
    return arr


def finite_rows(X: pd.DataFrame) -> np.ndarray:
    """Rows whose features are all finite."""
    return np.isfinite(X.to_numpy(dtype=float)).all(axis=1)


def encode_classes(y: np.ndarray, *, min_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Sorted class labels and each value's position in them (what xgboost and torch need)."""
    classes, codes = np.unique(y, return_inverse=True)
    if classes.size < min_classes:
        raise BadInputError(
            f"training labels hold {classes.size} class(es) ({classes.tolist()}): a classifier "
            "needs at least two; use a longer training window or a different target"
        )
    return classes, codes


def require_rows(mask: np.ndarray, what: str) -> None:
    if not mask.any():
        raise BadInputError(
            f"no usable rows to fit the {what} on (every row has a missing feature or label): "
            "give more history than the longest indicator window and the target horizon"
        )
