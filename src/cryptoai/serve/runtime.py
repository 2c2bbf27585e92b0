"""Runtime prediction: ``predict(df, model="models:/NAME@champion")`` on raw candles.

A registered model carries its card (see ``cryptoai.tracking.registry.model_card``): the
resolved feature spec, the warm-up, the label meaning. ``predict`` checks the candles against
the OHLCV contract, rebuilds the features with that spec, and returns the model's
predictions on the candles' index (NaN during the warm-up).

Loaded models are cached by resolved version: an alias is re-read on every call (one registry
query), so promoting another version takes effect at the next call without reloading the
ones already in memory. Nothing heavy is imported that the model does not need: a tabular
model never imports torch (cloudpickle imports what the estimator's classes live in).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError
from cryptoai.serve._plan import Plan

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "models:/cryptoai@champion"
_CACHE_SIZE = 8
_cache: OrderedDict[tuple[str, str, int], Predictor] = OrderedDict()
_lock = threading.Lock()


@dataclass
class Predictor:
    """A loaded model version and its card; ``predict`` turns candles into predictions."""

    name: str
    version: int
    alias: str | None
    estimator: Any
    card: dict[str, Any]
    uri: str = ""
    _spec: Any = field(default=None, repr=False)
    _plan: Any = field(default=None, repr=False)

    @property
    def outputs(self) -> list[str]:
        """The prediction columns, in order (e.g. ``proba_up``, ``score``)."""
        return list(self.card["outputs"])

    @property
    def label(self) -> str:
        return str(self.card["label"])

    @property
    def min_bars(self) -> int:
        """Fewest candles that give at least one prediction."""
        return int(self.card.get("warmup_bars", 0)) + int(self.card.get("context_bars", 0)) + 1

    @property
    def spec(self) -> Any:
        if self._spec is None:
            from cryptoai.features.spec import FeatureSpec

            self._spec = FeatureSpec.model_validate(self.card["feature_spec"])
        return self._spec

    @property
    def plan(self) -> Plan | None:
        """The per-model fast path (``cryptoai.serve._plan``), built on first use; None for
        models it does not cover."""
        if self._plan is None:
            plan = Plan.for_model(self.estimator, self.spec)
            want = "predict" if self.card.get("task") == "regression" else "proba"
            self._plan = plan if plan is not None and plan.kind == want else False
        return self._plan or None

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "alias": self.alias}

    def predict(self, df: pd.DataFrame, name: str = "candles") -> pd.DataFrame:
        """Prediction columns on ``df``'s index; NaN where the features are not yet complete."""
        values = self.predict_values(df, name)
        out = pd.DataFrame(values, index=df.index, columns=self.outputs)
        out.attrs["label"] = self.label
        out.attrs["model"] = self.info()
        return out

    def predict_values(self, df: pd.DataFrame, name: str = "candles") -> np.ndarray:
        """``predict``'s numbers as a matrix (rows: ``df``'s candles, columns: ``outputs``)."""
        from cryptoai.data.validate import check_ohlcv

        if not isinstance(df, pd.DataFrame):
            raise BadInputError(f"{name}: expected an OHLCV DataFrame, got {type(df).__name__}")
        check_ohlcv(df, name)
        return self._checked_values(len(df), df, lambda: df, name)

    def predict_columns(
        self,
        times: np.ndarray,
        columns: Mapping[str, np.ndarray],
        frame: Callable[[], pd.DataFrame],
        name: str = "candles",
    ) -> np.ndarray:
        """``predict_values(frame())`` for candles given as arrays: ``times`` (their UTC open
        times, datetime64[ns]), ``columns`` (open, high, low, close, volume as float64) and
        ``frame`` (the same candles as an OHLCV frame, built only where needed: to word a
        contract break, or for a model without a plan). The same checks, errors and numbers.
        """
        from cryptoai.data.frame import OHLCV_COLUMNS
        from cryptoai.data.validate import check_ohlcv, ohlcv_values_hold

        if not ohlcv_values_hold(times, *(columns[c] for c in OHLCV_COLUMNS)):
            check_ohlcv(frame(), name)  # raises the one-line error that names the problem
        return self._checked_values(len(times), columns, frame, name)

    def _checked_values(
        self,
        n: int,
        data: pd.DataFrame | Mapping[str, np.ndarray],
        frame: Callable[[], pd.DataFrame],
        name: str,
    ) -> np.ndarray:
        """The output matrix of candles that met the contract."""
        from cryptoai.features.engineering import build_features

        if n < self.min_bars:
            raise BadInputError(
                f"{name}: {n} bars, but model {self.name} v{self.version} needs at least "
                f"{self.min_bars} (warm-up {self.card.get('warmup_bars', 0)} bars + 1): "
                "pass more history"
            )
        plan = self.plan
        raw = plan.predict(data, frame) if plan is not None else None
        if raw is None:
            raw = self._estimate(build_features(frame(), self.spec))
        values = self._columns(raw)
        values[: int(self.card.get("warmup_bars", 0))] = np.nan
        return values

    def _estimate(self, X: pd.DataFrame) -> np.ndarray:
        """The estimator's raw output: ``predict`` (regression) or ``predict_proba``."""
        if self.card.get("task") == "regression":
            return self.estimator.predict(X)
        return self.estimator.predict_proba(X)

    def _columns(self, raw: np.ndarray) -> np.ndarray:
        """The output columns from the estimator's raw output."""
        est = self.estimator
        if self.card.get("task") == "regression":
            pred = np.asarray(raw, dtype=float).ravel()
            return np.column_stack([pred, np.sign(pred)])
        from cryptoai.modeling.evaluation import direction_score

        proba = np.asarray(raw, dtype=float)
        classes = [float(c) for c in getattr(est, "classes_", self.card.get("classes") or [])]
        score = direction_score(proba, classes)
        if self.label == "regime":
            return _regime_columns(proba, classes, score)
        if self.outputs == ["proba_up", "score"]:
            if 1.0 not in classes:
                raise BadInputError(f"model {self.name} has no 'up' class (classes {classes})")
            return np.column_stack([proba[:, classes.index(1.0)], score])
        return score.reshape(-1, 1)


def _regime_columns(proba: np.ndarray, classes: list[float], score: np.ndarray) -> np.ndarray:
    """``regime`` (the most probable class: -1 down, 0 range, 1 up, 2 high_vol), a probability
    per class (0 for a class the training data never held) and the up-minus-down score."""
    from cryptoai.modeling.labels import REGIMES

    n = proba.shape[0]
    known = np.isfinite(proba).all(axis=1)
    cls = np.full(n, np.nan)
    cls[known] = np.asarray(classes)[np.argmax(proba[known], axis=1)]
    cols = [cls]
    for value in REGIMES:
        col = proba[:, classes.index(value)] if value in classes else np.where(known, 0.0, np.nan)
        cols.append(col)
    return np.column_stack([*cols, score])


def load_predictor(model: str = DEFAULT_MODEL) -> Predictor:
    """The model a registry URI points at now, loaded once per version and cached."""
    import mlflow

    from cryptoai.tracking._store import configure, tracking_uri
    from cryptoai.tracking.registry import resolve_version

    name, version, alias = resolve_version(model)
    key = (tracking_uri(), name, version)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit if hit.alias == alias else _with_alias(hit, alias)
    configure()
    uri = f"models:/{name}/{version}"
    try:
        pyfunc = mlflow.pyfunc.load_model(uri)
    except Exception as exc:  # any loader error (missing artifact, unpickling) is one line
        raise BadInputError(f"cannot load {uri}: {type(exc).__name__}: {exc}") from exc
    card = (pyfunc.metadata.metadata or {}).get("cryptoai")
    if not card:
        raise BadInputError(
            f"{uri} carries no cryptoai card (feature spec, warm-up): register a model logged "
            "by `cryptoai train`"
        )
    inner = pyfunc.unwrap_python_model()
    estimator = getattr(inner, "estimator", None)
    if estimator is None:
        raise BadInputError(f"{uri} was not logged by cryptoai log_model")
    predictor = Predictor(name, version, alias, estimator, card, uri=uri)
    logger.info("loaded %s (%s)", uri, type(estimator).__name__)
    with _lock:
        _cache[key] = predictor
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return predictor


def _with_alias(p: Predictor, alias: str | None) -> Predictor:
    return Predictor(
        p.name, p.version, alias, p.estimator, p.card, uri=p.uri, _spec=p._spec, _plan=p._plan
    )


def clear_cache() -> None:
    """Forget every loaded model (tests, or to free memory)."""
    with _lock:
        _cache.clear()


def predict(df: pd.DataFrame, model: str | Predictor = DEFAULT_MODEL) -> pd.DataFrame:
    """Predictions of a registered model on raw OHLCV candles, one row per candle.

    Columns: ``proba_up`` and ``score`` (in [-1, 1]) for direction models, ``score`` for
    triple-barrier models, ``expected_return`` and ``score`` (its sign) for return models;
    NaN during the feature warm-up. ``df`` must meet the OHLCV contract and hold more bars
    than the warm-up, else a one-line error says what is wrong.
    """
    predictor = model if isinstance(model, Predictor) else load_predictor(model)
    return predictor.predict(df)
