"""Models found by name, so configs and the CLI can say ``model: {name: xgboost}``."""

from __future__ import annotations

import importlib
from typing import Any

from cryptoai.errors import BadInputError
from cryptoai.modeling.models.base import BaseModel

TASKS = ("classification", "regression")

# name -> task -> ("module:Class", fixed params)
_MODELS: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "baseline": {
        "classification": ("tabular:BaselineClassifier", {}),
        "regression": ("tabular:BaselineRegressor", {}),
    },
    "logreg": {"classification": ("tabular:LogisticModel", {})},
    "ridge": {"regression": ("tabular:RidgeModel", {})},
    "random_forest": {
        "classification": ("tabular:ForestClassifier", {}),
        "regression": ("tabular:ForestRegressor", {}),
    },
    "xgboost": {
        "classification": ("tabular:BoostedClassifier", {}),
        "regression": ("tabular:BoostedRegressor", {}),
    },
    **{
        arch: {
            "classification": ("sequence:SequenceClassifier", {"arch": arch}),
            "regression": ("sequence:SequenceRegressor", {"arch": arch}),
        }
        for arch in ("lstm", "gru", "tft")
    },
    "nhits": {"regression": ("sequence:SequenceRegressor", {"arch": "nhits"})},
}

SEQUENCE_MODELS = ("lstm", "gru", "tft", "nhits")


def available_models(task: str | None = None) -> list[str]:
    """Model names, optionally only those that handle ``task``."""
    return sorted(n for n, by_task in _MODELS.items() if task is None or task in by_task)


def model_class(name: str, task: str = "classification") -> tuple[type[BaseModel], dict[str, Any]]:
    """The class behind ``name`` for ``task`` and the parameters the name fixes."""
    if task not in TASKS:
        raise BadInputError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    key = name.strip().lower().replace("-", "_")
    if key not in _MODELS:
        raise BadInputError(f"unknown model {name!r}: use one of {', '.join(available_models())}")
    if task not in _MODELS[key]:
        fits = ", ".join(available_models(task))
        raise BadInputError(f"model {name!r} does not do {task}: for {task} use one of {fits}")
    path, fixed = _MODELS[key][task]
    module, cls = path.split(":")
    return getattr(importlib.import_module(f"cryptoai.modeling.models.{module}"), cls), dict(fixed)


def make_model(name: str, task: str = "classification", **params: Any) -> BaseModel:
    """A new, unfitted model by name; unknown parameters are rejected with the valid ones."""
    cls, fixed = model_class(name, task)
    valid = set(cls().get_params()) - set(fixed)
    unknown = sorted(set(params) - valid)
    if unknown:
        raise BadInputError(
            f"unknown parameter(s) {', '.join(unknown)} for model {name!r}: "
            f"valid ones are {', '.join(sorted(valid))}"
        )
    return cls(**fixed, **params)


def is_sequence_model(name: str) -> bool:
    return name.strip().lower() in SEQUENCE_MODELS
