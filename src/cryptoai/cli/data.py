"""Data commands: ``fetch`` candles into the store, ``validate`` them, list ``coverage``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("data/raw")


def fetch(
    source: str = typer.Option(
        "synthetic", help="synthetic | binance | ccxt | coingecko | csv (or a ccxt exchange id)"
    ),
    exchange: str = typer.Option(None, help="ccxt exchange id for --source ccxt (kraken, okx...)"),
    symbol: list[str] = typer.Option(["BTC/USDT"], help="BTC/USDT or BTCUSDT; repeatable"),
    timeframe: str = typer.Option("1h", help="1m, 5m, 15m, 1h, 4h, 1d ..."),
    start: str = typer.Option(None, help="first bar, inclusive (UTC), e.g. 2023-01-01"),
    end: str = typer.Option(None, help="end, exclusive (UTC); default: now"),
    out: Path = typer.Option(DEFAULT_ROOT, help="store root"),
    api_url: str = typer.Option(
        None, help="replace the exchange's REST base URL (testnet, mirror)"
    ),
    path: Path = typer.Option(None, help="file to import with --source csv"),
    seed: int = typer.Option(42, help="seed of the synthetic source"),
    retries: int = typer.Option(
        None, help="retries per request on network errors, 429, 5xx and bad pages (default 5)"
    ),
    retry_delay: float = typer.Option(
        None, help="first backoff delay in seconds, doubled per retry (default 1)"
    ),
    on_bad_candle: str = typer.Option(
        "fail",
        help="a candle that stays bad after retries: fail (stop, store nothing of its page)"
        " or skip (store the good ones, leave the bad ones missing)",
    ),
    repair: bool = typer.Option(
        False, help="first rebuild the manifest from the files that verify, then re-fetch"
    ),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """Fetch candles into the raw store; re-running fetches only what is missing."""
    with _store_errors(out):
        _fetch(**locals())


def repair(
    source: str = typer.Option(
        "synthetic", help="synthetic | binance | ccxt | coingecko | csv (or a ccxt exchange id)"
    ),
    exchange: str = typer.Option(None, help="ccxt exchange id for --source ccxt (kraken, okx...)"),
    symbol: list[str] = typer.Option(["BTC/USDT"], help="BTC/USDT or BTCUSDT; repeatable"),
    timeframe: str = typer.Option("1h", help="1m, 5m, 15m, 1h, 4h, 1d ..."),
    start: str = typer.Option(None, help="first bar to re-check (default: the series' first day)"),
    end: str = typer.Option(None, help="end, exclusive (default: after the series' last day)"),
    out: Path = typer.Option(DEFAULT_ROOT, help="store root"),
    api_url: str = typer.Option(None, help="replace the exchange's REST base URL"),
    path: Path = typer.Option(None, help="file to import with --source csv"),
    seed: int = typer.Option(42, help="seed of the synthetic source"),
    retries: int = typer.Option(None, help="retries per request (default 5)"),
    retry_delay: float = typer.Option(None, help="first backoff delay in seconds (default 1)"),
    on_bad_candle: str = typer.Option("fail", help="fail or skip (see fetch)"),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """Repair a series: keep the day files that match the manifest (or, with the manifest
    lost, that read back whole and meet the contract), remove the rest, rebuild the manifest
    and fetch again what is missing. Same as ``fetch --repair``."""
    with _store_errors(out):
        _fetch(**locals(), repair=True)


def _fetch(
    *,
    source: str,
    exchange: str | None,
    symbol: list[str],
    timeframe: str,
    start: str | None,
    end: str | None,
    out: Path,
    api_url: str | None,
    path: Path | None,
    seed: int,
    retries: int | None,
    retry_delay: float | None,
    on_bad_candle: str,
    repair: bool,
    progress: bool,
) -> None:
    from cryptoai.data.fetch import fetch_to_store
    from cryptoai.data.sources import make_source
    from cryptoai.data.store import RawStore
    from cryptoai.data.timeframes import parse_range, timeframe_to_timedelta
    from cryptoai.errors import BadInputError

    timeframe_to_timedelta(timeframe)  # reject a bad timeframe before any network call
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out {out} is a file: give the store folder (default data/raw)")
    if source == "csv" and path is not None and start is None:
        start, end = _file_range(path, timeframe, end)
    if start is None and not repair:
        raise BadInputError("--start is required: the first bar to fetch, e.g. --start 2023-01-01")
    src = make_source(
        source,
        exchange=exchange,
        api_url=api_url,
        path=path,
        timeframe=timeframe,
        seed=seed,
        retries=retries,
        retry_delay_s=retry_delay,
        on_bad_candle=on_bad_candle,
    )
    store = RawStore(out)
    try:
        for sym in symbol:
            first, stop = start, end
            if repair:
                key = store.key(src.exchange, src.resolve_symbol(sym), timeframe)
                span = store.extent(*key)
                typer.echo(str(store.repair(*key)))
                if first is None:
                    if span is None:
                        raise BadInputError(
                            f"nothing is stored for {key} under {out}: give --start to fetch it"
                        )
                    first, stop = str(span[0]), stop or str(span[1])
            first, stop = parse_range(first, stop)
            report = fetch_to_store(src, store, sym, timeframe, first, stop, progress=progress)
            typer.echo(str(report))
    finally:
        src.close()


@contextmanager
def _store_errors(root: Path) -> Iterator[None]:
    """OS errors outside the store's own handling (a report path, a file as --out) as one line."""
    from cryptoai.data.store import StoreError

    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        where = exc.filename or root
        raise StoreError(f"cannot use {where} ({reason}): check the path and the disk") from exc


def _file_range(path: Path, timeframe: str, end: str | None) -> tuple[str, str]:
    """A CSV import without --start takes the whole file."""
    from cryptoai.data.sources.csv_source import read_ohlcv_file
    from cryptoai.data.timeframes import timeframe_to_timedelta

    index = read_ohlcv_file(path).index
    return str(index[0]), end or str(index[-1] + timeframe_to_timedelta(timeframe))


def validate(
    root: Path = typer.Option(DEFAULT_ROOT, help="store root"),
    exchange: str = typer.Option(None, help="only this exchange"),
    symbol: str = typer.Option(None, help="only this symbol"),
    timeframe: str = typer.Option(None, help="only this timeframe"),
    report: Path = typer.Option(
        None, help="write a data quality report here, e.g. docs/data_quality.md"
    ),
    eda_dir: Path = typer.Option(Path("docs/eda"), help="where the report's plots go"),
) -> None:
    """Verify checksums and the OHLCV contract of every stored series; print a quality summary."""
    from cryptoai.data.coverage import coverage, format_holes
    from cryptoai.data.quality import quality_report, quality_summary
    from cryptoai.data.store import RawStore
    from cryptoai.data.symbols import canonical
    from cryptoai.data.validate import validate_ohlcv
    from cryptoai.errors import BadInputError, DataValidationError

    store = RawStore(root)
    keys = [
        k
        for k in store.series()
        if (exchange is None or k.exchange == exchange)
        and (symbol is None or canonical(k.symbol) == canonical(symbol))
        and (timeframe is None or k.timeframe == timeframe)
    ]
    if not keys:
        raise BadInputError(
            f"no stored series under {root} match: fetch some first, e.g. "
            "cryptoai fetch --source synthetic --symbol BTC/USDT --timeframe 1h --start 2023-01-01"
        )
    with _store_errors(root):
        problems = store.verify()
        series = {}
        broken = []
        repairs = []
        for k in keys:
            name = f"{k.exchange}/{canonical(k.symbol)}/{k.timeframe}"
            try:
                frame = store.load(k.exchange, k.symbol, k.timeframe)
            except DataValidationError as exc:  # a day file that does not verify
                repairs.append(store.repair_command(k))
                log.debug("%s not loaded: %s", name, exc)
                continue
            series[name] = (frame, k.timeframe)
            result = validate_ohlcv(frame, k.timeframe)
            if not result.ok:
                broken.append(f"{name}: {result.summary()}")
                repairs.append(store.repair_command(k))
        if series:
            typer.echo(quality_summary(series))
        holes = format_holes(coverage(root))
        if holes:
            typer.echo(holes)
        if report is not None and series:
            quality_report(series, report, eda_dir)
            typer.echo(f"data quality report written to {report}")
    for p in problems:
        typer.echo(f"checksum: {p}", err=True)
    if problems or broken or repairs:
        raise DataValidationError(
            f"{len(problems)} file problem(s) and {len(broken)} series breaking the OHLCV contract"
            f"{': ' + broken[0] if broken else ''}; "
            + (f"repair with: {repairs[0]}" if repairs else "each line above names its repair")
        )


def coverage(root: Path = typer.Option(DEFAULT_ROOT, help="store root")) -> None:
    """List per exchange/symbol/timeframe: first and last bar, bars, missing bars and gaps."""
    from cryptoai.data.coverage import coverage as store_coverage
    from cryptoai.data.coverage import format_coverage, format_holes

    table = store_coverage(root)
    typer.echo(format_coverage(table))
    holes = format_holes(table)
    if holes:
        typer.echo(holes)


def register(app: typer.Typer) -> None:
    app.command()(fetch)
    app.command()(repair)
    app.command()(validate)
    app.command()(coverage)
