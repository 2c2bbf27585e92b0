"""Models found by name, so configs and the CLI can say ``model: {name: xgboost}``.

A model class registers itself with ``@register_model("name", task=...)`` in its own file
(a user plugin does the same). The sequence models are registered by reference
(``"module:Class"``, in ``_sequence_names``), so looking up ``logreg`` never imports torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from cryptoai._registry import Registry
from cryptoai.errors import BadInputError
from cryptoai.modeling.models.base import BaseModel

TASKS = ("classification", "regression")
SEQUENCE_MODELS = ("lstm", "gru", "tft", "nhits")

M = TypeVar("M", bound=type[BaseModel])
#: name -> task -> (class or "module:Class", parameters the name fixes)
Entry = dict[str, tuple[type[BaseModel] | str, dict[str, Any]]]

MODELS: Registry[Entry] = Registry(
    "model", ("cryptoai.modeling.models.tabular", "cryptoai.modeling.models._sequence_names")
)


def register_model(name: str, task: str | None = None, **fixed: Any) -> Callable[[M], M]:
    """Class decorator: ``name`` builds this class for ``task`` (default: the class's own
    ``task``); ``fixed`` are parameters the name sets. A name may serve both tasks."""

    def deco(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            raise TypeError(f"@register_model({name!r}) must decorate a BaseModel subclass")
        which = task or cls.task
        if which not in TASKS:
            raise TypeError(f"@register_model({name!r}): task must be one of {', '.join(TASKS)}")
        entry = dict(MODELS.find(name) or {})
        old = entry.get(which)
        if old is not None and old[0] is not cls and _qualname(old[0]) != _qualname(cls):
            raise ValueError(f"model name {name!r} already has a {which} model: choose another")
        entry[which] = (cls, dict(fixed))
        MODELS.add(name, entry, replace=True)
        return cls

    return deco


def _qualname(obj: type | str) -> str:
    return obj if isinstance(obj, str) else f"{obj.__module__}:{obj.__qualname__}"


def available_models(task: str | None = None) -> list[str]:
    """Model names, optionally only those that handle ``task``."""
    return [n for n in MODELS.names() if task is None or task in MODELS.get(n)]


def model_class(name: str, task: str = "classification") -> tuple[type[BaseModel], dict[str, Any]]:
    """The class behind ``name`` for ``task`` and the parameters the name fixes."""
    if task not in TASKS:
        raise BadInputError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    if not isinstance(name, str) or name not in MODELS:
        raise BadInputError(f"unknown model {name!r}: use one of {', '.join(available_models())}")
    entry = MODELS.get(name)
    if task not in entry:
        fits = ", ".join(available_models(task))
        raise BadInputError(f"model {name!r} does not do {task}: for {task} use one of {fits}")
    target, fixed = entry[task]
    if isinstance(target, str):
        module, cls_name = target.split(":")
        target = getattr(importlib.import_module(module), cls_name)
    return target, dict(fixed)


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
    return MODELS.normalize(name) in SEQUENCE_MODELS
