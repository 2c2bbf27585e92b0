"""``cryptoai models``: the MLflow model registry: register a run's model, list, promote."""

from __future__ import annotations

from typing import Annotated

import typer

models_app = typer.Typer(
    name="models",
    help="Registered models: register a run's model, list versions, move aliases.",
    no_args_is_help=True,
)


@models_app.command("register")
def register_cmd(
    run: Annotated[str, typer.Option("--run", help="MLflow run id whose model to register")],
    name: Annotated[str, typer.Option("--name", help="registered model name")],
    alias: Annotated[
        str | None, typer.Option("--alias", help="point this alias (e.g. champion) at it")
    ] = None,
) -> None:
    """Register the model a run logged (``cryptoai train`` logs the final refit)."""
    from cryptoai.tracking.registry import register_model, run_model_uri

    version = register_model(run_model_uri(run), name, alias=alias)
    where = f" as {name}@{alias}" if alias else ""
    typer.echo(f"registered run {run} as {name} version {version}{where}")


@models_app.command("list")
def list_cmd(
    name: Annotated[str | None, typer.Argument(help="only this registered model")] = None,
) -> None:
    """Every registered version: aliases, label meaning, target, warm-up, run."""
    from cryptoai.tracking.registry import list_models

    table = list_models(name)
    if table.empty:
        typer.echo("no registered models (register one with `cryptoai models register`)")
        return
    typer.echo(table.to_string(index=False))


@models_app.command("promote")
def promote_cmd(
    name: Annotated[str, typer.Argument(help="registered model name")],
    version: Annotated[int, typer.Option("--version", help="version to point the alias at")],
    alias: Annotated[str, typer.Option("--alias", help="alias to move")] = "champion",
) -> None:
    """Point an alias (default ``champion``) at a version; services pick it up on reload."""
    from cryptoai.tracking.registry import promote

    promote(name, version, alias)
    typer.echo(f"{name}@{alias} -> version {version}")


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
