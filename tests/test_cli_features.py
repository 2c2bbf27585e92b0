"""`cryptoai features` end to end on a small CSV written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import ohlcv_frame

from cryptoai.cli import main
from cryptoai.features.engineering import build_features

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = ROOT / "configs/features/minimal.yaml"


@pytest.fixture()
def csv_file(tmp_path: Path) -> Path:
    frame = ohlcv_frame(300, seed=9, symbol="ETH/USDT", start="2024-02-01")
    frame.index = frame.index.strftime("%Y-%m-%dT%H:%M:%SZ").rename("timestamp")
    path = tmp_path / "eth.csv"
    frame.to_csv(path)
    return path


def read_input(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path)
    stamps = pd.to_datetime(raw.pop("timestamp"), utc=True)
    raw.index = pd.DatetimeIndex(stamps, name="timestamp").as_unit("ns")
    return raw.astype("float64")


def test_features_command_writes_one_row_per_bar(csv_file, tmp_path, capsys):
    out = tmp_path / "out" / "features.parquet"
    code = main(["features", "--data", str(csv_file), "--spec", str(MINIMAL), "--out", str(out)])
    assert code == 0
    assert "300 bars x 4 features" in capsys.readouterr().out
    written = pd.read_parquet(out)
    ohlcv = read_input(csv_file)
    assert written.index.equals(ohlcv.index)
    assert list(written.columns) == ["ret_log_1", "rsi_14", "volatility_20", "sma_20_rel"]
    expected = build_features(ohlcv, MINIMAL)
    pd.testing.assert_frame_equal(written, expected, check_freq=False, rtol=1e-12)
    np.testing.assert_allclose(
        written["ret_log_1"].iloc[1:], np.log(ohlcv["close"]).diff().iloc[1:], atol=1e-14
    )
    assert [p.name for p in out.parent.iterdir()] == ["features.parquet"]


def test_features_command_range_and_csv_output(csv_file, tmp_path):
    out = tmp_path / "features.csv"
    args = ["features", "--data", str(csv_file), "--spec", str(MINIMAL), "--out", str(out)]
    assert main([*args, "--start", "2024-02-03", "--end", "2024-02-05"]) == 0
    written = pd.read_csv(out, index_col=0)
    assert len(written) == 48
    assert written.index[0].startswith("2024-02-03 00:00:00")
    assert written["rsi_14"].iloc[:13].isna().all()  # warm-up restarts on the requested range


def test_features_command_bad_spec_is_one_line(csv_file, tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    spec.write_text("features:\n  - rsi\n  - {name: nope}\n")
    out = tmp_path / "f.parquet"
    code = main(["features", "--data", str(csv_file), "--spec", str(spec), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert err.count("\n") == 0 and "features.1" in err and "'nope'" in err
    assert not out.exists()


def test_features_command_rejects_unknown_output_format(csv_file, tmp_path, capsys):
    code = main(["features", "--data", str(csv_file), "--out", str(tmp_path / "f.xlsx")])
    assert code != 0
    assert ".parquet or .csv" in capsys.readouterr().err


def test_features_command_missing_data_file(tmp_path, capsys):
    out = tmp_path / "f.parquet"
    code = main(
        [
            "features",
            "--data",
            str(tmp_path / "none.csv"),
            "--spec",
            str(MINIMAL),
            "--out",
            str(out),
        ]
    )
    assert code != 0
    assert "not found" in capsys.readouterr().err
