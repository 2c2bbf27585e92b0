"""Rewards of the trading environment, all computed from net equity (fees, slippage and
funding are already inside it, so no reward can ignore costs).

A reward is a small stateful object: ``reset(equity)`` at the start of an episode, then
``step(previous_equity, equity)`` once per environment step, returning a float. Found by
name through ``make_reward(name, **params)``.
"""

from __future__ import annotations

import math

from cryptoai.errors import BadInputError

#: Equity below this fraction of the episode's starting equity is treated as ruin (a floor
#: that keeps log returns finite: a wiped-out account is a very negative, finite reward).
RUIN_FLOOR = 1e-9


def _log_return(previous: float, equity: float, floor: float) -> float:
    return math.log(max(equity, floor) / max(previous, floor))


class LogReturn:
    """Net log return of equity over the step: sums to the episode's log growth."""

    name = "log_return"

    def __init__(self) -> None:
        self._floor = RUIN_FLOOR

    def reset(self, equity: float) -> None:
        self._floor = RUIN_FLOOR * equity

    def step(self, previous: float, equity: float) -> float:
        return _log_return(previous, equity, self._floor)


class DifferentialSharpe:
    """Moody & Saffell's differential Sharpe ratio (1998): the first-order effect of this
    step's return on an exponentially weighted Sharpe ratio with adaptation rate ``eta``.

    With ``A``, ``B`` the moving first and second moments of returns ``R`` (log returns):
    ``D_t = (B_{t-1} dA_t - A_{t-1} dB_t / 2) / (B_{t-1} - A_{t-1}^2)^(3/2)``, where
    ``dA_t = R_t - A_{t-1}`` and ``dB_t = R_t^2 - B_{t-1}``. 0 while the moving variance is
    still zero (the first step of an episode).
    """

    name = "differential_sharpe"

    def __init__(self, eta: float = 0.01) -> None:
        if not (isinstance(eta, int | float) and 0.0 < eta < 1.0):
            raise BadInputError(f"differential_sharpe eta={eta!r}: use a number in (0, 1)")
        self.eta = float(eta)
        self._floor = RUIN_FLOOR
        self._a = 0.0
        self._b = 0.0

    def reset(self, equity: float) -> None:
        self._floor = RUIN_FLOOR * equity
        self._a = 0.0
        self._b = 0.0

    def step(self, previous: float, equity: float) -> float:
        r = _log_return(previous, equity, self._floor)
        a, b = self._a, self._b
        da, db = r - a, r * r - b
        var = b - a * a
        d = (b * da - 0.5 * a * db) / var**1.5 if var > 1e-18 else 0.0
        self._a = a + self.eta * da
        self._b = b + self.eta * db
        return d


class DrawdownPenalized:
    """Net log return minus ``penalty`` times the growth of the drawdown over the step
    (``drawdown = 1 - equity / peak``, the running peak since the episode start): a loss
    below the peak costs ``1 + penalty`` times as much as a loss recovered from."""

    name = "drawdown_penalized"

    def __init__(self, penalty: float = 1.0) -> None:
        if not (isinstance(penalty, int | float) and penalty >= 0.0 and math.isfinite(penalty)):
            raise BadInputError(f"drawdown_penalized penalty={penalty!r}: use a number >= 0")
        self.penalty = float(penalty)
        self._floor = RUIN_FLOOR
        self._peak = 0.0
        self._dd = 0.0

    def reset(self, equity: float) -> None:
        self._floor = RUIN_FLOOR * equity
        self._peak = equity
        self._dd = 0.0

    def step(self, previous: float, equity: float) -> float:
        r = _log_return(previous, equity, self._floor)
        self._peak = max(self._peak, equity)
        dd = 1.0 - equity / self._peak if self._peak > 0.0 else 1.0
        grew = max(dd - self._dd, 0.0)
        self._dd = dd
        return r - self.penalty * grew


REWARDS: dict[str, type] = {
    cls.name: cls for cls in (LogReturn, DifferentialSharpe, DrawdownPenalized)
}


def check_reward_name(name: str) -> str:
    """``name`` if it is a known reward, else a one-line error listing the known ones."""
    if name not in REWARDS:
        raise BadInputError(f"unknown reward {name!r}: use one of {', '.join(sorted(REWARDS))}")
    return name


def make_reward(name: str, **params: float):
    """A fresh reward object by name; unknown names and parameters are one-line errors."""
    cls = REWARDS[check_reward_name(name)]
    try:
        return cls(**params)
    except TypeError:
        raise BadInputError(
            f"reward {name!r} does not take parameters {sorted(params)}: see docs/rl.md"
        ) from None
