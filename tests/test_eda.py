"""Notebook helpers: setup and path resolution, data and feature summaries, plots, tables."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy import stats

from cryptoai.errors import BadInputError
from cryptoai.paths import repo_root
from cryptoai.research import eda

REPO = Path(__file__).resolve().parents[1]
CONFIG = "configs/experiments/logreg_baseline.yaml"


def candles(n: int = 48, start: str = "2024-01-01", seed: int = 0, freq: str = "1h"):
    """A contract-clean OHLCV frame with a random walk close."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    idx = pd.date_range(start, periods=n, freq=freq, tz="UTC", name="timestamp")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": rng.uniform(1, 2, n),
        },
        index=idx,
    )


# ------------------------------------------------------------------------------ setup
def test_find_repo_root_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the checkout: found through the installed package
    assert repo_root(via_package=True) == REPO
    assert repo_root(REPO / "notebooks", via_package=True) == REPO


def test_resolve_path_tries_cwd_then_root_then_notebooks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here.txt").write_text("x")
    assert eda.resolve_path("here.txt", REPO) == tmp_path / "here.txt"
    assert eda.resolve_path(CONFIG, REPO) == REPO / CONFIG
    # written for a notebook in notebooks/: ../configs/... still works from any cwd
    assert eda.resolve_path(f"../{CONFIG}", REPO) == REPO / CONFIG
    # not existing yet (an output folder): under the root
    assert eda.resolve_path("experiments/new_dir", REPO) == REPO / "experiments" / "new_dir"
    assert eda.resolve_path(tmp_path / "abs", REPO) == tmp_path / "abs"


def test_notebook_experiment_applies_parameters_and_makes_paths_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exp = eda.notebook_experiment(
        f"../{CONFIG}", symbol="ethusdt", start="2024-06-01", seed=7, store_root="store"
    )
    assert exp.dataset.symbol == "ethusdt"
    assert exp.dataset.start == "2024-06-01"
    assert exp.dataset.end == "2025-01-01"  # None keeps the config's value
    assert exp.seed == 7
    assert exp.dataset.store_root == str(REPO / "store")
    assert exp.features == str(REPO / "configs" / "features" / "default.yaml")
    kept = eda.notebook_experiment(f"../{CONFIG}")
    assert kept.seed == 42 and kept.dataset.symbol == "BTC/USDT"
    assert kept.dataset.store_root == str(REPO / "data" / "raw")


def test_notebook_experiment_missing_config_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadInputError, match="not found") as info:
        eda.notebook_experiment("configs/experiments/nope.yaml")
    assert "\n" not in str(info.value)


def test_notebook_train_config_and_candidates(tmp_path):
    exp = eda.notebook_experiment(CONFIG, store_root=tmp_path)
    cfg = eda.notebook_train_config(exp, smoke=True, work_dir=tmp_path)
    assert cfg.smoke and cfg.validation.n_splits == 2 and not cfg.fit_final
    assert cfg.output_dir == str(tmp_path)
    cands = eda.model_candidates(
        exp, ["random_forest", "ridge", "gru"], smoke=True, work_dir=tmp_path
    )
    # the experiment's model first; ridge cannot classify and is left out
    assert list(cands) == ["logreg", "random_forest", "gru"]
    assert cands["logreg"].model.params == {"C": 0.1, "max_iter": 2000}
    # parameters from configs/models/random_forest.yaml with its smoke parameters merged
    assert cands["random_forest"].model.params["n_estimators"] == 20
    assert cands["random_forest"].model.params["max_depth"] == 6
    assert cands["gru"].model.params["max_epochs"] == 1
    # only the model differs from what the notebooks train
    assert all(c.data == cfg.data and c.validation == cfg.validation for c in cands.values())


def test_training_candles_is_what_train_uses(tmp_path):
    exp = eda.notebook_experiment(CONFIG, start="2024-10-01", end="2025-01-01", store_root=tmp_path)
    full = eda.training_candles(exp.train_config())
    smoke_cfg = exp.train_config(smoke=True)
    smoke = eda.training_candles(smoke_cfg)
    assert len(full) == 92 * 24
    assert len(smoke) == smoke_cfg.smoke_bars < len(full)
    pd.testing.assert_frame_equal(smoke, full.iloc[-smoke_cfg.smoke_bars :])


def test_load_symbols_skips_what_cannot_be_loaded(tmp_path):
    exp = eda.notebook_experiment(CONFIG, start="2024-12-01", end="2024-12-03", store_root=tmp_path)
    frames = eda.load_symbols(exp.dataset, ["BTC/USDT", "ethusdt"], tail=10)
    assert list(frames) == ["BTC/USDT", "ETH/USDT"]
    assert all(len(f) == 10 for f in frames.values())
    stored = exp.dataset.model_copy(update={"source": "binance"})  # nothing stored for it
    with pytest.raises(BadInputError, match="could be loaded"):
        eda.load_symbols(stored, ["BTC/USDT"])


# -------------------------------------------------------------------- notebook session
def test_notebook_setup_returns_a_session_and_seeds(tmp_path, monkeypatch):
    import logging
    import random

    from cryptoai.research.notebook import notebook_setup

    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    session = notebook_setup(
        "00-test",
        f"../{CONFIG}",
        seed=11,
        smoke=True,
        output_dir=tmp_path / "out",
        store_root=tmp_path / "raw",
        show_header=False,
    )
    assert session.exp.seed == 11 and session.cfg.smoke and session.cfg.seed == 11
    assert session.out.dir == tmp_path / "out" / "00-test" and session.out.dir.is_dir()
    assert session.work_dir.is_dir() and not session.cfg.fit_final
    drawn = random.random()
    random.seed(11)
    assert drawn == random.random()  # seed_everything(11) ran
    assert pd.get_option("display.max_columns") == 30
    assert (
        "**EXP-001 logreg_baseline**" in session.header()
        and f"smoke: last {session.cfg.smoke_bars} bars" in session.header()
    )
    # a second setup in the same kernel adds no second handler (no doubled log lines)
    notebook_setup("00-test", f"../{CONFIG}", output_dir=tmp_path / "out", show_header=False)
    assert len(root.handlers) == 1
    fig = eda.plot_prices({"a": candles(10)})
    path = session.show(fig, "prices")
    assert path == session.out.dir / "prices.png" and path.stat().st_size > 1000
    assert session.figures == {"prices": fig}
    scratch = session.work_dir
    session.close()
    assert not scratch.exists() and path.exists()
    assert os.listdir(tmp_path) == ["out"]


def test_notebook_setup_loads_the_configs_plugins(tmp_path, monkeypatch):
    from cryptoai.research.notebook import notebook_setup
    from cryptoai.strategies.registry import list_strategies

    (tmp_path / "plugin_for_setup.py").write_text(
        "from cryptoai import Strategy, register_strategy\n\n\n"
        "@register_strategy('setup_plugin_flat')\n"
        "class Flat(Strategy):\n"
        "    def signals(self, data):\n"
        "        return data['close'] * 0.0\n"
    )
    config = tmp_path / "exp.yaml"
    config.write_text("plugins: [plugin_for_setup.py]\n" + (REPO / CONFIG).read_text())
    assert "setup_plugin_flat" not in list_strategies()
    notebook_setup("00-test", config, output_dir=tmp_path / "out", show_header=False)
    assert "setup_plugin_flat" in list_strategies()


def test_selected_features_are_handed_over_for_the_same_config_only(tmp_path):
    from cryptoai.research.notebook import (
        NotebookOutputs,
        load_selected_features,
        save_selected_features,
    )

    exp = eda.notebook_experiment(CONFIG, store_root=tmp_path)
    cfg = eda.notebook_train_config(exp, smoke=True, work_dir=tmp_path)
    out = NotebookOutputs(tmp_path, "02-feature-engineering")
    assert load_selected_features(cfg, out.dir) is None  # 02 not run
    save_selected_features(out, ["rsi_14", "sma_rel_10"], cfg, keep_share=0.5)
    assert load_selected_features(cfg, out.dir) == ["rsi_14", "sma_rel_10"]
    other = cfg.model_copy(update={"seed": 7})
    assert load_selected_features(other, out.dir) is None  # fitted under another seed
    (out.dir / "selected_features.json").write_text("{not json")
    assert load_selected_features(cfg, out.dir) is None


def test_write_eda_docs_writes_notes_and_plots_where_told(tmp_path):
    fig = eda.plot_prices({"a": candles(10)})
    path = eda.write_eda_docs("# Notes", {"prices": fig}, "BTC/USDT", "1h", tmp_path / "eda")
    assert path == tmp_path / "eda" / "BTC-USDT_1h_exploration.md"
    assert path.read_text() == "# Notes\n\n## Plots\n\n![prices](BTC-USDT_1h_prices.png)\n"
    assert (tmp_path / "eda" / "BTC-USDT_1h_prices.png").stat().st_size > 1000


def test_quantile_levels_hold_the_configured_value():
    values = pd.Series(np.arange(11) / 10)  # 0.0 .. 1.0
    assert eda.quantile_levels(values, [0.5, 0.9], 0.52) == [0.5, 0.52, 0.9]
    assert eda.quantile_levels(values, [0.5, 0.5]) == [0.5]


# ------------------------------------------------------------------------ data checks
def test_data_quality_table_counts_gaps_duplicates_and_timezone():
    clean = candles(48)
    gappy = clean.drop(clean.index[10:13])  # 3 missing bars in one gap
    gappy = gappy.drop(gappy.index[30])  # and 1 more
    duplicated = pd.concat([clean, clean.iloc[[5]]]).sort_index()
    naive = clean.tz_localize(None)
    table = eda.data_quality_table(
        {"clean": clean, "gappy": gappy, "dup": duplicated, "naive": naive}, "1h"
    )
    assert table.loc["clean", ["missing", "gaps", "duplicates"]].tolist() == [0, 0, 0]
    assert table.loc["clean", "contract_ok"]
    assert table.loc["gappy", "missing"] == 4
    assert table.loc["gappy", "gaps"] == 2
    assert table.loc["gappy", "longest_gap"] == 3
    assert table.loc["gappy", "expected"] == 48
    assert math.isclose(table.loc["gappy", "missing_pct"], 100 * 4 / 48)
    assert table.loc["dup", "duplicates"] == 1 and not table.loc["dup", "contract_ok"]
    assert table.loc["naive", "timezone"] == "naive" and not table.loc["naive", "contract_ok"]
    assert table.loc["clean", "timezone"] == "UTC"


def test_gap_table_lists_gaps_longest_first():
    clean = candles(48)
    gappy = clean.drop(clean.index[[3, 20, 21, 22, 40, 41]])
    table = eda.gap_table(gappy, "1h")
    assert table["missing_bars"].tolist() == [3, 2, 1]
    assert table.loc[0, "start"] == clean.index[20]
    assert table.loc[0, "end"] == clean.index[23]
    assert table.loc[0, "duration"] == pd.Timedelta(hours=3)
    assert eda.gap_table(clean, "1h").empty


def test_alignment_table_counts_shared_bars():
    a = candles(48)
    b = candles(48, start="2024-01-01 12:00", seed=1).drop(
        pd.Timestamp("2024-01-02 00:00", tz="UTC")
    )
    table = eda.alignment_table({"a": a, "b": b})
    common = a.index.intersection(b.index)
    assert len(common) == 35  # bars 12..47 of a, less the dropped one
    assert table["in_common"].tolist() == [35, 35]
    assert table.loc["a", "not_in_common"] == 48 - 35
    assert table.loc["b", "not_in_common"] == 47 - 35


def test_rolling_volatility_matches_a_loop():
    close = candles(60)["close"]
    vol = eda.rolling_volatility(close, 10, 8760)
    r = np.diff(np.log(close.to_numpy()))
    for t in (10, 33, 59):  # bar t uses returns ending at t
        window = r[t - 10 : t]
        assert math.isclose(vol.iloc[t], window.std(ddof=1) * math.sqrt(8760), rel_tol=1e-12)
    assert vol.iloc[:10].isna().all()
    with pytest.raises(BadInputError):
        eda.rolling_volatility(close, 1, 8760)


def test_return_stats_and_log_returns_match_scipy():
    a, b = candles(200, seed=1), candles(200, seed=2)
    table = eda.return_stats({"a": a, "b": b}, 8760)
    r = np.diff(np.log(a["close"].to_numpy()))
    assert table.loc["a", "bars"] == 199
    assert math.isclose(table.loc["a", "ann_volatility"], r.std(ddof=1) * math.sqrt(8760))
    assert math.isclose(table.loc["a", "ann_return"], r.mean() * 8760)
    assert math.isclose(table.loc["a", "skew"], stats.skew(r, bias=False), rel_tol=1e-9)
    assert math.isclose(
        table.loc["a", "excess_kurtosis"], stats.kurtosis(r, bias=False), rel_tol=1e-9
    )
    rets = eda.log_returns({"a": a, "b": b.iloc[50:]})
    assert rets.index[0] == b.index[51]  # shared bars only, first return dropped
    np.testing.assert_allclose(rets["a"].to_numpy(), r[50:])


def test_plots_return_figures_with_the_data():
    a, b = candles(100, seed=1), candles(100, seed=2).drop(candles(100).index[40:45])
    frames = {"a": a, "b": b}
    prices = eda.plot_prices(frames)
    lines = prices.axes[0].get_lines()
    assert [ln.get_label() for ln in lines[:2]] == ["a", "b"]
    assert lines[0].get_ydata()[0] == pytest.approx(1.0)  # normalized to the first close
    assert len(eda.plot_volume(frames).axes) == 2
    assert len(eda.plot_volatility(frames, 10, 8760).axes[0].get_lines()) == 2
    gaps = eda.plot_gaps(frames, "1h")
    assert "1 gap(s)" in gaps.axes[0].get_title()
    heat = eda.plot_heatmap(eda.log_returns(frames).corr(), "corr")
    assert isinstance(heat, Figure)
    assert len(heat.axes[0].texts) == 4  # annotated 2x2


# ------------------------------------------------------------------------- features
def test_describe_features_warmup_and_nan_share():
    x = pd.DataFrame(
        {"a": [np.nan, np.nan, 1.0, 2.0, 3.0, np.nan], "b": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}
    )
    table = eda.describe_features(x)
    assert table.loc["a", "warmup"] == 2 and table.loc["b", "warmup"] == 0
    assert table.loc["a", "nan_share"] == pytest.approx(0.5)
    assert table.loc["a", "mean"] == pytest.approx(2.0)
    assert table.loc["b", "std"] == pytest.approx(np.std(np.arange(1, 7), ddof=1))


def test_feature_target_ic_matches_spearman():
    rng = np.random.default_rng(3)
    ret = pd.Series(rng.normal(size=300))
    x = pd.DataFrame({"signal": ret * 0.5 + rng.normal(size=300), "noise": rng.normal(size=300)})
    x.loc[:9, "signal"] = np.nan
    ic = eda.feature_target_ic(x, ret)
    ok = x["signal"].notna()
    expected = stats.spearmanr(x.loc[ok, "signal"], ret[ok]).statistic
    assert ic["signal"] == pytest.approx(expected)
    assert abs(ic["noise"]) < 0.15 < ic["signal"]


def test_feature_distributions_one_panel_per_feature():
    x = pd.DataFrame(np.random.default_rng(0).normal(size=(200, 5)), columns=list("abcde"))
    x.loc[0, "a"] = 1e6  # an extreme bar is clipped, not plotted
    fig = eda.plot_feature_distributions(x, ncols=4)
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(visible) == 5
    assert visible[0].get_title() == "a"
    values, edges, _ = visible[0].patches[0].get_data()
    assert edges.max() < 10 and values.sum() == 198  # lowest and highest of 200 bars clipped
    with pytest.raises(BadInputError):
        eda.plot_feature_distributions(x, columns=[])


# ----------------------------------------------------------------------- comparison
def test_comparison_table_and_plot():
    table = eda.comparison_table(
        {"m1": {"acc": 0.6, "ic": 0.1}, "m2": {"acc": 0.5}, "naive": {"acc": 0.52, "ic": 0.0}},
        ["acc", "ic"],
    )
    assert list(table.index) == ["m1", "m2", "naive"]
    assert math.isnan(table.loc["m2", "ic"])
    fig = eda.plot_metric_comparison(table, "acc", reference="naive")
    bars = [p.get_width() for p in fig.axes[0].patches]
    assert bars == pytest.approx([0.6, 0.5, 0.52])
    assert fig.axes[0].get_lines()[0].get_xdata()[0] == pytest.approx(0.52)
    with pytest.raises(BadInputError, match="no metric"):
        eda.plot_metric_comparison(table, "sharpe")


def test_signal_histogram_and_grouped_bars():
    signal = pd.Series(np.linspace(0.4, 0.6, 101), name="proba_1")
    fig = eda.plot_signal_histogram(signal, {"long_above": 0.55, "short_below": 0.45})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["long_above=0.55 (25%)", "short_below=0.45 (25%)"]
    frame = pd.DataFrame({"s": [0.1, -0.2], "b": [0.3, 0.0]}, index=["p0", "p1"])
    bars = eda.plot_grouped_bars(frame, ["s", "b"])
    assert [p.get_height() for p in bars.axes[0].patches] == pytest.approx([0.1, -0.2, 0.3, 0.0])


def test_markdown_table():
    frame = pd.DataFrame(
        {"x": [1.23456, float("nan")], "ok": [True, False], "bars": [17544, 3]},
        index=pd.Index(["a|b", "c"], name="name"),
    )
    assert eda.markdown_table(frame, "{:.2f}") == (
        "| name | x | ok | bars |\n|---|---|---|---|\n"
        "| a\\|b | 1.23 | True | 17544 |\n| c | n/a | False | 3 |"
    )


def test_no_files_written_in_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    eda.data_quality_table({"a": candles(10)})
    eda.plot_prices({"a": candles(10)})
    assert os.listdir(tmp_path) == []
