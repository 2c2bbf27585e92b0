"""One compiled pass over each equity curve: the per-bar returns and the path statistics
that ``metrics.metrics_table`` turns into metrics (one backtest's curve). The sweep kernel
computes the same statistics bar by bar as its runs go, from sums of powers of the returns,
and keeps no curve at all.

The formulas are those of ``metrics`` (``path_returns``, ``drawdown``,
``max_drawdown_duration``), evaluated bar by bar so that a sweep of hundreds of curves costs
one pass over memory instead of a dozen numpy temporaries per curve.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

#: columns of ``path_stats``'s output (and of the sweep kernel's, computed as it runs)
MEAN, STD, DOWNSIDE, MAX_DD, DD_BARS, MEAN_EQUITY, SKEW, KURTOSIS = range(8)
N_STATS = 8


@njit(cache=True, _nrt=False)
def path_row(e, cash, r, out):  # pragma: no cover - compiled
    """Returns of the equity curve ``e`` into ``r`` (which may be ``e`` itself: each bar is
    read before it is overwritten) and its ``N_STATS`` statistics into ``out``."""
    n = e.shape[0]
    prev = cash
    peak = cash  # the initial cash is the first peak
    at_peak = True
    last_peak = 0  # position of the last peak; position 0 is the initial cash
    longest = 0
    worst = 0.0
    total = 0.0
    marked = 0.0
    for i in range(n):
        x = e[i]
        ri = 0.0  # an unchanged equity (flat bars) or a wiped-out one earns 0
        if x != prev and prev > 0.0:
            ri = x / prev - 1.0
        r[i] = ri
        total += ri
        marked += x
        if x >= peak:  # a drawdown of 0: nothing to divide
            if not at_peak:  # regains the peak lost after last_peak
                longest = max(longest, i + 1 - last_peak)
            peak = x
            last_peak = i + 1
            at_peak = True
        else:
            at_peak = False
            dd = x / peak - 1.0
            if dd < worst:
                worst = dd
        prev = x
    if not at_peak:  # still under water at the end
        longest = max(longest, n - last_peak)
    mean = total / n
    dev = 0.0
    dev3 = 0.0
    dev4 = 0.0
    down = 0.0
    for i in range(n):
        d = r[i] - mean
        d2 = d * d
        dev += d2
        dev3 += d2 * d
        dev4 += d2 * d2
        lo = min(r[i], 0.0)
        down += lo * lo
    out[MEAN] = mean
    out[STD] = math.sqrt(dev / (n - 1)) if n > 1 else math.nan
    out[DOWNSIDE] = math.sqrt(down / n)
    m2 = dev / n
    out[SKEW] = (dev3 / n) / m2**1.5 if m2 > 0.0 else math.nan  # scipy's biased skew
    out[KURTOSIS] = (dev4 / n) / (m2 * m2) if m2 > 0.0 else math.nan  # non-excess
    out[MAX_DD] = worst
    out[DD_BARS] = longest
    out[MEAN_EQUITY] = marked / n


@njit(cache=True, parallel=True)
def _path_stats(equity, cash, returns, out):  # pragma: no cover - compiled
    for j in prange(equity.shape[0]):
        path_row(equity[j], cash, returns[j], out[j])


def path_stats(equity: np.ndarray, initial_cash: float) -> tuple[np.ndarray, np.ndarray]:
    """``(returns, stats)`` of a (runs x bars) equity matrix: the per-bar simple returns
    (the first bar against the initial cash, 0 once wiped out) and per run the mean and
    standard deviation (ddof 1) of those returns, the downside deviation, the max drawdown
    (<= 0), the longest time under water in bars, the mean equity, and the returns'
    skewness and (non-excess) kurtosis, as scipy's biased estimators (``N_STATS`` columns)."""
    equity = np.ascontiguousarray(equity, dtype="float64")
    returns = np.empty_like(equity)
    out = np.empty((equity.shape[0], N_STATS))
    if equity.shape[1] > 0:
        _path_stats(equity, float(initial_cash), returns, out)
    return returns, out
