"""Feature specs: shipped specs load, bad specs fail with the file, the entry and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryptoai.config import dump_config
from cryptoai.errors import ConfigError
from cryptoai.features.registry import known_features
from cryptoai.features.spec import FeatureItem, FeatureSpec, load_feature_spec

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs/features").glob("*.yaml")))
def test_shipped_specs_load(name):
    spec = load_feature_spec(ROOT / "configs/features" / name)
    assert spec.features
    assert len(spec.columns()) == len(set(spec.columns()))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_feature_spec(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    return message


def test_unknown_feature_names_entry_and_lists_known(tmp_path):
    msg = load_error(
        tmp_path, "features:\n  - rsi\n  - sma\n  - {name: smaa, params: {window: 3}}\n"
    )
    assert "features.2" in msg
    assert "'smaa'" in msg
    for known in known_features():
        assert known in msg


def test_bad_parameter_value_names_feature_and_parameter(tmp_path):
    msg = load_error(tmp_path, "features:\n  - rsi\n  - {name: sma, params: {window: 0}}\n")
    assert "features.1" in msg and "'sma'" in msg and "'window'" in msg
    assert "greater than or equal to 1" in msg


def test_unknown_parameter_is_rejected(tmp_path):
    msg = load_error(tmp_path, "features:\n  - {name: rsi, params: {windw: 14}}\n")
    assert "features.0" in msg and "'rsi'" in msg and "'windw'" in msg


def test_wrong_parameter_type(tmp_path):
    msg = load_error(tmp_path, "features:\n  - {name: ema, params: {window: ten}}\n")
    assert "features.0" in msg and "'ema'" in msg and "integer" in msg


def test_macd_fast_must_be_below_slow(tmp_path):
    msg = load_error(tmp_path, "features:\n  - {name: macd, params: {fast: 30, slow: 26}}\n")
    assert "features.0" in msg and "fast (30) must be smaller than slow (26)" in msg


def test_duplicate_columns_name_both_entries(tmp_path):
    msg = load_error(
        tmp_path, "features:\n  - rsi\n  - sma\n  - {name: rsi, params: {window: 14}}\n"
    )
    assert "entries 0 (rsi) and 2 (rsi)" in msg and "'rsi_14'" in msg and "prefix" in msg


def test_unknown_output_column_lists_the_outputs(tmp_path):
    msg = load_error(tmp_path, "features:\n  - {name: bollinger, columns: [bb_pband]}\n")
    assert "features.0" in msg and "bb_pband_20_2" in msg


def test_empty_and_misspelled_top_level(tmp_path):
    assert "features" in load_error(tmp_path, "features: []\n")
    assert "'features': Field required" in load_error(tmp_path, "featurs:\n  - rsi\n")


def test_resolved_params_make_equal_specs_hash_equal():
    short = FeatureSpec.model_validate({"features": ["rsi", "bollinger"]})
    explicit = FeatureSpec(
        features=[
            FeatureItem(name="rsi", params={"window": 14}),
            FeatureItem(name="bollinger", params={"window": 20, "dev": 2}),
        ]
    )
    assert short.fingerprint() == explicit.fingerprint()
    assert short.features[1].params == {"window": 20, "dev": 2.0}
    other = FeatureSpec.model_validate({"features": [{"name": "rsi", "params": {"window": 15}}]})
    assert other.fingerprint() != short.fingerprint()
    assert "window: 14" in dump_config(short)  # resolved copy saved with runs


def test_output_columns_follow_documented_names():
    spec = FeatureSpec.model_validate(
        {
            "features": [
                {"name": "macd", "params": {"relative": True}},
                {"name": "log_returns", "params": {"period": 4}},
                {"name": "atr", "prefix": "x_"},
            ]
        }
    )
    assert spec.columns() == [
        "macd_12_26_9_rel",
        "macd_signal_12_26_9_rel",
        "macd_diff_12_26_9_rel",
        "ret_log_4",
        "x_atr_14",
    ]
