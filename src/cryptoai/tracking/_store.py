"""Where MLflow runs are stored: the tracking URI, the artifact root and the active run.

Kept apart from the run-recording code so the model registry and the runs both build on it
without importing each other.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from cryptoai.errors import BadInputError
from cryptoai.paths import repo_root

logger = logging.getLogger(__name__)

#: Where experiments created by this module keep artifacts (e.g. ``s3://bucket/mlflow``) when
#: the tracking URI is a database the client talks to directly.
ARTIFACT_ROOT_ENV = "CRYPTOAI_ARTIFACT_ROOT"
#: Experiment tag that makes the MLflow UI open an experiment in its model-training view
#: (runs table, metric columns, models) rather than the GenAI/traces view.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
#: MLflow draws a "Downloading artifacts" bar even when it only reads back a model it has just
#: logged; in a batch log those bars are noise. Set this variable to ``true`` to see them.
_PROGRESS_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the SQLite store ``mlflow.db`` at the repo root."""
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        return env
    return f"sqlite:///{(repo_root() / 'mlflow.db').as_posix()}"


def configure() -> str:
    """Point MLflow at :func:`tracking_uri` and return it.

    Also turns MLflow's artifact progress bars off unless ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR``
    is set: logging a model reads it back once, and that bar would show in every run's log.
    """
    uri = tracking_uri()
    os.environ.setdefault(_PROGRESS_BAR_ENV, "false")
    mlflow.set_tracking_uri(uri)
    return uri


def artifact_root(uri: str | None = None) -> str | None:
    """Artifact root for experiments this module creates; ``None`` lets the server decide.

    SQLite stores keep artifacts in ``mlartifacts/`` beside the database, so they never land
    in whatever directory a notebook happened to run from.
    """
    env = os.environ.get(ARTIFACT_ROOT_ENV, "").strip()
    if env:
        return env.rstrip("/")
    uri = uri or tracking_uri()
    scheme = urlparse(uri).scheme.lower()
    if scheme == "sqlite":
        db = _sqlite_path(uri)
        return ((db.parent if db else repo_root()) / "mlartifacts").as_uri()
    if scheme in ("", "file", "http", "https") or scheme.startswith("databricks"):
        return None
    logger.warning(
        "tracking URI %s is a database but %s is not set; artifacts go to the local "
        "mlartifacts/ folder (set %s=s3://bucket/prefix to share them)",
        uri.split("@")[-1],
        ARTIFACT_ROOT_ENV,
        ARTIFACT_ROOT_ENV,
    )
    return (repo_root() / "mlartifacts").as_uri()


def _sqlite_path(uri: str) -> Path | None:
    rest = uri.split("?", 1)[0][len("sqlite://") :]
    if rest in ("", "/", "/:memory:"):
        return None
    path = Path(rest[1:])
    return path if path.is_absolute() else Path.cwd() / path


def _experiment_id(name: str) -> str:
    """The id of experiment ``name``, created (in the model-training view) when missing."""
    if not isinstance(name, str) or not name.strip():
        raise BadInputError("experiment name is empty; pass a name such as 'btc-direction-1h'")
    client = MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        root = artifact_root()
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "experiment"
        try:
            return client.create_experiment(
                name,
                artifact_location=root and f"{root}/{slug}",
                tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
            )
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment = client.get_experiment_by_name(name)  # another worker created it
    if experiment.lifecycle_stage == "deleted":
        raise BadInputError(
            f"MLflow experiment '{name}' is deleted; restore it "
            f"(mlflow experiments restore --experiment-id {experiment.experiment_id}) "
            "or use another name"
        )
    if EXPERIMENT_KIND_TAG not in experiment.tags:  # created before this tag, or by hand
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return experiment.experiment_id


def active_run_id(caller: str = "this function") -> str:
    """The active run's id; a clear error instead of MLflow silently starting a stray run."""
    run = mlflow.active_run()
    if run is None:
        raise BadInputError(f"{caller} needs an active run; call it inside `with tracked_run(...)`")
    return run.info.run_id
