"""The numbered notebooks: stored clean, parameterized, and run top to bottom in smoke mode.

Every notebook is executed by papermill in a real ``python3`` kernel from a scratch working
directory, with the raw store and the outputs in a temporary folder (the repository's data/
and docs/ are never touched). The assertions read what the notebooks wrote and check it
against numbers recomputed here from the stored candles.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
NOTEBOOKS = [
    "01-data-exploration",
    "02-feature-engineering",
    "03-model-prototyping",
    "04-backtesting",
    "05-robustness",
]
REQUIRED_PARAMETERS = {
    "config_path": "../configs/experiments/logreg_baseline.yaml",
    "symbol": None,
    "timeframe": None,
    "start": None,
    "end": None,
    "seed": 42,
    "smoke": False,
    "output_dir": "experiments/scratch",
    "store_root": None,
}
START, END = "2024-10-01", "2025-01-01"
SMOKE_BARS = 600
CANDIDATES = ["logreg", "xgboost", "gru"]  # one tabular, one boosted, one sequence model


def parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell must be tagged 'parameters'"
    return tagged[0]


def literal_assignments(source: str) -> dict:
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
    }


# ----------------------------------------------------------------- stored notebooks
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_clean_and_parameterized(name):
    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: stored with outputs"
            assert cell.execution_count is None, f"{name}: stored with execution counts"
        assert "papermill" not in cell.metadata and "execution" not in cell.metadata
    assert nb.metadata.kernelspec.name == "python3"
    params = literal_assignments(parameters_cell(nb).source)
    for key, value in REQUIRED_PARAMETERS.items():
        assert key in params and params[key] == value, f"{name}: parameter {key}"
    assert (REPO / "notebooks" / params["config_path"]).resolve().is_file()


def test_committed_notebooks_are_what_the_builder_writes():
    spec = importlib.util.spec_from_file_location(
        "_build_notebooks", NB_DIR / "_build_notebooks.py"
    )
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    assert list(builder.NOTEBOOKS) == NOTEBOOKS
    for name in NOTEBOOKS:
        stored = (NB_DIR / f"{name}.ipynb").read_text(encoding="utf-8")
        assert stored == nbformat.writes(builder.build(name)) + "\n", f"{name} is stale"


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
def _snapshot(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in folder.rglob("*")} if folder.exists() else {}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Execute all five notebooks in order (04 and 05 read what 03 saved)."""
    import papermill as pm

    tmp = tmp_path_factory.mktemp("notebooks")
    work, out, store = tmp / "cwd", tmp / "out", tmp / "raw"
    work.mkdir()
    # A kernel spec for this very interpreter, found first, so the notebooks run here.
    kernels = tmp / "jupyter" / "kernels" / "python3"
    kernels.mkdir(parents=True)
    pythonpath = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    (kernels / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "python3",
                "language": "python",
                "env": {"PYTHONPATH": pythonpath},
            }
        )
    )
    docs_before = _snapshot(REPO / "docs" / "eda")
    errors: dict[str, str] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(tmp / "jupyter"))
        mp.setenv("MPLBACKEND", "Agg")
        for name in NOTEBOOKS:
            params = {
                "smoke": True,
                "output_dir": str(out),
                "store_root": str(store),
                "start": START,
                "end": END,
            }
            if name == "03-model-prototyping":
                params["candidates"] = CANDIDATES
            try:
                pm.execute_notebook(
                    str(NB_DIR / f"{name}.ipynb"),
                    str(tmp / f"{name}.ipynb"),
                    parameters=params,
                    kernel_name="python3",
                    cwd=str(work),
                    progress_bar=False,
                )
            except Exception as exc:  # reported by the test of that notebook
                errors[name] = f"{type(exc).__name__}: {exc}"
    return {
        "tmp": tmp,
        "out": out,
        "store": store,
        "work": work,
        "errors": errors,
        "docs_changed": _snapshot(REPO / "docs" / "eda") != docs_before,
    }


def outputs(run, name: str) -> Path:
    assert name not in run["errors"], run["errors"][name]
    return run["out"] / name


def metrics(run, name: str) -> dict:
    return json.loads((outputs(run, name) / "metrics.json").read_text())


def candles(run, symbol: str = "BTC/USDT") -> pd.DataFrame:
    """The smoke run's bars, read back from the temporary store."""
    from cryptoai.data.store import RawStore

    frame = RawStore(run["store"]).load("synthetic", symbol, "1h", START, END)
    return frame.iloc[-SMOKE_BARS:]


def dataset(run):
    """Features, target and forward return exactly as training builds them."""
    from cryptoai.modeling.training import build_dataset
    from cryptoai.research.experiment_config import load_experiment

    exp = load_experiment(REPO / "configs" / "experiments" / "logreg_baseline.yaml")
    cfg = exp.train_config().model_copy(update={"features": str(REPO / exp.features)})
    return build_dataset(candles(run), cfg)


def test_notebooks_ran_without_touching_the_repository(run):
    assert run["errors"] == {}
    assert not run["docs_changed"], "a smoke run wrote into docs/eda/"
    assert list(run["work"].iterdir()) == [], "a notebook wrote into its working directory"
    for name in NOTEBOOKS:
        nb = nbformat.read(run["tmp"] / f"{name}.ipynb", as_version=4)
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
        assert errors == []
        assert any(
            "image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])
        ), f"{name} shows no plot"


def test_01_data_exploration(run):
    folder = outputs(run, "01-data-exploration")
    m = metrics(run, "01-data-exploration")
    for sym in ("BTC-USDT", "ETH-USDT"):  # both symbols went to the temporary store
        assert (run["store"] / "synthetic" / sym / "1h").is_dir()
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
    selected = (folder / "selected_features.txt").read_text().split()
    assert len(selected) == m["n_selected"] == math.ceil(0.5 * m["n_after_correlation_pruning"])
    assert set(selected) <= set(columns)
    assert m["n_after_correlation_pruning"] < m["n_features"]  # ret_log_1 and ret_1 are twins


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
    assert m["accuracy"] == pytest.approx(accuracy_score(preds["y_true"], preds["pred"]))
    assert m["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(preds["y_true"], preds["pred"])
    )
    assert m["n_predictions"] == len(preds) and m["n_folds"] == 2
    assert "baseline.accuracy" in m
    for name in CANDIDATES:
        assert 0.0 < m[f"compare.{name}.accuracy"] < 1.0
    table = pd.read_csv(folder / "comparison.csv", index_col=0)
    assert list(table.index) == [*CANDIDATES, "naive baseline"]
    assert table.loc["logreg", "accuracy"] == pytest.approx(m["accuracy"])


def test_04_backtesting(run):
    folder = outputs(run, "04-backtesting")
    m = metrics(run, "04-backtesting")
    assert m["predictions_from_03"] == 1.0
    bench = m["benchmark"]
    equity = pd.read_csv(folder / "equity.csv")
    trades = pd.read_csv(folder / "trades.csv")
    assert m["final_equity"] == pytest.approx(equity["equity"].iloc[-1])
    assert m["n_trades"] == len(trades)
    assert m["excess_return"] == pytest.approx(m["total_return"] - bench["total_return"])
    # Buy-and-hold over the predicted bars: in at the second bar's open, out at the last
    # close, paying 10 bps fee + 2 bps slippage each way.
    preds = pd.read_parquet(outputs(run, "03-model-prototyping") / "predictions.parquet")
    bars = candles(run).loc[preds.index[0] : preds.index[-1]]
    gross = bars["close"].iloc[-1] / bars["open"].iloc[1]
    assert bench["total_return"] == pytest.approx(gross * (1 - 0.0012) ** 2 - 1, abs=2e-3)
    assert len(equity) == len(bars) == m["n_bars"]
    report = (folder / "backtest_report.md").read_text()
    assert "buy and hold" in report
    for png in ("equity", "drawdown", "monthly_returns", "trades", "signal"):
        assert (folder / f"{png}.png").is_file()


def test_05_robustness(run):
    from cryptoai.features.spec import load_feature_spec
    from cryptoai.research.robustness import feature_groups

    m = metrics(run, "05-robustness")
    assert m["periods.n"] == 4
    for key in ("periods.share_beating_benchmark", "periods.share_positive"):
        assert 0.0 <= m[key] <= 1.0
    for label in ("low_vol", "mid_vol", "high_vol"):
        assert f"regime.volatility.{label}.sharpe" in m
    trend = {k for k in m if k.startswith("regime.trend.")}
    stats = ("sharpe", "excess_return", "ic")
    assert trend and trend <= {f"regime.trend.{t}.{s}" for t in ("up", "down") for s in stats}
    assert m["thresholds.best_sharpe"] >= m["thresholds.worst_sharpe"]
    assert m["costs.zero_cost_return"] >= m["costs.worst_return"]
    # Same model, folds and data as notebook 03: the ablation's full model matches it.
    assert m["ablation.all.balanced_accuracy"] == pytest.approx(
        metrics(run, "03-model-prototyping")["balanced_accuracy"]
    )
    groups = feature_groups(load_feature_spec(REPO / "configs" / "features" / "default.yaml"))
    assert {k for k in m if k.endswith(".loss")} == {f"ablation.{g}.loss" for g in groups}
    backtest = metrics(run, "04-backtesting")
    zero_cost_base = m["costs.zero_cost_return"]
    assert zero_cost_base >= backtest["total_return"]  # removing costs never hurts
