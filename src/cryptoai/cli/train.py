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
    register_as: Annotated[
        str | None,
        typer.Option("--register", help="register the final refit under this model name"),
    ] = None,
) -> None:
    """Train a model with purged walk-forward validation; print per-fold metrics vs baseline."""
    from cryptoai.errors import BadInputError
    from cryptoai.modeling.training import train as run_training

    if register_as and no_tracking:
        raise BadInputError("--register needs a tracked run: drop --no-tracking")
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
    if register_as:
        from cryptoai.tracking.registry import register_model

        if not result.model_uri:
            raise BadInputError(
                "--register needs a tracked run with a final model (drop --no-tracking)"
            )
        version = register_model(result.model_uri, register_as)
        typer.echo(f"registered {register_as} version {version}")


def register(app: typer.Typer) -> None:
    app.command()(train)
