"""``cryptoai.predict`` on raw candles: equal to the final refit in sample, NaN in the warm-up,
one-line errors, cached by resolved version, and no torch for a tabular model."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from serve_support import REPO, WARMUP

import cryptoai
from cryptoai.errors import BadInputError, DataValidationError


def test_predict_equals_final_refit_in_sample(registry):
    df = registry.ohlcv
    out = cryptoai.predict(df, model=registry.uri)
    assert list(out.columns) == ["proba_up", "score"]
    assert out.index.equals(df.index)
    # independent of the serving code: the refit's own predict_proba on build_features
    X = cryptoai.build_features(df, REPO / "configs" / "features" / "minimal.yaml")
    model = registry.result.model
    up = list(model.classes_).index(1.0)
    expected = model.predict_proba(X)[:, up]
    assert np.isnan(out["proba_up"].to_numpy()[:WARMUP]).all()
    assert np.isfinite(out["proba_up"].to_numpy()[WARMUP:]).all()
    assert np.array_equal(out["proba_up"].to_numpy()[WARMUP:], expected[WARMUP:])
    np.testing.assert_array_equal(out["score"].to_numpy(), 2 * out["proba_up"].to_numpy() - 1)
    assert out["score"].dropna().between(-1, 1).all()
    assert out.attrs["label"] == "proba_up"
    assert out.attrs["model"] == {"name": "btc-direction", "version": 1, "alias": "champion"}


def test_predict_on_a_later_window_converges_to_the_full_history(registry):
    """Rolling features need only the warm-up; smoothed ones (RSI's Wilder average) remember
    more, so a window gives the full history's predictions once it is long enough."""
    df = registry.ohlcv
    full = cryptoai.predict(df, model=registry.uri)
    short = cryptoai.predict(df.iloc[-(WARMUP + 5) :], model=registry.uri)
    assert short["proba_up"].isna().sum() == WARMUP
    assert np.isfinite(short["proba_up"].iloc[-5:]).all()
    long = cryptoai.predict(df.iloc[-300:], model=registry.uri)
    np.testing.assert_allclose(long["proba_up"].iloc[-5:], full["proba_up"].iloc[-5:], atol=1e-6)


def test_too_few_bars_and_broken_candles_are_one_line_errors(registry):
    df = registry.ohlcv
    with pytest.raises(BadInputError, match=r"20 bars.*needs at least 21") as info:
        cryptoai.predict(df.iloc[:WARMUP], model=registry.uri)
    assert "\n" not in str(info.value)
    cryptoai.predict(df.iloc[: WARMUP + 1], model=registry.uri)  # exactly enough
    shuffled = df.iloc[:50].iloc[::-1]
    with pytest.raises(DataValidationError, match="candles"):
        cryptoai.predict(shuffled, model=registry.uri)
    bad = df.iloc[:50].copy()
    bad.iloc[30, bad.columns.get_loc("close")] = np.nan
    with pytest.raises(DataValidationError):
        cryptoai.predict(bad, model=registry.uri)
    with pytest.raises(BadInputError, match="models:/NAME@ALIAS"):
        cryptoai.predict(df, model="btc-direction")
    with pytest.raises(BadInputError, match="cannot resolve"):
        cryptoai.predict(df, model="models:/btc-direction@nobody")


def test_models_are_cached_by_resolved_version(registry):
    from cryptoai.serve.runtime import load_predictor
    from cryptoai.tracking.registry import promote

    first = load_predictor(registry.uri)
    assert load_predictor(registry.uri).estimator is first.estimator  # not loaded again
    assert load_predictor("models:/btc-direction/1").estimator is first.estimator
    promote("btc-direction", 2, "champion")
    moved = load_predictor(registry.uri)  # the alias is re-read: version 2 now
    assert (moved.version, moved.alias) == (2, "champion")
    assert moved.estimator is not first.estimator
    out = cryptoai.predict(registry.ohlcv, model=registry.uri)
    assert out.attrs["model"]["version"] == 2


_NO_TORCH = """
import json, os, sys
import pandas as pd
import cryptoai

pytest_plugins = ("serve_support",)  # the shared registered model
heavy_at_import = sorted(m for m in ("mlflow", "torch", "fastapi", "sklearn") if m in sys.modules)
df = pd.read_parquet(sys.argv[1])
out = cryptoai.predict(df, model=sys.argv[2])
print(json.dumps({"import": heavy_at_import, "torch": "torch" in sys.modules,
                  "lightning": "lightning" in sys.modules,
                  "n": int(out["proba_up"].notna().sum())}))
"""


@pytest.mark.slow
def test_a_tabular_model_never_imports_torch(registry, tmp_path):
    path = tmp_path / "candles.parquet"
    registry.ohlcv.to_parquet(path)
    env = {**__import__("os").environ, "MLFLOW_TRACKING_URI": registry.tracking_uri}
    done = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, str(path), registry.uri],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {
        "import": [],
        "torch": False,
        "lightning": False,
        "n": len(registry.ohlcv) - WARMUP,
    }
