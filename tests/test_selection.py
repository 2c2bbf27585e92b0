"""Feature selection: correlation pruning by hand, importance pruning reproducible and sane."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from cryptoai.errors import BadInputError
from cryptoai.features.selection import correlation_prune, importance_prune


def frame(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    other = rng.normal(size=n)
    x = pd.DataFrame(
        {
            "noise_a": rng.normal(size=n),
            "signal": signal,
            "noise_b": rng.normal(size=n),
            "weak": other,
            "noise_c": rng.normal(size=n),
        }
    )
    y = pd.Series((signal + 0.3 * other + 0.2 * rng.normal(size=n) > 0).astype(float))
    return x, y


def test_correlation_prune_drops_the_later_of_a_perfect_pair():
    x, _ = frame()
    x.insert(2, "signal_x2", 2 * x["signal"] + 1)  # perfectly correlated, later column
    x["anti_weak"] = -x["weak"]  # perfect negative correlation counts too
    assert correlation_prune(x, 0.95) == ["noise_a", "signal", "noise_b", "weak", "noise_c"]
    # priority follows column order: put the copy first and it is kept instead
    swapped = x[["signal_x2", *[c for c in x.columns if c != "signal_x2"]]]
    kept = correlation_prune(swapped, 0.95)
    assert kept[0] == "signal_x2" and "signal" not in kept


def test_correlation_prune_threshold_and_constant_columns():
    rng = np.random.default_rng(1)
    a = rng.normal(size=500)
    x = pd.DataFrame({"a": a, "b": a + 0.5 * rng.normal(size=500), "flat": 1.0})
    corr_ab = np.corrcoef(x["a"], x["b"])[0, 1]  # about 0.89
    assert correlation_prune(x, corr_ab - 0.01) == ["a", "flat"]
    assert correlation_prune(x, corr_ab + 0.01) == ["a", "b", "flat"]
    with pytest.raises(BadInputError, match="threshold"):
        correlation_prune(x, 1.5)


def test_correlation_prune_uses_pairwise_complete_rows():
    x, _ = frame()
    x["signal_copy"] = x["signal"]
    x.loc[:50, "signal_copy"] = np.nan  # warm-up NaNs do not hide the duplicate
    assert "signal_copy" not in correlation_prune(x)


def test_importance_prune_is_reproducible_and_finds_the_signal():
    x, y = frame()
    first = importance_prune(x, y, keep=2, seed=7)
    assert first == importance_prune(x, y, keep=2, seed=7)
    assert first == ["signal", "weak"]  # most important first
    assert len(importance_prune(x, y, keep=0.4, seed=7)) == 2  # ceil(0.4 * 5)
    assert importance_prune(x, y, keep=10, seed=7)[0] == "signal"


def test_importance_prune_skips_rows_with_nan_and_handles_regression():
    x, y = frame()
    x.iloc[:20, 0] = np.nan
    y.iloc[-5:] = np.nan
    returns = pd.Series(x["signal"] * 0.01 + np.random.default_rng(3).normal(0, 0.002, len(x)))
    assert importance_prune(x, y, keep=1, seed=1) == ["signal"]
    assert importance_prune(x, returns, keep=1, seed=1) == ["signal"]


def test_importance_prune_with_given_estimators():
    x, y = frame()
    linear = importance_prune(x, y, estimator=LogisticRegression(), keep=2, seed=0)
    assert linear == ["signal", "weak"]
    permuted = importance_prune(x, y, estimator=KNeighborsClassifier(15), keep=1, seed=0)
    assert permuted == ["signal"]
    assert permuted == importance_prune(x, y, estimator=KNeighborsClassifier(15), keep=1, seed=0)


@pytest.mark.parametrize("keep", [0, 0.0, 1.5, True, "3"])
def test_importance_prune_rejects_bad_keep(keep):
    x, y = frame(50)
    with pytest.raises(BadInputError, match="keep"):
        importance_prune(x, y, keep=keep, seed=0)


def test_importance_prune_needs_usable_rows():
    x, y = frame(50)
    with pytest.raises(BadInputError, match="rows"):
        importance_prune(x, y * np.nan, keep=1, seed=0)
