"""Model logging and the MLflow model registry.

Every cryptoai estimator is logged the same way: a pyfunc wrapper around the cloudpickled
estimator, so serving and reloading never depend on which library the model came from. The
pip requirements are written explicitly: letting MLflow infer them drops torch's ``+cpu``
local label, and a bare ``torch`` pin then pulls CUDA builds into every serving image.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import cloudpickle
import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from cryptoai.errors import BadInputError, ConfigError
from cryptoai.tracking._store import active_run_id, configure

logger = logging.getLogger(__name__)

TORCH_INDEX = "https://download.pytorch.org/whl/{label}"

# Pinned at their installed versions when the repository has no requirements.txt.
_BUILTIN_PACKAGES: tuple[tuple[str, ...], ...] = (
    ("cloudpickle",),
    ("numpy",),
    ("pandas",),
    ("pyarrow",),
    ("scikit-learn",),
    ("xgboost-cpu", "xgboost"),
    ("torch",),
    ("lightning",),
    ("pytorch-forecasting",),
    ("ta",),
)

_METHODS = ("auto", "predict_proba", "predict")


class EstimatorModel(mlflow.pyfunc.PythonModel):
    """Pyfunc face of a cryptoai estimator: probabilities when it has them, else predictions."""

    def __init__(self) -> None:
        self.estimator: Any = None
        self.method = "auto"

    def load_context(self, context: Any) -> None:
        settings = json.loads(Path(context.artifacts["settings"]).read_text())
        self.method = settings.get("method", "auto")
        with open(context.artifacts["estimator"], "rb") as fh:
            self.estimator = cloudpickle.load(fh)

    # A DataFrame hint is one MLflow accepts without deriving a schema from it.
    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> Any:
        return _predict(self.estimator, model_input, self.method)


# Logged as the model's code ("models from code"), so no pickled wrapper object is stored.
_MODEL_CODE = """from mlflow.models import set_model

from cryptoai.tracking.registry import EstimatorModel

set_model(EstimatorModel())
"""


def _predict(estimator: Any, model_input: Any, method: str) -> Any:
    if method == "auto":
        method = "predict_proba" if hasattr(estimator, "predict_proba") else "predict"
    return getattr(estimator, method)(model_input)


def log_model(
    estimator: Any,
    artifact_path: str = "model",
    *,
    registered_name: str | None = None,
    input_example: Any = None,
    method: str = "auto",
) -> str:
    """Log ``estimator`` to the active run as a pyfunc model and return its model URI.

    ``method`` picks what pyfunc ``predict`` calls: ``auto`` uses ``predict_proba`` when the
    estimator has it. ``input_example`` (a few rows of the features the model was fitted on)
    is stored with the model and gives it its signature, the input and output schema that
    serving checks requests against; without one MLflow warns that the model has no
    signature. With ``registered_name`` the model is also registered.
    """

    active_run_id("log_model")
    if method not in _METHODS:
        raise BadInputError(f"method must be one of {', '.join(_METHODS)}, got {method!r}")
    wanted = ("predict_proba", "predict") if method == "auto" else (method,)
    if not any(callable(getattr(estimator, m, None)) for m in wanted):
        raise BadInputError(
            f"{type(estimator).__name__} has no {' or '.join(wanted)} method; "
            "log a fitted cryptoai estimator"
        )
    cls = type(estimator)
    signature = None
    if input_example is not None:
        from mlflow.models import infer_signature

        try:
            output = _predict(estimator, input_example, method)
        except Exception as exc:  # any model library's error: the example does not fit it
            raise BadInputError(
                f"{cls.__name__} cannot predict on the input example ({type(exc).__name__}: "
                f"{exc}); pass rows of the features it was fitted on"
            ) from exc
        signature = infer_signature(input_example, output)
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        with (tmpdir / "estimator.pkl").open("wb") as fh:
            cloudpickle.dump(estimator, fh)
        (tmpdir / "settings.json").write_text(json.dumps({"method": method}))
        (tmpdir / "estimator_model.py").write_text(_MODEL_CODE)
        info = mlflow.pyfunc.log_model(
            name=artifact_path,
            python_model=str(tmpdir / "estimator_model.py"),
            artifacts={
                "estimator": str(tmpdir / "estimator.pkl"),
                "settings": str(tmpdir / "settings.json"),
            },
            pip_requirements=model_requirements(),
            input_example=input_example,
            signature=signature,
            metadata={"estimator_class": f"{cls.__module__}.{cls.__qualname__}", "method": method},
        )
    logger.info("logged %s as %s", cls.__name__, info.model_uri)
    if registered_name:
        register_model(info.model_uri, registered_name)
    return info.model_uri


def register_model(model_uri: str, name: str, alias: str | None = None) -> int:
    """Register ``model_uri`` under ``name`` (optionally pointing ``alias`` at it); return the version."""

    configure()
    if not name or not name.strip():
        raise BadInputError("registered model name is empty; pass a name such as 'btc-direction'")
    try:
        version = mlflow.register_model(model_uri, name)
        if alias:
            MlflowClient().set_registered_model_alias(name, alias, version.version)
    except MlflowException as exc:
        raise BadInputError(
            f"cannot register {model_uri} as '{name}': {_first_line(exc)}; "
            "check the model URI returned by log_model"
        ) from exc
    logger.info("registered %s as %s version %s", model_uri, name, version.version)
    return int(version.version)


def load_model(
    name: str,
    alias: str | int | None = None,
    *,
    version: int | str | None = None,
    unwrap: bool = False,
) -> Any:
    """Load a registered model by alias, by version, or its latest version.

    Returns the pyfunc model, or with ``unwrap=True`` the original cryptoai estimator. An
    integer ``alias`` is taken as a version number.
    """

    configure()
    if isinstance(alias, int):
        alias, version = None, alias
    if alias is not None and version is not None:
        raise BadInputError("pass either alias or version to load_model, not both")
    client = MlflowClient()
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        raise BadInputError(
            f"no registered model named '{name}'; register one with register_model "
            "or browse the registry in the MLflow UI"
        ) from exc
    if alias is not None:
        uri, which = f"models:/{name}@{alias}", f"alias '{alias}'"
    else:
        if version is None:
            versions = client.search_model_versions(f"name = '{_quote(name)}'")
            if not versions:
                raise BadInputError(f"registered model '{name}' has no versions; log one first")
            version = max(int(v.version) for v in versions)
        uri, which = f"models:/{name}/{version}", f"version {version}"
    try:
        model = mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        raise BadInputError(
            f"cannot load {which} of registered model '{name}': {_first_line(exc)}; "
            "check the alias or version in the MLflow UI"
        ) from exc
    if not unwrap:
        return model
    inner = model.unwrap_python_model()
    if not isinstance(inner, EstimatorModel):
        raise BadInputError(
            f"registered model '{name}' was not logged by cryptoai log_model; load it without unwrap"
        )
    return inner.estimator


def model_requirements(requirements_file: str | Path | None = None) -> list[str]:
    """Explicit pip requirements for logged models, with torch pinned exactly.

    Read from the repository's ``requirements.txt`` when there is one, else a built-in list
    of the installed versions. Editable installs and local paths are dropped: they cannot be
    installed where the model is served.
    """
    if requirements_file is None:
        from cryptoai.paths import repo_root

        requirements_file = repo_root() / "requirements.txt"
    path = Path(requirements_file)
    lines = _read_requirements(path) if path.is_file() else _builtin_requirements()
    return _with_torch_pinned(_ensure(lines, "cloudpickle"))


def _read_requirements(path: Path, seen: frozenset[Path] = frozenset()) -> list[str]:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path} includes itself through -r; remove the cycle")
    text = path.read_text().replace("\\\n", " ")
    out: list[str] = []
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        head, _, rest = line.partition(" ")
        if head in ("-r", "--requirement"):
            out += _read_requirements(path.parent / rest.strip(), seen | {path})
        elif head in ("-e", "--editable", "-c", "--constraint") or _is_local_path(line):
            logger.debug("model requirements: dropping %r (not installable where served)", line)
        else:
            out.append(line)
    return out


def _is_local_path(line: str) -> bool:
    return line.startswith((".", "/", "file:"))


def _builtin_requirements() -> list[str]:
    out = []
    for dists in _BUILTIN_PACKAGES:
        for dist in dists:
            version = _installed(dist)
            if version:
                out.append(f"{dist}=={Version(version).base_version}")
                break
    return out


def _ensure(lines: list[str], dist: str) -> list[str]:
    if any(_req_name(line) == canonicalize_name(dist) for line in lines):
        return lines
    version = _installed(dist)
    return [*lines, f"{dist}=={version}"] if version else lines


def _with_torch_pinned(lines: list[str]) -> list[str]:
    """Every torch line becomes exactly ``torch==X.Y.Z``; a CPU/CUDA index is added if needed."""
    torch_lines = [line for line in lines if _req_name(line) == "torch"]
    if not torch_lines:
        return lines
    installed = _installed("torch")
    if installed:
        pin = Version(installed)
    else:
        exact = [s.version for s in Requirement(torch_lines[0]).specifier if s.operator == "=="]
        if not exact:
            raise ConfigError(
                f"requirements list {torch_lines[0]!r} without an exact version and torch is "
                "not installed; pin it as torch==X.Y.Z"
            )
        pin = Version(exact[0])
    out, placed = [], False
    for line in lines:
        if _req_name(line) != "torch":
            out.append(line)
        elif not placed:
            out.append(f"torch=={pin.base_version}")
            placed = True
    has_index = any(line.startswith(("--index-url", "-i ", "--extra-index-url")) for line in out)
    if pin.local and not has_index:
        out.insert(0, f"--extra-index-url {TORCH_INDEX.format(label=pin.local)}")
    return out


def _req_name(line: str) -> str | None:
    try:
        return canonicalize_name(Requirement(line).name)
    except InvalidRequirement:
        return None


def _installed(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
