"""``cryptoai rl train``: train a PPO / DQN agent on the backtester's execution model and
evaluate it out of sample beside buy-and-hold and flat."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

rl_app = typer.Typer(
    help="Reinforcement learning on the backtester's execution model.", no_args_is_help=True
)


@rl_app.command("train")
def train(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="RL config, e.g. configs/rl/ppo.yaml")
    ],
    bucket: Annotated[
        str | None,
        typer.Option(help="trading-horizon preset: scalping | short | medium | long"),
    ] = None,
    smoke: Annotated[bool, typer.Option("--smoke", help="tiny data and steps (seconds)")] = False,
    resume: Annotated[
        Path | None,
        typer.Option(help="continue from a checkpoint folder (or a run folder: its latest)"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="folder for metrics.json (default experiments/rl/RUN)")
    ] = None,
    no_tracking: Annotated[
        bool, typer.Option("--no-tracking", help="do not record an MLflow run")
    ] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar over steps")] = True,
) -> None:
    """Train on a walk-forward training window; evaluate on the test window after it."""
    from cryptoai.rl.training import train_rl

    result = train_rl(
        config,
        bucket=bucket,
        smoke=smoke,
        resume=resume,
        out=out,
        tracking=not no_tracking,
        progress=progress,
    )
    typer.echo(
        f"{result.run_name}: {result.timesteps} steps; trained on {result.train_window[0]} .."
        f" {result.train_window[1]}, evaluated on {result.eval_window[0]} .."
        f" {result.eval_window[1]}"
    )
    typer.echo(result.summary_text())
    typer.echo(f"\nmetrics: {result.out_dir / 'metrics.json'}")
    typer.echo(f"checkpoints: {result.checkpoint_dir}")
    if result.run_id:
        typer.echo(f"MLflow run {result.run_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(rl_app, name="rl")
