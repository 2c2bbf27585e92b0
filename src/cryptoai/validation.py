"""Walk-forward validation: purged and embargoed splits, per-fold metrics, stitched predictions.

Labels look ``horizon`` bars ahead, so a training bar just before a test block "knows"
part of the test block's prices. ``purge`` drops those bars from training; ``embargo``
drops bars right after a test block from any training set that would use them. Every
test bar is predicted by a model that never trained on a label overlapping it, and the
out-of-sample predictions of all folds are stitched into one frame for the backtester.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError

log = logging.getLogger(__name__)

Split = tuple[np.ndarray, np.ndarray]


# --------------------------------------------------------------------------- splits
def walk_forward_splits(
    index_or_n: int | Sequence | pd.Index | np.ndarray,
    *,
    n_splits: int,
    test_size: int | None = None,
    train_size: int | None = None,
    purge: int = 0,
    embargo: int = 0,
    min_train_size: int = 1,
) -> list[Split]:
    """Positional ``(train_idx, test_idx)`` pairs for walk-forward validation.

    The last ``n_splits * test_size`` rows form consecutive test blocks. ``test_size``
    defaults to an equal share of the rows left after the purge gap (and, when rolling, the
    first training window; when expanding, one share is left for the first training set).
    Training for a block at ``[s, e)`` always precedes it and ends at ``s - purge``: the
    ``purge`` rows before a test block are dropped because their labels (which look up to
    ``purge`` rows ahead) overlap it; use ``purge >= horizon``.

    ``train_size=None`` grows the training window from row 0 (expanding); an integer keeps
    the last ``train_size`` rows before the purge gap (rolling).

    ``embargo`` drops the ``embargo`` rows right after every test block from every training
    set (the standard definition). In walk-forward, training never follows its own test
    block, so this only removes rows after *earlier* folds' test blocks: it matters when
    fold predictions are reused downstream, e.g. stacked or fed back as features.
    """
    n = _length(index_or_n)
    for name, value, low in (
        ("n_splits", n_splits, 1),
        ("purge", purge, 0),
        ("embargo", embargo, 0),
        ("min_train_size", min_train_size, 1),
    ):
        if not _whole(value, low):
            raise BadInputError(f"{name} must be an integer >= {low}, got {value!r}")
    if train_size is not None and not _whole(train_size, 1):
        raise BadInputError(f"train_size must be an integer >= 1 or None, got {train_size!r}")
    if test_size is None:
        room = n - purge - (train_size or 0)
        test_size = room // n_splits if train_size else room // (n_splits + 1)
    if not _whole(test_size, 1):
        raise BadInputError(
            f"test_size must be an integer >= 1, got {test_size!r}: give more data or fewer splits"
        )

    first_test = n - n_splits * test_size
    need = min_train_size if train_size is None else max(train_size, min_train_size)
    if first_test - purge < need:
        raise BadInputError(
            f"{n} rows cannot hold {n_splits} test blocks of {test_size} rows, a purge gap of "
            f"{purge} and {need} training rows: use fewer splits, a smaller test_size or "
            "train_size, or more data"
        )

    splits: list[Split] = []
    for k in range(n_splits):
        start = first_test + k * test_size
        stop = start + test_size
        train_end = start - purge
        train_start = 0 if train_size is None else train_end - train_size
        keep = np.ones(train_end - train_start, dtype=bool)
        for j in range(k):  # embargo after earlier test blocks
            e_j = first_test + (j + 1) * test_size
            lo, hi = max(e_j, train_start), min(e_j + embargo, train_end)
            if hi > lo:
                keep[lo - train_start : hi - train_start] = False
        train = np.arange(train_start, train_end)[keep]
        if train.size < min_train_size:
            raise BadInputError(
                f"fold {k} keeps only {train.size} training rows after a purge of {purge} and an "
                f"embargo of {embargo}: lower the embargo or use fewer, smaller test blocks"
            )
        splits.append((train, np.arange(start, stop)))
    return splits


@dataclass(frozen=True)
class WalkForwardSplit:
    """The same splits as a scikit-learn cross-validator (usable as ``cv=`` in sklearn)."""

    n_splits: int
    test_size: int | None = None
    train_size: int | None = None
    purge: int = 0
    embargo: int = 0

    def split(self, X, y=None, groups=None):
        yield from walk_forward_splits(
            len(X),
            n_splits=self.n_splits,
            test_size=self.test_size,
            train_size=self.train_size,
            purge=self.purge,
            embargo=self.embargo,
        )

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        return self.n_splits


def _whole(value, low: int) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= low


def _length(index_or_n) -> int:
    if isinstance(index_or_n, int | np.integer):
        if index_or_n < 0:
            raise BadInputError(f"number of rows must be >= 0, got {index_or_n}")
        return int(index_or_n)
    return len(index_or_n)


# -------------------------------------------------------------------------- metrics
def direction_score(proba: np.ndarray, classes: Sequence) -> np.ndarray:
    """Expected direction in [-1, 1] from class probabilities: the trading view of a classifier.

    Classes ``{0, 1}`` (down/up) give ``2 p(1) - 1``; classes containing -1 and 1 (e.g.
    triple-barrier -1/0/1) give ``p(1) - p(-1)``. Other label sets have no direction (NaN).
    """
    p = np.asarray(proba, dtype=float)
    cls = [float(c) for c in classes]
    if set(cls) == {0.0, 1.0}:
        return 2.0 * p[:, cls.index(1.0)] - 1.0
    if 1.0 in cls and -1.0 in cls:
        return p[:, cls.index(1.0)] - p[:, cls.index(-1.0)]
    return np.full(p.shape[0], np.nan)


def information_coefficient(score, forward_return) -> float:
    """Spearman rank correlation of prediction and realised forward return (NaN if undefined)."""
    from scipy.stats import spearmanr

    s, r = _finite_pair(score, forward_return)
    if s.size < 2 or np.ptp(s) == 0 or np.ptp(r) == 0:
        return float("nan")
    return float(spearmanr(s, r).statistic)


def hit_rate(score, forward_return) -> float:
    """Share of bars where the predicted sign matches the realised return's sign.

    Bars with a zero prediction (no view) or a zero return (no move) are left out; NaN when
    none remain, as for a zero-return forecast.
    """
    s, r = _finite_pair(score, forward_return)
    used = (s != 0) & (r != 0)
    if not used.any():
        return float("nan")
    return float(np.mean(np.sign(s[used]) == np.sign(r[used])))


def classification_metrics(y_true, proba: np.ndarray, classes: Sequence) -> dict[str, float]:
    """Accuracy, balanced accuracy, ROC AUC, log loss and F1 of class probabilities.

    The predicted class is the most probable one. F1 is for the highest label (``up``) when
    there are two classes and macro-averaged otherwise; ROC AUC is one-vs-rest macro for
    more than two classes and NaN when the block holds a single class.
    """
    from sklearn import metrics as skm

    y = np.asarray(y_true)
    p = np.asarray(proba, dtype=float)
    labels = np.asarray(classes)
    pred = labels[np.argmax(p, axis=1)]
    binary = labels.size == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {
            "accuracy": skm.accuracy_score(y, pred),
            "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
            "f1": skm.f1_score(
                y,
                pred,
                labels=labels,
                pos_label=labels[-1] if binary else 1,
                average="binary" if binary else "macro",
                zero_division=0.0,
            ),
            "log_loss": skm.log_loss(y, p, labels=labels),
        }
        if np.unique(y).size < 2:
            out["roc_auc"] = float("nan")
        elif binary:
            out["roc_auc"] = skm.roc_auc_score(y == labels[1], p[:, 1])
        else:
            present = np.isin(labels, np.unique(y))
            if present.all():
                out["roc_auc"] = skm.roc_auc_score(
                    y, p, labels=labels, multi_class="ovr", average="macro"
                )
            else:  # ovr AUC over the classes that occur in this block
                out["roc_auc"] = float(
                    np.mean(
                        [
                            skm.roc_auc_score(y == c, p[:, i])
                            for i, c in enumerate(labels)
                            if present[i]
                        ]
                    )
                )
    return {k: float(v) for k, v in out.items()}


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """Mean squared and mean absolute error."""
    from sklearn import metrics as skm

    return {
        "mse": float(skm.mean_squared_error(y_true, y_pred)),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
    }


def _finite_pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


# ------------------------------------------------------------- out-of-sample frames
def prediction_frame(
    index: pd.Index,
    y_true,
    *,
    pred=None,
    proba: np.ndarray | None = None,
    classes: Sequence | None = None,
    fold: int | None = None,
) -> pd.DataFrame:
    """One test block's predictions, one row per bar: ``y_true``, ``pred``, ``score``, ``proba_*``.

    ``score`` is the trading signal: the expected direction for classifiers (see
    ``direction_score``), the predicted value for regressors.
    """
    out = pd.DataFrame(index=index)
    out["y_true"] = np.asarray(y_true, dtype=float)
    if proba is not None:
        if classes is None:
            raise ValueError("classes are required with proba")
        p = np.asarray(proba, dtype=float)
        labels = np.asarray(classes, dtype=float)
        ok = np.isfinite(p).all(axis=1)
        best = np.full(len(index), np.nan)
        best[ok] = labels[np.argmax(p[ok], axis=1)]
        out["pred"] = best
        out["score"] = direction_score(p, classes)
        for i, c in enumerate(classes):
            out[f"proba_{_label(c)}"] = p[:, i]
    else:
        out["pred"] = np.asarray(pred, dtype=float)
        out["score"] = out["pred"]
    if fold is not None:
        out["fold"] = fold
    return out


def stitch_oos(parts: Sequence[pd.DataFrame | pd.Series]) -> pd.DataFrame | pd.Series:
    """Concatenate per-fold out-of-sample predictions into one frame indexed by test bar.

    Walk-forward test blocks never overlap, so a bar predicted twice is an error, not a
    choice to make silently.
    """
    if not parts:
        raise BadInputError("no fold predictions to stitch: run at least one fold")
    out = pd.concat(list(parts))
    if isinstance(out, pd.DataFrame):  # a class missing from one fold's training: probability 0
        cols, _ = proba_columns(out)
        has = out[cols].notna().any(axis=1)
        out.loc[has, cols] = out.loc[has, cols].fillna(0.0)
    dup = out.index.duplicated()
    if dup.any():
        raise BadInputError(
            f"{int(dup.sum())} bar(s) predicted by more than one fold (first {out.index[dup][0]}):"
            " test blocks must not overlap"
        )
    return out.sort_index()


def proba_columns(frame: pd.DataFrame) -> tuple[list[str], list[float]]:
    """The ``proba_*`` columns of a prediction frame and the class labels they stand for."""
    cols = [c for c in frame.columns if c.startswith("proba_")]
    return cols, [float(c.removeprefix("proba_")) for c in cols]


def evaluate_predictions(
    frame: pd.DataFrame, task: str, forward_return: pd.Series | None = None
) -> dict[str, float]:
    """Metrics of a prediction frame (one fold or stitched), plus IC and hit rate on returns.

    Rows without a prediction (NaN) are left out and counted in ``n_predicted``.
    """
    if task == "classification":
        cols, classes = proba_columns(frame)
        ok = frame[cols].notna().all(axis=1) & frame["y_true"].notna()
        used = frame[ok]
        out = (
            classification_metrics(used["y_true"], used[cols].to_numpy(), classes)
            if len(used)
            else {}
        )
    elif task == "regression":
        ok = frame["pred"].notna() & frame["y_true"].notna()
        used = frame[ok]
        out = regression_metrics(used["y_true"], used["pred"]) if len(used) else {}
        if len(used):
            out["ic_target"] = information_coefficient(used["pred"], used["y_true"])
    else:
        raise BadInputError(f"unknown task {task!r}: use classification or regression")
    if forward_return is not None:
        ret = forward_return.reindex(used.index)
        out["ic"] = information_coefficient(used["score"], ret)
        out["hit_rate"] = hit_rate(used["score"], ret)
    out["n_predicted"] = float(len(used))
    out["n_bars"] = float(len(frame))
    return out


def aggregate_metrics(per_fold: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean and standard deviation of each metric across folds (``NAME_mean``, ``NAME_std``)."""
    keys = (
        [k for k in per_fold[0] if k not in {"fold", "n_bars", "n_predicted"}] if per_fold else []
    )
    out: dict[str, float] = {}
    for k in keys:
        vals = np.array([f.get(k, np.nan) for f in per_fold], dtype=float)
        finite = vals[np.isfinite(vals)]
        out[f"{k}_mean"] = float(finite.mean()) if finite.size else float("nan")
        out[f"{k}_std"] = float(finite.std(ddof=1)) if finite.size > 1 else float("nan")
    return out


# ----------------------------------------------------------------- the fold loop
def walk_forward_predict(
    model,
    X: pd.DataFrame,
    y: pd.Series,
    splits: Sequence[Split],
    *,
    fold_params: Callable[[int], dict] | None = None,
    desc: str = "folds",
    progress: bool = True,
) -> tuple[pd.DataFrame, list]:
    """Fit a fresh clone of ``model`` on each training set and predict its test block.

    Rows before a test block are passed along as context (the model's ``context_length``),
    so a sequence model has full windows for the first test bars; those rows' features are
    known before the test block starts and carry no labels. Returns the stitched prediction
    frame (with a ``fold`` column) and the fitted models.
    """
    from sklearn.base import clone
    from tqdm.auto import tqdm

    parts, fitted = [], []
    bar = tqdm(
        list(enumerate(splits)), desc=desc, unit="fold", disable=True if not progress else None
    )
    for k, (train, test) in bar:
        est = clone(model)
        if fold_params is not None:
            est.set_params(**fold_params(k))
        est.fit(X.iloc[train], y.iloc[train])
        lo = max(0, int(test.min()) - int(getattr(est, "context_length", 0)))
        context = X.iloc[lo : int(test.max()) + 1]
        at = np.asarray(test) - lo
        idx = X.index[test]
        if getattr(est, "task", "classification") == "classification":
            proba = est.predict_proba(context)[at]
            part = prediction_frame(idx, y.iloc[test], proba=proba, classes=est.classes_, fold=k)
        else:
            pred = est.predict(context)[at]
            part = prediction_frame(idx, y.iloc[test], pred=pred, fold=k)
        log.debug("fold %d: %d train rows, %d test rows", k, len(train), len(test))
        parts.append(part)
        fitted.append(est)
    return stitch_oos(parts), fitted


def _label(c) -> str:
    f = float(c)
    return str(int(f)) if f.is_integer() else str(f)
