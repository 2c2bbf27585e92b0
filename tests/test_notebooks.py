"""The numbered notebooks, run top to bottom in smoke mode (how they are stored is checked by
test_notebook_pairs.py).

Notebooks 01-06 are executed once per test session, by the experiment runner in a real
``python3`` kernel (``shipped_run``, tests/shipped_run.py, shared with test_experiments.py),
with the raw store, the experiment folder and the MLflow store in a temporary folder (the
repository's data/ and docs/ are never touched); every test below reads that one run. The
assertions check what the notebooks wrote against numbers recomputed here from the stored
candles, or against each other.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from helpers import execute_notebook
from shipped_run import CANDIDATES, CONFIG, END, NOTEBOOKS, START, ShippedRun

pytest_plugins = ("shipped_run",)  # the one run of the shipped notebooks

REPO = Path(__file__).resolve().parents[1]
SMOKE_BARS = 1600  # TrainConfig.smoke_bars: what a smoke experiment keeps


# ----------------------------------------------------------------- the kernel
def test_python3_kernel_is_this_environment():
    """The runner asks for the kernel ``python3``; it must run this environment's python."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    prefix = subprocess.run(
        [spec.argv[0], "-c", "import sys; print(sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(prefix).resolve() == Path(sys.prefix).resolve(), (
        f"kernel python3 runs {spec.argv[0]}: run "
        f"{sys.executable} -m ipykernel install --prefix {sys.prefix} --name python3"
    )


# ----------------------------------------------------------------- executed notebooks
@pytest.fixture
def run(shipped_run: ShippedRun) -> ShippedRun:
    """The session's one run of notebooks 01-06 (tests/shipped_run.py)."""
    return shipped_run


def outputs(run: ShippedRun, name: str) -> Path:
    return run.outputs(name)


def metrics(run: ShippedRun, name: str) -> dict:
    return json.loads((outputs(run, name) / "metrics.json").read_text())


def candles(run: ShippedRun, symbol: str = "BTC/USDT") -> pd.DataFrame:
    """The smoke run's bars, read back from the temporary store."""
    from cryptoai.data.store import RawStore

    frame = RawStore(run.store).load("synthetic", symbol, "1h", START, END)
    return frame.iloc[-SMOKE_BARS:]


def dataset(run: ShippedRun):
    """Features, target and forward return exactly as training builds them."""
    from cryptoai.modeling.training import build_dataset
    from cryptoai.research.experiment_config import load_experiment

    exp = load_experiment(run.config)
    cfg = exp.train_config().model_copy(update={"features": str(REPO / exp.features)})
    return build_dataset(candles(run), cfg)


def executed_text(run: ShippedRun, name: str) -> str:
    """Everything a notebook printed (stdout and stderr streams) in the run."""
    nb = nbformat.read(run.executed(name), as_version=4)
    return "".join(
        o.get("text", "")
        for c in nb.cells
        for o in c.get("outputs", [])
        if o.output_type == "stream"
    )


@pytest.mark.slow
def test_notebooks_ran_without_touching_the_repository(run):
    assert run.notebooks == NOTEBOOKS
    assert run.errors == {}
    assert not run.docs_changed, "notebook 01 wrote into docs/eda/ without write_docs=True"
    # the runner starts each kernel in notebooks/: nothing may appear there
    assert run.new_in_notebooks == [], "a notebook wrote into its working directory"
    for name in NOTEBOOKS:
        nb = nbformat.read(run.executed(name), as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
        assert errors == []
        assert any(
            "image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])
        ), f"{name} shows no plot"
        shown = [
            o.get("data", {}).get("text/markdown", "")
            for c in nb.cells
            for o in c.get("outputs", [])
        ]
        headers = [t for t in shown if t.startswith("**EXP-001 logreg_baseline**:")]
        assert len(headers) == 1, f"{name}: the header is shown {len(headers)} times, not once"


@pytest.mark.slow
def test_01_data_exploration(run):
    folder = outputs(run, "01-data-exploration")
    m = metrics(run, "01-data-exploration")
    for sym in ("BTC-USDT", "ETH-USDT"):  # both symbols went to the temporary store
        assert (run.store / "synthetic" / sym / "1h").is_dir()
        assert m[f"{sym}.bars"] == SMOKE_BARS
        assert m[f"{sym}.missing_pct"] == 0.0 and m[f"{sym}.gaps"] == 0.0
        assert m[f"{sym}.contract_ok"] == 1.0
    assert m["common_bars"] == SMOKE_BARS
    btc, eth = candles(run, "BTC/USDT"), candles(run, "ETH/USDT")
    r_btc, r_eth = np.diff(np.log(btc["close"])), np.diff(np.log(eth["close"]))
    assert m["BTC-USDT.ann_volatility"] == pytest.approx(r_btc.std(ddof=1) * math.sqrt(8760))
    assert m["corr.BTC-USDT.ETH-USDT"] == pytest.approx(np.corrcoef(r_btc, r_eth)[0, 1])
    for png in ("gaps", "prices", "volume", "volatility", "return_correlation"):
        assert (folder / f"{png}.png").stat().st_size > 1000
    assert "## Quality" in (folder / "notes.md").read_text()


@pytest.mark.slow
def test_02_feature_engineering(run):
    from cryptoai.features.spec import load_feature_spec

    folder = outputs(run, "02-feature-engineering")
    m = metrics(run, "02-feature-engineering")
    columns = load_feature_spec(REPO / "configs" / "features" / "default.yaml").columns()
    X, _, fwd = dataset(run)
    assert m["n_features"] == len(columns) == X.shape[1]
    assert m["n_bars"] == SMOKE_BARS and m["n_rows"] == len(X)
    corr = np.corrcoef(X.to_numpy(), rowvar=False)
    np.fill_diagonal(corr, 0.0)
    assert m["max_abs_correlation"] == pytest.approx(np.abs(corr).max())
    # class balance of next-bar direction, counted by hand on the usable bars
    up = (fwd > 0).sum() / (fwd != 0).sum()
    assert m["majority_share"] == pytest.approx(max(up, 1 - up))
    saved = json.loads((folder / "selected_features.json").read_text())
    selected = saved["features"]
    assert len(selected) == m["n_selected"] == math.ceil(0.5 * m["n_after_correlation_pruning"])
    assert set(selected) <= set(columns) and len(set(selected)) == len(selected)
    assert m["n_after_correlation_pruning"] < m["n_features"]  # ret_log_1 and ret_1 are twins
    # fitted on the first training window only: it ends before the first test bar
    preds = pd.read_parquet(outputs(run, "03-model-prototyping") / "predictions.parquet")
    assert pd.Timestamp(saved["fitted_until"]) < preds.index[0]


@pytest.mark.slow
def test_03_model_prototyping(run):
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    folder = outputs(run, "03-model-prototyping")
    m = metrics(run, "03-model-prototyping")
    preds = pd.read_parquet(folder / "predictions.parquet")
    X, _, fwd = dataset(run)
    # Two purged walk-forward test blocks at the end of the usable rows: only test bars.
    test_size = (len(X) - 1) // 3
    assert preds.index.equals(X.index[-2 * test_size :])
    assert preds.index.name == "timestamp" and str(preds.index.tz) == "UTC"
    assert {"y_true", "pred", "score", "proba_0", "proba_1", "fold", "forward_return"} <= set(
        preds.columns
    )
    expected_y = (fwd.reindex(preds.index) > 0).astype(float)
    np.testing.assert_array_equal(preds["y_true"].to_numpy(), expected_y.to_numpy())
    # plain names are means over the folds, the pooled values are NAME_pooled
    pooled = m["accuracy_pooled"], m["balanced_accuracy_pooled"]
    assert pooled[0] == pytest.approx(accuracy_score(preds["y_true"], preds["pred"]))
    assert pooled[1] == pytest.approx(balanced_accuracy_score(preds["y_true"], preds["pred"]))
    folds = [preds[preds["fold"] == k] for k in sorted(preds["fold"].unique())]
    per_fold = [balanced_accuracy_score(f["y_true"], f["pred"]) for f in folds]
    assert m["balanced_accuracy"] == pytest.approx(np.mean(per_fold))
    assert m["n_predictions"] == len(preds) and m["n_folds"] == 2
    assert "baseline.accuracy" in m
    for name in CANDIDATES:
        assert 0.0 < m[f"compare.{name}.accuracy"] < 1.0
    table = pd.read_csv(folder / "comparison.csv", index_col=0)
    assert list(table.index) == [*CANDIDATES, "naive baseline"]
    assert table.loc["logreg", "accuracy"] == pytest.approx(m["accuracy"])
    # 02's selection was picked up: the model retrained on exactly those columns
    selected = json.loads(
        (outputs(run, "02-feature-engineering") / "selected_features.json").read_text()
    )["features"]
    assert m["selection.n_features"] == len(selected) < X.shape[1]
    assert 0.0 < m["selection.balanced_accuracy"] < 1.0
    assert "models: 100%" in executed_text(run, "03-model-prototyping")  # progress shown


@pytest.mark.slow
def test_04_backtesting(run):
    folder = outputs(run, "04-backtesting")
    m = metrics(run, "04-backtesting")
    assert m["predictions_from_03"] == 1.0
    bench = m["benchmark"]
    equity = pd.read_csv(folder / "equity.csv")
    trades = pd.read_csv(folder / "trades.csv")
    assert m["final_equity"] == pytest.approx(equity["equity"].iloc[-1])
    assert m["total_return"] == pytest.approx(equity["equity"].iloc[-1] / 10_000.0 - 1)
    assert m["n_trades"] == len(trades)
    assert m["excess_return"] == pytest.approx(m["total_return"] - bench["total_return"])
    assert m["excess_sharpe"] == pytest.approx(m["sharpe"] - bench["sharpe"])
    # Buy-and-hold over the predicted bars: in at the second bar's open, out at the last
    # close, paying 10 bps fee + 2 bps slippage each way.
    preds = pd.read_parquet(outputs(run, "03-model-prototyping") / "predictions.parquet")
    bars = candles(run).loc[preds.index[0] : preds.index[-1]]
    gross = bars["close"].iloc[-1] / bars["open"].iloc[1]
    assert bench["total_return"] == pytest.approx(gross * (1 - 0.0012) ** 2 - 1, abs=2e-3)
    assert len(equity) == len(bars) == m["n_bars"]
    assert m["n_predictions"] == len(preds)
    report = (folder / "backtest_report.md").read_text()
    assert "buy and hold" in report
    for png in ("equity", "drawdown", "monthly_returns", "trades", "signal"):
        assert (folder / f"{png}.png").is_file()


@pytest.mark.slow
def test_05_robustness(run):
    from cryptoai.features.spec import load_feature_spec
    from cryptoai.research.robustness import feature_groups

    folder = outputs(run, "05-robustness")
    m = metrics(run, "05-robustness")
    backtest = metrics(run, "04-backtesting")
    assert m["periods.n"] == 4
    for key in ("periods.share_beating_benchmark", "periods.share_positive"):
        assert m[key] in (0.0, 0.25, 0.5, 0.75, 1.0)  # a share of four periods
    for label in ("low_vol", "mid_vol", "high_vol"):
        assert f"regime.volatility.{label}.sharpe" in m
    trend = {k for k in m if k.startswith("regime.trend.")}
    stats = ("sharpe", "excess_return", "ic")
    assert trend and trend <= {f"regime.trend.{t}.{s}" for t in ("up", "down") for s in stats}
    # The threshold grid holds the config's thresholds (long 0.52, short 0.48): at the
    # config's costs that row is notebook 04's backtest, run through another kernel.
    thresholds = pd.read_csv(folder / "thresholds.csv")
    assert m["thresholds.n"] == len(thresholds)
    assert m["thresholds.best_sharpe"] == pytest.approx(thresholds["sharpe"].max())
    configured = thresholds[
        (thresholds["long_above"] == 0.52) & (thresholds["short_below"] == 0.48)
    ]
    assert len(configured) == 1
    assert configured["total_return"].iloc[0] == pytest.approx(backtest["total_return"])
    assert (
        m["thresholds.best_sharpe"] >= configured["sharpe"].iloc[0] >= m["thresholds.worst_sharpe"]
    )
    # Costs: the config's point (10 bps fee, 2 bps slippage) is notebook 04's backtest again;
    # the same trades at higher costs never earn more, so the dearest corner is the worst.
    costs = pd.read_csv(folder / "costs.csv")
    at_config = costs[(costs["fee_bps"] == 10.0) & (costs["slippage_bps"] == 2.0)]
    assert at_config["total_return"].iloc[0] == pytest.approx(backtest["total_return"])
    for _, by_fee in costs.sort_values("fee_bps").groupby("slippage_bps"):
        assert by_fee["total_return"].is_monotonic_decreasing
    free = costs[(costs["fee_bps"] == 0.0) & (costs["slippage_bps"] == 0.0)]["total_return"]
    dearest = costs[(costs["fee_bps"] == 40.0) & (costs["slippage_bps"] == 10.0)]["total_return"]
    assert m["costs.zero_cost_return"] == pytest.approx(free.iloc[0])
    assert m["costs.worst_return"] == pytest.approx(dearest.iloc[0])
    assert m["costs.zero_cost_return"] > backtest["total_return"] > m["costs.worst_return"]
    # Same model, folds and data as notebook 03: the ablation's full model matches it.
    assert m["ablation.all.balanced_accuracy"] == pytest.approx(
        metrics(run, "03-model-prototyping")["balanced_accuracy"]
    )
    groups = feature_groups(load_feature_spec(REPO / "configs" / "features" / "default.yaml"))
    assert {k for k in m if k.endswith(".loss")} == {f"ablation.{g}.loss" for g in groups}
    assert "ablation: 100%" in executed_text(run, "05-robustness")  # progress shown
    # Stress, margin and bootstrap: relations between different quantities, not one number.
    scenarios = ("base", "crash", "gap", "vol_x3", "fees_x3", "slippage_x5")
    assert {f"stress.{s}.total_return" for s in scenarios} <= set(m)
    assert m["stress.fees_x3.fees_paid"] > m["stress.base.fees_paid"]
    assert m["stress.fees_x3.total_return"] <= m["stress.base.total_return"]
    assert m["stress.slippage_x5.total_return"] <= m["stress.base.total_return"]
    assert m["bootstrap.sharpe_low"] <= m["bootstrap.sharpe"] <= m["bootstrap.sharpe_high"]
    assert m["bootstrap.max_drawdown_low"] <= m["bootstrap.max_drawdown_high"] <= 0
    assert m["bootstrap.sharpe"] == pytest.approx(m["stress.base.sharpe"])
    assert m["margin.max_leverage"] == 10.0
    lev = m["margin.liquidation_leverage"]
    assert lev is None or 1 <= lev <= 10
    assert (lev is None) == (m["margin.n_liquidated"] == 0)


@pytest.mark.slow
def test_06_optimization(run):
    """The grid and walk-forward reports agree with the metrics, and the best parameters
    re-run here through ``run_backtest`` on the same bars give the same Sharpe ratio."""
    import cryptoai as ca
    from cryptoai.backtest.metrics import compute_metrics
    from cryptoai.data.store import RawStore
    from cryptoai.optimize import load_optimize_config
    from cryptoai.optimize.config import SMOKE_BARS as OPT_SMOKE_BARS

    folder = outputs(run, "06-optimization")
    m = metrics(run, "06-optimization")
    grid = json.loads((folder / "grid" / "results.json").read_text())
    wf = json.loads((folder / "walk_forward" / "results.json").read_text())
    # smoke grid: 3 x 3 points of fast < slow, all run, on the last OPT_SMOKE_BARS bars
    assert grid["config"]["smoke"] and len(grid["trials"]) == 9 == m["optimize.n_trials"]
    values = [t["value"] for t in grid["trials"] if t["state"] == "complete"]
    assert m["optimize.best_objective"] == pytest.approx(max(values))
    stats = grid["statistics"]
    for key in ("deflated_sharpe", "pbo"):
        assert 0.0 <= m[f"optimize.{key}"] <= 1.0
        assert m[f"optimize.{key}"] == pytest.approx(stats[key])
    assert m["optimize.best_falloff"] == pytest.approx(grid["stable"]["best_falloff"])
    cfg = load_optimize_config(REPO / "configs" / "optimize" / "ema_cross_grid.yaml")
    # the optimization's smoke cut: the last OPT_SMOKE_BARS bars of the stored candles
    stored = RawStore(run.store).load("synthetic", "BTC/USDT", "1h", START, END)
    bars = stored.iloc[-OPT_SMOKE_BARS:]
    best = {**cfg.params, **grid["best"]["params"]}
    chosen, bench = ca.run_backtest(bars, cfg.strategy, best, cfg.settings())
    assert m["optimize.best_sharpe"] == pytest.approx(compute_metrics(chosen)["sharpe"])
    assert m["optimize.excess_return"] == pytest.approx(
        compute_metrics(chosen)["total_return"] - compute_metrics(bench)["total_return"]
    )
    # walk-forward: two windows of the config's 720 bars, efficiency from the windows
    windows = wf["walk_forward"]["windows"]
    assert [w["n_test"] for w in windows] == [720, 720]
    ins = [w["in_sample"] for w in windows]
    oos = [w["out_of_sample"] for w in windows]
    assert m["optimize.walk_forward_efficiency"] == pytest.approx(
        (sum(oos) / len(oos)) / (sum(ins) / len(ins))
    )
    assert m["optimize.ledger_n_trials"] == 9 + len(wf["trials"]) == 9 + 18
    for png in ("grid/heatmap.png", "grid/equity.png", "walk_forward/equity.png"):
        assert (folder / png).stat().st_size > 1000


# ----------------------------------------------------------------- plugins in the kernel
PLUGIN = """\
from cryptoai import Strategy, register_strategy


@register_strategy("notebook_plugin_flat")
class Flat(Strategy):
    def signals(self, data):
        return data["close"] * 0.0
"""


@pytest.mark.slow
def test_notebook_setup_loads_the_configs_plugins_inside_the_kernel(tmp_path, kernel_env):
    """A config's ``plugins:`` are imported by ``notebook_setup`` in the notebook's own kernel,
    so a notebook can name a user's strategy (the test process never imports the plugin)."""
    from cryptoai.strategies.registry import list_strategies

    (tmp_path / "flat_plugin.py").write_text(PLUGIN)
    config = tmp_path / "with_plugin.yaml"
    config.write_text("plugins: [flat_plugin.py]\n" + CONFIG.read_text())
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "python3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            'config_path = "x"\noutput_dir = "x"', metadata={"tags": ["parameters"]}
        ),
        nbformat.v4.new_code_cell(
            "from cryptoai.research.notebook import notebook_setup\n"
            "from cryptoai.strategies.registry import list_strategies\n"
            "session = notebook_setup('00-plugin', config_path, output_dir=output_dir)\n"
            "assert 'notebook_plugin_flat' in list_strategies(), list_strategies()\n"
            "session = notebook_setup('00-plugin', config_path, output_dir=output_dir)\n"
            "import logging\n"
            "assert len(logging.getLogger().handlers) == 1, logging.getLogger().handlers\n"
        ),
    ]
    source = tmp_path / "00-plugin.ipynb"
    nbformat.write(nb, source)
    params = {"config_path": str(config), "output_dir": str(tmp_path / "out")}
    execute_notebook(source, tmp_path / "executed.ipynb", params, tmp_path)
    assert (tmp_path / "out" / "00-plugin").is_dir()
    assert "notebook_plugin_flat" not in list_strategies()  # it ran in the kernel only
