"""Shared by test_notebooks.py and test_experiments.py: the shipped notebooks, executed ONCE
per test session, through the experiment runner.

``shipped_run`` runs ``cryptoai run CONFIG --smoke`` (the CLI, as a researcher would) on a copy
of the shipped ``logreg_baseline.yaml`` that lists every numbered notebook the two files check
(:data:`NOTEBOOKS`: 01-06; 07 and 08 run in their own test files), on a temporary raw store
with the dataset period of :data:`START` .. :data:`END`, and notebook 03 comparing the
:data:`CANDIDATES`. The runner writes ``experiments/experiment_YYYYMMDD_logreg_baseline/``
under a temporary experiments root: ``NN-name.ipynb`` (executed) and ``NN-name/`` (what the
notebook saved, ``metrics.json`` first) for each notebook, and logs one MLflow run with a
nested run per notebook into a SQLite store of its own.

A session fixture runs before any test's private store is set (conftest's autouse fixture),
so the run gets its tracking URI, Optuna storage and clock (:data:`RUN_DAY`) explicitly, and
tests read MLflow through ``ShippedRun.uri``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
#: The shipped config the run copies.
CONFIG = REPO / "configs" / "experiments" / "logreg_baseline.yaml"
#: Every shipped numbered notebook checked off this run, in the order the runner executes them
#: (04 and 05 read what 03 saved).
NOTEBOOKS = [
    "01-data-exploration",
    "02-feature-engineering",
    "03-model-prototyping",
    "04-backtesting",
    "05-robustness",
    "06-optimization",
]
#: The dataset period of the copy (end exclusive): the tests recompute numbers on these bars.
START, END = "2024-10-01", "2025-01-01"
#: Notebook 03's comparison: one tabular, one boosted, one sequence model.
CANDIDATES = ["logreg", "xgboost", "gru"]
#: MLflow experiment of the run.
STUDY = "test-real"
#: The runner's "today": a fixed day, so folder names and template dates are known in advance.
RUN_DAY = dt.date(2031, 5, 17)


@dataclass(frozen=True)
class ShippedRun:
    """What the one run left: its exit code, folders, MLflow store and log records."""

    rc: int
    config: Path  # the config that ran (a copy of CONFIG, see shipped_config)
    folder: Path  # experiments/experiment_YYYYMMDD_logreg_baseline/
    store: Path  # the raw candle store
    uri: str  # the MLflow tracking URI it logged to
    notebooks: list[str]  # the config's notebooks, in order
    records: list[logging.LogRecord]  # what the runner logged under ``cryptoai``
    errors: dict[str, str]  # notebook -> why it failed or did not run
    new_in_notebooks: list[str]  # files that appeared under notebooks/ (the kernels' cwd)
    docs_changed: bool  # whether docs/eda/ changed (only write_docs=True may write there)

    def outputs(self, name: str) -> Path:
        """What notebook ``name`` saved (asserting it ran)."""
        assert name not in self.errors, self.errors[name]
        return self.folder / name

    def executed(self, name: str) -> Path:
        """The executed copy of notebook ``name``."""
        return self.folder / f"{name}.ipynb"


def shipped_config(root: Path) -> Path:
    """The shipped baseline with this run's notebooks, period, store, study and candidates."""
    data = yaml.safe_load(CONFIG.read_text())
    data["dataset"] |= {"start": START, "end": END, "store_root": str(root / "raw")}
    data["study"] = STUDY
    data["notebooks"] = list(NOTEBOOKS)
    params = data.setdefault("notebook_params", {})
    params.setdefault("03-model-prototyping", {})["candidates"] = list(CANDIDATES)
    path = root / "logreg_baseline.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _snapshot(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in folder.rglob("*")} if folder.exists() else {}


@pytest.fixture(scope="session")
def shipped_run(tmp_path_factory: pytest.TempPathFactory) -> ShippedRun:
    """``cryptoai run`` of the shipped baseline over notebooks 01-06, smoke mode, once."""
    import mlflow

    from cryptoai import tracking
    from cryptoai._progress import TEXT_PROGRESS_ENV
    from cryptoai.cli import main
    from cryptoai.optimize.search import STORAGE_ENV
    from cryptoai.research import experiments
    from cryptoai.research.experiment_config import load_experiment

    missing = [n for n in NOTEBOOKS if not (NB_DIR / f"{n}.ipynb").is_file()]
    if missing:
        pytest.fail(f"shipped notebooks missing: {missing}")
    root = tmp_path_factory.mktemp("shipped")
    config = shipped_config(root)
    uri = f"sqlite:///{(root / 'mlflow.db').as_posix()}"
    exp_root = root / "experiments"
    docs_before = _snapshot(REPO / "docs" / "eda")
    nb_before = set(_snapshot(NB_DIR))
    handler = _Records()
    logger = logging.getLogger("cryptoai")
    logger.addHandler(handler)
    progress_env = os.environ.get(TEXT_PROGRESS_ENV)  # the runner sets it for its kernels
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        mp.delenv(tracking.ARTIFACT_ROOT_ENV, raising=False)
        mp.setenv(STORAGE_ENV, f"sqlite:///{(root / 'optuna.db').as_posix()}")
        mp.setattr(experiments, "today", lambda: RUN_DAY)
        mlflow.set_tracking_uri(uri)
        try:
            args = ["run", str(config), "--smoke", "--experiments-root", str(exp_root)]
            rc = main([*args, "--no-progress"])
        finally:
            mlflow.set_tracking_uri(None)
            logger.removeHandler(handler)
            if progress_env is None:  # ... in this process's environment: left as it was
                os.environ.pop(TEXT_PROGRESS_ENV, None)
            else:
                os.environ[TEXT_PROGRESS_ENV] = progress_env
    folders = sorted(exp_root.glob("experiment_*_logreg_baseline*"))
    assert len(folders) == 1, folders
    folder = folders[0]
    failures = [r.getMessage() for r in handler.records if r.levelno >= logging.ERROR]
    errors: dict[str, str] = {}
    for name in NOTEBOOKS:
        said = [m for m in failures if f"notebook {name} " in m]
        if said:
            errors[name] = said[0]
        elif not (folder / f"{name}.ipynb").is_file():
            errors[name] = f"{name} did not run (rc {rc}): {failures}"
    return ShippedRun(
        rc=rc,
        config=config,
        folder=folder,
        store=root / "raw",
        uri=uri,
        notebooks=load_experiment(config).notebooks,
        records=handler.records,
        errors=errors,
        new_in_notebooks=sorted(set(_snapshot(NB_DIR)) - nb_before),
        docs_changed=_snapshot(REPO / "docs" / "eda") != docs_before,
    )
