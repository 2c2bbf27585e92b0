"""Feature selection: drop near-duplicates, keep the most important.

Fit selection on training rows only (inside each walk-forward fold): choosing features with
the test period's target leaks it into the model.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError

log = logging.getLogger(__name__)


def correlation_prune(features: pd.DataFrame, threshold: float = 0.95) -> list[str]:
    """Columns kept after dropping each one whose |Pearson correlation| with an earlier kept
    column exceeds ``threshold``.

    Column order is the priority (the spec's order): of a correlated pair the earlier column
    stays. Correlations use pairwise complete rows; a constant column correlates with nothing
    and is kept. Returns the kept names in their original order.
    """
    if not 0 < threshold <= 1:
        raise BadInputError(f"correlation threshold must be in (0, 1], got {threshold!r}")
    if features.columns.duplicated().any():
        raise BadInputError("feature columns must have unique names before pruning")
    corr = features.astype("float64").corr().abs().to_numpy()
    names = list(features.columns)
    kept: list[int] = []
    for j in range(len(names)):
        if not any(corr[j, k] > threshold for k in kept):
            kept.append(j)
    dropped = len(names) - len(kept)
    log.info("correlation pruning at %.2f kept %d of %d columns", threshold, len(kept), len(names))
    if dropped:
        log.debug("dropped: %s", [names[j] for j in range(len(names)) if j not in kept])
    return [names[j] for j in kept]


def _is_classification(y: pd.Series) -> bool:
    values = y.to_numpy(dtype=np.float64)
    return bool(np.all(values == np.round(values)) and np.unique(values).size <= 20)


def _default_estimator(classification: bool, seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestClassifier if classification else RandomForestRegressor
    return cls(
        n_estimators=100, min_samples_leaf=20, max_features="sqrt", random_state=seed, n_jobs=1
    )


def _importances(estimator: Any, x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    if hasattr(estimator, "feature_importances_"):
        return np.asarray(estimator.feature_importances_, dtype=np.float64)
    if hasattr(estimator, "coef_"):
        coef = np.abs(np.atleast_2d(estimator.coef_))
        return coef.mean(axis=0)
    from sklearn.inspection import permutation_importance

    result = permutation_importance(estimator, x, y, n_repeats=5, random_state=seed)
    return np.asarray(result.importances_mean, dtype=np.float64)


def importance_prune(
    features: pd.DataFrame,
    target: pd.Series,
    *,
    estimator: Any = None,
    keep: int | float,
    seed: int,
) -> list[str]:
    """The ``keep`` most important columns (a count, or a fraction in (0, 1]), most important
    first, ties broken by column order.

    Rows with a NaN target or feature are left out. The default estimator is a seeded random
    forest (impurity importance; classifier for integer targets with few values, regressor
    otherwise). A given estimator is cloned and seeded; its ``feature_importances_`` or
    ``|coef_|`` are used, else permutation importance with ``seed``. Same inputs and seed give
    the same list.
    """
    from sklearn.base import clone

    names = list(features.columns)
    if not names:
        raise BadInputError("importance_prune got no feature columns")
    if isinstance(keep, bool) or not isinstance(keep, int | float):
        raise BadInputError(f"keep must be a count or a fraction in (0, 1], got {keep!r}")
    if isinstance(keep, float):
        if not 0 < keep <= 1:
            raise BadInputError(f"keep as a fraction must be in (0, 1], got {keep!r}")
        count = max(1, math.ceil(keep * len(names)))
    else:
        if keep < 1:
            raise BadInputError(f"keep must be at least 1 column, got {keep}")
        count = min(keep, len(names))
    if not features.index.equals(target.index):
        target = target.reindex(features.index)
    data = features.astype("float64")
    rows = target.notna().to_numpy() & data.notna().all(axis=1).to_numpy()
    if rows.sum() < 2:
        raise BadInputError(
            "importance_prune needs rows where the target and all features are known: "
            "drop warm-up rows or features that are always NaN"
        )
    x = data.to_numpy()[rows]
    y_series = target[rows]
    classification = _is_classification(y_series)
    y = y_series.to_numpy()
    if estimator is None:
        model = _default_estimator(classification, seed)
    else:
        model = clone(estimator)
        if "random_state" in model.get_params():
            model.set_params(random_state=seed)
    model.fit(x, y)
    scores = _importances(model, x, y, seed)
    order = sorted(range(len(names)), key=lambda j: (-scores[j], j))
    chosen = [names[j] for j in order[:count]]
    log.info("importance pruning kept %d of %d columns", len(chosen), len(names))
    return chosen
