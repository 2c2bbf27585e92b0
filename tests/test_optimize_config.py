"""Optimization configs: bad ones are one-line errors naming file and field, found before any
data is read; constraints are parsed safely, never eval'd."""

from __future__ import annotations

import pytest
import yaml

from cryptoai.cli import main
from cryptoai.errors import BadInputError
from cryptoai.optimize.space import make_dimension, parse_constraint

GOOD = {
    "name": "bad_test",
    # a file that does not exist: an error about it would mean the data was read first
    "data": {"file": "does/not/exist.parquet"},
    "strategy": "ema_cross",
    "space": {"fast": [5, 10], "slow": {"low": 50, "high": 100, "step": 50}},
    "constraints": ["fast < slow"],
    "method": "grid",
    "objective": "sharpe",
}


def run_cli(tmp_path, capsys, **changes):
    cfg = {**GOOD, **changes}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    code = main(["optimize", "--config", str(path), "--no-tracking", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    return code, err, path


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"space": {"fast": [5], "speed": [1]}}, "space.speed", "no parameter speed"),
        ({"space": {}}, "space", "empty"),
        ({"space": {"fast": [], "slow": [50]}}, "space.fast", "empty"),
        ({"constraints": ["fast > slow"]}, "constraints", "impossible"),
        ({"constraints": ["fast <"]}, "constraints.0", "not a valid expression"),
        ({"constraints": ["fast < speed"]}, "constraints.0", "'speed'"),
        ({"constraints": ["__import__('os').system('true')"]}, "constraints.0", "not a condition"),
        ({"objective": "sharp"}, "objective.metric", "unknown metric"),
        ({"objective": {"metric": "calmar", "direction": "up"}}, "objective.direction", ""),
        ({"method": "bayes"}, "method", ""),
        ({"strategy": "nope"}, "strategy", "nope"),
        ({"space": {"fast": ["a"], "slow": [50]}}, "space.fast", "expected an int"),
        ({"space": {"fast": {"low": 1.5, "high": 4}, "slow": [50]}}, "space.fast", "integer"),
        ({"unknown_key": 1}, "unknown_key", ""),
        ({"backtest": {"fee_bps": -1}}, "backtest", "fee_bps"),
    ],
)
def test_bad_config_is_one_line_naming_file_and_field(tmp_path, capsys, changes, field, words):
    code, err, path = run_cli(tmp_path, capsys, **changes)
    assert code != 0
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert str(path) in err
    assert f"field '{field}'" in err, err
    assert words in err
    assert "does/not/exist" not in err  # nothing was loaded
    assert not (tmp_path / "o").exists()


def test_grid_needs_finite_dimensions(tmp_path, capsys):
    code, err, _ = run_cli(
        tmp_path, capsys, space={"fast": [5], "slow": {"low": 10, "high": 50, "log": True}}
    )
    assert code != 0 and "field 'space.slow'" in err and "no grid" in err


def test_constraint_interpreter_allows_arithmetic_and_logic_only():
    c = parse_constraint(
        "slow - fast >= 10 and not fast == 3 or slow / fast > 100", ["fast", "slow"]
    )
    assert c({"fast": 5, "slow": 15}) and not c({"fast": 5, "slow": 14})
    assert not c({"fast": 3, "slow": 30}) and c({"fast": 1, "slow": 101})
    assert parse_constraint("-fast * 2 + slow > 0", ["fast", "slow"])({"fast": 2, "slow": 5})
    for text in (
        "fast ** 2 < slow",
        "fast.real < slow",
        "(lambda: 1)() < 2",
        "fast < [1][0]",
        "fast < slow if fast else 1",
        "fast in (1, 2)",
    ):
        with pytest.raises(BadInputError):
            parse_constraint(text, ["fast", "slow"])


def test_ranges_follow_the_strategy_parameter_types():
    assert make_dimension("fast", {"low": 2, "high": 10, "step": 4}, 12).grid() == [2, 6, 10]
    floats = make_dimension("x", {"low": 0.1, "high": 0.3, "step": 0.1}, 0.5).grid()
    assert floats == pytest.approx([0.1, 0.2, 0.3])
    assert make_dimension("x", {"low": 1, "high": 2}, 0.5).kind == "float"
