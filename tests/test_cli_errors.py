"""The CLI on bad input: click's short usage error for a typo, one line for a bad value or a
broken plugin, never a traceback; and a user plugin strategy run end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptoai.cli import main
from cryptoai.strategies.registry import STRATEGIES

# A tiny series where the next bar opens at the last close, so with costs off a long entered
# at the close of bar t earns close[u] / close[t] when it is left at the close of bar u.
CLOSES = [100.0, 101.0, 103.0, 102.0, 99.0, 98.0, 100.0, 104.0, 106.0, 105.0]

TSMOM = '''
"""Time-series momentum: long while the close is above its value `lookback` bars ago."""

import pandas as pd

from cryptoai import Strategy, register_strategy
from cryptoai.errors import BadInputError


@register_strategy("tsmom")
class TimeSeriesMomentum(Strategy):
    params = {"lookback": 24, "allow_short": False}

    def validate(self):
        if self.lookback < 1:
            raise BadInputError(f"tsmom: lookback must be >= 1, got {self.lookback}")

    def signals(self, data: pd.DataFrame) -> pd.Series:
        close = data["close"]
        past = close.shift(self.lookback)
        target = (close > past).astype(float)
        if self.allow_short:
            target -= (close < past).astype(float)
        return target.where(past.notna())  # NaN keeps the last target: flat until defined
'''


@pytest.fixture
def tiny_csv(tmp_path: Path) -> Path:
    close = np.array(CLOSES)
    open_ = np.r_[close[0], close[:-1]]
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-05-01", periods=len(close), freq="1h", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) + 0.5,
            "low": np.minimum(open_, close) - 0.5,
            "close": close,
            "volume": 1.0,
        }
    )
    path = tmp_path / "tiny.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def plugin(tmp_path: Path):
    """Writes a plugin file; forgets the strategies it registered afterwards."""
    before = set(STRATEGIES.names())

    def write(source: str, name: str = "tsmom_plugin.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        return path

    yield write
    for name in set(STRATEGIES.names()) - before:
        STRATEGIES.remove(name)


def free(csv: Path, out: Path, *extra: str) -> list[str]:
    """A costless backtest command line (the expectations are then plain price ratios)."""
    return ["backtest", "--data", str(csv), "--out", str(out), "--fee-bps", "0", "--maker-fee-bps", "0", "--slippage-bps", "0", *extra]  # fmt: skip


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


# --- typos: click's usage error ---------------------------------------------------------------


def test_unknown_command_is_a_usage_error_not_a_traceback(capsys):
    assert main(["backtst", "--data", "x.csv"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "Usage: cryptoai [OPTIONS] COMMAND [ARGS]..." in err
    assert "Error: No such command 'backtst'." in err
    assert len(err.strip().splitlines()) <= 4


def test_unknown_option_is_a_usage_error_not_a_traceback(capsys):
    assert main(["backtest", "--nope"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "Usage: cryptoai backtest [OPTIONS]" in err
    assert "Error: No such option: --nope" in err
    assert len(err.strip().splitlines()) <= 4


def test_bad_option_value_is_a_usage_error(tiny_csv, tmp_path, capsys):
    assert main([*free(tiny_csv, tmp_path / "o"), "--initial-cash", "lots"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Invalid value for '--initial-cash'" in err


def test_plugins_option_without_a_path(capsys):
    assert main(["strategies", "--plugins"]) == 2
    assert "--plugins needs a PATH" in one_line_error(capsys)


# --- parameter values: checked against the strategy's defaults -------------------------------


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("fast=", "error: --param fast= has no value: write e.g. --param fast=10"),
        ("fast=true", "error: strategy ema_cross: parameter fast got 'true', expected an int"),
        ("fast=20.5", "error: strategy ema_cross: parameter fast got '20.5', expected an int"),
        ("slow=ten", "error: strategy ema_cross: parameter slow got 'ten', expected an int"),
    ],
)
def test_mistyped_parameter_is_one_line(tiny_csv, tmp_path, capsys, param, message):
    out = tmp_path / "o"
    assert main([*free(tiny_csv, out), "--strategy", "ema_cross", "-p", param]) == 2
    assert one_line_error(capsys).startswith(message)
    assert not out.exists()


def test_null_parameter_in_a_config_is_one_line(tiny_csv, tmp_path, capsys):
    config = tmp_path / "bt.yaml"
    config.write_text("strategy: ema_cross\nparams: {fast: null}\n")
    assert main([*free(tiny_csv, tmp_path / "o"), "--config", str(config)]) == 2
    err = one_line_error(capsys)
    assert err == "error: strategy ema_cross: parameter fast got None, expected an int (default 12)"


def test_an_integer_parameter_given_as_text_runs_as_that_integer(tiny_csv, tmp_path):
    """``-p fast=2`` is the integer 2 (the run equals the one with params: {fast: 2})."""
    config = tmp_path / "bt.yaml"
    config.write_text("strategy: ema_cross\nparams: {fast: 2, slow: 4}\n")
    assert main([*free(tiny_csv, tmp_path / "cli"), "-p", "fast=2", "-p", "slow=4"]) == 0
    assert main([*free(tiny_csv, tmp_path / "cfg"), "--config", str(config)]) == 0
    cli = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    cfg = json.loads((tmp_path / "cfg" / "metrics.json").read_text())
    assert cli["final_equity"] == cfg["final_equity"]


# --- plugins -----------------------------------------------------------------------------------


def test_plugin_strategy_runs_from_the_command_line(tiny_csv, tmp_path, plugin, capsys):
    path = plugin(TSMOM)
    out, bench_out = tmp_path / "tsmom", tmp_path / "bh"
    args = [*free(tiny_csv, out), "--plugins", str(path), "--strategy", "tsmom", "-p", "lookback=2"]
    assert main(args) == 0
    assert "tsmom" in capsys.readouterr().out
    assert main([*free(tiny_csv, bench_out), "--strategy", "buy_and_hold"]) == 0

    # by hand (lookback 2, long while close[t] > close[t-2]): long from the close of bar 2
    # (103) to the close of bar 4 (99), again from bar 6 (100) to the end (105)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_trades"] == 2
    assert metrics["final_equity"] == pytest.approx(10_000 * (99 / 103) * (105 / 100), rel=1e-12)
    trades = pd.read_csv(out / "trades.csv")
    np.testing.assert_allclose(trades["pnl"].sum(), metrics["final_equity"] - 10_000, rtol=1e-9)

    held = json.loads((bench_out / "metrics.json").read_text())
    assert held["n_trades"] == 1
    assert held["final_equity"] == pytest.approx(10_000 * 105 / 100, rel=1e-12)
    assert metrics["benchmark"]["final_equity"] == pytest.approx(held["final_equity"], rel=1e-12)


def test_plugin_before_the_command_name_and_its_parameters_are_typed(
    tiny_csv, tmp_path, plugin, capsys
):
    path = plugin(TSMOM)
    head = ["--plugins", str(path)]
    assert main([*head, *free(tiny_csv, tmp_path / "a"), "--strategy", "tsmom"]) == 0
    capsys.readouterr()
    assert main([*free(tiny_csv, tmp_path / "b"), "--strategy", "tsmom", "-p", "lookback=x"]) == 2
    err = one_line_error(capsys)
    assert err == "error: strategy tsmom: parameter lookback got 'x', expected an int (default 24)"


def test_missing_plugin_file_is_one_line(tiny_csv, tmp_path, capsys):
    missing = tmp_path / "nowhere" / "tsmom.py"
    code = main([*free(tiny_csv, tmp_path / "o"), "--plugins", str(missing)])
    assert code == 2
    assert one_line_error(capsys) == f"error: plugin {missing} not found: check the path"


def test_plugin_with_a_syntax_error_is_one_line(tiny_csv, tmp_path, plugin, capsys):
    path = plugin("def signals(self:\n    pass\n", name="broken.py")
    assert main([*free(tiny_csv, tmp_path / "o"), "--plugins", str(path)]) == 2
    err = one_line_error(capsys)
    assert err.startswith(f"error: plugin {path} failed to load: SyntaxError")
    assert "line 1" in err


def test_plugin_taking_a_builtin_name_is_one_line_and_the_builtin_stays(
    tiny_csv, tmp_path, plugin, capsys
):
    path = plugin(TSMOM.replace('"tsmom"', '"ema_cross"'), name="thief.py")
    code = main(
        [*free(tiny_csv, tmp_path / "o"), "--plugins", str(path), "--strategy", "ema_cross"]
    )
    assert code == 2
    err = one_line_error(capsys)
    assert err.startswith(f"error: plugin {path} failed to load:")
    assert "'ema_cross' is already used by cryptoai.strategies.ema_cross.EmaCross" in err
    assert STRATEGIES.get("ema_cross").__module__ == "cryptoai.strategies.ema_cross"


# --- the real command, in a fresh process -----------------------------------------------------


def cryptoai(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cryptoai", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.slow
def test_plugin_run_and_errors_in_a_fresh_process(tiny_csv, tmp_path, plugin):
    """A fresh process has loaded no built-in yet: the plugin still runs, a plugin taking a
    built-in's name is still a one-line error, and a typo is click's usage error."""
    path = plugin(TSMOM)
    out = tmp_path / "sub"
    ran = cryptoai(*free(tiny_csv, out), "--plugins", str(path), "--strategy", "tsmom", "-p", "lookback=2", cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final_equity"] == pytest.approx(10_000 * (99 / 103) * (105 / 100), rel=1e-12)

    thief = plugin(TSMOM.replace('"tsmom"', '"ema_cross"'), name="thief.py")
    clash = cryptoai(*free(tiny_csv, tmp_path / "x"), "--plugins", str(thief), cwd=tmp_path)
    assert clash.returncode == 2
    assert "Traceback" not in clash.stderr and len(clash.stderr.strip().splitlines()) == 1
    assert "'ema_cross' is already used by cryptoai.strategies.ema_cross.EmaCross" in clash.stderr

    typo = cryptoai("optimise", cwd=tmp_path)
    assert typo.returncode == 2
    assert "Traceback" not in typo.stderr
    assert "Error: No such command 'optimise'." in typo.stderr


def test_running_the_command_again_registers_nothing_twice(capsys):
    """`main` runs many times in one process; each call once added every command again."""
    from cryptoai.cli import app

    assert main(["strategies"]) == 0
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    assert main(["strategies"]) == 0 and main(["backtest", "--nope"]) == 2
    assert [c.name or c.callback.__name__ for c in app.registered_commands] == names
    assert len(names) == len(set(names))
