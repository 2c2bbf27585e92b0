"""``strategy: model``: tune a model's hyper-parameters (and the ``model_signal`` thresholds
that trade it) under the training config's purged walk-forward validation.

One trial is one parameter set: the model is fitted on each fold's training bars and
predicts its test block, exactly as ``train()`` does; the objective is a model metric (the
mean over folds, e.g. ``roc_auc``) or a backtest metric (``compute_metrics`` of the stitched
out-of-sample predictions traded with ``model_signal`` and the config's costs). Optuna's
MedianPruner stops a trial after fold k when its running objective is worse than the median
of earlier trials at fold k (``trial.report(value, k)``, ``trial.should_prune()``).

Every finished trial is also backtested on the same out-of-sample bars, so the statistics
are those of strategy sweeps: PBO over the trials' per-bar returns, and the deflated Sharpe
ratio of the best trial when the objective is the Sharpe ratio (a trial chosen by ROC AUC
was not chosen by its Sharpe ratio, so deflating that would answer another question).
The best trial's final model (fitted on every labelled bar) is pickled with its parameters
in ``models/checkpoints/<study>/``.

With ``workers`` > 1 the trials run in that many forked processes on the shared study
(``search.optimize_share``: draws seeded per trial number, pruning reading every process's
fold reports from the storage); each hands back what its trials produced, and the parent
lists the study's trials from the storage and fits the checkpoint itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cryptoai.errors import BadInputError
from cryptoai.optimize.config import (
    MODEL,
    MODEL_METRICS,
    PRUNED,
    check_model_config,
    model_dimensions,
    resolve_train_config,
    split_params,
)
from cryptoai.optimize.search import StudyShare
from cryptoai.optimize.trials import COMPLETE, FAILED, SKIPPED, Trial, bar_returns

if TYPE_CHECKING:
    from cryptoai.optimize.config import OptimizeConfig  # noqa: F401 - annotations
    from cryptoai.optimize.results import OptimizationResult

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ trials
@dataclass
class ModelEvaluator:
    """Everything a model trial needs besides its parameters: the data set, the folds."""

    cfg: OptimizeConfig
    tcfg: Any
    ohlcv: pd.DataFrame
    X: pd.DataFrame
    y: pd.Series
    forward: pd.Series
    splits: list
    #: per trial number: the stitched out-of-sample predictions and their backtest
    outputs: dict[int, tuple[pd.DataFrame, Any]] = field(default_factory=dict)
    #: in a worker process: the threads a model may use (its ``n_jobs`` / ``num_threads``)
    threads: int | None = None

    @property
    def model_metric(self) -> bool:
        return self.cfg.objective.metric in MODEL_METRICS[self.tcfg.task]

    def trial_config(self, model_params: Mapping[str, Any]):
        data = self.tcfg.model_dump()
        data["model"]["params"] = {**self.tcfg.model.params, **model_params}
        return type(self.tcfg).model_validate(data)

    def _running(self, parts: list[pd.DataFrame], signal_params: dict) -> float | None:
        """The objective over the folds so far: the mean of the fold metrics, or the
        backtest metric of the predictions so far."""
        from cryptoai.modeling.evaluation import aggregate_metrics, evaluate_predictions

        metric = self.cfg.objective.metric
        if self.model_metric:
            per_fold = [evaluate_predictions(p, self.tcfg.task, self.forward) for p in parts]
            value = aggregate_metrics(per_fold).get(f"{metric}_mean")
        else:
            from cryptoai.modeling.evaluation import stitch_oos

            _, m = self._backtest(stitch_oos(parts), signal_params)
            value = m.get(metric)
        return float(value) if value is not None and math.isfinite(value) else None

    def _backtest(self, oos: pd.DataFrame, signal_params: dict):
        from cryptoai.backtest.metrics import compute_metrics
        from cryptoai.backtest.runner import run_strategy
        from cryptoai.research.robustness import backtest_window, prediction_signal
        from cryptoai.strategies.model_signal import ModelSignal

        bars = backtest_window(self.ohlcv, oos)
        signal = prediction_signal(oos)
        strat = ModelSignal(predictions=signal, **{**self.cfg.params, **signal_params})
        result = run_strategy(bars, strat, settings=self.cfg.settings(), validate=False)
        return result, compute_metrics(result)

    def run(self, number: int, params: Mapping[str, Any], trial=None) -> Trial:
        """Fit and score one parameter set fold by fold; with an optuna ``trial``, report
        the running objective after each fold and stop when the pruner says so."""
        from cryptoai.modeling.evaluation import fold_scores, stitch_oos
        from cryptoai.modeling.splits import walk_forward_predict
        from cryptoai.modeling.training import HEADLINE, build_model
        from cryptoai.optimize.trials import judge
        from cryptoai.strategies.model_signal import ModelSignal

        params = dict(params)
        model_p, signal_p = split_params(params)
        try:
            ModelSignal(**{**self.cfg.params, **signal_p})
            tcfg = self.trial_config(model_p)
            model = build_model(tcfg)
        except (BadInputError, ValueError) as exc:
            return Trial(number, params, {}, SKIPPED, reason=str(exc))
        if self.threads is not None:
            _cap_threads(model, self.threads)
        metric = self.cfg.objective.metric
        parts = []
        for k, split in enumerate(self.splits):
            part, _ = walk_forward_predict(model, self.X, self.y, [split], progress=False)
            part["fold"] = k
            parts.append(part)
            if trial is not None and k < len(self.splits) - 1:
                running = self._running(parts, signal_p)
                if running is not None:
                    trial.report(running, k)
                    if trial.should_prune():
                        return Trial(
                            number,
                            params,
                            {f"{metric}_running": running, "folds_run": k + 1},
                            PRUNED,
                            reason=f"pruned after fold {k} ({metric} {running:.4g})",
                        )
        oos = stitch_oos(parts)
        oos["forward_return"] = self.forward.reindex(oos.index)
        per_fold, aggregate = fold_scores(oos, tcfg.task, self.forward, len(self.splits))
        result, backtest = self._backtest(oos, signal_p)
        metrics = dict(backtest)
        for name in HEADLINE[tcfg.task] + ["ic_target"] * (tcfg.task == "regression"):
            if name in aggregate:
                metrics[f"model.{name}"] = aggregate[name]
                metrics[f"model.{name}_std"] = aggregate.get(f"{name}_std")
        metrics["folds_run"] = len(self.splits)
        returns = bar_returns(result)
        self.outputs[number] = (oos, result)
        if self.model_metric:
            value = aggregate.get(metric)
            ok = value is not None and math.isfinite(value)
            out = Trial(
                number,
                params,
                metrics,
                COMPLETE if ok else FAILED,
                value=float(value) if ok else None,
                reason="" if ok else f"{metric} is undefined ({value})",
                returns=returns,
            )
        else:
            out = judge(number, params, metrics, returns, metric, self.cfg.min_trades)
        if trial is not None and out.value is not None:
            trial.report(out.value, len(self.splits) - 1)
        return out


def _cap_threads(model, threads: int) -> None:
    """At most ``threads`` threads for a model that takes a thread count (``n_jobs``:
    forests, xgboost; ``num_threads``: sequence models), so N workers do not run N times
    the cores. A forest's output does not depend on it (``_forest_output``)."""
    given = model.get_params(deep=False)
    for name in ("n_jobs", "num_threads"):
        value = given.get(name)
        if name in given and (value is None or value < 1 or value > threads):
            model.set_params(**{name: threads})


# ------------------------------------------------------------------------------ search
def _signature(ev: ModelEvaluator) -> dict:
    from cryptoai.fingerprint import frame_fingerprint

    cfg = ev.cfg
    tc = ev.tcfg.model_dump(mode="json", exclude={"output_dir", "tracking", "name"})
    return json.loads(
        json.dumps(
            {
                "data_fingerprint": frame_fingerprint(ev.ohlcv),
                "strategy": MODEL,
                "train": tc,
                "space": {d.name: d.describe() for d in cfg.dimensions},
                "objective": cfg.objective.model_dump(),
                "min_trades": cfg.min_trades,
                "backtest": cfg.settings().to_dict(),
                "params": dict(cfg.params),
                "pruning": cfg.pruning.model_dump(),
            },
            default=str,
        )
    )


def _pruner(cfg: OptimizeConfig):
    import optuna

    p = cfg.pruning
    if not p.enabled:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps
    )


#: What a worker hands back per trial number: the trial, and its out-of-sample predictions
#: and backtest (absent for pruned and skipped trials).
Ran = dict[int, tuple[Trial, Any]]


@dataclass(frozen=True, kw_only=True)
class ModelJob(StudyShare):
    """One worker's share of a model search (picklable)."""

    ev: ModelEvaluator
    threads: int | None = None  # per-process thread budget (None: the process's own)


def run_model_worker(job: ModelJob) -> Ran:
    """Run up to ``job.quota`` trials of the study (pruning included) in this process and
    return what they produced, by trial number."""
    import optuna

    from cryptoai.optimize.search import _suggest, optimize_share

    cfg = job.ev.cfg
    ev = job.ev
    limits = contextlib.nullcontext()
    if job.threads is not None:
        from threadpoolctl import threadpool_limits

        ev = replace(job.ev, threads=job.threads, outputs={})
        for var in _THREAD_VARS:  # libraries this process initializes from here on
            os.environ[var] = str(job.threads)
        limits = threadpool_limits(job.threads)  # BLAS / OpenMP pools already loaded
    ran: Ran = {}

    def objective(trial) -> float:
        params = {d.name: _suggest(trial, d) for d in cfg.dimensions}
        result = ev.run(trial.number, params, trial)
        ran[trial.number] = (result, ev.outputs.pop(trial.number, None))
        trial.set_user_attr(
            "cryptoai", {"worker": os.getpid(), "state": result.state, "reason": result.reason}
        )
        if result.state in (PRUNED, SKIPPED):
            raise optuna.TrialPruned(result.reason)
        return float("nan") if result.value is None else result.value

    with limits:
        optimize_share(job, objective, pruner=_pruner(cfg))
    return ran


#: Thread-count variables of the numeric libraries a model may load in a worker.
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def run_model_search(
    ev: ModelEvaluator, *, storage: str | None, study: str, workers: int = 1
) -> dict[str, Any]:
    """Bring the study to ``n_trials`` finished trials, with pruning, in ``workers``
    processes sharing the storage (each with its share of the remaining trials)."""
    import optuna
    from optuna.trial import TrialState

    from cryptoai.optimize.search import (
        _importance,
        _redact,
        _trial_seeded,
        default_storage,
        open_storage,
        run_in_workers,
        worker_quotas,
    )

    cfg = ev.cfg
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    url = storage or default_storage()
    store = open_storage(url)
    try:
        obj = optuna.create_study(
            study_name=study,
            storage=store,
            direction=cfg.objective.direction,
            sampler=_trial_seeded(cfg.sampler, cfg.seed),
            pruner=_pruner(cfg),
            load_if_exists=True,
        )
    except Exception as exc:  # noqa: BLE001 - e.g. a direction clash
        raise BadInputError(f"cannot create or load study {study!r}: {exc}") from None
    sig = _signature(ev)
    old = obj.user_attrs.get("signature")
    if old is None:
        obj.set_user_attr("signature", sig)
    elif old != sig:
        changed = sorted(k for k in set(old) | set(sig) if old.get(k) != sig.get(k))
        raise BadInputError(
            f"study {study!r} in {_redact(url)} holds trials of a different search (changed:"
            f" {', '.join(changed)}): pass --study NEW_NAME, or delete the study"
        )
    if obj.direction.name.lower() != cfg.objective.direction:
        raise BadInputError(
            f"study {study!r} was created to {obj.direction.name.lower()}: pass --study NEW_NAME"
        )
    finished = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
    done = len(obj.get_trials(deepcopy=False, states=finished))
    remaining = max(0, cfg.n_trials - done)
    workers = max(1, min(int(workers), remaining or 1))
    ran: Ran = {}
    if remaining:
        log.info(
            "model study %s: %d trial(s) done, running %d more in %d process(es)",
            study,
            done,
            remaining,
            workers,
        )
        threads = None if workers == 1 else max(1, _cores() // workers)
        jobs = [
            ModelJob(url, study, cfg.sampler, cfg.seed, cfg.n_trials, q, ev=ev, threads=threads)
            for q in worker_quotas(remaining, workers)
        ]
        if workers == 1:
            ran = run_model_worker(jobs[0])
        else:
            store.engine.dispose()  # no pooled connection crosses the fork
            for part in run_in_workers(run_model_worker, [(job,) for job in jobs], workers):
                ran |= part
        obj = optuna.load_study(study_name=study, storage=open_storage(url))
    # the storage says which trials the study holds, whoever ran them
    trials: list[Trial] = []
    skipped = 0
    for ft in sorted(obj.get_trials(deepcopy=False, states=finished), key=lambda t: t.number):
        attrs = ft.user_attrs.get("cryptoai", {})
        if attrs.get("state") == SKIPPED:
            skipped += 1
            continue
        if ft.number in ran:
            trial, output = ran[ft.number]
            if output is not None:
                ev.outputs[ft.number] = output
            trials.append(trial)
        elif ft.state == TrialState.PRUNED:
            trials.append(
                Trial(ft.number, dict(ft.params), {}, PRUNED, reason=attrs.get("reason", ""))
            )
        elif "cryptoai" in ft.user_attrs:
            trials.append(ev.run(ft.number, ft.params))  # an earlier run's: evaluated again
    return {
        "trials": trials,
        "n_skipped": skipped,
        "n_new": len(ran),
        "workers": workers if remaining else 0,
        "study": study,
        "storage": _redact(url),
        "importance": _importance(obj) if sum(t.state == COMPLETE for t in trials) >= 2 else None,
    }


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


# ------------------------------------------------------------------------------ runner
def run_model_optimization(
    cfg: OptimizeConfig,
    source: str,
    *,
    out: str | Path | None,
    storage: str | None,
    study: str | None,
    tracking: bool,
    today: dt.date,
    reports_root: str | Path | None,
    checkpoints_root: str | Path | None,
    workers: int = 1,
) -> OptimizationResult:
    """The model search's counterpart of ``run_optimization`` (which calls it); ``workers``
    processes share the study's trials."""
    from cryptoai.backtest.metrics import periods_per_year
    from cryptoai.fingerprint import frame_fingerprint
    from cryptoai.modeling.training import build_dataset, load_training_data, plan_splits
    from cryptoai.optimize.recording import best_of, record_ledger, repo_reports, track_run
    from cryptoai.optimize.results import OptimizationResult, output_dir
    from cryptoai.optimize.significance import sweep_statistics

    tcfg, tfile = cfg.train_config
    ohlcv = load_training_data(tcfg.data)
    if tcfg.smoke:
        ohlcv = ohlcv.iloc[-tcfg.smoke_bars :]
    X, y, forward = build_dataset(ohlcv, tcfg, tfile)
    splits = plan_splits(tcfg, len(X))
    fingerprint = frame_fingerprint(ohlcv)
    ev = ModelEvaluator(cfg, tcfg, ohlcv, X, y, forward, splits)
    name = study or (f"{cfg.name}-smoke" if cfg.smoke else cfg.name)
    log.info(
        "tuning %s on %d rows, %d folds (data %s)",
        tcfg.model.name,
        len(X),
        len(splits),
        fingerprint,
    )
    search = run_model_search(ev, storage=storage, study=name, workers=workers)
    trials = search["trials"]
    best_trial = best_of(trials, cfg.objective.maximize)
    some = next(iter(ev.outputs.values()), None)
    ppy = periods_per_year(some[1].equity.index) if some else periods_per_year(ohlcv.index)
    statistics = sweep_statistics(trials, best_trial, ppy)
    statistics["n_pruned"] = sum(t.state == PRUNED for t in trials)
    statistics["n_skipped"] = search["n_skipped"]
    statistics["n_folds"] = len(splits)
    if cfg.objective.metric != "sharpe":
        statistics["deflated_sharpe"] = None
        statistics["deflated_sharpe_note"] = (
            f"trials were ranked by {cfg.objective.metric}, not by their Sharpe ratio: no"
            " deflated Sharpe ratio (use objective: sharpe for one)"
        )
    if search["importance"] is not None:
        statistics["importance"] = search["importance"]
    best = None
    if best_trial is not None:
        best = {
            "number": best_trial.number,
            "params": best_trial.params,
            "metrics": best_trial.metrics,
        }
    result = OptimizationResult(
        config=cfg,
        trials=trials,
        best=best,
        stable=None,
        statistics=statistics,
        study=search["study"],
        storage=search["storage"],
    )
    if tracking:
        result.ledger = record_ledger(
            fingerprint, search["n_new"], cfg, trials, best_trial, ppy, search
        )
    root = Path(reports_root) if reports_root else repo_reports()
    folder = Path(out) if out is not None else output_dir(root, cfg.name, today)
    folder.mkdir(parents=True, exist_ok=True)
    result.out_dir = folder
    ckpt_root = Path(checkpoints_root) if checkpoints_root else _repo_checkpoints()
    checkpoint = None
    if best_trial is not None:
        checkpoint = save_checkpoint(ev, best_trial, ckpt_root / name, fingerprint)
    _write_outputs(result, ev, best_trial, checkpoint, search["workers"])
    if tracking:
        result.run_id = track_run(result, source, fingerprint, today)
    return result


def _repo_checkpoints() -> Path:
    from cryptoai.paths import repo_root

    return repo_root() / "models" / "checkpoints"


def save_checkpoint(ev: ModelEvaluator, best: Trial, folder: Path, fingerprint: str) -> Path:
    """The best trial's model fitted on every labelled bar (``model.pkl``) and what made it
    (``params.yaml``: model, parameters, thresholds, objective, trial, data fingerprint)."""
    from cryptoai.modeling.training import _fit_final, build_model
    from cryptoai.optimize.results import write_yaml

    folder.mkdir(parents=True, exist_ok=True)
    model_p, signal_p = split_params(best.params)
    tcfg = ev.trial_config(model_p)
    model = _fit_final(tcfg, build_model(tcfg), ev.X, ev.y, folder)
    with open(folder / "model.pkl", "wb") as fh:
        pickle.dump(model, fh)
    write_yaml(
        folder / "params.yaml",
        {
            "model": tcfg.model.name,
            "task": tcfg.task,
            "params": dict(tcfg.model.params),
            "strategy": "model_signal",
            "signal_params": {**ev.cfg.params, **signal_p},
            "objective": {**ev.cfg.objective.model_dump(), "value": best.value},
            "trial": best.number,
            "features": tcfg.features,
            "target": tcfg.target.model_dump(mode="json"),
            "data_fingerprint": fingerprint,
        },
    )
    return folder


def _write_outputs(
    result, ev: ModelEvaluator, best: Trial | None, checkpoint, workers: int = 1
) -> None:
    from cryptoai.backtest.runner import run_strategy
    from cryptoai.optimize import plots
    from cryptoai.optimize.recording import dump_config_text
    from cryptoai.optimize.results import dumps, report_markdown, trials_frame, write_yaml

    cfg = result.config
    folder = result.out_dir
    names = list(cfg.space)
    stats = result.statistics
    if "importance" in stats:
        stats["importance_method"] = "fanova"
    else:
        stats["importance"] = plots.variance_importance(result.trials, names)
        stats["importance_method"] = "variance"
    if checkpoint is not None:
        result.statistics["checkpoint"] = Path(checkpoint).name  # no absolute paths
    files: dict[str, Path] = {"results": folder / "results.json"}
    files["results"].write_text(dumps(result.results()))
    trials_frame(result.trials, names).to_csv(folder / "trials.csv", index=False)
    files["trials"] = folder / "trials.csv"
    model_p, signal_p = split_params(best.params) if best else ({}, {})
    files["best_params"] = write_yaml(
        folder / "best_params.yaml",
        {
            "strategy": MODEL,
            "model": ev.tcfg.model.name,
            "params": None if best is None else {**ev.tcfg.model.params, **model_p},
            "signal_params": {**cfg.params, **signal_p},
            "objective": cfg.objective.model_dump(),
        },
    )
    files["config"] = folder / "config.yaml"
    files["config"].write_text(dump_config_text(cfg))
    if result.ledger is not None:
        (folder / "ledger.json").write_text(dumps(result.ledger))
        files["ledger"] = folder / "ledger.json"
    plot_files: dict[str, str] = {}
    if best is not None and best.number in ev.outputs:
        chosen = ev.outputs[best.number][1]
        bars = chosen.equity.index
        bench = run_strategy(
            ev.ohlcv.loc[bars[0] : bars[-1]],
            "buy_and_hold",
            settings=cfg.settings(),
            validate=False,
        )
        chosen.trades.to_csv(folder / "trades.csv", index=False)
        files["trades"] = folder / "trades.csv"
        ev.outputs[best.number][0].to_csv(folder / "predictions.csv")
        files["predictions"] = folder / "predictions.csv"
        title = f"best trial {best.number}: out-of-sample predictions traded vs buy and hold"
        plot_files["equity"] = plots.save(
            plots.equity(chosen, bench, title), folder / "equity.png"
        ).name
    metric = cfg.objective.metric
    plot_files["history"] = plots.save(
        plots.history(result.trials, metric, cfg.objective.maximize), folder / "history.png"
    ).name
    plot_files["importance"] = plots.save(
        plots.importance(stats["importance"], stats["importance_method"]),
        folder / "importance.png",
    ).name
    text = report_markdown(result, plot_files)
    text += (
        f"\n## Model\n\n`{ev.tcfg.model.name}` ({ev.tcfg.task}) on {len(ev.splits)} purged"
        f" walk-forward folds; {stats['n_pruned']} trial(s) pruned by the median rule; "
        + (
            f"this run's trials ran in {workers} worker process{'es' * (workers != 1)}."
            if workers
            else "no new trials (the study already had them all)."
        )
        + (f" Best model: `{checkpoint}`." if checkpoint is not None else "")
        + "\n"
    )
    (folder / "report.md").write_text(text)
    files["report"] = folder / "report.md"
    files |= {k: folder / v for k, v in plot_files.items()}
    result.files = files


def checkpoint_model(folder: str | Path):
    """The pickled best model of a model search (``models/checkpoints/<study>/``)."""
    with open(Path(folder) / "model.pkl", "rb") as fh:
        return pickle.load(fh)


__all__ = [
    "MODEL",
    "MODEL_METRICS",
    "ModelEvaluator",
    "checkpoint_model",
    "check_model_config",
    "model_dimensions",
    "resolve_train_config",
    "run_model_optimization",
    "save_checkpoint",
    "split_params",
]
