"""Where the cryptoai checkout is, found without importing anything heavy."""

from __future__ import annotations

import tomllib
from pathlib import Path


def is_cryptoai_checkout(folder: Path) -> bool:
    """True if ``folder`` holds the cryptoai ``pyproject.toml``."""
    try:
        with (folder / "pyproject.toml").open("rb") as fh:
            return tomllib.load(fh).get("project", {}).get("name") == "cryptoai"
    except (OSError, tomllib.TOMLDecodeError):
        return False


def repo_root(start: str | Path | None = None, *, via_package: bool = False) -> Path:
    """The cryptoai checkout containing ``start`` (default: cwd), else ``start`` itself.

    With ``via_package``, an editable install's own checkout is tried next, so a notebook
    kernel started anywhere still finds ``configs/`` and ``data/``.
    """
    here = Path(start or Path.cwd()).resolve()
    bases = [here]
    if via_package:
        import cryptoai

        bases.append(Path(cryptoai.__file__).resolve().parent)
    for base in bases:
        for folder in (base, *base.parents):
            if is_cryptoai_checkout(folder):
                return folder
    return here
