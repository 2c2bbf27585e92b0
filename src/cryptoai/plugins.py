"""User plugins: modules that register strategies, models, features or sources.

Three ways in, all ending in an ordinary import whose ``@register_*`` decorators fill the
registries before anything is looked up by name:

- ``--plugins PATH`` (repeatable) on any ``cryptoai`` command;
- ``plugins: [PATH, ...]`` in any YAML config (paths relative to the config file, else to the
  working directory);
- the ``cryptoai.plugins`` entry-point group of an installed package (loaded on the first
  lookup in any registry).

A PATH is a ``.py`` file, a folder (every ``*.py`` in it, sorted, ``_``-prefixed files
skipped) or an importable module name. Loading the same file twice imports it once.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from cryptoai.errors import BadInputError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "cryptoai.plugins"

_loaded: dict[str, str] = {}  # resolved path or module name -> module name in sys.modules
_entry_points_loaded = False


def load_plugins(paths: Iterable[str | Path], *, base: str | Path | None = None) -> list[str]:
    """Import each plugin in ``paths`` (relative ones tried against ``base`` first); returns
    the module names. A plugin that is missing or fails to import is a one-line error."""
    names = []
    for raw in paths:
        for target in _targets(raw, base):
            names.append(_import(target))
    return names


def loaded() -> list[str]:
    """The plugins this process has loaded (resolved paths and module names), in order."""
    return list(_loaded)


def load_targets(targets: Iterable[str]) -> None:
    """Load ``loaded()`` of another process (a spawned worker: it starts with no plugins,
    and unpickling its work needs their classes under the same module names). One that no
    longer loads is passed over (logged): only work that needs it fails, with its error."""
    for key in targets:
        try:
            _import(Path(key) if Path(key).is_file() else key)
        except BadInputError as exc:
            log.info("worker: plugin %s not loaded: %s", key, exc)


def load_entry_points() -> list[str]:
    """Import the modules of the ``cryptoai.plugins`` entry-point group, once per process."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return []
    _entry_points_loaded = True
    names = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken third-party plugin must not hide which one it is
            raise BadInputError(
                f"plugin entry point {ep.name!r} ({ep.value}) failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        log.debug("loaded plugin entry point %s (%s)", ep.name, ep.value)
        names.append(ep.value)
    return names


def _targets(raw: str | Path, base: str | Path | None) -> list[str | Path]:
    text = str(raw).strip()
    if not text:
        raise BadInputError("empty plugin path: give a .py file, a folder or a module name")
    candidates = [Path(text)]
    if base is not None and not Path(text).is_absolute():
        candidates.insert(0, Path(base) / text)
    for path in candidates:
        if path.is_file():
            if path.suffix != ".py":
                raise BadInputError(f"plugin {path} is not a .py file")
            return [path.resolve()]
        if path.is_dir():
            files = sorted(p.resolve() for p in path.glob("*.py") if not p.name.startswith("_"))
            if not files:
                raise BadInputError(f"plugin folder {path} holds no .py files")
            return list(files)
    if text.endswith(".py") or "/" in text or "\\" in text:
        where = f" (looked in {Path(base)} and the working directory)" if base else ""
        raise BadInputError(f"plugin {text} not found{where}: check the path")
    return [text]  # a module name


def _import(target: str | Path) -> str:
    key = str(target)
    if key in _loaded:
        return _loaded[key]
    try:
        if isinstance(target, Path):
            digest = hashlib.sha1(key.encode()).hexdigest()[:8]
            name = f"cryptoai_plugin_{target.stem}_{digest}"
            spec = importlib.util.spec_from_file_location(name, target)
            if spec is None or spec.loader is None:
                raise BadInputError(f"plugin {target} cannot be imported")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)
                raise
        else:
            name = importlib.import_module(key).__name__
    except BadInputError:
        raise
    except ModuleNotFoundError as exc:
        if isinstance(target, str) and exc.name == key:
            raise BadInputError(
                f"plugin {key!r} is neither a file nor an importable module: check the name"
            ) from exc
        raise BadInputError(f"plugin {target} failed to load: {exc}") from exc
    except Exception as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line and f"line {line}" not in str(exc) else ""
        raise BadInputError(
            f"plugin {target} failed to load: {type(exc).__name__}: {exc}{where}"
        ) from exc
    _loaded[key] = name
    log.debug("loaded plugin %s as %s", target, name)
    return name
