"""Config-driven training: data -> features -> target -> walk-forward folds -> metrics -> MLflow.

``train("configs/models/xgboost.yaml")`` runs one model through purged walk-forward
validation beside the naive baseline, fits the final model on all labelled bars, and
records everything in an MLflow run: the config, seeds, data fingerprint, per-fold and
aggregate metrics (the baseline's under ``baseline.``), plots, the stitched out-of-sample
predictions (``predictions/oos.parquet``) and the model.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cryptoai.config import load_config, validate_config
from cryptoai.errors import BadInputError, ConfigError, CryptoaiError
from cryptoai.modeling.labels import TargetConfig

log = logging.getLogger(__name__)

DEFAULT_FEATURES = "configs/features/default.yaml"
HEADLINE = {
    "classification": [
        "accuracy",
        "balanced_accuracy",
        "roc_auc",
        "log_loss",
        "f1",
        "ic",
        "hit_rate",
    ],
    "regression": ["mse", "mae", "ic", "hit_rate"],
}


# -------------------------------------------------------------------------- config
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    """Where the candles come from: the raw store (``source`` names its exchange folder;
    ``synthetic`` is generated offline on demand) or a CSV/Parquet ``file``."""

    source: str = "synthetic"
    exchange: str | None = None
    symbol: str = "BTC/USDT"
    timeframe: str = "1h"
    start: str | None = None
    end: str | None = None
    file: str | None = None
    store_root: str = "data/raw"

    @field_validator("start", "end", mode="before")
    @classmethod
    def _dates_as_text(cls, value: Any) -> Any:
        """YAML reads an unquoted 2023-01-01 as a date; keep it as the text it was."""
        return value.isoformat() if isinstance(value, dt.date) else value


class ModelConfig(_Strict):
    """Model name (see ``cryptoai.modeling.models.available_models``), its parameters, and the
    parameters that replace them in smoke mode (e.g. one epoch, tiny networks)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    smoke_params: dict[str, Any] = Field(default_factory=dict)


class ValidationConfig(_Strict):
    """Walk-forward layout; ``purge`` defaults to the target horizon and may not be less."""

    scheme: Literal["expanding", "rolling"] = "expanding"
    n_splits: int = Field(5, ge=1)
    test_size: int | None = Field(None, ge=1)
    train_size: int | None = Field(None, ge=1)
    purge: int | None = Field(None, ge=0)
    embargo: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _train_size_matches_scheme(self) -> ValidationConfig:
        if self.scheme == "rolling" and self.train_size is None:
            raise ValueError("scheme 'rolling' needs train_size (bars in each training window)")
        if self.scheme == "expanding" and self.train_size is not None:
            raise ValueError(
                "train_size applies to scheme 'rolling' only: drop it or switch scheme"
            )
        return self


class TrackingConfig(_Strict):
    """MLflow experiment and the run's template fields (missing ones are filled in)."""

    experiment: str = "cryptoai-models"
    template: dict[str, Any] = Field(default_factory=dict)
    log_model: bool = True
    registered_name: str | None = None


class TrainConfig(_Strict):
    """One training run, as written in ``configs/models/NAME.yaml``."""

    name: str
    data: DataConfig = Field(default_factory=DataConfig)
    features: str = DEFAULT_FEATURES
    target: TargetConfig = Field(default_factory=TargetConfig)
    model: ModelConfig
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    seed: int = 42
    fit_final: bool = True
    output_dir: str = "experiments/runs"
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    smoke: bool = False
    # Smoke runs keep enough hourly bars that the stitched test folds span more than the 30
    # days annualized figures need (docs/metrics.md): a smoke backtest still has a Sharpe.
    smoke_bars: int = Field(1600, ge=50)

    @property
    def task(self) -> str:
        return "regression" if self.target.kind == "forward_return" else "classification"


def load_train_config(path: str | Path) -> TrainConfig:
    """Read and validate a training config (errors name the file and the field)."""
    return load_config(path, TrainConfig)


def smoke_config(cfg: TrainConfig) -> TrainConfig:
    """The same run, shrunk to run in seconds: the last ``smoke_bars`` bars, smoke model
    parameters and at most two folds."""
    from cryptoai.data.timeframes import parse_utc, timeframe_to_timedelta

    data = cfg.model_dump()
    data["smoke"] = True
    d = cfg.data
    if d.start and d.end and not d.file:  # load only what the smoke run keeps
        first = parse_utc(d.end, "data.end") - cfg.smoke_bars * timeframe_to_timedelta(d.timeframe)
        data["data"]["start"] = max(parse_utc(d.start, "data.start"), first).isoformat()
    data["model"]["params"] = {**cfg.model.params, **cfg.model.smoke_params}
    val = data["validation"]
    val["n_splits"] = min(cfg.validation.n_splits, 2)
    val["test_size"] = None
    if val["train_size"] is not None:
        val["train_size"] = min(val["train_size"], cfg.smoke_bars // 3)
    return TrainConfig.model_validate(data)


# -------------------------------------------------------------------------- result
@dataclass
class TrainResult:
    """Everything a training run produced; ``predictions`` is what the backtester reads."""

    config: TrainConfig
    task: str
    folds: pd.DataFrame
    per_fold: list[dict[str, float]]
    aggregate: dict[str, float]
    baseline_per_fold: list[dict[str, float]]
    baseline_aggregate: dict[str, float]
    predictions: pd.DataFrame
    baseline_predictions: pd.DataFrame
    model: Any = None
    run_id: str | None = None
    model_uri: str | None = None
    data_fingerprint: str = ""
    seeds: dict[str, int] = field(default_factory=dict)
    #: The last feature rows, logged with the model as its input example and signature.
    input_example: pd.DataFrame | None = None
    #: The resolved feature spec and the bars before its first complete row: what
    #: ``cryptoai.predict`` needs to rebuild the model's inputs from raw candles.
    feature_spec: Any = None
    warmup_bars: int = 0

    @property
    def signal(self) -> pd.Series:
        """Out-of-sample trading signal per test bar (expected direction or predicted return)."""
        return self.predictions["score"]

    def summary(self, metrics: list[str] | None = None) -> pd.DataFrame:
        """Metrics (rows) per fold, their mean, all test bars pooled, and the baseline's mean
        over the same folds (compare the mean with the baseline, not the pooled column)."""
        names = metrics or [m for m in HEADLINE[self.task] if m in self.aggregate]
        cols = {f"fold {i}": [f.get(m, np.nan) for m in names] for i, f in enumerate(self.per_fold)}
        cols["mean"] = [self.aggregate.get(f"{m}_mean", np.nan) for m in names]
        cols["all"] = [self.aggregate.get(f"{m}_pooled", np.nan) for m in names]
        cols["baseline"] = [self.baseline_aggregate.get(m, np.nan) for m in names]
        return pd.DataFrame(cols, index=pd.Index(names, name="metric"))

    def summary_text(self) -> str:
        """``summary()`` as text, four significant digits (returns' MSE is tiny)."""
        return self.summary().to_string(float_format=lambda v: f"{v:.4g}", na_rep="-")


# ---------------------------------------------------------------------- pipeline
def train(
    config: str | Path | TrainConfig | dict,
    *,
    tracking: bool = True,
    smoke: bool | None = None,
    progress: bool = True,
) -> TrainResult:
    """Run one training config end to end (see the module docstring).

    ``smoke`` overrides the config's own ``smoke`` flag; ``tracking=False`` records nothing.
    """
    from cryptoai.fingerprint import frame_fingerprint
    from cryptoai.seeds import seed_everything

    cfg, config_file = _resolve_config(config)
    use_smoke = cfg.smoke if smoke is None else smoke
    # The whole config (the smoke variant too) is checked before any data is loaded.
    validate_train_config(cfg, config_file)
    cfg = smoke_config(cfg) if use_smoke else cfg.model_copy(update={"smoke": False})
    if use_smoke:
        validate_train_config(cfg, config_file)
    seeds = seed_everything(cfg.seed)
    ohlcv = load_training_data(cfg.data, config_file)
    if cfg.smoke:
        ohlcv = ohlcv.iloc[-cfg.smoke_bars :]
    X, y, forward = build_dataset(ohlcv, cfg, config_file)
    fingerprint = frame_fingerprint(ohlcv)
    spec = _feature_spec(cfg, config_file)
    warmup = int(ohlcv.index.get_loc(X.index[0]))
    seeds["model"] = cfg.seed
    # A fold layout too long for the loaded data fails here, before any run is recorded.
    splits = plan_splits(cfg, len(X))
    model = build_model(cfg)
    if not tracking:
        result = _fit_and_evaluate(cfg, model, X, y, forward, splits, _run_dir(cfg, None), progress)
        result.data_fingerprint, result.seeds = fingerprint, seeds
        result.input_example = input_example(cfg, X)
        result.feature_spec, result.warmup_bars = spec, warmup
        return result

    from cryptoai import tracking as tr

    template = _template(cfg, config_file, ohlcv)
    with tr.tracked_run(
        cfg.tracking.experiment,
        template,
        config=cfg,
        seeds=seeds,
        data_fingerprint=fingerprint,
        tags={"task": cfg.task, "model.name": cfg.model.name, "smoke": str(cfg.smoke).lower()},
    ) as run:
        run_id = run.info.run_id
        result = _fit_and_evaluate(
            cfg, model, X, y, forward, splits, _run_dir(cfg, run_id), progress
        )
        result.data_fingerprint, result.seeds, result.run_id = fingerprint, seeds, run_id
        result.input_example = input_example(cfg, X)
        result.feature_spec, result.warmup_bars = spec, warmup
        _log_result(result, cfg)
    return result


def validate_train_config(cfg: TrainConfig, config_file: str | Path | None = None) -> None:
    """Check what the schema cannot, before any data is fetched or computed.

    The model name and its parameters (the model is built), the feature spec file (read and
    validated), the target and the purge it needs. A bad one is a one-line ConfigError that
    names the config file and the field.
    """
    from cryptoai.features.spec import load_feature_spec
    from cryptoai.modeling.labels import target_horizon

    checks = (
        ("model", lambda: build_model(cfg)),
        (
            "features",
            lambda: load_feature_spec(_find_file(cfg.features, config_file, "features spec")),
        ),
        ("target", lambda: target_horizon(cfg.target)),
        ("validation.purge", lambda: _purge(cfg)),
    )
    where = f"{config_file}: " if config_file else ""
    for name, check in checks:
        try:
            check()
        except ConfigError as exc:
            raise ConfigError(f"{where}field '{name}': {_without_file(exc, config_file)}") from exc
        except CryptoaiError as exc:
            raise ConfigError(f"{where}field '{name}': {exc}") from exc


def _without_file(exc: Exception, config_file: str | Path | None) -> str:
    text = str(exc)
    prefix = f"{config_file}: "
    return text[len(prefix) :] if config_file and text.startswith(prefix) else text


def input_example(cfg: TrainConfig, X: pd.DataFrame) -> pd.DataFrame:
    """The rows logged with a model: the last feature rows, enough for one full window."""
    window = int(cfg.model.params.get("window", 1) or 1)
    return X.tail(window + 15)


def fit_final_model(
    cfg: TrainConfig, config_file: str | Path | None = None, *, work_dir: str | Path
) -> tuple[Any, pd.DataFrame]:
    """The final model ``train`` logs, without the walk-forward: fitted on every labelled bar.

    The experiment runner calls this when notebook 03 saved no model, so that an experiment
    run carries the same model as a ``cryptoai train`` run of the same config and seed.
    Returns the fitted model and its input example.
    """
    from cryptoai.seeds import seed_everything

    validate_train_config(cfg, config_file)
    seed_everything(cfg.seed)
    ohlcv = load_training_data(cfg.data, config_file)
    if cfg.smoke:
        ohlcv = ohlcv.iloc[-cfg.smoke_bars :]
    X, y, _ = build_dataset(ohlcv, cfg, config_file)
    model = _fit_final(cfg, build_model(cfg), X, y, Path(work_dir))
    return model, input_example(cfg, X)


def _fit_final(cfg: TrainConfig, model, X: pd.DataFrame, y: pd.Series, run_dir: Path):
    from sklearn.base import clone

    from cryptoai.modeling.models import is_sequence_model

    final = clone(model)
    if is_sequence_model(cfg.model.name):
        final.set_params(checkpoint_dir=str(run_dir / "checkpoints" / "final"))
    final.fit(X, y)
    return final


def _resolve_config(config) -> tuple[TrainConfig, str]:
    if isinstance(config, TrainConfig):
        return config, f"<{config.name}>"
    if isinstance(config, dict):
        return validate_config(config, TrainConfig), "<dict>"
    return load_train_config(config), str(config)


def load_training_data(
    data: DataConfig, config_file: str | Path | None = None, field: str = "data"
) -> pd.DataFrame:
    """The OHLCV frame a config names; synthetic candles missing from the store are generated.

    A problem with the data (an empty range, a missing series, damaged files) is reported
    against the config file and its ``data`` fields, not the command line's ``--start``."""
    try:
        return _load_training_data(data)
    except ConfigError:
        raise
    except BadInputError as exc:
        text = str(exc)
        for flag in ("start", "end"):
            text = text.replace(f"--{flag}", f"{field}.{flag}")
        where = f"{config_file}: " if config_file else ""
        raise ConfigError(f"{where}field '{field}': {text}") from exc


def _load_training_data(data: DataConfig) -> pd.DataFrame:
    from cryptoai.data.loading import load_frame

    if data.file:
        return load_frame(data.file, data.start, data.end)
    source = data.source.strip().lower()
    exchange = data.exchange or source
    symbol = data.symbol
    if source == "synthetic":
        from cryptoai.data.fetch import fetch_to_store
        from cryptoai.data.sources.synthetic import SyntheticSource
        from cryptoai.data.store import RawStore

        if data.start is None:
            raise ConfigError(
                "data.start is required for the synthetic source: give a first bar date"
            )
        src = SyntheticSource()
        fetch_to_store(
            src,
            RawStore(data.store_root),
            symbol,
            data.timeframe,
            data.start,
            data.end,
            progress=False,
        )
        exchange, symbol = src.exchange, src.resolve_symbol(symbol)
    return load_frame(
        f"{exchange}/{symbol}/{data.timeframe}", data.start, data.end, store_root=data.store_root
    )


def build_dataset(
    ohlcv: pd.DataFrame, cfg: TrainConfig, config_file: str | Path | None = None
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Features, target and realised forward log-return, trimmed to the usable span.

    Leading warm-up rows (incomplete features) and trailing rows without a label are cut;
    rows inside stay, labelled or not, so each row is one bar and ``purge`` counts bars.
    """
    from cryptoai.features.cache import cached_features
    from cryptoai.features.engineering import build_features
    from cryptoai.features.spec import load_feature_spec
    from cryptoai.modeling.labels import forward_log_return, make_target, target_horizon

    spec = load_feature_spec(_find_file(cfg.features, config_file, "features spec"))
    if cfg.data.file is None:
        # store data: cache beside the store (data/raw -> data/processed/features), keyed by
        # spec and data fingerprint, so a changed spec or new candles never reuse stale columns
        cache_root = Path(cfg.data.store_root).parent / "processed" / "features"
        X = cached_features(ohlcv, spec, cfg.data.symbol, cfg.data.timeframe, root=cache_root)
    else:
        X = build_features(ohlcv, spec)
    y = make_target(ohlcv, cfg.target).rename("target")
    forward = forward_log_return(ohlcv["close"], target_horizon(cfg.target)).rename(
        "forward_return"
    )
    complete = np.flatnonzero(np.isfinite(X.to_numpy()).all(axis=1))
    labelled = np.flatnonzero(np.isfinite(y.to_numpy()))
    if complete.size == 0 or labelled.size == 0 or labelled[-1] < complete[0]:
        raise BadInputError(
            f"no bar has both complete features and a label in {len(ohlcv)} bars: "
            "load more history (longer than the longest feature window plus the horizon)"
        )
    span = slice(complete[0], labelled[-1] + 1)
    return X.iloc[span], y.iloc[span], forward.iloc[span]


def _feature_spec(cfg: TrainConfig, config_file: str | Path | None):
    from cryptoai.features.spec import load_feature_spec

    return load_feature_spec(_find_file(cfg.features, config_file, "features spec"))


def _model_card(res: TrainResult, cfg: TrainConfig) -> dict[str, Any] | None:
    """What ``cryptoai.predict`` needs (see ``cryptoai.tracking.registry.model_card``)."""
    from cryptoai.tracking.registry import model_card

    if res.feature_spec is None:
        return None
    return model_card(
        feature_spec=res.feature_spec,
        target=cfg.target,
        task=cfg.task,
        warmup_bars=res.warmup_bars,
        data_fingerprint=res.data_fingerprint,
        classes=getattr(res.model, "classes_", None),
        context_bars=int(getattr(res.model, "context_length", 0) or 0),
        extra={
            "model_name": cfg.model.name,
            "config_name": cfg.name,
            "symbol": cfg.data.symbol,
            "timeframe": cfg.data.timeframe,
        },
    )


def _find_file(path: str, config_file: str | Path | None, what: str) -> Path:
    """A path as given (relative to the working directory) or relative to the config's folder."""
    candidates = [Path(path)]
    if config_file and not str(config_file).startswith("<"):
        base = Path(config_file).resolve().parent
        candidates += [base / path, *(p / path for p in base.parents)]
    for c in candidates:
        if c.is_file():
            return c
    raise ConfigError(f"{what} {path} not found: give a path relative to the repository root")


def _run_dir(cfg: TrainConfig, run_id: str | None) -> Path:
    stamp = run_id or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    return Path(cfg.output_dir) / cfg.name / stamp


def plan_splits(cfg: TrainConfig, n_rows: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The walk-forward splits a config asks for; ``purge`` defaults to the target horizon."""
    from cryptoai.modeling.splits import walk_forward_splits

    v = cfg.validation
    purge = _purge(cfg)
    splits = walk_forward_splits(
        n_rows,
        n_splits=v.n_splits,
        test_size=v.test_size,
        train_size=v.train_size if v.scheme == "rolling" else None,
        purge=purge,
        embargo=v.embargo,
    )
    log.info(
        "%s: %d folds over %d bars (%s, purge %d, embargo %d)",
        cfg.name,
        len(splits),
        n_rows,
        v.scheme,
        purge,
        v.embargo,
    )
    return splits


def _purge(cfg: TrainConfig) -> int:
    """Bars dropped between training and test: the target horizon unless set (never less)."""
    from cryptoai.modeling.labels import target_horizon

    horizon = target_horizon(cfg.target)
    purge = horizon if cfg.validation.purge is None else cfg.validation.purge
    if purge < horizon:
        raise ConfigError(
            f"validation.purge ({purge}) is less than the target horizon ({horizon}): training"
            " labels would overlap test bars; set purge >= horizon or leave it out"
        )
    return purge


def build_model(cfg: TrainConfig):
    """The configured model, seeded with the run's seed unless its params set ``random_state``."""
    from cryptoai.modeling.models import make_model

    model = make_model(cfg.model.name, cfg.task, **cfg.model.params)
    if "random_state" in model.get_params() and "random_state" not in cfg.model.params:
        model.set_params(random_state=cfg.seed)
    return model


def _fit_and_evaluate(
    cfg: TrainConfig,
    model,
    X: pd.DataFrame,
    y: pd.Series,
    forward: pd.Series,
    splits: list[tuple[np.ndarray, np.ndarray]],
    run_dir: Path,
    progress: bool,
) -> TrainResult:
    from cryptoai.modeling.evaluation import fold_scores, paired_differences
    from cryptoai.modeling.models import is_sequence_model, make_model
    from cryptoai.modeling.splits import walk_forward_predict

    task = cfg.task
    fold_params = None
    if is_sequence_model(cfg.model.name):

        def fold_params(k: int) -> dict:
            return {"checkpoint_dir": str(run_dir / "checkpoints" / f"fold{k}")}

    oos, _ = walk_forward_predict(
        model, X, y, splits, fold_params=fold_params, desc=cfg.model.name, progress=progress
    )
    base_oos, _ = walk_forward_predict(
        make_model("baseline", task), X, y, splits, desc="baseline", progress=False
    )
    oos["forward_return"] = forward.reindex(oos.index)
    base_oos["forward_return"] = forward.reindex(base_oos.index)

    # per-fold means (plain names) and paired per-fold differences; pooled as NAME_pooled
    per_fold, aggregate = fold_scores(oos, task, forward, len(splits))
    base_per_fold, base_aggregate = fold_scores(base_oos, task, forward, len(splits))
    aggregate |= paired_differences(per_fold, base_per_fold)

    final = _fit_final(cfg, model, X, y, run_dir) if cfg.fit_final else None
    folds = pd.DataFrame(
        [
            {
                "fold": k,
                "train_start": X.index[tr[0]],
                "train_end": X.index[tr[-1]],
                "test_start": X.index[te[0]],
                "test_end": X.index[te[-1]],
                "n_train": len(tr),
                "n_test": len(te),
            }
            for k, (tr, te) in enumerate(splits)
        ]
    ).set_index("fold")
    result = TrainResult(
        config=cfg,
        task=task,
        folds=folds,
        per_fold=per_fold,
        aggregate=aggregate,
        baseline_per_fold=base_per_fold,
        baseline_aggregate=base_aggregate,
        predictions=oos,
        baseline_predictions=base_oos,
        model=final,
    )
    return result


def _template(cfg: TrainConfig, config_file: str, ohlcv: pd.DataFrame) -> dict[str, Any]:
    d = cfg.data
    span = f"{ohlcv.index[0]:%Y-%m-%d}..{ohlcv.index[-1]:%Y-%m-%d}"
    where = d.file or f"{d.exchange or d.source} {d.symbol} {d.timeframe}"
    t = cfg.target
    defaults = {
        "experiment_id": f"train-{cfg.name}",
        "owner": _user(),
        "date": dt.date.today().isoformat(),
        "objective": f"walk-forward {cfg.model.name} on a {t.kind} target, horizon {t.horizon}",
        "dataset": f"{where} {span}",
        "config_file": config_file,
        "model": f"{cfg.model.name} ({cfg.task}), {t.kind} h={t.horizon}",
        "metrics": HEADLINE[cfg.task],
    }
    return {**defaults, **cfg.tracking.template}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _log_result(res: TrainResult, cfg: TrainConfig) -> None:
    """Metrics, baseline, predictions, plots and model into the active MLflow run."""
    import mlflow

    from cryptoai import tracking as tr

    tr.log_fold_metrics(res.per_fold, res.aggregate)
    tr.log_fold_metrics(res.baseline_per_fold, res.baseline_aggregate, prefix="baseline")
    tr.log_dataframe(res.predictions, "predictions/oos.parquet")
    tr.log_dataframe(res.baseline_predictions, "predictions/baseline_oos.parquet")
    tr.log_dataframe(res.folds, "predictions/folds.csv")
    tr.log_text(res.summary_text(), "summary.txt")
    for name, fig in _plots(res):
        tr.log_figure(fig, f"plots/{name}.png")
    if res.model is not None and cfg.tracking.log_model:
        res.model_uri = tr.log_model(
            res.model,
            "model",
            registered_name=cfg.tracking.registered_name,
            input_example=res.input_example,
            card=_model_card(res, cfg),
        )
        mlflow.set_tag("model.uri", res.model_uri)
        ckpt = getattr(res.model, "checkpoint_path_", None)
        if ckpt:
            mlflow.log_artifact(ckpt, "checkpoints")


def _plots(res: TrainResult) -> list[tuple[str, Any]]:
    from cryptoai.modeling.evaluation import proba_columns
    from cryptoai.tracking.plots import (
        plot_calibration,
        plot_confusion_matrix,
        plot_feature_importance,
    )

    figs = []
    imp = res.model.feature_importances() if res.model is not None else None
    if imp is not None:
        figs.append(("feature_importance", plot_feature_importance(imp.index, imp.to_numpy())))
    if res.task == "classification":
        p = res.predictions.dropna(subset=["pred", "y_true"])
        if len(p):
            figs.append(("confusion_matrix", plot_confusion_matrix(p["y_true"], p["pred"])))
            cols, classes = proba_columns(p)
            if sorted(classes) == [0.0, 1.0] and p["y_true"].nunique() == 2:
                figs.append(("calibration", plot_calibration(p["y_true"], p["proba_1"])))
    return figs
