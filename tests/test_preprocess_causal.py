"""The default preprocessing is causal: the output up to bar t does not depend on later bars.

``winsorize_returns`` and ``clip_returns`` used to take their bounds from the whole sample,
and the ``bfill`` gap policy copied the next bar into a gap. The expected bounds here are
recomputed bar by bar with numpy on the returns before each bar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cryptoai.data.preprocess import (
    clip_returns,
    clip_returns_full_sample,
    fill_gaps,
    winsorize_returns,
    winsorize_returns_full_sample,
)
from cryptoai.data.sources.synthetic import synthetic_ohlcv
from cryptoai.data.validate import check_ohlcv
from cryptoai.errors import BadInputError

PRICES = ["open", "high", "low", "close"]
HISTORY = 40


@pytest.fixture(scope="module")
def spiky() -> pd.DataFrame:
    """Synthetic candles with bad prints (a jump that reverts) late in the sample."""
    frame = synthetic_ohlcv("BTC/USDT", "1h", "2024-01-01", "2024-01-26").copy()
    for i, factor in ((150, 1.3), (300, 0.75), (450, 1.5)):  # one bar out of line
        frame.iloc[i, frame.columns.get_indexer(PRICES)] *= factor
    return frame


CAUSAL = {
    "winsorize expanding": lambda f: winsorize_returns(f, 0.01, 0.99, min_periods=HISTORY),
    "winsorize rolling": lambda f: winsorize_returns(f, 0.02, 0.98, window=60, min_periods=HISTORY),
    "clip expanding": lambda f: clip_returns(f, 3.0, min_periods=HISTORY),
    "clip rolling": lambda f: clip_returns(f, 3.0, window=80, min_periods=HISTORY),
    "clip robust expanding": lambda f: clip_returns(f, 4.0, robust=True, min_periods=HISTORY),
    "clip robust rolling": lambda f: clip_returns(
        f, 4.0, robust=True, window=80, min_periods=HISTORY
    ),
}


@pytest.mark.parametrize("name", list(CAUSAL))
def test_truncating_the_future_does_not_change_the_output_up_to_t(spiky, name):
    clip = CAUSAL[name]
    full, touched = clip(spiky)
    assert len(touched) > 0  # something was clipped, so the comparison means something
    for end in (120, 151, 301, 451, 500):
        part, part_touched = clip(spiky.iloc[:end])
        pd.testing.assert_frame_equal(part, full.iloc[:end], check_exact=True, check_freq=False)
        assert list(part_touched) == [t for t in touched if t < spiky.index[end]]
    check_ohlcv(full)


def test_the_full_sample_versions_look_ahead_as_their_names_say(spiky):
    full, _ = winsorize_returns_full_sample(spiky, 0.01, 0.99)
    part, _ = winsorize_returns_full_sample(spiky.iloc[:200], 0.01, 0.99)
    assert not part["close"].equals(full["close"].iloc[:200])
    full, _ = clip_returns_full_sample(spiky, 3.0)
    part, _ = clip_returns_full_sample(spiky.iloc[:200], 3.0)
    assert not part["close"].equals(full["close"].iloc[:200])


def _returns(frame: pd.DataFrame) -> np.ndarray:
    return np.diff(np.log(frame["close"].to_numpy()))  # r[i] is the return of bar i + 1


def _expected_clipped(r: np.ndarray, bounds, window: int | None) -> np.ndarray:
    """Each return clipped to bounds of the returns before it, numpy on the window."""
    out = r.copy()
    for i in range(len(r)):
        history = r[max(0, i - window) if window else 0 : i]
        if len(history) >= HISTORY:
            lo, hi = bounds(history)
            out[i] = min(max(r[i], lo), hi)
    return out


@pytest.mark.parametrize("window", [None, 60])
def test_winsorize_bounds_are_quantiles_of_the_returns_before_each_bar(spiky, window):
    r = _returns(spiky)
    out, touched = winsorize_returns(spiky, 0.02, 0.98, window=window, min_periods=HISTORY)
    want = _expected_clipped(r, lambda h: np.quantile(h, [0.02, 0.98]), window)
    np.testing.assert_allclose(_returns(out), want, rtol=0, atol=1e-12)
    assert list(touched) == list(spiky.index[1:][want != r])


@pytest.mark.parametrize("window", [None, 80])
def test_clip_bounds_are_sigma_bands_of_the_returns_before_each_bar(spiky, window):
    r = _returns(spiky)
    out, _ = clip_returns(spiky, 3.0, window=window, min_periods=HISTORY)

    def band(h):
        return h.mean() - 3.0 * h.std(ddof=1), h.mean() + 3.0 * h.std(ddof=1)

    np.testing.assert_allclose(_returns(out), _expected_clipped(r, band, window), atol=1e-12)


@pytest.mark.parametrize("window", [None, 80])
def test_robust_clip_bounds_are_median_mad_bands_of_the_returns_before_each_bar(spiky, window):
    r = _returns(spiky)
    out, touched = clip_returns(spiky, 4.0, robust=True, window=window, min_periods=HISTORY)

    def band(h):
        med = np.median(h)
        mad = 1.4826 * np.median(np.abs(h - med))
        return med - 4.0 * mad, med + 4.0 * mad

    want = _expected_clipped(r, band, window)
    np.testing.assert_allclose(_returns(out), want, atol=1e-12)
    assert {spiky.index[i] for i in (150, 300, 450)} <= set(touched)  # the bad prints


def test_short_history_is_left_alone_and_bad_arguments_are_errors(spiky):
    head = spiky.iloc[:HISTORY]  # fewer than HISTORY earlier returns at every bar
    out, touched = winsorize_returns(head, 0.1, 0.9, min_periods=HISTORY)
    assert len(touched) == 0
    pd.testing.assert_frame_equal(out, head)
    with pytest.raises(BadInputError, match="window"):
        clip_returns(spiky, window=1)
    with pytest.raises(BadInputError, match="min_periods"):
        winsorize_returns(spiky, min_periods=0)


# ------------------------------------------------------------------------------- gap fills
def _gappy() -> pd.DataFrame:
    frame = synthetic_ohlcv("ETH/USDT", "1h", "2024-02-01", "2024-02-03")
    return frame.drop(frame.index[[5, 6, 7, 20]])


def test_bfill_gap_policy_is_refused_with_its_reason():
    with pytest.raises(BadInputError, match="looks ahead"):
        fill_gaps(_gappy(), "1h", "bfill")


@pytest.mark.parametrize("policy", ["none", "ffill", "flat"])
def test_causal_gap_policies_ignore_a_change_to_the_next_bar(policy):
    frame = _gappy()
    after_gap = frame.index[5]  # the first bar after the 3-bar gap
    changed = frame.copy()
    changed.loc[after_gap, PRICES] *= 1.1
    a = fill_gaps(frame, "1h", policy)
    b = fill_gaps(changed, "1h", policy)
    pd.testing.assert_frame_equal(a[a.index < after_gap], b[b.index < after_gap])


def test_the_lookahead_fill_is_named_for_what_it_does():
    frame = _gappy()
    after_gap = frame.index[5]
    changed = frame.copy()
    changed.loc[after_gap, PRICES] *= 1.1
    a = fill_gaps(frame, "1h", "bfill_lookahead")
    b = fill_gaps(changed, "1h", "bfill_lookahead")
    gap = a.index[a["filled"] & (a.index < after_gap)]
    assert len(gap) == 3
    assert (b.loc[gap, "close"] == changed.loc[after_gap, "close"]).all()  # the next bar
