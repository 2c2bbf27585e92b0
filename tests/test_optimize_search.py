"""Grid / random search, statistics and outputs of `cryptoai.optimize.run_optimization`,
checked against single backtests run independently (`run_strategy` per combination)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from cryptoai.backtest import make_settings, run_strategy
from cryptoai.backtest.metrics import compute_metrics
from cryptoai.data.loading import load_frame
from cryptoai.optimize import run_optimization
from cryptoai.optimize.stats import deflated_sharpe_ratio, probability_of_backtest_overfitting

FEES = {"fee_bps": 10.0, "slippage_bps": 2.0}
CLOCK = lambda: dt.date(2024, 5, 17)  # noqa: E731


@pytest.fixture
def data_file(tmp_path_factory, ohlcv):
    path = tmp_path_factory.mktemp("data") / "btc.parquet"
    ohlcv(n=1200, seed=3).to_parquet(path)
    return path


def config(data_file, **over):
    cfg = {
        "name": "grid_test",
        "data": {"file": str(data_file)},
        "strategy": "ema_cross",
        "space": {"fast": [3, 5, 10, 20], "slow": {"low": 10, "high": 60, "step": 10}},
        "constraints": ["fast < slow"],
        "method": "grid",
        "objective": "sharpe",
        "min_trades": 3,
        "backtest": FEES,
    }
    return cfg | over


def brute_force(frame, fasts, slows, settings):
    out = {}
    for fast, slow in itertools.product(fasts, slows):
        if fast < slow:
            res = run_strategy(frame, "ema_cross", {"fast": fast, "slow": slow}, settings)
            out[(fast, slow)] = (compute_metrics(res), res)
    return out


def test_grid_equals_single_backtests_and_skips_constrained(data_file, tmp_path):
    result = run_optimization(config(data_file), out=tmp_path / "out", tracking=False, clock=CLOCK)
    frame = load_frame(data_file)
    expected = brute_force(frame, [3, 5, 10, 20], [10, 20, 30, 40, 50, 60], make_settings(FEES))
    got = {(t.params["fast"], t.params["slow"]): t for t in result.trials}
    assert set(got) == set(expected)  # (10, 10), (20, 10), (20, 20) skipped, never run
    assert result.statistics["n_skipped"] == 3
    for key, (metrics, _) in expected.items():
        for name in ("sharpe", "total_return", "max_drawdown", "calmar", "n_trades"):
            a, b = got[key].metrics[name], metrics[name]
            assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12), name
        assert got[key].state == ("complete" if metrics["n_trades"] >= 3 else "failed")
    done = {k: m for k, (m, _) in expected.items() if m["n_trades"] >= 3}
    best_key = max(done, key=lambda k: done[k]["sharpe"])
    assert tuple(result.best["params"].values()) == best_key


def test_statistics_match_the_formulas_on_independent_returns(data_file, tmp_path):
    result = run_optimization(config(data_file), out=tmp_path / "out", tracking=False, clock=CLOCK)
    frame = load_frame(data_file)
    expected = brute_force(frame, [3, 5, 10, 20], [10, 20, 30, 40, 50, 60], make_settings(FEES))
    done = {k: r for k, (m, r) in expected.items() if m["n_trades"] >= 3}

    def rets(res):
        eq = res.equity.to_numpy()
        return eq / np.concatenate(([res.initial_cash], eq[:-1])) - 1.0

    keys = sorted(
        done, key=lambda k: [(t.params["fast"], t.params["slow"]) for t in result.trials].index(k)
    )
    r = {k: rets(done[k]) for k in keys}
    sr = {k: v.mean() / v.std(ddof=1) for k, v in r.items()}
    best = max(sr, key=sr.get)
    want = deflated_sharpe_ratio(
        sr[best],
        len(expected),
        float(np.var(list(sr.values()), ddof=1)),
        len(frame),
        float(sps.skew(r[best])),
        float(sps.kurtosis(r[best], fisher=False)),
    )
    s = result.statistics
    assert s["n_trials"] == len(expected)
    assert s["deflated_sharpe"] == pytest.approx(want, rel=1e-9)
    assert s["pbo"] == pytest.approx(
        probability_of_backtest_overfitting(np.column_stack([r[k] for k in keys]), 16)
    )
    on_disk = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(on_disk) >= {"config", "trials", "best", "stable", "statistics"}
    assert on_disk["statistics"]["deflated_sharpe"] == pytest.approx(want, rel=1e-9)
    assert {"number", "params", "metrics", "state"} <= set(on_disk["trials"][0])


@pytest.mark.slow
def test_same_config_and_seed_give_identical_bytes_sequential_and_parallel(data_file, tmp_path):
    cfg = config(data_file)
    a = run_optimization(cfg, out=tmp_path / "a", tracking=False, clock=CLOCK)
    b = run_optimization(cfg, out=tmp_path / "b", tracking=False, clock=CLOCK)
    c = run_optimization(cfg, out=tmp_path / "c", tracking=False, clock=CLOCK, workers=2)
    for name in ("results.json", "trials.csv", "best_params.yaml", "trades.csv"):
        first = (a.out_dir / name).read_bytes()
        assert first == (b.out_dir / name).read_bytes() == (c.out_dir / name).read_bytes(), name


@pytest.mark.slow
def test_random_search_is_seeded_and_distinct(data_file, tmp_path):
    cfg = config(
        data_file,
        method="random",
        n_trials=6,
        space={"fast": {"low": 2, "high": 30}, "slow": {"low": 31, "high": 120}},
        constraints=[],
    )
    a = run_optimization(cfg, out=tmp_path / "a", tracking=False)
    b = run_optimization(cfg, out=tmp_path / "b", tracking=False)
    c = run_optimization(cfg | {"seed": 7}, out=tmp_path / "c", tracking=False)
    pa = [tuple(t.params.values()) for t in a.trials]
    assert len(pa) == 6 == len(set(pa))
    assert pa == [tuple(t.params.values()) for t in b.trials]
    assert pa != [tuple(t.params.values()) for t in c.trials]
    assert all(2 <= f <= 30 and 31 <= s <= 120 for f, s in pa)


def test_outputs_folder_is_dated_by_the_clock_and_numbered(data_file, tmp_path):
    cfg = config(data_file, space={"fast": [5, 10], "slow": [40]})
    first = run_optimization(cfg, tracking=False, clock=CLOCK, reports_root=tmp_path)
    second = run_optimization(cfg, tracking=False, clock=CLOCK, reports_root=tmp_path)
    assert first.out_dir == tmp_path / "grid_test_20240517"
    assert second.out_dir == tmp_path / "grid_test_20240517_2"
    for name in (
        "results.json",
        "trials.csv",
        "best_params.yaml",
        "config.yaml",
        "trades.csv",
        "report.md",
        "heatmap.png",
        "history.png",
        "importance.png",
        "equity.png",
    ):
        assert (first.out_dir / name).is_file(), name
    header = (first.out_dir / "trials.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["number", "state", "fast", "slow", "value"]


def test_min_trades_fails_trials_instead_of_ranking_them(data_file, tmp_path):
    result = run_optimization(
        config(data_file, min_trades=10_000), out=tmp_path / "o", tracking=False
    )
    assert all(t.state == "failed" for t in result.trials)
    assert result.best is None and result.stable is None
    assert result.statistics["n_complete"] == 0


@pytest.mark.slow
def test_tracking_records_a_run_and_the_ledger_sums_sweeps(data_file, tmp_path):
    cfg = config(data_file, space={"fast": [5, 10], "slow": [40, 60]})
    first = run_optimization(cfg, out=tmp_path / "a", clock=CLOCK)
    second = run_optimization(cfg, out=tmp_path / "b", clock=CLOCK)
    assert first.ledger["n_trials_total"] == 4
    assert second.ledger["n_trials_before"] == 4 and second.ledger["n_trials_total"] == 8
    assert second.ledger["deflated_sharpe"] <= second.statistics["deflated_sharpe"] + 1e-12
    # the ledger's running total is not in results.json: reruns stay byte-identical
    assert (first.out_dir / "results.json").read_bytes() == (
        second.out_dir / "results.json"
    ).read_bytes()
    from mlflow.tracking import MlflowClient

    run = MlflowClient().get_run(first.run_id)
    assert run.data.tags["template.experiment_id"] == "grid_test"
    assert "stats.deflated_sharpe" in run.data.metrics
    children = MlflowClient().search_runs(
        [run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{first.run_id}'"
    )
    assert len(children) == 4
