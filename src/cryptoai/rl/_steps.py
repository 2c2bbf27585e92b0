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

from cryptoai._jitcache import drop_stale
from cryptoai.backtest import _kernel as k

# These steps carry compiled copies of the kernel: a changed kernel must recompile them.
drop_stale(__file__, k.__file__)

# Compiled without reference counting, as the kernel is (``_kernel.step_jit``): nothing here
# allocates (callers pass the buffers), and with it every view taken in the loop of
# `vec_step` paid atomic increments and decrements.
step_jit = njit(cache=True, _nrt=False)

# account written by the steps (read back with one `.tolist()`): equity at the decision
# close, units, fees and funding paid so far, 1 when the episode ended, fills, last target
# and the step's reward (built-in rewards only)
A_EQUITY, A_UNITS, A_FEES, A_FUNDING, A_DONE, A_NF, A_LAST, A_REWARD = range(8)
N_ACCT = 8
# built-in rewards (`cryptoai.rl.rewards`) of the batch step, and their per-env state
R_LOG, R_DSR, R_DD = 0, 1, 2
N_RSTATE = 3  # floor, then (A, B) for the differential Sharpe or (peak, drawdown)
R_NONE = -1  # a reward computed outside (a Python reward object)
# `buffer` layout: kernel state, parameter vector, account, reward (kind, parameter, state)
B_STATE, B_PARAMS, B_ACCT = 0, k.N_STATE, k.N_STATE + k.N_PARAMS
B_REWARD = B_ACCT + N_ACCT
N_BUFFER = B_REWARD + 2 + N_RSTATE


@step_jit
def _mark(S, P, M, j):
    """Equity at bar ``j``'s close before its decision: cash after this close's funding (as
    the kernel charges it) plus the position at the close."""
    u = S[k.S_UNITS]
    c = M[k.M_CLOSE][j]
    cash = S[k.S_CASH]
    if u != 0.0 and P[k.P_FUNDED] != 0.0:
        cash -= u * c * M[k.M_FUNDING][j]
    return cash + u * c


@step_jit
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


def compiled_reward(reward) -> tuple[int, float]:
    """(code, parameter) of a reward object the compiled steps compute with the same formulas
    (the built-in ones), else ``(R_NONE, 0)``: the environment then calls the object."""
    from cryptoai.rl import rewards

    if type(reward) is rewards.LogReturn:
        return R_LOG, 0.0
    if type(reward) is rewards.DifferentialSharpe:
        return R_DSR, reward.eta
    if type(reward) is rewards.DrawdownPenalized:
        return R_DD, reward.penalty
    return R_NONE, 0.0


def buffer(initial_cash: float, p: np.ndarray, reward: int = R_NONE, param: float = 0.0):
    """One float64 vector holding the kernel state, the parameters, the account and the
    reward's state (`env_step` takes it as one argument: every array argument of a compiled
    call costs ~50 ns). ``reward``: a code of ``REWARD_CODES`` or ``R_NONE``."""
    b = np.zeros(N_BUFFER)
    b[B_STATE:B_PARAMS] = k.new_state(initial_cash)
    b[B_PARAMS:B_ACCT] = p
    b[B_REWARD] = reward
    b[B_REWARD + 1] = param
    return b


@step_jit
def env_step(B, F, M, OUT, X, obs, targets, j, target, t):
    """Decision ``target`` at episode bar ``j`` (data row ``t``): the kernel's close of ``j``
    and open of ``j + 1`` (and at the last bar its close), fees, mark, observation at
    ``j + 1`` into ``obs``. ``B`` is a ``buffer``; an order is placed only when the target
    differs from the last one, as in the engines. Returns nothing: the account is in ``B``."""
    S = B[B_STATE:B_PARAMS]
    P = B[B_PARAMS:B_ACCT]
    a = B[B_ACCT:B_REWARD]
    nfeat = X.shape[1]
    window = (obs.shape[0] - 2) // nfeat
    targets[j] = target
    has = target != a[A_LAST]
    if has:
        a[A_LAST] = target
    before = int(S[k.S_NF])
    nf = k.step(S, F, P, M, OUT, j, has, target, k.K_MARKET, math.nan)
    j += 1
    last = j == M.shape[1] - 1
    if last:  # the episode's last close: close out as close_at_end does
        nf = k.step(S, F, P, M, OUT, j, False, 0.0, k.K_MARKET, math.nan)
        equity = OUT[k.OUT_EQUITY, j]
    else:
        equity = _mark(S, P, M, j)
    fees = a[A_FEES]
    for r in range(before, nf):  # usually none or one new fill
        fees += F[r, 4]
    _fill_obs(obs, X.reshape(-1), t + 1, window, nfeat, S, M, j, equity)
    kind = int(B[B_REWARD])
    if kind != R_NONE:
        a[A_REWARD] = reward_step(B[B_REWARD + 2 :], a[A_EQUITY], equity, kind, B[B_REWARD + 1])
    a[A_EQUITY] = equity
    a[A_UNITS] = S[k.S_UNITS]
    a[A_FEES] = fees
    a[A_FUNDING] = S[k.S_FUNDING]
    a[A_DONE] = 1.0 if (last or S[k.S_BANKRUPT] != 0.0) else 0.0
    a[A_NF] = nf


@step_jit
def _log_return(previous, equity, floor):
    return math.log(max(equity, floor) / max(previous, floor))


@step_jit
def reward_reset(R, equity, kind):
    """Reward state at an episode's start (see ``cryptoai.rl.rewards``)."""
    R[0] = 1e-9 * equity  # rewards.RUIN_FLOOR
    if kind == R_DD:
        R[1] = equity
    else:
        R[1] = 0.0
    R[2] = 0.0


@step_jit
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


@step_jit
def vec_step(B, F, M, rows, offsets, nbars, starts, js, OUT, X, targets, rec, obs, dones):
    """One step of every sub-environment ``i``: its episode's bars are
    ``M[rows[i], :, offsets[i] : offsets[i] + nbars[i]]``, its first decision bar is data
    row ``starts[i]``, its decision bar ``js[i]``; ``B[i]`` is its ``buffer``. The target
    ``targets[i]`` goes through the kernel as in ``env_step`` (recorded in ``rec[i]``), the
    reward goes to ``B[i]``'s account, the observation into ``obs[i]``, the end to
    ``dones[i]``. ``OUT`` has no columns (nothing per bar is kept) and fills are only summed
    into the fees (``F[i]`` is reused every step)."""
    n = B.shape[0]
    nfeat = X.shape[1]
    window = (obs.shape[1] - 2) // nfeat
    xf = X.reshape(-1)
    for i in range(n):
        b = B[i]
        S = b[B_STATE:B_PARAMS]
        P = b[B_PARAMS:B_ACCT]
        a = b[B_ACCT:B_REWARD]
        f = F[i]
        o = offsets[i]
        m = M[rows[i], :, o : o + nbars[i]]
        j = js[i]
        target = targets[i]
        rec[i, j] = target
        has = target != a[A_LAST]
        if has:
            a[A_LAST] = target
        S[k.S_NF] = 0.0  # the fills of this step only
        nf = k.step(S, f, P, m, OUT, j, has, target, k.K_MARKET, math.nan)
        fees = a[A_FEES]
        for r in range(nf):
            fees += f[r, 4]
        j += 1
        js[i] = j
        last = j == nbars[i] - 1
        if last:  # the episode's last close: close out as close_at_end does
            S[k.S_NF] = 0.0
            nf = k.step(S, f, P, m, OUT, j, False, 0.0, k.K_MARKET, math.nan)
            for r in range(nf):
                fees += f[r, 4]
            equity = S[k.S_CASH] + S[k.S_UNITS] * m[k.M_CLOSE][j]
        else:
            equity = _mark(S, P, m, j)
        _fill_obs(obs[i], xf, starts[i] + j, window, nfeat, S, m, j, equity)
        a[A_REWARD] = reward_step(
            b[B_REWARD + 2 :], a[A_EQUITY], equity, int(b[B_REWARD]), b[B_REWARD + 1]
        )
        a[A_EQUITY] = equity
        a[A_UNITS] = S[k.S_UNITS]
        a[A_FEES] = fees
        a[A_FUNDING] = S[k.S_FUNDING]
        done = last or S[k.S_BANKRUPT] != 0.0
        a[A_DONE] = 1.0 if done else 0.0
        dones[i] = done
