"""Experiment configs: the shipped ones validate, and every error names the file and the field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from cryptoai.config import dump_config
from cryptoai.errors import BadInputError, ConfigError
from cryptoai.modeling.training import TrainConfig
from cryptoai.research.experiment_config import DEFAULT_NOTEBOOKS, ExperimentConfig, load_experiment

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "configs" / "experiments").glob("*.yaml"))

MINIMAL = {
    "experiment_id": "EXP-900",
    "name": "tiny",
    "owner": "ana",
    "objective": "check the config",
    "dataset": {"source": "synthetic", "start": "2024-01-01", "end": "2024-02-01"},
    "target": {"kind": "direction", "horizon": 2},
    "model": {"name": "logreg", "params": {"C": 0.5}},
}


def _write(tmp_path: Path, data: dict, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _with(path: str, value) -> dict:
    """MINIMAL with one (dotted) field replaced; ``...`` removes it."""
    data = yaml.safe_load(yaml.safe_dump(MINIMAL))
    *parents, leaf = path.split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
    if value is ...:
        node.pop(leaf)
    else:
        node[leaf] = value
    return data


def test_required_configs_are_shipped():
    names = {p.stem for p in SHIPPED}
    assert {"logreg_baseline", "xgboost", "lstm"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_configs_validate_and_map_to_training(path: Path):
    cfg = load_experiment(path)
    raw = yaml.safe_load(path.read_text())
    assert cfg.name == raw["name"] == cfg.name.lower()
    assert cfg.dataset.source == "synthetic"
    assert (cfg.dataset.symbol, cfg.dataset.timeframe) == ("BTC/USDT", "1h")
    assert (REPO / cfg.features).is_file()
    assert cfg.backtest.fee_bps > 0 and cfg.backtest.slippage_bps > 0  # costs on
    train = cfg.train_config()
    assert isinstance(train, TrainConfig)
    assert train.model.params == raw["model"]["params"]
    assert train.data == cfg.dataset and train.target == cfg.target
    assert train.validation == cfg.validation and train.seed == cfg.seed == 42
    assert train.tracking.experiment == cfg.study
    assert not train.smoke


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_smoke_shrinks_the_run(path: Path):
    cfg = load_experiment(path)
    smoke = cfg.train_config(smoke=True)
    assert smoke.smoke and smoke.validation.n_splits <= 2
    assert smoke.model.params == {**cfg.model.params, **cfg.model.smoke_params}
    if cfg.model.smoke_params:
        assert smoke.model.params != cfg.model.params


def test_defaults_and_dates(tmp_path: Path):
    cfg = load_experiment(_write(tmp_path, MINIMAL))
    assert cfg.notebooks == DEFAULT_NOTEBOOKS
    assert cfg.study == "cryptoai-experiments" and cfg.date is None
    assert cfg.backtest.strategy == "model_signal" and cfg.backtest.fill_at == "open"
    assert cfg.validation.n_splits == 5
    # An unquoted YAML date is a date; the dataset keeps its dates as text.
    path = tmp_path / "dated.yaml"
    path.write_text(yaml.safe_dump(MINIMAL) + "date: 2025-02-03\n")
    dated = load_experiment(path)
    assert dated.date == dt.date(2025, 2, 3)
    assert dated.train_config().tracking.template["date"] == "2025-02-03"
    assert dated.dataset.start == "2024-01-01"


def test_resolved_config_round_trips(tmp_path: Path):
    cfg = load_experiment(_write(tmp_path, MINIMAL)).model_copy(
        update={"date": dt.date(2025, 1, 2)}
    )
    again = tmp_path / "again.yaml"
    again.write_text(dump_config(cfg))
    assert load_experiment(again) == cfg


def test_backtest_settings_reach_the_engine(tmp_path: Path):
    data = _with("backtest", {"fee_bps": 5, "fill_at": "close", "execution": {"leverage": 2.0}})
    spec = load_experiment(_write(tmp_path, data)).backtest
    settings = spec.execution_settings()
    assert (settings.fee_bps, settings.slippage_bps, settings.fill_at) == (5.0, 2.0, "close")
    assert settings.leverage == 2.0 and settings.initial_cash == 10_000.0
    unknown = _with("backtest", {"execution": {"levarage": 2.0}})
    with pytest.raises(BadInputError, match="levarage"):
        load_experiment(_write(tmp_path, unknown)).backtest.execution_settings()


@pytest.mark.parametrize(
    ("field", "value", "where", "reason"),
    [
        ("name", "Bad Name!", "name", "slug"),
        ("owner", ..., "owner", "required"),
        ("owner", "   ", "owner", "blank"),
        ("modell", {"name": "logreg"}, "modell", "not permitted"),
        ("dataset.timeframe", [1], "dataset.timeframe", "string"),
        ("dataset.colour", "red", "dataset.colour", "not permitted"),
        ("target.horizon", 0, "target.horizon", "greater than or equal"),
        ("model.name", ..., "model.name", "required"),
        ("validation.scheme", "rolling", "validation", "train_size"),
        ("backtest.fill_at", "mid", "backtest.fill_at", "'open' or 'close'"),
        ("backtest.fee_bps", -1, "backtest.fee_bps", "greater than or equal"),
        ("backtest.execution", {"fee_bps": 1}, "backtest", "set them once"),
        ("notebooks", ["3-model"], "notebooks", "03-model-prototyping"),
        ("notebooks", [], "notebooks", "at least one"),
        ("seed", "abc", "seed", "integer"),
        ("notebook_params", {"07-nope": {"a": 1}}, "notebook_params", "07-nope"),
        ("notebook_params", {"03-model-prototyping": {"smoke": 1}}, "notebook_params", "smoke"),
        (
            "notebook_params",
            {"03-model-prototyping": [1]},
            "notebook_params.03-model-prototyping",
            "dictionary",
        ),
        ("date", "someday", "date", "date"),
    ],
)
def test_errors_name_file_and_field(tmp_path: Path, field, value, where, reason):
    path = _write(tmp_path, _with(field, value))
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    message = str(err.value)
    assert message.startswith(f"{path}: field '{where}'"), message
    assert reason in message
    assert "\n" not in message


def test_missing_and_broken_files_name_the_file(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"nope\.yaml not found"):
        load_experiment(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: broken YAML at line"):
        load_experiment(broken)


def test_model_is_a_pydantic_contract():
    """The fields the notebooks read exist with the agreed defaults."""
    fields = ExperimentConfig.model_fields
    for name in [
        "experiment_id",
        "name",
        "study",
        "owner",
        "date",
        "objective",
        "notes",
        "dataset",
        "features",
        "target",
        "model",
        "validation",
        "backtest",
        "notebooks",
        "seed",
    ]:
        assert name in fields
    assert fields["features"].default == "configs/features/default.yaml"
    assert fields["seed"].default == 42
