"""The data commands end to end, through the real console entry point, on the offline source."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import snapshot

from cryptoai.cli import main
from cryptoai.data.sources.synthetic import SyntheticSource
from cryptoai.data.store import RawStore


def _fetch(root, *extra, start="2024-01-01", end="2024-01-11", tf="1h"):
    return main(
        [
            "fetch",
            "--source",
            "synthetic",
            "--symbol",
            "BTC/USDT",
            "--timeframe",
            tf,
            "--start",
            start,
            "--end",
            end,
            "--out",
            str(root),
            "--no-progress",
            *extra,
        ]
    )


def test_fetch_stores_the_source_candles_and_rerun_is_a_no_op(tmp_path, capsys):
    root = tmp_path / "raw"
    assert _fetch(root) == 0
    day_files = sorted((root / "synthetic" / "BTC-USDT" / "1h").glob("*.parquet"))
    assert [p.stem for p in day_files] == [f"2024-01-{d:02d}" for d in range(1, 11)]
    stored = RawStore(root).load("synthetic", "BTC/USDT", "1h")
    expected = pd.concat(
        SyntheticSource(seed=42).fetch(
            "BTC/USDT",
            "1h",
            pd.Timestamp("2024-01-01", tz="UTC"),
            pd.Timestamp("2024-01-11", tz="UTC"),
        )
    )
    pd.testing.assert_frame_equal(stored, expected, check_freq=False)
    before = snapshot(root)
    capsys.readouterr()
    assert _fetch(root) == 0
    assert "0 bars written" in capsys.readouterr().out
    assert snapshot(root) == before


def test_overlapping_fetch_extends_without_duplicates(tmp_path):
    root = tmp_path / "raw"
    assert _fetch(root, start="2024-01-01", end="2024-01-05") == 0
    assert _fetch(root, start="2024-01-03", end="2024-01-08") == 0
    frame = RawStore(root).load("synthetic", "BTCUSDT", "1h")
    assert len(frame) == 7 * 24 and frame.index.is_unique and frame.index.is_monotonic_increasing


def test_validate_writes_report_and_coverage_lists_series(tmp_path, capsys):
    root = tmp_path / "raw"
    assert _fetch(root) == 0
    report = tmp_path / "quality.md"
    eda = tmp_path / "eda"
    assert (
        main(["validate", "--root", str(root), "--report", str(report), "--eda-dir", str(eda)]) == 0
    )
    text = report.read_text()
    assert "BTC/USDT" in text and list(eda.glob("*.png"))
    capsys.readouterr()
    assert main(["coverage", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "synthetic" in out and "240" in out


def test_validate_detects_a_corrupted_file(tmp_path, capsys):
    root = tmp_path / "raw"
    assert _fetch(root) == 0
    victim = next((root / "synthetic" / "BTC-USDT" / "1h").glob("*.parquet"))
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    assert main(["validate", "--root", str(root)]) != 0
    err = capsys.readouterr().err
    assert victim.name in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--start", "2024-02-01", "--end", "2024-01-01"], "empty date range"),
        (["--start", "2024-01-01", "--end", "2024-01-01"], "empty date range"),
        (
            ["--start", "2024-01-01", "--end", "2024-01-02", "--timeframe", "7x"],
            "unknown timeframe",
        ),
        (["--start", "not-a-date", "--end", "2024-01-02"], "ISO"),
        (["--source", "ccxt", "--start", "2024-01-01", "--end", "2024-01-02"], "--exchange"),
        (["--source", "csv", "--start", "2024-01-01", "--end", "2024-01-02"], "--path"),
    ],
)
def test_bad_input_is_one_line_nonzero_and_store_untouched(tmp_path, args, needle):
    root = tmp_path / "raw"
    assert _fetch(root) == 0
    before = snapshot(root)
    base = ["-m", "cryptoai", "fetch", "--out", str(root), "--no-progress", "--symbol", "BTC/USDT"]
    if "--source" not in args:
        base += ["--source", "synthetic"]
    proc = subprocess.run([sys.executable, *base, *args], capture_output=True, text=True)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(root) == before


def test_fetch_script_is_the_same_command(tmp_path):
    root = tmp_path / "raw"
    script = Path(__file__).resolve().parents[1] / "scripts" / "fetch_data.py"
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            "--source",
            "synthetic",
            "--symbol",
            "ETHUSDT",
            "--timeframe",
            "1d",
            "--start",
            "2024-01-01",
            "--end",
            "2024-02-01",
            "--out",
            str(root),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(RawStore(root).load("synthetic", "ETH/USDT", "1d")) == 31
