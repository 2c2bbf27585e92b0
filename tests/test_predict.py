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

pytest_plugins = ("serve_support",)  # the shared registered model


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


# --------------------------------------------------------------------- the per-model plan
# Every built-in feature, with a prefix and a column subset, so the plan's column mapping is
# exercised beyond minimal.yaml; taker_imbalance needs the taker-buy column.
ALL_FEATURES = [
    {"name": "sma", "params": {"window": 10, "relative": True}},
    {"name": "ema", "params": {"window": 12}},
    {"name": "rsi", "params": {"window": 14}},
    {"name": "macd", "params": {"relative": True}},
    {"name": "bollinger", "columns": ["bb_pband_20_2", "bb_wband_20_2"], "prefix": "d_"},
    {"name": "atr", "params": {"relative": True}},
    {"name": "ichimoku", "params": {"relative": True}},
    {"name": "obv"},
    {"name": "returns", "params": {"period": 3}},
    {"name": "log_returns"},
    {"name": "volatility", "params": {"window": 10}},
    {"name": "momentum"},
    {"name": "volume_zscore"},
    {"name": "amihud"},
    {"name": "taker_imbalance"},
]


def _fitted(model_name: str, task: str, spec, df, **params):
    """A model fitted on ``spec``'s features of ``df`` with the columns shuffled, so the
    model's column order is not the spec's."""
    from cryptoai.features.engineering import build_features
    from cryptoai.modeling.models.registry import make_model

    X = build_features(df, spec)
    X = X[list(np.random.default_rng(0).permutation(X.columns))]
    ret = np.log(df["close"]).diff().shift(-1).to_numpy()
    y = ret if task == "regression" else np.where(np.isnan(ret), np.nan, (ret > 0) * 1.0)
    return make_model(model_name, task, **params).fit(X, y)


@pytest.mark.parametrize(
    ("model_name", "task"), [("logreg", "classification"), ("ridge", "regression")]
)
def test_the_plan_gives_the_models_own_numbers_bit_for_bit(model_name, task):
    from helpers import ohlcv_frame

    from cryptoai.features.engineering import build_features
    from cryptoai.features.spec import FeatureSpec
    from cryptoai.serve._plan import Plan

    spec = FeatureSpec.model_validate({"features": ALL_FEATURES})
    df = ohlcv_frame(1500, seed=4, extra=True)
    model = _fitted(model_name, task, spec, df.iloc[:1000])
    plan = Plan.for_model(model, spec)
    assert plan is not None and plan.kind == ("proba" if task == "classification" else "predict")
    for start in (1000, 1001, 1250, 1499 - 80):
        window = df.iloc[start : start + 80]
        X = build_features(window, spec)
        expected = model.predict_proba(X) if plan.kind == "proba" else model.predict(X)
        got = plan.predict(window)
        assert got.shape == expected.shape
        assert np.isnan(got[:5]).all()  # the warm-up rows stay NaN
        assert np.array_equal(got, expected, equal_nan=True)


def test_no_plan_where_the_model_predicts_its_own_way_or_the_data_lacks_a_column():
    from helpers import ohlcv_frame

    from cryptoai.errors import BadInputError
    from cryptoai.features.spec import FeatureSpec
    from cryptoai.serve._plan import Plan
    from cryptoai.serve.runtime import Predictor

    spec = FeatureSpec.model_validate({"features": ALL_FEATURES})
    df = ohlcv_frame(600, seed=5, extra=True)
    forest = _fitted("random_forest", "classification", spec, df, n_estimators=5)
    assert Plan.for_model(forest, spec) is None  # forests average their trees themselves
    narrower = FeatureSpec.model_validate({"features": ALL_FEATURES[:3]})
    logreg = _fitted("logreg", "classification", spec, df)
    assert Plan.for_model(logreg, narrower) is None  # the model reads columns it lacks

    plan = Plan.for_model(logreg, spec)
    assert plan.predict(df[["open", "high", "low", "close", "volume"]]) is None
    card = {"feature_spec": spec.model_dump(), "outputs": ["proba_up", "score"],
            "label": "proba_up", "warmup_bars": 60, "task": "classification"}  # fmt: skip
    p = Predictor("m", 1, None, logreg, card)
    with pytest.raises(BadInputError, match="taker_buy_base"):  # the general path's error
        p.predict(df[["open", "high", "low", "close", "volume"]])
    general = Predictor("m", 1, None, logreg, card, _plan=False)
    assert general.plan is None
    mislabelled = Predictor("m", 1, None, logreg, {**card, "task": "regression"})
    assert p.plan is not None and mislabelled.plan is None  # the card's task decides
    pd_out, general_out = p.predict(df), general.predict(df)
    assert np.array_equal(pd_out.to_numpy(), general_out.to_numpy(), equal_nan=True)


def test_predict_uses_the_plan_and_matches_the_general_path(registry):
    from cryptoai.serve.runtime import Predictor, load_predictor

    p = load_predictor(registry.uri)
    assert p.plan is not None
    general = Predictor(p.name, p.version, p.alias, p.estimator, p.card, _plan=False)
    for start in (0, 100, len(registry.ohlcv) - 200):
        df = registry.ohlcv.iloc[start : start + 200]
        fast, slow = p.predict(df), general.predict(df)
        assert fast.index.equals(slow.index) and list(fast.columns) == list(slow.columns)
        assert np.array_equal(fast.to_numpy(), slow.to_numpy(), equal_nan=True)
