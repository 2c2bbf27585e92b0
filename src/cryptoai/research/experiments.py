"""Experiment batches: each config's notebooks run through papermill, logged to MLflow.

Every config of a batch is validated whole before anything runs. Then, for every config, the
runner makes sure the data is in the store, claims a folder
``experiments/experiment_YYYYMMDD_NAME/`` (``_2``, ``_3``... when that day's folder exists, so
an earlier run is never overwritten), saves the resolved ``config.yaml``, executes the notebooks
into it and logs ONE MLflow run with each notebook as a nested run. A failing notebook fails
its config (the remaining notebooks are skipped) but never the batch.

The parent run's metrics are the headline ones first (``backtest.sharpe``,
``model.balanced_accuracy``... see :data:`HEADLINE_METRICS`), then every other number a
notebook saved as ``nb.NOTEBOOK.KEY``, which sorts after them. When the model notebook ran,
the config's final model (fitted on every labelled bar, as ``cryptoai train`` fits it) is
logged to the parent run as ``model``.

A config copied without a new ``name`` or ``experiment_id`` is warned about before it runs:
its runs would otherwise be told apart from the original's only by a folder suffix.
"""

from __future__ import annotations

import datetime as dt
import glob
import io
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptoai.config import dump_config
from cryptoai.errors import BadInputError, ConfigError, CryptoaiError
from cryptoai.research.experiment_config import ExperimentConfig, load_experiment
from cryptoai.research.notebook import METRICS_FILE
from cryptoai.tracking.runs import mlflow_key

__all__ = [
    "DIAGNOSTICS_PREFIX",
    "HEADLINE_METRICS",
    "METRICS_FILE",
    "ExperimentResult",
    "NotebookError",
    "NotebookResult",
    "claim_folder",
    "expand_config_paths",
    "flatten_metrics",
    "parent_metric_names",
    "results_message",
    "run_batch",
    "today",
]

log = logging.getLogger(__name__)

REPORT_FILE = "backtest_report.md"
MODEL_NOTEBOOK = "03-model-prototyping"
_MODEL_KEYS = ("accuracy", "balanced_accuracy", "roc_auc", "log_loss", "f1", "ic", "ic_mean",
               "ic_std", "hit_rate", "mse", "mae", "delta_balanced_accuracy_mean",
               "delta_roc_auc_mean", "delta_ic_mean", "delta_mse_mean")  # fmt: skip
_BACKTEST_KEYS = ("sharpe", "sortino", "total_return", "cagr", "max_drawdown", "calmar",
                  "n_trades", "win_rate", "excess_return", "excess_sharpe", "benchmark.sharpe",
                  "benchmark.total_return", "benchmark.max_drawdown")  # fmt: skip
#: Headline metrics of the parent run: a notebook's ``metrics.json`` key -> the MLflow name.
#: ``backtest.*`` and ``model.*`` sort before the diagnostics' ``nb.*`` in MLflow's columns.
HEADLINE_METRICS: dict[str, dict[str, str]] = {
    MODEL_NOTEBOOK: {k: f"model.{k}" for k in _MODEL_KEYS}
    | {f"baseline.{k}": f"model.baseline.{k}" for k in _MODEL_KEYS},
    "04-backtesting": {k: f"backtest.{k}" for k in _BACKTEST_KEYS},
}
#: Every other number a notebook saved is logged as ``nb.NOTEBOOK.KEY``.
DIAGNOSTICS_PREFIX = "nb"
#: The template's ``metrics``: what an experiment is judged by, per task.
_JUDGED = {
    "classification": ["balanced_accuracy", "log_loss", "ic"],
    "regression": ["mse", "ic"],
}
_MLFLOW_BATCH = 1000
_CLAIM_LOCK = threading.Lock()
#: Seconds between two log lines of one progress bar redrawn in place (``\r``).
PROGRESS_LOG_EVERY = 10.0


def today() -> dt.date:
    """The date that names the folders and fills the template's ``date`` (tests replace it)."""
    return dt.date.today()


class NotebookError(CryptoaiError):
    """A notebook raised: names the notebook, the cell and the exception."""


@dataclass
class NotebookResult:
    """One executed notebook: its nested MLflow run and the metrics it saved."""

    notebook: str
    status: str  # FINISHED, FAILED or SKIPPED (after an earlier notebook failed)
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0


@dataclass
class ExperimentResult:
    """One config's run: folder, parent MLflow run, merged metrics and each notebook."""

    config_file: str
    name: str
    study: str
    folder: Path
    status: str  # FINISHED or FAILED
    run_id: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    notebooks: list[NotebookResult] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "FINISHED"


@dataclass(frozen=True)
class _Data:
    fingerprint: str
    span: str
    error: CryptoaiError | None = None


@dataclass(frozen=True)
class _Planned:
    config_file: Path
    config: ExperimentConfig
    folder: Path


# ---------------------------------------------------------------- planning


def expand_config_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Paths as given; a quoted glob such as ``configs/experiments/*.yaml`` is expanded."""
    out: list[Path] = []
    for p in paths:
        text = str(p)
        if not Path(text).exists() and any(c in text for c in "*?["):
            matches = sorted(glob.glob(text))
            if not matches:
                raise BadInputError(f"no config matches {text}: check the pattern")
            out += [Path(m) for m in matches]
        else:
            out.append(Path(text))
    if not out:
        raise BadInputError("no experiment config given: pass e.g. configs/experiments/*.yaml")
    return out


def claim_folder(root: Path, name: str, day: dt.date) -> Path:
    """Create and return ``root/experiment_YYYYMMDD_NAME`` or, if taken, the first free ``_N``."""
    root.mkdir(parents=True, exist_ok=True)
    base = f"experiment_{day:%Y%m%d}_{name}"
    with _CLAIM_LOCK:
        for n in range(1, 10_000):
            folder = root / (base if n == 1 else f"{base}_{n}")
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            return folder
    raise BadInputError(f"too many runs of {name} today in {root}: clean up old folders")


def _repo_path(path: str | Path, root: Path) -> Path:
    """A relative path as given when it exists from here, else relative to the repository."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return root / p


def _preflight(path: Path, cfg: ExperimentConfig, notebooks_dir: Path, root: Path) -> None:
    """The whole config, checked before any data is fetched: one ConfigError naming the file
    and the field for the notebooks, the model and its parameters (smoke ones too), the
    feature spec, the target, the strategy and its parameters, and the execution settings."""
    from cryptoai.modeling.training import validate_train_config
    from cryptoai.strategies.registry import get_strategy

    missing = [n for n in cfg.notebooks if not (notebooks_dir / f"{n}.ipynb").is_file()]
    if missing:
        raise ConfigError(
            f"{path}: field 'notebooks': {', '.join(missing)} not found in {notebooks_dir}: "
            "check the names (without .ipynb)"
        )
    features = str(_repo_path(cfg.features, root))
    for smoke in (False, True):
        train_cfg = cfg.train_config(smoke).model_copy(update={"features": features})
        validate_train_config(train_cfg, path)
    checks = [
        ("backtest.strategy", lambda: get_strategy(cfg.backtest.strategy)),
        (
            "backtest.params",
            lambda: get_strategy(cfg.backtest.strategy).resolve_params(cfg.backtest.params),
        ),
        ("backtest.execution", cfg.backtest.execution_settings),
    ]
    for field_name, check in checks:
        try:
            check()
        except CryptoaiError as exc:
            raise ConfigError(f"{path}: field '{field_name}': {exc}") from exc


def _config_file(path: Path, root: Path) -> str:
    """A config's path as runs record it: relative to the repository when inside it."""
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _warn_about_copies(configs: Sequence[tuple[Path, ExperimentConfig]], root: Path) -> None:
    """Warn when a config shares its name or experiment_id with another config file.

    A copied config whose ``name`` and ``experiment_id`` were not changed would run into
    ``experiment_YYYYMMDD_NAME_2/`` under the same ids as the original, and the two would be
    told apart by nothing else. Other configs of the batch and past runs of the study count.
    """
    owners: dict[tuple[str, str, str], str] = {}  # (study, field, value) -> config file
    for study in sorted({c.study for _, c in configs}):
        for field_name, value, config_file in _past_experiments(study):
            owners.setdefault((study, field_name, value), config_file)
    for path, cfg in configs:
        mine = _config_file(path, root)
        clashes: dict[str, list[str]] = {}
        for field_name, value in (("name", cfg.name), ("experiment_id", cfg.experiment_id)):
            other = owners.setdefault((cfg.study, field_name, value), mine)
            if other != mine:
                clashes.setdefault(other, []).append(f"{field_name} {value!r}")
        for other, fields in clashes.items():
            log.warning(
                "%s has the %s of %s (study %s): runs would be told apart only by a folder "
                "suffix; give the copy its own name and experiment_id",
                mine,
                " and ".join(fields),
                other,
                cfg.study,
            )


def _past_experiments(study: str) -> list[tuple[str, str, str]]:
    """(field, value, config file) of the study's past experiment runs, newest first."""
    from mlflow.tracking import MlflowClient

    from cryptoai.tracking import configure

    configure()
    client = MlflowClient()
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        return []
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string="tags.`cryptoai.kind` = 'experiment'",
        order_by=["attributes.start_time DESC"],
        max_results=1000,
    )
    out = []
    for run in runs:
        tags = run.data.tags
        config_file = tags.get("template.config_file")
        if not config_file:
            continue
        for field_name, tag in (
            ("name", "experiment.name"),
            ("experiment_id", "template.experiment_id"),
        ):
            if tags.get(tag):
                out.append((field_name, tags[tag], config_file))
    return out


def _plan(
    paths: Sequence[Path], root: Path, notebooks_dir: Path, experiments_root: Path, day: dt.date
) -> list[_Planned]:
    """Validate every config before anything runs, then claim one folder each, in order."""
    configs = []
    for path in paths:
        cfg = load_experiment(path)
        _preflight(path, cfg, notebooks_dir, root)
        if cfg.date is None:
            cfg = cfg.model_copy(update={"date": day})
        configs.append((path, cfg))
    _warn_about_copies(configs, root)
    return [_Planned(p, c, claim_folder(experiments_root, c.name, day)) for p, c in configs]


# ---------------------------------------------------------------- metrics


def flatten_metrics(data: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a (nested) metrics mapping as ``a.b`` keys MLflow accepts.

    Nulls, NaN, infinities, booleans and text are left out: they are not metrics.
    """
    out: dict[str, float] = {}
    for key, value in data.items():
        name = mlflow_key(f"{prefix}{key}")
        if isinstance(value, Mapping):
            out |= flatten_metrics(value, f"{name}.")
        elif (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        ):
            out[name] = float(value)
    return out


def _read_metrics(path: Path) -> dict[str, float]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path} is not valid JSON ({exc}): fix what writes it") from exc
    return flatten_metrics(data) if isinstance(data, dict) else {}


def parent_metric_names(notebook: str, metrics: Mapping[str, float]) -> dict[str, float]:
    """A notebook's (flattened) metrics under the parent run's names.

    Keys listed in :data:`HEADLINE_METRICS` take their headline name (``sharpe`` of
    04-backtesting is ``backtest.sharpe``); every other key is a diagnostic,
    ``nb.NOTEBOOK.KEY`` (``nb.01-data-exploration.BTC-USDT.gaps``).
    """
    headline = HEADLINE_METRICS.get(notebook, {})
    return {
        headline.get(key, f"{DIAGNOSTICS_PREFIX}.{notebook}.{key}"): value
        for key, value in metrics.items()
    }


def _log_metrics(run_id: str, metrics: Mapping[str, float]) -> None:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    now = int(time.time() * 1000)
    items = [Metric(k, v, now, 0) for k, v in metrics.items()]
    client = MlflowClient()
    for i in range(0, len(items), _MLFLOW_BATCH):
        client.log_batch(run_id, metrics=items[i : i + _MLFLOW_BATCH])


def _backtest_summary(m: Mapping[str, float], cfg: ExperimentConfig) -> str:
    """Headline numbers against buy-and-hold, for the template's ``backtest_summary``."""
    if "backtest.sharpe" not in m:
        return ""
    parts = []
    for key, label, fmt in (
        ("sharpe", "Sharpe", "{:.2f}"),
        ("total_return", "total return", "{:.1%}"),
        ("max_drawdown", "max drawdown", "{:.1%}"),
    ):
        if f"backtest.{key}" in m:
            text = f"{label} {fmt.format(m[f'backtest.{key}'])}"
            if f"backtest.benchmark.{key}" in m:
                text += f" vs {fmt.format(m[f'backtest.benchmark.{key}'])} buy-and-hold"
            parts.append(text)
    b = cfg.backtest
    costs = f"{b.fee_bps:g} bps fees + {b.slippage_bps:g} bps slippage"
    return f"{b.strategy}: {'; '.join(parts)}; net of {costs}"


# ---------------------------------------------------------------- running


def _notebook_error(notebook: str, exc: Exception, executed: Path) -> NotebookError:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        evalue = " ".join(str(exc.evalue).split())
        where = f"cell {exc.cell_index} (In [{exc.exec_count}])"
        return NotebookError(
            f"notebook {notebook} failed in {where}: {exc.ename}: {evalue}; "
            f"see the traceback in {executed}"
        )
    return NotebookError(f"notebook {notebook} could not run: {type(exc).__name__}: {exc}")


KERNEL_START_TRIES = 3


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_PROGRESS = re.compile(r"(\d{1,3})%\|")  # tqdm's "  40%|####      | 2/5 ..."


class _KernelLog(io.TextIOBase):
    """A kernel's stdout or stderr as lines of this module's log, prefixed with the notebook.

    A progress bar redrawn in place (``\r``) is logged at most every
    :data:`PROGRESS_LOG_EVERY` seconds, and its final state always; lines a notebook logged at
    WARNING or above keep that level.
    """

    def __init__(self, prefix: str, level: int) -> None:
        super().__init__()
        self.prefix, self.level = prefix, level
        self._pending = ""
        self._last = -math.inf

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._emit(line.rsplit("\r", 1)[-1])
        if "\r" in self._pending:  # a redrawn bar: its latest complete state, now and then
            *states, self._pending = self._pending.split("\r")
            if states and time.monotonic() - self._last >= PROGRESS_LOG_EVERY:
                self._emit(states[-1])
        return len(text)

    def close(self) -> None:
        if self._pending.strip():
            self._emit(self._pending.rsplit("\r", 1)[-1])
        self._pending = ""
        super().close()

    def _emit(self, line: str) -> None:
        line = _ANSI_ESCAPE.sub("", line).rstrip()  # nested bars move the cursor: not for logs
        if not line.strip():
            return
        bar = _PROGRESS.search(line)
        if bar is not None:  # a progress bar printed line by line: start-less, now and then
            done = bar.group(1) == "100"
            if bar.group(1) == "0" or (
                not done and time.monotonic() - self._last < PROGRESS_LOG_EVERY
            ):
                return
        self._last = time.monotonic()
        level = self.level
        if line.startswith(("WARNING", "ERROR", "CRITICAL")):
            level = max(level, logging.WARNING)
        log.log(level, "%s: %s", self.prefix, line)


def _kernel_config(socket_dir: str) -> Any:
    """Kernels talk to the runner over local IPC sockets in ``socket_dir``, not TCP ports.

    Nothing else on the machine can connect to them (TCP kernels warn about running without
    encryption), and kernels started at once no longer race for the same free ports.
    """
    from traitlets.config import Config

    return Config({"KernelManager": {"transport": "ipc", "ip": f"{socket_dir}/kernel"}})


def _execute(
    source: Path,
    executed: Path,
    parameters: dict[str, Any],
    kernel_name: str,
    cwd: Path,
    label: str = "",
) -> None:
    import papermill as pm

    from cryptoai._progress import TEXT_PROGRESS_ENV

    # Kernels inherit this: their progress bars write text to stderr, which the log reads.
    os.environ.setdefault(TEXT_PROGRESS_ENV, "1")
    label = label or source.stem
    out = _KernelLog(label, logging.DEBUG)  # what cells print: with -v
    err = _KernelLog(label, logging.INFO)  # progress bars and warnings of long steps
    # The kernel starts in ``cwd`` (papermill's own ``cwd=`` would chdir this whole process,
    # which parallel jobs must not do).
    for attempt in range(KERNEL_START_TRIES):
        try:
            with tempfile.TemporaryDirectory(prefix="cryptoai-kernel-") as sockets:
                pm.execute_notebook(
                    str(source),
                    str(executed),
                    parameters=parameters,
                    kernel_name=kernel_name,
                    progress_bar=False,
                    log_output=False,
                    stdout_file=out,
                    stderr_file=err,
                    resources={"metadata": {"path": str(cwd)}},
                    config=_kernel_config(sockets),
                )
            out.close()
            err.close()
            return
        except RuntimeError as exc:
            # Kernels started at the same moment can race for the same free ports and die
            # before running any cell; nothing was executed, so starting again is safe.
            if (
                "before replying to kernel_info" not in str(exc)
                or attempt + 1 == KERNEL_START_TRIES
            ):
                raise
            log.warning("%s: kernel died while starting (%s); starting it again", label, exc)


def _run_notebook(
    plan: _Planned,
    notebook: str,
    run_kwargs: dict[str, Any],
    parameters: dict[str, Any],
    notebooks_dir: Path,
    kernel_name: str,
) -> NotebookResult:
    """Execute one notebook inside its nested run; its outputs become the run's contents."""
    from mlflow.tracking import MlflowClient

    from cryptoai.tracking.runs import tracked_run

    folder = plan.folder
    executed = folder / f"{notebook}.ipynb"
    outputs = folder / notebook
    result = NotebookResult(notebook, "FAILED")
    started = time.perf_counter()
    log.info("%s: %s started", plan.config.name, notebook)
    try:
        with tracked_run(
            **run_kwargs,
            run_name=notebook,
            nested=True,
            tags={
                "cryptoai.kind": "notebook",
                "notebook": notebook,
                "smoke": str(parameters["smoke"]).lower(),
            },
        ) as run:
            result.run_id = run_id = run.info.run_id
            error: NotebookError | None = None
            try:
                _execute(
                    notebooks_dir / f"{notebook}.ipynb",
                    executed,
                    {**plan.config.notebook_params.get(notebook, {}), **parameters},
                    kernel_name,
                    notebooks_dir,
                    label=f"{plan.config.name} {notebook}",
                )
            except Exception as exc:  # papermill raises many kinds; each fails this notebook
                error = _notebook_error(notebook, exc, executed)
            result.seconds = time.perf_counter() - started
            client = MlflowClient()
            client.set_tag(run_id, "duration_s", f"{result.seconds:.1f}")
            if executed.is_file():
                client.log_artifact(run_id, str(executed))
            if outputs.is_dir():
                client.log_artifacts(run_id, str(outputs), notebook)
            result.metrics = _read_metrics(outputs / METRICS_FILE)
            if result.metrics:
                _log_metrics(run_id, result.metrics)
            if error is not None:
                raise error
    except NotebookError as exc:
        result.error = str(exc)
        log.error("%s: %s", plan.config.name, exc)
        return result
    result.status = "FINISHED"
    log.info("%s: %s done in %.1f s", plan.config.name, notebook, result.seconds)
    return result


def _copy_report(folder: Path, notebooks: Sequence[str]) -> list[Path]:
    """The backtest report and its plots at the folder's top level, links still working."""
    for notebook in notebooks:
        src = folder / notebook / REPORT_FILE
        if not src.is_file():
            continue
        copied = [
            Path(shutil.copy2(png, folder / png.name)) for png in sorted(src.parent.glob("*.png"))
        ]
        text = _relink(src.read_text(encoding="utf-8"), src.parent, folder)
        (folder / REPORT_FILE).write_text(text, encoding="utf-8")
        return [folder / REPORT_FILE, *copied]
    return []


def _relink(markdown: str, old_dir: Path, new_dir: Path) -> str:
    """Relative Markdown links of a file moved from ``old_dir`` to ``new_dir``, fixed."""

    def relink(match: re.Match[str]) -> str:
        target = match.group(2)
        if "://" in target or target.startswith("#") or Path(target).is_absolute():
            return match.group(0)
        if (new_dir / target).exists():  # copied along (the plots)
            return match.group(0)
        moved = os.path.relpath((old_dir / target).resolve(), new_dir.resolve())
        return f"{match.group(1)}({Path(moved).as_posix()})"

    return re.sub(r"(\]\s*)\(([^)\s]+)\)", relink, markdown)


def _template(plan: _Planned, root: Path, span: str) -> dict[str, Any]:
    cfg = plan.config
    d = cfg.dataset
    train = cfg.train_config()
    where = d.file or f"{d.exchange or d.source} {d.symbol} {d.timeframe}"
    config_file = _config_file(plan.config_file, root)
    judged = [f"model.{m}" for m in _JUDGED[train.task]]
    judged += ["backtest.sharpe", "backtest.max_drawdown", "backtest.total_return"]
    return {
        "experiment_id": cfg.experiment_id,
        "owner": cfg.owner,
        "date": cfg.date,
        "objective": cfg.objective,
        "dataset": f"{where} {span}",
        "config_file": config_file,
        "model": f"{cfg.model.name} ({train.task}), {cfg.target.kind} h={cfg.target.horizon}",
        "metrics": judged,
        "notes": cfg.notes,
    }


def _load_data(cfg: ExperimentConfig, root: Path) -> tuple[str, str]:
    """Make sure the candles are there (synthetic ones are generated); fingerprint and span."""
    from cryptoai.fingerprint import frame_fingerprint
    from cryptoai.modeling.training import load_training_data

    d = cfg.dataset
    frame = load_training_data(_dataset_here(cfg, root))
    if frame.empty:
        raise BadInputError(
            f"no candles for {d.symbol} {d.timeframe} {d.start}..{d.end}: fetch them first "
            "(cryptoai fetch) or fix the dataset period"
        )
    span = f"{frame.index[0]:%Y-%m-%d}..{frame.index[-1]:%Y-%m-%d}"
    return frame_fingerprint(frame), span


def _dataset_here(cfg: ExperimentConfig, root: Path):
    """The config's dataset with its store and file found from here or the repository."""
    d = cfg.dataset
    update: dict[str, Any] = {"store_root": str(_repo_path(d.store_root, root))}
    if d.file:
        update["file"] = str(_repo_path(d.file, root))
    return d.model_copy(update=update)


def _log_final_model(plan: _Planned, smoke: bool, root: Path) -> str:
    """Fit the config's final model on every labelled bar and log it to the active run.

    Notebook 03 judges models out of sample and keeps none; this is the refit ``cryptoai
    train`` logs for the same config and seed (smoke-sized in smoke mode).
    """
    import mlflow

    from cryptoai.modeling.training import fit_final_model
    from cryptoai.tracking.registry import log_model

    cfg = plan.config
    here = cfg.model_copy(
        update={
            "dataset": _dataset_here(cfg, root),
            "features": str(_repo_path(cfg.features, root)),
        }
    )
    train_cfg = here.train_config(smoke)  # smoke-sized after the paths are resolved
    started = time.perf_counter()
    log.info("%s: fitting the final %s model on every labelled bar", cfg.name, cfg.model.name)
    with tempfile.TemporaryDirectory(prefix="cryptoai-final-") as work:
        model, example = fit_final_model(train_cfg, plan.config_file, work_dir=work)
        uri = log_model(model, "model", input_example=example)
    mlflow.set_tag("model.uri", uri)
    log.info("%s: final model logged in %.1f s", cfg.name, time.perf_counter() - started)
    return uri


def _prepare_data(plans: Sequence[_Planned], root: Path) -> list[_Data]:
    """Each config's data, fetched one dataset at a time (never two writers on one store)."""
    done: dict[str, _Data] = {}
    out = []
    for plan in plans:
        key = plan.config.dataset.model_dump_json()
        if key not in done:
            try:
                done[key] = _Data(*_load_data(plan.config, root))
            except CryptoaiError as exc:
                d = plan.config.dataset
                done[key] = _Data("unavailable", f"{d.start}..{d.end}", exc)
        out.append(done[key])
    return out


def _run_one(
    plan: _Planned, data: _Data, *, smoke: bool, notebooks_dir: Path, kernel_name: str, root: Path
) -> ExperimentResult:
    """Run one planned config; every failure ends up in the result, never raised."""
    from cryptoai.tracking.runs import set_backtest_summary, tracked_run

    cfg, folder = plan.config, plan.folder
    result = ExperimentResult(str(plan.config_file), cfg.name, cfg.study, folder, "FAILED")
    started = time.perf_counter()
    config_path = folder / "config.yaml"
    config_path.write_text(dump_config(cfg))
    run_kwargs = {
        "experiment_name": cfg.study,
        "template": _template(plan, root, data.span),
        "config": cfg,
        "seeds": {"global": cfg.seed},
        "data_fingerprint": data.fingerprint,
    }
    parameters = {
        "config_path": str(config_path.resolve()),
        "seed": cfg.seed,
        "smoke": smoke,
        "output_dir": str(folder.resolve()),
    }
    try:
        with tracked_run(
            **run_kwargs,
            run_name=f"{cfg.experiment_id} {cfg.name}",
            tags={
                "cryptoai.kind": "experiment",
                "experiment.name": cfg.name,
                "experiment.folder": str(folder),
                "smoke": str(smoke).lower(),
            },
        ) as run:
            result.run_id = run.info.run_id
            if data.error is not None:
                raise data.error
            failed: NotebookResult | None = None
            for notebook in cfg.notebooks:
                if failed is not None:
                    result.notebooks.append(NotebookResult(notebook, "SKIPPED"))
                    continue
                nb = _run_notebook(
                    plan, notebook, run_kwargs, parameters, notebooks_dir, kernel_name
                )
                result.notebooks.append(nb)
                if nb.status != "FINISHED":
                    failed = nb
            if failed is None and MODEL_NOTEBOOK in cfg.notebooks:
                _log_final_model(plan, smoke, root)
            _finish(result, cfg, folder)
            summary = _backtest_summary(result.metrics, cfg)
            if summary:
                set_backtest_summary(summary)
            if failed is not None:
                raise NotebookError(failed.error)
    except CryptoaiError as exc:
        result.error = str(exc)
    except Exception as exc:  # a bug must not stop the other configs of the batch
        log.exception("%s: unexpected error", cfg.name)
        result.error = f"{type(exc).__name__}: {exc}"
    else:
        result.status = "FINISHED"
    result.seconds = time.perf_counter() - started
    log.info("%s: %s in %.1f s (%s)", cfg.name, result.status, result.seconds, folder)
    return result


def _finish(result: ExperimentResult, cfg: ExperimentConfig, folder: Path) -> None:
    """Merged metrics.json, the report at the top level, and both logged to the parent run."""
    from mlflow.tracking import MlflowClient

    merged: dict[str, float] = {}
    for nb in result.notebooks:
        merged |= parent_metric_names(nb.notebook, nb.metrics)
    result.metrics = merged
    metrics_path = folder / METRICS_FILE
    metrics_path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    files = [metrics_path, *_copy_report(folder, cfg.notebooks)]
    client = MlflowClient()
    if merged:
        _log_metrics(result.run_id, merged)
    for path in files:
        client.log_artifact(result.run_id, str(path))


def run_batch(
    config_files: Iterable[str | Path],
    *,
    smoke: bool = False,
    jobs: int = 1,
    experiments_root: str | Path | None = None,
    notebooks_dir: str | Path | None = None,
    kernel_name: str = "python3",
    progress: bool = True,
    day: dt.date | None = None,
) -> list[ExperimentResult]:
    """Run experiment configs (``jobs`` at a time); results in the order of the configs.

    Every config is validated before anything runs: a broken one stops the batch with a
    ConfigError naming the file and field. Failures while running are recorded in the results
    (and MLflow), and the other configs go on. ``day`` names the folders and fills the
    template's date where a config has none (default: :func:`today`, read once).
    """
    from cryptoai._progress import tqdm
    from cryptoai.tracking.runs import repo_root

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise BadInputError(f"jobs must be a whole number >= 1, got {jobs!r}")
    root = repo_root()
    nb_dir = _repo_path(notebooks_dir or "notebooks", root).resolve()
    exp_root = _repo_path(experiments_root or "experiments", root).resolve()
    if not nb_dir.is_dir():
        raise BadInputError(f"notebooks folder {nb_dir} not found: pass --notebooks-dir")
    day = day or today()
    plans = _plan(expand_config_paths(config_files), root, nb_dir, exp_root, day)
    log.info(
        "running %d experiment(s)%s with %d job(s) into %s",
        len(plans),
        " in smoke mode" if smoke else "",
        jobs,
        exp_root,
    )

    datas = _prepare_data(plans, root)

    def one(i: int) -> ExperimentResult:
        return _run_one(
            plans[i],
            datas[i],
            smoke=smoke,
            notebooks_dir=nb_dir,
            kernel_name=kernel_name,
            root=root,
        )

    bar = tqdm(
        total=len(plans),
        desc="experiments",
        unit="config",
        disable=not progress or not sys.stderr.isatty(),
    )
    try:
        if jobs == 1 or len(plans) == 1:
            results = []
            for i in range(len(plans)):
                results.append(one(i))
                bar.update()
        else:
            # Threads suffice: each notebook runs in its own kernel process.
            pool = ThreadPoolExecutor(max_workers=min(jobs, len(plans)))
            try:
                futures = [pool.submit(one, i) for i in range(len(plans))]
                for future in futures:
                    future.add_done_callback(lambda _: bar.update())
                results = [f.result() for f in futures]
            finally:  # on Ctrl-C, start nothing new; running kernels are interrupted too
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        bar.close()
    return results


def results_message(results: Sequence[ExperimentResult]) -> str:
    """What ran, where its files are, and how to look at them (printed at the end)."""
    from cryptoai.tracking.runs import repo_root, tracking_uri

    root = repo_root()
    failed = [r for r in results if not r.ok]
    lines = [
        f"{len(results)} experiment(s): {len(results) - len(failed)} finished, {len(failed)} failed"
    ]
    for r in results:
        try:
            where = r.folder.resolve().relative_to(root).as_posix()
        except ValueError:
            where = str(r.folder)
        head = f"  {r.status:<8} {r.name:<20} {where}  ({r.seconds:.0f} s)"
        if r.ok:
            keys = (
                "model.balanced_accuracy",
                "model.mse",
                "backtest.sharpe",
                "backtest.benchmark.sharpe",
            )
            shown = [f"{k}={r.metrics[k]:.3f}" for k in keys if k in r.metrics]
            lines.append(head + ("  " + " ".join(shown) if shown else ""))
        else:
            lines.append(head)
            lines.append(f"           error: {r.error}")
    studies = sorted({r.study for r in results})
    uri = tracking_uri()
    default = uri == f"sqlite:///{(root / 'mlflow.db').as_posix()}"
    lines += [
        "",
        "Each folder holds the executed notebooks, config.yaml, metrics.json and "
        "backtest_report.md.",
        "MLflow: "
        + ("make mlflow-ui, then open http://127.0.0.1:5000" if default else uri)
        + f" (experiment {', '.join(studies)})",
        "Table of runs: " + "; ".join(f"cryptoai report --study {s}" for s in studies),
        "Notebooks: make lab",
    ]
    return "\n".join(lines)
