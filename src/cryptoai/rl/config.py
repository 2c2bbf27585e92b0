"""RL run configs (``configs/rl/*.yaml``) and the bucket presets (``configs/rl/buckets.yaml``).

A bucket (scalping / short / medium / long) is a preset of timeframe, observation window,
episode length, reward and execution costs; a run config names one and may override any of
its fields. Every error is one line naming the file, the field and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cryptoai.config import load_config, validate_config
from cryptoai.errors import ConfigError, CryptoaiError
from cryptoai.modeling.training import DataConfig

DEFAULT_BUCKETS = "configs/rl/buckets.yaml"
DEFAULT_FEATURES = "configs/features/minimal.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _reward_name(value: str | None) -> str | None:
    from cryptoai.rl.rewards import REWARDS

    if value is not None and value not in REWARDS:
        raise ValueError(f"unknown reward {value!r}: use one of {', '.join(sorted(REWARDS))}")
    return value


class Bucket(_Strict):
    """One trading-horizon preset."""

    timeframe: str
    window: int = Field(ge=1)
    episode_length: int = Field(ge=1)
    reward: str = "log_return"
    reward_params: dict[str, float] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)

    @field_validator("reward")
    @classmethod
    def _known_reward(cls, value: str | None) -> str | None:
        return _reward_name(value)


class Buckets(_Strict):
    buckets: dict[str, Bucket] = Field(min_length=1)


class RLDataConfig(DataConfig):
    """Candles as in model configs; ``timeframe`` defaults to the bucket's."""

    timeframe: str | None = None


class EvalConfig(_Strict):
    """The walk-forward split: train on the training window of fold ``fold``, evaluate on the
    test window that follows it (``fold=-1``: the last fold)."""

    n_splits: int = Field(3, ge=1)
    fold: int = -1
    test_size: int | None = Field(None, ge=2)
    train_size: int | None = Field(None, ge=2)

    @model_validator(mode="after")
    def _fold_in_range(self) -> EvalConfig:
        if not -self.n_splits <= self.fold < self.n_splits:
            raise ValueError(f"fold {self.fold} is not one of the {self.n_splits} folds")
        return self


class TrackingConfig(_Strict):
    experiment: str = "cryptoai-rl"
    template: dict[str, Any] = Field(default_factory=dict)


class BaselineConfig(_Strict):
    """The supervised baseline the agent is scored against: ``model`` (a registered model
    name) fitted on the training window's features to the next bar's direction, its
    probabilities on the evaluation bars traded by ``model_signal`` with ``params``."""

    model: str = "logreg"
    model_params: dict[str, Any] = Field(default_factory=lambda: {"C": 0.1, "max_iter": 2000})
    params: dict[str, Any] = Field(
        default_factory=lambda: {
            "long_above": 0.52,
            "short_below": 0.48,
            "long_exit": 0.5,
            "short_exit": 0.5,
            "min_hold": 24,
        }
    )


class RLConfig(_Strict):
    """One RL training run, as written in ``configs/rl/NAME.yaml``."""

    name: str
    data: RLDataConfig = Field(default_factory=RLDataConfig)
    features: str = DEFAULT_FEATURES
    bucket: str = "medium"
    buckets_file: str = DEFAULT_BUCKETS
    algo: Literal["ppo", "dqn"] = "ppo"
    algo_params: dict[str, Any] = Field(default_factory=dict)
    smoke_params: dict[str, Any] = Field(default_factory=dict)
    actions: Literal["discrete3", "continuous"] = "discrete3"
    window: int | None = Field(None, ge=1)
    episode_length: int | None = Field(None, ge=1)
    reward: str | None = None
    reward_params: dict[str, float] | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    total_timesteps: int = Field(50_000, ge=1)
    seed: int = 42
    eval: EvalConfig = Field(default_factory=EvalConfig)
    checkpoint_every: int = Field(10_000, ge=1)
    log_every: int = Field(1_000, ge=1)  # training-curve points (MLflow, with their step)
    checkpoint_dir: str = "models/checkpoints/rl"
    output_dir: str = "experiments/rl"
    torch_threads: int = Field(1, ge=1)
    smoke_bars: int = Field(1500, ge=100)
    smoke_timesteps: int = Field(512, ge=1)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    baseline: BaselineConfig = Field(default_factory=BaselineConfig)

    @field_validator("reward")
    @classmethod
    def _known_reward(cls, value: str | None) -> str | None:
        return _reward_name(value)

    @model_validator(mode="after")
    def _dqn_is_discrete(self) -> RLConfig:
        if self.algo == "dqn" and self.actions != "discrete3":
            raise ValueError("algo dqn needs discrete actions: use actions: discrete3 or ppo")
        return self


@dataclass(frozen=True)
class Resolved:
    """A config with its bucket applied: what the run actually uses."""

    config: RLConfig
    bucket: Bucket
    timeframe: str
    window: int
    episode_length: int
    reward: str
    reward_params: dict[str, float]
    settings: Any  # ExecutionSettings

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.config.model_dump(mode="json"),
            "resolved": {
                "timeframe": self.timeframe,
                "window": self.window,
                "episode_length": self.episode_length,
                "reward": self.reward,
                "reward_params": self.reward_params,
                "settings": self.settings.to_dict(),
            },
        }


def find_file(path: str, config_file: str | Path | None, what: str) -> Path:
    """A path as given (relative to the working directory) or to the config's folders."""
    candidates = [Path(path)]
    if config_file and not str(config_file).startswith("<"):
        base = Path(config_file).resolve().parent
        candidates += [base / path, *(p / path for p in base.parents)]
    for c in candidates:
        if c.is_file():
            return c
    raise ConfigError(f"{what} {path} not found: give a path relative to the repository root")


def load_buckets(path: str | Path = DEFAULT_BUCKETS) -> dict[str, Bucket]:
    """The bucket presets of a buckets file."""
    return load_config(path, Buckets).buckets


def load_rl_config(path: str | Path) -> RLConfig:
    return load_config(path, RLConfig)


def resolve(
    config: str | Path | RLConfig | dict, bucket: str | None = None
) -> tuple[Resolved, str]:
    """Validate a config (file, dict or model), apply ``bucket`` (overrides the config's) and
    its preset; returns the resolved run and the config's name for messages."""
    from cryptoai.backtest.settings import make_settings

    if isinstance(config, RLConfig):
        cfg, source = config, f"<{config.name}>"
    elif isinstance(config, dict):
        cfg, source = validate_config(config, RLConfig), "<dict>"
    else:
        cfg, source = load_rl_config(config), str(config)
    if bucket is not None:
        cfg = cfg.model_copy(update={"bucket": bucket})
    buckets = load_buckets(find_file(cfg.buckets_file, source, "buckets file"))
    if cfg.bucket not in buckets:
        raise ConfigError(
            f"{source}: field 'bucket': unknown bucket {cfg.bucket!r}: use one of"
            f" {', '.join(buckets)}"
        )
    b = buckets[cfg.bucket]
    timeframe = cfg.data.timeframe or b.timeframe
    try:
        settings = make_settings({**b.settings, **cfg.settings})
    except CryptoaiError as exc:
        raise ConfigError(f"{source}: field 'settings': {exc}") from exc
    reward = cfg.reward or b.reward
    if cfg.reward_params is not None:
        reward_params = dict(cfg.reward_params)
    else:
        reward_params = dict(b.reward_params) if reward == b.reward else {}
    try:
        from cryptoai.rl.rewards import make_reward

        make_reward(reward, **reward_params)
    except CryptoaiError as exc:
        raise ConfigError(f"{source}: field 'reward_params': {exc}") from exc
    resolved = Resolved(
        config=cfg,
        bucket=b,
        timeframe=timeframe,
        window=cfg.window or b.window,
        episode_length=cfg.episode_length or b.episode_length,
        reward=reward,
        reward_params=reward_params,
        settings=settings,
    )
    return resolved, source
