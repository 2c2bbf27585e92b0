"""User plugins: files, folders, modules and entry points register strategies, models and
features that then work wherever a built-in name does (configs included)."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cryptoai import plugins
from cryptoai.config import load_config
from cryptoai.errors import BadInputError, ConfigError
from cryptoai.features.engineering import build_features
from cryptoai.features.spec import FeatureSpec
from cryptoai.modeling.models import make_model
from cryptoai.modeling.models.registry import MODELS
from cryptoai.research.experiment_config import ExperimentConfig
from cryptoai.strategies import get_strategy
from cryptoai.strategies.registry import STRATEGIES

REPO_CONFIG = Path(__file__).resolve().parents[1] / "configs/experiments/logreg_baseline.yaml"

STRATEGY = """
import pandas as pd
from cryptoai import Strategy, register_strategy

@register_strategy("{name}")
class Always(Strategy):
    params = {{"level": 1.0}}

    def signals(self, data):
        return pd.Series(self.level, index=data.index)
"""


@pytest.fixture
def registries():
    """Leave the registries as they were (plugins register into process-wide registries)."""
    for registry in (STRATEGIES, MODELS):
        registry.names()  # built-ins in before the snapshot
    before = {r: dict(r._entries) for r in (STRATEGIES, MODELS)}
    loaded = dict(plugins._loaded)
    yield
    for registry, entries in before.items():
        registry._entries.clear()
        registry._entries.update(entries)
    plugins._loaded.clear()
    plugins._loaded.update(loaded)


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_a_file_a_folder_and_a_module_name_load_once(tmp_path, registries, monkeypatch):
    one = write(tmp_path / "one.py", STRATEGY.format(name="plug_one"))
    folder = tmp_path / "more"
    folder.mkdir()
    write(folder / "two.py", STRATEGY.format(name="plug_two"))
    write(folder / "_helper.py", "raise RuntimeError('never imported: underscore files skip')")
    write(tmp_path / "plug_mod.py", STRATEGY.format(name="plug_three"))
    monkeypatch.syspath_prepend(str(tmp_path))
    names = plugins.load_plugins([one, folder, "plug_mod"])
    assert len(names) == 3
    assert {"plug_one", "plug_two", "plug_three"} <= set(STRATEGIES.names())
    assert plugins.load_plugins([one]) == names[:1]  # the same file twice: imported once


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("def broken(:\n", "SyntaxError"),
        ("raise ValueError('bad plugin')\n", "ValueError: bad plugin"),
        (STRATEGY.format(name="buy_and_hold"), "already used"),
    ],
)
def test_a_bad_plugin_is_one_line_naming_it(tmp_path, registries, text, message):
    bad = write(tmp_path / "bad.py", text)
    with pytest.raises(BadInputError, match=message) as err:
        plugins.load_plugins([bad])
    assert "bad.py" in str(err.value) and "\n" not in str(err.value)
    assert get_strategy("buy_and_hold").__module__ == "cryptoai.strategies.buy_and_hold"


def test_missing_plugins_are_errors(tmp_path):
    with pytest.raises(BadInputError, match="not found"):
        plugins.load_plugins([tmp_path / "nope.py"])
    with pytest.raises(BadInputError, match="neither a file nor an importable module"):
        plugins.load_plugins(["no_such_plugin_module_xyz"])


def test_a_config_loads_its_plugins_before_it_is_validated(tmp_path, registries):
    write(tmp_path / "always.py", STRATEGY.format(name="plug_always"))
    # `always.py` resolves against the config's folder, not the working directory
    text = REPO_CONFIG.read_text().replace("strategy: model_signal", "strategy: plug_always")
    text = re.sub(r"\n  params: \{long_above[^\n]*\}", "\n  params: {level: 0.5}", text)
    cfg_file = tmp_path / "exp.yaml"
    cfg_file.write_text("plugins: [always.py]\n" + text)
    cfg = load_config(cfg_file, ExperimentConfig)
    assert cfg.backtest.strategy == "plug_always"
    strategy = get_strategy("plug_always")(**cfg.backtest.params)
    assert strategy.level == 0.5


def test_a_config_plugin_taking_a_builtin_name_is_a_config_error(tmp_path, registries):
    write(tmp_path / "clash.py", STRATEGY.format(name="ema_cross"))
    cfg_file = tmp_path / "exp.yaml"
    cfg_file.write_text("plugins: [clash.py]\n" + REPO_CONFIG.read_text())
    with pytest.raises(ConfigError, match="field 'plugins'.*already used") as err:
        load_config(cfg_file, ExperimentConfig)
    assert str(cfg_file) in str(err.value)


def test_entry_points_of_an_installed_package_are_loaded_on_first_lookup(
    tmp_path, registries, monkeypatch
):
    # A real distribution on sys.path, found by importlib.metadata as pip would install it.
    pkg = tmp_path / "site"
    pkg.mkdir()
    write(pkg / "ep_plugin_mod.py", STRATEGY.format(name="plug_entry_point"))
    dist = pkg / "ep_plugin-0.1.dist-info"
    dist.mkdir()
    write(dist / "METADATA", "Metadata-Version: 2.1\nName: ep-plugin\nVersion: 0.1\n")
    write(dist / "entry_points.txt", "[cryptoai.plugins]\nmine = ep_plugin_mod\n")
    monkeypatch.syspath_prepend(str(pkg))
    monkeypatch.setattr(plugins, "_entry_points_loaded", False)
    assert "plug_entry_point" in STRATEGIES.names()
    sys.modules.pop("ep_plugin_mod", None)


def test_a_plugin_model_and_feature_work_by_name(tmp_path, registries, ohlcv):
    write(
        tmp_path / "extras.py",
        """
        import numpy as np
        from pydantic import Field
        from cryptoai.features.registry import Params, register_feature
        from cryptoai.modeling.models.registry import register_model
        from cryptoai.modeling.models.tabular import LogisticModel

        class Lookback(Params):
            window: int = Field(24, ge=1)

        @register_feature("plug_range_pos", params=Lookback,
                          columns=lambda p: [f"plug_range_pos_{p.window}"],
                          inputs=("high", "low", "close"))
        def range_pos(df, p):
            hi = df["high"].rolling(p.window).max()
            lo = df["low"].rolling(p.window).min()
            return [((df["close"] - lo) / (hi - lo)).to_numpy()]

        @register_model("plug_logreg")
        class PlugLogistic(LogisticModel):
            pass
        """,
    )
    plugins.load_plugins([tmp_path / "extras.py"])
    data = ohlcv(n=200, seed=3)
    spec = FeatureSpec.model_validate(
        {"features": [{"name": "plug_range_pos", "params": {"window": 10}}]}
    )
    frame = build_features(data, spec)
    hi, lo = data["high"].rolling(10).max(), data["low"].rolling(10).min()
    expected = ((data["close"] - lo) / (hi - lo)).to_numpy()
    np.testing.assert_allclose(frame["plug_range_pos_10"].to_numpy(), expected, equal_nan=True)
    assert type(make_model("plug_logreg", C=0.5)).__name__ == "PlugLogistic"
    from cryptoai.features.registry import FEATURES

    FEATURES.remove("plug_range_pos")


LEAKY = """
from cryptoai import Strategy, register_strategy

@register_strategy("plug_peek")
class Peek(Strategy):
    params = {"ahead": 1}

    def signals(self, data):
        up = data["close"].shift(-self.ahead) > data["close"]  # a later close: lookahead
        return up.astype(float)
"""


def test_plugin_strategies_are_checked_for_lookahead_on_every_backtest(
    tmp_path, registries, ohlcv, capsys
):
    from cryptoai.cli import main

    csv = tmp_path / "bars.csv"
    ohlcv(n=300, seed=11).to_csv(csv)
    leaky = write(tmp_path / "leaky.py", LEAKY)
    fine = write(tmp_path / "fine.py", STRATEGY.format(name="plug_fine"))
    args = ["backtest", "--data", str(csv), "--out", str(tmp_path / "out")]

    assert main([*args, "--plugins", str(leaky), "--strategy", "plug_peek"]) != 0
    err = capsys.readouterr().err.strip()
    assert "looks ahead" in err and "plug_peek" in err and "\n" not in err
    assert not (tmp_path / "out" / "backtest_report.md").exists()

    assert main([*args, "--plugins", str(fine), "--strategy", "plug_fine"]) == 0
    report = (tmp_path / "out" / "backtest_report.md").read_text()
    assert "Lookahead check: passed" in report

    assert main([*args, "--strategy", "plug_peek", "--no-check-lookahead"]) == 0
    report = (tmp_path / "out" / "backtest_report.md").read_text()
    assert "Lookahead check: not run (turned off)" in report
    assert main([*args, "--strategy", "ema_cross"]) == 0
    assert "not run (built-in strategy" in (tmp_path / "out" / "backtest_report.md").read_text()


def test_a_plugin_strategy_is_optimized_from_a_config_and_checked_for_lookahead(
    tmp_path, registries, ohlcv
):
    import yaml

    from cryptoai.backtest import make_settings, run_strategy
    from cryptoai.backtest.metrics import compute_metrics
    from cryptoai.optimize import run_optimization

    bars = ohlcv(n=1200, seed=4)
    bars.to_parquet(tmp_path / "bars.parquet")
    write(tmp_path / "fine.py", STRATEGY.format(name="plug_level"))
    write(tmp_path / "leaky.py", LEAKY)
    costs = {"fee_bps": 10.0, "slippage_bps": 2.0}

    def config(plugin: str, strategy: str, space: dict) -> Path:
        path = tmp_path / f"{strategy}.yaml"
        path.write_text(
            yaml.safe_dump(
                {
                    "name": strategy,
                    "plugins": [plugin],
                    "data": {"file": str(tmp_path / "bars.parquet")},
                    "strategy": strategy,
                    "space": space,
                    "method": "grid",
                    "objective": "total_return",
                    "min_trades": 0,
                    "backtest": costs,
                }
            )
        )
        return path

    result = run_optimization(
        config("fine.py", "plug_level", {"level": [0.25, 0.5, 1.0]}),
        out=tmp_path / "out",
        tracking=False,
    )
    assert result.statistics["lookahead_check"].startswith("passed")
    # the grid's best is the level with the best single backtest, computed here
    returns = {
        level: compute_metrics(
            run_strategy(bars, "plug_level", {"level": level}, make_settings(costs))
        )["total_return"]
        for level in (0.25, 0.5, 1.0)
    }
    assert result.best["params"]["level"] == max(returns, key=returns.get)
    assert "lookahead check | passed" in (tmp_path / "out" / "report.md").read_text()

    with pytest.raises(BadInputError, match="plug_peek looks ahead"):
        run_optimization(
            config("leaky.py", "plug_peek", {"ahead": [1, 2]}),
            out=tmp_path / "out2",
            tracking=False,
        )


def test_an_experiment_backtest_checks_a_plugin_strategy_once_and_says_so(
    tmp_path, registries, ohlcv
):
    from cryptoai.research import robustness as rb
    from cryptoai.research.experiment_config import BacktestSpec

    bars = ohlcv(n=300, seed=8)
    plugins.load_plugins([write(tmp_path / "leaky.py", LEAKY)])
    plugins.load_plugins([write(tmp_path / "fine.py", STRATEGY.format(name="plug_ok"))])
    with pytest.raises(BadInputError, match="plug_peek looks ahead"):
        rb.model_backtest(bars, None, BacktestSpec(strategy="plug_peek"))
    result, _ = rb.model_backtest(bars, None, BacktestSpec(strategy="plug_ok"))
    assert len(result.equity) == len(bars)
    fine = rb.experiment_strategy(BacktestSpec(strategy="plug_ok"), None)[0]
    assert rb.lookahead_note(fine, bars).startswith("Lookahead check: passed")
    builtin = rb.experiment_strategy(BacktestSpec(strategy="ema_cross"), None)[0]
    assert "not run (built-in" in rb.lookahead_note(builtin, bars)
