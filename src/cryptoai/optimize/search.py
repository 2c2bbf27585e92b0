"""Parameter search: grid, random (seeded) and Optuna (TPE, CMA-ES, random samplers).

Grid and random searches list their parameter sets up front (combinations that break a
constraint are dropped before anything runs) and split them across worker processes in
order, so N workers give the same trials as one. Optuna searches run on a storage
(SQLite by default, PostgreSQL for many machines): every process given the same storage
and study shares the trials, and a study that was interrupted resumes up to ``n_trials``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing as mp
import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cryptoai.errors import BadInputError
from cryptoai.optimize.space import Constraint, Dimension, grid_points, satisfies
from cryptoai.optimize.trials import SKIPPED, Trial, TrialRunner, run_chunk

log = logging.getLogger(__name__)

STORAGE_ENV = "CRYPTOAI_OPTUNA_STORAGE"
#: Draws per wanted trial before a random search gives up finding new valid combinations.
RANDOM_DRAWS_PER_TRIAL = 50


@dataclass
class SearchOutcome:
    """Trials that ran (complete or failed), how many sets were skipped, and what ran now."""

    trials: list[Trial]
    n_skipped: int
    n_new: int
    study: str | None = None
    storage: str | None = None
    importance: dict[str, float] | None = None


# --------------------------------------------------------------------------- grid / random


def grid_candidates(
    dims: Sequence[Dimension], constraints: Sequence[Constraint]
) -> tuple[list[dict[str, Any]], int]:
    """Every grid point that satisfies the constraints, in grid order, and how many did not."""
    points = grid_points(dims)
    kept = [p for p in points if satisfies(p, constraints)]
    return kept, len(points) - len(kept)


def random_candidates(
    dims: Sequence[Dimension], constraints: Sequence[Constraint], n_trials: int, seed: int
) -> tuple[list[dict[str, Any]], int]:
    """Up to ``n_trials`` distinct valid parameter sets drawn with ``seed`` (all of them when
    the space has fewer)."""
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    kept: list[dict[str, Any]] = []
    rejected = 0
    for _ in range(n_trials * RANDOM_DRAWS_PER_TRIAL):
        if len(kept) >= n_trials:
            break
        params = {d.name: d.sample(rng) for d in dims}
        key = json.dumps(params, sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        if satisfies(params, constraints):
            kept.append(params)
        else:
            rejected += 1
    if len(kept) < n_trials:
        log.info("random search: the space holds only %d valid distinct sets", len(kept))
    return kept, rejected


def run_candidates(
    runner: TrialRunner, candidates: list[dict[str, Any]], workers: int = 1
) -> tuple[list[Trial], int]:
    """Run the candidates (in ``workers`` processes, contiguous shares, results in order);
    sets the strategy itself rejects are dropped and counted as skipped.

    Strategies with vectorized signals run in this process whatever ``workers`` says: the
    parallel kernel already spreads their trials over every core (numba threads), and
    forked processes would only compete for them.
    """
    items = list(enumerate(candidates))
    workers = max(1, min(int(workers), len(items)))
    if workers > 1 and runner.compiled:
        log.debug("compiled strategy: %d trials on the kernel's threads, not in %d processes",
                  len(items), workers)  # fmt: skip
        workers = 1
    if workers == 1:
        ran = run_chunk(runner, items)
    else:
        bounds = np.linspace(0, len(items), workers + 1).astype(int)
        shares = [items[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        parts = run_in_workers(run_chunk, [(runner, s) for s in shares], workers)
        ran = [t for part in parts for t in part]
    kept = [t for t in ran if t.state != SKIPPED]
    if len(kept) < len(ran):
        first = next(t for t in ran if t.state == SKIPPED)
        log.warning(
            "%d parameter set(s) rejected by the strategy, e.g. %s",
            len(ran) - len(kept),
            first.reason,
        )
    for number, trial in enumerate(kept):  # numbers count the trials that ran
        trial.number = number
    return kept, len(ran) - len(kept)


def _context() -> mp.context.BaseContext:
    """fork where available: workers inherit the registered strategies (plugins included);
    spawn once this process has loaded GNU OpenMP (xgboost, parts of scikit-learn), whose
    runtime aborts a forked child that uses it ("fork() called from a process already using
    GNU OpenMP"), e.g. in a notebook that trained a model before optimizing."""
    methods = mp.get_all_start_methods()
    if "fork" in methods and not _openmp_loaded():
        return mp.get_context("fork")
    return mp.get_context("spawn")


def _openmp_loaded() -> bool:
    try:
        return "libgomp" in Path("/proc/self/maps").read_text(errors="replace")
    except OSError:  # not Linux: no way to tell, and fork is not the default there anyway
        return False


def run_in_workers(fn: Callable[..., Any], calls: Sequence[tuple], workers: int) -> list:
    """``fn(*args)`` for each ``args`` of ``calls`` in ``workers`` processes, results in order.

    Each call travels pickled and is unpickled inside the call: a call whose objects the
    worker cannot rebuild (a plugin it could not load) fails with that error, where a pool
    unpickling it would lose the worker, replace it and wait forever.
    """
    blobs = [pickle.dumps((fn, tuple(args))) for args in calls]
    with _pool(workers) as pool:
        return pool.map(_call_pickled, blobs, chunksize=1)


def _call_pickled(blob: bytes) -> Any:
    fn, args = pickle.loads(blob)
    return fn(*args)


@contextlib.contextmanager
def _pool(workers: int):
    from cryptoai import plugins

    ctx = _context()
    if ctx.get_start_method() == "fork":
        pool = ctx.Pool(workers)
    else:  # a fresh interpreter: load this process's plugins before any work arrives
        pool = ctx.Pool(workers, initializer=plugins.load_targets, initargs=(plugins.loaded(),))
    try:
        yield pool
        pool.close()
    finally:
        pool.terminate()
        pool.join()


# --------------------------------------------------------------------------- optuna


def default_storage() -> str:
    """``CRYPTOAI_OPTUNA_STORAGE`` when set, else ``optuna.db`` (SQLite) at the repo root."""
    env = os.environ.get(STORAGE_ENV, "").strip()
    if env:
        return env
    from cryptoai.paths import repo_root

    return f"sqlite:///{(repo_root() / 'optuna.db').as_posix()}"


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    rest = url[len("sqlite:///") :].split("?", 1)[0]
    return None if rest in ("", ":memory:") else Path(rest)


def open_storage(url: str):
    """An Optuna RDB storage, its tables created once even when workers start together.

    On a new SQLite file two processes creating the schema at once race on
    ``alembic_version``; creation happens under a file lock beside the database, and a
    process that still loses the race (another machine, or a PostgreSQL server, where
    ``CREATE TABLE`` collides as a duplicate key or an existing relation) tries again.
    """
    import optuna
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    kwargs: dict[str, Any] = {}
    db = _sqlite_file(url)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}

    def create():
        store = optuna.storages.RDBStorage(url, **kwargs)
        if db is not None:
            _fast_sqlite(store)
        return store

    lock = contextlib.nullcontext()
    if db is not None:
        from filelock import FileLock

        lock = FileLock(str(db) + ".lock", timeout=120)
    try:
        with lock:
            for attempt in range(_CREATE_TRIES):
                try:
                    return create()
                except (IntegrityError, OperationalError, ProgrammingError) as exc:
                    # Another process (another machine, on a server database) created the
                    # schema between our check and our CREATE: its tables now exist.
                    if not _schema_race(exc) or attempt == _CREATE_TRIES - 1:
                        raise
                    log.info("optuna storage created by another process meanwhile; retrying")
    except (IntegrityError, OperationalError, ProgrammingError) as exc:
        raise BadInputError(
            f"cannot open the Optuna storage {_redact(url)}: {type(exc).__name__}: {exc.orig}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a bad URL or an unreachable server
        if isinstance(exc, BadInputError):
            raise
        raise BadInputError(
            f"cannot open the Optuna storage {_redact(url)}: {type(exc).__name__}: {exc};"
            " check --storage or CRYPTOAI_OPTUNA_STORAGE"
        ) from None


_CREATE_TRIES = 5


def _schema_race(exc: Exception) -> bool:
    """Whether a storage error is another process's schema creation winning the race."""
    text = str(exc).lower()
    return any(
        sign in text
        for sign in ("alembic_version", "already exists", "duplicate key", "unique constraint")
    )


def _fast_sqlite(store) -> None:
    """WAL journal with normal sync: commits stop waiting on fsync (each trial commits a
    handful of times) and readers no longer block the writer of another worker."""
    from sqlalchemy import event

    def pragmas(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    event.listen(store.engine, "connect", pragmas)
    store.engine.dispose()  # connections made from here on get the pragmas


def _redact(url: str) -> str:
    """The URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _sampler(name: str, seed: int):
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


def _trial_seeded(name: str, seed: int):
    """A sampler whose draws for trial N come from a sampler seeded by (seed, N).

    Trial numbers are unique within a study, so processes sharing one (``--workers``,
    other machines with the same config and seed) never draw the same sequence, while one
    process on a fresh study stays reproducible. A seed per process would not do: two
    processes started together see the same study and would pick the same seed.
    """
    import optuna

    class TrialSeeded(optuna.samplers.BaseSampler):
        def __init__(self) -> None:
            self._number, self._inner = None, None

        def _for(self, trial):
            if trial.number != self._number:
                state = np.random.SeedSequence([seed, trial.number]).generate_state(1)[0]
                self._number, self._inner = trial.number, _sampler(name, int(state))
            return self._inner

        def infer_relative_search_space(self, study, trial):
            return self._for(trial).infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):
            return self._for(trial).sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            inner = self._for(trial)
            return inner.sample_independent(study, trial, param_name, param_distribution)

        def before_trial(self, study, trial) -> None:
            self._for(trial).before_trial(study, trial)

        def after_trial(self, study, trial, state, values) -> None:
            self._for(trial).after_trial(study, trial, state, values)

    return TrialSeeded()


def _suggest(trial, dim: Dimension) -> Any:
    if not dim.is_range:
        return trial.suggest_categorical(dim.name, list(dim.values))
    if dim.kind == "int":
        return trial.suggest_int(
            dim.name, int(dim.low), int(dim.high), step=int(dim.step or 1), log=dim.log
        )
    return trial.suggest_float(dim.name, dim.low, dim.high, step=dim.step, log=dim.log)


@dataclass(frozen=True)
class StudyShare:
    """One worker's share of a shared study: what its loop (``optimize_share``) reads."""

    storage: str
    study: str
    sampler: str
    seed: int  # draws are seeded per trial number (_trial_seeded), not per worker
    n_trials: int  # the study's target total
    quota: int  # this worker's share


@dataclass(frozen=True, kw_only=True)
class OptunaJob(StudyShare):
    """One optuna worker's instructions for a strategy search (picklable)."""

    runner: TrialRunner
    dims: tuple[Dimension, ...]
    constraints: tuple[Constraint, ...]

    def objective(self, trial) -> float:
        import optuna

        params = {d.name: _suggest(trial, d) for d in self.dims}
        if not satisfies(params, self.constraints):
            trial.set_user_attr("skipped", "breaks a constraint")
            raise optuna.TrialPruned("breaks a constraint")
        # the same path as the parent's re-run (run_chunk): the same numbers to the last bit
        result = run_chunk(self.runner, [(trial.number, params)])[0]
        # one attribute (each is a commit): who ran it and how it ended
        trial.set_user_attr(
            "cryptoai", {"worker": os.getpid(), "state": result.state, "reason": result.reason}
        )
        if result.state == SKIPPED:
            raise optuna.TrialPruned(result.reason)
        if result.value is None:
            return float("nan")  # optuna records the trial as FAIL
        return result.value


def run_optuna_worker(job: OptunaJob) -> int:
    """Run up to ``job.quota`` trials (stopping early when the study reached its total)."""
    optimize_share(job, job.objective)
    return job.quota


def optimize_share(job, objective, pruner=None) -> None:
    """One worker's loop: up to ``job.quota`` trials of ``objective`` on the shared study,
    draws seeded per trial number, stopping once the study holds ``job.n_trials``.

    ``job`` is a `StudyShare` (an `OptunaJob`, or the model search's job); ``pruner`` is not kept in the storage, so
    each process passes its own (it reads the other trials' reports from the storage).
    """
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(
        study_name=job.study,
        storage=open_storage(job.storage),
        sampler=_trial_seeded(job.sampler, job.seed),
        pruner=pruner,
    )
    finished = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
    study.optimize(
        objective,
        n_trials=job.quota,
        callbacks=[optuna.study.MaxTrialsCallback(job.n_trials, states=finished)],
        gc_after_trial=False,
    )


def worker_quotas(remaining: int, workers: int) -> list[int]:
    """``remaining`` trials split as evenly as possible over ``workers`` processes."""
    return [remaining // workers + (i < remaining % workers) for i in range(workers)]


def study_signature(runner: TrialRunner, dims: Sequence[Dimension], extra: dict) -> dict:
    """What must match for trials of an existing study to be comparable with this search."""
    from cryptoai.fingerprint import frame_fingerprint

    return {
        "data_fingerprint": frame_fingerprint(runner.data),
        "strategy": runner.strategy,
        "space": {d.name: d.describe() for d in dims},
        **extra,
    }


def run_optuna(
    runner: TrialRunner,
    dims: Sequence[Dimension],
    constraints: Sequence[Constraint],
    *,
    storage: str | None,
    study: str,
    sampler: str,
    seed: int,
    n_trials: int,
    direction: str,
    workers: int = 1,
    signature: dict | None = None,
) -> SearchOutcome:
    """Bring study ``study`` up to ``n_trials`` finished trials, in ``workers`` processes."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    url = storage or default_storage()
    store = open_storage(url)
    try:
        obj = optuna.create_study(
            study_name=study, storage=store, direction=direction, load_if_exists=True
        )
    except Exception as exc:  # noqa: BLE001 - e.g. a direction clash
        raise BadInputError(f"cannot create or load study {study!r}: {exc}") from None
    sig = json.loads(json.dumps(signature or {}, default=str))
    old = obj.user_attrs.get("signature")
    if old is None:
        obj.set_user_attr("signature", sig)
    elif old != sig:
        changed = sorted(k for k in set(old) | set(sig) if old.get(k) != sig.get(k))
        raise BadInputError(
            f"study {study!r} in {_redact(url)} holds trials of a different search (changed:"
            f" {', '.join(changed)}): pass --study NEW_NAME, or delete the study"
        )
    if obj.direction.name.lower() != direction:
        raise BadInputError(
            f"study {study!r} was created to {obj.direction.name.lower()}: pass --study NEW_NAME"
        )
    finished = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
    done = len(obj.get_trials(deepcopy=False, states=finished))
    remaining = max(0, n_trials - done)
    workers = max(1, min(int(workers), remaining or 1))
    if remaining:
        log.info("optuna study %s: %d trial(s) done, running %d more", study, done, remaining)
        quotas = worker_quotas(remaining, workers)
        jobs = [
            OptunaJob(
                url,
                study,
                sampler,
                seed,
                n_trials,
                q,
                runner=runner,
                dims=tuple(dims),
                constraints=tuple(constraints),
            )  # fmt: skip
            for q in quotas
        ]
        if workers == 1:
            run_optuna_worker(jobs[0])
        else:
            store.engine.dispose()  # no pooled connection crosses the fork
            run_in_workers(run_optuna_worker, [(job,) for job in jobs], workers)
    else:
        log.info("optuna study %s already has %d finished trial(s): nothing to run", study, done)
    obj = optuna.load_study(study_name=study, storage=open_storage(url))
    all_trials = obj.get_trials(deepcopy=False, states=finished)
    n_new = len(all_trials) - done
    items: list[tuple[int, dict[str, Any]]] = []
    skipped = 0
    for ft in sorted(all_trials, key=lambda t: t.number):
        if ft.state == TrialState.PRUNED:
            skipped += 1
            continue
        if ft.state == TrialState.FAIL and "cryptoai" not in ft.user_attrs:
            continue  # interrupted (or crashed) before it finished: not a result
        items.append((ft.number, ft.params))
    trials = run_chunk(runner, items)  # re-run here: metrics and returns, whoever ran them
    importance = _importance(obj) if len(trials) >= 2 else None
    return SearchOutcome(
        trials, skipped, n_new, study=study, storage=_redact(url), importance=importance
    )


def _importance(study) -> dict[str, float] | None:
    """Optuna's fANOVA importance of each parameter (None when it cannot be computed)."""
    import optuna

    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        values = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except Exception as exc:  # noqa: BLE001 - too few distinct trials, one-valued params
        log.info("parameter importance unavailable: %s", exc)
        return None
    return {k: float(v) for k, v in values.items()}
