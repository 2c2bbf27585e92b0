"""``run_optimization``: config in, search, statistics, stable region, report, MLflow run out.

The order matters for honest, repeatable results: the config is checked in full before any
data is loaded; the data's fingerprint keys the trial ledger; every trial uses the config's
execution settings (costs on); results.json is written without timestamps so the same
config and seed give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptoai.optimize.config import SMOKE_BARS, OptimizeConfig, resolve_config, smoke_config
from cryptoai.optimize.recording import (
    best_of,
    dump_config_text,
    record_ledger,
    repo_reports,
    track_run,
)
from cryptoai.optimize.results import (
    OptimizationResult,
    dumps,
    output_dir,
    report_markdown,
    trials_frame,
    write_yaml,
)
from cryptoai.optimize.trials import COMPLETE, TrialRunner

log = logging.getLogger(__name__)

#: Nested MLflow runs (one per trial) only for sweeps smaller than this.


def load_data(cfg: OptimizeConfig):
    """The OHLCV frame the config names (the smoke run keeps its last ``SMOKE_BARS``)."""
    from cryptoai.modeling.training import load_training_data

    frame = load_training_data(cfg.data)
    if cfg.smoke:
        frame = frame.iloc[-SMOKE_BARS:]
    return frame


def run_optimization(
    config: str | Path | dict | OptimizeConfig,
    *,
    out: str | Path | None = None,
    storage: str | None = None,
    study: str | None = None,
    n_trials: int | None = None,
    workers: int = 1,
    smoke: bool = False,
    tracking: bool = True,
    clock: Callable[[], dt.date] | None = None,
    reports_root: str | Path | None = None,
    checkpoints_root: str | Path | None = None,
) -> OptimizationResult:
    """Run the optimization a config describes and write its report.

    ``out``: the report folder (default ``reports/NAME_YYYYMMDD[_N]/``, the date from
    ``clock``); ``storage``/``study``: the Optuna storage URL and study name (default
    ``CRYPTOAI_OPTUNA_STORAGE`` or ``optuna.db``, and the config's name); ``n_trials``
    overrides the config; ``workers`` processes share the trials; ``smoke`` runs a tiny
    version in seconds; ``tracking`` records the MLflow run and the trial ledger.
    ``strategy: model`` configs tune a model (``cryptoai.optimize.model``, in ``workers``
    processes too); the best model is saved under ``checkpoints_root`` (default
    ``models/checkpoints``).
    """
    from cryptoai.fingerprint import frame_fingerprint
    from cryptoai.seeds import seed_everything

    cfg, source = resolve_config(config)
    if n_trials is not None:
        cfg = resolve_config(cfg.model_copy(update={"n_trials": int(n_trials)}).model_dump())[0]
    if smoke and not cfg.smoke:
        cfg = smoke_config(cfg)
    today = (clock or dt.date.today)()
    seed_everything(cfg.seed)
    if cfg.is_model:
        from cryptoai.optimize.model import run_model_optimization

        return run_model_optimization(
            cfg,
            source,
            out=out,
            storage=storage,
            study=study,
            workers=workers,
            tracking=tracking,
            today=today,
            reports_root=reports_root,
            checkpoints_root=checkpoints_root,
        )
    data = load_data(cfg)
    fingerprint = frame_fingerprint(data)
    lookahead = _lookahead_check(cfg, data)
    runner = TrialRunner(
        data=data,
        strategy=cfg.strategy,
        fixed=dict(cfg.params),
        settings=cfg.settings(),
        metric=cfg.objective.metric,
        min_trades=cfg.min_trades,
    )
    log.info(
        "optimizing %s on %d bars (%s, data %s)", cfg.strategy, len(data), cfg.method, fingerprint
    )
    search = _search(cfg, runner, storage, study, workers)
    trials = search["trials"]
    ppy = _ppy(data)
    best_trial = best_of(trials, cfg.objective.maximize)
    wf = search.get("walk_forward")

    if wf is None:
        from cryptoai.optimize.significance import sweep_statistics
        from cryptoai.optimize.stability import stable_region

        statistics = sweep_statistics(trials, best_trial, ppy)
        region = stable_region(
            trials, cfg.dimensions, maximize=cfg.objective.maximize, grid=cfg.method == "grid"
        )
        by_number = {t.number: t for t in trials}
        stable = None
        if region is not None:
            st = by_number[region["number"]]
            stable = {
                "params": st.params,
                "metrics": st.metrics,
                "neighbours": region["neighbours"],
                "score": region["score"],
                "best_neighbourhood_median": region["best_neighbourhood_median"],
                "best_falloff": region["best_falloff"],
            }
        best = (
            None
            if best_trial is None
            else {
                "number": best_trial.number,
                "params": best_trial.params,
                "metrics": best_trial.metrics,
            }
        )
    else:
        statistics, best, stable = wf["statistics"], wf["best"], None
    statistics["n_skipped"] = search["n_skipped"]
    statistics["lookahead_check"] = lookahead
    if search.get("importance") is not None:
        statistics["importance"] = search["importance"]

    result = OptimizationResult(
        config=cfg,
        trials=trials,
        best=best,
        stable=stable,
        statistics=statistics,
        walk_forward=None if wf is None else wf["record"],
        study=search.get("study"),
        storage=search.get("storage"),
    )
    n_run = search["n_new"]
    if tracking:
        result.ledger = record_ledger(fingerprint, n_run, cfg, trials, best_trial, ppy, search)
    root = Path(reports_root) if reports_root else repo_reports()
    folder = Path(out) if out is not None else output_dir(root, cfg.name, today)
    folder.mkdir(parents=True, exist_ok=True)
    result.out_dir = folder
    _write_outputs(result, data, wf, search)
    if tracking:
        result.run_id = track_run(result, source, fingerprint, today)
    return result


def _ppy(data) -> float:
    from cryptoai.backtest.metrics import periods_per_year

    return periods_per_year(data.index)


def _search(cfg: OptimizeConfig, runner: TrialRunner, storage, study, workers) -> dict[str, Any]:
    from cryptoai.optimize import search as s

    dims, cons = cfg.dimensions, cfg.parsed_constraints
    if cfg.method in ("grid", "random"):
        if cfg.method == "grid":
            candidates, rejected = s.grid_candidates(dims, cons)
        else:
            candidates, rejected = s.random_candidates(dims, cons, cfg.n_trials, cfg.seed)
        if rejected:
            log.info("%d combination(s) break a constraint: skipped, not run", rejected)
        trials, invalid = s.run_candidates(runner, candidates, workers)
        return {"trials": trials, "n_skipped": rejected + invalid, "n_new": len(trials)}
    if cfg.method == "optuna":
        name = study or (f"{cfg.name}-smoke" if cfg.smoke else cfg.name)
        signature = s.study_signature(
            runner,
            dims,
            {
                "constraints": list(cfg.constraints),
                "objective": cfg.objective.model_dump(),
                "min_trades": cfg.min_trades,
                "backtest": runner.settings.to_dict(),
                "params": dict(cfg.params),
            },
        )
        outcome = s.run_optuna(
            runner,
            dims,
            cons,
            storage=storage,
            study=name,
            sampler=cfg.sampler,
            seed=cfg.seed,
            n_trials=cfg.n_trials,
            direction=cfg.objective.direction,
            workers=workers,
            signature=signature,
        )
        return {
            "trials": outcome.trials,
            "n_skipped": outcome.n_skipped,
            "n_new": outcome.n_new,
            "study": outcome.study,
            "storage": outcome.storage,
            "importance": outcome.importance,
        }
    return _walk_forward(cfg, runner, workers)


def _walk_forward(cfg: OptimizeConfig, runner: TrialRunner, workers: int) -> dict[str, Any]:
    from cryptoai.backtest.metrics import compute_metrics
    from cryptoai.optimize import walk_forward as w
    from cryptoai.optimize.significance import oos_sharpe_probability, sweep_statistics
    from cryptoai.optimize.trials import bar_returns

    wf = cfg.walk_forward
    windows, stitched = w.walk_forward(
        runner,
        cfg.dimensions,
        cfg.parsed_constraints,
        n_splits=wf.n_splits,
        test_size=wf.test_size,
        train_size=wf.train_size,
        anchored=wf.anchored,
        inner=wf.inner,
        n_trials=cfg.n_trials,
        seed=cfg.seed,
        maximize=cfg.objective.maximize,
        workers=workers,
    )
    data = runner.data
    ppy = _ppy(data)
    per_window = []
    for win in windows:
        st = sweep_statistics(win.trials, w.best_trial(win.trials, cfg.objective.maximize), ppy)
        per_window.append(st)
    trials = [t for win in windows for t in win.trials]
    oos_metrics = compute_metrics(stitched, ppy)
    eff = w.efficiency(windows)

    def mean_of(key: str) -> float | None:
        vals = [s[key] for s in per_window if s.get(key) is not None]
        return float(sum(vals) / len(vals)) if vals else None

    statistics = {
        "n_trials": len(trials),
        "n_complete": sum(t.state == COMPLETE for t in trials),
        "n_failed": sum(t.state != COMPLETE for t in trials),
        "n_windows": len(windows),
        "deflated_sharpe": mean_of("deflated_sharpe"),
        "pbo": mean_of("pbo"),
        "expected_max_sharpe": mean_of("expected_max_sharpe"),
        "expected_max_sharpe_annualized": mean_of("expected_max_sharpe_annualized"),
        "best_sharpe_annualized": oos_metrics.get("sharpe"),
        "walk_forward_efficiency": eff,
        "oos_probabilistic_sharpe": oos_sharpe_probability(bar_returns(stitched)),
        "by_window": [
            {k: s.get(k) for k in ("deflated_sharpe", "pbo", "expected_max_sharpe", "n_trials")}
            for s in per_window
        ],
    }
    last = next((win.params for win in reversed(windows) if win.params is not None), None)
    record = {
        "windows": [w.window_record(data, win) for win in windows],
        "efficiency": eff,
        "oos_metrics": oos_metrics,
        "inner": wf.inner,
        "anchored": wf.anchored,
    }
    return {
        "trials": trials,
        "n_skipped": 0,
        "n_new": len(trials),
        "walk_forward": {
            "statistics": statistics,
            "best": {"params": last, "metrics": oos_metrics, "out_of_sample": True},
            "record": record,
            "stitched": stitched,
            "windows": windows,
        },
    }


def _write_outputs(result: OptimizationResult, data, wf, search) -> None:
    from cryptoai.backtest.runner import run_backtest, run_strategy
    from cryptoai.optimize import plots

    cfg = result.config
    folder = result.out_dir
    names = list(cfg.space)
    files: dict[str, Path] = {}
    if wf is None:
        if search.get("importance") is not None:
            result.statistics["importance_method"] = "fanova"
        else:
            result.statistics["importance"] = plots.variance_importance(result.trials, names)
            result.statistics["importance_method"] = "variance"
    files["results"] = folder / "results.json"
    files["results"].write_text(dumps(result.results()))
    frame = trials_frame(result.trials, names)
    frame.to_csv(folder / "trials.csv", index=False)
    files["trials"] = folder / "trials.csv"
    full_best = None if result.best_params is None else {**cfg.params, **result.best_params}
    files["best_params"] = write_yaml(
        folder / "best_params.yaml",
        {"strategy": cfg.strategy, "params": full_best, "objective": cfg.objective.model_dump()},
    )
    files["config"] = folder / "config.yaml"
    files["config"].write_text(dump_config_text(cfg))
    if result.ledger is not None:
        (folder / "ledger.json").write_text(dumps(result.ledger))
        files["ledger"] = folder / "ledger.json"

    plot_files: dict[str, str] = {}
    metric = cfg.objective.metric
    chosen = bench = None
    if wf is not None:
        chosen = wf["stitched"]
        first = wf["windows"][0].train_end
        bench = run_strategy(
            data.iloc[first:], "buy_and_hold", settings=cfg.settings(), validate=False
        )
        title = "walk-forward out-of-sample equity vs buy and hold"
    elif full_best is not None:
        chosen, bench = run_backtest(data, cfg.strategy, full_best, cfg.settings())
        title = f"best parameters {result.best_params} vs buy and hold"
    if chosen is not None:
        chosen.trades.to_csv(folder / "trades.csv", index=False)
        files["trades"] = folder / "trades.csv"
        plot_files["equity"] = plots.save(
            plots.equity(chosen, bench, title), folder / "equity.png"
        ).name
    plot_files["history"] = plots.save(
        plots.history(result.trials, metric, cfg.objective.maximize), folder / "history.png"
    ).name
    if wf is None:
        plot_files["heatmap"] = plots.save(
            plots.heatmaps(result.trials, names, metric), folder / "heatmap.png"
        ).name
        imp, method = result.statistics["importance"], result.statistics["importance_method"]
        plot_files["importance"] = plots.save(
            plots.importance(imp, method), folder / "importance.png"
        ).name
    report = report_markdown(result, plot_files)
    (folder / "report.md").write_text(report)
    files["report"] = folder / "report.md"
    files |= {k: folder / v for k, v in plot_files.items()}
    result.files = files


def _lookahead_check(cfg: OptimizeConfig, data) -> str:
    """Check a plugin strategy (or any, when asked) for lookahead before trading it hundreds
    of times: a leak refuses the whole search. Returns what the report says about it."""
    from cryptoai.strategies import check_lookahead, get_strategy

    builtin = get_strategy(cfg.strategy).__module__.startswith("cryptoai.")
    if cfg.check_lookahead is False:
        return "not run (turned off)"
    if cfg.check_lookahead is None and builtin:
        return "not run (built-in strategy, proven in the tests)"
    report = check_lookahead(cfg.strategy, data, dict(cfg.params)).raise_if_failed()
    return f"passed ({report.n_points} sampled decision bars, {report.mode})"
