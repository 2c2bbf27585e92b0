"""Optimization configs (``configs/optimize/NAME.yaml``): what to search, on which data, how.

Everything that can be wrong with a config is found here, before any data is loaded: an
unknown strategy or parameter, an empty space, a constraint that does not parse, names
something outside the space or that no combination satisfies, an unknown metric, a bad
method. Errors are one line naming the file and the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cryptoai.config import load_config, validate_config
from cryptoai.errors import BadInputError, ConfigError, CryptoaiError
from cryptoai.modeling.labels import TargetConfig
from cryptoai.modeling.training import HEADLINE, DataConfig, ModelConfig, ValidationConfig
from cryptoai.optimize.space import (
    Constraint,
    Dimension,
    check_satisfiable,
    make_dimension,
    parse_constraint,
)

__all__ = ["OptimizeConfig", "ObjectiveSpec", "WalkForwardSpec", "load_optimize_config"]

METHODS = ("grid", "random", "optuna", "walk_forward")
SAMPLERS = ("tpe", "cmaes", "random")
#: Metrics where smaller is better unless the config says otherwise.
MINIMIZE_BY_DEFAULT = frozenset(
    {
        "volatility",
        "max_drawdown_bars",
        "max_drawdown_days",
        "fees_paid",
        "turnover",
        "funding_paid",
        # model metrics (strategy: model): losses
        "log_loss",
        "mse",
        "mae",
    }
)
# Enough hourly bars for two walk-forward test windows of a month each: annualized figures
# need 30 days of data (docs/metrics.md), so shorter windows would report none.
SMOKE_BARS = 2400
SMOKE_TRIALS = 8
SMOKE_GRID_POINTS = 3
_SLUG = re.compile(r"^[a-z0-9_-]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ObjectiveSpec(_Strict):
    """The metric to optimize (a key of ``compute_metrics``) and its direction."""

    metric: str = "sharpe"
    direction: Literal["maximize", "minimize"] | None = None

    @model_validator(mode="after")
    def _default_direction(self) -> ObjectiveSpec:
        if self.direction is None:
            self.direction = "minimize" if self.metric in MINIMIZE_BY_DEFAULT else "maximize"
        return self

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"


class WalkForwardSpec(_Strict):
    """Windows of walk-forward optimization: ``n_splits`` test windows of ``test_size`` bars
    at the end of the data, each preceded by its in-sample window (all bars before it when
    ``anchored``, else the last ``train_size``); ``inner`` searches each in-sample window."""

    n_splits: int = Field(5, ge=1)
    test_size: int | None = Field(None, ge=2)
    train_size: int | None = Field(None, ge=2)
    anchored: bool = True
    inner: Literal["grid", "random"] = "grid"


class PruningSpec(_Strict):
    """Optuna's MedianPruner for model tuning (``strategy: model``): a trial whose running
    objective after fold k is worse than the median of earlier trials' at fold k stops.
    ``n_startup_trials`` run in full first; no trial is pruned before fold
    ``n_warmup_steps``."""

    enabled: bool = True
    n_startup_trials: int = Field(3, ge=0)
    n_warmup_steps: int = Field(0, ge=0)


class OptimizeConfig(_Strict):
    """One optimization: a strategy, a search space, a method and an objective."""

    name: str
    data: DataConfig = Field(default_factory=DataConfig)
    strategy: str
    params: dict[str, Any] = {}
    space: dict[str, Any]
    constraints: list[str] = []
    method: Literal["grid", "random", "optuna", "walk_forward"] = "grid"
    n_trials: int = Field(100, ge=1)
    sampler: Literal["tpe", "cmaes", "random"] = "tpe"
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec)
    min_trades: int = Field(1, ge=0)
    backtest: dict[str, Any] = {}
    walk_forward: WalkForwardSpec = Field(default_factory=WalkForwardSpec)
    seed: int = 42
    experiment: str = Field("cryptoai-optimize", min_length=1)
    owner: str | None = None
    notes: str = ""
    smoke: bool = False
    plugins: list[str] = []
    # A plugin strategy is checked for lookahead before the search (null: plugins only).
    check_lookahead: bool | None = None
    # strategy: model (cryptoai.optimize.model): a training config, or its parts inline
    train: str | None = None
    model: ModelConfig | None = None
    features: str | None = None
    target: TargetConfig | None = None
    validation: ValidationConfig | None = None
    pruning: PruningSpec = Field(default_factory=PruningSpec)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(
                f"{value!r} is not a slug: use lowercase letters, digits, '-' and '_' only"
                " (it names the folder reports/NAME_YYYYMMDD/)"
            )
        return value

    @field_validator("objective", mode="before")
    @classmethod
    def _objective_text(cls, value: Any) -> Any:
        return {"metric": value} if isinstance(value, str) else value

    @field_validator("method", "sampler", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    # -- resolved parts (computed once the config is checked) ---------------------------

    @property
    def is_model(self) -> bool:
        """Whether this config tunes a model (``strategy: model``) rather than a strategy."""
        return self.strategy == MODEL

    @cached_property
    def train_config(self):
        """``strategy: model``: the resolved training config and the file it came from."""
        return resolve_train_config(self)

    @cached_property
    def dimensions(self) -> list[Dimension]:
        from cryptoai.strategies.registry import get_strategy

        if self.is_model:
            return model_dimensions(self)

        defaults = get_strategy(self.strategy).params
        return [make_dimension(k, v, defaults.get(k)) for k, v in self.space.items()]

    @cached_property
    def parsed_constraints(self) -> list[Constraint]:
        names = list(self.space)
        return [
            parse_constraint(text, names, where=f"constraints.{i}")
            for i, text in enumerate(self.constraints)
        ]

    def settings(self):
        """The execution settings every trial uses (costs on unless zeroed explicitly)."""
        from cryptoai.backtest.settings import make_settings

        return make_settings(dict(self.backtest))


def check_config(cfg: OptimizeConfig) -> OptimizeConfig:
    """Semantic checks beyond the schema; raises BadInputError ``"FIELD: reason"``."""
    from cryptoai.backtest.metrics import METRIC_NAMES
    from cryptoai.strategies.registry import get_strategy

    if cfg.is_model:
        return check_model_config(cfg)
    for key in MODEL_ONLY_FIELDS:
        if getattr(cfg, key) is not None:
            raise BadInputError(
                f"{key}: only a model is tuned with a training config: use strategy: model,"
                f" or drop {key}"
            )
    try:
        cls = get_strategy(cfg.strategy)
    except BadInputError as exc:
        raise BadInputError(f"strategy: {exc}") from None
    if cfg.objective.metric not in METRIC_NAMES:
        raise BadInputError(
            f"objective.metric: unknown metric {cfg.objective.metric!r}: use one of"
            f" {', '.join(METRIC_NAMES)}"
        )
    if not cfg.space:
        raise BadInputError(
            "space: the search space is empty: give at least one parameter, e.g. fast: [5, 10]"
        )
    valid = ", ".join(sorted(cls.params)) or "(none)"
    for section, names in (("space", cfg.space), ("params", cfg.params)):
        unknown = sorted(set(names) - set(cls.params))
        if unknown:
            raise BadInputError(
                f"{section}.{unknown[0]}: strategy {cls.name} has no parameter"
                f" {', '.join(unknown)}: valid parameters are {valid}"
            )
    both = sorted(set(cfg.space) & set(cfg.params))
    if both:
        raise BadInputError(
            f"params.{both[0]}: {', '.join(both)} is both searched and fixed: drop it from one"
        )
    try:
        cls.resolve_params(dict(cfg.params))
    except BadInputError as exc:
        raise BadInputError(f"params: {exc}") from None
    dims = cfg.dimensions
    for dim in dims:
        if not dim.is_range:
            for value in dim.values:
                try:
                    cls.resolve_params({dim.name: value})
                except BadInputError as exc:
                    raise BadInputError(f"space.{dim.name}: {exc}") from None
    if cfg.method == "grid" or (cfg.method == "walk_forward" and cfg.walk_forward.inner == "grid"):
        for dim in dims:
            if not dim.finite:
                dim.grid()  # raises: a grid needs finite dimensions
    if cfg.method == "walk_forward" and not cls.has_signals():
        raise BadInputError(
            f"method: walk_forward trades each window from the strategy's signals, and"
            f" {cls.name} has none: use grid, random or optuna"
        )
    if cfg.method == "optuna" and cfg.sampler == "cmaes":
        try:
            import cmaes  # noqa: F401
        except ImportError:
            raise BadInputError(
                "sampler: cmaes needs the cmaes package: pip install cmaes, or use tpe"
            ) from None
    check_satisfiable(dims, cfg.parsed_constraints, seed=cfg.seed)
    try:
        cfg.settings()
    except BadInputError as exc:
        raise BadInputError(f"backtest: {exc}") from None
    return cfg


def smoke_config(cfg: OptimizeConfig) -> OptimizeConfig:
    """The same search, shrunk to run in seconds: at most three points per grid dimension
    (the ends and the middle), a few random/optuna trials, two walk-forward windows; the
    data is cut to the last ``SMOKE_BARS`` bars when it is loaded."""
    data = cfg.model_dump()
    data["smoke"] = True
    data["n_trials"] = min(cfg.n_trials, SMOKE_TRIALS)
    space = {}
    for dim in cfg.dimensions:
        if dim.finite:
            points = dim.grid()
            if len(points) > SMOKE_GRID_POINTS:
                points = [points[0], points[len(points) // 2], points[-1]]
            space[dim.name] = points
        else:
            space[dim.name] = dim.describe()
    data["space"] = space
    wf = data["walk_forward"]
    wf["n_splits"] = min(cfg.walk_forward.n_splits, 2)
    wf["test_size"] = min(cfg.walk_forward.test_size or SMOKE_BARS, SMOKE_BARS // 3)
    if wf["train_size"] is not None:
        wf["train_size"] = min(wf["train_size"], SMOKE_BARS // 2)
    return check_config(OptimizeConfig.model_validate(data))


def load_optimize_config(path: str | Path) -> OptimizeConfig:
    """Read, validate and check a config file; errors name the file and the field."""
    return _checked(load_config(path, OptimizeConfig), str(path))


def resolve_config(config: str | Path | dict | OptimizeConfig) -> tuple[OptimizeConfig, str]:
    """A checked config and where it came from (a path, ``<dict>`` or ``<NAME>``)."""
    if isinstance(config, OptimizeConfig):
        return _checked(config, f"<{config.name}>"), f"<{config.name}>"
    if isinstance(config, dict):
        return _checked(validate_config(config, OptimizeConfig, "<dict>"), "<dict>"), "<dict>"
    return load_optimize_config(config), str(config)


def _checked(cfg: OptimizeConfig, source: str) -> OptimizeConfig:
    try:
        return check_config(cfg)
    except BadInputError as exc:
        field, sep, reason = str(exc).partition(": ")
        if not sep or " " in field:
            raise ConfigError(f"{source}: {exc}") from None
        raise ConfigError(f"{source}: field '{field}': {reason}") from None


# ------------------------------------------------- strategy: model (optimize/model.py)
MODEL = "model"
PRUNED = "pruned"
MODEL_PREFIX = "model.params."
SIGNAL_PREFIX = "strategy."
#: OptimizeConfig fields read only by ``strategy: model``.
MODEL_ONLY_FIELDS = ("train", "model", "features", "target", "validation")
#: Model metrics by task (means over the walk-forward folds): the training headline, and
#: for regression also the information coefficient against the target itself.
MODEL_METRICS = {
    "classification": tuple(HEADLINE["classification"]),
    "regression": (*HEADLINE["regression"], "ic_target"),
}
#: model_signal parameters a space may search (its predictions come from the trial).
SIGNAL_PARAMS = ("long_above", "short_below", "long_exit", "short_exit", "min_hold")
_SIGNAL_DEFAULTS = {"short_below": 0.45, "long_exit": 0.5, "short_exit": 0.5}


def _find(path: str) -> Path:
    from cryptoai.paths import repo_root

    for candidate in (Path(path), repo_root() / path):
        if candidate.is_file():
            return candidate
    raise BadInputError(f"training config {path} not found: give a path from the repository root")


def resolve_train_config(cfg: OptimizeConfig):
    """The training config a model search runs: the ``train`` file, with the optimize
    config's ``data`` (when given), inline ``model``/``features``/``target``/``validation``
    and ``seed`` on top; smoke-sized when the search is. Returns ``(TrainConfig, file)``."""
    from pydantic import ValidationError

    from cryptoai.modeling.training import (
        DataConfig,
        TrainConfig,
        load_train_config,
        smoke_config,
    )

    source: str | None = None
    if cfg.train:
        path = _find(cfg.train)
        try:
            base = load_train_config(path).model_dump()
        except CryptoaiError as exc:
            raise BadInputError(f"train: {exc}") from None
        source = str(path)
    else:
        base = {"name": cfg.name}
    if not cfg.train or cfg.data != DataConfig():
        base["data"] = cfg.data.model_dump()
    for key in ("model", "target", "validation"):
        value = getattr(cfg, key)
        if value is not None:
            base[key] = value.model_dump()
    if cfg.features is not None:
        base["features"] = cfg.features
    if "model" not in base:
        raise BadInputError(
            "model: strategy: model needs a training config (train: configs/models/NAME.yaml)"
            " or an inline model: {name: logreg, params: {...}}"
        )
    base["seed"] = cfg.seed
    try:
        tcfg = TrainConfig.model_validate(base)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise BadInputError(f"{where or 'train'}: {err['msg']}") from None
    if cfg.smoke:
        tcfg = smoke_config(tcfg)
    return tcfg, source


def _model_defaults(tcfg) -> tuple[dict[str, Any], list[str]]:
    from cryptoai.modeling.models.registry import model_class

    cls, fixed = model_class(tcfg.model.name, tcfg.task)
    defaults = {k: v for k, v in cls().get_params().items() if k not in fixed}
    return {**defaults, **tcfg.model.params}, sorted(defaults)


def model_dimensions(cfg: OptimizeConfig):
    """The space's dimensions; a name is ``model.params.NAME`` (a parameter of the model)
    or ``strategy.NAME`` (a ``model_signal`` threshold)."""
    from cryptoai.optimize.space import make_dimension
    from cryptoai.strategies.model_signal import ModelSignal

    tcfg, _ = cfg.train_config
    try:
        defaults, valid = _model_defaults(tcfg)
    except CryptoaiError as exc:
        raise BadInputError(f"model: {exc}") from None
    dims = []
    for key, spec in cfg.space.items():
        if key.startswith(MODEL_PREFIX):
            name = key[len(MODEL_PREFIX) :]
            if name not in defaults:
                raise BadInputError(
                    f"space.{key}: model {tcfg.model.name} has no parameter {name!r}: valid"
                    f" parameters are {', '.join(valid)}"
                )
            default = defaults[name]
        elif key.startswith(SIGNAL_PREFIX):
            name = key[len(SIGNAL_PREFIX) :]
            if name not in SIGNAL_PARAMS:
                raise BadInputError(
                    f"space.{key}: model_signal has no tunable parameter {name!r}: use one of"
                    f" {', '.join(SIGNAL_PARAMS)}"
                )
            default = ModelSignal.params.get(name)
            default = _SIGNAL_DEFAULTS.get(name, default) if default is None else default
        else:
            raise BadInputError(
                f"space.{key}: a model search tunes model.params.NAME (the model's"
                " parameters) or strategy.NAME (model_signal thresholds)"
            )
        dims.append(make_dimension(key, spec, default))
    return dims


def split_params(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A trial's parameters as (model parameters, model_signal parameters)."""
    model = {k[len(MODEL_PREFIX) :]: v for k, v in params.items() if k.startswith(MODEL_PREFIX)}
    signal = {k[len(SIGNAL_PREFIX) :]: v for k, v in params.items() if k.startswith(SIGNAL_PREFIX)}
    return model, signal


def is_model_metric(cfg: OptimizeConfig) -> bool:
    return cfg.objective.metric in MODEL_METRICS[cfg.train_config[0].task]


def check_model_config(cfg: OptimizeConfig) -> OptimizeConfig:
    """Everything that can be wrong with a model search, before any data is loaded: the
    training config, the method, the objective, each dimension's name and values."""
    from cryptoai.backtest.metrics import METRIC_NAMES
    from cryptoai.modeling.models import make_model
    from cryptoai.modeling.training import validate_train_config
    from cryptoai.strategies.model_signal import ModelSignal

    if cfg.method != "optuna":
        raise BadInputError(
            f"method: a model search runs optuna with pruning (got {cfg.method}): set method:"
            " optuna (sampler tpe or random)"
        )
    if cfg.constraints:
        raise BadInputError("constraints: a model search takes no constraints: drop them")
    if not cfg.space:
        raise BadInputError(
            "space: the search space is empty: give e.g. model.params.C: {low: 0.01, high: 10}"
        )
    tcfg, source = cfg.train_config
    try:
        validate_train_config(tcfg, source)
    except CryptoaiError as exc:
        raise BadInputError(f"train: {exc}") from None
    metric = cfg.objective.metric
    if metric not in MODEL_METRICS[tcfg.task] and metric not in METRIC_NAMES:
        raise BadInputError(
            f"objective.metric: unknown metric {metric!r}: use a {tcfg.task} metric"
            f" ({', '.join(MODEL_METRICS[tcfg.task])}, the mean over folds) or a backtest"
            f" metric ({', '.join(METRIC_NAMES)})"
        )
    unknown = sorted(set(cfg.params) - set(SIGNAL_PARAMS))
    if unknown:
        raise BadInputError(
            f"params.{unknown[0]}: fixed parameters of a model search are model_signal's"
            f" ({', '.join(SIGNAL_PARAMS)}); model parameters belong in the training config"
        )
    try:
        ModelSignal(**cfg.params)
    except BadInputError as exc:
        raise BadInputError(f"params: {exc}") from None
    dims = cfg.dimensions
    for dim in dims:
        values = list(dim.values) if not dim.is_range else [dim.low, dim.high]
        for value in values:
            model_p, signal_p = split_params({dim.name: value})
            try:
                if model_p:
                    make_model(tcfg.model.name, tcfg.task, **{**tcfg.model.params, **model_p})
                else:
                    ModelSignal(**{**cfg.params, **signal_p})
            except (BadInputError, TypeError, ValueError) as exc:
                raise BadInputError(f"space.{dim.name}: {value!r}: {exc}") from None
    if cfg.sampler == "cmaes":
        try:
            import cmaes  # noqa: F401
        except ImportError:
            raise BadInputError(
                "sampler: cmaes needs the cmaes package: pip install cmaes, or use tpe"
            ) from None
    try:
        cfg.settings()
    except BadInputError as exc:
        raise BadInputError(f"backtest: {exc}") from None
    return cfg
