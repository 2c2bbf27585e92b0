"""The live loop: on every closed bar, sync the store, predict, record, and paper-trade.

One ``step``:

1. syncs the raw store incrementally (``fetch_to_store``: only the bars it lacks, from the
   last stored bar, clipped to the bars closed ``grace`` ago, so a candle still in progress
   is never stored or predicted);
2. predicts every closed bar not predicted yet (the latest one on a first start; each bar
   missed while the loop was down on a restart), each from the ``warm-up + margin`` bars up
   to and including it, with the model the URI points at now (``cryptoai.predict``'s
   loader: a promoted champion is picked up at the next bar);
3. appends one row per bar to ``{live_root}/{exchange}/{SYMBOL}/{timeframe}/predictions
   .parquet`` (atomic rewrite; a bar already there is never predicted again);
4. with ``paper``, trades every predicted bar the ledger has not seen through the
   backtester's kernel (``cryptoai.serve.paper``): the decision at bar t's close fills at
   bar t+1's open with the execution settings' fees and slippage.

The clock is injected (``Clock``: ``now()`` and ``sleep_until(t)``), so tests and notebooks
drive the loop through hours of bars without waiting. ``run`` steps, then sleeps until the
bar in progress has closed plus ``grace``; when the exchange has not published the bar yet,
it polls again after ``poll_s``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from cryptoai.backtest.settings import ExecutionSettings, make_settings
from cryptoai.data.symbols import canonical, path_safe
from cryptoai.data.timeframes import floor_to_bar, timeframe_to_timedelta
from cryptoai.errors import BadInputError

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.parquet"
META_COLUMNS = ["target", "model_name", "model_version", "predicted_at"]


class Clock(Protocol):
    """What the loop needs of time: the current instant, and a way to wait for one."""

    def now(self) -> pd.Timestamp: ...

    def sleep_until(self, t: pd.Timestamp) -> None: ...


class SystemClock:
    """The wall clock (UTC)."""

    def now(self) -> pd.Timestamp:
        return pd.Timestamp.now(tz="UTC")

    def sleep_until(self, t: pd.Timestamp) -> None:
        delay = (pd.Timestamp(t) - self.now()).total_seconds()
        if delay > 0:
            time.sleep(delay)


class ManualClock:
    """A clock that moves only when told (or when the loop sleeps): tests and notebooks."""

    def __init__(self, t: Any) -> None:
        self.t = _utc(t)
        self.sleeps: list[pd.Timestamp] = []

    def now(self) -> pd.Timestamp:
        return self.t

    def sleep_until(self, t: pd.Timestamp) -> None:
        t = _utc(t)
        self.sleeps.append(t)
        self.t = max(self.t, t)

    def advance(self, delta: Any) -> pd.Timestamp:
        self.t = self.t + pd.Timedelta(delta)
        return self.t


@dataclass(frozen=True)
class LiveConfig:
    """What to run live: the model, the series, where things go, how to trade it."""

    model: str
    symbol: str = "BTC/USDT"
    timeframe: str = "1h"
    store_root: Path = Path("data/raw")
    live_root: Path = Path("data/live")
    paper: bool = False
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
    #: long when score > threshold; short when score < -threshold and allow_short; else flat
    threshold: float = 0.0
    allow_short: bool = False
    #: bars of history beyond the model's warm-up (smoothed features converge over them)
    margin_bars: int = 300
    grace_s: float = 5.0
    poll_s: float = 30.0

    def __post_init__(self) -> None:
        timeframe_to_timedelta(self.timeframe)
        object.__setattr__(self, "symbol", canonical(self.symbol))
        object.__setattr__(self, "execution", make_settings(self.execution))
        if not (math.isfinite(self.threshold) and 0 <= self.threshold < 1):
            raise BadInputError(f"threshold {self.threshold}: use a score level in [0, 1)")
        if self.margin_bars < 0 or self.grace_s < 0 or self.poll_s <= 0:
            raise BadInputError("margin_bars and grace_s must be >= 0 and poll_s > 0")


@dataclass
class StepReport:
    """What one step did."""

    at: pd.Timestamp
    predicted: list[pd.Timestamp] = field(default_factory=list)
    traded: list[pd.Timestamp] = field(default_factory=list)
    fills: int = 0
    bars_written: int = 0
    behind: bool = False  # the latest closed bar is not in the store yet
    ledger: dict[str, Any] | None = None

    def __str__(self) -> str:
        text = f"{self.at:%Y-%m-%d %H:%M:%S}: {len(self.predicted)} bar(s) predicted"
        if self.predicted:
            text += f" (last {self.predicted[-1]:%Y-%m-%d %H:%M})"
        if self.ledger is not None:
            text += (
                f"; paper: {len(self.traded)} bar(s), {self.fills} fill(s), position"
                f" {self.ledger['position']:.6g}, equity {self.ledger['equity']:.2f}"
            )
        if self.behind:
            text += "; latest bar not published yet"
        return text


def decide(score: float, threshold: float = 0.0, allow_short: bool = False) -> float:
    """Target position from a score in [-1, 1]: +1, -1 (if shorts are allowed), 0; NaN keeps."""
    if score is None or not math.isfinite(score):
        return math.nan
    if score > threshold:
        return 1.0
    if allow_short and score < -threshold:
        return -1.0
    return 0.0


def live_dir(live_root: str | Path, exchange: str, symbol: str, timeframe: str) -> Path:
    return Path(live_root) / exchange / path_safe(symbol) / timeframe


def load_predictions(folder: str | Path) -> pd.DataFrame:
    """The live predictions recorded in ``folder`` (empty frame if none yet)."""
    path = Path(folder) / PREDICTIONS
    if not path.is_file():
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="timestamp"))
    return pd.read_parquet(path)


class LiveLoop:
    """The closed-bar loop for one series and one model (see the module docstring)."""

    def __init__(
        self,
        config: LiveConfig,
        source: Any,
        clock: Clock | None = None,
        *,
        loader: Any = None,
    ) -> None:
        from cryptoai.data.store import RawStore

        self.config = config
        self.source = source
        self.clock = clock or SystemClock()
        self.store = RawStore(config.store_root)
        self.key = self.store.key(
            source.exchange, source.resolve_symbol(config.symbol), config.timeframe
        )
        self.folder = live_dir(
            config.live_root, self.key.exchange, self.key.symbol, self.key.timeframe
        )
        self.td = timeframe_to_timedelta(config.timeframe)
        self._loader = loader

    # ------------------------------------------------------------------ one step
    def predictor(self) -> Any:
        if self._loader is not None:
            return self._loader(self.config.model)
        from cryptoai.serve.runtime import load_predictor

        return load_predictor(self.config.model)

    def step(self) -> StepReport:
        """Sync, predict each new closed bar once, paper-trade it (see the module docstring)."""
        from cryptoai.data.fetch import fetch_to_store

        cfg, key = self.config, self.key
        now = self.clock.now()
        as_of = now - pd.Timedelta(seconds=cfg.grace_s)
        closed_end = floor_to_bar(as_of, cfg.timeframe)  # open of the bar in progress
        report = StepReport(at=now)
        predictor = self.predictor()
        history = predictor.min_bars + cfg.margin_bars
        preds = load_predictions(self.folder)
        last = preds.index[-1] if len(preds) else None
        first_new = last + self.td if last is not None else closed_end - self.td
        window_start = first_new - history * self.td
        if first_new < closed_end:
            fetched = fetch_to_store(
                self.source,
                self.store,
                key.symbol,
                key.timeframe,
                window_start,
                closed_end,
                progress=False,
                now=as_of,
            )
            report.bars_written = fetched.bars_written
        candles = self._candles(window_start, closed_end)
        report.behind = not len(candles) or candles.index[-1] < closed_end - self.td
        new = candles.index[candles.index >= first_new] if last is not None else candles.index[-1:]
        for ts in new:
            window = candles.loc[:ts].iloc[-history:]
            if len(window) < predictor.min_bars:
                log.warning(
                    "%s: %d bars up to %s, the model needs %d: not predicted",
                    key,
                    len(window),
                    ts,
                    predictor.min_bars,
                )
                continue
            out = predictor.predict(window).iloc[-1]
            row = {c: float(out[c]) for c in predictor.outputs}
            row["target"] = decide(row.get("score", math.nan), cfg.threshold, cfg.allow_short)
            row |= {
                "model_name": predictor.name,
                "model_version": int(predictor.version),
                "predicted_at": now,
            }
            preds = _append(preds, ts, row)
            _write_predictions(self.folder, preds)
            report.predicted.append(ts)
            log.info("%s %s: %s", key, ts, {c: row[c] for c in predictor.outputs})
        if cfg.paper:
            self._trade(preds, candles, report)
        return report

    def _candles(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        key = self.key
        if self.store.extent(*key) is None:
            return pd.DataFrame()
        return self.store.load(key.exchange, key.symbol, key.timeframe, start, end)

    def _trade(self, preds: pd.DataFrame, candles: pd.DataFrame, report: StepReport) -> None:
        from cryptoai.serve.paper import PaperLedger

        cfg = self.config
        ledger = PaperLedger.load(self.folder, cfg.execution)
        if ledger is None:
            if not report.predicted:
                return
            ledger = PaperLedger.new(
                cfg.execution,
                model=cfg.model,
                series=str(self.key),
                threshold=cfg.threshold,
                allow_short=cfg.allow_short,
            )
            todo = preds.loc[report.predicted[0] :]
        else:
            todo = preds[preds.index > ledger.last_bar] if ledger.last_bar is not None else preds
        if todo.empty:
            report.ledger = ledger.summary()
            return
        missing = todo.index.difference(candles.index)
        if len(missing):  # older than this step's window (a ledger far behind)
            key = self.key
            older = self.store.load(key.exchange, key.symbol, key.timeframe, missing[0], None)
            candles = pd.concat([older[~older.index.isin(candles.index)], candles]).sort_index()
        for ts, row in todo.iterrows():
            report.fills += ledger.advance(ts, candles.loc[ts], float(row["target"]))
            report.traded.append(ts)
        ledger.save(self.folder)
        report.ledger = ledger.summary()

    # ------------------------------------------------------------------ the loop
    def run(
        self,
        *,
        once: bool = False,
        max_bars: int | None = None,
        on_step: Callable[[StepReport], Any] | None = None,
    ) -> list[StepReport]:
        """Step now, then after every bar close (plus grace) until ``max_bars`` bars were
        predicted (``once``: a single step; neither: forever). ``on_step`` sees each report."""
        if max_bars is not None and max_bars < 1:
            raise BadInputError(f"--max-bars {max_bars}: give a number of bars >= 1")
        with self._only_loop():
            return self._run(once=once, max_bars=max_bars, on_step=on_step)

    @contextlib.contextmanager
    def _only_loop(self) -> Iterator[None]:
        """One loop per series: a second one would predict and paper-trade the same bars
        twice, so it stops at once with a one-line error instead of waiting."""
        from filelock import FileLock, Timeout

        self.folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.folder / ".live.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise BadInputError(
                f"another live loop runs on {self.key} (lock {lock.lock_file}): stop it first,"
                " or give this one its own --live-dir"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def _run(
        self,
        *,
        once: bool,
        max_bars: int | None,
        on_step: Callable[[StepReport], Any] | None,
    ) -> list[StepReport]:
        reports: list[StepReport] = []
        done = 0
        grace = pd.Timedelta(seconds=self.config.grace_s)
        while True:
            report = self.step()
            reports.append(report)
            log.info("%s", report)
            if on_step is not None:
                on_step(report)
            done += len(report.predicted)
            if once or (max_bars is not None and done >= max_bars):
                return reports
            now = self.clock.now()
            wake = floor_to_bar(now - grace, self.config.timeframe) + self.td + grace
            if report.behind:
                wake = min(wake, now + pd.Timedelta(seconds=self.config.poll_s))
            self.clock.sleep_until(wake)


def _append(preds: pd.DataFrame, ts: pd.Timestamp, row: dict[str, Any]) -> pd.DataFrame:
    if ts in preds.index:
        raise BadInputError(f"bar {ts} is already predicted: a bar is predicted once")
    add = pd.DataFrame([row], index=pd.DatetimeIndex([ts], name="timestamp"))
    if preds.empty:
        return add
    out = pd.concat([preds, add])
    return out[list(dict.fromkeys([*preds.columns, *add.columns]))]


def _write_predictions(folder: Path, preds: pd.DataFrame) -> None:
    from cryptoai._atomic import atomic_file

    folder.mkdir(parents=True, exist_ok=True)
    frame = preds.copy()
    frame["model_version"] = frame["model_version"].astype("int64")
    frame["target"] = frame["target"].astype("float64")
    with atomic_file(folder / PREDICTIONS) as fh:
        frame.to_parquet(fh)


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


__all__ = [
    "Clock",
    "LiveConfig",
    "LiveLoop",
    "ManualClock",
    "StepReport",
    "SystemClock",
    "decide",
    "live_dir",
    "load_predictions",
]
