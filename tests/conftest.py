"""What every test gets: private MLflow and Optuna stores, no way out to the internet, the
shared candle generator, and the ``slow`` marks that keep ``make test-fast`` fast.

- Stores: each test runs with ``MLFLOW_TRACKING_URI`` (the model registry follows it) and
  ``CRYPTOAI_OPTUNA_STORAGE`` on SQLite files of its own, so no test writes the repo's
  ``mlflow.db`` / ``optuna.db`` or sees another test's runs.
- Network: ``socket.connect`` to anything but loopback (or a Unix socket) raises
  `NetworkBlockedError`, and so does resolving a host name other than ``localhost``: a test
  can reach the loopback mocks (mock exchange, MLflow server, uvicorn) and nothing else.
  Child processes (papermill kernels, subprocess CLI runs) are not covered by this guard.
- ``slow``: tests over ~5 s (``--durations=30`` on the 2-core machine). Files owned by other
  suites are marked here by name (`SLOW_FILES`, `SLOW_TESTS`); others carry the decorator.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from helpers import ohlcv_frame, python_kernel_env

# Plugin modules of shared session fixtures (``pytest_plugins`` in the test files), imported by
# those files before pytest would load them: registered here, so their asserts are rewritten.
pytest.register_assert_rewrite("serve_support", "shipped_run")

#: Every test in these files takes seconds (kernels, servers, papermill); files of this suite
#: mark themselves (``pytestmark = pytest.mark.slow`` in test_models_sequence.py).
SLOW_FILES = frozenset(
    {
        "test_notebooks.py",
        "test_experiments.py",
        "test_mlflow_server.py",
    }
)

#: Single tests in otherwise fast files: over ~5 s, or a whole script run in a subprocess
#: (node id without the parameters; tests in files this suite owns carry the decorator).
SLOW_TESTS = frozenset(
    {
        "tests/test_sync.py::test_sync_script_fetches_listed_series_and_reports_failures",
        "tests/test_cli_data.py::test_fetch_script_is_the_same_command",
        "tests/test_cli_data.py::test_bad_input_is_one_line_nonzero_and_store_untouched",
        "tests/test_cli_train.py::test_smoke_flag_and_tracked_run",
        "tests/test_training.py::test_deep_model_in_smoke_mode_is_deterministic",  # torch
        "tests/test_training.py::test_train_end_to_end_tracked_in_mlflow",
        "tests/test_data_integrity.py::test_cli_fetch_of_a_bad_candle_is_one_line_and_exit_3",
    }
)


# --- stores ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _private_stores(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """MLflow and Optuna on SQLite files of this test's own (not under ``tmp_path``, which
    tests compare file by file)."""
    root = tmp_path_factory.mktemp("stores")
    mlflow_uri = f"sqlite:///{(root / 'mlflow.db').as_posix()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    # no MLFLOW_REGISTRY_URI: the registry follows the tracking URI, also when a test points
    # that elsewhere (a registry URI left here would be a second store, migrated per test)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("CRYPTOAI_OPTUNA_STORAGE", f"sqlite:///{(root / 'optuna.db').as_posix()}")
    monkeypatch.delenv("CRYPTOAI_ARTIFACT_ROOT", raising=False)  # artifacts beside the db
    mlflow = sys.modules.get("mlflow")  # only when some test already imported it (slow import)
    if mlflow is not None:
        mlflow.set_tracking_uri(mlflow_uri)
        mlflow.set_registry_uri(None)
    yield root
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None:
        while mlflow.active_run() is not None:  # a run left open would log into the next test
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


# --- network --------------------------------------------------------------------------------


class NetworkBlockedError(OSError):
    """A test tried to reach a host other than this machine."""


_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def _is_local(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    name = host.strip("[]").split("%", 1)[0]
    if name.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _check_address(sock: socket.socket, address: object) -> None:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) and address else address
    if not _is_local(host):
        raise NetworkBlockedError(
            f"tests may only connect to loopback, not {address!r}: serve a local mock instead"
        )


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> Iterator[None]:
    """Loopback only, by construction: connect and name lookups refuse anything else."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> None:
        _check_address(self, address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        _check_address(self, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):  # noqa: ANN001, ANN202 - socket's signature
        if host is not None and not _is_local(host):
            raise NetworkBlockedError(f"tests may not resolve {host!r}: only localhost")
        return real_getaddrinfo(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", connect)
        mp.setattr(socket.socket, "connect_ex", connect_ex)
        mp.setattr(socket, "getaddrinfo", getaddrinfo)
        yield


# --- data -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ohlcv() -> Callable[..., pd.DataFrame]:
    """The shared candle generator: ``ohlcv(n=500, seed=0, timeframe="1h", ...)`` gives ``n``
    seeded synthetic bars (see `helpers.ohlcv_frame`); the same arguments, the same frame."""
    return ohlcv_frame


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory) -> Iterator[None]:
    """A kernel spec ``python3`` for this very interpreter, found first, so the notebooks a
    test executes run here (see `helpers.python_kernel_env`)."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in python_kernel_env(tmp_path_factory.mktemp("jupyter")).items():
            mp.setenv(key, value)
        yield


# --- marks ----------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)  # before -m / -k deselect by the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow = pytest.mark.slow
    files, marked = set(), set()
    for item in items:
        path = Path(str(item.path))
        node = item.nodeid.split("[", 1)[0]
        files.add(node.split("::", 1)[0])
        if path.name in SLOW_FILES or node in SLOW_TESTS:
            item.add_marker(slow)
            marked.add(node)
    stale = sorted(n for n in SLOW_TESTS if n.split("::", 1)[0] in files and n not in marked)
    for node in stale:  # a renamed test would silently come back into make test-fast
        warnings.warn(f"conftest SLOW_TESTS names {node}, which no longer exists", stacklevel=1)
