"""Feature cache: hits when nothing changed, recomputes on a new spec or new data."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest
from helpers import ohlcv_frame

from cryptoai.errors import BadInputError
from cryptoai.features.cache import KEY_FIELD, cache_key, cache_path, cached_features
from cryptoai.features.engineering import build_features
from cryptoai.features.spec import FeatureSpec


def candles(n: int = 400, seed: int = 1) -> pd.DataFrame:
    return ohlcv_frame(n, seed=seed, timeframe="15m")


SPEC = FeatureSpec.model_validate({"features": ["rsi", {"name": "sma", "params": {"window": 5}}]})


def test_hit_returns_stored_frame_without_rewriting(tmp_path):
    data = candles()
    first = cached_features(data, SPEC, "BTC/USDT", "15m", root=tmp_path)
    path = cache_path("BTC/USDT", "15m", tmp_path)
    assert path == tmp_path / "BTC-USDT" / "15m.parquet"
    stamp = path.stat().st_mtime_ns
    second = cached_features(data.copy(), SPEC, "BTCUSDT", "15m", root=tmp_path)
    assert path.stat().st_mtime_ns == stamp  # served from the file, not rewritten
    pd.testing.assert_frame_equal(second, first, check_freq=False)
    pd.testing.assert_frame_equal(first, build_features(data, SPEC))
    stored = pq.read_schema(path).metadata[KEY_FIELD].decode()
    assert stored == cache_key(data, SPEC)
    assert [p.name for p in path.parent.iterdir()] == ["15m.parquet"]  # no temp files left


def test_changed_spec_recomputes(tmp_path):
    data = candles()
    cached_features(data, SPEC, "BTC/USDT", "15m", root=tmp_path)
    other = FeatureSpec.model_validate({"features": [{"name": "rsi", "params": {"window": 7}}]})
    out = cached_features(data, other, "BTC/USDT", "15m", root=tmp_path)
    assert list(out.columns) == ["rsi_7"]
    pd.testing.assert_frame_equal(out, build_features(data, other))


def test_new_data_recomputes(tmp_path):
    data = candles()
    old = cached_features(data, SPEC, "BTC/USDT", "15m", root=tmp_path)
    changed = data.copy()
    changed.iloc[-1, changed.columns.get_loc("close")] *= 1.05  # a corrected last candle
    new = cached_features(changed, SPEC, "BTC/USDT", "15m", root=tmp_path)
    assert new["sma_5"].iloc[-1] != old["sma_5"].iloc[-1]
    pd.testing.assert_frame_equal(new, build_features(changed, SPEC))
    longer = candles(450)
    assert len(cached_features(longer, SPEC, "BTC/USDT", "15m", root=tmp_path)) == 450


def test_unreadable_cache_file_is_recomputed(tmp_path):
    path = cache_path("ETH/USDT", "1h", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet")
    out = cached_features(candles(), SPEC, "ETH/USDT", "1h", root=tmp_path)
    assert pq.read_schema(path).metadata[KEY_FIELD].decode() == cache_key(candles(), SPEC)
    assert len(out) == 400


def test_bad_symbol_or_timeframe_never_becomes_a_path(tmp_path):
    with pytest.raises(BadInputError):
        cache_path("BTC/USDT", "../../x", tmp_path)
    with pytest.raises(BadInputError):
        cache_path("???", "1h", tmp_path)
