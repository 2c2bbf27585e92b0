"""Built-in strategies against independent computations, and the registry's errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import ohlcv_frame

from cryptoai.errors import BadInputError
from cryptoai.strategies import (
    BaseStrategy,
    get_strategy,
    list_strategies,
    make_strategy,
    register_strategy,
)
from cryptoai.strategies import registry as registry_module

N = 600


DATA = ohlcv_frame(N, seed=2)


def _state_machine(events: list[float | None]) -> np.ndarray:
    """Target held after each bar's event (None: keep), starting flat."""
    state, out = 0.0, []
    for e in events:
        if e is not None:
            state = e
        out.append(state)
    return np.array(out)


def test_ema_cross_matches_pandas_ewm_and_a_plain_crossing_loop():
    fast_span, slow_span = 7, 25
    close = DATA["close"]
    fast = close.ewm(span=fast_span, adjust=False).mean()
    slow = close.ewm(span=slow_span, adjust=False).mean()
    fast[: fast_span - 1] = np.nan  # undefined for the first span - 1 bars
    slow[: slow_span - 1] = np.nan
    events: list[float | None] = [None]
    for t in range(1, N):
        f0, s0, f1, s1 = fast.iloc[t - 1], slow.iloc[t - 1], fast.iloc[t], slow.iloc[t]
        if np.isnan([f0, s0, f1, s1]).any():
            events.append(None)
        elif f1 > s1 and f0 <= s0:
            events.append(1.0)
        elif f1 < s1 and f0 >= s0:
            events.append(0.0)
        else:
            events.append(None)
    expected = _state_machine(events)
    got = make_strategy("ema_cross", {"fast": fast_span, "slow": slow_span}).signals(DATA)
    np.testing.assert_array_equal(got.to_numpy(), expected)
    assert got.index.equals(DATA.index)
    assert got.iloc[:slow_span].eq(0).all()  # no cross before both EMAs exist
    assert 0 < got.diff().abs().sum() < N  # it does trade


def test_bollinger_reversion_matches_ta_bands_and_a_loop():
    import ta

    window, k = 20, 2.0
    bands = ta.volatility.BollingerBands(DATA["close"], window=window, window_dev=k)
    lower, mid, upper = (
        bands.bollinger_lband().to_numpy(copy=True),
        bands.bollinger_mavg().to_numpy(copy=True),
        bands.bollinger_hband().to_numpy(copy=True),
    )
    lower[: window - 1] = mid[: window - 1] = upper[: window - 1] = np.nan
    close = DATA["close"].to_numpy()
    events: list[float | None] = []
    for t in range(N):
        if close[t] < lower[t]:
            events.append(1.0)
        elif close[t] > upper[t]:
            events.append(-1.0)
        elif (
            t > 0
            and not np.isnan(mid[t - 1])
            and (close[t] >= mid[t]) != (close[t - 1] >= mid[t - 1])
        ):
            events.append(0.0)
        else:
            events.append(None)
    got = make_strategy("bollinger_reversion", {"window": window, "k": k, "allow_short": True})
    np.testing.assert_array_equal(got.signals(DATA).to_numpy(), _state_machine(events))
    assert set(np.unique(got.signals(DATA))) == {-1.0, 0.0, 1.0}
    long_only = make_strategy("bollinger_reversion", {"allow_short": False}).signals(DATA)
    assert long_only.min() == 0.0 and long_only.max() == 1.0


def test_rsi_reversion_matches_ta_rsi_and_a_loop():
    import ta

    rsi = ta.momentum.RSIIndicator(DATA["close"], window=14).rsi().to_numpy(copy=True)
    rsi[:14] = np.nan  # ta fills its warm-up; the strategy treats it as unknown
    events = [1.0 if r < 30 else 0.0 if r > 70 else None for r in rsi]
    got = make_strategy("rsi_reversion", {}).signals(DATA).to_numpy()
    np.testing.assert_array_equal(got[20:], _state_machine(events)[20:])
    assert set(np.unique(got)) == {0.0, 1.0}


def test_model_signal_thresholds_and_alignment():
    pred = pd.Series([0.9, 0.5, 0.1, np.nan, 0.6], index=DATA.index[[0, 1, 2, 3, 5]])
    s = make_strategy(
        "model_signal", {"predictions": pred, "long_above": 0.55, "short_below": 0.45}
    )
    got = s.signals(DATA)
    np.testing.assert_array_equal(got.iloc[:6].to_numpy(), [1.0, 0.0, -1.0, 0.0, 0.0, 1.0])
    assert (got.iloc[6:] == 0).all()  # no prediction: flat
    long_only = make_strategy("model_signal", {"predictions": pred}).signals(DATA)
    assert long_only.min() == 0.0
    with_column = DATA.assign(prediction=np.linspace(0, 1, N))
    col = make_strategy("model_signal", {"long_above": 0.5}).signals(with_column)
    assert col.iloc[-1] == 1.0 and col.iloc[0] == 0.0


def test_model_signal_errors():
    with pytest.raises(BadInputError, match="needs predictions"):
        make_strategy("model_signal").signals(DATA)
    other = pd.Series([0.9], index=[pd.Timestamp("2030-01-01", tz="UTC")])
    with pytest.raises(BadInputError, match="no prediction timestamp matches"):
        make_strategy("model_signal", {"predictions": other}).signals(DATA)
    with pytest.raises(BadInputError, match="overlap"):
        make_strategy("model_signal", {"long_above": 0.4, "short_below": 0.6})


def test_registry_lists_builtins_and_explains_bad_names():
    assert {
        "buy_and_hold",
        "ema_cross",
        "bollinger_reversion",
        "rsi_reversion",
        "model_signal",
    } <= set(list_strategies())
    assert get_strategy("ema_cross").name == "ema_cross"
    with pytest.raises(BadInputError) as err:
        get_strategy("ema_crossover")
    assert "ema_cross" in str(err.value) and "rsi_reversion" in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_or_mistyped_parameters_are_errors_listing_the_valid_ones():
    with pytest.raises(BadInputError, match=r"no parameter span: valid parameters are fast, slow"):
        make_strategy("ema_cross", {"span": 3})
    with pytest.raises(BadInputError, match="parameter fast got 'ten', expected an int"):
        make_strategy("ema_cross", {"fast": "ten"})
    with pytest.raises(BadInputError, match="shorter than slow"):
        make_strategy("ema_cross", {"fast": 30, "slow": 10})
    s = make_strategy("rsi_reversion", {"window": "10", "allow_short": "true", "lower": 20})
    assert (s.window, s.allow_short, s.lower) == (10, True, 20.0)
    assert s.params["window"] == 10 and get_strategy("rsi_reversion").params["window"] == 14


@pytest.mark.parametrize(
    ("name", "key", "value", "shown", "kind"),
    [
        ("ema_cross", "fast", True, "True", "an int"),  # a boolean is not a span of 1
        ("ema_cross", "fast", "true", "'true'", "an int"),
        ("ema_cross", "fast", "20.5", "'20.5'", "an int"),
        ("ema_cross", "fast", 20.5, "20.5", "an int"),
        ("ema_cross", "fast", "", "an empty value", "an int"),
        ("ema_cross", "fast", None, "None", "an int"),  # params: {fast: null}
        ("ema_cross", "fast", [5], "[5]", "an int"),
        ("rsi_reversion", "lower", False, "False", "a float"),
        ("rsi_reversion", "lower", "low", "'low'", "a float"),
        ("rsi_reversion", "lower", float("nan"), "nan", "a float"),
        ("rsi_reversion", "allow_short", 2, "2", "a bool"),
        ("rsi_reversion", "allow_short", "maybe", "'maybe'", "a bool"),
        ("model_signal", "column", 3, "3", "a str"),
    ],
)
def test_parameter_values_are_checked_against_the_declared_type(name, key, value, shown, kind):
    default = get_strategy(name).params[key]
    with pytest.raises(BadInputError) as err:
        make_strategy(name, {key: value})
    message = str(err.value)
    assert message == (
        f"strategy {name}: parameter {key} got {shown}, expected {kind} (default {default!r})"
    )


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("window", "20", 20),
        ("window", " 20 ", 20),
        ("window", 20.0, 20),  # a whole float from a grid is the integer
        ("window", np.int64(20), 20),
        ("lower", 20, 20.0),  # a float parameter takes ints
        ("lower", "25.5", 25.5),
        ("lower", np.float32(25.5), 25.5),
        ("allow_short", "yes", True),
        ("allow_short", "False", False),
        ("allow_short", 1, True),
        ("allow_short", np.bool_(True), True),
    ],
)
def test_accepted_values_take_the_declared_type(key, value, expected):
    got = make_strategy("rsi_reversion", {key: value}).params[key]
    assert got == expected and type(got) is type(expected)


def test_a_parameter_without_a_typed_default_is_left_to_the_strategy():
    s = make_strategy("model_signal", {"short_below": "0.4"})
    assert s.short_below == 0.4
    with pytest.raises(BadInputError, match="short_below"):
        make_strategy("model_signal", {"short_below": "low"})


def test_register_a_custom_strategy_by_decorator():
    try:

        @register_strategy("always_short_test")
        class AlwaysShort(BaseStrategy):
            params = {"size": 0.5}

            def signals(self, data):
                return pd.Series(-self.size, index=data.index)

        assert get_strategy("always_short_test") is AlwaysShort
        assert AlwaysShort.name == "always_short_test"
        assert make_strategy("always_short_test", {"size": 1}).signals(DATA).iloc[0] == -1.0
        assert AlwaysShort.has_signals() and not AlwaysShort.has_on_bar()
        with pytest.raises(ValueError, match="already used"):

            @register_strategy("always_short_test")
            class Other(BaseStrategy):
                pass

        with pytest.raises(TypeError):
            register_strategy("not_a_strategy")(object)
    finally:
        registry_module.STRATEGIES.remove("always_short_test")


def test_orders_outside_the_event_engine_are_refused():
    with pytest.raises(BadInputError, match="only be placed while the event engine runs"):
        make_strategy("buy_and_hold").buy()


def test_fused_ema_kernels_equal_pandas_ewm_with_gaps():
    """The sweep's multi-span EMA pass and the single-run fused pass equal pandas' ewm."""
    from cryptoai.strategies import ema_cross as ec

    rng = np.random.default_rng(5)
    close = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 3000))))
    close.iloc[[10, 11, 500, 1700, 1701, 1702]] = np.nan  # gaps inside the series
    spans = [5, 20, 21, 100, 250]  # not span 3 (alpha 0.5): a pandas quirk with NaN gaps
    table = ec.emas(close, spans)
    for row, span in zip(table, spans, strict=True):
        reference = close.ewm(span=span, adjust=False).mean().to_numpy(copy=True)
        reference[: span - 1] = np.nan
        single = ec.ema(close, span)
        np.testing.assert_array_equal(row, single)
        ok = np.isfinite(reference) & np.isfinite(
            single
        )  # warm-up and NaN-close rows differ in convention
        assert np.isfinite(single[1800:]).all()
        np.testing.assert_allclose(single[ok], reference[ok], rtol=1e-12)
