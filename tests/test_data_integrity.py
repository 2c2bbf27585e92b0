"""Verified reads, repair, leftover temp files, one writer per series and OS errors, with
real ccxt over loopback HTTP to the mock exchange; the CLI's one-line errors."""

from __future__ import annotations

import errno
import json
import logging
import subprocess
import sys
import threading

import pandas as pd
import pyarrow.parquet as pq
import pytest
from helpers import snapshot
from mock_exchange import MockBinance

import cryptoai._atomic as atomic_module
from cryptoai.cli import main
from cryptoai.data import store as store_module
from cryptoai.data.fetch import fetch_to_store
from cryptoai.data.sources import SOURCES, make_source
from cryptoai.data.sources.ccxt_source import CcxtSource
from cryptoai.data.sources.retry import RetryPolicy
from cryptoai.data.store import RawStore, StoreError
from cryptoai.errors import BadInputError, DataValidationError

START, END = "2024-01-01", "2024-01-04"


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture
def mock():
    with MockBinance(symbols=["BTC/USDT"], start="2023-12-30", end="2024-01-08") as m:
        yield m


def fetch(mock, store, start=START, end=END):
    src = CcxtSource(
        "binance",
        api_url=mock.url,
        retry=RetryPolicy(max_retries=1, sleep=lambda s: None),
        page_limit=24,
        rate_limit=False,
    )
    try:
        return fetch_to_store(src, store, "BTC/USDT", "1h", start, end, progress=False)
    finally:
        src.close()


def want(mock, start=START, end=END) -> pd.DataFrame:
    frame = mock.frame("BTC/USDT")
    return frame[(frame.index >= ts(start)) & (frame.index < ts(end))]


def klines(mock) -> int:
    return len(mock.requests_to("/klines"))


def day(store: RawStore, name: str):
    return store.series_dir("binance", "BTC/USDT", "1h") / f"{name}.parquet"


def tamper(path) -> None:
    """Change one close in a day file, as an editor or a bad disk would: still valid Parquet."""
    table = pq.read_table(path).to_pandas()
    table.loc[table.index[3], "close"] *= 1.5
    table.loc[table.index[3], "high"] = table["close"].iloc[3] * 2
    pq.write_table(pq.read_table(path).from_pandas(table, preserve_index=False), path)


def cli(*args: str) -> int:
    return main([*args])


# ----------------------------------------------------------------- verified reads, repair
def test_a_changed_day_file_is_never_read_and_fetch_downloads_it_again(tmp_path, mock):
    store = RawStore(tmp_path)
    fetch(mock, store)
    victim = day(store, "2024-01-02")
    tamper(victim)
    with pytest.raises(DataValidationError) as err:
        store.load("binance", "BTC/USDT", "1h")
    message = str(err.value)
    assert "\n" not in message and str(victim) in message
    assert (
        f"cryptoai repair --source binance --symbol BTC/USDT --timeframe 1h --out {tmp_path}"
        in (message)
    )
    before = klines(mock)
    report = fetch(mock, store)
    assert report.bars_written == 24 and klines(mock) == before + 1
    pd.testing.assert_frame_equal(
        store.load("binance", "BTC/USDT", "1h"), want(mock), check_freq=False
    )
    assert store.verify() == []


def test_a_deleted_manifest_means_fetch_again_and_write_a_new_one(tmp_path, mock):
    store = RawStore(tmp_path)
    fetch(mock, store)
    manifest = store.series_dir("binance", "BTC/USDT", "1h") / "_manifest.json"
    manifest.unlink()
    with pytest.raises(DataValidationError, match="not in the manifest"):
        store.load("binance", "BTC/USDT", "1h")
    before = klines(mock)
    fetch(mock, store)
    assert klines(mock) > before and manifest.exists()
    pd.testing.assert_frame_equal(
        store.load("binance", "BTC/USDT", "1h"), want(mock), check_freq=False
    )


def test_repair_rebuilds_a_damaged_manifest_from_the_files_that_verify(tmp_path, mock, capsys):
    store = RawStore(tmp_path)
    fetch(mock, store)
    folder = store.series_dir("binance", "BTC/USDT", "1h")
    (folder / "_manifest.json").write_text("{ truncated")
    bad = day(store, "2024-01-03")
    table = pq.read_table(bad).to_pandas()
    table.loc[table.index[2], "low"] = -1.0  # breaks the contract: cannot be adopted
    pq.write_table(pq.read_table(bad).from_pandas(table, preserve_index=False), bad)
    with pytest.raises(DataValidationError, match="cryptoai repair"):
        store.load("binance", "BTC/USDT", "1h")
    before = klines(mock)
    code = cli(
        "repair", "--source", "binance", "--api-url", mock.url, "--symbol", "BTC/USDT",
        "--timeframe", "1h", "--out", str(tmp_path), "--no-progress", "--retry-delay", "0",
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "manifest rebuilt" in out and "2 day file(s) verified, 1 removed" in out
    assert klines(mock) == before + 1  # only the removed day is fetched again
    pd.testing.assert_frame_equal(
        store.load("binance", "BTC/USDT", "1h"), want(mock), check_freq=False
    )
    assert store.verify() == []
    assert json.loads((folder / "_manifest.json").read_text())["files"].keys() == {
        "2024-01-01.parquet",
        "2024-01-02.parquet",
        "2024-01-03.parquet",
    }


def test_repeated_loads_do_not_rehash_unchanged_files(tmp_path, monkeypatch):
    store = RawStore(tmp_path)
    frame = make_source("synthetic").fetch("BTC/USDT", "1h", ts(START), ts(END))
    store.write("synthetic", "BTC/USDT", "1h", pd.concat(frame))
    for _, path in store_module._day_files(store.series_dir("synthetic", "BTC/USDT", "1h")):
        st = path.stat()
        import os

        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 10**10))  # written a while ago
    hashed = []
    real = store_module.hashlib.file_digest
    monkeypatch.setattr(
        store_module.hashlib, "file_digest", lambda fh, d: hashed.append(fh.name) or real(fh, d)
    )
    store.load("synthetic", "BTC/USDT", "1h")
    assert len(hashed) == 3
    store.load("synthetic", "BTC/USDT", "1h")
    assert len(hashed) == 3  # remembered by mtime


# ----------------------------------------------------------------- temp files, locking
def test_a_temp_file_left_by_a_killed_writer_is_removed(tmp_path, mock):
    store = RawStore(tmp_path)
    fetch(mock, store)
    folder = store.series_dir("binance", "BTC/USDT", "1h")
    stale = folder / ".2024-01-02.parquet.k1ll3d.tmp"
    stale.write_bytes(b"PAR1 half a file")
    assert store.verify() == [] and not stale.exists()
    stale.write_bytes(b"PAR1 half a file")
    fetch(mock, store, end="2024-01-05")
    assert not stale.exists()


def test_a_writer_killed_mid_write_leaves_the_store_readable(tmp_path):
    """A real kill -9 of a process inside the atomic write (after its temp file is filled)."""
    store = RawStore(tmp_path)
    first = pd.concat(make_source("synthetic").fetch("BTC/USDT", "1h", ts(START), ts(END)))
    store.write("synthetic", "BTC/USDT", "1h", first)
    before = snapshot(tmp_path)
    code = f"""
import os, signal, pandas as pd, pyarrow.parquet as pq
from cryptoai.data.store import RawStore
from cryptoai.data.sources import make_source
real = pq.write_table
def write_then_die(table, where, **kw):
    real(table, where, **kw)
    where.flush()
    os.kill(os.getpid(), signal.SIGKILL)
pq.write_table = write_then_die
frames = make_source("synthetic", seed=7).fetch(
    "BTC/USDT", "1h", pd.Timestamp("2024-01-02", tz="UTC"), pd.Timestamp("2024-01-03", tz="UTC"))
RawStore({str(tmp_path)!r}).write("synthetic", "BTC/USDT", "1h", pd.concat(frames))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    folder = store.series_dir("synthetic", "BTC/USDT", "1h")
    assert list(folder.glob(".*.tmp"))  # the kill left its temp file
    assert store.verify() == []  # removed, nothing else wrong
    assert snapshot(tmp_path) == before
    pd.testing.assert_frame_equal(
        store.load("synthetic", "BTC/USDT", "1h"), first, check_freq=False
    )


def test_a_second_fetch_waits_for_the_first_then_asks_for_nothing(tmp_path, mock):
    waiting = threading.Event()

    class Seen(logging.Handler):
        def emit(self, record):
            if "waiting for it to finish" in record.getMessage():
                waiting.set()

    handler = Seen()
    logging.getLogger("cryptoai.data.store").addHandler(handler)
    results, errors = {}, []

    def run(name):
        try:
            results[name] = fetch(mock, RawStore(tmp_path))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    try:
        fetch(mock, RawStore(tmp_path), end="2024-01-01 01:00")  # series folder and markets
        mock.hold()
        mock.arrived.clear()
        first = threading.Thread(target=run, args=("first",))
        first.start()
        assert mock.arrived.wait(10)  # the first fetch is inside its first request
        second = threading.Thread(target=run, args=("second",))
        second.start()
        assert waiting.wait(10)  # the second one says it waits for the lock
        mock.release()
        first.join(30)
        second.join(30)
    finally:
        mock.release()
        logging.getLogger("cryptoai.data.store").removeHandler(handler)
    assert not errors, errors
    assert results["first"].bars_written == 71 and results["second"].bars_written == 0
    assert results["second"].ranges_fetched == []
    assert klines(mock) == 1 + 3  # one setup page, then 71 bars in 3 pages, fetched once
    pd.testing.assert_frame_equal(
        RawStore(tmp_path).load("binance", "BTC/USDT", "1h"), want(mock), check_freq=False
    )


# ----------------------------------------------------------------- OS errors
@pytest.mark.parametrize(
    ("code", "needle"),
    [
        (errno.ENOSPC, "disk is full"),
        (errno.EROFS, "read-only"),
        (errno.EACCES, "permission denied"),
    ],
)
def test_os_errors_are_one_line_and_leave_the_store_as_it_was(
    tmp_path, mock, monkeypatch, code, needle
):
    """The errno is injected at the lowest write the store makes (its temp file), since a
    full disk or a read-only mount cannot be produced here without mounting (and root
    ignores permission bits)."""
    store = RawStore(tmp_path)
    fetch(mock, store)
    before = snapshot(tmp_path)

    def refuse(*args, **kwargs):
        raise OSError(code, errno.errorcode[code], kwargs.get("dir"))

    monkeypatch.setattr(atomic_module.tempfile, "mkstemp", refuse)  # every store write
    with pytest.raises(StoreError, match=needle) as err:
        fetch(mock, store, end="2024-01-05")
    assert "\n" not in str(err.value)
    monkeypatch.undo()
    assert snapshot(tmp_path) == before
    fetch(mock, store, end="2024-01-05")  # once the disk is fine again, a re-run completes
    pd.testing.assert_frame_equal(
        store.load("binance", "BTC/USDT", "1h"), want(mock, end="2024-01-05"), check_freq=False
    )


def test_a_file_where_a_folder_should_be(tmp_path, mock, capsys):
    (tmp_path / "binance").write_text("not a folder")  # a real condition, even for root
    with pytest.raises(StoreError, match="a file is in the way"):
        fetch(mock, RawStore(tmp_path))
    assert (tmp_path / "binance").read_text() == "not a folder"
    target = tmp_path / "store.txt"
    target.write_text("x")
    code = cli(
        "fetch", "--source", "synthetic", "--start", START, "--end", END, "--out", str(target),
        "--no-progress",
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "is a file" in err[0]


# ----------------------------------------------------------------- the CLI's small ones
def test_unknown_source_lists_the_sources(tmp_path, capsys):
    code = cli("fetch", "--source", "foo", "--start", START, "--out", str(tmp_path))
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: unknown source 'foo': choose one of")
    for name in ("binance", "ccxt", "coingecko", "csv", "synthetic"):
        assert name in err
    assert set(SOURCES.names()) == {"binance", "ccxt", "coingecko", "csv", "synthetic"}


def test_exchange_does_not_apply_to_synthetic(tmp_path, capsys):
    code = cli(
        "fetch", "--source", "synthetic", "--exchange", "kraken", "--start", START,
        "--out", str(tmp_path),
    )  # fmt: skip
    assert (
        code == 2 and "--exchange does not apply to --source synthetic" in capsys.readouterr().err
    )
    assert not any(tmp_path.iterdir())


def test_a_ccxt_exchange_id_still_works_as_a_source_name():
    assert make_source("kraken").exchange == "kraken"
    assert make_source("ccxt", exchange="okx").exchange == "okx"
    with pytest.raises(BadInputError, match="--source ccxt needs --exchange"):
        make_source("ccxt")


def test_monthly_bars_are_refused_and_left_out_of_the_suggestions(mock, capsys):
    src = CcxtSource("binance", api_url=mock.url, rate_limit=False)
    assert "1M" not in src.timeframes and "1w" in src.timeframes
    assert main(["fetch", "--source", "binance", "--timeframe", "1M", "--start", START]) == 2
    assert "monthly" in capsys.readouterr().err
    with pytest.raises(BadInputError, match=r"use one of .*1w") as err:
        list(src.fetch("BTC/USDT", "7m", ts(START), ts(END)))
    assert "1M" not in str(err.value)


def test_the_missing_series_hint_is_a_command_that_works(tmp_path, capsys):
    store = RawStore(tmp_path)
    with pytest.raises(BadInputError) as err:
        store.load("synthetic", "ETH/USDT", "4h")
    command = str(err.value).split("e.g. ")[1]
    assert "--source synthetic" in command and "--start" in command
    args = command.split()[1:]
    assert main([*args, "--end", "2024-01-03", "--no-progress"]) == 0
    assert len(store.load("synthetic", "ETH/USDT", "4h")) == 12


def test_registering_sources_does_not_import_ccxt():
    code = (
        "import sys; from cryptoai.data.sources import make_source;"
        " make_source('synthetic'); print('ccxt' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "False", proc.stderr


def test_cli_fetch_of_a_bad_candle_is_one_line_and_exit_3(tmp_path, mock, capsys):
    mock.corrupt("negative_volume", times=None, bar="2024-01-02 07:00")
    code = cli(
        "fetch", "--source", "binance", "--api-url", mock.url, "--start", START, "--end", END,
        "--out", str(tmp_path), "--no-progress", "--retries", "1", "--retry-delay", "0",
    )  # fmt: skip
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 3 and len(err) == 1
    assert "2024-01-02 07:00" in err[0] and "volume" in err[0] and mock.url in err[0]
    assert not list(tmp_path.rglob("*.parquet"))  # one 1000-bar page: nothing of it stored
    mock.clear_corruptions()
    capsys.readouterr()
    code = cli(
        "fetch", "--source", "binance", "--api-url", mock.url, "--start", START, "--end", END,
        "--out", str(tmp_path), "--no-progress", "--retry-delay", "0",
    )  # fmt: skip
    assert code == 0
    pd.testing.assert_frame_equal(
        RawStore(tmp_path).load("binance", "BTC/USDT", "1h"), want(mock), check_freq=False
    )
    assert cli("validate", "--root", str(tmp_path)) == 0
