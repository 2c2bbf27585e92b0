"""Paper trading on the backtester's execution kernel, one closed bar at a time.

The ledger holds the kernel's state vector (cash, units, pending order, stops...), every
fill and one row per bar traded (its candle, the decision, position, cash and equity). Each
new bar runs the kernel's two phases exactly as the backtester does: ``open_phase`` fills the
order decided at the previous close at this bar's open (fees, slippage, exits), then
``close_phase`` marks to market and turns this bar's decision into the next order. So a
paper ledger over bars B with decisions D equals ``run_vectorized(B, D, settings)`` with
``close_at_end=False`` (a live position is never closed out), fill for fill.

The market matrix is rebuilt from the ledger's own candles each bar, so bar numbers,
volatility windows and fee-tier days are those of one backtest over the ledger's bars, and a
store that later changes (a repaired hole) never rewrites what was traded.

Persistence: ``ledger.parquet`` (per bar) is written first, then ``ledger.json`` (state and
fills: the commit point), each atomically; a crash between them leaves extra rows in the
parquet file that the next load drops, so a killed and restarted loop ends on the same
ledger as one that never stopped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptoai._atomic import atomic_file
from cryptoai.backtest import _kernel as k
from cryptoai.backtest._market import market_matrix, may_fund, params
from cryptoai.backtest.result import FILL_REASONS
from cryptoai.backtest.settings import ExecutionSettings, make_settings
from cryptoai.errors import BadInputError

LEDGER_JSON = "ledger.json"
LEDGER_BARS = "ledger.parquet"
SCHEMA = 1
OHLCV = ["open", "high", "low", "close", "volume"]
BAR_COLUMNS = [*OHLCV, "target", "position", "cash", "equity"]
FILL_COLUMNS = ["time", "side", "size", "price", "fee", "reason", "funding"]


def paper_settings(settings: ExecutionSettings | dict | None = None) -> ExecutionSettings:
    """The settings a ledger trades with: the backtest's, never closing out at the end."""
    return make_settings(settings).with_(close_at_end=False)


@dataclass
class PaperLedger:
    """A paper account: kernel state, fills and one row per traded bar."""

    settings: ExecutionSettings
    state: np.ndarray
    bars: pd.DataFrame
    fills: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    _fill_rows: np.ndarray = field(default_factory=lambda: np.empty((0, k.N_FILL)), repr=False)

    @classmethod
    def new(cls, settings: ExecutionSettings | dict | None = None, **meta: Any) -> PaperLedger:
        cfg = paper_settings(settings)
        bars = pd.DataFrame(
            {c: pd.Series(dtype="float64") for c in BAR_COLUMNS},
            index=pd.DatetimeIndex([], tz="UTC", name="timestamp"),
        )
        return cls(cfg, k.new_state(cfg.initial_cash), bars, _empty_fills(), dict(meta))

    # ------------------------------------------------------------------ the account
    @property
    def last_bar(self) -> pd.Timestamp | None:
        return self.bars.index[-1] if len(self.bars) else None

    @property
    def position(self) -> float:
        return float(self.state[k.S_UNITS])

    @property
    def cash(self) -> float:
        return float(self.state[k.S_CASH])

    @property
    def equity(self) -> float:
        return float(self.bars["equity"].iloc[-1]) if len(self.bars) else self.cash

    def summary(self) -> dict[str, Any]:
        return {
            "bars": len(self.bars),
            "first_bar": None if not len(self.bars) else str(self.bars.index[0]),
            "last_bar": None if self.last_bar is None else str(self.last_bar),
            "position": self.position,
            "cash": self.cash,
            "equity": self.equity,
            "fills": len(self.fills),
            "pending_order": bool(self.state[k.S_ORD] != k.K_NONE),
        }

    # ------------------------------------------------------------------ one bar
    def advance(self, timestamp: pd.Timestamp, candle: pd.Series | dict, target: float) -> int:
        """Trade one closed bar: fill the pending order at its open, then decide ``target``
        at its close (NaN keeps the previous target). Returns the number of new fills."""
        ts = pd.Timestamp(timestamp)
        if self.last_bar is not None and ts <= self.last_bar:
            raise BadInputError(
                f"paper ledger is at {self.last_bar}: bar {ts} is not newer (each bar trades once)"
            )
        row = {c: float(candle[c]) for c in OHLCV}
        data = pd.concat(
            [self.bars[OHLCV], pd.DataFrame([row], index=pd.DatetimeIndex([ts], name="timestamp"))]
        )
        cfg = self.settings
        m = market_matrix(data, cfg)
        p = params(cfg, _param_index(data.index), m, funded=may_fund(cfg))
        i = len(data) - 1
        nf = int(self.state[k.S_NF])
        F = np.zeros((nf + k.FILL_HEADROOM, k.N_FILL))
        F[:nf] = self._fill_rows
        OUT = np.zeros((k.N_OUT, len(data)))
        S = self.state.copy()
        t = float(target) if target is not None else math.nan
        k.open_phase(S, F, p, m, i)
        has = (not math.isnan(t)) and t != S[k.S_LAST]
        if has:
            S[k.S_LAST] = t
        k.close_phase(S, F, p, m, OUT, i, has, t, k.K_MARKET, math.nan, False)
        new = int(S[k.S_NF]) - nf
        self.state = S
        self._fill_rows = F[: int(S[k.S_NF])].copy()
        bar = {
            **row,
            "target": t,
            "position": float(OUT[k.OUT_UNITS, i]),
            "cash": float(S[k.S_CASH]),
            "equity": float(OUT[k.OUT_EQUITY, i]),
        }
        self.bars = pd.concat(
            [self.bars, pd.DataFrame([bar], index=pd.DatetimeIndex([ts], name="timestamp"))]
        )[BAR_COLUMNS]
        if new:
            self.fills = _fills_frame(self._fill_rows, self.bars.index)
        return new

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_file(folder / LEDGER_BARS) as fh:
            self.bars.to_parquet(fh)
        doc = {
            "schema": SCHEMA,
            "settings": self.settings.to_dict(),
            "state": [_json_float(x) for x in self.state],
            "n_bars": len(self.bars),
            **self.summary(),
            "fill_rows": [[_json_float(x) for x in r] for r in self._fill_rows],
            "fills_table": [
                {**r, "time": str(r["time"])} for r in self.fills.to_dict(orient="records")
            ],
            "meta": self.meta,
        }
        with atomic_file(folder / LEDGER_JSON) as fh:
            fh.write(json.dumps(doc, indent=1, default=str).encode())

    @classmethod
    def load(
        cls, folder: str | Path, settings: ExecutionSettings | dict | None = None
    ) -> PaperLedger | None:
        """The ledger saved in ``folder`` (``None`` if there is none). With ``settings``, a
        ledger started with other execution settings is refused (its fills would not be
        those of one backtest)."""
        folder = Path(folder)
        path = folder / LEDGER_JSON
        if not path.is_file():
            return None
        try:
            doc = json.loads(path.read_text())
            bars = pd.read_parquet(folder / LEDGER_BARS)
        except (OSError, ValueError) as exc:
            raise BadInputError(
                f"paper ledger in {folder} is unreadable ({exc}): move it away to start afresh"
            ) from exc
        cfg = make_settings(doc["settings"])
        if settings is not None:
            wanted = paper_settings(settings)
            if wanted != cfg:
                diff = [
                    f"{key} {getattr(cfg, key)!r} -> {value!r}"
                    for key, value in wanted.to_dict().items()
                    if getattr(cfg, key) != value
                ]
                raise BadInputError(
                    f"paper ledger in {folder} was started with other execution settings"
                    f" ({', '.join(diff[:3])}): keep them, or use another --live-dir"
                )
        n = int(doc["n_bars"])
        bars = bars.iloc[:n]  # rows past the commit point: a crash between the two writes
        if len(bars) != n:
            raise BadInputError(
                f"paper ledger in {folder} lists {n} bars but {LEDGER_BARS} holds {len(bars)}:"
                " move it away to start afresh"
            )
        state = np.array([math.nan if x is None else float(x) for x in doc["state"]])
        if len(state) < k.N_STATE:  # a ledger from before the kernel kept round-trip tallies
            state = np.concatenate((state, np.zeros(k.N_STATE - len(state))))
        rows = np.array(
            [[math.nan if x is None else float(x) for x in r] for r in doc["fill_rows"]],
            dtype="float64",
        ).reshape(-1, k.N_FILL)
        bars.index = pd.DatetimeIndex(bars.index, name="timestamp")
        fills = _fills_frame(rows, bars.index) if len(rows) else _empty_fills()
        return cls(cfg, state, bars, fills, dict(doc.get("meta", {})), _fill_rows=rows)


def _param_index(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The kernel's parameters read the bar length (vol-target sizing): give it two bars."""
    if len(index) >= 2:
        return index
    return index.append(pd.DatetimeIndex([index[0] + pd.Timedelta(hours=1)]))


def _fills_frame(rows: np.ndarray, index: pd.DatetimeIndex) -> pd.DataFrame:
    if not len(rows):
        return _empty_fills()
    return pd.DataFrame(
        {
            "time": index[rows[:, 0].astype(np.int64)],
            "side": np.where(rows[:, 1] > 0, "buy", "sell"),
            "size": rows[:, 2],
            "price": rows[:, 3],
            "fee": rows[:, 4],
            "reason": [FILL_REASONS[int(r)] for r in rows[:, 5]],
            "funding": rows[:, 6],
        }
    )


def _empty_fills() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in FILL_COLUMNS})
    frame["time"] = pd.DatetimeIndex([], tz="UTC")
    frame[["side", "reason"]] = frame[["side", "reason"]].astype(object)
    return frame


def _json_float(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x
