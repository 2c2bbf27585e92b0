"""``cryptoai backtest`` end to end on a small CSV written from a formula."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cryptoai.backtest import run_backtest
from cryptoai.backtest.settings import ExecutionSettings
from cryptoai.cli import main
from cryptoai.data.loading import load_frame

N = 400


@pytest.fixture
def csv_file(tmp_path):
    """Hourly candles: a slow sine wave on a drift, so an EMA crossover trades a few times."""
    i = np.arange(N)
    close = 100 + 8 * np.sin(i / 25) + 0.02 * i
    open_ = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-03-01", periods=N, freq="1h", tz="UTC").strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "open": open_,
            "high": np.maximum(open_, close) + 0.3,
            "low": np.minimum(open_, close) - 0.3,
            "close": close,
            "volume": 10 + (i % 7),
        }
    )
    path = tmp_path / "candles.csv"
    frame.to_csv(path, index=False)
    return path


def test_backtest_command_writes_the_report_and_prints_a_summary(csv_file, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["backtest", "--data", str(csv_file), "--strategy", "ema_cross", "--out", str(out)]
    args += ["--param", "fast=5", "--param", "slow=20", "--fee-bps", "5", "--stop-loss", "0.05"]
    assert main(args) == 0
    for name in ("metrics.json", "trades.csv", "equity.csv", "backtest_report.md"):
        assert (out / name).is_file(), name
    stdout = capsys.readouterr().out
    assert "ema_cross" in stdout and "buy_and_hold" in stdout and "total return" in stdout

    data = load_frame(csv_file)
    cfg = ExecutionSettings(fee_bps=5, stop_loss=0.05)
    expected, bench = run_backtest(data, "ema_cross", {"fast": 5, "slow": 20}, cfg)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final_equity"] == pytest.approx(expected.final_equity, rel=1e-12)
    assert metrics["n_trades"] == len(expected.trades) > 0
    assert metrics["benchmark"]["final_equity"] == pytest.approx(bench.final_equity, rel=1e-12)
    trades = pd.read_csv(out / "trades.csv")
    assert len(trades) == len(expected.trades)
    np.testing.assert_allclose(trades["pnl"], expected.trades["pnl"], rtol=1e-9)
    assert len(pd.read_csv(out / "equity.csv")) == N


def test_zero_costs_must_be_asked_for_and_then_are_zero(csv_file, tmp_path):
    default = tmp_path / "default"
    free = tmp_path / "free"
    base = ["backtest", "--data", str(csv_file), "--strategy", "buy_and_hold"]
    assert main([*base, "--out", str(default)]) == 0
    assert main([*base, "--out", str(free), "--fee-bps", "0", "--slippage-bps", "0"]) == 0
    paid = json.loads((default / "metrics.json").read_text())["fees_paid"]
    assert paid > 0
    assert json.loads((free / "metrics.json").read_text())["fees_paid"] == 0


def test_config_file_event_engine_and_window(csv_file, tmp_path):
    config = tmp_path / "bt.yaml"
    config.write_text(
        "strategy: rsi_reversion\nparams: {window: 10}\nengine: event\n"
        "execution: {fill_at: close, slippage_bps: 1}\n"
    )
    out = tmp_path / "cfg"
    args = ["backtest", "--data", str(csv_file), "--config", str(config), "--out", str(out)]
    args += ["--start", "2024-03-03", "--end", "2024-03-15", "--param", "upper=65"]
    assert main(args) == 0
    data = load_frame(csv_file, "2024-03-03", "2024-03-15")
    cfg = ExecutionSettings(fill_at="close", slippage_bps=1)
    expected, _ = run_backtest(
        data, "rsi_reversion", {"window": 10, "upper": 65}, cfg, engine="event"
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final_equity"] == pytest.approx(expected.final_equity, rel=1e-12)
    assert len(pd.read_csv(out / "equity.csv")) == len(data)


def test_model_signal_from_a_predictions_file(csv_file, tmp_path, capsys):
    data = load_frame(csv_file)
    pred = pd.DataFrame(
        {"timestamp": data.index, "prediction": (np.sin(np.arange(N) / 10) + 1) / 2}
    )
    path = tmp_path / "pred.csv"
    pred.to_csv(path, index=False)
    out = tmp_path / "model"
    args = ["backtest", "--data", str(csv_file), "--strategy", "model_signal", "--out", str(out)]
    args += ["--predictions", str(path), "--param", "long_above=0.6", "--param", "short_below=0.4"]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_trades"] > 2
    assert "model_signal" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strategy", "moon"], "unknown strategy 'moon'"),
        (["--strategy", "ema_cross", "--param", "fast"], "is not key=value"),
        (["--strategy", "ema_cross", "--param", "speed=3"], "valid parameters are fast, slow"),
        (["--strategy", "ema_cross", "--fill-at", "later"], "fill_at='later'"),
        (["--strategy", "ema_cross", "--size", "huge"], "not a sizing rule"),
        (["--strategy", "ema_cross", "--engine", "gpu"], "unknown engine"),
        (["--strategy", "ema_cross", "--start", "2030-01-01"], "no candles"),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(csv_file, tmp_path, capsys, extra, message):
    code = main(["backtest", "--data", str(csv_file), "--out", str(tmp_path / "x"), *extra])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert message in err and len(err.splitlines()) == 1


def test_strategies_command_lists_the_builtins(capsys):
    assert main(["strategies"]) == 0
    out = capsys.readouterr().out
    assert "ema_cross: fast=12, slow=26" in out and "buy_and_hold" in out
