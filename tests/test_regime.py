"""The regime target: classes computed here bar by bar from the definition, trained with a
tabular model, and predicted as a class with one probability per class."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cryptoai.modeling.labels import REGIMES, TargetConfig, make_target, regime
from cryptoai.serve.runtime import _regime_columns
from cryptoai.tracking.registry import REGIME_OUTPUTS, model_card


def _by_hand(close: list[float], h: int, w: int, trend: float, vol: float) -> list[float]:
    r = [math.nan] + [math.log(b / a) for a, b in zip(close, close[1:], strict=False)]
    out = []
    for t in range(len(close)):
        past = r[t - w + 1 : t + 1] if t - w + 1 >= 1 else []
        if len(past) < w or t + h >= len(close):
            out.append(math.nan)
            continue
        sigma = float(np.std(past, ddof=1))
        future = r[t + 1 : t + h + 1]
        fvol = abs(future[0]) if h == 1 else float(np.std(future, ddof=1))
        move = math.log(close[t + h] / close[t])
        band = trend * sigma * math.sqrt(h)
        out.append(
            2.0 if fvol > vol * sigma else 1.0 if move > band else -1.0 if move < -band else 0.0
        )
    return out


@pytest.mark.parametrize("h", [1, 3])
def test_regime_labels_follow_the_definition(h):
    rng = np.random.default_rng(4)
    close = list(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 80) * rng.choice([1, 3], 80))))
    idx = pd.date_range("2024-01-01", periods=80, freq="1h", tz="UTC")
    got = regime(pd.Series(close, index=idx), h, vol_window=5, trend_mult=0.8, vol_mult=1.4)
    want = _by_hand(close, h, 5, 0.8, 1.4)
    np.testing.assert_array_equal(got.to_numpy(), np.array(want))
    assert set(np.unique(got.dropna())) <= set(REGIMES)
    assert len(set(got.dropna())) >= 3  # the sample shows several regimes
    frame = pd.DataFrame({"close": close}, index=idx)
    via_config = make_target(frame, kind="regime", horizon=h, vol_window=5, trend_mult=0.8,
                             vol_mult=1.4)  # fmt: skip
    pd.testing.assert_series_equal(via_config, got)


def test_a_regime_model_predicts_a_class_and_a_probability_per_class():
    proba = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [np.nan, np.nan, np.nan]])
    classes = [-1.0, 0.0, 1.0]  # no high-volatility bar in training
    score = proba[:, 2] - proba[:, 0]
    out = _regime_columns(proba, classes, score)
    np.testing.assert_array_equal(out[:2, 0], [0.0, -1.0])  # argmax classes
    np.testing.assert_allclose(out[0, 1:5], [0.1, 0.6, 0.3, 0.0])
    assert np.isnan(out[2]).all()
    card = model_card(
        feature_spec={"features": [{"name": "rsi"}]},
        target=TargetConfig(kind="regime", horizon=4),
        task="classification",
        warmup_bars=14,
    )
    assert card["label"] == "regime" and card["outputs"] == REGIME_OUTPUTS


def test_every_tabular_model_trains_on_the_regime_target(tmp_path):
    from cryptoai.modeling.training import train

    for name in ("logreg", "random_forest", "xgboost"):
        cfg = {
            "name": f"regime-{name}",
            "data": {
                "source": "synthetic",
                "symbol": "BTC/USDT",
                "timeframe": "1h",
                "start": "2024-01-01",
                "end": "2024-02-15",
                "store_root": str(tmp_path / "raw"),
            },
            "features": "configs/features/minimal.yaml",
            "target": {"kind": "regime", "horizon": 4},
            "model": {"name": name, "params": {}},
            "validation": {"n_splits": 2, "test_size": 200},
            "output_dir": str(tmp_path / "runs"),
        }
        result = train(cfg, tracking=False, progress=False)
        assert set(result.predictions["y_true"].dropna().unique()) <= set(REGIMES)
        assert 0.0 <= result.aggregate["balanced_accuracy"] <= 1.0
        proba = result.predictions.filter(like="proba_")
        np.testing.assert_allclose(proba.dropna().sum(axis=1), 1.0, rtol=1e-6)  # float32 in xgboost


@pytest.mark.slow
def test_a_registered_regime_model_predicts_classes_and_probabilities(tmp_path, capsys):
    import yaml

    import cryptoai
    from cryptoai.cli import main
    from cryptoai.data.store import RawStore

    cfg = {
        "name": "regime-serve",
        "data": {
            "source": "synthetic",
            "symbol": "BTC/USDT",
            "timeframe": "1h",
            "start": "2024-01-01",
            "end": "2024-02-15",
            "store_root": str(tmp_path / "raw"),
        },
        "features": "configs/features/minimal.yaml",
        "target": {"kind": "regime", "horizon": 4},
        "model": {"name": "logreg", "params": {"C": 0.5}},
        "validation": {"n_splits": 2, "test_size": 200},
        "output_dir": str(tmp_path / "runs"),
    }
    path = tmp_path / "regime.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(path), "--no-progress", "--register", "regime"]) == 0
    capsys.readouterr()
    bars = RawStore(tmp_path / "raw").load("synthetic", "BTC/USDT", "1h")
    out = cryptoai.predict(bars.iloc[-300:], model="models:/regime/1")
    assert list(out.columns) == REGIME_OUTPUTS and out.attrs["label"] == "regime"
    known = out.dropna()
    assert len(known) > 200
    probs = known[["proba_down", "proba_range", "proba_up", "proba_high_vol"]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-9)
    names = np.array(list(REGIMES))  # -1, 0, 1, 2 in the column order above
    np.testing.assert_array_equal(known["regime"].to_numpy(), names[probs.argmax(axis=1)])
    np.testing.assert_allclose(known["score"], known["proba_up"] - known["proba_down"])
