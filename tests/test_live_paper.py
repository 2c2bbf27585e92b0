"""The paper ledger bar by bar equals ``run_vectorized`` over the same bars and decisions
(fills, equity, positions) for several execution settings, and survives save/load, including
a crash between its two files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cryptoai.backtest import run_vectorized
from cryptoai.data.sources.synthetic import synthetic_ohlcv
from cryptoai.errors import BadInputError
from cryptoai.serve.paper import LEDGER_BARS, PaperLedger, paper_settings

SETTINGS = [
    {},
    {"stop_loss": 0.01, "trailing_stop": 0.02},
    {"leverage": 2.0, "fee_bps": 5.0, "slippage_bps": 3.0},
    {"size": "fixed_fraction", "size_value": 0.5, "time_stop_bars": 5},
    {"cost_model": "tiered", "fee_tiers": [[0, 10, 2], [1e5, 8, 1]]},
]


@pytest.fixture(scope="module")
def bars():
    df = synthetic_ohlcv("BTC/USDT", "1h", "2023-01-01", "2023-01-08")
    rng = np.random.default_rng(0)
    target = pd.Series(rng.choice([-1.0, 0.0, 1.0, np.nan], len(df)), index=df.index)
    return df, target


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(s) or "default")
def test_bar_by_bar_equals_run_vectorized(bars, settings, tmp_path):
    df, target = bars
    ledger = PaperLedger.new(settings)
    for i, (ts, row) in enumerate(df.iterrows()):
        ledger.advance(ts, row, target[ts])
        if i == len(df) // 2:  # a restart halfway: save, load, go on
            ledger.save(tmp_path)
            ledger = PaperLedger.load(tmp_path, settings)
    ref = run_vectorized(df, target, paper_settings(settings))
    np.testing.assert_array_equal(ledger.bars["equity"].to_numpy(), ref.equity.to_numpy())
    np.testing.assert_array_equal(ledger.bars["position"].to_numpy(), ref.position.to_numpy())
    assert len(ref.fills) > 20
    for col in ("size", "price", "fee"):
        np.testing.assert_array_equal(ledger.fills[col].to_numpy(), ref.fills[col].to_numpy())
    assert ledger.fills["time"].tolist() == ref.fills["time"].tolist()
    assert ledger.fills["reason"].tolist() == [str(r) for r in ref.fills["reason"]]


def test_a_crash_between_the_two_files_is_rolled_back(bars, tmp_path):
    df, target = bars
    ledger = PaperLedger.new()
    for ts, row in df.iloc[:10].iterrows():
        ledger.advance(ts, row, target[ts])
    ledger.save(tmp_path)
    committed = (tmp_path / "ledger.json").read_text()
    ts, row = df.index[10], df.iloc[10]
    ledger.advance(ts, row, 1.0)
    ledger.bars.to_parquet(tmp_path / LEDGER_BARS)  # the first write landed, the second not
    assert (tmp_path / "ledger.json").read_text() == committed
    back = PaperLedger.load(tmp_path)
    assert back.last_bar == df.index[9] and len(back.bars) == 10
    with pytest.raises(BadInputError, match="not newer"):
        back.advance(df.index[9], df.iloc[9], 1.0)
    with pytest.raises(BadInputError, match="other execution settings"):
        PaperLedger.load(tmp_path, {"fee_bps": 1.0})
