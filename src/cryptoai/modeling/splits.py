"""Walk-forward validation: purged and embargoed splits and the fold loop.

Labels look ``horizon`` bars ahead, so a training bar just before a test block "knows"
part of the test block's prices. ``purge`` drops those bars from training; ``embargo``
drops bars right after a test block from any training set that would use them. Every
test bar is predicted by a model that never trained on a label overlapping it, and the
out-of-sample predictions of all folds are stitched into one frame for the backtester.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError
from cryptoai.modeling.evaluation import prediction_frame, stitch_oos

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

    from cryptoai._progress import tqdm

    parts, fitted = [], []
    bar = tqdm(list(enumerate(splits)), desc=desc, unit="fold", disable=not progress)
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
