"""scripts/sync_data.sh: every listed series synced; a failing one does not stop the rest."""

import subprocess
import sys
from pathlib import Path

from cryptoai.data.store import RawStore

REPO = Path(__file__).resolve().parents[1]


def test_sync_script_fetches_listed_series_and_reports_failures(tmp_path):
    root = tmp_path / "raw"
    config = tmp_path / "sync.yaml"
    config.write_text(
        f"root: {root}\n"
        "series:\n"
        "  - source: ccxt\n"
        "    exchange: no_such_exchange\n"
        "    symbols: [BTC/USDT]\n"
        "    timeframes: [1h]\n"
        "    start: 2024-01-01\n"
        "  - source: synthetic\n"
        "    symbols: [BTC/USDT, ETH/USDT]\n"
        "    timeframes: [1h, 1d]\n"
        "    start: 2024-01-01\n"
        "    end: 2024-01-08\n"
    )
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "sync_data.sh"), str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
    )
    assert proc.returncode == 1
    assert "1 series failed" in proc.stderr and "no_such_exchange" in proc.stderr
    store = RawStore(root)
    keys = {(k.symbol.replace("-", "/"), k.timeframe) for k in store.series()}
    assert keys == {("BTC/USDT", "1h"), ("BTC/USDT", "1d"), ("ETH/USDT", "1h"), ("ETH/USDT", "1d")}
    assert len(store.load("synthetic", "ETH/USDT", "1h")) == 7 * 24
    assert len(store.load("synthetic", "BTC/USDT", "1d")) == 7


def test_sync_rejects_a_broken_config(tmp_path):
    config = tmp_path / "sync.yaml"
    config.write_text(
        "series:\n  - source: synthetic\n    symbols: []\n    timeframes: [1h]\n    start: 2024-01-01\n"
    )
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "sync_data.sh"), str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
    )
    assert proc.returncode != 0
    assert "field 'series.0.symbols'" in proc.stderr
