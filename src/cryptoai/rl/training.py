"""Config-driven RL training: data -> features -> walk-forward split -> SB3 agent -> evaluation.

``train_rl("configs/rl/ppo.yaml")`` trains PPO or DQN (Stable-Baselines3) on the training
window of one walk-forward fold, evaluates the deterministic policy on the test window that
follows it, beside buy-and-hold and staying flat, and reports the backtest metrics of the
evaluation episode (``run_vectorized`` on the evaluation actions: the environment's equity
is checked against it). Checkpoints every ``checkpoint_every`` steps under
``models/checkpoints/rl/<run>/step_<N>/`` hold everything a resumed run needs to continue
exactly where this one was: the model (SB3 ``save``: parameters, optimizer, counters), the
DQN replay buffer, the training environment mid-episode and every RNG state.

Reproducibility: CPU, ``torch.use_deterministic_algorithms(True)``, a fixed number of torch
threads and one seed for everything, so the same config, seed and data give the same
evaluation metrics (and ``metrics.json`` bytes) on rerun; see docs/rl.md.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import pickle
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError, ConfigError
from cryptoai.rl.config import Resolved, find_file, resolve

log = logging.getLogger(__name__)

STATE_FILE = "state.pkl"
MODEL_FILE = "model.zip"
BUFFER_FILE = "replay_buffer.pkl"
LATEST_FILE = "latest.txt"
HEADLINE = ["total_return", "sharpe", "max_drawdown", "n_trades", "fees_paid", "final_equity"]
#: smoke-sized algorithm parameters (the config's smoke_params go on top)
SMOKE_PARAMS = {
    "ppo": {"n_steps": 128, "batch_size": 64, "n_epochs": 2},
    "dqn": {"learning_starts": 100, "buffer_size": 5000, "train_freq": 4, "batch_size": 32},
}


@dataclass
class RLResult:
    """What a training run produced: evaluation metrics beside the baselines, and where."""

    run_name: str
    metrics: dict[str, dict[str, Any]]
    timesteps: int
    checkpoint_dir: Path
    out_dir: Path
    eval_targets: pd.Series
    eval_bars: pd.DataFrame
    train_window: tuple[str, str]
    eval_window: tuple[str, str]
    run_id: str | None = None
    model: Any = field(default=None, repr=False)
    #: The training curve, one row every ``log_every`` steps (this process's steps only).
    history: list[dict[str, float]] = field(default_factory=list, repr=False)

    def summary_text(self) -> str:
        rows = {name: {m: self.metrics[name].get(m) for m in HEADLINE} for name in self.metrics}
        return pd.DataFrame(rows).to_string()


# ----------------------------------------------------------------------------- setup
def _deterministic(seed: int, threads: int) -> dict[str, int]:
    import torch

    from cryptoai.seeds import seed_everything

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)
    return seed_everything(seed)


def _smoke(res: Resolved) -> Resolved:
    cfg = res.config
    params = {**cfg.algo_params, **SMOKE_PARAMS[cfg.algo], **cfg.smoke_params}
    cfg = cfg.model_copy(
        update={
            "algo_params": params,
            "total_timesteps": cfg.smoke_timesteps,
            "checkpoint_every": min(cfg.checkpoint_every, max(cfg.smoke_timesteps // 2, 1)),
            "log_every": min(cfg.log_every, max(cfg.smoke_timesteps // 4, 1)),
        }
    )
    return Resolved(**{**res.__dict__, "config": cfg})


def load_data(res: Resolved) -> pd.DataFrame:
    from cryptoai.modeling.training import DataConfig, load_training_data

    d = res.config.data.model_dump()
    d["timeframe"] = res.timeframe
    return load_training_data(DataConfig(**d))


@dataclass
class Windows:
    """The data cut for one run: training bars, evaluation bars (with the window's lead-in)."""

    train: pd.DataFrame
    train_features: pd.DataFrame
    evaluation: pd.DataFrame
    eval_features: pd.DataFrame
    eval_start: pd.Timestamp


def split_windows(
    ohlcv: pd.DataFrame, features: pd.DataFrame, res: Resolved, source: str
) -> Windows:
    """Training and evaluation windows of the configured walk-forward fold.

    Features are computed once on all bars (causal: a row uses bars up to it only), then
    cut: the training environment gets bars up to the training window's end and nothing
    after; the evaluation environment gets the test window plus the ``window - 1`` bars
    before it that its first observation shows."""
    from cryptoai.modeling.splits import walk_forward_splits

    e = res.config.eval
    try:
        splits = walk_forward_splits(
            len(ohlcv), n_splits=e.n_splits, test_size=e.test_size, train_size=e.train_size
        )
    except BadInputError as exc:
        raise ConfigError(f"{source}: field 'eval': {exc}") from exc
    train_idx, test_idx = splits[e.fold]
    complete = np.isfinite(features.to_numpy(dtype="float64")).all(axis=1)
    warm = int(np.argmax(complete)) if complete.any() else len(ohlcv)
    lo, hi = int(train_idx[0]), int(train_idx[-1]) + 1
    need = max(warm, lo) - lo + res.window + 1
    if hi - lo < need:
        raise ConfigError(
            f"{source}: field 'window': {res.window} bars (after a feature warm-up of {warm}) are"
            f" longer than the {hi - lo} bars of the training window: use a smaller window or"
            " bucket, or load more data"
        )
    t0, t1 = int(test_idx[0]), int(test_idx[-1]) + 1
    lead = t0 - (res.window - 1)
    if lead < warm:
        raise ConfigError(
            f"{source}: field 'window': the first evaluation bar needs {res.window} bars of"
            " known features before it: load more data or use a smaller window"
        )
    return Windows(
        train=ohlcv.iloc[lo:hi],
        train_features=features.iloc[lo:hi],
        evaluation=ohlcv.iloc[lead:t1],
        eval_features=features.iloc[lead:t1],
        eval_start=ohlcv.index[t0],
    )


def make_env(res: Resolved, data: pd.DataFrame, feats: pd.DataFrame, train: bool):
    """The training environment (random episode starts) or the evaluation one (whole window)."""
    from cryptoai.rl.env import TradingEnv

    env = TradingEnv(
        data,
        features=feats,
        settings=res.settings,
        window=res.window,
        reward=res.reward,
        reward_params=res.reward_params,
        actions=res.config.actions,
        episode_length=None,
        random_start=train,
    )
    if train:
        room = len(data) - 1 - env.first_bar
        length = min(res.episode_length, room)
        if length < res.episode_length:
            log.info(
                "episode_length %d capped at the %d steps the data holds",
                res.episode_length,
                length,
            )
        env.episode_length = length
    return env


def _vec_env(env):
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    return DummyVecEnv([lambda: Monitor(env)])


def _check_algo_params(algo: str, params: dict[str, Any], source: str) -> None:
    """Parameters the algorithm does not take fail here, before any data is loaded."""
    import inspect

    allowed = set(inspect.signature(_algo(algo).__init__).parameters) - {
        "self",
        "policy",
        "env",
        "seed",
        "device",
        "verbose",
        "_init_setup_model",
    }
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(
            f"{source}: field 'algo_params': {', '.join(unknown)} not accepted by {algo}: use"
            f" {', '.join(sorted(allowed))}"
        )


def _algo(name: str):
    from stable_baselines3 import DQN, PPO

    return {"ppo": PPO, "dqn": DQN}[name]


# ----------------------------------------------------------------------------- checkpoints
def _rng_states(model) -> dict[str, Any]:
    import torch

    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "action_space": model.action_space.np_random.bit_generator.state,
    }


def _set_rng_states(model, states: dict[str, Any]) -> None:
    import torch

    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    model.action_space.np_random.bit_generator.state = states["action_space"]


def save_checkpoint(model, folder: Path, config_hash: str) -> Path:
    """Everything needed to continue training exactly from here (see the module docstring)."""
    import cloudpickle

    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / MODEL_FILE)
    if hasattr(model, "replay_buffer") and model.replay_buffer is not None:
        model.save_replay_buffer(folder / BUFFER_FILE)
    state = {
        "num_timesteps": int(model.num_timesteps),
        "config_hash": config_hash,
        "rng": _rng_states(model),
        "env": cloudpickle.dumps(model.get_env()),
        "last_obs": model._last_obs,
        "last_episode_starts": model._last_episode_starts,
        "last_original_obs": getattr(model, "_last_original_obs", None),
    }
    tmp = folder / (STATE_FILE + ".tmp")
    tmp.write_bytes(pickle.dumps(state))
    tmp.replace(folder / STATE_FILE)
    (folder.parent / LATEST_FILE).write_text(folder.name + "\n")
    log.info("checkpoint at step %d: %s", model.num_timesteps, folder)
    return folder


def _checkpoint_folder(path: str | Path) -> Path:
    p = Path(path)
    if (p / LATEST_FILE).is_file():
        p = p / (p / LATEST_FILE).read_text().strip()
    if not (p / STATE_FILE).is_file() or not (p / MODEL_FILE).is_file():
        raise BadInputError(
            f"--resume {path}: no checkpoint there (expected {MODEL_FILE} and {STATE_FILE}, or a"
            f" run folder with {LATEST_FILE})"
        )
    return p


def load_checkpoint(path: str | Path, algo: str, config_hash: str):
    """A model restored from a checkpoint, with its environment and RNG states."""
    import cloudpickle

    folder = _checkpoint_folder(path)
    state = pickle.loads((folder / STATE_FILE).read_bytes())
    if state["config_hash"] != config_hash:
        raise BadInputError(
            f"--resume {path}: the checkpoint was made with a different config; resume with the"
            " same config (and bucket) or start a new run"
        )
    venv = cloudpickle.loads(state["env"])
    model = _algo(algo).load(folder / MODEL_FILE, env=venv, device="cpu", force_reset=False)
    if (folder / BUFFER_FILE).is_file():
        model.load_replay_buffer(folder / BUFFER_FILE)
    # load() re-seeded everything and queued a seed for the next env reset: undo both
    if hasattr(venv, "_reset_seeds"):
        venv._reset_seeds()
    model._last_obs = state["last_obs"]
    model._last_episode_starts = state["last_episode_starts"]
    if state["last_original_obs"] is not None:
        model._last_original_obs = state["last_original_obs"]
    _set_rng_states(model, state["rng"])
    return model, state["num_timesteps"]


def _callback(
    every: int,
    folder: Path,
    config_hash: str,
    stop_after: int | None,
    *,
    log_every: int = 1000,
    total: int | None = None,
    progress: bool = False,
):
    """Checkpoints at the start of a rollout (after the previous update: nothing is pending)
    once ``every`` more steps have run; ``stop_after`` ends training at the first
    checkpoint at or beyond it (to test that a resumed run matches an uninterrupted one).

    Every ``log_every`` steps it records the training curve (mean reward of the last ten
    finished episodes, episodes so far) in ``history``, logged to the run with its step; with
    ``progress``, a bar shows steps/s and the running episode reward."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Checkpoints(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next = None
            self.stop = False
            self.history: list[dict[str, float]] = []
            self.episodes: list[float] = []
            self._running = 0.0
            self._next_log = None
            self.bar = None

        def _on_training_start(self) -> None:
            n = self.model.num_timesteps
            self.next = (n // every + 1) * every
            self._next_log = (n // log_every + 1) * log_every
            if progress:
                from cryptoai._progress import tqdm

                self.bar = tqdm(total=total, initial=n, unit="step", desc="training")

        def _on_rollout_start(self) -> None:
            n = self.model.num_timesteps
            if n >= self.next:
                save_checkpoint(self.model, folder / f"step_{n:09d}", config_hash)
                self.next = (n // every + 1) * every
                if stop_after is not None and n >= stop_after:
                    self.stop = True

        def _on_step(self) -> bool:
            rewards = np.atleast_1d(self.locals.get("rewards", 0.0))
            dones = np.atleast_1d(self.locals.get("dones", False))
            self._running += float(rewards[0])
            if bool(dones[0]):
                self.episodes.append(self._running)
                self._running = 0.0
            n = self.model.num_timesteps
            recent = float(np.mean(self.episodes[-10:])) if self.episodes else self._running
            if n >= self._next_log:
                self.history.append(
                    {"step": n, "episode_reward_mean": recent, "episodes": len(self.episodes)}
                )
                self._next_log = (n // log_every + 1) * log_every
            if self.bar is not None:
                self.bar.update(1)
                self.bar.set_postfix(episode_reward=f"{recent:.4f}", refresh=False)
            return not self.stop

        def _on_training_end(self) -> None:
            if self.bar is not None:
                self.bar.close()

    return Checkpoints()


# ----------------------------------------------------------------------------- evaluation
def evaluate(model, env) -> pd.Series:
    """Run the deterministic policy over the whole evaluation window; its targets."""
    obs, _ = env.reset(seed=0)
    done = False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        obs, _, done, truncated, _ = env.step(action)
        done = done or truncated
    return env.episode_targets()


def backtest_metrics(env, targets: pd.Series | None = None) -> dict[str, Any]:
    """Backtest metrics of the episode's bars under ``targets`` (the env's own by default),
    by ``run_vectorized``: the independent reference for the environment's equity."""
    from cryptoai.backtest.metrics import compute_metrics
    from cryptoai.backtest.vectorized import run_vectorized

    bars = env.episode_data()
    result = run_vectorized(
        bars, env.episode_targets() if targets is None else targets, env.settings
    )
    return compute_metrics(result)


def baselines(env) -> dict[str, dict[str, Any]]:
    """Buy-and-hold (long from the first decision) and flat on the evaluation bars."""
    bars = env.episode_data()
    hold = pd.Series(1.0, index=bars.index)
    hold.iloc[-1] = np.nan
    flat = pd.Series(0.0, index=bars.index)
    return {"buy_and_hold": backtest_metrics(env, hold), "flat": backtest_metrics(env, flat)}


def model_signal_baseline(
    bars: pd.DataFrame,
    proba_up: pd.Series,
    settings: Any,
    params: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Any]:
    """The supervised baseline on the evaluation bars: a model's out-of-sample probabilities
    of an up bar traded by ``model_signal`` (``params``: its thresholds) with the agent's
    execution ``settings``. Returns (metrics, ``BacktestResult``)."""
    import cryptoai as ca
    from cryptoai.backtest.metrics import compute_metrics

    proba = proba_up.rename("proba_up")
    proba.attrs["meaning"] = "proba_up"
    outside = proba.index.difference(bars.index)
    if len(outside):
        raise BadInputError(
            f"{len(outside)} predictions fall outside the evaluation bars (first {outside[0]})"
        )
    result, _ = ca.run_backtest(bars, "model_signal", {**(params or {}), "predictions": proba},
                                settings)  # fmt: skip
    return compute_metrics(result), result


def supervised_baseline(res: Resolved, w: Windows, eval_env) -> dict[str, Any]:
    """The config's supervised model fitted on the training window only (the last bar, whose
    label is the first evaluation bar's move, is purged), its up-probabilities on the
    evaluation bars traded by ``model_signal`` with the agent's execution settings."""
    from cryptoai.modeling.labels import direction
    from cryptoai.modeling.models import make_model

    cfg = res.config.baseline
    y = direction(w.train["close"], 1).iloc[:-1]
    X = w.train_features.reindex(y.index)
    model = make_model(cfg.model, "classification", **cfg.model_params)
    model.fit(X, y)
    bars = eval_env.episode_data()
    feats = w.eval_features.reindex(bars.index)
    proba = model.predict_proba(feats)[:, list(model.classes_).index(1.0)]
    metrics, _ = model_signal_baseline(
        bars, pd.Series(proba, index=bars.index), eval_env.settings, cfg.params
    )
    return metrics


def _write_report(result: RLResult, eval_env) -> Path:
    """The evaluation episode's backtest report (the agent's actions through
    ``run_vectorized``, beside buy-and-hold with the same costs) in ``out_dir/backtest``."""
    from cryptoai.backtest.report import write_report
    from cryptoai.backtest.vectorized import run_vectorized

    bars = eval_env.episode_data()
    agent = run_vectorized(bars, result.eval_targets, eval_env.settings, name="agent")
    hold = pd.Series(1.0, index=bars.index)
    hold.iloc[-1] = np.nan
    bench = run_vectorized(bars, hold, eval_env.settings, name="buy and hold")
    paths = write_report(
        agent,
        bench,
        bars,
        result.out_dir / "backtest",
        title=f"{result.run_name}: evaluation episode",
        period_label="the evaluation window after the training window (out of sample)",
    )
    return paths["report"]


# ----------------------------------------------------------------------------- the run
def run_name(res: Resolved) -> str:
    c = res.config
    return f"{c.name}-{c.algo}-{c.bucket}-seed{c.seed}"


def _config_hash(res: Resolved) -> str:
    import hashlib

    payload = json.dumps(res.as_dict(), sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def train_rl(
    config: str | Path | Any,
    *,
    bucket: str | None = None,
    smoke: bool = False,
    resume: str | Path | None = None,
    out: str | Path | None = None,
    tracking: bool = True,
    progress: bool = False,
    stop_after: int | None = None,
    checkpoint_dir: str | Path | None = None,
) -> RLResult:
    """Train and evaluate one RL config (see the module docstring).

    ``bucket`` overrides the config's bucket; ``smoke`` shrinks data and steps to seconds;
    ``resume`` continues from a checkpoint (a ``step_N`` folder or a run folder: its
    latest); ``out`` is where ``metrics.json`` goes; ``stop_after`` stops at the first
    checkpoint at or past that many steps (an interrupted run, for tests).
    """
    res, source = resolve(config, bucket)
    if smoke:
        res = _smoke(res)
    cfg = res.config
    _check_algo_params(cfg.algo, cfg.algo_params, source)
    from cryptoai.features.engineering import build_features
    from cryptoai.features.spec import load_feature_spec

    spec = load_feature_spec(find_file(cfg.features, source, "features spec"))
    ohlcv = load_data(res)
    if smoke:
        ohlcv = ohlcv.iloc[-cfg.smoke_bars :]
    feats = build_features(ohlcv, spec)
    w = split_windows(ohlcv, feats, res, source)
    name = run_name(res)
    ckpt_root = Path(checkpoint_dir or cfg.checkpoint_dir) / name
    out_dir = Path(out) if out is not None else Path(cfg.output_dir) / name
    chash = _config_hash(res)
    seeds = _deterministic(cfg.seed, cfg.torch_threads)

    if resume is not None:
        model, done = load_checkpoint(resume, cfg.algo, chash)
        log.info("resuming %s at step %d of %d", name, done, cfg.total_timesteps)
    else:
        venv = _vec_env(make_env(res, w.train, w.train_features, train=True))
        venv.seed(cfg.seed)
        try:
            model = _algo(cfg.algo)(
                "MlpPolicy", venv, seed=cfg.seed, device="cpu", verbose=0, **cfg.algo_params
            )
        except (TypeError, ValueError, AssertionError) as exc:
            raise ConfigError(f"{source}: field 'algo_params': {exc}") from exc
        done = 0
    callback = _callback(
        cfg.checkpoint_every,
        ckpt_root,
        chash,
        stop_after,
        log_every=cfg.log_every,
        total=cfg.total_timesteps,
        progress=progress,
    )
    remaining = cfg.total_timesteps - done
    if remaining > 0:
        model.learn(
            remaining,
            callback=callback,
            reset_num_timesteps=resume is None,
            progress_bar=False,  # the callback's bar: steps/s and the running episode reward
        )
    if not callback.stop:
        save_checkpoint(model, ckpt_root / "final", chash)

    eval_env = make_env(res, w.evaluation, w.eval_features, train=False)
    targets = evaluate(model, eval_env)
    agent = backtest_metrics(eval_env)
    env_equity = eval_env.episode_result().final_equity
    if abs(agent["final_equity"] / env_equity - 1.0) > 1e-9:
        log.warning(
            "environment equity %.10g differs from the backtest's %.10g",
            env_equity,
            agent["final_equity"],
        )
    metrics = {"agent": agent, **baselines(eval_env)}
    metrics["model_signal"] = supervised_baseline(res, w, eval_env)
    bounds = eval_env.episode_bounds
    result = RLResult(
        run_name=name,
        metrics=metrics,
        timesteps=int(model.num_timesteps),
        checkpoint_dir=ckpt_root,
        out_dir=out_dir,
        eval_targets=targets,
        eval_bars=eval_env.episode_data(),
        train_window=(str(w.train.index[0]), str(w.train.index[-1])),
        eval_window=(str(bounds[0]), str(bounds[1])),
        model=model,
        history=callback.history,
    )
    _write_metrics(result, res, seeds)
    _write_report(result, eval_env)
    if tracking:
        result.run_id = _track(result, res, source, seeds, ohlcv)
    return result


def _write_metrics(result: RLResult, res: Resolved, seeds: dict[str, int]) -> Path:
    from cryptoai.backtest.metrics import to_jsonable

    result.out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "run": result.run_name,
        "algo": res.config.algo,
        "bucket": res.config.bucket,
        "seed": res.config.seed,
        "timesteps": result.timesteps,
        "train_window": list(result.train_window),
        "eval_window": list(result.eval_window),
        "metrics": {
            k: {m: to_jsonable(v) for m, v in d.items()} for k, d in result.metrics.items()
        },
    }
    path = result.out_dir / "metrics.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def _track(result: RLResult, res: Resolved, source: str, seeds, ohlcv) -> str:
    import mlflow

    from cryptoai import tracking as tr
    from cryptoai.fingerprint import frame_fingerprint

    cfg = res.config
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    d = cfg.data
    template = {
        "experiment_id": f"rl-{cfg.name}",
        "owner": user,
        "date": dt.date.today().isoformat(),
        "objective": f"{cfg.algo} agent, bucket {cfg.bucket}, vs buy-and-hold and flat",
        "dataset": f"{d.file or (d.exchange or d.source)} {d.symbol} {res.timeframe} "
        f"{ohlcv.index[0]:%Y-%m-%d}..{ohlcv.index[-1]:%Y-%m-%d}",
        "config_file": source,
        "model": f"{cfg.algo} MlpPolicy, {cfg.actions}, reward {res.reward}",
        "metrics": ["agent.total_return", "agent.sharpe", "agent.max_drawdown"],
        **cfg.tracking.template,
    }
    with tr.tracked_run(
        cfg.tracking.experiment,
        template,
        config=res.as_dict(),
        seeds={**seeds, "model": cfg.seed},
        data_fingerprint=frame_fingerprint(ohlcv),
        run_name=result.run_name,
        tags={"algo": cfg.algo, "bucket": cfg.bucket},
    ) as run:
        flat = {}
        for who, values in result.metrics.items():
            for m, v in values.items():
                if isinstance(v, int | float) and np.isfinite(v):
                    flat[f"{who}.{m}"] = float(v)
        mlflow.log_metrics(flat)
        for row in result.history:  # the training curve, each point at its step
            mlflow.log_metrics(
                {
                    "train.episode_reward_mean": row["episode_reward_mean"],
                    "train.episodes": row["episodes"],
                },
                step=int(row["step"]),
            )
        mlflow.log_artifact(str(result.out_dir / "metrics.json"))
        final = result.checkpoint_dir / "final" / MODEL_FILE
        if final.is_file():
            mlflow.log_artifact(str(final), "model")
        tr.set_backtest_summary(result.summary_text())
        return run.info.run_id
