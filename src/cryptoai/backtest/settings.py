"""Execution settings shared by both engines: costs, fill timing, sizing, leverage, exits.

Costs are on by default (10 bps taker fee, 2 bps maker fee, 2 bps slippage); a
cost-free backtest must be asked for explicitly with zeros.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from cryptoai.errors import BadInputError

FILL_AT = ("open", "close")
SIZING = ("all_in", "fixed_fraction", "fixed_notional", "vol_target")
#: Cost models (docs/backtest_assumptions.md, "Costs"): one is chosen per run.
COST_MODELS = ("fixed", "maker_taker", "tiered", "spread", "impact")
MAX_LADDER = 8  # take-profit levels of a ladder
MAX_TIERS = 8  # fee tiers


@dataclass(frozen=True)
class ExecutionSettings:
    """How orders become fills and how big positions are.

    Sizing turns a target (signed, usually -1, 0 or +1) into units at fill time:
    ``all_in`` commits all equity as margin, ``fixed_fraction`` commits ``size_value`` of
    equity, ``fixed_notional`` trades ``size_value`` cash of notional, ``vol_target`` scales
    notional so the position's annualized volatility is ``size_value``. Notional is
    ``margin * leverage`` and never exceeds ``equity * leverage``.
    Exits (``stop_loss``, ``take_profit``, ``trailing_stop``) are fractions of the entry
    price (trailing: of the best price since entry); ``None`` turns them off.
    ``funding_rate`` is the perpetual funding rate per 8 hours, paid by longs to shorts
    when positive and accrued every bar in proportion to the bar length.

    ``maker_fee_bps`` is the fee of fills that rest in the book (limit orders and
    take-profits, which fill at their own price); ``fee_bps`` is the taker fee of every
    other fill. ``time_stop_bars`` closes a position at the open of the bar that many bars
    after its entry bar. ``ladder`` is a list of ``(gain, fraction)`` take-profit levels,
    each closing ``fraction`` of the position's full size at ``gain`` beyond the entry
    price; ``ladder_breakeven`` moves the stop to the entry price after the first level.
    ``cost_model`` picks how fees and slippage are charged: ``fixed`` (default), ``maker_taker``,
    ``tiered`` (``fee_tiers``: ``(min 30-day traded notional, taker bps, maker bps)`` rows),
    ``spread`` (half of a ``spread`` data column, or of ``spread_bps``, per side) or
    ``impact`` (``impact_k`` bps x sqrt(order notional / bar quote volume)).
    """

    initial_cash: float = 10_000.0
    fee_bps: float = 10.0
    maker_fee_bps: float = 2.0
    slippage_bps: float = 2.0
    vol_slippage: float = 0.0
    vol_window: int = 20
    fill_at: str = "open"
    size: str = "all_in"
    size_value: float = 1.0
    leverage: float = 1.0
    maintenance_margin: float = 0.005
    funding_rate: float = 0.0
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None
    close_at_end: bool = True
    time_stop_bars: int | None = None
    ladder: tuple[tuple[float, float], ...] | None = None
    ladder_breakeven: bool = False
    cost_model: str = "fixed"
    fee_tiers: tuple[tuple[float, float, float], ...] | None = None
    spread_bps: float | None = None
    impact_k: float = 10.0

    def __post_init__(self) -> None:
        # lists from YAML/JSON become tuples (the settings stay hashable and immutable)
        for name in ("ladder", "fee_tiers"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                try:
                    rows = tuple(tuple(float(x) for x in row) for row in value)
                except (TypeError, ValueError):
                    raise BadInputError(
                        f"execution setting {name}={value!r}: give a list of lists of numbers"
                    ) from None
                object.__setattr__(self, name, rows)
        _check(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_(self, **changes: Any) -> ExecutionSettings:
        """A copy with some fields changed (validated like the original)."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise BadInputError(
                f"unknown execution setting(s) {', '.join(unknown)}: valid ones are "
                f"{', '.join(f.name for f in fields(self))}"
            )
        return replace(self, **changes)


def make_settings(
    settings: ExecutionSettings | dict | None = None, **overrides: Any
) -> ExecutionSettings:
    """Settings from a dataclass, a dict (e.g. parsed YAML) or defaults, plus overrides."""
    if settings is None:
        base = ExecutionSettings()
    elif isinstance(settings, ExecutionSettings):
        base = settings
    elif isinstance(settings, dict):
        base = ExecutionSettings().with_(**settings)
    else:
        raise BadInputError(
            f"execution settings must be ExecutionSettings or a dict, got {type(settings).__name__}"
        )
    return base.with_(**overrides) if overrides else base


def _finite(name: str, value: Any, low: float, low_ok: bool = True) -> None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise BadInputError(f"execution setting {name}={value!r} is not a number") from None
    if not math.isfinite(v) or v < low or (v == low and not low_ok):
        bound = f">= {low}" if low_ok else f"> {low}"
        raise BadInputError(
            f"execution setting {name}={value!r} is out of range: use a number {bound}"
        )


def _check(s: ExecutionSettings) -> None:
    _finite("initial_cash", s.initial_cash, 0.0, low_ok=False)
    for name in ("fee_bps", "maker_fee_bps", "slippage_bps", "vol_slippage", "funding_rate"):
        _finite(name, getattr(s, name), -math.inf if name == "funding_rate" else 0.0)
    if s.fee_bps >= 10_000 or s.maker_fee_bps >= 10_000 or s.slippage_bps >= 10_000:
        raise BadInputError("fees and slippage are in basis points and must be below 10000 (100%)")
    if not isinstance(s.vol_window, int) or s.vol_window < 2:
        raise BadInputError(f"execution setting vol_window={s.vol_window!r}: use an integer >= 2")
    if s.fill_at not in FILL_AT:
        raise BadInputError(f"fill_at={s.fill_at!r} is not valid: use one of {', '.join(FILL_AT)}")
    if s.size not in SIZING:
        raise BadInputError(f"size={s.size!r} is not a sizing rule: use one of {', '.join(SIZING)}")
    _finite("size_value", s.size_value, 0.0, low_ok=False)
    if s.size == "fixed_fraction" and s.size_value > 1:
        raise BadInputError(
            f"size_value={s.size_value} for fixed_fraction is a fraction of equity: use 0 < x <= 1"
            " (use --leverage for more exposure)"
        )
    _finite("leverage", s.leverage, 0.0, low_ok=False)
    _finite("maintenance_margin", s.maintenance_margin, 0.0)
    if s.maintenance_margin >= 1:
        raise BadInputError(
            "maintenance_margin is a fraction of notional: use 0 <= x < 1, e.g. 0.005"
        )
    if s.leverage > 1 and s.maintenance_margin >= 1 / s.leverage:
        raise BadInputError(
            f"maintenance_margin={s.maintenance_margin} is not below the initial margin 1/leverage="
            f"{1 / s.leverage:.4g}: lower the leverage or the maintenance margin"
        )
    _check_exits(s)
    _check_costs(s)
    for name in ("stop_loss", "take_profit", "trailing_stop"):
        value = getattr(s, name)
        if value is not None:
            _finite(name, value, 0.0, low_ok=False)
            if name != "take_profit" and value >= 1:
                raise BadInputError(
                    f"{name}={value} is a fraction of the entry price: use 0 < x < 1"
                )


def _check_exits(s: ExecutionSettings) -> None:
    t = s.time_stop_bars
    if t is not None and (isinstance(t, bool) or not isinstance(t, int) or t < 1):
        raise BadInputError(f"time_stop_bars={t!r}: use a whole number of bars >= 1 (or null)")
    if s.ladder is None:
        return
    rows = s.ladder
    if not rows or len(rows) > MAX_LADDER or any(len(r) != 2 for r in rows):
        raise BadInputError(
            f"ladder={rows!r}: give 1 to {MAX_LADDER} [gain, fraction] pairs, e.g."
            " [[0.02, 0.5], [0.05, 0.5]]"
        )
    gains = [g for g, _ in rows]
    if any(not (math.isfinite(g) and g > 0) for g in gains) or gains != sorted(set(gains)):
        raise BadInputError(f"ladder gains {gains}: use increasing positive fractions of entry")
    fracs = [f for _, f in rows]
    if any(not (math.isfinite(f) and 0 < f <= 1) for f in fracs) or sum(fracs) > 1 + 1e-9:
        raise BadInputError(
            f"ladder fractions {fracs}: each in (0, 1] and together at most 1 (of the position)"
        )
    if s.take_profit is not None:
        raise BadInputError("take_profit and ladder are both set: use one of them")


def _check_costs(s: ExecutionSettings) -> None:
    if s.cost_model not in COST_MODELS:
        raise BadInputError(
            f"cost_model={s.cost_model!r} is not valid: use one of {', '.join(COST_MODELS)}"
        )
    _finite("impact_k", s.impact_k, 0.0)
    if s.spread_bps is not None:
        _finite("spread_bps", s.spread_bps, 0.0)
        if s.spread_bps >= 10_000:
            raise BadInputError("spread_bps is in basis points and must be below 10000")
    if s.cost_model == "tiered":
        rows = s.fee_tiers
        if not rows or len(rows) > MAX_TIERS or any(len(r) != 3 for r in rows):
            raise BadInputError(
                f"cost_model=tiered needs fee_tiers: 1 to {MAX_TIERS} rows [min 30-day traded"
                " notional, taker bps, maker bps], e.g. [[0, 10, 2], [1000000, 8, 1.6]]"
            )
        floors = [r[0] for r in rows]
        if floors[0] != 0 or floors != sorted(set(floors)):
            raise BadInputError(
                f"fee_tiers volume floors {floors}: start at 0 and increase strictly"
            )
        for _, taker, maker in rows:
            _finite("fee_tiers taker bps", taker, 0.0)
            _finite("fee_tiers maker bps", maker, 0.0)
            if taker >= 10_000 or maker >= 10_000:
                raise BadInputError("fee_tiers are in basis points and must be below 10000")
    elif s.fee_tiers is not None:
        raise BadInputError("fee_tiers are read only by cost_model=tiered: set it or drop them")
