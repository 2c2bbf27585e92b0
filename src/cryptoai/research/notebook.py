"""What every numbered notebook does first, and where it leaves its results.

``notebook_setup`` replaces the setup cell the notebooks used to repeat: it resolves the
experiment config (loading the ``plugins:`` it lists), applies the notebook's parameters,
seeds every generator, sets logging and pandas display once, and returns a
``NotebookSession`` that knows where the outputs go.

A notebook run by ``scripts/run_experiments.py`` gets an ``output_dir`` parameter. It saves
figures, metrics and files under ``{output_dir}/{notebook}/`` through ``NotebookOutputs``; the
runner then logs that folder as the notebook's nested MLflow run (``metrics.json`` as metrics,
the rest as artifacts). Run by hand in JupyterLab, the same calls simply write files.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cryptoai.modeling.training import DataConfig, TrainConfig
    from cryptoai.research.experiment_config import ExperimentConfig

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
SELECTED_FEATURES_FILE = "selected_features.json"
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
PANDAS_OPTIONS = {"display.width": 140, "display.max_columns": 30, "display.precision": 4}


class NotebookOutputs:
    """Results of one notebook: ``{output_dir}/{notebook}/``."""

    def __init__(self, output_dir: str | Path, notebook: str) -> None:
        self.dir = Path(output_dir) / notebook
        self.dir.mkdir(parents=True, exist_ok=True)

    def figure(self, fig: Figure, name: str, dpi: int = 110) -> Path:
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


# ===================================================================== the session
@dataclass
class NotebookSession:
    """One notebook run: its experiment, training config, outputs and saved figures."""

    notebook: str
    exp: ExperimentConfig
    cfg: TrainConfig
    out: NotebookOutputs
    output_root: Path
    smoke: bool
    figures: dict[str, Figure] = field(default_factory=dict)
    _scratch: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    @property
    def data(self) -> DataConfig:
        """The dataset the notebook runs on (the config's, with the parameters applied)."""
        return self.exp.dataset

    @property
    def work_dir(self) -> Path:
        """A scratch folder for model checkpoints, removed by ``close`` (never the cwd)."""
        return Path(self.cfg.output_dir)

    def header(self) -> str:
        """What runs, on which data, and where its outputs go: the notebook's first output."""
        d, exp = self.data, self.exp
        smoke = f" (smoke: last {self.cfg.smoke_bars} bars)" if self.smoke else ""
        return (
            f"**{exp.experiment_id} {exp.name}**: {exp.objective}\n\n"
            f"Data: {d.file or d.source} {d.symbol} {d.timeframe}, {d.start} to {d.end}{smoke}. "
            f"Outputs: `{self.out.dir}`"
        )

    def show(self, fig: Figure, name: str) -> Path:
        """Save ``fig`` with the outputs as ``name.png``, keep it in ``figures`` and display
        the saved file, so what the notebook shows is exactly what was logged."""
        path = self.out.figure(fig, name)
        self.figures[name] = fig
        _display_image(path)
        return path

    def close(self) -> None:
        """Remove the scratch folder (checkpoints); the outputs stay."""
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None


def notebook_setup(
    notebook: str,
    config_path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    start: str | None = None,
    end: str | None = None,
    seed: int | None = None,
    smoke: bool = False,
    output_dir: str | Path = "experiments/scratch",
    store_root: str | Path | None = None,
    log_level: int | str = logging.WARNING,
    show_header: bool = True,
) -> NotebookSession:
    """Everything a notebook needs before its first step, from its ``parameters`` cell.

    Loading the config loads its ``plugins:`` (``cryptoai.config.load_config``), so a
    notebook can use a user's strategy or model by name. Safe to run twice in one kernel:
    logging gets one handler, never a second.
    """
    from cryptoai.research import eda
    from cryptoai.seeds import seed_everything

    configure_display(log_level)
    exp = eda.notebook_experiment(
        config_path,
        symbol=symbol,
        timeframe=timeframe,
        start=start,
        end=end,
        seed=seed,
        store_root=store_root,
    )
    seed_everything(exp.seed)
    scratch = tempfile.TemporaryDirectory(prefix="cryptoai-")
    cfg = eda.notebook_train_config(exp, smoke=bool(smoke), work_dir=scratch.name)
    output_root = eda.resolve_path(output_dir)
    session = NotebookSession(
        notebook=notebook,
        exp=exp,
        cfg=cfg,
        out=NotebookOutputs(output_root, notebook),
        output_root=output_root,
        smoke=bool(smoke),
        _scratch=scratch,
    )
    if show_header:
        _display_markdown(session.header())
    log.info("%s: %s, outputs in %s", notebook, exp.name, session.out.dir)
    return session


def configure_display(log_level: int | str = logging.WARNING) -> None:
    """One log handler (kept if the kernel or an earlier call has one), pandas display
    options for wide tables, and text progress bars without the ipywidgets warning."""
    import pandas as pd

    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
    root.setLevel(log_level)
    for name, value in PANDAS_OPTIONS.items():
        pd.set_option(name, value)
    warnings.filterwarnings("ignore", message="IProgress not found")  # no widgets: text bars


def _display_image(path: Path) -> None:
    try:
        from IPython.display import Image, display
    except ImportError:  # plain Python: the file is the result
        return
    display(Image(filename=str(path)))


def _display_markdown(text: str) -> None:
    try:
        from IPython.display import Markdown, display
    except ImportError:
        log.info("%s", text)
        return
    display(Markdown(text))


# ====================================================== feature selection hand-off
def save_selected_features(
    out: NotebookOutputs, selected: Sequence[str], cfg: TrainConfig, **details: Any
) -> Path:
    """Write notebook 02's selection beside its metrics, with the key of the config it was
    fitted under, so notebook 03 never picks up a selection made for other data."""
    from cryptoai.research.robustness import predictions_key

    payload = {"key": predictions_key(cfg), "features": list(selected), **details}
    return out.text(json.dumps(payload, indent=2) + "\n", SELECTED_FEATURES_FILE)


def load_selected_features(cfg: TrainConfig, folder: str | Path) -> list[str] | None:
    """The features notebook 02 selected for this very config, else ``None`` (not run, or
    run with other data, features, target, validation or seed)."""
    from cryptoai.research.robustness import predictions_key

    path = Path(folder) / SELECTED_FEATURES_FILE
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError:
        log.warning("%s is not valid JSON: not used", path)
        return None
    if not isinstance(payload, dict) or payload.get("key") != predictions_key(cfg):
        log.warning("%s was made by another config: not used", path)
        return None
    return [str(c) for c in payload.get("features", [])]
