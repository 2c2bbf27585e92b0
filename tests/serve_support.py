"""Shared by the serving tests: one small direction model, trained with tracking into a
registry of its own and registered as ``btc-direction@champion``, built once per session.

Tests point ``MLFLOW_TRACKING_URI`` at that registry with the ``registry`` fixture (after the
autouse private-store fixture, so the setting sticks for the test).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
MINIMAL_SPEC = str(REPO / "configs" / "features" / "minimal.yaml")
NAME = "btc-direction"
URI = f"models:/{NAME}@champion"
#: minimal.yaml's longest input is a 20-bar volatility of one-bar log returns: 21 bars, so
#: the first complete feature row is bar 20 (sma 20 needs 20 bars, rsi 14 needs 15).
WARMUP = 20


@dataclass
class Registered:
    tracking_uri: str
    root: Path
    config: Any
    result: Any
    ohlcv: pd.DataFrame
    uri: str = URI
    name: str = NAME


_BUILT: dict[str, Registered] = {}


def train_config(store_root: Path, output_dir: Path, **over: Any):
    from cryptoai.modeling.training import TrainConfig

    cfg = {
        "name": "serve-logreg",
        "data": {
            "source": "synthetic",
            "symbol": "BTC/USDT",
            "timeframe": "1h",
            "start": "2023-03-01",
            "end": "2023-03-21",
            "store_root": str(store_root),
        },
        "features": MINIMAL_SPEC,
        "target": {"kind": "direction", "horizon": 1},
        "model": {"name": "logreg", "params": {"C": 0.5}},
        "validation": {"n_splits": 2, "test_size": 80},
        "seed": 3,
        "output_dir": str(output_dir),
        "tracking": {"experiment": "serve-tests"},
    } | over
    return TrainConfig.model_validate(cfg)


def build_registered(factory: pytest.TempPathFactory) -> Registered:
    """Train once (tracked), register version 1 under ``champion`` and version 2 (the same
    model again) without an alias, so tests can move the alias."""
    if "model" in _BUILT:
        return _BUILT["model"]
    from cryptoai.modeling.training import load_training_data, train
    from cryptoai.tracking.registry import register_model

    root = factory.mktemp("serve-registry")
    uri = f"sqlite:///{(root / 'mlflow.db').as_posix()}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        cfg = train_config(root / "raw", root / "runs")
        result = train(cfg, progress=False)
        assert register_model(result.model_uri, NAME, alias="champion") == 1
        assert register_model(result.model_uri, NAME) == 2
        ohlcv = load_training_data(cfg.data)
    _BUILT["model"] = Registered(uri, root, cfg, result, ohlcv)
    return _BUILT["model"]


@pytest.fixture(scope="session")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    return build_registered(tmp_path_factory)


@pytest.fixture
def registry(registered: Registered, monkeypatch: pytest.MonkeyPatch) -> Registered:
    """The shared registry for this test, ``champion`` back on version 1 afterwards."""
    from cryptoai.serve.runtime import clear_cache
    from cryptoai.tracking.registry import promote

    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered.tracking_uri)
    promote(NAME, 1, "champion")
    clear_cache()
    yield registered
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered.tracking_uri)
    promote(NAME, 1, "champion")
    clear_cache()
