"""Out-of-sample evaluation: per-fold classification and regression metrics, the direction
score of a classifier, information coefficient and hit rate, and the stitched prediction frame.

Kept apart from the splits so that scoring code (training, the runner, notebooks) reads one
place and the fold arithmetic another.

Walk-forward results are summarised fold by fold (``fold_scores``): a metric's plain name is
its mean over folds, ``NAME_std`` the spread, and ``NAME_pooled`` the value on all test bars
pooled. Pooling mixes folds whose models differ: a baseline that predicts a different
constant in each fold has no skill in any fold (AUC 0.5), yet pooled its scores rank the
folds against each other (e.g. AUC 0.46, IC -0.04), so a model compared with it pooled is
compared with the wrong number. A model and its baseline are compared on per-fold means and
on the per-fold paired differences (``paired_differences``: ``delta_NAME_mean``/``_std``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError


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


#: Counts, summed over folds rather than averaged (the pooled value is the total).
COUNTS = frozenset({"fold", "n_bars", "n_predicted"})


def fold_scores(
    frame: pd.DataFrame,
    task: str,
    forward_return: pd.Series | None,
    n_folds: int,
) -> tuple[list[dict[str, float]], dict[str, float]]:
    """Metrics of each fold of a stitched walk-forward frame (``fold`` column), and their
    summary: per metric ``NAME`` (the mean over folds), ``NAME_mean`` (the same number),
    ``NAME_std`` and ``NAME_pooled`` (all test bars pooled); counts (``n_predicted``,
    ``n_bars``) are totals. Compare models by the per-fold figures, not the pooled ones."""
    per_fold = [
        evaluate_predictions(frame[frame["fold"] == k], task, forward_return)
        for k in range(n_folds)
    ]
    pooled = evaluate_predictions(frame, task, forward_return)
    return per_fold, summarize_folds(per_fold, pooled)


def summarize_folds(
    per_fold: Sequence[dict[str, float]], pooled: dict[str, float] | None = None
) -> dict[str, float]:
    """``aggregate_metrics`` with the plain names set to the per-fold means, and the pooled
    metrics (``pooled``, from ``evaluate_predictions`` on all folds) as ``NAME_pooled``."""
    out = aggregate_metrics(per_fold)
    for key in [k for k in out if k.endswith("_mean")]:
        out[key.removesuffix("_mean")] = out[key]
    for key, value in (pooled or {}).items():
        if key in COUNTS:
            out[key] = float(value)
        else:
            out[f"{key}_pooled"] = float(value)
    return out


def paired_differences(
    per_fold: Sequence[dict[str, float]], baseline_per_fold: Sequence[dict[str, float]]
) -> dict[str, float]:
    """Model minus baseline, fold by fold: ``delta_NAME_mean`` and ``delta_NAME_std`` over
    the folds where both are finite (positive is better for scores such as ``roc_auc``,
    negative for losses such as ``log_loss``/``mse``), and ``delta_NAME_positive``, the share
    of those folds where the difference is positive."""
    if len(per_fold) != len(baseline_per_fold):
        raise BadInputError(
            f"{len(per_fold)} model folds against {len(baseline_per_fold)} baseline folds:"
            " score both on the same splits"
        )
    keys = [k for k in (per_fold[0] if per_fold else {}) if k not in COUNTS]
    out: dict[str, float] = {}
    for k in keys:
        model = np.array([f.get(k, np.nan) for f in per_fold], dtype=float)
        base = np.array([f.get(k, np.nan) for f in baseline_per_fold], dtype=float)
        diff = (model - base)[np.isfinite(model) & np.isfinite(base)]
        out[f"delta_{k}_mean"] = float(diff.mean()) if diff.size else float("nan")
        out[f"delta_{k}_std"] = float(diff.std(ddof=1)) if diff.size > 1 else float("nan")
        out[f"delta_{k}_positive"] = float(np.mean(diff > 0)) if diff.size else float("nan")
    return out


def aggregate_metrics(per_fold: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean and standard deviation of each metric across folds (``NAME_mean``, ``NAME_std``)."""
    keys = [k for k in per_fold[0] if k not in COUNTS] if per_fold else []
    out: dict[str, float] = {}
    for k in keys:
        vals = np.array([f.get(k, np.nan) for f in per_fold], dtype=float)
        finite = vals[np.isfinite(vals)]
        out[f"{k}_mean"] = float(finite.mean()) if finite.size else float("nan")
        out[f"{k}_std"] = float(finite.std(ddof=1)) if finite.size > 1 else float("nan")
    return out


def _label(c) -> str:
    f = float(c)
    return str(int(f)) if f.is_integer() else str(f)
