"""The statistics of a sweep: how much of its best result the number of trials explains.

Built on `cryptoai.optimize.stats` (deflated Sharpe ratio, PBO, expected maximum Sharpe).
Sharpe ratios here are per bar, computed from each trial's bar returns; the annualized
equivalents are the per-bar ones times ``sqrt(periods_per_year)``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

from cryptoai.errors import BadInputError
from cryptoai.optimize.stats import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
)
from cryptoai.optimize.trials import COMPLETE, Trial

log = logging.getLogger(__name__)

PBO_MAX_SPLITS = 16
PBO_MIN_BARS_PER_BLOCK = 10


def per_bar_sharpe(returns: np.ndarray) -> float:
    """mean / std (ddof=1) of bar returns; NaN when flat or too short."""
    r = np.asarray(returns, dtype="float64")
    if len(r) < 2:
        return math.nan
    sd = r.std(ddof=1)
    return float(r.mean() / sd) if sd > 0 else math.nan


def pbo_splits(n_bars: int) -> int:
    """16 blocks, or fewer (even) when the bars are too few for ``PBO_MIN_BARS_PER_BLOCK``."""
    s = PBO_MAX_SPLITS
    while s > 2 and n_bars // s < PBO_MIN_BARS_PER_BLOCK:
        s -= 2
    return s


def sweep_statistics(
    trials: Sequence[Trial],
    best: Trial | None,
    periods_per_year: float,
    n_trials_total: int | None = None,
) -> dict[str, Any]:
    """``n_trials``, ``deflated_sharpe``, ``pbo``, ``expected_max_sharpe`` (and their inputs).

    The deflated Sharpe ratio is of the best trial, against the spread of all completed
    trials' Sharpe ratios and the number of trials run (failed ones included: they were
    tried). ``n_trials_total`` (the ledger's count for this data) adds the same ratio
    deflated by every trial this data has seen.
    """
    done = [t for t in trials if t.state == COMPLETE and t.returns is not None]
    n = len(trials)
    out: dict[str, Any] = {
        "n_trials": n,
        "n_complete": len(done),
        "n_failed": n - len(done),
    }
    srs = np.array([per_bar_sharpe(t.returns) for t in done])
    finite = srs[np.isfinite(srs)]
    var = float(np.var(finite, ddof=1)) if len(finite) > 1 else 0.0
    root = math.sqrt(periods_per_year)
    out["sharpe_variance"] = var
    out["expected_max_sharpe"] = expected_max_sharpe(max(n, 1), var) if n else None
    out["expected_max_sharpe_annualized"] = (
        out["expected_max_sharpe"] * root if out["expected_max_sharpe"] is not None else None
    )
    out |= _deflated(best, n, var, root, "")
    if n_trials_total is not None:
        out["ledger_n_trials"] = int(n_trials_total)
        out["ledger_expected_max_sharpe"] = expected_max_sharpe(max(n_trials_total, 1), var)
        out |= _deflated(best, max(n_trials_total, 1), var, root, "ledger_")
    out["pbo"], out["pbo_splits"] = _pbo(done)
    return out


def _deflated(best: Trial | None, n: int, var: float, root: float, prefix: str) -> dict:
    key = f"{prefix}deflated_sharpe"
    if best is None or best.returns is None or n < 1:
        return {key: None}
    r = best.returns
    sr = per_bar_sharpe(r)
    skew = float(sps.skew(r)) if len(r) > 2 else 0.0
    kurt = float(sps.kurtosis(r, fisher=False)) if len(r) > 3 else 3.0
    out: dict[str, Any] = {}
    if not prefix:
        out = {
            "best_sharpe_per_bar": sr,
            "best_sharpe_annualized": sr * root,
            "n_obs": len(r),
            "skew": skew,
            "kurtosis": kurt,
        }
    if not math.isfinite(sr):
        return out | {key: None}
    try:
        out[key] = deflated_sharpe_ratio(sr, n, var, len(r), skew, kurt)
    except BadInputError as exc:
        log.info("deflated Sharpe ratio unavailable: %s", exc)
        out[key] = None
    return out


def _pbo(done: Sequence[Trial]) -> tuple[float | None, int | None]:
    if len(done) < 2:
        return None, None
    matrix = np.column_stack([t.returns for t in done])
    splits = pbo_splits(matrix.shape[0])
    try:
        return probability_of_backtest_overfitting(matrix, n_splits=splits), splits
    except BadInputError as exc:
        log.info("PBO unavailable: %s", exc)
        return None, splits


def oos_sharpe_probability(returns: np.ndarray) -> float | None:
    """P(true Sharpe > 0) of out-of-sample returns (the probabilistic Sharpe ratio)."""
    r = np.asarray(returns, dtype="float64")
    sr = per_bar_sharpe(r)
    if not math.isfinite(sr) or len(r) < 4:
        return None
    try:
        return probabilistic_sharpe_ratio(
            sr, len(r), 0.0, float(sps.skew(r)), float(sps.kurtosis(r, fisher=False))
        )
    except BadInputError:
        return None
