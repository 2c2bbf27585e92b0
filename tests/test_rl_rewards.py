"""Rewards against independent computations on a known equity path."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cryptoai.errors import BadInputError
from cryptoai.rl.rewards import REWARDS, make_reward

EQUITY = np.array([100.0, 101.0, 99.0, 99.5, 103.0, 98.0, 97.0, 104.0])


def _rewards(name: str, **params) -> np.ndarray:
    r = make_reward(name, **params)
    r.reset(EQUITY[0])
    return np.array([r.step(a, b) for a, b in zip(EQUITY[:-1], EQUITY[1:], strict=True)])


def test_log_return_sums_to_log_growth():
    got = _rewards("log_return")
    np.testing.assert_allclose(got, np.diff(np.log(EQUITY)), rtol=1e-12)


def test_differential_sharpe_is_the_derivative_of_the_moving_sharpe():
    """D_t ~ (S_t - S_{t-1}) / eta for small eta, S = A / sqrt(B - A^2) (Moody & Saffell),
    once the moving moments have settled."""
    eta = 1e-3
    rng = np.random.default_rng(0)
    r = rng.normal(2e-4, 1e-2, 6000)
    equity = 100.0 * np.exp(np.concatenate(([0.0], np.cumsum(r))))
    rew = make_reward("differential_sharpe", eta=eta)
    rew.reset(equity[0])
    got = np.array([rew.step(a, b) for a, b in zip(equity[:-1], equity[1:], strict=True)])
    assert got[0] == 0.0  # no variance yet
    a = np.zeros(len(r) + 1)
    b = np.zeros(len(r) + 1)
    for t, rt in enumerate(np.diff(np.log(equity))):
        a[t + 1] = a[t] + eta * (rt - a[t])
        b[t + 1] = b[t] + eta * (rt * rt - b[t])
    with np.errstate(invalid="ignore", divide="ignore"):
        sharpe = a / np.sqrt(b - a * a)
    finite_diff = np.diff(sharpe) / eta
    late = slice(3000, None)
    np.testing.assert_allclose(got[late], finite_diff[late], rtol=0.05, atol=0.05)
    assert np.corrcoef(got[late], finite_diff[late])[0, 1] > 0.999


def test_drawdown_penalized_charges_new_drawdown_only():
    got = _rewards("drawdown_penalized", penalty=2.0)
    peak = np.maximum.accumulate(EQUITY)
    dd = 1.0 - EQUITY / peak
    expected = np.diff(np.log(EQUITY)) - 2.0 * np.maximum(np.diff(dd), 0.0)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[1] < math.log(99 / 101)  # a new drawdown costs extra
    assert got[2] == pytest.approx(math.log(99.5 / 99))  # a partial recovery is not penalized


def test_ruin_is_finite_and_unknown_names_are_one_line_errors():
    r = make_reward("log_return")
    r.reset(100.0)
    assert math.isfinite(r.step(100.0, 0.0)) and r.step(100.0, 0.0) < -20
    assert set(REWARDS) == {"log_return", "differential_sharpe", "drawdown_penalized"}
    with pytest.raises(BadInputError, match="unknown reward 'sharpe': use one of") as err:
        make_reward("sharpe")
    assert "\n" not in str(err.value)
    with pytest.raises(BadInputError, match="does not take parameters"):
        make_reward("log_return", eta=0.1)
