"""``cryptoai live --once --paper`` against the loopback mock Binance on the wall clock."""

from __future__ import annotations

import json

import pandas as pd
from mock_exchange import MockBinance

from cryptoai.cli import main
from cryptoai.serve.live import load_predictions

pytest_plugins = ("serve_support",)  # the shared registered model


def test_live_once_predicts_the_last_closed_bar_and_opens_a_ledger(registry, tmp_path, capsys):
    now = pd.Timestamp.now(tz="UTC")
    with MockBinance(
        symbols=["BTC/USDT"], start=now - pd.Timedelta(days=20), end=now + pd.Timedelta(days=1)
    ) as mock:
        args = [
            "live",
            "--model",
            registry.uri,
            "--source",
            "binance",
            "--api-url",
            mock.url,
            "--symbol",
            "BTC/USDT",
            "--timeframe",
            "1h",
            "--store",
            str(tmp_path / "raw"),
            "--live-dir",
            str(tmp_path / "live"),
            "--paper",
            "--fee-bps",
            "7",
            "--once",
            "--retries",
            "0",
        ]
        assert main(args) == 0
        after = pd.Timestamp.now(tz="UTC")
    folder = tmp_path / "live" / "binance" / "BTC-USDT" / "1h"
    preds = load_predictions(folder)
    assert len(preds) == 1
    candidates = {
        (t - pd.Timedelta(seconds=5)).floor("1h") - pd.Timedelta(hours=1) for t in (now, after)
    }
    assert preds.index[0] in candidates
    ledger = json.loads((folder / "ledger.json").read_text())
    assert ledger["bars"] == 1 and ledger["settings"]["fee_bps"] == 7.0
    assert ledger["settings"]["close_at_end"] is False
    out = capsys.readouterr().out
    assert "1 bar(s) predicted" in out and "paper:" in out


def test_live_bad_input_is_one_line(registry, tmp_path, capsys):
    rc = main(
        [
            "live",
            "--model",
            "models:/nobody@champion",
            "--source",
            "synthetic",
            "--store",
            str(tmp_path),
            "--live-dir",
            str(tmp_path / "live"),
            "--once",
        ]
    )
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert rc != 0 and len(err) == 1 and "nobody" in err[0]
    rc = main(
        [
            "live",
            "--model",
            registry.uri,
            "--source",
            "synthetic",
            "--store",
            str(tmp_path),
            "--live-dir",
            str(tmp_path / "live"),
            "--max-bars",
            "0",
        ]
    )
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("error:")]
    assert rc != 0 and len(err) == 1 and "--max-bars" in err[0]
