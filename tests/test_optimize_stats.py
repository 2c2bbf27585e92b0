"""The luck statistics against the papers' worked examples and independent computations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from cryptoai.errors import BadInputError
from cryptoai.optimize import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
)


def test_deflated_sharpe_matches_the_papers_worked_example():
    # Bailey & Lopez de Prado (2014), section 4: annualized SR 2.5 over 1,250 daily returns,
    # 100 trials whose annualized Sharpe ratios have variance 0.5, skew -3, kurtosis 10:
    # DSR ~ 0.90. Per-period inputs: SR / sqrt(250), variance / 250.
    dsr = deflated_sharpe_ratio(
        sharpe=2.5 / math.sqrt(250),
        n_trials=100,
        sharpe_variance=0.5 / 250,
        n_obs=1250,
        skew=-3.0,
        kurtosis=10.0,
    )
    assert dsr == pytest.approx(0.90, abs=0.005)


def test_expected_max_sharpe_is_close_to_a_simulated_maximum():
    rng = np.random.default_rng(0)
    n, var = 100, 0.04
    simulated = rng.normal(0.0, math.sqrt(var), size=(20_000, n)).max(axis=1).mean()
    # The extreme-value approximation is a few percent above the exact mean for N = 100.
    assert expected_max_sharpe(n, var) == pytest.approx(simulated, rel=0.05)
    assert expected_max_sharpe(1, var) == 0.0


def test_more_trials_deflate_more():
    kwargs = dict(sharpe=0.1, sharpe_variance=0.001, n_obs=1000)
    few, many = (deflated_sharpe_ratio(n_trials=n, **kwargs) for n in (2, 1000))
    assert many < few


def test_probabilistic_sharpe_for_normal_returns_by_hand():
    # Normal returns: z = SR * sqrt(n - 1) / sqrt(1 + SR^2 / 2).
    sr, n = 0.05, 500
    z = sr * math.sqrt(n - 1) / math.sqrt(1 + sr**2 / 2)
    expected = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    assert probabilistic_sharpe_ratio(sr, n) == pytest.approx(expected, rel=1e-12)


def _pbo_by_loops(returns: np.ndarray, n_splits: int) -> float:
    """Straight from the paper's recipe, one split at a time (slow, obvious)."""
    t, n = returns.shape
    size = t // n_splits
    blocks = [returns[i * size : (i + 1) * size] for i in range(n_splits)]
    below = []
    for ins in itertools.combinations(range(n_splits), n_splits // 2):
        a = np.vstack([blocks[i] for i in ins])
        b = np.vstack([blocks[i] for i in range(n_splits) if i not in ins])
        sr_a = a.mean(0) / a.std(0, ddof=1)
        sr_b = b.mean(0) / b.std(0, ddof=1)
        star = int(np.argmax(sr_a))
        rank = 1 + sum(sr_b[j] < sr_b[star] for j in range(n))
        w = rank / (n + 1)
        below.append(math.log(w / (1 - w)) <= 0)
    return sum(below) / len(below)


def test_pbo_equals_the_papers_recipe_computed_split_by_split():
    rng = np.random.default_rng(7)
    returns = rng.normal(0.0, 0.01, size=(403, 12)) + rng.normal(0, 0.0005, size=12)
    assert probability_of_backtest_overfitting(returns, n_splits=8) == pytest.approx(
        _pbo_by_loops(returns, 8)
    )


def test_pbo_is_one_when_the_in_sample_winner_always_loses_out_of_sample():
    # Two trials, two blocks: A earns in block 0 and loses in block 1; B the mirror.
    up = np.array([0.02, 0.01, 0.03])
    down = -up
    a = np.concatenate([up, down])
    b = np.concatenate([down, up])
    assert probability_of_backtest_overfitting(np.column_stack([a, b]), n_splits=2) == 1.0


def test_pbo_is_zero_for_a_trial_that_wins_everywhere():
    rng = np.random.default_rng(3)
    skilled = rng.normal(0.0, 0.01, size=(1600, 20))
    skilled[:, 0] += 0.01  # one trial with a true edge much larger than the noise
    assert probability_of_backtest_overfitting(skilled, n_splits=16) == 0.0


def test_pbo_of_pure_noise_is_one_half_on_average():
    # Without skill the out-of-sample rank of the in-sample winner is uniform over 1..N, so
    # P(rank <= N / 2) = 1/2 for even N; one data set's PBO scatters widely, the mean does not.
    values = [
        probability_of_backtest_overfitting(
            np.random.default_rng(seed).normal(0.0, 0.01, size=(400, 10)), n_splits=8
        )
        for seed in range(60)
    ]
    assert np.mean(values) == pytest.approx(0.5, abs=0.08)


@pytest.mark.parametrize(
    ("shape", "splits", "match"),
    [((100,), 4, "2-D"), ((100, 1), 4, "two trials"), ((100, 3), 3, "even"), ((10, 3), 16, "few")],
)
def test_pbo_refuses_bad_input(shape, splits, match):
    with pytest.raises(BadInputError, match=match):
        probability_of_backtest_overfitting(np.zeros(shape), n_splits=splits)
