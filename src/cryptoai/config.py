"""YAML configs validated by pydantic, with errors that name the file, the field and the reason."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from cryptoai.errors import ConfigError, CryptoaiError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping; a missing file or broken YAML is a ConfigError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} not found: check the path")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{p}: broken YAML{where}: {reason}; fix the syntax") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{p}: expected a mapping of fields at the top level, got {type(data).__name__}"
        )
    return data


def validate_config(data: dict, model: type[M], source: str | Path = "<config>") -> M:
    """Validate ``data`` against ``model``; the first error names the field path and the reason."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{source}: field '{loc}': {err['msg']}{more}") from exc


def load_config(path: str | Path, model: type[M]) -> M:
    """Read and validate a YAML config file.

    A top-level ``plugins: [PATH, ...]`` is loaded first (relative to the config's folder),
    so strategies, models and features it registers are valid names in the rest of the file.
    """
    data = read_yaml(path)
    if "plugins" in data:
        plugins = data["plugins"]
        if isinstance(plugins, str):
            plugins = [plugins]
        if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
            raise ConfigError(f"{path}: field 'plugins': expected a list of paths")
        from cryptoai.plugins import load_plugins

        try:
            load_plugins(plugins, base=Path(path).parent)
        except CryptoaiError as exc:
            raise ConfigError(f"{path}: field 'plugins': {exc}") from exc
        if "plugins" in model.model_fields:
            data["plugins"] = plugins
        else:
            data.pop("plugins")
    return validate_config(data, model, path)


def dump_config(config: BaseModel) -> str:
    """The resolved config as YAML (saved with every run)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
