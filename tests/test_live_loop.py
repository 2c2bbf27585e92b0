"""The live loop against the loopback mock Binance (real ccxt over real HTTP) with a clock
the test moves: bars arrive one by one, each is predicted once, paper fills happen at the next
open and equal ``run_vectorized`` over the same bars and decisions, and a killed loop
restarts to the same ledger as one that never stopped."""

from __future__ import annotations

import mock_exchange
import numpy as np
import pandas as pd
import pytest
from mock_exchange import MockBinance
from serve_support import WARMUP

import cryptoai
from cryptoai.backtest import run_vectorized
from cryptoai.data.sources import make_source
from cryptoai.data.store import RawStore
from cryptoai.errors import BadInputError
from cryptoai.serve.live import LiveConfig, LiveLoop, ManualClock, decide, load_predictions
from cryptoai.serve.paper import LEDGER_JSON, PaperLedger, paper_settings

pytest_plugins = ("serve_support",)  # the shared registered model

T0 = pd.Timestamp("2024-01-10 12:00:07", tz="UTC")  # 7 s after the 11:00 bar closed
HOUR = pd.Timedelta(hours=1)
SETTINGS = {"fee_bps": 10.0, "slippage_bps": 5.0, "initial_cash": 10_000.0}
MARGIN = 60


@pytest.fixture
def exchange(monkeypatch):
    """The mock serves bars that have opened by the test's clock, not by the wall clock."""
    clock = ManualClock(T0)
    monkeypatch.setattr(mock_exchange, "_now_ms", lambda: int(clock.now().value // 10**6))
    with MockBinance(symbols=["BTC/USDT"], start="2023-12-20", end="2024-02-01", seed=5) as mock:
        yield mock, clock


def make_loop(mock, clock, root, model, paper=True, **over):
    source = make_source("binance", api_url=mock.url, retries=0, retry_delay_s=0)
    cfg = LiveConfig(
        model=model,
        symbol="BTC/USDT",
        timeframe="1h",
        store_root=root / "raw",
        live_root=root / "live",
        paper=paper,
        execution=over.pop("execution", SETTINGS),
        margin_bars=MARGIN,
        **over,
    )
    return LiveLoop(cfg, source, clock)


def expected_predictions(mock, registry, bars, history):
    """Independent of the loop: the model on the mock's own candles, window per bar."""
    frame = mock.frame("BTC/USDT")[["open", "high", "low", "close", "volume"]]
    out = {}
    for ts in bars:
        window = frame.loc[:ts].iloc[-history:]
        out[ts] = cryptoai.predict(window, model=registry.uri).iloc[-1]["proba_up"]
    return pd.Series(out)


def test_bars_arrive_one_by_one_and_each_is_predicted_once(exchange, registry, tmp_path):
    mock, clock = exchange
    loop = make_loop(mock, clock, tmp_path, registry.uri, paper=False)
    reports = loop.run(max_bars=4)
    first = pd.Timestamp("2024-01-10 11:00", tz="UTC")
    bars = [first + i * HOUR for i in range(4)]
    assert [r.predicted for r in reports] == [[b] for b in bars]
    # the loop slept until each bar's close plus the grace, never less
    assert clock.sleeps == [b + 2 * HOUR + pd.Timedelta(seconds=5) for b in bars[:3]]

    preds = load_predictions(loop.folder)
    assert loop.folder == tmp_path / "live" / "binance" / "BTC-USDT" / "1h"
    assert list(preds.index) == bars
    assert preds["model_version"].tolist() == [1] * 4
    history = WARMUP + 1 + MARGIN
    want = expected_predictions(mock, registry, bars, history)
    np.testing.assert_allclose(preds["proba_up"].to_numpy(), want.to_numpy(), rtol=0, atol=0)
    assert preds["target"].tolist() == [decide(s) for s in preds["score"]]

    # only closed bars are stored: the one in progress at the last step is not
    stored = RawStore(tmp_path / "raw").load("binance", "BTC/USDT", "1h")
    assert stored.index[-1] == bars[-1]
    pd.testing.assert_frame_equal(
        stored, mock.frame("BTC/USDT").loc[stored.index, stored.columns], check_freq=False
    )
    # incremental sync: after the first backfill each step asks for the new bar only
    starts = [int(r.params["startTime"]) for r in mock.requests_to("/klines")]
    assert starts[-3:] == [int(b.value // 10**6) for b in bars[1:]]

    # a second step in the same hour predicts nothing again (idempotent)
    again = loop.step()
    assert again.predicted == [] and len(load_predictions(loop.folder)) == 4


def test_the_loop_waits_for_the_grace_before_fetching_a_bar(exchange, registry, tmp_path):
    mock, clock = exchange
    clock.t = pd.Timestamp("2024-01-10 12:00:02", tz="UTC")  # closed 2 s ago, grace 5 s
    loop = make_loop(mock, clock, tmp_path, registry.uri, paper=False)
    report = loop.run(once=True)[0]
    assert report.predicted == [pd.Timestamp("2024-01-10 10:00", tz="UTC")]  # not 11:00 yet
    assert loop.run(max_bars=1)[-1].predicted == [pd.Timestamp("2024-01-10 11:00", tz="UTC")]
    assert clock.sleeps == [pd.Timestamp("2024-01-10 12:00:05", tz="UTC")]


def _ledger_vs_backtest(folder, mock):
    ledger = PaperLedger.load(folder)
    preds = load_predictions(folder)
    bars = ledger.bars
    assert bars.index.equals(preds.index)
    # the ledger's candles are the exchange's; its decisions are the predictions'
    expected_bars = mock.frame("BTC/USDT").loc[bars.index, ["open", "high", "low", "close"]]
    np.testing.assert_array_equal(bars[expected_bars.columns].to_numpy(), expected_bars.to_numpy())
    np.testing.assert_array_equal(bars["target"].to_numpy(), preds["target"].to_numpy())
    ref = run_vectorized(
        bars[["open", "high", "low", "close", "volume"]], bars["target"], paper_settings(SETTINGS)
    )
    np.testing.assert_array_equal(bars["equity"].to_numpy(), ref.equity.to_numpy())
    np.testing.assert_array_equal(bars["position"].to_numpy(), ref.position.to_numpy())
    cols = ["size", "price", "fee"]
    np.testing.assert_array_equal(ledger.fills[cols].to_numpy(), ref.fills[cols].to_numpy())
    assert ledger.fills["time"].tolist() == ref.fills["time"].tolist()
    assert ledger.fills["side"].tolist() == [str(s) for s in ref.fills["side"]]
    return ledger


def test_paper_fills_at_the_next_open_and_equal_run_vectorized(exchange, registry, tmp_path):
    mock, clock = exchange
    # long above 0, short below: a position from the first decision on, so fills happen
    loop = make_loop(mock, clock, tmp_path, registry.uri, threshold=0.0, allow_short=True)
    loop.run(max_bars=8)
    ledger = _ledger_vs_backtest(loop.folder, mock)
    preds = load_predictions(loop.folder)
    assert len(ledger.fills) >= 1
    # hand check of the first fill: decision at bar t's close, filled at t+1's open + slippage
    first = ledger.fills.iloc[0]
    decided = preds.index[preds["target"] != 0][0]
    assert first["time"] == decided + HOUR
    side = 1 if preds.loc[decided, "target"] > 0 else -1
    open_next = mock.frame("BTC/USDT").loc[decided + HOUR, "open"]
    assert first["price"] == pytest.approx(open_next * (1 + side * 5e-4), rel=1e-12)
    assert first["fee"] == pytest.approx(first["price"] * first["size"] * 1e-3, rel=1e-12)
    assert first["price"] * first["size"] + first["fee"] == pytest.approx(10_000, rel=1e-9)
    # the order decided at the last close waits for the next open
    assert PaperLedger.load(loop.folder).summary()["bars"] == 8


def test_kill_and_restart_ends_on_the_same_ledger(exchange, registry, tmp_path, monkeypatch):
    mock, clock = exchange
    straight = make_loop(mock, clock, tmp_path / "a", registry.uri, allow_short=True)
    straight.run(max_bars=7)
    end = clock.now()

    clock.t = T0
    broken = make_loop(mock, clock, tmp_path / "b", registry.uri, allow_short=True)
    broken.run(max_bars=3)
    clock.sleep_until(clock.now() + HOUR)  # the 4th bar closes; the process dies mid-step
    real_save = PaperLedger.save

    def killed(self, folder):
        raise KeyboardInterrupt

    monkeypatch.setattr(PaperLedger, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        broken.step()
    monkeypatch.setattr(PaperLedger, "save", real_save)
    assert len(load_predictions(broken.folder)) == 4  # predicted, not yet traded
    assert PaperLedger.load(broken.folder).summary()["bars"] == 3

    clock.t = end - 2 * HOUR  # down for two bars; a new process starts
    restarted = make_loop(mock, clock, tmp_path / "b", registry.uri, allow_short=True)
    catch_up = restarted.step()
    assert len(catch_up.predicted) == 1 and len(catch_up.traded) == 2
    restarted.run(max_bars=2)
    assert clock.now() == end

    a, b = load_predictions(straight.folder), load_predictions(broken.folder)
    cols = ["proba_up", "score", "target", "model_version"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    la, lb = PaperLedger.load(straight.folder), _ledger_vs_backtest(broken.folder, mock)
    pd.testing.assert_frame_equal(la.bars, lb.bars)
    pd.testing.assert_frame_equal(la.fills, lb.fills)
    np.testing.assert_array_equal(la.state, lb.state)
    assert (straight.folder / LEDGER_JSON).read_text() == (broken.folder / LEDGER_JSON).read_text()


def test_a_ledger_refuses_other_execution_settings(exchange, registry, tmp_path):
    from cryptoai.errors import BadInputError

    mock, clock = exchange
    make_loop(mock, clock, tmp_path, registry.uri).run(once=True)
    other = make_loop(mock, clock, tmp_path, registry.uri, execution={"fee_bps": 1.0})
    clock.advance(HOUR)
    with pytest.raises(BadInputError, match="other execution settings.*fee_bps"):
        other.step()


def test_a_second_loop_on_the_same_series_stops_at_once(exchange, registry, tmp_path):
    mock, clock = exchange
    clock.t = pd.Timestamp("2024-01-10 12:00:10", tz="UTC")
    first = make_loop(mock, clock, tmp_path, registry.uri, paper=False)
    second = make_loop(mock, clock, tmp_path, registry.uri, paper=False)
    refused = []

    def meanwhile(_report):  # the first loop is running: the second must not start
        with pytest.raises(BadInputError, match="another live loop runs on") as err:
            second.run(once=True)
        refused.append(str(err.value))

    first.run(once=True, on_step=meanwhile)
    assert len(refused) == 1 and "\n" not in refused[0]
    # once the first has stopped, the second runs (and finds nothing new to predict)
    assert second.run(once=True)[0].predicted == []
