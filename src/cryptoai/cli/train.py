"""``cryptoai train``: walk-forward training from a model config, metrics beside the baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def train(
    config: Annotated[
        Path,
        typer.Option("--config", "-c", help="model config, e.g. configs/models/xgboost.yaml"),
    ],
    smoke: Annotated[
        bool, typer.Option("--smoke", help="tiny data, two folds, smoke model parameters")
    ] = False,
    no_tracking: Annotated[
        bool, typer.Option("--no-tracking", help="do not record an MLflow run")
    ] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar over folds")] = True,
) -> None:
    """Train a model with purged walk-forward validation; print per-fold metrics vs baseline."""
    from cryptoai.modeling.training import train as run_training

    result = run_training(config, tracking=not no_tracking, smoke=smoke or None, progress=progress)
    typer.echo(
        f"{result.config.name}: {result.config.model.name} ({result.task}) on "
        f"{len(result.predictions)} out-of-sample bars in {len(result.per_fold)} folds"
    )
    typer.echo(result.folds[["test_start", "test_end", "n_train", "n_test"]].to_string())
    typer.echo("")
    typer.echo(result.summary_text())
    if result.run_id:
        typer.echo(f"\nMLflow run {result.run_id}")


def register(app: typer.Typer) -> None:
    app.command()(train)
