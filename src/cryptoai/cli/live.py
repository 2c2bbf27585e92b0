"""``cryptoai live`` (the closed-bar loop, optionally paper-trading) and ``cryptoai drift``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

#: exit code of ``cryptoai drift`` when a statistic is past its threshold (for cron/alerts)
DRIFT_EXIT = 1


def live(
    model: Annotated[
        str, typer.Option("--model", help="registry URI, e.g. models:/btc-direction@champion")
    ],
    source: Annotated[str, typer.Option(help="binance | ccxt | synthetic (a ccxt id)")] = "binance",
    exchange: Annotated[
        str | None, typer.Option(help="ccxt exchange id for --source ccxt (kraken, okx...)")
    ] = None,
    symbol: Annotated[str, typer.Option(help="BTC/USDT or BTCUSDT")] = "BTC/USDT",
    timeframe: Annotated[str, typer.Option(help="bar length: 1m, 5m, 1h, 4h, 1d...")] = "1h",
    paper: Annotated[
        bool, typer.Option("--paper", help="paper-trade the predictions (ledger.json)")
    ] = False,
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="replace the exchange's REST base URL")
    ] = None,
    store: Annotated[Path, typer.Option("--store", help="raw candle store root")] = Path(
        "data/raw"
    ),
    live_dir: Annotated[
        Path, typer.Option("--live-dir", help="predictions and the paper ledger go under here")
    ] = Path("data/live"),
    config: Annotated[
        Path | None,
        typer.Option("--config", help="backtest YAML whose execution: settings paper-trading uses"),
    ] = None,
    fee_bps: Annotated[float | None, typer.Option(help="taker fee (bps), overrides")] = None,
    slippage_bps: Annotated[float | None, typer.Option(help="slippage (bps), overrides")] = None,
    threshold: Annotated[
        float, typer.Option(help="long when score > threshold (short below -threshold)")
    ] = 0.0,
    allow_short: Annotated[bool, typer.Option("--allow-short", help="trade shorts too")] = False,
    margin_bars: Annotated[
        int, typer.Option(help="history beyond the model's warm-up fed to each prediction")
    ] = 300,
    grace: Annotated[float, typer.Option(help="seconds after a bar's close before fetching")] = 5.0,
    poll: Annotated[
        float, typer.Option(help="seconds between retries while a bar is not published")
    ] = 30.0,
    once: Annotated[bool, typer.Option("--once", help="one step, then exit (cron)")] = False,
    max_bars: Annotated[
        int | None, typer.Option("--max-bars", help="stop after predicting N bars")
    ] = None,
    retries: Annotated[int | None, typer.Option(help="retries per request (default 5)")] = None,
    retry_delay: Annotated[float | None, typer.Option(help="first backoff delay (s)")] = None,
) -> None:
    """Predict every closed bar once (and paper-trade it with --paper); runs until stopped."""
    from cryptoai.backtest.settings import make_settings
    from cryptoai.data.sources import make_source
    from cryptoai.serve.live import LiveConfig, LiveLoop

    execution: dict = {}
    if config is not None:
        from cryptoai.cli.backtest import _read_config

        execution = dict(_read_config(config).get("execution") or {})
    overrides = {"fee_bps": fee_bps, "slippage_bps": slippage_bps}
    settings = make_settings(execution, **{k: v for k, v in overrides.items() if v is not None})
    cfg = LiveConfig(
        model=model,
        symbol=symbol,
        timeframe=timeframe,
        store_root=store,
        live_root=live_dir,
        paper=paper,
        execution=settings,
        threshold=threshold,
        allow_short=allow_short,
        margin_bars=margin_bars,
        grace_s=grace,
        poll_s=poll,
    )
    src = make_source(
        source,
        exchange=exchange,
        api_url=api_url,
        timeframe=timeframe,
        retries=retries,
        retry_delay_s=retry_delay,
    )
    try:
        loop = LiveLoop(cfg, src)
        typer.echo(f"live: {model} on {loop.key}; predictions in {loop.folder}")
        loop.run(once=once, max_bars=max_bars, on_step=lambda r: typer.echo(str(r)))
    finally:
        src.close()


def drift(
    model: Annotated[
        str, typer.Option("--model", help="registry URI, e.g. models:/btc-direction@champion")
    ],
    since: Annotated[str, typer.Option("--since", help="first bar of the live window (UTC)")],
    until: Annotated[
        str | None, typer.Option("--until", help="end of the live window (default: now)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="report folder (default reports/drift/NAME-vN)")
    ] = None,
    psi_max: Annotated[float, typer.Option("--psi-max", help="PSI threshold")] = 0.25,
    ks_max: Annotated[
        float | None, typer.Option("--ks-max", help="KS statistic threshold (default: none)")
    ] = None,
    store: Annotated[Path, typer.Option("--store", help="raw candle store root")] = Path(
        "data/raw"
    ),
    exchange: Annotated[str, typer.Option(help="exchange folder of the live series")] = "binance",
    symbol: Annotated[str | None, typer.Option(help="default: the model card's")] = None,
    timeframe: Annotated[str | None, typer.Option(help="default: the model card's")] = None,
    live_dir: Annotated[
        Path, typer.Option("--live-dir", help="where `cryptoai live` recorded predictions")
    ] = Path("data/live"),
) -> int:
    """PSI and KS of every feature and prediction, live vs training window, and the hit rate;
    exits 1 when one is past its threshold (for cron)."""
    from cryptoai.serve.drift import drift_report
    from cryptoai.serve.runtime import load_predictor

    predictor = load_predictor(model)
    folder = out or Path("reports") / "drift" / f"{predictor.name}-v{predictor.version}"
    report = drift_report(
        predictor,
        since,
        until,
        store_root=store,
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
        live_root=live_dir,
        psi_max=psi_max,
        ks_max=ks_max,
        out=folder,
    )
    typer.echo(f"drift report written to {folder / 'report.md'}")
    if not report.ok:
        typer.echo(report.summary(), err=True)
        raise typer.Exit(code=DRIFT_EXIT)
    typer.echo(report.summary())
    return 0


def register(app: typer.Typer) -> None:
    app.command()(live)
    app.command()(drift)
