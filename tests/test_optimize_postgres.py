"""Optuna searches on a real PostgreSQL server, as many machines share one study.

A throwaway server is started for this module (``initdb`` + ``pg_ctl``, listening on
127.0.0.1 only, on a free port, trust auth) and stopped at the end. Each test gets its own
empty database and runs ``cryptoai optimize`` in subprocesses against it, then reads the
study back through Optuna's own bookkeeping: trial numbers, parameter sets, and which
process ran each trial (the ``cryptoai.worker`` user attribute, a pid).

Skipped when the PostgreSQL server binaries or the psycopg2 driver are not installed
(Debian/Ubuntu: ``apt-get install postgresql``; the driver is pinned in requirements.txt).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

SPACE = {"fast": {"low": 2, "high": 30}, "slow": {"low": 31, "high": 200}}
SUPERUSER = "postgres"
#: pg_isready attempts after ``pg_ctl start -w`` returned (each waits up to 2 s for the server).
READY_ATTEMPTS = 15


def server_bin() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: from PATH, else Debian's layout."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []

    def version(folder: Path) -> int:
        return int(folder.parent.name) if folder.parent.name.isdigit() else 0

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for folder in candidates:
        if all((folder / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A PostgreSQL cluster in a temporary folder; as root, run by the ``postgres`` user
    (the server refuses to run as root)."""

    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin, self.root = bin_dir, root
        self.data, self.sockets, self.log = root / "data", root / "sockets", root / "server.log"
        self.port = free_port()
        self.as_user = SUPERUSER if os.geteuid() == 0 else None

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_user is not None:
            if shutil.which("runuser"):
                cmd = ["runuser", "-u", self.as_user, "--", *cmd]
            else:
                cmd = ["su", self.as_user, "-c", shlex.join(cmd)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root, timeout=120)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stdout}{done.stderr}")
        return done

    def start(self) -> None:
        self.sockets.mkdir()
        if self.as_user is not None:
            import pwd

            pw = pwd.getpwnam(self.as_user)
            for path in (self.root, self.sockets):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        self.run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8")
        opts = f"-k {self.sockets} -h 127.0.0.1 -p {self.port} -c fsync=off"
        started = self.run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log),
            "-o", opts, check=False,
        )  # fmt: skip
        if started.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stdout}{started.stderr}{log}")
        self.wait_ready()

    def wait_ready(self) -> None:
        """``pg_ctl -w`` already waited; confirm over TCP, a bounded number of times."""
        isready = self.bin / "pg_isready"
        for _ in range(READY_ATTEMPTS):
            if isready.is_file():
                cmd = [str(isready), "-h", "127.0.0.1", "-p", str(self.port), "-t", "2"]
                if subprocess.run(cmd, capture_output=True).returncode == 0:
                    return
            else:
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                    return
        raise RuntimeError(f"PostgreSQL on 127.0.0.1:{self.port} is not accepting connections")

    def create_database(self, name: str) -> str:
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name)
        return f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.run("pg_ctl", "stop", "-m", "fast", "-w", "-D", str(self.data), check=False)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Server]:
    """A PostgreSQL server on 127.0.0.1 for this module's tests, stopped at teardown.

    Its folder is a fresh ``/tmp`` directory rather than pytest's ``tmp_path``: as root the
    server runs as ``postgres``, which cannot enter pytest's root-only base folder."""
    pytest.importorskip("psycopg2", reason="the PostgreSQL driver psycopg2-binary is missing")
    bin_dir = server_bin()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in"
            " /usr/lib/postgresql/*/bin: apt-get install postgresql"
        )
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
    root = Path(tempfile.mkdtemp(prefix="cryptoai-pg-"))
    server = Server(bin_dir, root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    from helpers import ohlcv_frame

    path = tmp_path_factory.mktemp("pgdata") / "btc.parquet"
    ohlcv_frame(n=800, seed=2).to_parquet(path)
    return path


def write_config(tmp_path: Path, data_file: Path, n_trials: int) -> Path:
    cfg = {
        "name": "optuna_pg",
        "data": {"file": str(data_file)},
        "strategy": "ema_cross",
        "space": SPACE,
        "method": "optuna",
        "sampler": "tpe",
        "n_trials": n_trials,
        "objective": "sharpe",
        "min_trades": 1,
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def optimize_cmd(cfg: Path, url: str, study: str, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "cryptoai", "optimize", "--config", str(cfg), "--storage", url,
        "--study", study, "--no-tracking", "--out", str(out), *extra,
    ]  # fmt: skip


def run_together(cmds: list[list[str]]) -> None:
    """Start every command at once and wait for all; each must succeed."""
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    procs = [subprocess.Popen(c, stderr=subprocess.PIPE, text=True, env=env) for c in cmds]
    errs = []
    for p in procs:
        try:
            errs.append(p.communicate(timeout=300)[1])
        except subprocess.TimeoutExpired:
            p.kill()
            errs.append(p.communicate()[1])
    assert [p.returncode for p in procs] == [0] * len(procs), errs


def stored_trials(url: str, study: str):
    import optuna

    return optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)


def assert_no_duplicates(trials) -> None:
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials))), numbers  # dense, each once
    assert len({t._trial_id for t in trials}) == len(trials)
    params = [json.dumps(t.params, sort_keys=True) for t in trials]
    assert len(set(params)) == len(params), f"a parameter set ran twice: {sorted(params)}"


def test_two_worker_processes_share_a_postgres_study_exactly(postgres, tmp_path, data_file):
    """``cryptoai optimize --workers 2``: two processes on one PostgreSQL study bring it to
    exactly ``n_trials``, each trial once, both processes contributing; the report lists
    the study's trials."""
    from optuna.trial import TrialState

    url = postgres.create_database("exact")
    cfg = write_config(tmp_path, data_file, n_trials=10)
    run_together([optimize_cmd(cfg, url, "pg-exact", tmp_path / "out", "--workers", "2")])
    stored = stored_trials(url, "pg-exact")
    assert len(stored) == 10
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in stored)
    assert_no_duplicates(stored)
    workers = {t.user_attrs["cryptoai"]["worker"] for t in stored}
    assert len(workers) == 2, workers  # both worker processes ran trials
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [t["number"] for t in results["trials"]] == list(range(10))
    assert [t["params"] for t in results["trials"]] == [t.params for t in stored]


def test_independent_processes_started_together_on_a_new_database(postgres, tmp_path, data_file):
    """Two separate ``cryptoai optimize`` commands (two machines) race to create the schema
    of an empty database and share one study: neither fails, no trial number or parameter
    set repeats, both contribute, and the study stops at its target (plus at most the one
    trial the other process was still running)."""
    url = postgres.create_database("race")
    cfg = write_config(tmp_path, data_file, n_trials=10)
    run_together([optimize_cmd(cfg, url, "pg-race", tmp_path / f"o{i}") for i in range(2)])
    stored = stored_trials(url, "pg-race")
    assert 10 <= len(stored) <= 11, len(stored)
    assert_no_duplicates(stored)
    workers = {t.user_attrs["cryptoai"]["worker"] for t in stored}
    assert len(workers) == 2, workers
    # a third run on the finished study adds nothing and reports every trial
    run_together([optimize_cmd(cfg, url, "pg-race", tmp_path / "o3")])
    assert len(stored_trials(url, "pg-race")) == len(stored)
    results = json.loads((tmp_path / "o3" / "results.json").read_text())
    assert len(results["trials"]) == len(stored)
