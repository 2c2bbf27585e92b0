"""Per-model work done once: a served model predicts on every request, and on a few hundred
candles the fixed costs of ``build_features`` and the estimator's input checks (spec
parameters re-validated, a feature DataFrame built, copied, re-ordered and cast) outweigh
the arithmetic.

``Plan.for_model`` fixes, at load time, each feature's compute function and validated
parameters and the model's column order. ``Plan.predict`` then computes the same features
with the same functions straight into the matrix the model's estimator reads, and calls
that estimator as the model's own ``predict_proba``/``predict`` would: the numbers are
bit-identical (tests compare them with ``build_features`` and the model's methods). Models
whose prediction is not the plain tabular one (forests, boosting, sequence models) get no
plan and take the general path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class _Step:
    """One spec entry: compute with these parameters, keep ``slots`` (output i -> column j)."""

    compute: Callable[[pd.DataFrame, Any], list[np.ndarray]]
    params: Any
    slots: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Plan:
    steps: tuple[_Step, ...]
    n_columns: int
    requires: frozenset[str]
    estimator: Any
    kind: str  # "proba" or "predict"

    @classmethod
    def for_model(cls, estimator: Any, spec: Any) -> Plan | None:
        """The plan of a plain tabular model on ``spec``, else None (use the general path)."""
        kind = _tabular_kind(estimator)
        order = getattr(estimator, "feature_names_", None)
        if kind is None or order is None or getattr(estimator, "estimator_", None) is None:
            return None
        position = {name: j for j, name in enumerate(order)}
        steps, found = [], set()
        for item in spec.features:
            params = item.resolved_params()
            names = item.definition.columns(params)
            keep = set(item.columns or names)
            slots = []
            for i, name in enumerate(names):
                column = item.prefix + name
                if name in keep and column in position:
                    slots.append((i, position[column]))
                    found.add(column)
            steps.append(_Step(item.definition.compute, params, tuple(slots)))
        if found != set(order):  # the model reads a column the spec does not make
            return None
        requires = frozenset(c for item in spec.features for c in item.definition.requires)
        return cls(tuple(steps), len(order), requires, estimator, kind)

    def predict(self, df: pd.DataFrame) -> np.ndarray | None:
        """The estimator's output on ``df``'s features (None if ``df`` lacks an input column:
        the general path then raises the error that names it)."""
        if not self.requires.issubset(df.columns):
            return None
        # filled column by column and read as its transpose: the layout of the frame's
        # to_numpy() that the model's own predict would pass on
        block = np.empty((self.n_columns, len(df)))
        for step in self.steps:
            values = step.compute(df, step.params)
            for i, j in step.slots:
                block[j] = np.asarray(values[i], dtype=np.float64)
        matrix = block.T
        ok = np.isfinite(matrix).all(axis=1)
        rows = matrix[ok]
        est = self.estimator
        if self.kind == "proba":
            out = np.full((ok.size, len(est.classes_)), np.nan)
            if rows.shape[0]:
                out[ok] = est.estimator_.predict_proba(rows)
        else:
            out = np.full(ok.size, np.nan)
            if rows.shape[0]:
                out[ok] = est.estimator_.predict(rows)
        return out


def _tabular_kind(estimator: Any) -> str | None:
    """ "proba"/"predict" when the estimator predicts exactly as the tabular base classes do
    (their ``_rows`` and ``predict_proba``/``predict``, not an override), else None."""
    from cryptoai.modeling.models.tabular import _Tabular, _TabularClassifier, _TabularRegressor

    cls = type(estimator)
    if getattr(cls, "_rows", None) is not _Tabular._rows:
        return None
    if isinstance(estimator, _TabularClassifier):
        return "proba" if cls.predict_proba is _TabularClassifier.predict_proba else None
    if isinstance(estimator, _TabularRegressor):
        return "predict" if cls.predict is _TabularRegressor.predict else None
    return None
