"""What the sweep statistics need of a trial's per-bar returns, without the returns.

The deflated Sharpe ratio needs the returns' mean, standard deviation, skewness, kurtosis and
count; the PBO needs, per trial, the sums of the returns and of their squares over each of
its blocks of bars. The sweep kernel accumulates exactly these as its runs go (no per-bar
array per trial: a grid of 10,000 sets on two years of hourly bars would otherwise hold
1.4 GB of returns); a trial that has its returns (one backtest, a model's out-of-sample
predictions) gets the same summary from them (``summarize``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

PBO_MAX_SPLITS = 16
PBO_MIN_BARS_PER_BLOCK = 10


def pbo_splits(n_bars: int) -> int:
    """16 blocks, or fewer (even) when the bars are too few for ``PBO_MIN_BARS_PER_BLOCK``."""
    s = PBO_MAX_SPLITS
    while s > 2 and n_bars // s < PBO_MIN_BARS_PER_BLOCK:
        s -= 2
    return s


@dataclass(frozen=True)
class ReturnsSummary:
    """Moments of ``n_obs`` per-bar returns (skewness and non-excess kurtosis as scipy's
    biased estimators, NaN for a flat series) and ``block_sums`` (2 x blocks: sums of r,
    then of r**2, over consecutive blocks of ``block_size`` bars; trailing bars left out)."""

    n_obs: int
    mean: float
    std: float
    skew: float
    kurtosis: float
    block_size: int
    block_sums: np.ndarray = field(repr=False)

    @property
    def sharpe(self) -> float:
        """Per-bar Sharpe ratio (mean / std, ddof 1); NaN when flat or too short."""
        if self.n_obs < 2 or not self.std > 0:
            return math.nan
        return float(self.mean / self.std)


def summarize(returns: np.ndarray, n_blocks: int | None = None) -> ReturnsSummary:
    """The summary of a returns series (``n_blocks``: default ``pbo_splits``)."""
    r = np.asarray(returns, dtype="float64")
    n = len(r)
    blocks = pbo_splits(n) if n_blocks is None else int(n_blocks)
    size = n // blocks if blocks else 0
    body = r[: size * blocks].reshape(blocks, size) if size else np.zeros((blocks, 0))
    sums = np.vstack((body.sum(axis=1), (body**2).sum(axis=1)))
    mean = float(r.mean()) if n else math.nan
    std = float(r.std(ddof=1)) if n > 1 else math.nan
    d = r - mean
    m2 = float(np.mean(d * d)) if n else 0.0
    skew = float(np.mean(d**3) / m2**1.5) if m2 > 0 else math.nan
    kurt = float(np.mean(d**4) / m2**2) if m2 > 0 else math.nan
    return ReturnsSummary(n, mean, std, skew, kurt, size, sums)


def from_kernel(stats: np.ndarray, block_sums: np.ndarray, n_obs: int, size: int) -> ReturnsSummary:
    """The summary of one run of the sweep kernel (a ``_paths``-column statistics row and
    its per-block sums, sums of r first)."""
    from cryptoai.backtest._paths import KURTOSIS, MEAN, SKEW, STD

    return ReturnsSummary(
        n_obs,
        float(stats[MEAN]),
        float(stats[STD]),
        float(stats[SKEW]),
        float(stats[KURTOSIS]),
        size,
        block_sums.reshape(2, -1),  # a view: sums of r, then of r**2
    )
