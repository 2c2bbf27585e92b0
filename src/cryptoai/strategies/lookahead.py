"""Lookahead proof for a strategy: change the future, and the past decisions must not move.

``check_lookahead(strategy, data)`` picks a few decision bars t at random, rewrites every bar
after t (a different price path, other volumes, the later rows of any extra column shuffled)
and runs the strategy again. A strategy that reads only bars up to t decides exactly the same
on bars 0..t; one that reads a later bar (a ``shift(-1)``, a full-sample statistic, a
centered window) changes some decision there, and the report names the first such bar.

What is compared is the strategy's decisions: its ``signals`` when it has them, else what
``on_bar`` returns and the orders it places, bar by bar, under the event engine. A few
sampled points keep the check cheap (one extra run per point), so it can run before every
backtest of a plugin strategy. Passing is evidence, not proof: a leak that shows only on
bars no point reached can pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from cryptoai.errors import BadInputError
from cryptoai.strategies.base import BaseStrategy

Mode = Literal["auto", "signals", "event"]
PRICES = ("open", "high", "low", "close")


@dataclass(frozen=True)
class LookaheadReport:
    """Outcome of ``check_lookahead``.

    ``ok``: no decision on or before a sampled bar changed. ``points``: the sampled decision
    bars (each run rewrote every bar after one of them). ``first_difference``: the earliest
    decision bar that changed (None when ok), found when the bars after
    ``perturbed_after`` were rewritten. ``mode``: ``signals`` or ``event``. ``details``:
    bars, seed and ``points_with_later_changes`` (rewrites that changed a decision after
    their point: 0 means the strategy ignored the rewritten prices altogether).
    """

    strategy: str
    ok: bool
    points: tuple[pd.Timestamp, ...]
    first_difference: pd.Timestamp | None = None
    perturbed_after: pd.Timestamp | None = None
    mode: str = "signals"
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def n_points(self) -> int:
        return len(self.points)

    @property
    def message(self) -> str:
        if self.ok:
            return (
                f"strategy {self.strategy}: no lookahead found ({self.mode}, "
                f"{self.n_points} sampled decision bars)"
            )
        return (
            f"strategy {self.strategy} looks ahead: its decision at {self.first_difference}"
            f" changed when only bars after {self.perturbed_after} were changed ({self.mode});"
            " it reads data from later bars: use only data up to the decision bar"
        )

    def __str__(self) -> str:
        return self.message

    def raise_if_failed(self) -> LookaheadReport:
        """Raise a one-line BadInputError naming the first changed bar; else return self."""
        if not self.ok:
            raise BadInputError(self.message)
        return self


def check_lookahead(
    strategy: str | type[BaseStrategy] | BaseStrategy,
    data: pd.DataFrame,
    params: dict[str, Any] | None = None,
    *,
    n_points: int = 5,
    seed: int = 0,
    mode: Mode = "auto",
) -> LookaheadReport:
    """Check that ``strategy``'s decisions up to bar t ignore every bar after t.

    ``strategy``: a name, class (with ``params``) or instance (its parameters are reused for
    each fresh run). ``n_points`` decision bars are sampled, one in each of ``n_points``
    equal stretches of the data, with ``seed``. ``mode``: ``signals`` (the vectorized
    targets), ``event`` (``on_bar`` under the event engine) or ``auto`` (signals when the
    strategy has them). Returns a `LookaheadReport`; ``.raise_if_failed()`` turns a failure
    into an error.
    """
    from cryptoai.backtest._market import check_data

    check_data(data)
    factory = _factory(strategy, params)
    probe = factory()
    name = probe.name or type(probe).__name__
    use = _mode(type(probe), mode)
    n = len(data)
    if n < 3:
        raise BadInputError(f"{n} bars are too few to check lookahead: give at least 3 bars")
    if isinstance(n_points, bool) or int(n_points) != n_points or n_points < 1:
        raise BadInputError(f"n_points must be a whole number >= 1, got {n_points!r}")
    rng = np.random.default_rng(seed)
    points = _sample_points(n, int(n_points), rng)
    decide = _signals if use == "signals" else _event_decisions
    base = decide(factory, data)
    first: int | None = None
    after: int | None = None
    moved = 0  # points whose rewrite changed a later decision: the check had something to see
    for t in points:
        other = decide(factory, perturb_after(data, t, rng))
        bad = _first_difference(base, other, t)
        if bad is not None and (first is None or bad < first):
            first, after = bad, t
        moved += base[t + 1 :] != other[t + 1 :]
    index = data.index
    return LookaheadReport(
        strategy=name,
        ok=first is None,
        points=tuple(index[p] for p in points),
        first_difference=None if first is None else index[first],
        perturbed_after=None if after is None else index[after],
        mode=use,
        details={"bars": n, "seed": seed, "points_with_later_changes": moved},
    )


def perturb_after(data: pd.DataFrame, t: int, rng: np.random.Generator) -> pd.DataFrame:
    """A valid OHLCV frame equal to ``data`` up to bar ``t`` and different after it.

    Every later bar's open/high/low/close is multiplied by one factor of a random walk whose
    steps reverse the bar's own log return and add noise (so the future path turns and
    wanders; each candle keeps its shape, so low <= open, close <= high still holds), volumes
    are scaled by random positive factors, and the later rows of other numeric columns are
    shuffled among themselves.
    """
    out = data.copy()
    later = slice(t + 1, len(data))
    m = len(data) - t - 1
    if m <= 0:
        return out
    close = data["close"].to_numpy(dtype="float64")
    r = np.diff(np.log(close))
    sigma = float(np.nanstd(r)) if r.size > 1 else 0.0
    sigma = sigma if math.isfinite(sigma) and sigma > 0 else 0.01
    future = r[t:]  # log returns of bars t+1..n-1
    steps = -2.0 * future + rng.normal(0.0, 0.5 * sigma, m)
    factor = np.exp(np.cumsum(steps))
    for col in PRICES:
        if col in out.columns:
            out.iloc[later, out.columns.get_loc(col)] = (
                data[col].to_numpy("float64")[later] * factor
            )
    if "volume" in out.columns:
        vol = data["volume"].to_numpy("float64")[later]
        out.iloc[later, out.columns.get_loc("volume")] = vol * np.exp(rng.normal(0.0, 1.0, m))
    for col in out.columns:
        if col in PRICES or col == "volume" or not pd.api.types.is_numeric_dtype(out[col]):
            continue
        values = data[col].to_numpy()[later].copy()
        rng.shuffle(values)
        out.iloc[later, out.columns.get_loc(col)] = values
    return out


# ------------------------------------------------------------------------------ internals
def _factory(strategy, params):
    """A callable giving a fresh, identically configured strategy for each run."""
    from cryptoai.strategies.registry import make_strategy

    if isinstance(strategy, BaseStrategy):
        if params:
            raise BadInputError("pass parameters to the strategy's constructor, not again here")
        cls, given = type(strategy), dict(strategy.params)
        return lambda: cls(**given)
    make_strategy(strategy, params)  # the parameters are checked once, here
    return lambda: make_strategy(strategy, params)


def _mode(cls: type[BaseStrategy], mode: str) -> str:
    if mode not in ("auto", "signals", "event"):
        raise BadInputError(f"unknown mode {mode!r}: use auto, signals or event")
    if mode == "auto":
        mode = "signals" if cls.has_signals() else "event"
    if mode == "signals" and not cls.has_signals():
        raise BadInputError(f"strategy {cls.name or cls.__name__} has no signals: use mode event")
    if mode == "event" and not cls.has_on_bar():
        raise BadInputError(f"strategy {cls.name or cls.__name__} has no on_bar: use mode signals")
    return mode


def _sample_points(n: int, k: int, rng: np.random.Generator) -> list[int]:
    """One decision bar in each of ``k`` equal stretches of bars 0..n-2 (each has a future)."""
    edges = np.linspace(0, n - 1, min(k, n - 1) + 1).astype(int)
    stretches = zip(edges[:-1], edges[1:], strict=True)
    return sorted({int(rng.integers(lo, max(hi, lo + 1))) for lo, hi in stretches})


def _signals(factory, data: pd.DataFrame) -> list:
    target = factory().signals(data)
    values = pd.Series(target).reindex(data.index) if isinstance(target, pd.Series) else target
    return [_norm(v) for v in np.asarray(values, dtype="float64")]


def _event_decisions(factory, data: pd.DataFrame) -> list:
    """Per bar: what ``on_bar`` returned and the orders it placed, under the event engine."""
    from cryptoai.backtest.event import run_event

    strategy = factory()
    records: list[list] = [[] for _ in range(len(data))]
    current = [0]
    on_bar, order_target, cancel = strategy.on_bar, strategy.order_target, strategy.cancel

    def recording_on_bar(ctx):
        current[0] = ctx.i
        value = on_bar(ctx)
        records[ctx.i].append(("return", _norm(value)))
        return value

    def recording_order(target, limit=None, stop=None):
        records[current[0]].append(("order", _norm(target), _norm(limit), _norm(stop)))
        return order_target(target, limit, stop)

    def recording_cancel():
        records[current[0]].append(("cancel",))
        return cancel()

    strategy.on_bar = recording_on_bar
    strategy.order_target = recording_order
    strategy.cancel = recording_cancel
    run_event(data, strategy, validate=False, progress=False)
    return records


def _norm(value) -> Any:
    """A decision value made comparable: numbers as floats, NaN and None as None."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return repr(value)
    return None if math.isnan(number) else number


def _first_difference(base: list, other: list, t: int) -> int | None:
    for i in range(t + 1):
        if base[i] != other[i]:
            return i
    return None
