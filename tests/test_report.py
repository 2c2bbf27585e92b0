"""The report's files exist, parse, and carry the same numbers as compute_metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import ohlcv_frame

from cryptoai.backtest.metrics import compute_metrics, to_jsonable
from cryptoai.backtest.report import read_equity_csv, write_report
from cryptoai.backtest.result import FILL_COLUMNS, TRADE_COLUMNS, BacktestResult

CASH = 10_000.0
FEE = 0.001
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_data(n: int = 24 * 75, seed: int = 11) -> pd.DataFrame:
    """Hourly candles over about two and a half months (three calendar months)."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    close = 40_000 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.concatenate(([40_000.0], close[:-1]))
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": 1.0,
        },
        index=index,
    )


def simulate(data: pd.DataFrame, target: np.ndarray, name: str) -> BacktestResult:
    """A tiny all-in long/flat simulation written for the test: fill at the next open."""
    cash, units, entry = CASH, 0.0, None
    equity, position, fills, trades = [], [], [], []
    opens, closes, times = data["open"].to_numpy(), data["close"].to_numpy(), data.index
    for i in range(len(data)):
        want = target[i - 1] if i > 0 else 0.0
        if want > 0 and units == 0:
            price = opens[i]
            units = cash / (price * (1 + FEE))
            fee = units * price * FEE
            cash -= units * price + fee
            fills.append((times[i], "buy", units, price, fee, "signal"))
            entry = (times[i], price, fee)
        elif want == 0 and units > 0:
            price = opens[i]
            fee = units * price * FEE
            cash += units * price - fee
            fills.append((times[i], "sell", units, price, fee, "signal"))
            pnl = units * (price - entry[1]) - entry[2] - fee
            trades.append(
                (
                    entry[0],
                    times[i],
                    "long",
                    units,
                    entry[1],
                    price,
                    entry[2] + fee,
                    pnl,
                    pnl / (units * entry[1]),
                )
            )
            units = 0.0
        equity.append(cash + units * closes[i])
        position.append(units)
    return BacktestResult(
        equity=pd.Series(equity, index=data.index, name="equity"),
        position=pd.Series(position, index=data.index, name="position"),
        trades=pd.DataFrame(trades, columns=list(TRADE_COLUMNS)),
        fills=pd.DataFrame(fills, columns=list(FILL_COLUMNS)),
        initial_cash=CASH,
        settings={"fee_bps": FEE * 1e4, "slippage_bps": 0.0, "fill_at": "open"},
        name=name,
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory):
    data = make_data()
    fast = data["close"].ewm(span=12, adjust=False).mean()
    slow = data["close"].ewm(span=48, adjust=False).mean()
    result = simulate(data, (fast > slow).to_numpy(dtype=float), "ema_cross")
    benchmark = simulate(data, np.ones(len(data)), "buy_and_hold")
    out = tmp_path_factory.mktemp("report")
    paths = write_report(result, benchmark, data, out, title="EMA cross on BTC/USDT 1h")
    return result, benchmark, data, out, paths


def test_simulation_is_a_real_strategy(written) -> None:
    result, benchmark, *_ = written
    assert len(result.trades) > 5
    assert len(benchmark.trades) == 0 and benchmark.position.iloc[-1] > 0


def test_all_files_are_written(written) -> None:
    *_, out, paths = written
    names = {p.name for p in out.iterdir()}
    assert {
        "metrics.json",
        "trades.csv",
        "equity.csv",
        "backtest_report.md",
        "equity.png",
        "drawdown.png",
        "monthly_returns.png",
        "trades.png",
    } <= names
    assert all(p.is_file() and p.parent == out for p in paths.values())


def test_metrics_json_equals_compute_metrics(written) -> None:
    result, benchmark, _, out, _ = written
    text = (out / "metrics.json").read_text()
    saved = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    expected = to_jsonable(compute_metrics(result))
    bench = saved.pop("benchmark")
    for key in ("gross_of_costs", "period_label", "annualization", "cost_model"):
        saved.pop(key)  # beside the metrics: how they were computed
    assert saved.pop("execution_settings")["fee_bps"] == 10.0
    assert saved == pytest.approx(expected)
    assert bench == pytest.approx(to_jsonable(compute_metrics(benchmark)))
    assert saved["final_equity"] == pytest.approx(result.equity.iloc[-1])
    assert saved["n_trades"] == len(result.trades)
    assert saved["periods_per_year"] == pytest.approx(8760.0)
    assert bench["n_trades"] == 0 and bench["win_rate"] is None  # NaN written as null


def test_equity_csv_round_trips_exactly(written) -> None:
    result, *_, paths = written
    back = read_equity_csv(paths["equity"])
    pd.testing.assert_series_equal(back, result.equity, check_exact=True, check_freq=False)
    assert pd.read_csv(paths["equity"]).columns.tolist() == ["timestamp", "equity"]


def test_trades_csv_holds_every_round_trip(written) -> None:
    result, *_, paths = written
    saved = pd.read_csv(paths["trades"])
    assert saved.columns.tolist() == list(TRADE_COLUMNS)
    assert len(saved) == len(result.trades)
    for col in ("entry_time", "exit_time"):
        times = pd.to_datetime(saved[col], utc=True)
        assert (times.to_numpy() == result.trades[col].to_numpy()).all()
    for col in ("size", "entry_price", "exit_price", "fees", "pnl", "return"):
        np.testing.assert_allclose(saved[col], result.trades[col], rtol=1e-12)
    assert set(saved["side"]) == {"long"}


def test_markdown_report_shows_costs_metrics_side_by_side_and_plots(written) -> None:
    result, benchmark, _, out, _ = written
    text = (out / "backtest_report.md").read_text()
    strat, bench = compute_metrics(result), compute_metrics(benchmark)
    assert text.startswith("# EMA cross on BTC/USDT 1h")
    assert "| fee_bps | 10.0 |" in text
    assert "| ema_cross | buy and hold |" in text
    row = f"| Total return | {strat['total_return']:.2%} | {bench['total_return']:.2%} |"
    assert row in text
    assert f"| Sharpe | {strat['sharpe']:.2f} | {bench['sharpe']:.2f} |" in text
    assert f"| Trades | {len(result.trades)} | 0 |" in text
    assert "| Win rate |" in text and "| n/a |" in text  # benchmark has no trades
    for png in ("equity.png", "drawdown.png", "monthly_returns.png", "trades.png"):
        assert f"]({png})" in text
    assert "docs/backtest_assumptions.md" in text


def test_plots_are_real_images(written) -> None:
    from matplotlib.image import imread

    *_, paths = written
    for key in ("equity_plot", "drawdown_plot", "monthly_plot", "trades_plot"):
        path: Path = paths[key]
        assert path.read_bytes()[:8] == PNG_MAGIC
        image = imread(path)
        assert image.shape[0] > 100 and image.shape[1] > 500
        assert image[..., :3].std() > 0.01  # something was drawn, not a blank canvas


def test_report_without_trades_or_benchmark(tmp_path: Path) -> None:
    data = make_data(24 * 10)
    flat = simulate(data, np.zeros(len(data)), "flat")
    paths = write_report(flat, None, data, tmp_path)
    saved = json.loads(paths["metrics"].read_text())
    assert saved["benchmark"] is None
    assert saved["n_trades"] == 0 and saved["win_rate"] is None and saved["sharpe"] is None
    assert saved["total_return"] == 0.0
    text = paths["report"].read_text()
    assert text.startswith("# Backtest report: flat")
    assert not math.isnan(pd.read_csv(paths["equity"])["equity"].iloc[-1])
    assert pd.read_csv(paths["trades"]).empty


def test_report_of_a_real_engine_run(tmp_path: Path) -> None:
    """The engines' results feed the metrics consistently (closed trades sum to the P&L)."""
    from cryptoai.backtest.runner import run_backtest

    data = ohlcv_frame(24 * 91, seed=5)  # 2024-01-01 to 2024-04-01
    result, bench = run_backtest(data, "ema_cross", {"fast": 12, "slow": 48})
    paths = write_report(result, bench, data, tmp_path)
    saved = json.loads(paths["metrics"].read_text())

    assert saved["n_trades"] == len(result.trades) > 0
    assert result.position.iloc[-1] == 0  # closed at the end by default: all P&L is in trades
    pnl = result.equity.iloc[-1] - result.initial_cash
    assert saved["expectancy"] * saved["n_trades"] == pytest.approx(pnl, rel=1e-9)
    assert saved["fees_paid"] == pytest.approx(result.fills["fee"].sum())
    assert saved["fees_paid"] == pytest.approx(result.trades["fees"].sum())
    assert saved["benchmark"]["total_return"] == pytest.approx(
        bench.equity.iloc[-1] / bench.initial_cash - 1
    )
    assert "| fee_bps | 10.0 |" in paths["report"].read_text()
