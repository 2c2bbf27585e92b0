"""Per-model work done once: a served model predicts on every request, and on a few hundred
candles the fixed costs of ``build_features`` and the estimator's input checks (spec
parameters re-validated, a feature DataFrame built, copied, re-ordered and cast) outweigh
the arithmetic.

``Plan.for_model`` fixes, at load time, each feature's compute function and validated
parameters, the model's column order and its ``row_predictor`` (the tabular models' public
"predict from a matrix in fit order" hook). ``Plan.predict`` then computes the same features
with the same functions straight into the matrix the model reads (built-in features from
plain arrays, no frame), and calls that hook as the model's own ``predict_proba``/``predict``
would: the numbers are bit-identical (tests compare them with ``build_features`` and the
model's methods). Models without the hook (forests, sequence models, a subclass that
predicts its own way) get no plan and take the general path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class _Step:
    """One spec entry: compute with these parameters, keep ``slots`` (output i -> column j).
    ``arrays``: the compute function takes a mapping of column -> array for the frame."""

    compute: Callable[[Any], list[np.ndarray]]  # the entry's outputs on a source
    slots: tuple[tuple[int, int], ...]
    arrays: bool
    requires: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    steps: tuple[_Step, ...]
    n_columns: int
    requires: frozenset[str]
    estimator: Any
    kind: str  # "proba" or "predict"
    rows: Callable[[np.ndarray], np.ndarray]  # the model's predict_rows

    @classmethod
    def for_model(cls, estimator: Any, spec: Any) -> Plan | None:
        """The plan of a plain tabular model on ``spec``, else None (use the general path)."""
        hook = getattr(estimator, "row_predictor", None)
        rows = hook() if callable(hook) else None
        task = getattr(estimator, "task", "")
        kind = {"classification": "proba", "regression": "predict"}.get(task)
        order = getattr(estimator, "feature_names_", None)
        if rows is None or kind is None or order is None:
            return None
        if kind == "proba" and getattr(estimator, "classes_", None) is None:
            return None
        from cryptoai.features.engineering import feature_layout

        position = {name: j for j, name in enumerate(order)}
        steps, found = [], set()
        for entry in feature_layout(spec):
            slots = tuple((i, position[c]) for i, c in entry.kept if c in position)
            found.update(c for _, c in entry.kept if c in position)
            definition = entry.item.definition
            steps.append(
                _Step(
                    entry.outputs,
                    tuple(slots),
                    bool(getattr(definition, "arrays", False)),
                    tuple(definition.requires),
                )
            )
        if found != set(order):  # the model reads a column the spec does not make
            return None
        requires = frozenset(c for item in spec.features for c in item.definition.requires)
        return cls(tuple(steps), len(order), requires, estimator, kind, rows)

    def predict(
        self,
        data: pd.DataFrame | Mapping[str, np.ndarray],
        frame: Callable[[], pd.DataFrame] | None = None,
    ) -> np.ndarray | None:
        """The estimator's output on the features of ``data`` (an OHLCV frame, or its columns
        as float64 arrays with ``frame`` building the frame for a feature that needs one);
        None if ``data`` lacks an input column: the general path then raises the error that
        names it."""
        is_frame = isinstance(data, pd.DataFrame)
        if not self.requires.issubset(data.columns if is_frame else data.keys()):
            return None
        arrays: dict[str, np.ndarray] = {}
        n = len(data) if is_frame else len(next(iter(data.values())))
        # filled column by column and read as its transpose: the layout of the frame's
        # to_numpy() that the model's own predict would pass on
        block = np.empty((self.n_columns, n))
        for step in self.steps:
            if step.arrays:
                for c in step.requires:
                    if c not in arrays:
                        arrays[c] = np.ascontiguousarray(np.asarray(data[c], dtype=np.float64))
                source: Any = arrays
            elif is_frame:
                source = data
            elif frame is not None:
                source = frame()
            else:
                return None
            values = step.compute(source)
            for i, j in step.slots:
                block[j] = np.asarray(values[i], dtype=np.float64)
        matrix = block.T
        ok = np.isfinite(matrix).all(axis=1)
        rows = matrix[ok]
        if self.kind == "proba":
            out = np.full((ok.size, len(self.estimator.classes_)), np.nan)
        else:
            out = np.full(ok.size, np.nan)
        if rows.shape[0]:
            out[ok] = self.rows(rows)
        return out
