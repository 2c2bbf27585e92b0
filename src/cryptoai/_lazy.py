"""Lazy package faces: a package lists its public names and the module each lives in, and
they are imported on first access, so ``import cryptoai`` (or any subpackage) stays cheap and
loads nothing heavy (MLflow, torch, numba) until a name that needs it is used."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``; ``exports`` maps name -> module path
    (relative to the package when it starts with a dot)."""

    def __getattr__(name: str) -> Any:
        target = exports.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = (
            importlib.import_module(target, package)
            if target.startswith(".")
            else (importlib.import_module(target))
        )
        value = getattr(module, name)
        namespace[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        own = {k for k in namespace if k.startswith("__") or k in exports}
        return sorted(own | set(exports))

    return __getattr__, __dir__
