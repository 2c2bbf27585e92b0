"""Diagnostic plots logged with runs.

Built on bare ``matplotlib.figure.Figure`` objects (Agg rendering, no pyplot state), so they
work headless, in batch notebooks and in worker processes without leaking open figures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from cryptoai.errors import BadInputError


def plot_feature_importance(
    names: Sequence[str],
    importances: Sequence[float],
    top: int = 20,
    *,
    xlabel: str = "importance",
    title: str | None = None,
) -> Figure:
    """Horizontal bars of the ``top`` features by absolute importance, largest at the top.

    Ranked by magnitude so signed importances (e.g. linear coefficients) rank fairly; the
    bars keep their sign. Non-finite importances are left out.
    """
    labels = [str(n) for n in names]
    values = np.asarray(importances, dtype=float).ravel()
    if len(labels) != values.size:
        raise BadInputError(
            f"plot_feature_importance got {len(labels)} names but {values.size} importances; "
            "pass one importance per feature name"
        )
    if top < 1:
        raise BadInputError(f"top must be at least 1, got {top}")
    finite = np.flatnonzero(np.isfinite(values))
    order = finite[np.argsort(-np.abs(values[finite]), kind="stable")][:top]
    n = len(order)
    fig = Figure(figsize=(7.0, 1.2 + 0.3 * max(n, 1)), layout="constrained")
    ax = fig.add_subplot()
    ypos = np.arange(n)[::-1]
    ax.barh(ypos, values[order], color="tab:blue")
    ax.set_yticks(ypos, [labels[i] for i in order])
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel(xlabel)  # what the bars are: an IC is not an importance
    ax.set_title(title or f"Feature importance (top {n} of {len(labels)})")
    return fig


def plot_confusion_matrix(
    y_true: Sequence, y_pred: Sequence, labels: Sequence | None = None
) -> Figure:
    """Confusion matrix with counts in every cell (rows: true class, columns: predicted)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    yt, yp = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if yt.size == 0 or yt.size != yp.size:
        raise BadInputError(
            f"plot_confusion_matrix needs equally long, non-empty y_true and y_pred "
            f"(got {yt.size} and {yp.size})"
        )
    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    classes = np.unique(np.concatenate([yt, yp])) if labels is None else np.asarray(labels)
    ConfusionMatrixDisplay.from_predictions(
        yt, yp, labels=classes, display_labels=class_names(classes), ax=ax, colorbar=True
    )
    ax.set_title("Confusion matrix")
    return fig


def plot_calibration(y_true: Sequence, proba: Sequence, n_bins: int = 10) -> Figure:
    """Reliability curve (mean predicted vs observed frequency) over a histogram of predictions.

    ``proba`` is the probability of the positive class; a two-column ``predict_proba`` output
    is accepted and its second column used.
    """
    from sklearn.calibration import CalibrationDisplay

    yt = np.asarray(y_true).ravel()
    p = np.asarray(proba, dtype=float)
    if p.ndim == 2 and p.shape[1] == 2:
        p = p[:, 1]
    p = p.ravel()
    if yt.size == 0 or yt.size != p.size:
        raise BadInputError(
            f"plot_calibration needs equally long, non-empty y_true and proba "
            f"(got {yt.size} and {p.size}); pass the positive-class probability"
        )
    if np.unique(yt).size > 2:
        raise BadInputError("plot_calibration needs binary y_true; got more than two classes")
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise BadInputError("plot_calibration needs probabilities in [0, 1]; got values outside")
    if n_bins < 1:
        raise BadInputError(f"n_bins must be at least 1, got {n_bins}")
    fig = Figure(figsize=(6.0, 6.5), layout="constrained")
    ax_curve, ax_hist = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    CalibrationDisplay.from_predictions(yt, p, n_bins=n_bins, name="model", ax=ax_curve)
    ax_curve.set_title("Calibration")
    ax_hist.hist(p, bins=n_bins, range=(0.0, 1.0), color="tab:gray")
    ax_hist.set_xlabel("predicted probability")
    ax_hist.set_ylabel("count")
    return fig


def class_names(classes: Sequence) -> list[str]:
    """Readable class labels: direction targets (0/1) read "down"/"up", -1/0/1 add "flat",
    other whole numbers print without ".0", and text labels stay as they are."""
    try:
        values = [float(c) for c in classes]
    except (TypeError, ValueError):
        return [str(c) for c in classes]
    if set(values) <= {-1.0, 0.0, 1.0} and -1.0 in values:
        return [{-1.0: "down", 0.0: "flat", 1.0: "up"}[v] for v in values]
    if set(values) <= {0.0, 1.0}:
        return [{0.0: "down", 1.0: "up"}[v] for v in values]
    return [str(int(v)) if v.is_integer() else f"{v:g}" for v in values]
