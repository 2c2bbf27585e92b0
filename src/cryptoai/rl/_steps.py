"""Compiled environment steps: one numba call per ``TradingEnv.step`` and one per
``VecTradingEnv.step`` (every sub-environment at once).

Both drive the backtester's per-bar entry point ``_kernel.step`` (close of the decision bar,
open of the next; at the episode's last bar its close as well, where the position is closed
out), so an episode is the same backtest as in the engines. Around it they do what the Python
step used to: the fees of the new fills, the mark to market at the next decision bar's close
(after that close's funding, as the kernel will charge it), and the observation (the feature
window, a contiguous slice of the flattened feature matrix, and the account). The batch step
also computes the built-in rewards, with the same formulas as ``cryptoai.rl.rewards``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from cryptoai.backtest import _kernel as k

# account vector written by `env_step` (read back with one `.tolist()`)
A_EQUITY, A_UNITS, A_FEES, A_FUNDING, A_DONE, A_NF = range(6)
N_ACCT = 6
# built-in rewards (`cryptoai.rl.rewards`) of the batch step, and their per-env state
R_LOG, R_DSR, R_DD = 0, 1, 2
REWARD_CODES = {"log_return": R_LOG, "differential_sharpe": R_DSR, "drawdown_penalized": R_DD}
N_RSTATE = 3  # floor, then (A, B) for the differential Sharpe or (peak, drawdown)


@njit(cache=True)
def _mark(S, P, M, j):
    """Equity at bar ``j``'s close before its decision: cash after this close's funding (as
    the kernel charges it) plus the position at the close."""
    u = S[k.S_UNITS]
    c = M[k.M_CLOSE][j]
    cash = S[k.S_CASH]
    if u != 0.0 and P[k.P_FUNDED] != 0.0:
        cash -= u * c * M[k.M_FUNDING][j]
    return cash + u * c


@njit(cache=True)
def _fill_obs(obs, X, t, window, nfeat, S, M, j, equity):
    """Feature rows ``t - window + 1 .. t`` (row by row), exposure and unrealized P&L."""
    size = window * nfeat
    lo = (t - window + 1) * nfeat
    for q in range(size):
        obs[q] = X[lo + q]
    u = S[k.S_UNITS]
    if u != 0.0 and equity > 0.0:
        c = M[k.M_CLOSE][j]
        obs[size] = u * c / equity
        obs[size + 1] = u * (c - S[k.S_ENTRY]) / equity
    else:
        obs[size] = 0.0
        obs[size + 1] = 0.0


@njit(cache=True)
def first_obs(S, P, M, X, t, window, nfeat):
    """Observation at an episode's first decision bar (after ``_kernel.step(-1)``)."""
    obs = np.empty(window * nfeat + 2, dtype=np.float32)
    _fill_obs(obs, X, t, window, nfeat, S, M, 0, _mark(S, P, M, 0))
    return obs


@njit(cache=True)
def env_step(S, F, P, M, OUT, X, acct, j, has, target, t, window, nfeat):
    """Decision ``target`` at episode bar ``j`` (data row ``t``): the kernel's close of ``j``
    and open of ``j + 1`` (and at the last bar its close), fees, mark, observation at
    ``j + 1``. Writes the account to ``acct``; returns the observation."""
    before = int(S[k.S_NF])
    nf = k.step(S, F, P, M, OUT, j, has, target, k.K_MARKET, math.nan)
    j += 1
    last = j == M.shape[1] - 1
    if last:  # the episode's last close: close out as close_at_end does
        nf = k.step(S, F, P, M, OUT, j, False, 0.0, k.K_MARKET, math.nan)
        equity = OUT[k.OUT_EQUITY, j]
    else:
        equity = _mark(S, P, M, j)
    fees = acct[A_FEES]
    for r in range(before, nf):  # usually none or one new fill
        fees += F[r, 4]
    obs = np.empty(window * nfeat + 2, dtype=np.float32)
    _fill_obs(obs, X, t + 1, window, nfeat, S, M, j, equity)
    acct[A_EQUITY] = equity
    acct[A_UNITS] = S[k.S_UNITS]
    acct[A_FEES] = fees
    acct[A_FUNDING] = S[k.S_FUNDING]
    acct[A_DONE] = 1.0 if (last or S[k.S_BANKRUPT] != 0.0) else 0.0
    acct[A_NF] = nf
    return obs


@njit(cache=True)
def _log_return(previous, equity, floor):
    return math.log(max(equity, floor) / max(previous, floor))


@njit(cache=True)
def reward_reset(R, equity, kind):
    """Reward state at an episode's start (see ``cryptoai.rl.rewards``)."""
    R[0] = 1e-9 * equity  # rewards.RUIN_FLOOR
    if kind == R_DD:
        R[1] = equity
    else:
        R[1] = 0.0
    R[2] = 0.0


@njit(cache=True)
def reward_step(R, previous, equity, kind, param):
    """One step of a built-in reward: the formulas of ``cryptoai.rl.rewards``."""
    r = _log_return(previous, equity, R[0])
    if kind == R_LOG:
        return r
    if kind == R_DSR:
        a, b = R[1], R[2]
        da, db = r - a, r * r - b
        var = b - a * a
        d = (b * da - 0.5 * a * db) / var**1.5 if var > 1e-18 else 0.0
        R[1] = a + param * da
        R[2] = b + param * db
        return d
    peak = max(R[1], equity)
    R[1] = peak
    dd = 1.0 - equity / peak if peak > 0.0 else 1.0
    grew = max(dd - R[2], 0.0)
    R[2] = dd
    return r - param * grew


@njit(cache=True)
def vec_step(
    S, F, P, M, OUT, X, starts, nbars, js, last_t, targets, rec, acct, R, kind, param,
    window, nfeat, obs, rewards, dones,
):  # fmt: skip
    """One step of every sub-environment ``i`` (episode bars ``M[i, :, :nbars[i]]``, first
    decision bar ``starts[i]`` in the data, current decision bar ``js[i]``): the target
    ``targets[i]`` through the kernel as in ``env_step``, its reward, the observation into
    ``obs[i]``, ``dones[i]``. Fills are only summed into the fees (the buffer is reused)."""
    n = S.shape[0]
    for i in range(n):
        s, f, p, out, a = S[i], F[i], P[i], OUT[i], acct[i]
        m = M[i, :, : nbars[i]]
        j = js[i]
        target = targets[i]
        rec[i, j] = target
        has = target != last_t[i]
        if has:
            last_t[i] = target
        s[k.S_NF] = 0.0
        nf = k.step(s, f, p, m, out, j, has, target, k.K_MARKET, math.nan)
        j += 1
        js[i] = j
        last = j == nbars[i] - 1
        if last:
            nf = k.step(s, f, p, m, out, j, False, 0.0, k.K_MARKET, math.nan)
            equity = s[k.S_CASH] + s[k.S_UNITS] * m[k.M_CLOSE][j]
        else:
            equity = _mark(s, p, m, j)
        fees = a[A_FEES]
        for r in range(nf):
            fees += f[r, 4]
        rewards[i] = reward_step(R[i], a[A_EQUITY], equity, kind, param)
        _fill_obs(obs[i], X, starts[i] + j, window, nfeat, s, m, j, equity)
        a[A_EQUITY] = equity
        a[A_UNITS] = s[k.S_UNITS]
        a[A_FEES] = fees
        a[A_FUNDING] = s[k.S_FUNDING]
        done = last or s[k.S_BANKRUPT] != 0.0
        a[A_DONE] = 1.0 if done else 0.0
        dones[i] = done
