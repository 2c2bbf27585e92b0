"""The statistics of a sweep: how much of its best result the number of trials explains.

Built on `cryptoai.optimize.stats` (deflated Sharpe ratio, PBO, expected maximum Sharpe).
Sharpe ratios here are per bar, from each trial's ``ReturnsSummary`` (the moments of its bar
returns and their per-block sums: `cryptoai.optimize.moments`); the annualized equivalents
are the per-bar ones times ``sqrt(periods_per_year)``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from cryptoai.errors import BadInputError
from cryptoai.optimize.moments import summarize
from cryptoai.optimize.stats import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    pbo_from_block_sums,
    probabilistic_sharpe_ratio,
)
from cryptoai.optimize.trials import COMPLETE, Trial

log = logging.getLogger(__name__)


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
    done = [t for t in trials if t.state == COMPLETE and t.returns_summary() is not None]
    n = len(trials)
    out: dict[str, Any] = {
        "n_trials": n,
        "n_complete": len(done),
        "n_failed": n - len(done),
    }
    srs = np.array([t.returns_summary().sharpe for t in done])
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
    summary = best.returns_summary() if best is not None else None
    if summary is None or n < 1:
        return {key: None}
    n_obs = summary.n_obs
    sr = summary.sharpe
    skew = summary.skew if n_obs > 2 and math.isfinite(summary.skew) else 0.0
    kurt = summary.kurtosis if n_obs > 3 and math.isfinite(summary.kurtosis) else 3.0
    out: dict[str, Any] = {}
    if not prefix:
        out = {
            "best_sharpe_per_bar": sr,
            "best_sharpe_annualized": sr * root,
            "n_obs": n_obs,
            "skew": skew,
            "kurtosis": kurt,
        }
    if not math.isfinite(sr):
        return out | {key: None}
    try:
        out[key] = deflated_sharpe_ratio(sr, n, var, n_obs, skew, kurt)
    except BadInputError as exc:
        log.info("deflated Sharpe ratio unavailable: %s", exc)
        out[key] = None
    return out


def _pbo(done: Sequence[Trial]) -> tuple[float | None, int | None]:
    """PBO over the completed trials' per-block sums (all on the same bars and blocks)."""
    if len(done) < 2:
        return None, None
    summaries = [t.returns_summary() for t in done]
    first = summaries[0]
    splits = first.block_sums.shape[1]
    if any(
        s.n_obs != first.n_obs or s.block_sums.shape != first.block_sums.shape for s in summaries
    ):
        log.info("PBO unavailable: the trials' returns cover different bars")
        return None, splits
    if first.n_obs < 2 * splits or not first.block_size:
        log.info("PBO unavailable: %d bars are too few for %d splits", first.n_obs, splits)
        return None, splits
    s1 = np.column_stack([s.block_sums[0] for s in summaries])
    s2 = np.column_stack([s.block_sums[1] for s in summaries])
    if not (np.isfinite(s1).all() and np.isfinite(s2).all()):
        log.info("PBO unavailable: returns hold NaN or infinite values")
        return None, splits
    return pbo_from_block_sums(s1, s2, first.block_size), splits


def oos_sharpe_probability(returns: np.ndarray) -> float | None:
    """P(true Sharpe > 0) of out-of-sample returns (the probabilistic Sharpe ratio)."""
    summary = summarize(returns)
    sr = summary.sharpe
    if not math.isfinite(sr) or summary.n_obs < 4:
        return None
    try:
        return probabilistic_sharpe_ratio(sr, summary.n_obs, 0.0, summary.skew, summary.kurtosis)
    except BadInputError:
        return None
