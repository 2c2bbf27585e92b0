"""RL training: configs, buckets, reproducible smoke runs, exact resume, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cryptoai.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _config(tmp_path: Path, **changes) -> Path:
    base = "dqn" if changes.get("algo") == "dqn" else "ppo"
    cfg = yaml.safe_load((ROOT / f"configs/rl/{base}.yaml").read_text())
    cfg["data"].update(
        {"start": "2023-01-01", "end": "2023-02-20", "store_root": str(tmp_path / "raw")}
    )
    cfg.update(
        {
            "features": str(ROOT / "configs/features/minimal.yaml"),
            "buckets_file": str(ROOT / "configs/rl/buckets.yaml"),
            "window": 8,
            "episode_length": 64,
            "smoke_bars": 600,
            "smoke_timesteps": 256,
            "checkpoint_every": 64,
            "checkpoint_dir": str(tmp_path / "ckpt"),
            "output_dir": str(tmp_path / "out"),
        }
    )
    cfg.update(changes)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "rl.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_shipped_configs_and_buckets_resolve():
    from cryptoai.rl.config import load_buckets, resolve

    buckets = load_buckets(ROOT / "configs/rl/buckets.yaml")
    assert set(buckets) == {"scalping", "short", "medium", "long"}
    assert buckets["scalping"].timeframe == "1m" and buckets["long"].timeframe == "1d"
    for name in ("ppo", "dqn"):
        res, _ = resolve(ROOT / f"configs/rl/{name}.yaml")
        assert res.config.algo == name and res.timeframe == "1h" and res.window == 32
        assert res.settings.fee_bps > 0  # costs always on
    res, _ = resolve(ROOT / "configs/rl/ppo.yaml", bucket="scalping")
    assert (res.timeframe, res.reward, res.settings.fee_bps) == ("1m", "differential_sharpe", 4.0)


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"bucket": "swing"}, "bucket", "unknown bucket 'swing'"),
        ({"reward": "sortino"}, "reward", "unknown reward 'sortino'"),
        ({"algo": "a2c"}, "algo", "'ppo' or 'dqn'"),
        ({"algo": "dqn", "actions": "continuous"}, "(top level)", "dqn needs discrete"),
        ({"settings": {"fee_bps": -1}}, "settings", "fee_bps"),
    ],
)
def test_config_errors_are_one_line_and_name_the_field(tmp_path, changes, field, text):
    from cryptoai.rl.config import resolve

    with pytest.raises(ConfigError) as err:
        resolve(_config(tmp_path, **changes))
    msg = str(err.value)
    assert f"'{field}'" in msg and text in msg and "\n" not in msg


@pytest.mark.slow
def test_window_longer_than_the_training_window_is_a_config_error(tmp_path):
    from cryptoai.rl.training import train_rl

    with pytest.raises(ConfigError, match="field 'window'.*longer than the .* training window"):
        train_rl(_config(tmp_path, window=500), smoke=True, tracking=False)


def test_unknown_algo_params_fail_before_any_data_is_loaded(tmp_path):
    from cryptoai.rl.training import train_rl

    with pytest.raises(ConfigError, match="field 'algo_params'.*n_stepz.*ppo") as err:
        train_rl(_config(tmp_path, algo_params={"n_stepz": 3}), tracking=False)
    assert not (tmp_path / "raw").exists()
    assert "\n" not in str(err.value)


def _train(cfg: Path, out: Path, **kwargs):
    from cryptoai.rl.training import train_rl

    return train_rl(cfg, smoke=True, tracking=False, out=out, **kwargs)


def _params(model):
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}


def _same(a, b) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_smoke_training_is_reproducible_and_evaluated_by_the_backtester(tmp_path):
    cfg = _config(tmp_path)
    from cryptoai.rl.training import train_rl

    a = train_rl(cfg, smoke=True, tracking=True, out=tmp_path / "a")
    b = _train(cfg, tmp_path / "b")
    first = (tmp_path / "a" / "metrics.json").read_bytes()
    assert first == (tmp_path / "b" / "metrics.json").read_bytes()
    assert _same(_params(a.model), _params(b.model))
    m = json.loads(first)["metrics"]
    assert set(m) == {"agent", "buy_and_hold", "flat", "model_signal"}
    assert m["flat"]["final_equity"] == 10_000.0 and m["flat"]["n_trades"] == 0
    assert m["buy_and_hold"]["n_trades"] == 1
    # the agent's metrics are the vectorized backtest of its evaluation actions
    from cryptoai.backtest import run_vectorized
    from cryptoai.rl.config import resolve

    res, _ = resolve(cfg)
    ref = run_vectorized(a.eval_bars, a.eval_targets, res.settings)
    assert m["agent"]["final_equity"] == pytest.approx(ref.final_equity, rel=1e-12)
    assert m["agent"]["n_trades"] == len(ref.trades)
    assert a.eval_targets.index.equals(a.eval_bars.index)
    assert a.eval_window[0] > a.train_window[1]  # evaluated after the training window
    assert a.timesteps == 256
    ckpts = sorted(p.name for p in a.checkpoint_dir.iterdir())
    assert "final" in ckpts and "step_000000128" in ckpts
    # the tracked run carries the same numbers
    import mlflow

    run = mlflow.get_run(a.run_id)
    assert run.data.metrics["agent.final_equity"] == pytest.approx(m["agent"]["final_equity"])
    # the training curve: a point every log_every steps, each at its step
    curve = mlflow.tracking.MlflowClient().get_metric_history(a.run_id, "train.episode_reward_mean")
    assert [p.step for p in curve] == [64, 128, 192, 256]
    assert [p.value for p in curve] == [h["episode_reward_mean"] for h in a.history]
    assert run.data.params["seed.model"] == "42"
    # the evaluation episode's backtest report, beside buy-and-hold
    report = (tmp_path / "a" / "backtest" / "backtest_report.md").read_text()
    assert "out of sample" in report and "buy and hold" in report


@pytest.mark.slow
def test_the_supervised_baseline_is_a_logistic_model_fitted_on_the_training_window(tmp_path):
    """Recomputed here with scikit-learn and the backtester, on the run's own windows."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from cryptoai.backtest import run_backtest
    from cryptoai.backtest.metrics import compute_metrics
    from cryptoai.features.engineering import build_features
    from cryptoai.features.spec import load_feature_spec
    from cryptoai.rl.config import resolve
    from cryptoai.rl.training import _smoke, load_data, split_windows, train_rl

    cfg = _config(tmp_path)
    a = train_rl(cfg, smoke=True, tracking=False, out=tmp_path / "a")
    res, source = resolve(cfg)
    res = _smoke(res)
    ohlcv = load_data(res).iloc[-res.config.smoke_bars :]
    feats = build_features(ohlcv, load_feature_spec(res.config.features))
    w = split_windows(ohlcv, feats, res, source)
    up = (w.train["close"].shift(-1) > w.train["close"]).astype(float)
    X, y = w.train_features.iloc[:-1], up.iloc[:-1]  # the last label reads the next window
    ok = X.notna().all(axis=1).to_numpy()
    b = res.config.baseline
    clf = make_pipeline(StandardScaler(), LogisticRegression(**b.model_params, random_state=0))
    clf.fit(X.to_numpy()[ok], y.to_numpy()[ok])
    ev = w.eval_features.reindex(a.eval_bars.index)
    known = ev.notna().all(axis=1).to_numpy()
    proba = np.full(len(ev), np.nan)
    proba[known] = clf.predict_proba(ev.to_numpy()[known])[:, 1]
    signal = pd.Series(proba, index=ev.index, name="proba_up")
    result, _ = run_backtest(a.eval_bars, "model_signal", {**b.params, "predictions": signal},
                             res.settings)  # fmt: skip
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())["metrics"]["model_signal"]
    assert m["final_equity"] == pytest.approx(compute_metrics(result)["final_equity"], rel=1e-9)
    assert m["n_trades"] == compute_metrics(result)["n_trades"]


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_resume_lands_on_the_uninterrupted_policy(tmp_path, algo):
    extra = {"algo": algo}
    if algo == "dqn":
        extra["smoke_params"] = {"learning_starts": 32, "target_update_interval": 50}
    else:
        extra["smoke_params"] = {"n_steps": 64, "batch_size": 32}
    whole = _train(_config(tmp_path / "whole", **extra), tmp_path / "whole" / "out")
    cut_cfg = _config(tmp_path / "cut", **extra)
    cut = _train(cut_cfg, tmp_path / "cut" / "out", stop_after=128)
    assert cut.timesteps < 256 and not _same(_params(cut.model), _params(whole.model))
    resumed = _train(cut_cfg, tmp_path / "cut" / "out", resume=cut.checkpoint_dir)
    assert resumed.timesteps == whole.timesteps == 256
    assert _same(_params(resumed.model), _params(whole.model))
    assert resumed.metrics == whole.metrics


@pytest.mark.slow
def test_cli_rl_train_smoke_and_errors(tmp_path, capsys):
    from cryptoai.cli import main

    cfg = _config(tmp_path, smoke_timesteps=128)
    assert (
        main(
            [
                "rl",
                "train",
                "--config",
                str(cfg),
                "--smoke",
                "--no-tracking",
                "--no-progress",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "buy_and_hold" in out and (tmp_path / "o" / "metrics.json").is_file()
    assert main(["rl", "train", "--config", str(cfg), "--bucket", "swing", "--no-tracking"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "unknown bucket 'swing'" in err and "\n" not in err
