"""Research: the experiment runner (papermill + MLflow) and its configs, the helpers the
numbered notebooks share, robustness studies and exploratory data analysis."""

from __future__ import annotations

from cryptoai._lazy import lazy_exports

_EXPORTS = {
    "ExperimentConfig": ".experiment_config",
    "load_experiment": ".experiment_config",
    "run_batch": ".experiments",
    "NotebookOutputs": ".notebook",
    "METRICS_FILE": ".notebook",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
