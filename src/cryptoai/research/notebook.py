"""Where a notebook leaves its results, so the experiment runner can log them.

A notebook run by ``scripts/run_experiments.py`` gets an ``output_dir`` parameter. It saves
figures, metrics and files under ``{output_dir}/{notebook}/`` through this class; the runner
then logs that folder as the notebook's nested MLflow run (``metrics.json`` as metrics, the rest
as artifacts). Run by hand in JupyterLab, the same calls simply write files.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

METRICS_FILE = "metrics.json"


class NotebookOutputs:
    """Results of one notebook: ``{output_dir}/{notebook}/``."""

    def __init__(self, output_dir: str | Path, notebook: str) -> None:
        self.dir = Path(output_dir) / notebook
        self.dir.mkdir(parents=True, exist_ok=True)

    def figure(self, fig, name: str, dpi: int = 110) -> Path:
        """Save a matplotlib figure as ``name.png``."""
        path = self.dir / f"{name}.png"
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        return path

    def metrics(self, values: dict[str, float], prefix: str = "") -> dict[str, float | None]:
        """Merge numeric metrics into ``metrics.json`` (NaN and inf are stored as null)."""
        current = self.read_metrics()
        for key, value in values.items():
            number = float(value)
            current[f"{prefix}{key}"] = number if math.isfinite(number) else None
        (self.dir / METRICS_FILE).write_text(json.dumps(current, indent=2, sort_keys=True))
        return current

    def read_metrics(self) -> dict[str, float | None]:
        path = self.dir / METRICS_FILE
        return json.loads(path.read_text()) if path.exists() else {}

    def text(self, content: str, name: str) -> Path:
        path = self.dir / name
        path.write_text(content)
        return path

    def copy(self, src: str | Path, name: str | None = None) -> Path:
        """Copy a file (or a folder) the library wrote elsewhere into the outputs."""
        src = Path(src)
        dest = self.dir / (name or src.name)
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dest)
        return dest
