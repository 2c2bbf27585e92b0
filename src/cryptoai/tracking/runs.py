"""MLflow tracking: where runs go, what every run records, and how to read them back.

Each run records the experiment template, the resolved config, the git commit, the data
fingerprint, the seeds and the package versions, so any number can be traced back to exactly
what produced it. The store is a SQLite file at the repository root unless
``MLFLOW_TRACKING_URI`` points at a team server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import math
import numbers
import platform
import re
import subprocess
import tempfile
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import yaml
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from cryptoai.config import read_yaml
from cryptoai.errors import BadInputError, ConfigError
from cryptoai.paths import repo_root
from cryptoai.tracking._store import (
    _experiment_id,
    active_run_id,
    configure,
    tracking_uri,
)

logger = logging.getLogger(__name__)

# Recorded with every run; the first name found installed is used (xgboost ships as either).
_VERSIONED_PACKAGES: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "pandas": ("pandas",),
    "scikit-learn": ("scikit-learn",),
    "xgboost": ("xgboost", "xgboost-cpu"),
    "torch": ("torch",),
    "pytorch-forecasting": ("pytorch-forecasting",),
    "lightning": ("lightning",),
    "mlflow": ("mlflow",),
    "ccxt": ("ccxt",),
    "ta": ("ta",),
    "cryptoai": ("cryptoai",),
}

_MAX_TAG = 8000
_MAX_PARAM = 6000
_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-. /:]")
_PER_FOLD_KEY = re.compile(r"(^|[._/:-])(fold\d+|by_fold)\.")


# ---------------------------------------------------------------- the experiment template


@dataclass
class RunTemplate:
    """The experiment template every run carries (see ``experiments/template.yaml``)."""

    experiment_id: str
    owner: str
    date: str
    objective: str
    dataset: str
    config_file: str
    model: str
    metrics: list[str] | str
    backtest_summary: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        for name in _REQUIRED_TEXT:
            value = getattr(self, name)
            if name == "date" and isinstance(value, dt.date):
                value = self.date = value.isoformat()[:10]
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(
                    f"template field '{name}' must be non-empty text, got {value!r}; fill it in "
                    "(see experiments/template.yaml)"
                )
            setattr(self, name, value.strip())
        try:
            self.date = dt.date.fromisoformat(self.date).isoformat()
        except ValueError as exc:
            raise ConfigError(
                f"template field 'date' must be a date like 2025-01-31, got {self.date!r}"
            ) from exc
        metrics = self.metrics.split(",") if isinstance(self.metrics, str) else self.metrics
        if not isinstance(metrics, Sequence) or not all(isinstance(m, str) for m in metrics):
            raise ConfigError(
                f"template field 'metrics' must be a list of metric names, got {self.metrics!r}"
            )
        self.metrics = [m.strip() for m in metrics if m.strip()]
        if not self.metrics:
            raise ConfigError("template field 'metrics' is empty; list the metrics you will judge")
        for name in ("backtest_summary", "notes"):
            value = getattr(self, name)
            if value is None:
                setattr(self, name, "")
            elif not isinstance(value, str):
                raise ConfigError(f"template field '{name}' must be text, got {value!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "template") -> RunTemplate:
        """Validate a mapping (e.g. parsed YAML); unknown or missing fields are ConfigErrors."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: expected a mapping of template fields, got {data!r}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names), key=str)
        if unknown:
            raise ConfigError(
                f"{source}: unknown template field(s) {', '.join(map(str, unknown))}; "
                f"allowed: {', '.join(names)}"
            )
        missing = [n for n in (*_REQUIRED_TEXT, "metrics") if n not in data]
        if missing:
            raise ConfigError(f"{source}: missing template field(s) {', '.join(missing)}")
        try:
            return cls(**data)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from exc

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunTemplate:
        """Read and validate a filled-in copy of ``experiments/template.yaml``."""
        return cls.from_dict(read_yaml(path), source=str(path))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_REQUIRED_TEXT = ("experiment_id", "owner", "date", "objective", "dataset", "config_file", "model")
# Inputs are params (fixed once logged); the prose fields filled after the run stay tags only.
_TEMPLATE_PARAMS = _REQUIRED_TEXT


# ---------------------------------------------------------------- run metadata


def git_info(path: str | Path | None = None) -> dict[str, str]:
    """``{"commit": sha, "dirty": "true"/"false"}``; ``"unknown"`` outside a git checkout."""
    cwd = Path(path) if path else repo_root()
    commit = _git(["rev-parse", "HEAD"], cwd)
    if not commit:
        return {"commit": "unknown", "dirty": "unknown"}
    status = _git(["status", "--porcelain"], cwd)
    dirty = "unknown" if status is None else str(bool(status.strip())).lower()
    return {"commit": commit.strip(), "dirty": dirty}


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def package_versions() -> dict[str, str]:
    """Versions of python and the packages that decide a result (read without importing them)."""
    versions = {"python": platform.python_version()}
    for name, dists in _VERSIONED_PACKAGES.items():
        versions[name] = "not installed"
        for dist in dists:
            with contextlib.suppress(metadata.PackageNotFoundError):
                versions[name] = metadata.version(dist)
                break
    return versions


@contextlib.contextmanager
def tracked_run(
    experiment_name: str,
    template: RunTemplate | Mapping[str, Any],
    *,
    config: Mapping[str, Any] | Any,
    seeds: Mapping[str, int],
    data_fingerprint: str,
    run_name: str | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """Start an MLflow run that records everything needed to reproduce it.

    Logs the template (tags ``template.*``, params for the inputs), the resolved config
    (artifact ``config.yaml`` and params ``config.a.b``), git commit and dirty flag, data
    fingerprint, seeds and package versions. An exception ends the run FAILED with the error
    as the ``error`` tag and propagates.
    """
    if not isinstance(template, RunTemplate):
        template = RunTemplate.from_dict(template)
    plain_config = _plain(config)
    if not isinstance(plain_config, dict):
        raise BadInputError(f"config must be a mapping or a pydantic model, got {type(config)}")
    seeds = _check_seeds(seeds)
    if not isinstance(data_fingerprint, str) or not data_fingerprint.strip():
        raise BadInputError("data_fingerprint is empty; pass frame_fingerprint(df) of the data")
    configure()
    if not nested and (active := mlflow.active_run()) is not None:
        raise BadInputError(
            f"run {active.info.run_id} is still active; pass nested=True to log a child run "
            "or leave the outer tracked_run first"
        )
    run = mlflow.start_run(
        experiment_id=_experiment_id(experiment_name),
        run_name=run_name or template.experiment_id,
        nested=nested,
    )
    run_id = run.info.run_id
    try:
        _log_metadata(run_id, template, plain_config, seeds, data_fingerprint.strip(), tags)
        yield run
    except BaseException as exc:
        killed = isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit)
        with contextlib.suppress(Exception):
            client = MlflowClient()
            client.set_tag(run_id, "error", _clip(f"{type(exc).__name__}: {exc}", _MAX_TAG))
            client.log_text(run_id, traceback.format_exc(), "error.txt")
        _end_run(run_id, "KILLED" if killed else "FAILED")
        raise
    else:
        _end_run(run_id, "FINISHED")


def _end_run(run_id: str, status: str) -> None:
    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:
        mlflow.end_run(status)
    else:
        logger.warning("run %s was ended inside its block; marking it %s", run_id, status)
        MlflowClient().set_terminated(run_id, status)


def _log_metadata(
    run_id: str,
    template: RunTemplate,
    config: dict,
    seeds: dict[str, int],
    fingerprint: str,
    extra_tags: Mapping[str, Any] | None,
) -> None:
    fields = template.to_dict()
    fields["metrics"] = ", ".join(template.metrics)
    git = git_info()
    versions = package_versions()
    tags = {f"template.{k}": v for k, v in fields.items()}
    tags |= {
        "mlflow.user": template.owner,
        "mlflow.note.content": f"**Objective:** {template.objective}\n\n{template.notes}".strip(),
        "git.commit": git["commit"],
        "git.dirty": git["dirty"],
        "data.fingerprint": fingerprint,
    }
    if git["commit"] != "unknown":
        tags["mlflow.source.git.commit"] = git["commit"]
    tags |= {f"version.{k}": v for k, v in versions.items()}
    tags |= {str(k): str(v) for k, v in (extra_tags or {}).items()}
    params = {f"template.{k}": fields[k] for k in _TEMPLATE_PARAMS}
    params |= config_params(config)
    params |= {f"seed.{k}": str(v) for k, v in seeds.items()}
    params["data.fingerprint"] = fingerprint
    client = MlflowClient()
    client.log_batch(
        run_id,
        params=[Param(mlflow_key(k), _clip(v, _MAX_PARAM)) for k, v in params.items()],
        tags=[RunTag(mlflow_key(k), _clip(v, _MAX_TAG)) for k, v in tags.items()],
    )
    client.log_text(run_id, yaml.safe_dump(config, sort_keys=False), "config.yaml")
    record = {
        "template": template.to_dict(),
        "git": git,
        "data_fingerprint": fingerprint,
        "seeds": seeds,
        "versions": versions,
    }
    client.log_text(run_id, json.dumps(record, indent=2), "run_metadata.json")


def _check_seeds(seeds: Mapping[str, int]) -> dict[str, int]:
    if not isinstance(seeds, Mapping):
        raise BadInputError(f"seeds must map a name to an integer seed, got {seeds!r}")
    out = {}
    for name, value in seeds.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise BadInputError(f"seed '{name}' must be an integer, got {value!r}")
        out[str(name)] = int(value)
    return out


def _plain(value: Any) -> Any:
    """YAML-safe plain data from configs holding pydantic models, paths or numpy scalars."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", None) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


#: Sections one kind of config names differently from another, logged under one name so that
#: ``params.`config.data.symbol` = ...`` finds `cryptoai train` runs and experiment runs alike.
_SAME_SECTION = {"dataset": "data"}


def config_params(config: Mapping[str, Any] | Any) -> dict[str, str]:
    """A resolved config as MLflow params, one stable key per leaf: ``config.SECTION.FIELD``.

    Every field of a pydantic config is dumped with its default, so two runs of one kind of
    config always carry the same keys; free-form mappings (``model.params``) add one key per
    entry (``config.model.params.C``), and an empty one adds none. Values are JSON except
    text, which stays as written. An experiment's ``dataset`` is logged as ``config.data``,
    the name training configs give it.
    """
    plain = _plain(config)
    if not isinstance(plain, dict):
        raise BadInputError(f"config must be a mapping or a pydantic model, got {type(config)}")
    return _flatten({_SAME_SECTION.get(k, k): v for k, v in plain.items()}, "config")


def _flatten(data: Mapping[str, Any], prefix: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}"
        if isinstance(value, Mapping):
            out |= _flatten(value, name)
        else:
            out[name] = value if isinstance(value, str) else json.dumps(value, default=str)
    return out


def mlflow_key(name: str) -> str:
    """A metric/param/tag key MLflow accepts: other characters become ``_``, 250 at most."""
    return _BAD_KEY_CHARS.sub("_", name)[:250]


def _clip(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def set_backtest_summary(summary: str) -> None:
    """Fill the template's ``backtest_summary`` once the backtest has run (a tag, so editable)."""
    MlflowClient().set_tag(
        active_run_id("set_backtest_summary"), "template.backtest_summary", _clip(summary, _MAX_TAG)
    )


# ---------------------------------------------------------------- metrics and artifacts


def log_fold_metrics(
    per_fold: Sequence[Mapping[str, float]],
    aggregate: Mapping[str, float],
    prefix: str = "",
) -> None:
    """Log walk-forward results in one batch.

    Each fold's metric ``m`` goes to ``by_fold.m`` at ``step=fold`` (a chart across folds) and
    to ``fold{i}.m`` (a column per fold); ``aggregate`` goes to plain ``m``. A ``prefix`` such
    as ``val`` is joined with a dot. NaN and infinite values are skipped, not logged.
    """
    run_id = active_run_id("log_fold_metrics")
    if prefix and not prefix.endswith((".", "_", "/", "-", ":")):
        prefix += "."
    now = int(time.time() * 1000)
    metrics: list[Metric] = []
    skipped = 0
    for fold, values in enumerate(per_fold):
        for name, value in values.items():
            v = _finite(name, value)
            if v is None:
                skipped += 1
                continue
            metrics.append(Metric(mlflow_key(f"{prefix}by_fold.{name}"), v, now, fold))
            metrics.append(Metric(mlflow_key(f"{prefix}fold{fold}.{name}"), v, now, 0))
    for name, value in aggregate.items():
        v = _finite(name, value)
        if v is None:
            skipped += 1
            continue
        metrics.append(Metric(mlflow_key(f"{prefix}{name}"), v, now, 0))
    if skipped:
        logger.info("skipped %d non-finite metric value(s)", skipped)
    if metrics:
        MlflowClient().log_batch(run_id, metrics=metrics)


def _finite(name: str, value: Any) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"metric '{name}' must be a number, got {value!r}") from exc
    return v if math.isfinite(v) else None


def log_figure(fig: Any, artifact_file: str) -> None:
    """Save a matplotlib figure into the active run (e.g. ``plots/importance.png``)."""
    MlflowClient().log_figure(active_run_id("log_figure"), fig, artifact_file)


def log_text(text: str, artifact_file: str) -> None:
    """Save text (a report, a summary) into the active run."""
    MlflowClient().log_text(active_run_id("log_text"), text, artifact_file)


def log_dataframe(df: pd.DataFrame, artifact_file: str) -> None:
    """Save a DataFrame, index included, as ``.parquet`` or ``.csv`` into the active run."""
    run_id = active_run_id("log_dataframe")
    if not isinstance(df, pd.DataFrame):
        raise BadInputError(f"log_dataframe needs a pandas DataFrame, got {type(df).__name__}")
    target = Path(artifact_file)
    suffix = target.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise BadInputError(
            f"log_dataframe cannot write {artifact_file!r}; end the name in .parquet or .csv"
        )
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / target.name
        if suffix == ".parquet":
            df.to_parquet(local)
        else:
            df.to_csv(local)
        parent = target.parent.as_posix()
        MlflowClient().log_artifact(run_id, str(local), None if parent == "." else parent)


# ---------------------------------------------------------------- reading runs back


def runs_table(experiment_name: str) -> pd.DataFrame:
    """One row per run, newest first: ids, status, template fields, git, data and key metrics.

    Key metrics are the plain (aggregate) ones; per-fold series stay in MLflow.
    """
    configure()
    experiment = MlflowClient().get_experiment_by_name(experiment_name)
    if experiment is None:
        raise BadInputError(
            f"no MLflow experiment named '{experiment_name}' at {tracking_uri()}; "
            "check the name or MLFLOW_TRACKING_URI"
        )
    fields = [f.name for f in dataclasses.fields(RunTemplate)]
    base = ["run_id", "run_name", "status", "start_time", "end_time", *fields]
    base += ["git_commit", "data_fingerprint"]
    runs = mlflow.search_runs(
        experiment_ids=[experiment.experiment_id], order_by=["attributes.start_time DESC"]
    )
    if runs.empty:
        return pd.DataFrame(columns=base)

    def column(name: str) -> pd.Series:
        return runs[name] if name in runs else pd.Series(None, index=runs.index, dtype=object)

    out = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "run_name": column("tags.mlflow.runName"),
            "status": runs["status"],
            "start_time": runs["start_time"],
            "end_time": runs["end_time"],
            **{f: column(f"tags.template.{f}") for f in fields},
            "git_commit": column("tags.git.commit"),
            "data_fingerprint": column("tags.data.fingerprint"),
        }
    )
    metrics = {}
    for col in runs.columns:
        if col.startswith("metrics."):
            key = col[len("metrics.") :]
            if not _PER_FOLD_KEY.search(key):
                metrics[key if key not in out else f"metric.{key}"] = runs[col]
    # one concat, not one insert per metric (hundreds of columns would fragment the frame)
    return pd.concat([out, pd.DataFrame(metrics, index=runs.index)], axis=1).reset_index(drop=True)
