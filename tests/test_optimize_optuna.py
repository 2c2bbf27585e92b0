"""Optuna searches on an SQLite storage: workers share one new study (created once, no
schema race), trials add up without duplicates, an interrupted study resumes."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

from cryptoai.optimize import run_optimization

SPACE = {"fast": {"low": 2, "high": 30}, "slow": {"low": 31, "high": 200}}


def config(path, **over):
    return {
        "name": "optuna_test",
        "data": {"file": str(path)},
        "strategy": "ema_cross",
        "space": SPACE,
        "method": "optuna",
        "sampler": "tpe",
        "n_trials": 8,
        "objective": "sharpe",
        "min_trades": 1,
    } | over


@pytest.fixture
def data_file(tmp_path_factory, ohlcv):
    path = tmp_path_factory.mktemp("data") / "btc.parquet"
    ohlcv(n=800, seed=2).to_parquet(path)
    return path


def trials_of(url, study):
    return optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)


@pytest.mark.slow
def test_two_workers_on_a_new_storage_add_up_and_resume(tmp_path, data_file):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    first = run_optimization(
        config(data_file), storage=url, study="s1", workers=2, out=tmp_path / "a", tracking=False
    )
    stored = trials_of(url, "s1")
    assert len(stored) == 8
    assert sorted(t.number for t in stored) == list(range(8))
    assert len({t._trial_id for t in stored}) == 8
    workers = {t.user_attrs["cryptoai"]["worker"] for t in stored}
    assert len(workers) == 2  # both processes ran trials
    assert [t.number for t in first.trials] == list(range(8))
    # resume: a higher target adds only the missing trials; the old ones are kept as they were
    again = run_optimization(
        config(data_file), storage=url, study="s1", n_trials=12, out=tmp_path / "b", tracking=False
    )
    after = trials_of(url, "s1")
    assert len(after) == 12
    assert [t.params for t in after[:8]] == [t.params for t in stored]
    assert len(again.trials) == 12
    # a finished study reruns nothing
    run_optimization(
        config(data_file), storage=url, study="s1", n_trials=12, tracking=False, out=tmp_path / "c"
    )
    assert len(trials_of(url, "s1")) == 12


@pytest.mark.slow
def test_sequential_optuna_is_reproducible_and_study_mismatch_is_refused(tmp_path, data_file):
    a = run_optimization(
        config(data_file),
        storage=f"sqlite:///{tmp_path / 'a.db'}",
        out=tmp_path / "a",
        tracking=False,
    )
    b = run_optimization(
        config(data_file),
        storage=f"sqlite:///{tmp_path / 'b.db'}",
        out=tmp_path / "b",
        tracking=False,
    )
    assert (a.out_dir / "results.json").read_bytes() == (b.out_dir / "results.json").read_bytes()
    assert a.statistics["importance_method"] == "fanova"
    from cryptoai.errors import BadInputError

    with pytest.raises(BadInputError, match="different search"):
        run_optimization(
            config(data_file, min_trades=5),
            storage=f"sqlite:///{tmp_path / 'a.db'}",
            out=tmp_path / "c",
            tracking=False,
        )


@pytest.mark.slow
def test_separate_processes_started_together_on_a_new_sqlite_file(tmp_path, data_file):
    """Two independent CLI processes race to create the schema of one new file."""
    import yaml

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(config(data_file, n_trials=6)))
    url = f"sqlite:///{tmp_path / 'race.db'}"
    cmd = [
        sys.executable,
        "-m",
        "cryptoai",
        "optimize",
        "--config",
        str(cfg),
        "--storage",
        url,
        "--study",
        "race",
        "--no-tracking",
    ]
    procs = [
        subprocess.Popen(
            [*cmd, "--out", str(tmp_path / f"o{i}")], stderr=subprocess.PIPE, text=True
        )
        for i in range(2)
    ]
    errs = [p.communicate(timeout=240)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    stored = trials_of(url, "race")
    numbers = [t.number for t in stored]
    assert len(numbers) == len(set(numbers)) and 6 <= len(numbers) <= 7
