"""``cryptoai features``: compute a feature spec on OHLCV data and write one row per bar."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

log = logging.getLogger(__name__)

DEFAULT_SPEC = Path("configs/features/default.yaml")


def features(
    data: str = typer.Option(
        ..., help="CSV/Parquet OHLCV file, or a store reference exchange/symbol/timeframe"
    ),
    spec: Path = typer.Option(DEFAULT_SPEC, help="feature spec YAML"),
    out: Path = typer.Option(..., help="output file (.parquet, or .csv)"),
    start: str = typer.Option(None, help="first bar, inclusive (UTC)"),
    end: str = typer.Option(None, help="end, exclusive (UTC)"),
    store: Path = typer.Option(Path("data/raw"), help="store root for exchange/symbol/timeframe"),
) -> None:
    """Compute features: one row per input bar, indexed by its timestamp; NaN during warm-up."""
    from cryptoai.data.loading import load_frame
    from cryptoai.errors import BadInputError
    from cryptoai.features.engineering import build_features
    from cryptoai.features.spec import load_feature_spec

    suffix = out.suffix.lower()
    if suffix not in {".parquet", ".pq", ".csv"}:
        raise BadInputError(f"--out {out}: write .parquet or .csv")
    feature_spec = load_feature_spec(spec)  # a broken spec fails before loading data
    ohlcv = load_frame(data, start, end, store_root=store)
    frame = build_features(ohlcv, feature_spec)
    _write(frame, out)
    typer.echo(f"{out}: {frame.shape[0]} bars x {frame.shape[1]} features")


def _write(frame, out: Path) -> None:
    """Write through a temporary file, so an interrupted run leaves no half-written output."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if out.suffix.lower() == ".csv":
            frame.to_csv(tmp)
        else:
            frame.to_parquet(tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


def register(app: typer.Typer) -> None:
    app.command()(features)
