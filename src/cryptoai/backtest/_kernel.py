"""The execution model: numba-compiled fills, fees, slippage, sizing, exits and margin.

Both engines drive these same two step functions for every bar, so they cannot disagree
about how an order is filled. A bar is processed in two phases:

``open_phase``  pending market order fills at the open (default timing); held positions
                 hit stop-loss / trailing stop / liquidation / take-profit, resolved from
                 the open and the high/low (gaps fill at the open, stop assumed before
                 target); pending limit and stop orders trigger.
``close_phase`` funding on the held position; the trailing reference moves; the decision
                 taken at this close becomes an order (filled at once when ``fill_at`` is
                 ``close``, otherwise at the next open); last bar: close out.

All state lives in small float64 arrays (layouts below) so the kernels stay allocation-free.
Most bars of a backtest change nothing but the mark to market (flat, or long with no exit
that could trigger, no funding and no order waiting: see ``quiet``); the run loops detect
such stretches and handle them with the same arithmetic as the two phases, minus the
checks that cannot fire there.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from cryptoai.backtest._paths import (
    DD_BARS,
    DOWNSIDE,
    KURTOSIS,
    MAX_DD,
    MEAN,
    MEAN_EQUITY,
    SKEW,
    STD,
)

# --- parameter vector P -------------------------------------------------------------------
P_FEE = 0  # taker fee rate (fraction of traded value)
P_MAKER = 1  # maker fee rate (limit and take-profit fills)
P_SLIP = 2  # fixed slippage (fraction of price)
P_VOLSLIP = 3  # extra slippage per unit of per-bar volatility
P_FILL_CLOSE = 4  # 1: market orders fill at the decision bar's close
P_SIZE_MODE = 5  # 0 all_in, 1 fixed_fraction, 2 fixed_notional, 3 vol_target
P_SIZE_VALUE = 6  # fraction / notional / per-bar volatility target
P_LEV = 7
P_MM = 8  # maintenance margin (fraction of notional)
P_SL = 9  # stop-loss fraction (NaN: off)
P_TP = 10  # take-profit fraction (NaN: off)
P_TRAIL = 11  # trailing-stop fraction (NaN: off)
P_CLOSE_END = 12  # 1: close any position at the last close
P_RECORD = 13  # 1: record fills
P_EXITS = 14  # 1: long positions can exit by themselves (stops, target or leverage > 1)
P_FUNDED = 15  # 1: some bar has funding (otherwise the funding array is never read)
P_TIME_STOP = 16  # close at the open of the bar this many bars after the entry bar (NaN: off)
P_COST = 17  # cost model: C_FIXED, C_MAKER_TAKER, C_TIERED, C_SPREAD, C_IMPACT
P_IMPACT_K = 18  # impact coefficient (fraction of price at participation 1)
P_LAD_N = 19  # number of ladder take-profit levels (0: off)
P_LAD_FULL = 20  # 1: the ladder's fractions add up to the whole position
P_BREAKEVEN = 21  # 1: the stop moves to the entry price after the first ladder level
P_TIER_N = 22  # number of fee tiers (tiered cost model)
P_LAD = 23  # ladder levels: (gain, fraction) pairs, MAX_LADDER of them
MAX_LADDER = 8
P_TIERS = P_LAD + 2 * MAX_LADDER  # fee tiers: (min 30-day notional, taker, maker) triples
MAX_TIERS = 8
N_PARAMS = P_TIERS + 3 * MAX_TIERS

C_FIXED, C_MAKER_TAKER, C_TIERED, C_SPREAD, C_IMPACT = 0.0, 1.0, 2.0, 3.0, 4.0
IMPACT_CAP = 0.1  # market impact never moves a fill more than 10% (a bar without volume)

# --- state vector S -----------------------------------------------------------------------
S_CASH = 0
S_UNITS = 1
S_ENTRY = 2  # average entry price of the open position
S_PEAK = 3  # best price since entry (high for longs, low for shorts), completed bars only
S_HELD = 4  # target that produced the open position (0 when flat)
S_INTRA = 5  # 1 when the position was opened or grown inside the current bar
S_BANKRUPT = 6
S_FUNDING = 7  # total funding paid (negative: received)
S_ORD = 8  # pending order kind (K_*)
S_ORD_TARGET = 9
S_ORD_PRICE = 10
S_ORD_DIR = 11  # +1 buy, -1 sell
S_NF = 12  # fills recorded
S_NCLOSED = 13  # positions closed to flat (= round trips)
S_TFUND = 14  # funding paid by the open position so far
S_LAST = 15  # last target seen by `simulate` (so a run can resume after growing the fill buffer)
S_ENTRY_BAR = 16  # bar at which the open position was entered (from flat)
S_BASE = 17  # full size of the open position (units), the base of ladder fractions
S_LAD_DONE = 18  # ladder levels filled for the open position
S_BE = 19  # 1: the stop sits at the entry price (break-even after the first ladder level)
S_DAY = 20  # day number of the newest traded-notional bucket (tiered fees)
S_BUCKETS = 21  # traded notional per day, a ring of BUCKET_DAYS days (tiered fees)
BUCKET_DAYS = 31  # the 30 completed days before the current one, and the current day
# Round-trip tallies, kept as the run goes (the parallel kernel records no fills): what
# ``round_trips`` computes from the fills, in the same order of operations.
S_T_SIDE = S_BUCKETS + BUCKET_DAYS  # side of the open round trip (+1 long / -1 short)
S_T_FLOW = S_T_SIDE + 1  # its cash flow so far, net of fees
S_T_VALUE = S_T_SIDE + 2  # its entry value (opening-side fills)
S_WINS = S_T_SIDE + 3  # closed round trips with a positive pnl
S_GAINS = S_T_SIDE + 4  # sum of the positive pnls
S_LOSSES = S_T_SIDE + 5  # sum of the negative pnls, as a positive number
S_PNL = S_T_SIDE + 6  # sum of the pnls
S_TRET = S_T_SIDE + 7  # sum of the round trips' returns (pnl / entry value)
S_FEES = S_T_SIDE + 8  # fees paid, all fills
S_NOTIONAL = S_T_SIDE + 9  # traded value, all fills
N_STATE = S_T_SIDE + 10

# --- order kinds and fill reasons ---------------------------------------------------------
K_NONE = 0
K_MARKET = 1
K_LIMIT = 2
K_STOP = 3
K_CANCEL = 4

R_SIGNAL = 0
R_STOP_LOSS = 1
R_TAKE_PROFIT = 2
R_TRAILING = 3
R_LIQUIDATION = 4
R_LIMIT = 5
R_STOP = 6
R_END = 7
R_TIME_STOP = 8

# --- market data M: a tuple of per-bar float64 arrays, in this order ---------------------
# (volatility may be empty when nothing reads it: read as 0, and is NaN while unknown;
# funding is read only when P_FUNDED is set; the cost columns only by the cost model that
# needs them: the half-spread (fraction of price) by ``spread``, the quote volume by
# ``impact``, the day number by ``tiered``)
M_OPEN, M_HIGH, M_LOW, M_CLOSE, M_VOL, M_FUNDING, M_SPREAD, M_QVOL, M_DAY = range(9)
N_MARKET = 9

# fill record columns: bar, side (+1 buy / -1 sell), size, price, fee, reason, and the
# funding the round trip paid (set on the fill that brings the position back to zero)
N_FILL = 7
# per-bar output rows (OUT): equity at the close, units held at the close
OUT_EQUITY, OUT_UNITS = 0, 1
N_OUT = 2
# one bar makes at most 7 fills (flip, exit, flip, exit, end), or a ladder's levels more
FILL_HEADROOM = 16 + MAX_LADDER


# Nothing below allocates inside the bar loop (callers pass preallocated buffers), so it is
# compiled without numba's reference counting: with it every call pays atomic incref/decref
# on each array argument, which made the loop ~10x slower than its arithmetic. The two phase
# functions are inlined into the loops for the same reason.
step_jit = njit(cache=True, _nrt=False)
phase_jit = njit(cache=True, _nrt=False, inline="always")


def new_state(initial_cash: float) -> np.ndarray:
    s = np.zeros(N_STATE)
    s[S_CASH] = initial_cash
    return s


def grow(fills: np.ndarray) -> np.ndarray:
    """A fill buffer twice as large holding the same rows."""
    out = np.empty((fills.shape[0] * 2, N_FILL))
    out[: fills.shape[0]] = fills
    return out


def run_targets(
    state: np.ndarray,
    p: np.ndarray,
    m: tuple[np.ndarray, ...],
    targets: np.ndarray,
    kinds: np.ndarray,
    prices: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """`simulate` over all bars, growing the fill buffer as needed; returns (fills, out)."""
    n = m[0].shape[0]
    fills = np.empty((min(2 * n, 1 << 14) + 2 * FILL_HEADROOM, N_FILL))
    out = np.empty((N_OUT, n))
    i = 0
    while i < n:
        i = simulate(state, p, m, targets, kinds, prices, fills, out, i)
        if i < n:
            fills = grow(fills)
    return fills[: int(state[S_NF])], out


@step_jit
def _vol(M, i):
    """Volatility of bar ``i`` (0 when the column is empty: no setting uses it)."""
    v = M[M_VOL]
    return v[i] if v.shape[0] > 0 else 0.0


@step_jit
def _slip(P, M, i, vol):
    """Slippage of a taker fill in bar ``i`` (fraction of price), before market impact."""
    s = P[P_SLIP]
    if vol == vol:  # an unknown volatility (NaN, first bars) adds nothing
        s += P[P_VOLSLIP] * vol
    if P[P_COST] == C_SPREAD:
        s += M[M_SPREAD][i]
    return s


@step_jit
def _impact(P, M, i, notional):
    """Square-root market impact of a taker order of ``notional`` in bar ``i``."""
    if P[P_COST] != C_IMPACT or notional <= 0.0:
        return 0.0
    qv = M[M_QVOL][i]
    if not qv > 0.0:
        return IMPACT_CAP
    return min(P[P_IMPACT_K] * math.sqrt(notional / qv), IMPACT_CAP)


@step_jit
def _roll(S, day):
    """Start the traded-notional buckets of the days up to ``day`` (tiered fees)."""
    last = int(S[S_DAY])
    if day > last:
        for d in range(last + 1, min(day, last + BUCKET_DAYS) + 1):
            S[S_BUCKETS + d % BUCKET_DAYS] = 0.0
        S[S_DAY] = day


@step_jit
def _fee(S, P, M, i, taker):
    """Fee rate of a fill in bar ``i``: taker or maker, from the account's fee tier when
    fees are tiered by the notional traded over the 30 completed days before the fill's day."""
    if P[P_COST] != C_TIERED:
        return P[P_FEE] if taker else P[P_MAKER]
    day = int(M[M_DAY][i])
    _roll(S, day)
    traded = 0.0
    for b in range(BUCKET_DAYS):
        if b != day % BUCKET_DAYS:
            traded += S[S_BUCKETS + b]
    col = 1 if taker else 2
    rate = P[P_TIERS + col]
    for t in range(1, int(P[P_TIER_N])):
        if traded >= P[P_TIERS + 3 * t]:
            rate = P[P_TIERS + 3 * t + col]
    return rate


@step_jit
def _record(S, F, P, i, delta, price, fee, reason):
    if P[P_RECORD] == 0.0:
        return
    k = int(S[S_NF])
    F[k, 0] = i
    F[k, 1] = 1.0 if delta > 0 else -1.0
    F[k, 2] = abs(delta)
    F[k, 3] = price
    F[k, 4] = fee
    F[k, 5] = reason
    F[k, 6] = 0.0
    if S[S_UNITS] == 0.0:
        F[k, 6] = S[S_TFUND]
    S[S_NF] = k + 1


@step_jit
def _trade(S, F, P, M, i, delta, price, fee_rate, reason):
    """Trade ``delta`` units at ``price`` (slippage included); never crosses zero in one fill."""
    if delta == 0.0:
        return
    old = S[S_UNITS]
    fee = abs(delta) * price * fee_rate
    S[S_CASH] -= delta * price + fee
    new = old + delta
    if old == 0.0:
        S[S_ENTRY] = price
        S[S_PEAK] = price
        S[S_ENTRY_BAR] = i
        S[S_BASE] = abs(new)
        S[S_LAD_DONE] = 0.0
        S[S_BE] = 0.0
    elif (old > 0.0) == (delta > 0.0):
        S[S_ENTRY] = (old * S[S_ENTRY] + delta * price) / new
        if abs(new) > S[S_BASE]:
            S[S_BASE] = abs(new)
    S[S_UNITS] = new
    if P[P_COST] == C_TIERED:
        day = int(M[M_DAY][i])
        _roll(S, day)
        S[S_BUCKETS + day % BUCKET_DAYS] += abs(delta) * price
    _record(S, F, P, i, delta, price, fee, reason)
    _tally(S, old, delta, price, fee)
    if new == 0.0:
        S[S_HELD] = 0.0
        S[S_NCLOSED] += 1.0
        S[S_TFUND] = 0.0


@step_jit
def _tally(S, old, delta, price, fee):
    """Round-trip statistics of one fill (``old``: units before it); a round trip ends when
    the position is back at zero, its pnl net of fees and of the funding it paid."""
    side = 1.0 if delta > 0 else -1.0
    value = abs(delta) * price
    if old == 0.0:
        S[S_T_SIDE] = side
        S[S_T_FLOW] = 0.0
        S[S_T_VALUE] = 0.0
    if side == S[S_T_SIDE]:
        S[S_T_VALUE] += value
    S[S_T_FLOW] += -delta * price - fee
    S[S_FEES] += fee
    S[S_NOTIONAL] += value
    if old + delta == 0.0:
        pnl = S[S_T_FLOW] - S[S_TFUND]
        if pnl > 0.0:
            S[S_WINS] += 1.0
            S[S_GAINS] += pnl
        elif pnl < 0.0:
            S[S_LOSSES] -= pnl
        S[S_PNL] += pnl
        S[S_TRET] += pnl / S[S_T_VALUE]


@step_jit
def _unsized(P, target, vol):
    """True when ``target`` cannot be sized yet: volatility targeting before the first bar
    whose volatility is known (the order then waits for that bar)."""
    return P[P_SIZE_MODE] == 3.0 and target != 0.0 and math.isnan(vol)


@step_jit
def _units_for(S, P, target, price, fee_rate, vol):
    """Signed units for ``target`` at ``price``; the budget includes the fee."""
    equity = S[S_CASH] + S[S_UNITS] * price
    if target == 0.0 or equity <= 0.0:
        return 0.0
    lev = P[P_LEV]
    mode = P[P_SIZE_MODE]
    cap = equity * lev
    if mode == 0.0:
        notional = cap
    elif mode == 1.0:
        notional = equity * P[P_SIZE_VALUE] * lev
    elif mode == 2.0:
        notional = P[P_SIZE_VALUE]
    else:
        # zero volatility (constant closes): as large as the cap allows; unknown: nothing
        notional = equity * P[P_SIZE_VALUE] / vol if vol > 0.0 else (cap if vol == 0.0 else 0.0)
    notional *= abs(target)
    notional = min(notional, cap)
    units = notional / (price * (1.0 + fee_rate))
    return units if target > 0.0 else -units


@step_jit
def _rebalance(S, F, P, M, i, target, ref, taker, vol, reason):
    """Move the position to ``target`` at reference price ``ref`` (close leg first on a flip).

    Market impact (cost model ``impact``) is priced on the order's notional at ``ref``; an
    opening order is sized at the price before impact, then again at the price with it (so
    the impact charged is that of a slightly larger order: conservative)."""
    s = _slip(P, M, i, vol) if taker else 0.0
    old = S[S_UNITS]
    if old != 0.0 and (target == 0.0 or (target > 0.0) != (old > 0.0)):
        sc = s + (_impact(P, M, i, abs(old) * ref) if taker else 0.0)
        px = ref * (1.0 - sc) if old > 0.0 else ref * (1.0 + sc)
        _trade(S, F, P, M, i, -old, px, _fee(S, P, M, i, taker), reason)
        old = 0.0
    if target != 0.0:
        fee_rate = _fee(S, P, M, i, taker)
        px = ref * (1.0 + s) if target > 0.0 else ref * (1.0 - s)
        want = _units_for(S, P, target, px, fee_rate, vol)
        sc = s
        if taker and P[P_COST] == C_IMPACT:
            sc = s + _impact(P, M, i, abs(want - old) * ref)
            px = ref * (1.0 + sc) if target > 0.0 else ref * (1.0 - sc)
            want = _units_for(S, P, target, px, fee_rate, vol)
        delta = want - old
        if abs(delta) > 1e-12 * abs(want):
            if (delta > 0.0) != (target > 0.0):  # reducing: the fill is on the other side
                px = ref * (1.0 - sc) if delta < 0.0 else ref * (1.0 + sc)
            _trade(S, F, P, M, i, delta, px, fee_rate, reason)
        if S[S_UNITS] != 0.0:
            S[S_HELD] = target


@step_jit
def _liquidate(S, F, P, M, i, px):
    """Close at ``px``; a loss beyond the margin is capped at the bankruptcy price (equity 0)."""
    u = S[S_UNITS]
    cash = S[S_CASH]
    fee_rate = _fee(S, P, M, i, True)
    if cash + u * px - abs(u) * px * fee_rate < 0.0:
        px = -cash / (u * (1.0 - fee_rate)) if u > 0.0 else cash / (-u * (1.0 + fee_rate))
    _trade(S, F, P, M, i, -u, px, fee_rate, R_LIQUIDATION)
    if S[S_CASH] <= 1e-9 * max(abs(cash), 1.0):
        S[S_BANKRUPT] = 1.0


@step_jit
def _take(S, F, P, M, i, units, level, o, gap, vol):
    """A take-profit fill of ``units`` (signed) at ``level``, or at the open when the bar
    gapped through it. It rests in the book: maker fee, no slippage; under ``maker_taker``
    a gap fill crossed the book instead and pays the taker fee and slippage."""
    if not gap:
        _trade(S, F, P, M, i, units, level, _fee(S, P, M, i, False), R_TAKE_PROFIT)
    elif P[P_COST] == C_MAKER_TAKER:
        s = _slip(P, M, i, vol)
        px = o * (1.0 - s) if units < 0.0 else o * (1.0 + s)
        _trade(S, F, P, M, i, units, px, _fee(S, P, M, i, True), R_TAKE_PROFIT)
    else:
        _trade(S, F, P, M, i, units, o, _fee(S, P, M, i, False), R_TAKE_PROFIT)


@step_jit
def _targets(S, F, P, M, i, o, hi, lo, vol):
    """Take-profit, or the ladder's levels in order (several may fill in one bar)."""
    u = S[S_UNITS]
    long = u > 0.0
    entry = S[S_ENTRY]
    n = int(P[P_LAD_N])
    if n == 0:
        tp = P[P_TP]
        if not math.isnan(tp):
            level = entry * (1.0 + tp) if long else entry * (1.0 - tp)
            gap = o >= level if long else o <= level
            if gap or (hi >= level if long else lo <= level):
                _take(S, F, P, M, i, -u, level, o, gap, vol)
        return
    done = int(S[S_LAD_DONE])
    while done < n:
        gain = P[P_LAD + 2 * done]
        level = entry * (1.0 + gain) if long else entry * (1.0 - gain)
        gap = o >= level if long else o <= level
        if not (gap or (hi >= level if long else lo <= level)):
            return
        held = abs(S[S_UNITS])
        units = P[P_LAD + 2 * done + 1] * S[S_BASE]
        if units >= held * (1.0 - 1e-9) or (done == n - 1 and P[P_LAD_FULL] != 0.0):
            units = held
        done += 1
        _take(S, F, P, M, i, -units if long else units, level, o, gap, vol)
        if S[S_UNITS] == 0.0:
            return
        S[S_LAD_DONE] = done
        if P[P_BREAKEVEN] != 0.0:
            S[S_BE] = 1.0  # from the next bar: this bar's low came before or after, unknown


@step_jit
def _exits(S, F, P, M, i, o, hi, lo, vol, intrabar):
    """Stop-loss, trailing stop, liquidation and take-profit (or ladder) of the held position
    (the time stop, at the open, comes first: ``_open_events``).

    ``intrabar``: the position was entered inside this bar, so only the adverse side is
    checked (against the low/high, not the open) and take-profit waits for the next bar.
    """
    u = S[S_UNITS]
    if u == 0.0:
        return
    sl = P[P_SL]
    tr = P[P_TRAIL]
    entry = S[S_ENTRY]
    peak = S[S_PEAK]
    mm = P[P_MM]
    cash = S[S_CASH]
    if u > 0.0:
        stop = -math.inf
        reason = R_STOP_LOSS
        if not math.isnan(sl):
            stop = entry * (1.0 - sl)
        if S[S_BE] != 0.0 and entry > stop:
            stop = entry
        if not math.isnan(tr) and peak * (1.0 - tr) > stop:
            stop = peak * (1.0 - tr)
            reason = R_TRAILING
        liq = -cash / (u * (1.0 - mm))
        is_liq = liq > stop
        level = liq if is_liq else stop
        if level > 0.0:
            px = math.nan
            if not intrabar and o <= level:
                px = o
            elif lo <= level:
                px = level
            if not math.isnan(px):
                if is_liq:
                    _liquidate(S, F, P, M, i, px)
                else:
                    sc = _slip(P, M, i, vol) + _impact(P, M, i, u * px)
                    _trade(S, F, P, M, i, -u, px * (1.0 - sc), _fee(S, P, M, i, True), reason)
                return
    else:
        stop = math.inf
        reason = R_STOP_LOSS
        if not math.isnan(sl):
            stop = entry * (1.0 + sl)
        if S[S_BE] != 0.0 and entry < stop:
            stop = entry
        if not math.isnan(tr) and peak * (1.0 + tr) < stop:
            stop = peak * (1.0 + tr)
            reason = R_TRAILING
        liq = cash / (-u * (1.0 + mm))
        is_liq = liq < stop
        level = liq if is_liq else stop
        if level < math.inf:
            px = math.nan
            if not intrabar and o >= level:
                px = o
            elif hi >= level:
                px = level
            if not math.isnan(px):
                if is_liq:
                    _liquidate(S, F, P, M, i, px)
                else:
                    sc = _slip(P, M, i, vol) + _impact(P, M, i, -u * px)
                    _trade(S, F, P, M, i, -u, px * (1.0 + sc), _fee(S, P, M, i, True), reason)
                return
    if not intrabar and (P[P_LAD_N] != 0.0 or not math.isnan(P[P_TP])):
        _targets(S, F, P, M, i, o, hi, lo, vol)


@step_jit
def _trigger(kind, direction, level, o, hi, lo):
    """Fill reference price of a resting limit/stop order in this bar, NaN if not touched."""
    if kind == K_LIMIT:
        if direction > 0.0:
            return o if o <= level else (level if lo <= level else math.nan)
        return o if o >= level else (level if hi >= level else math.nan)
    if direction > 0.0:
        return o if o >= level else (level if hi >= level else math.nan)
    return o if o <= level else (level if lo <= level else math.nan)


@step_jit
def _open_events(S, F, P, M, i):
    """The open and the range of bar ``i``: pending market fill, exits, resting orders."""
    o = M[M_OPEN][i]
    hi = M[M_HIGH][i]
    lo = M[M_LOW][i]
    vol = _vol(M, i)
    if S[S_ORD] == K_MARKET and not _unsized(P, S[S_ORD_TARGET], vol):
        S[S_ORD] = K_NONE
        _rebalance(S, F, P, M, i, S[S_ORD_TARGET], o, True, vol, R_SIGNAL)
    u = S[S_UNITS]
    if u < 0.0 or (u > 0.0 and P[P_EXITS] != 0.0):
        if i - S[S_ENTRY_BAR] >= P[P_TIME_STOP]:  # time stop at the open (NaN: off)
            _rebalance(S, F, P, M, i, 0.0, o, True, vol, R_TIME_STOP)
        else:
            _exits(S, F, P, M, i, o, hi, lo, vol, False)
    kind = S[S_ORD]
    if kind == K_LIMIT or kind == K_STOP:  # noqa: SIM109 - plain compares compile best
        ref = _trigger(kind, S[S_ORD_DIR], S[S_ORD_PRICE], o, hi, lo)
        if not math.isnan(ref) and not _unsized(P, S[S_ORD_TARGET], vol):
            S[S_ORD] = K_NONE
            before = S[S_UNITS]
            # a limit order rests (maker); one the open gapped through crossed the book
            # (taker, under the maker_taker cost model)
            taker = kind == K_STOP or (ref == o and P[P_COST] == C_MAKER_TAKER)
            reason = R_STOP if kind == K_STOP else R_LIMIT
            _rebalance(S, F, P, M, i, S[S_ORD_TARGET], ref, taker, vol, reason)
            after = S[S_UNITS]
            grew = after != 0.0 and (
                before == 0.0 or (after > 0.0) != (before > 0.0) or abs(after) > abs(before)
            )
            if ref != o and grew:
                S[S_INTRA] = 1.0
                _exits(S, F, P, M, i, o, hi, lo, vol, True)


@phase_jit
def open_phase(S, F, P, M, i):
    """Everything that happens from the open of bar ``i`` up to (not including) its close.

    Most bars have nothing to do (flat, or long with no exit that could trigger, and no order
    waiting): they return here; the rest is a call, which keeps the inlined loop small.
    """
    if S[S_INTRA] != 0.0:
        S[S_INTRA] = 0.0
    if S[S_BANKRUPT] != 0.0:
        return
    if S[S_ORD] == K_NONE:
        u = S[S_UNITS]
        if u == 0.0 or (u > 0.0 and P[P_EXITS] == 0.0):
            return
    _open_events(S, F, P, M, i)


@step_jit
def _decide(S, F, P, M, i, target, kind, price):
    """Turn the decision at bar ``i``'s close into an order (or a fill, with ``fill_at=close``)."""
    d = target - S[S_HELD]
    if kind == K_CANCEL or d == 0.0:
        S[S_ORD] = K_NONE
    elif kind == K_MARKET and P[P_FILL_CLOSE] != 0.0 and not _unsized(P, target, _vol(M, i)):
        S[S_ORD] = K_NONE
        _rebalance(S, F, P, M, i, target, M[M_CLOSE][i], True, _vol(M, i), R_SIGNAL)
    else:
        S[S_ORD] = kind
        S[S_ORD_TARGET] = target
        S[S_ORD_PRICE] = price
        S[S_ORD_DIR] = 1.0 if d > 0.0 else -1.0


@step_jit
def _finish(S, F, P, M, i):
    """After the last bar: cancel what is pending and close out (unless asked not to)."""
    S[S_ORD] = K_NONE
    if P[P_CLOSE_END] != 0.0 and S[S_UNITS] != 0.0:
        _rebalance(S, F, P, M, i, 0.0, M[M_CLOSE][i], True, _vol(M, i), R_END)


@phase_jit
def close_phase(S, F, P, M, OUT, i, has_order, target, kind, price, last):
    """Funding, trailing reference, the decision at this close, and the end-of-data close-out."""
    c = M[M_CLOSE][i]
    u = S[S_UNITS]
    if u != 0.0:
        rate = M[M_FUNDING][i] if P[P_FUNDED] != 0.0 else 0.0
        if rate != 0.0:
            pay = u * c * rate
            S[S_CASH] -= pay
            S[S_FUNDING] += pay
            S[S_TFUND] += pay
        if u > 0.0:
            ref = c if S[S_INTRA] != 0.0 else M[M_HIGH][i]
            if ref > S[S_PEAK]:
                S[S_PEAK] = ref
        else:
            ref = c if S[S_INTRA] != 0.0 else M[M_LOW][i]
            if ref < S[S_PEAK]:
                S[S_PEAK] = ref
    if has_order and S[S_BANKRUPT] == 0.0:
        _decide(S, F, P, M, i, target, kind, price)
    if last:
        _finish(S, F, P, M, i)
    if OUT.shape[1] > 0:
        OUT[OUT_EQUITY, i] = S[S_CASH] + S[S_UNITS] * c
        OUT[OUT_UNITS, i] = S[S_UNITS]


@step_jit
def step(S, F, P, M, OUT, i, has_order, target, kind, price):
    """Close of bar ``i`` then the open of bar ``i + 1``: one call per bar for the event engine
    (``i = -1`` runs only the first open). Returns the number of fills recorded so far."""
    n = M[0].shape[0]
    if i >= 0:
        close_phase(S, F, P, M, OUT, i, has_order, target, kind, price, i == n - 1)
    if i + 1 < n:
        open_phase(S, F, P, M, i + 1)
    return int(S[S_NF])


@step_jit
def quiet(S, P):
    """True when the coming bars can change nothing but the mark to market until the target
    changes: no order waiting, and flat or long with no exit that could trigger (no stops,
    no leverage) and no funding. Both phases are then no-ops but for the equity (and a
    long's best price, which only a trailing stop reads: a long with one is never quiet)."""
    if S[S_ORD] != K_NONE:
        return False
    u = S[S_UNITS]
    return u == 0.0 or (u > 0.0 and P[P_EXITS] == 0.0 and P[P_FUNDED] == 0.0)


@phase_jit
def quiet_bars(S, M, OUT, targets, last_target, i, end):
    """Bars ``i`` .. up to ``end`` (excluded) or the first bar whose target changes (is set
    and differs from ``last_target``), while ``quiet``: what ``open_phase`` and
    ``close_phase`` would do there. Returns the next bar.

    Blocks of 8 bars: a block without a change is written at once (no early exit inside a
    block, so it vectorizes); one with a change is finished bar by bar. Views that start at
    bar ``i`` tell the compiler that no index is negative (no wraparound checks).
    """
    S[S_INTRA] = 0.0  # the open of bar i clears it
    u = S[S_UNITS]
    cash = S[S_CASH]
    write = OUT.shape[1] > 0
    targets = targets[i:end]
    close = M[M_CLOSE][i:end]
    equity = OUT[OUT_EQUITY][i:end]  # empty when not written
    units = OUT[OUT_UNITS][i:end]
    n = targets.shape[0]
    j = 0
    while j + 8 <= n:
        change = False
        for q in range(8):
            t = targets[j + q]
            change |= (t == t) & (t != last_target)
        if change:
            break
        if write:
            for q in range(8):
                equity[j + q] = cash + u * close[j + q]
                units[j + q] = u
        j += 8
    while j < n:
        t = targets[j]
        if t == t and t != last_target:
            break
        if write:
            equity[j] = cash + u * close[j]
            units[j] = u
        j += 1
    return i + j


@step_jit
def simulate(S, P, M, targets, kinds, prices, F, OUT, start):
    """Run target positions through the execution model from bar ``start``; NaN = keep.

    An order is placed when the target differs from the previous non-NaN target (start: 0),
    so a position closed by a stop is not re-entered until the signal changes. Fills go to
    ``F``, per-bar equity / units to ``OUT``. Returns the next bar to run: less
    than the number of bars when ``F`` is nearly full (grow it and call again).
    """
    n = M[0].shape[0]
    last_target = S[S_LAST]
    has_kinds = kinds.shape[0] > 0
    room = F.shape[0] - FILL_HEADROOM
    i = start
    while i < n:
        if S[S_NF] > room:
            S[S_LAST] = last_target
            return i
        if quiet(S, P):  # skip to the next target change (the last bar runs in full)
            i = quiet_bars(S, M, OUT, targets, last_target, i, n - 1)
        open_phase(S, F, P, M, i)
        t = targets[i]
        has = (not math.isnan(t)) and t != last_target
        if has:
            last_target = t
        kind = K_MARKET
        price = math.nan
        if has_kinds:
            kind = kinds[i]
            price = prices[i]
        close_phase(S, F, P, M, OUT, i, has, t, kind, price, i == n - 1)
        i += 1
    S[S_LAST] = last_target
    return n


@phase_jit
def _target_at(targets, j, fast, slow, crossover, i, state, gap):
    """Target of run ``j`` at bar ``i``: ``targets[j, i]``, or the crossover state of
    ``fast`` over ``slow`` (``gap``: fast - slow at bar ``i - 1``). Returns (target, state, gap)."""
    if crossover:
        d = fast[i] - slow[i]
        if i > 0:
            if d > 0.0 and gap <= 0.0:
                state = 1.0
            elif d < 0.0 and gap >= 0.0:
                state = 0.0
        return state, state, d
    return targets[j, i], state, gap


@phase_jit
def _account(eq, i, acc, full, B, size):
    """Accumulate the bar ``i`` closing at equity ``eq`` into ``acc`` = (previous equity,
    peak, drawdown floor, max drawdown, sum r, sum r**2; and with ``full``: sum of the
    negative r**2, sum r**3, sum r**4, sum of the equity, position of the last peak, 1 when
    at the peak, longest time under water). With ``full``, ``B`` collects sums of r and r**2
    per block of ``size`` bars (first half, second half; bars past the last block are left
    out). Positions count the initial cash as 0, bar ``i`` as ``i + 1`` (as ``_paths``)."""
    prev, peak, floor, mdd, sr, sr2, down, sr3, sr4, seq, last, at, longest = acc
    if full:
        seq += eq
    if eq != prev:  # flat bars change nothing else (their return is 0)
        if eq >= peak:
            if full and at == 0.0:  # regains the peak lost after ``last``
                longest = max(longest, i + 1.0 - last)
            if eq > peak:
                peak = eq
                floor = peak * (1.0 - mdd)
            last = i + 1.0
            at = 1.0
        else:
            at = 0.0
            if eq < floor:  # a deeper drawdown: the only place that divides
                mdd = 1.0 - eq / peak
                floor = eq
        r = eq / prev - 1.0 if prev > 0.0 else 0.0
        r2 = r * r
        sr += r
        sr2 += r2
        if full:
            if r < 0.0:
                down += r2
            sr3 += r2 * r
            sr4 += r2 * r2
            nb = B.shape[0] // 2
            b = i // size if size > 0 else nb
            if b < nb:
                B[b] += r
                B[nb + b] += r2
        prev = eq
    elif at != 0.0:  # an unchanged equity at the peak is the last peak so far
        last = i + 1.0
    return prev, peak, floor, mdd, sr, sr2, down, sr3, sr4, seq, last, at, longest


@phase_jit
def _flat(acc, cash, bars, end):
    """``bars`` bars of a flat account, up to bar ``end`` (excluded), skipped unseen: the
    equity sum moves, and the last peak when the account sits at its peak."""
    prev, peak, floor, mdd, sr, sr2, down, sr3, sr4, seq, last, at, longest = acc
    seq += cash * bars
    if at != 0.0:
        last = float(end)
    return prev, peak, floor, mdd, sr, sr2, down, sr3, sr4, seq, last, at, longest


# The quiet stretches of ``simulate_many``: tight loops of their own (not inlined, so that
# each keeps its few values in registers), up to the first bar whose target differs from
# ``held`` (the last target) or ``end``. ``mark``: account the equity cash + u * close
# (off for a flat run with finite closes, whose equity cannot move). They index views that
# start at bar ``i``: the compiler then knows no index is negative (no wraparound checks).


@step_jit
def _quiet_cross(fast, slow, close, i, end, held, cash, u, mark, acc, full, B, size):
    """Crossover targets: only a cross away from ``held`` (1: below, 0: above) changes it."""
    gap = fast[i - 1] - slow[i - 1]
    up = held == 0.0
    fast, slow, close = fast[i:end], slow[i:end], close[i:end]
    k = 0
    while k < close.shape[0]:
        d = fast[k] - slow[k]
        if up:
            if d > 0.0 and gap <= 0.0:
                break
        elif d < 0.0 and gap >= 0.0:
            break
        if mark:
            acc = _account(cash + u * close[k], i + k, acc, full, B, size)
        gap = d
        k += 1
    return i + k, acc


@step_jit
def _quiet_targets(targets, close, i, end, held, cash, u, mark, acc, full, B, size):
    """Target series: a non-NaN target other than ``held`` changes it."""
    targets, close = targets[i:end], close[i:end]
    k = 0
    while k < close.shape[0]:
        t = targets[k]
        if t == t and t != held:
            break
        if mark:
            acc = _account(cash + u * close[k], i + k, acc, full, B, size)
        k += 1
    return i + k, acc


# columns of ``simulate_many``'s results, one row per run
RES_EQUITY, RES_MDD, RES_SHARPE, RES_TRADES, RES_FUNDING = range(5)
RES_EXPOSED = 5  # bars closed holding a position
RES_WINS, RES_GAINS, RES_LOSSES, RES_PNL, RES_TRET, RES_FEES, RES_NOTIONAL = range(6, 13)
N_RES = 13
_TALLIES = (S_WINS, S_GAINS, S_LOSSES, S_PNL, S_TRET, S_FEES, S_NOTIONAL)


@njit(cache=True, parallel=True, _nrt=False)
def simulate_many(
    S, P, M, targets, lines, fast_rows, slow_rows, F, OUT, periods_per_year, res, PS, BS, size
):
    """Summary statistics of many runs, in parallel over runs; fills are not recorded.

    Run ``j`` takes its targets from ``targets[j]`` or, when ``targets`` has no rows, from a
    crossover of two rows of ``lines``: 1 from a bar where ``lines[fast_rows[j]]`` crosses
    above ``lines[slow_rows[j]]``, 0 from a bar where it crosses below (no target series is
    materialized). ``S`` holds one state row per run; ``P`` must have recording off.
    Writes per run (``RES_*`` columns of ``res``): final equity, max drawdown (<= 0),
    annualized Sharpe of bar returns, round trips, funding paid, bars held, and the
    round-trip tallies (wins, gains, losses, pnl, returns, fees, traded value). Unless
    ``PS`` has no columns (shape ``(1, 0)``), also the path statistics of the bar returns
    (``_paths`` columns: mean, std, downside deviation, max drawdown, longest time under
    water, mean equity, skewness, kurtosis) in ``PS[j]`` and their sums per block of
    ``size`` bars in ``BS[j]`` (sums of r, then of r**2), as the run goes: no per-bar
    array is kept. Between target changes a ``quiet`` run only marks to market (and a
    flat one, with finite closes, not even that: its equity stays put).
    """
    crossover = targets.shape[0] == 0
    runs = fast_rows.shape[0] if crossover else targets.shape[0]
    n = M[0].shape[0]
    close = M[M_CLOSE]
    full = PS.shape[1] > 0
    finite = True
    for i in range(n):
        if not math.isfinite(close[i]):
            finite = False
    for j in prange(runs):
        s = S[j]
        B = BS[j] if full else BS[0]
        last_target = 0.0
        cash0 = s[S_CASH]
        # see _account: the initial cash is the first peak, at position 0
        acc = (cash0, cash0, cash0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0)
        state = 0.0
        gap = math.nan
        fast = lines[fast_rows[j]] if crossover else close
        slow = lines[slow_rows[j]] if crossover else close
        exposed = 0
        i = 0
        t = 0.0
        if n > 0:
            t, state, gap = _target_at(targets, j, fast, slow, crossover, 0, state, gap)
        while i < n:
            # a bar in full: both phases
            open_phase(s, F, P, M, i)
            has = (not math.isnan(t)) and t != last_target
            if has:
                last_target = t
            close_phase(s, F, P, M, OUT, i, has, t, K_MARKET, math.nan, i == n - 1)
            acc = _account(s[S_CASH] + s[S_UNITS] * close[i], i, acc, full, B, size)
            if s[S_UNITS] != 0.0:
                exposed += 1
            i += 1
            if i == n:
                break
            if quiet(s, P) and i < n - 1:  # up to the next target change (the last bar in full)
                s[S_INTRA] = 0.0  # the next open clears it
                u = s[S_UNITS]
                cash = s[S_CASH]
                mark = not (u == 0.0 and finite)
                start = i
                if crossover:
                    i, acc = _quiet_cross(
                        fast, slow, close, i, n - 1, last_target, cash, u, mark, acc,
                        full, B, size,
                    )  # fmt: skip
                    state = last_target
                    gap = fast[i - 1] - slow[i - 1]
                else:
                    i, acc = _quiet_targets(
                        targets[j], close, i, n - 1, last_target, cash, u, mark, acc,
                        full, B, size,
                    )  # fmt: skip
                if u != 0.0:
                    exposed += i - start
                elif full and not mark:
                    acc = _flat(acc, cash, i - start, i)
            t, state, gap = _target_at(targets, j, fast, slow, crossover, i, state, gap)
        prev, _, _, mdd, sr, sr2, down, sr3, sr4, seq, last, at, longest = acc
        mean = sr / n
        var = (sr2 - n * mean * mean) / (n - 1) if n > 1 else 0.0
        res[j, RES_EQUITY] = prev
        res[j, RES_MDD] = -mdd  # negative, as compute_metrics reports it
        sharpe = mean / math.sqrt(var) * math.sqrt(periods_per_year) if var > 0.0 else math.nan
        res[j, RES_SHARPE] = sharpe
        res[j, RES_TRADES] = s[S_NCLOSED]
        res[j, RES_FUNDING] = s[S_FUNDING]
        res[j, RES_EXPOSED] = exposed
        for q in range(len(_TALLIES)):
            res[j, RES_WINS + q] = s[_TALLIES[q]]
        if full and n > 0:
            _moments(PS[j], n, sr, sr2, sr3, sr4, down)
            PS[j, MAX_DD] = -mdd
            PS[j, DD_BARS] = max(longest, n - last) if at == 0.0 else longest
            PS[j, MEAN_EQUITY] = seq / n


@step_jit
def _moments(out, n, s1, s2, s3, s4, down):
    """Mean, standard deviation (ddof 1), downside deviation, skewness and (non-excess)
    kurtosis of ``n`` returns from their sums of powers (``_paths`` columns)."""
    mean = s1 / n
    m2 = max(s2 / n - mean * mean, 0.0)
    out[MEAN] = mean
    out[STD] = math.sqrt(m2 * n / (n - 1)) if n > 1 else math.nan
    out[DOWNSIDE] = math.sqrt(down / n)
    if m2 > 0.0:
        m3 = s3 / n - 3.0 * mean * (s2 / n) + 2.0 * mean**3
        m4 = s4 / n - 4.0 * mean * (s3 / n) + 6.0 * mean * mean * (s2 / n) - 3.0 * mean**4
        out[SKEW] = m3 / m2**1.5
        out[KURTOSIS] = m4 / (m2 * m2)
    else:
        out[SKEW] = math.nan
        out[KURTOSIS] = math.nan


@njit(cache=True)
def round_trips(F):
    """Round trips from fills: a trade opens when the position leaves zero and ends back at zero.

    Columns: entry bar, exit bar, side (+1 long / -1 short), units opened, entry value,
    exit value, fees, pnl (cash flow net of fees and of the funding the trade paid).
    """
    m = F.shape[0]
    out = np.empty((m, 8))
    k = 0
    units = 0.0
    side = 0.0
    entry_bar = 0.0
    opened = 0.0
    entry_value = 0.0
    exit_value = 0.0
    fees = 0.0
    flow = 0.0
    for j in range(m):
        d = F[j, 1] * F[j, 2]
        value = F[j, 2] * F[j, 3]
        if units == 0.0:
            side = F[j, 1]
            entry_bar = F[j, 0]
            opened = 0.0
            entry_value = 0.0
            exit_value = 0.0
            fees = 0.0
            flow = 0.0
        if F[j, 1] == side:
            opened += F[j, 2]
            entry_value += value
        else:
            exit_value += value
        fees += F[j, 4]
        flow += -d * F[j, 3] - F[j, 4]
        units += d
        if abs(units) <= 1e-9 * opened:
            units = 0.0
            out[k, 0] = entry_bar
            out[k, 1] = F[j, 0]
            out[k, 2] = side
            out[k, 3] = opened
            out[k, 4] = entry_value
            out[k, 5] = exit_value
            out[k, 6] = fees
            out[k, 7] = flow - F[j, 6]
            k += 1
    return out[:k].copy()
