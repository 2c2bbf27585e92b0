"""Saved out-of-sample predictions are reused only for the same config, spec content and data.

The config holds only the feature spec's path and the data's date range: editing the spec
file in place, or storing corrected candles for the same range, used to keep the key.
"""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from cryptoai.data.sources.synthetic import synthetic_ohlcv
from cryptoai.modeling.training import TrainConfig
from cryptoai.research import robustness as rb

SPEC_A = "features:\n  - {name: rsi, params: {window: 14}}\n"
SPEC_B = "features:\n  - {name: rsi, params: {window: 10}}\n"


@pytest.fixture
def candles() -> pd.DataFrame:
    return synthetic_ohlcv("BTC/USDT", "1h", "2024-01-01", "2024-01-05")


@pytest.fixture
def preds(candles) -> pd.DataFrame:
    idx = candles.index[50:60]
    return pd.DataFrame({"score": 0.1, "fold": 0}, index=idx)


def _config(tmp_path, candles, spec_text=SPEC_A) -> TrainConfig:
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text)
    data = tmp_path / "candles.parquet"
    candles.to_parquet(data)
    return TrainConfig(
        name="t",
        model={"name": "logreg"},
        features=str(spec),
        data={"file": str(data), "start": "2024-01-01", "end": "2024-01-05"},
    )


def test_editing_the_spec_file_in_place_makes_saved_predictions_stale(tmp_path, candles, preds):
    cfg = _config(tmp_path, candles)
    out = tmp_path / "out"
    rb.save_predictions(preds, cfg, out, candles)
    assert rb.load_predictions(cfg, out, candles) is not None
    (tmp_path / "spec.yaml").write_text(SPEC_B)  # same path, same config object
    assert rb.load_predictions(cfg, out, candles) is None
    (tmp_path / "spec.yaml").write_text(SPEC_A)  # the content is the key, not the file's age
    assert rb.load_predictions(cfg, out, candles) is not None


def test_corrected_candles_in_the_same_range_make_saved_predictions_stale(
    tmp_path, candles, preds, caplog
):
    cfg = _config(tmp_path, candles)
    out = tmp_path / "out"
    rb.save_predictions(preds, cfg, out)  # the candles loaded from the config's file
    assert rb.load_predictions(cfg, out) is not None
    corrected = candles.copy()
    bar = corrected.index[30]
    corrected.loc[bar, ["open", "high", "low", "close"]] *= 1.001  # still a valid candle
    corrected.to_parquet(tmp_path / "candles.parquet")
    with caplog.at_level(logging.WARNING, logger="cryptoai.research.robustness"):
        assert rb.load_predictions(cfg, out) is None
    assert "another data" in caplog.text
    # an explicit frame and the loaded one give the same key
    assert rb.predictions_key(cfg) == rb.predictions_key(cfg, corrected)
    assert rb.predictions_key(cfg, corrected) != rb.predictions_key(cfg, candles)


def test_key_parts_change_one_at_a_time(tmp_path, candles):
    cfg = _config(tmp_path, candles)
    base = rb.prediction_inputs(cfg, candles)
    more = rb.prediction_inputs(cfg, pd.concat([candles, candles.iloc[:0]]))
    assert more == base  # the same content, a new frame object
    (tmp_path / "spec.yaml").write_text(SPEC_B)
    edited = rb.prediction_inputs(cfg, candles)
    assert edited["features"] != base["features"]
    assert (edited["config"], edited["data"]) == (base["config"], base["data"])
    shorter = rb.prediction_inputs(cfg, candles.iloc[:-1])
    assert shorter["data"] != base["data"] and shorter["config"] == base["config"]
