"""How much of a sweep's best result is luck.

- `deflated_sharpe_ratio` (Bailey & Lopez de Prado, 2014, "The Deflated Sharpe Ratio"): the
  probability that the best trial's true Sharpe ratio is above zero, after correcting for the
  number of trials, the spread of their Sharpe ratios, the sample length and non-normal returns.
- `probability_of_backtest_overfitting` (Bailey, Borwein, Lopez de Prado & Zhu, 2015, "The
  Probability of Backtest Overfitting"): combinatorially symmetric cross-validation over the
  trials' per-bar returns; the share of splits where the in-sample winner ranks in the bottom
  half out of sample.

All Sharpe ratios here are per period (per bar), not annualized: divide an annualized figure by
``sqrt(periods_per_year)`` (and its variance by ``periods_per_year``) first.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy.stats import norm

from cryptoai.errors import BadInputError

EULER_GAMMA = 0.5772156649015329


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum of ``n_trials`` Sharpe ratios whose true value is zero and whose
    estimates have variance ``sharpe_variance`` (the paper's SR_0, from extreme value theory)."""
    if n_trials < 1:
        raise BadInputError(f"n_trials must be >= 1, got {n_trials}")
    if not sharpe_variance >= 0:
        raise BadInputError(f"sharpe_variance must be >= 0, got {sharpe_variance}")
    if n_trials == 1:
        return 0.0
    g = EULER_GAMMA
    z1 = norm.ppf(1.0 - 1.0 / n_trials)
    z2 = norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(sharpe_variance) * ((1.0 - g) * z1 + g * z2)


def probabilistic_sharpe_ratio(
    sharpe: float,
    n_obs: int,
    benchmark: float = 0.0,
    skew: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """P(true Sharpe > ``benchmark``) given an estimate from ``n_obs`` returns with this skew and
    (non-excess) kurtosis (Bailey & Lopez de Prado, 2012)."""
    if n_obs < 2:
        raise BadInputError(f"n_obs must be >= 2, got {n_obs}")
    denom = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not denom > 0:
        raise BadInputError(
            f"skew {skew} and kurtosis {kurtosis} make the Sharpe ratio's variance non-positive"
        )
    return float(norm.cdf((sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(denom)))


def deflated_sharpe_ratio(
    sharpe: float,
    n_trials: int,
    sharpe_variance: float,
    n_obs: int,
    skew: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """Probability that the best of ``n_trials`` has a true Sharpe ratio above zero.

    ``sharpe`` is the best trial's per-period Sharpe ratio, ``sharpe_variance`` the variance of
    all trials' per-period Sharpe ratios, ``n_obs`` the number of returns behind each, ``skew``
    and ``kurtosis`` (non-excess: 3 for normal) those of the best trial's returns.
    """
    benchmark = expected_max_sharpe(n_trials, sharpe_variance)
    return probabilistic_sharpe_ratio(sharpe, n_obs, benchmark, skew, kurtosis)


def _sharpe_columns(block: np.ndarray) -> np.ndarray:
    """Per-column Sharpe ratio of a (bars x trials) block; a flat column scores -inf so it
    never wins (and ranks last), rather than NaN."""
    mean = block.mean(axis=0)
    std = block.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(std > 0, mean / std, -np.inf)
    return out


def probability_of_backtest_overfitting(
    returns: np.ndarray | pd.DataFrame, n_splits: int = 16
) -> float:
    """PBO by combinatorially symmetric cross-validation over ``returns`` (bars x trials).

    The bars are cut into ``n_splits`` (even) contiguous blocks; every way of choosing half of
    them as in-sample picks the trial with the best in-sample Sharpe ratio and finds its rank
    among all trials on the other half. PBO is the share of choices where that rank is at or
    below the median (logit of the relative rank <= 0). Trailing bars that do not fill a block
    are dropped.
    """
    m = np.asarray(returns, dtype="float64")
    if m.ndim != 2:
        raise BadInputError(f"returns must be a 2-D (bars x trials) array, got {m.ndim}-D")
    n_bars, n_trials = m.shape
    if n_trials < 2:
        raise BadInputError("PBO needs at least two trials to compare")
    if n_splits < 2 or n_splits % 2:
        raise BadInputError(f"n_splits must be an even number >= 2, got {n_splits}")
    if n_bars < 2 * n_splits:
        raise BadInputError(
            f"{n_bars} bars are too few for {n_splits} splits: give at least {2 * n_splits} bars"
            " or fewer splits"
        )
    if not np.isfinite(m).all():
        raise BadInputError("returns hold NaN or infinite values: fill or drop them first")
    size = n_bars // n_splits
    blocks = m[: size * n_splits].reshape(n_splits, size, n_trials)
    # Per block sums let every half's Sharpe come from sums, not a re-read of the bars.
    return pbo_from_block_sums(blocks.sum(axis=1), (blocks**2).sum(axis=1), size)


def pbo_from_block_sums(s1: np.ndarray, s2: np.ndarray, block_size: int) -> float:
    """PBO from each trial's sums of returns (``s1``) and of squared returns (``s2``) over
    ``n_splits`` blocks of ``block_size`` bars (both ``n_splits x trials``): what
    ``probability_of_backtest_overfitting`` computes from the returns themselves."""
    s1 = np.asarray(s1, dtype="float64")
    s2 = np.asarray(s2, dtype="float64")
    n_splits, n_trials = s1.shape
    half = n_splits // 2
    combos = np.array(list(itertools.combinations(range(n_splits), half)), dtype=np.int64)
    chosen = np.zeros((len(combos), n_splits), dtype=bool)
    chosen[np.arange(len(combos))[:, None], combos] = True
    n_half = half * block_size

    def sharpe(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        mean = a / n_half
        var = (b - n_half * mean**2) / (n_half - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(var > 1e-300, mean / np.sqrt(np.maximum(var, 0.0)), -np.inf)

    weights = chosen.astype("float64")
    a_in, b_in = weights @ s1, weights @ s2  # (combos x trials)
    # the other half's sums are the totals minus these (half the matrix products)
    sr_in = sharpe(a_in, b_in)
    sr_out = sharpe(s1.sum(axis=0) - a_in, s2.sum(axis=0) - b_in)
    best = np.argmax(sr_in, axis=1)
    best_out = sr_out[np.arange(len(combos)), best]
    # Relative rank of the in-sample winner out of sample, in (0, 1): rank / (N + 1).
    rank = (sr_out < best_out[:, None]).sum(axis=1) + 1
    omega = rank / (n_trials + 1.0)
    logit = np.log(omega / (1.0 - omega))
    return float((logit <= 0.0).mean())
