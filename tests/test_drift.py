"""Drift statistics by hand, and ``cryptoai drift`` on the shared registered model: the
training window itself is no drift (exit 0); a window three times as volatile trips the
PSI threshold and the exit code (for cron)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from cryptoai.cli import main
from cryptoai.data.store import RawStore
from cryptoai.serve.drift import bin_edges, hit_rates, ks, psi

pytest_plugins = ("serve_support",)  # the shared registered model


def test_psi_matches_a_hand_computation():
    # two bins split at the reference median 2.5: reference 1/2 | 1/2, current 3/4 | 1/4
    want = (0.75 - 0.5) * math.log(0.75 / 0.5) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert psi([1, 2, 3, 4], [1, 1, 1, 4], bins=2) == pytest.approx(want, rel=1e-12)
    assert want == pytest.approx(0.2746531, abs=1e-7)
    # three bins at 2.5 and 4.5; the current sample leaves the top bin empty (share -> eps)
    ref, cur = [1, 2, 3, 4, 5, 6], [1, 1, 2, 3]
    np.testing.assert_array_equal(bin_edges(ref, 3), [2 + 2 / 3, 4 + 1 / 3])
    third = 1 / 3
    want = (
        (0.75 - third) * math.log(0.75 / third)
        + (0.25 - third) * math.log(0.25 / third)
        + (1e-4 - third) * math.log(1e-4 / third)
    )
    assert psi(ref, cur, edges=[2.5, 4.5]) == pytest.approx(want, rel=1e-12)
    assert psi(ref, ref, bins=3) == 0.0
    # values past the training range land in the end bins; NaN are ignored
    assert psi([1, 2, 3, 4], [-100, 1, 3, np.nan, 100], bins=2) == 0.0


def test_ks_is_scipy_and_the_largest_cdf_gap():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 57), rng.normal(0.4, 1.3, 41)
    stat, pvalue = ks(a, b)
    ref = ks_2samp(a, b)
    assert (stat, pvalue) == (ref.statistic, ref.pvalue)
    grid = np.sort(np.concatenate([a, b]))
    gap = np.abs(
        np.searchsorted(np.sort(a), grid, side="right") / len(a)
        - np.searchsorted(np.sort(b), grid, side="right") / len(b)
    ).max()
    assert stat == pytest.approx(gap, abs=1e-15)


def test_hit_rates_by_hand():
    idx = pd.date_range("2024-01-01", periods=4, freq="1h", tz="UTC")
    candles = pd.DataFrame({"close": [1.0, 2.0, 1.0, 3.0]}, index=idx)
    # calls: up (hit: 1 -> 2), up (miss: 2 -> 1), down (miss: 1 -> 3), last: outcome unknown
    preds = pd.DataFrame({"score": [0.5, 0.5, -0.2, 0.9]}, index=idx)
    hr = hit_rates(preds, candles, horizon=1)
    assert hr["n"] == 3
    assert hr["realized"] == pytest.approx(1 / 3)
    assert hr["expected"] == pytest.approx((0.75 + 0.75 + 0.6) / 3)
    two = hit_rates(preds, candles, horizon=2)  # 1 -> 1 (no move: no hit), 2 -> 3
    assert two["n"] == 2 and two["realized"] == pytest.approx(0.5)


def _volatile(df: pd.DataFrame, factor: float) -> pd.DataFrame:
    """The same path with every log return multiplied by ``factor``."""
    r = np.log(df["close"]).diff().fillna(0.0).to_numpy()
    close = df["close"].iloc[0] * np.exp(np.cumsum(factor * r))
    open_ = np.concatenate([[df["open"].iloc[0]], close[:-1]])
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": df["volume"].to_numpy(),
        },
        index=df.index,
    )


def _drift(store, out, since, until, *extra):
    return main(
        [
            "drift",
            "--model",
            "models:/btc-direction@champion",
            "--since",
            since,
            "--until",
            until,
            "--store",
            str(store),
            "--exchange",
            "binance",
            "--live-dir",
            str(out / "live"),
            "--out",
            str(out),
            *extra,
        ]
    )


@pytest.mark.slow
def test_drift_cli_passes_on_training_data_and_fails_on_a_shifted_window(
    registry, tmp_path, capsys
):
    df = registry.ohlcv[["open", "high", "low", "close", "volume"]]
    store = RawStore(tmp_path / "raw")
    store.write("binance", "BTC/USDT", "1h", df)
    since, until = str(df.index[100]), str(df.index[-1] + pd.Timedelta(hours=1))
    calm = tmp_path / "calm"
    assert _drift(tmp_path / "raw", calm, since, until) == 0
    table = pd.read_csv(calm / "drift.csv")
    assert set(table["name"]) >= {"proba_up", "score"} and not table["breach"].any()
    assert (table["psi"] < 0.1).all()
    report = (calm / "report.md").read_text()
    assert "realized hit rate" in report and "drift_histograms.png" in report
    assert (calm / "drift_histograms.png").stat().st_size > 1000

    shifted = _volatile(df, 3.0)
    shifted.index = df.index + pd.Timedelta(days=60)
    store.write("binance", "BTC/USDT", "1h", shifted)
    s2, u2 = str(shifted.index[100]), str(shifted.index[-1] + pd.Timedelta(hours=1))
    capsys.readouterr()
    wild = tmp_path / "wild"
    assert _drift(tmp_path / "raw", wild, s2, u2) == 1
    assert "past thresholds" in capsys.readouterr().err
    doc = json.loads((wild / "drift.json").read_text())
    assert doc["ok"] is False
    vol = next(r for r in doc["table"] if r["name"].startswith("volatility"))
    assert vol["breach"] and vol["psi"] > 1.0 and vol["ks"] > 0.5
    # a looser PSI threshold with a KS threshold alone still catches it
    assert (
        _drift(tmp_path / "raw", tmp_path / "ks", s2, u2, "--psi-max", "100", "--ks-max", "0.5")
        == 1
    )
    assert _drift(tmp_path / "raw", tmp_path / "no", s2, u2, "--psi-max", "100") == 0
