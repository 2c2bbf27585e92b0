"""``cryptoai run`` (experiment configs through their notebooks) and ``cryptoai report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_STUDY = "cryptoai-experiments"
# Columns of `cryptoai report`, when present; metrics follow.
_REPORT_COLUMNS = ["run_id", "run_name", "status", "smoke", "start_time", "experiment_id", "model"]
# Headline metric names of experiment runs (see cryptoai.research.experiments.HEADLINE_METRICS).
_REPORT_METRICS = [
    "model.balanced_accuracy",
    "model.roc_auc",
    "model.log_loss",
    "model.ic",
    "model.mse",
    "backtest.sharpe",
    "backtest.benchmark.sharpe",
    "backtest.total_return",
    "backtest.max_drawdown",
]


def run(
    configs: Annotated[
        list[str],
        typer.Argument(
            help="experiment configs, e.g. configs/experiments/*.yaml", show_default=False
        ),
    ],
    smoke: Annotated[
        bool, typer.Option("--smoke", help="tiny data and models: a check that runs in seconds")
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="configs run at once", min=1)] = 1,
    experiments_root: Annotated[
        Path | None,
        typer.Option(help="where experiment folders go (default: experiments/)"),
    ] = None,
    notebooks_dir: Annotated[
        Path | None, typer.Option(help="folder of the numbered notebooks (default: notebooks/)")
    ] = None,
    kernel: Annotated[str, typer.Option(help="Jupyter kernel that runs the notebooks")] = "python3",
    progress: Annotated[bool, typer.Option(help="show a progress bar over configs")] = True,
) -> int:
    """Run experiment configs end to end: notebooks via papermill, one MLflow run each."""
    import logging

    from cryptoai.research.experiments import results_message, run_batch

    if logging.getLogger().level > logging.DEBUG:  # unless -v: routine lines of the libraries
        # papermill's per-notebook lines; MLflow's "Creating initial MLflow database tables"
        # on a new store and "Validating input example against model signature" per model.
        for name in ("papermill", "mlflow.store.db.utils", "mlflow.pyfunc", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)

    results = run_batch(
        configs,
        smoke=smoke,
        jobs=jobs,
        experiments_root=experiments_root,
        notebooks_dir=notebooks_dir,
        kernel_name=kernel,
        progress=progress,
    )
    typer.echo(results_message(results))
    return 0 if all(r.ok for r in results) else 1


def report(
    study: Annotated[
        str, typer.Option("--study", "-s", help="MLflow experiment holding the runs")
    ] = DEFAULT_STUDY,
    all_runs: Annotated[
        bool, typer.Option("--all", help="include each notebook's nested run")
    ] = False,
    limit: Annotated[int, typer.Option(help="newest runs shown", min=1)] = 20,
) -> None:
    """Print the runs of a study (newest first): status, template fields and key metrics."""

    import pandas as pd

    from cryptoai.tracking.runs import runs_table

    table = runs_table(study)
    if not table.empty:
        tags = _run_tags(study, ["mlflow.parentRunId", "smoke"]).reindex(table["run_id"])
        table = table.copy()  # de-fragmented, one column added
        table["smoke"] = tags["smoke"].eq("true").map({True: "yes", False: ""}).to_numpy()
        if not all_runs:
            table = table[tags["mlflow.parentRunId"].isna().to_numpy()]
    if table.empty:
        typer.echo(f"no runs in '{study}' yet: run python scripts/run_experiments.py CONFIGS")
        return
    columns = [c for c in _REPORT_COLUMNS if c in table]
    metrics = [c for c in _REPORT_METRICS if c in table]
    shown = table.head(limit)[columns + metrics].copy()
    shown["run_id"] = shown["run_id"].str[:8]
    if "start_time" in shown:
        shown["start_time"] = pd.to_datetime(shown["start_time"], utc=True).dt.strftime(
            "%Y-%m-%d %H:%M"
        )
    with pd.option_context("display.width", 250, "display.max_columns", None):
        typer.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-"))
    more = len(table) - len(shown)
    typer.echo(
        f"\n{len(shown)} run(s) of '{study}'" + (f" ({more} older not shown)" if more else "")
    )


def _run_tags(study: str, names: list[str]):
    """The given tags of every run of a study, indexed by run id (None where unset)."""
    import mlflow
    import pandas as pd

    experiment = mlflow.MlflowClient().get_experiment_by_name(study)
    runs = mlflow.search_runs(experiment_ids=[experiment.experiment_id])
    return pd.DataFrame({n: runs.get(f"tags.{n}") for n in names}).set_index(runs["run_id"])


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(report)
