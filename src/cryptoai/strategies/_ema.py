"""Compiled EMA lines and crossover targets for `EmaCross`, kept apart from the strategy (as
numba kernels are, away from the pandas-facing API) and tested equal to pandas' ``ewm``.

One run computes both EMAs and the crossover in one pass (`ema_cross_targets`); sweeps
compute each distinct EMA once, several per pass (`emas`), and cross them (`cross_targets`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numba import njit, prange

from cryptoai.features.indicators import ewm_mean


def alpha(span: int) -> float:
    """Smoothing factor of an EMA over ``span`` bars (pandas' ``span=``)."""
    return 2.0 / (span + 1.0)


def ema(close: pd.Series, span: int) -> np.ndarray:
    """``close.ewm(span=span, adjust=False).mean()``, NaN for the first ``span - 1`` bars."""
    return ewm_mean(close, alpha(span), span)


def _close(data: pd.DataFrame) -> np.ndarray:
    return np.ascontiguousarray(data["close"].to_numpy(dtype="float64"))


@njit(cache=True, error_model="numpy", inline="always")
def _ewm_step(weighted, old_wt, cur, alpha):  # pragma: no cover - compiled
    """One step of pandas' ``ewm(adjust=False, ignore_na=False).mean()``, as ``ewm_mean``
    takes it (a copy, not an import: numba's on-disk cache of the kernels below would not
    notice a change made to a function of another module).

    pandas divides each update by ``old_wt + alpha``; between observations without gaps that
    is ``(1 - alpha) + alpha``, exactly 1.0 in floating point, so the division is skipped.
    """
    factor = 1.0 - alpha
    if weighted == weighted:
        old_wt *= factor
        if cur == cur:
            if weighted != cur:
                if old_wt == factor and factor + alpha == 1.0:
                    weighted = factor * weighted + alpha * cur
                else:
                    weighted = (old_wt * weighted + alpha * cur) / (old_wt + alpha)
            old_wt = 1.0
    elif cur == cur:
        weighted = cur
    return weighted, old_wt


@njit(cache=True, error_model="numpy", inline="always")
def _steady_step(weighted, cur, alpha, factor, plain):  # pragma: no cover - compiled
    """``_ewm_step`` once the recursion runs without gaps (its running weight is then exactly
    ``factor``): the same arithmetic without the bookkeeping. ``plain``: factor + alpha == 1."""
    if weighted == cur:
        return weighted
    if plain:
        return factor * weighted + alpha * cur
    return (factor * weighted + alpha * cur) / (factor + alpha)


@njit(cache=True, error_model="numpy", inline="always")
def _cross_state(d, gap, state):  # pragma: no cover - compiled
    """1 after fast - slow turns positive (``d``, was ``gap``), 0 after it turns negative."""
    if d > 0.0 and gap <= 0.0:
        return 1.0
    if d < 0.0 and gap >= 0.0:
        return 0.0
    return state


@njit(cache=True, error_model="numpy")
def ema_cross_targets(close, alpha_fast, fast, alpha_slow, slow, out):  # pragma: no cover
    """``cross_targets(ema(close, fast), ema(close, slow))`` in one pass over the closes.

    Bit-identical to ``ema`` (the same recursion step; between gaps, the same arithmetic
    in ``_steady_step``). The two recursions are independent, so side by side
    they take about as long as one (each step waits on the previous one); no EMA array
    is written.
    """
    n = close.shape[0]
    min_fast = max(fast, 1)
    min_slow = max(slow, 1)
    factor_fast = 1.0 - alpha_fast
    factor_slow = 1.0 - alpha_slow
    plain_fast = factor_fast + alpha_fast == 1.0
    plain_slow = factor_slow + alpha_slow == 1.0
    wf = np.nan
    of = 1.0
    ws = np.nan
    os_ = 1.0
    nobs = 0
    state = 0.0
    gap = np.nan  # no cross at the first bar
    t = 0
    while t < n:
        if of == 1.0 and os_ == 1.0 and wf == wf and ws == ws:  # steady: up to a NaN close
            while t < n:
                cur = close[t]
                if cur != cur:
                    break
                nobs += 1
                wf = _steady_step(wf, cur, alpha_fast, factor_fast, plain_fast)
                ws = _steady_step(ws, cur, alpha_slow, factor_slow, plain_slow)
                d = (wf if nobs >= min_fast else np.nan) - (ws if nobs >= min_slow else np.nan)
                state = _cross_state(d, gap, state)
                out[t] = state
                gap = d
                t += 1
            if t == n:
                break
        cur = close[t]
        if cur == cur:
            nobs += 1
        wf, of = _ewm_step(wf, of, cur, alpha_fast)
        ws, os_ = _ewm_step(ws, os_, cur, alpha_slow)
        d = (wf if nobs >= min_fast else np.nan) - (ws if nobs >= min_slow else np.nan)
        state = _cross_state(d, gap, state)
        out[t] = state
        gap = d
        t += 1
    return out


@njit(cache=True, error_model="numpy")
def _steady_rows(coef, close, o0, o1, o2, o3, i, w0, w1, w2, w3, plain):  # pragma: no cover
    """Four warmed-up EMAs (``_steady_step``) from bar ``i`` up to a NaN close; returns
    where it stopped.

    A function of its own, and ``coef`` (the factors, then the alphas) read from memory at
    every bar: this way the four recursions stay in registers (inlined, or with sixteen
    constants to hold, the compiler spilled one of them to the stack, doubling the time).
    """
    start = i
    # views from 0: the compiler then knows no index is negative (no wraparound checks)
    close, o0, o1, o2, o3 = close[start:], o0[start:], o1[start:], o2[start:], o3[start:]
    i = 0
    while i < close.shape[0]:
        cur = close[i]
        if cur != cur:
            break
        w0 = _steady_step(w0, cur, coef[4], coef[0], plain)
        w1 = _steady_step(w1, cur, coef[5], coef[1], plain)
        w2 = _steady_step(w2, cur, coef[6], coef[2], plain)
        w3 = _steady_step(w3, cur, coef[7], coef[3], plain)
        o0[i] = w0
        o1[i] = w1
        o2[i] = w2
        o3[i] = w3
        i += 1
    return start + i, w0, w1, w2, w3


@njit(cache=True, error_model="numpy")
def _ema_group(close, alphas, spans, out, r0):  # pragma: no cover - compiled
    """Rows ``r0`` .. ``r0 + 3`` of ``_ema_rows`` in one pass (a short last group repeats
    its last row)."""
    k = alphas.shape[0]
    n = close.shape[0]
    r1 = min(r0 + 1, k - 1)
    r2 = min(r0 + 2, k - 1)
    r3 = min(r0 + 3, k - 1)
    o0, o1, o2, o3 = out[r0], out[r1], out[r2], out[r3]
    a0, a1, a2, a3 = alphas[r0], alphas[r1], alphas[r2], alphas[r3]
    coef = np.array([1.0 - a0, 1.0 - a1, 1.0 - a2, 1.0 - a3, a0, a1, a2, a3])
    plain = True
    for q in range(4):
        plain &= coef[q] + coef[4 + q] == 1.0
    m0, m1, m2, m3 = max(spans[r0], 1), max(spans[r1], 1), max(spans[r2], 1), max(spans[r3], 1)
    warm = max(max(m0, m1), max(m2, m3))
    w0 = w1 = w2 = w3 = np.nan
    v0 = v1 = v2 = v3 = 1.0  # running weights of ``_ewm_step``
    nobs = 0
    i = 0
    while i < n:
        # steady: every row defined from the next bar on, no gap pending
        if nobs + 1 >= warm and v0 == 1.0 and v1 == 1.0 and v2 == 1.0 and v3 == 1.0 and w0 == w0:
            before = i
            if plain:
                i, w0, w1, w2, w3 = _steady_rows(
                    coef, close, o0, o1, o2, o3, i, w0, w1, w2, w3, True
                )
            else:
                i, w0, w1, w2, w3 = _steady_rows(
                    coef, close, o0, o1, o2, o3, i, w0, w1, w2, w3, False
                )
            nobs += i - before
            if i == n:
                break
        cur = close[i]
        if cur == cur:
            nobs += 1
        w0, v0 = _ewm_step(w0, v0, cur, a0)
        w1, v1 = _ewm_step(w1, v1, cur, a1)
        w2, v2 = _ewm_step(w2, v2, cur, a2)
        w3, v3 = _ewm_step(w3, v3, cur, a3)
        o0[i] = w0 if nobs >= m0 else np.nan
        o1[i] = w1 if nobs >= m1 else np.nan
        o2[i] = w2 if nobs >= m2 else np.nan
        o3[i] = w3 if nobs >= m3 else np.nan
        i += 1


@njit(cache=True, parallel=True)
def _ema_rows(close, alphas, spans, out):  # pragma: no cover - compiled
    """``out[r] = ema(close, spans[r])``, four EMAs per pass (their recursions overlap)."""
    for g in prange((alphas.shape[0] + 3) // 4):
        _ema_group(close, alphas, spans, out, 4 * g)
    return out


def emas(close: pd.Series | np.ndarray, spans: Sequence[int]) -> np.ndarray:
    """``ema(close, span)`` for every span, one row each (several computed per pass)."""
    x = np.ascontiguousarray(np.asarray(close, dtype="float64"))
    spans = np.asarray(spans, dtype=np.int64)
    alphas = np.array([alpha(int(s)) for s in spans], dtype="float64")
    return _ema_rows(x, alphas, spans, np.empty((len(spans), x.shape[0])))


@njit(cache=True)
def cross_targets(fast: np.ndarray, slow: np.ndarray, out: np.ndarray) -> np.ndarray:
    """1 from a bar where fast crosses above slow, 0 from a bar where it crosses below.

    A cross at bar t needs both EMAs defined at t - 1 and t: above means
    ``fast[t] > slow[t]`` after ``fast[t-1] <= slow[t-1]``; below is the mirror.
    """
    state = 0.0
    if out.shape[0] > 0:
        out[0] = 0.0
    for t in range(1, fast.shape[0]):
        d = fast[t] - slow[t]
        p = fast[t - 1] - slow[t - 1]
        if d > 0.0 and p <= 0.0:
            state = 1.0
        elif d < 0.0 and p >= 0.0:
            state = 0.0
        out[t] = state
    return out
