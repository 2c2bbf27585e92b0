"""MLflow tracking: where runs go (`_store`), what every run records (`runs`), the model
registry (`registry`) and the diagnostic plots logged with runs (`plots`).

Names load on first use, so ``from cryptoai import tracking`` does not import MLflow until a
run is actually recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptoai._lazy import lazy_exports

if TYPE_CHECKING:
    from cryptoai.tracking._store import (
        ARTIFACT_ROOT_ENV,
        active_run_id,
        artifact_root,
        configure,
        tracking_uri,
    )
    from cryptoai.tracking.plots import (
        plot_calibration,
        plot_confusion_matrix,
        plot_feature_importance,
    )
    from cryptoai.tracking.registry import (
        load_model,
        log_model,
        model_requirements,
        register_model,
    )
    from cryptoai.tracking.runs import (
        RunTemplate,
        config_params,
        git_info,
        log_dataframe,
        log_figure,
        log_fold_metrics,
        log_text,
        package_versions,
        runs_table,
        set_backtest_summary,
        tracked_run,
    )

_EXPORTS = {
    "ARTIFACT_ROOT_ENV": "._store",
    "active_run_id": "._store",
    "artifact_root": "._store",
    "configure": "._store",
    "tracking_uri": "._store",
    "RunTemplate": ".runs",
    "config_params": ".runs",
    "git_info": ".runs",
    "log_dataframe": ".runs",
    "log_figure": ".runs",
    "log_fold_metrics": ".runs",
    "log_text": ".runs",
    "package_versions": ".runs",
    "runs_table": ".runs",
    "set_backtest_summary": ".runs",
    "tracked_run": ".runs",
    "load_model": ".registry",
    "log_model": ".registry",
    "model_requirements": ".registry",
    "register_model": ".registry",
    "plot_calibration": ".plots",
    "plot_confusion_matrix": ".plots",
    "plot_feature_importance": ".plots",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
