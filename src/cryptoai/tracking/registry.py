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
    card: dict[str, Any] | None = None,
) -> str:
    """Log ``estimator`` to the active run as a pyfunc model and return its model URI.

    ``method`` picks what pyfunc ``predict`` calls: ``auto`` uses ``predict_proba`` when the
    estimator has it. ``input_example`` (a few rows of the features the model was fitted on)
    is stored with the model and gives it its signature, the input and output schema that
    serving checks requests against; without one MLflow warns that the model has no
    signature. With ``registered_name`` the model is also registered. ``card`` (see
    :func:`model_card`) is what ``cryptoai.predict`` needs to rebuild the model's inputs; it is
    stored in the model's MLmodel metadata and copied onto registered versions as tags.
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
            metadata={
                "estimator_class": f"{cls.__module__}.{cls.__qualname__}",
                "method": method,
                **({CARD_KEY: card} if card else {}),
            },
        )
    logger.info("logged %s as %s", cls.__name__, info.model_uri)
    if registered_name:
        register_model(info.model_uri, registered_name)
    return info.model_uri


def register_model(model_uri: str, name: str, alias: str | None = None) -> int:
    """Register ``model_uri`` under ``name`` (optionally pointing ``alias`` at it); return the version.

    A model logged with a card (``cryptoai train`` logs one) gets the card's fields as version
    tags (``cryptoai.*``), so the registry shows what each version predicts and needs.
    """

    configure()
    if not name or not name.strip():
        raise BadInputError("registered model name is empty; pass a name such as 'btc-direction'")
    card = model_card_of(model_uri, missing_ok=True)
    try:
        version = mlflow.register_model(model_uri, name, tags=card_tags(card) if card else None)
        if alias:
            MlflowClient().set_registered_model_alias(name, alias, version.version)
    except MlflowException as exc:
        raise BadInputError(
            f"cannot register {model_uri} as '{name}': {_first_line(exc)}; "
            "check the model URI returned by log_model"
        ) from exc
    logger.info("registered %s as %s version %s", model_uri, name, version.version)
    return int(version.version)


# ------------------------------------------------------------------ model cards and aliases
#: Key of the card in a logged model's MLmodel metadata.
CARD_KEY = "cryptoai"
CARD_SCHEMA = 1
#: What a model's predictions mean, by target kind (see DESIGN "Predictions").
LABELS = {
    "direction": "proba_up",
    "triple_barrier": "score",
    "forward_return": "score",
    "regime": "regime",
}
#: Columns of a regime model's predictions: the class, one probability per class, the score.
REGIME_OUTPUTS = [
    "regime",
    "proba_down",
    "proba_range",
    "proba_up",
    "proba_high_vol",
    "score",
]
_TAG_PREFIX = "cryptoai."
_MAX_TAG = 5000


def model_card(
    *,
    feature_spec: Any,
    target: Any,
    task: str,
    warmup_bars: int,
    data_fingerprint: str = "",
    classes: Any = None,
    context_bars: int = 0,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a logged model needs to predict from raw candles, as plain JSON.

    The resolved feature spec itself (not a path that may move), the target kind and horizon,
    the label meaning, the warm-up (bars before the first complete feature row), the training
    data fingerprint and the code version (git commit and package version).
    """
    from cryptoai import __version__
    from cryptoai.tracking.runs import git_info

    spec = (
        feature_spec.model_dump(mode="json")
        if hasattr(feature_spec, "model_dump")
        else dict(feature_spec)
    )
    target_d = target.model_dump(mode="json") if hasattr(target, "model_dump") else dict(target)
    kind = target_d.get("kind", "direction")
    label = LABELS.get(kind, "score")
    outputs = ["proba_up", "score"] if label == "proba_up" else ["score"]
    if label == "regime":
        outputs = list(REGIME_OUTPUTS)
    if task == "regression":
        outputs = ["expected_return", "score"]
    git = git_info()
    card = {
        "schema": CARD_SCHEMA,
        "feature_spec": spec,
        "target": target_d,
        "target_kind": kind,
        "horizon": int(target_d.get("horizon", 1)),
        "task": task,
        "label": label,
        "outputs": outputs,
        "classes": None if classes is None else [float(c) for c in classes],
        "warmup_bars": int(warmup_bars),
        "context_bars": int(context_bars),
        "data_fingerprint": data_fingerprint,
        "git_commit": git["commit"],
        "git_dirty": git["dirty"],
        "package_version": __version__,
    }
    return card | (extra or {})


def model_card_of(model_uri: str, *, missing_ok: bool = False) -> dict[str, Any] | None:
    """The card stored with a logged or registered model (``None`` if it has none and
    ``missing_ok``)."""
    from mlflow.models import get_model_info

    configure()
    try:
        info = get_model_info(model_uri)
    except (MlflowException, OSError) as exc:
        raise BadInputError(f"cannot read model {model_uri}: {_first_line(exc)}") from exc
    card = (info.metadata or {}).get(CARD_KEY)
    if card is None and not missing_ok:
        raise BadInputError(
            f"model {model_uri} carries no cryptoai card (feature spec, warm-up, label): "
            "log it with `cryptoai train` or log_model(card=model_card(...))"
        )
    return card


def card_tags(card: dict[str, Any]) -> dict[str, str]:
    """A card as model version tags: scalars as text, the spec and target as JSON."""
    tags = {}
    for key, value in card.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        if len(text) > _MAX_TAG:
            logger.info("card field %s is %d characters: kept in MLmodel only", key, len(text))
            continue
        tags[_TAG_PREFIX + key] = text
    return tags


def parse_model_uri(uri: str) -> tuple[str, str | None, int | None]:
    """``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or ``models:/NAME`` (latest) ->
    ``(name, alias, version)``."""
    m = re.fullmatch(r"models:/([^/@]+)(?:@([^/@]+)|/(\d+))?/?", (uri or "").strip())
    if not m:
        raise BadInputError(
            f"model {uri!r} is not a registry URI: use models:/NAME@ALIAS, models:/NAME/VERSION "
            "or models:/NAME"
        )
    name, alias, version = m.group(1), m.group(2), m.group(3)
    return name, alias, int(version) if version else None


def resolve_version(uri: str) -> tuple[str, int, str | None]:
    """``(name, version, alias)`` a registry URI points at now (aliases are re-read each call)."""
    name, alias, version = parse_model_uri(uri)
    configure()
    client = MlflowClient()
    try:
        if alias is not None:
            return name, int(client.get_model_version_by_alias(name, alias).version), alias
        if version is not None:
            client.get_model_version(name, str(version))
            return name, version, None
        versions = client.search_model_versions(f"name = '{_quote(name)}'")
    except MlflowException as exc:
        raise BadInputError(
            f"cannot resolve {uri}: {_first_line(exc)}; list models with `cryptoai models list`"
        ) from exc
    if not versions:
        raise BadInputError(f"registered model '{name}' has no versions; register one first")
    return name, max(int(v.version) for v in versions), None


def promote(name: str, version: int | str, alias: str = "champion") -> None:
    """Point ``alias`` (e.g. ``champion``) at ``version`` of registered model ``name``."""
    configure()
    client = MlflowClient()
    try:
        client.get_model_version(name, str(version))
        client.set_registered_model_alias(name, alias, str(version))
    except MlflowException as exc:
        raise BadInputError(
            f"cannot point {name}@{alias} at version {version}: {_first_line(exc)}; "
            "see `cryptoai models list`"
        ) from exc
    logger.info("%s@%s -> version %s", name, alias, version)


def list_models(name: str | None = None) -> pd.DataFrame:
    """One row per registered version: name, version, aliases, label, target, warm-up, run."""
    configure()
    client = MlflowClient()
    query = f"name = '{_quote(name)}'" if name else ""
    rows = []
    aliases: dict[str, dict[str, list[str]]] = {}
    for v in client.search_model_versions(query):
        tags = v.tags or {}
        if v.name not in aliases:  # version search leaves aliases out on some stores
            by_version: dict[str, list[str]] = {}
            for alias, ver in (client.get_registered_model(v.name).aliases or {}).items():
                by_version.setdefault(str(ver), []).append(alias)
            aliases[v.name] = by_version
        rows.append(
            {
                "name": v.name,
                "version": int(v.version),
                "aliases": ",".join(sorted(aliases[v.name].get(str(v.version), []))),
                "label": tags.get("cryptoai.label", ""),
                "target": tags.get("cryptoai.target_kind", ""),
                "horizon": tags.get("cryptoai.horizon", ""),
                "warmup_bars": tags.get("cryptoai.warmup_bars", ""),
                "git_commit": tags.get("cryptoai.git_commit", "")[:12],
                "run_id": v.run_id or "",
                "created": pd.Timestamp(int(v.creation_timestamp), unit="ms", tz="UTC"),
            }
        )
    cols = ["name", "version", "aliases", "label", "target", "horizon", "warmup_bars"]
    cols += ["git_commit", "run_id", "created"]
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["name", "version"]).reset_index(drop=True)


def run_model_uri(run_id: str) -> str:
    """The model a run logged: its ``model.uri`` tag (``cryptoai train`` sets it), else
    ``runs:/RUN_ID/model``."""
    configure()
    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException as exc:
        raise BadInputError(f"no MLflow run {run_id!r}: {_first_line(exc)}") from exc
    return run.data.tags.get("model.uri") or f"runs:/{run_id}/model"


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
