"""Config-driven training end to end: synthetic data, walk-forward folds, baseline, MLflow."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from cryptoai.config import load_config, validate_config
from cryptoai.errors import ConfigError
from cryptoai.fingerprint import frame_fingerprint
from cryptoai.modeling.splits import walk_forward_splits
from cryptoai.modeling.training import (
    TrainConfig,
    build_dataset,
    build_model,
    fit_final_model,
    load_training_data,
    smoke_config,
    train,
)

REPO = Path(__file__).resolve().parents[1]
MINIMAL_SPEC = str(REPO / "configs" / "features" / "minimal.yaml")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("raw")


@pytest.fixture
def make_cfg(store, tmp_path):
    def make(**over) -> TrainConfig:
        cfg = {
            "name": "t-logreg",
            "data": {
                "source": "synthetic",
                "symbol": "BTC/USDT",
                "timeframe": "1h",
                "start": "2023-03-01",
                "end": "2023-03-21",
                "store_root": str(store),
            },
            "features": MINIMAL_SPEC,
            "target": {"kind": "direction", "horizon": 2},
            "model": {"name": "logreg"},
            "validation": {"n_splits": 3, "test_size": 80},
            "seed": 1,
            "output_dir": str(tmp_path / "runs"),
            "tracking": {"experiment": "test-train"},
        }
        for key, value in over.items():
            if isinstance(value, dict) and isinstance(cfg.get(key), dict):
                cfg[key] = {**cfg[key], **value}
            else:
                cfg[key] = value
        return TrainConfig.model_validate(cfg)

    return make


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        (np.isnan(a[k]) and np.isnan(b[k])) or a[k] == b[k] for k in a
    )


def test_train_end_to_end_tracked_in_mlflow(make_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    cfg = make_cfg(tracking={"experiment": "test-train", "template": {"owner": "tester"}})
    res = train(cfg, progress=False)

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run = client.get_run(res.run_id)
    assert run.info.status == "FINISHED"
    m = run.data.metrics
    assert m["accuracy"] == pytest.approx(res.aggregate["accuracy"])
    assert m["roc_auc_mean"] == pytest.approx(res.aggregate["roc_auc_mean"])
    assert m["fold1.log_loss"] == pytest.approx(res.per_fold[1]["log_loss"])
    assert m["baseline.accuracy"] == pytest.approx(res.baseline_aggregate["accuracy"])
    assert run.data.params["config.model.name"] == "logreg"
    assert run.data.tags["template.owner"] == "tester"
    ohlcv = load_training_data(cfg.data)
    assert run.data.tags["data.fingerprint"] == frame_fingerprint(ohlcv) == res.data_fingerprint

    artifacts = {a.path for a in client.list_artifacts(res.run_id)}
    assert {"predictions", "plots", "config.yaml", "summary.txt"} <= artifacts
    plots = {a.path for a in client.list_artifacts(res.run_id, "plots")}
    assert {"plots/confusion_matrix.png", "plots/calibration.png"} <= plots
    assert "plots/feature_importance.png" in plots
    local = mlflow.artifacts.download_artifacts(
        run_id=res.run_id, artifact_path="predictions/oos.parquet", dst_path=str(tmp_path / "dl")
    )
    pd.testing.assert_frame_equal(pd.read_parquet(local), res.predictions, check_freq=False)
    # the final model, fitted on every labelled bar, comes back from MLflow unchanged
    assert run.data.tags["model.uri"] == res.model_uri
    X, _, _ = build_dataset(ohlcv, cfg)
    served = mlflow.pyfunc.load_model(res.model_uri).predict(X)
    np.testing.assert_allclose(np.asarray(served), res.model.predict_proba(X))
    # logged with a signature: the feature columns it was fitted on
    info = mlflow.models.get_model_info(res.model_uri)
    assert info.signature.inputs.input_names() == list(X.columns)
    # the experiment runner's refit is this same final model
    refit, example = fit_final_model(cfg, work_dir=tmp_path / "final")
    np.testing.assert_allclose(refit.predict_proba(X), res.model.predict_proba(X))
    pd.testing.assert_frame_equal(example, X.tail(len(example)))


def test_oos_covers_exactly_the_test_bars_and_baseline_is_train_majority(make_cfg):
    cfg = make_cfg(validation={"n_splits": 3, "test_size": 80, "embargo": 5})
    res = train(cfg, tracking=False, progress=False)
    X, y, forward = build_dataset(load_training_data(cfg.data), cfg)
    splits = walk_forward_splits(len(X), n_splits=3, test_size=80, purge=2, embargo=5)
    tests = np.concatenate([te for _, te in splits])
    assert res.predictions.index.equals(X.index[tests])
    assert res.predictions.index.is_unique
    assert res.signal.index.equals(res.predictions.index)
    # purge: the last training bar ends more than the horizon before each test block
    gap = (res.folds["test_start"] - res.folds["train_end"]) / pd.Timedelta("1h")
    assert (gap > 2).all()
    for k, (tr, te) in enumerate(splits):
        majority = float(y.iloc[tr].mean() > 0.5)
        block = res.baseline_predictions[res.baseline_predictions["fold"] == k]
        assert block.index.equals(X.index[te])
        assert (block["pred"] == majority).all()
        assert res.folds.loc[k, "n_train"] == len(tr)
    hits = np.sign(res.predictions["score"]) == np.sign(forward.loc[res.predictions.index])
    assert res.aggregate["hit_rate_pooled"] == pytest.approx(hits.mean())


def test_same_seed_same_metrics_other_seed_differs(make_cfg):
    cfg = make_cfg(model={"name": "random_forest", "params": {"n_estimators": 15}})
    a = train(cfg, tracking=False, progress=False)
    b = train(cfg, tracking=False, progress=False)
    c = train(cfg.model_copy(update={"seed": 2}), tracking=False, progress=False)
    assert _same(a.aggregate, b.aggregate)
    pd.testing.assert_frame_equal(a.predictions, b.predictions)
    assert not a.predictions["proba_1"].equals(c.predictions["proba_1"])


def test_deep_model_in_smoke_mode_is_deterministic(make_cfg):
    cfg = make_cfg(
        model={
            "name": "gru",
            "params": {"window": 16, "hidden_size": 32, "max_epochs": 5},
            "smoke_params": {"window": 4, "hidden_size": 4, "max_epochs": 1, "batch_size": 32},
        },
        fit_final=False,
    )
    a = train(cfg, tracking=False, smoke=True, progress=False)
    b = train(cfg, tracking=False, smoke=True, progress=False)
    assert a.config.model.params["hidden_size"] == 4 and len(a.per_fold) == 2
    assert _same(a.aggregate, b.aggregate)
    pd.testing.assert_frame_equal(a.predictions, b.predictions)
    # the first test bars have full windows thanks to the context rows before them
    assert a.predictions["proba_1"].notna().all()
    assert (Path(cfg.output_dir) / cfg.name).is_dir()  # per-fold checkpoints


def test_regression_target_against_zero_forecast(make_cfg):
    cfg = make_cfg(target={"kind": "forward_return", "horizon": 3}, model={"name": "ridge"})
    res = train(cfg, tracking=False, progress=False)
    assert res.task == "regression"
    y = res.baseline_predictions["y_true"]
    assert res.baseline_aggregate["mse_pooled"] == pytest.approx(np.mean(y**2))
    assert res.baseline_aggregate["mae_pooled"] == pytest.approx(np.mean(np.abs(y)))
    assert np.isnan(res.baseline_aggregate["ic"])
    err = res.predictions["pred"] - res.predictions["y_true"]
    assert res.aggregate["mse_pooled"] == pytest.approx(np.mean(err**2))
    assert set(res.summary().index) == {"mse", "mae", "ic", "hit_rate"}


def test_triple_barrier_three_classes(make_cfg):
    cfg = make_cfg(
        target={"kind": "triple_barrier", "horizon": 6, "pt_mult": 1.0, "sl_mult": 1.0},
        model={"name": "xgboost", "params": {"n_estimators": 10}},
    )
    res = train(cfg, tracking=False, progress=False)
    assert {"proba_-1", "proba_0", "proba_1"} <= set(res.predictions.columns)
    probs = res.predictions[["proba_-1", "proba_0", "proba_1"]].sum(axis=1)
    np.testing.assert_allclose(probs, 1.0, rtol=1e-6)
    assert np.isfinite(res.aggregate["log_loss"]) and np.isfinite(res.aggregate["ic"])


def test_bad_configs_fail_before_training(make_cfg):
    with pytest.raises(ConfigError, match="purge"):
        train(make_cfg(validation={"purge": 1}), tracking=False)
    with pytest.raises(ConfigError, match="field 'model': unknown model"):
        train(make_cfg(model={"name": "svm"}), tracking=False)
    with pytest.raises(ConfigError, match="'validation'.*train_size"):
        validate_config(
            {"name": "x", "model": {"name": "logreg"}, "validation": {"scheme": "rolling"}},
            TrainConfig,
        )
    with pytest.raises(ConfigError, match="model.parms"):
        validate_config({"name": "x", "model": {"name": "logreg", "parms": {}}}, TrainConfig)
    with pytest.raises(ConfigError, match="features spec"):
        train(make_cfg(features="nope/none.yaml"), tracking=False)


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"model": {"name": "svm"}}, "model", "unknown model"),
        ({"model": {"name": "logreg", "params": {"depth": 2}}}, "model", "unknown parameter"),
        ({"model": {"name": "logreg", "smoke_params": {"depth": 2}}}, "model", "unknown param"),
        ({"features": "nope/none.yaml"}, "features", "features spec nope/none.yaml not found"),
        ({"validation": {"purge": 1}}, "validation.purge", "less than the target horizon"),
    ],
)
def test_whole_train_config_is_checked_before_any_data(make_cfg, tmp_path, change, field, reason):
    """A bad config file fails with its name and the field, before the store is touched."""
    import yaml

    store = tmp_path / "never-created"
    cfg = make_cfg(data={"store_root": str(store)}, **change).model_dump(mode="json")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError) as caught:
        train(path, tracking=False, smoke=True)
    message = str(caught.value)
    assert message.startswith(f"{path}: field '{field}': ") and reason in message, message
    assert "\n" not in message and not store.exists()


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "models").glob("*.yaml")))
def test_shipped_configs_validate_and_build(path):
    cfg = load_config(path, TrainConfig)
    for c in (cfg, smoke_config(cfg)):
        model = build_model(c)
        assert model.task == c.task
        assert model.get_params()["random_state"] == c.model.params.get("random_state", c.seed)


def test_features_are_cached_beside_the_store_and_reused(make_cfg, store):
    from cryptoai.features.cache import cache_key
    from cryptoai.features.spec import load_feature_spec

    cfg = make_cfg()
    first = train(cfg, tracking=False, progress=False)
    cache = store.parent / "processed" / "features" / "BTC-USDT" / "1h.parquet"
    assert cache.is_file()
    stamp = cache.stat().st_mtime_ns
    again = train(cfg, tracking=False, progress=False)
    assert cache.stat().st_mtime_ns == stamp  # a hit: nothing recomputed or rewritten
    assert _same(first.aggregate, again.aggregate)
    # the stored key is the one of this spec and these candles
    import pyarrow.parquet as pq

    from cryptoai.modeling.training import load_training_data

    meta = pq.read_schema(cache).metadata
    key = cache_key(load_training_data(cfg.data), load_feature_spec(MINIMAL_SPEC))
    assert key in {v.decode() for v in meta.values()}
