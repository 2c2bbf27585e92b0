"""``cryptoai optimize``: grid / random / Optuna / walk-forward search with the statistics that
say how much of the best result is luck (deflated Sharpe ratio, PBO, trial ledger)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def optimize(
    config: Annotated[
        Path,
        typer.Option(
            "--config", "-c", help="optimize config, e.g. configs/optimize/ema_cross_grid.yaml"
        ),
    ],
    out: Annotated[
        Path | None, typer.Option(help="report folder (default reports/NAME_YYYYMMDD[_N]/)")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Optuna storage URL (default $CRYPTOAI_OPTUNA_STORAGE or sqlite optuna.db)"
        ),
    ] = None,
    study: Annotated[
        str | None, typer.Option(help="Optuna study name (default: the config's name)")
    ] = None,
    n_trials: Annotated[
        int | None, typer.Option("--n-trials", min=1, help="trials (random / optuna)")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="processes sharing the trials")] = 1,
    smoke: Annotated[
        bool, typer.Option("--smoke", help="last 1500 bars and a few trials: runs in seconds")
    ] = False,
    no_tracking: Annotated[
        bool,
        typer.Option("--no-tracking", help="no MLflow run and no trial-ledger entry"),
    ] = False,
) -> None:
    """Optimize a strategy's parameters; print the top trials and the luck statistics."""
    from cryptoai.optimize.runner import run_optimization

    result = run_optimization(
        config,
        out=out,
        storage=storage,
        study=study,
        n_trials=n_trials,
        workers=workers,
        smoke=smoke,
        tracking=not no_tracking,
    )
    print_summary(result)


def print_summary(result, n: int = 10) -> None:
    """The top trials and the statistics, as rich tables when rich is installed."""
    from cryptoai.optimize.results import SHOWN_METRICS, _fmt, statistics_lines, top_trials

    cfg = result.config
    names = list(cfg.space)
    metric = cfg.objective.metric
    header = ["#", *names, f"objective ({metric})", *(m for m in SHOWN_METRICS if m != metric)]
    rows = []
    for t in top_trials(result, n):
        rows.append(
            [
                str(t.number),
                *(_fmt(t.params.get(k)) for k in names),
                _fmt(t.value),
                *(_fmt(t.metrics.get(m)) for m in SHOWN_METRICS if m != metric),
            ]
        )
    stats = statistics_lines(result)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is a dependency of typer
        typer.echo("\t".join(header))
        for row in rows:
            typer.echo("\t".join(row))
        typer.echo("")
        for k, v in stats:
            typer.echo(f"{k}: {v}")
    else:
        console = Console()
        table = Table(title=f"{cfg.name}: top trials ({cfg.objective.direction} {metric})")
        for h in header:
            table.add_column(h, justify="right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
        st = Table(title="how much of it is luck")
        st.add_column("statistic")
        st.add_column("value", justify="right")
        for k, v in stats:
            st.add_row(k, v)
        console.print(st)
    if result.best:
        typer.echo(f"best: {result.best['params']}")
    if result.stable:
        typer.echo(f"stable: {result.stable['params']}")
    typer.echo(f"report: {result.out_dir}")
    if result.run_id:
        typer.echo(f"MLflow run {result.run_id}")


def register(app: typer.Typer) -> None:
    app.command()(optimize)
