"""Optuna searches on a real PostgreSQL server, as many machines share one study.

A throwaway server is started for this module (``pg_support``: ``initdb`` + ``pg_ctl``,
listening on 127.0.0.1 only, on a free port, trust auth) and stopped at the end. Each test
gets its own empty database and runs ``cryptoai optimize`` in subprocesses against it, then
reads the study back through Optuna's own bookkeeping: trial numbers, parameter sets, and
which process ran each trial (the ``cryptoai.worker`` user attribute, a pid).

Skipped when the PostgreSQL server binaries or the psycopg2 driver are not installed
(Debian/Ubuntu: ``apt-get install postgresql``; the driver is pinned in requirements.txt).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pg_support import Server, running_server

pytestmark = pytest.mark.slow

SPACE = {"fast": {"low": 2, "high": 30}, "slow": {"low": 31, "high": 200}}


@pytest.fixture(scope="module")
def postgres() -> Iterator[Server]:
    """A PostgreSQL server on 127.0.0.1 (trust auth) for this module's tests."""
    with running_server() as server:
        yield server


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
