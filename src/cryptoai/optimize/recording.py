"""What every optimization records, strategy or model: the reports folder, the best trial,
the trial ledger entry, the resolved config's text and the MLflow run. Shared by the strategy
runner and the model search so that neither imports the other."""

from __future__ import annotations

import datetime as dt
import getpass
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptoai.optimize.results import SHOWN_METRICS, trials_frame

if TYPE_CHECKING:
    from cryptoai.optimize.config import OptimizeConfig
    from cryptoai.optimize.results import OptimizationResult
    from cryptoai.optimize.trials import Trial

#: Below this many trials each one is also a nested MLflow run; above, a logged table.
NESTED_RUNS_BELOW = 50


def repo_reports() -> Path:
    from cryptoai.paths import repo_root

    return repo_root() / "reports"


def best_of(trials: list[Trial], maximize: bool) -> Trial | None:
    from cryptoai.optimize.walk_forward import best_trial

    return best_trial(trials, maximize)


def record_ledger(fingerprint, n_run, cfg, trials, best_trial, ppy, search) -> dict[str, Any]:
    """Record this sweep's trials for the data; the totals so far, and the deflated Sharpe
    by all of them."""
    from cryptoai.optimize.ledger import ledger_total, record_sweep
    from cryptoai.optimize.significance import sweep_statistics

    before, sweeps = ledger_total(fingerprint)
    record_sweep(
        fingerprint,
        n_run,
        {"optimize.name": cfg.name, "optimize.method": cfg.method, "strategy": cfg.strategy},
    )
    total = before + n_run
    out: dict[str, Any] = {
        "experiment": "cryptoai-trial-ledger",
        "data_fingerprint": fingerprint,
        "n_trials_this_sweep": n_run,
        "n_trials_before": before,
        "n_trials_total": total,
        "n_sweeps_total": sweeps + 1,
    }
    if search.get("walk_forward") is None and total > 0:
        st = sweep_statistics(trials, best_trial, ppy, n_trials_total=max(total, len(trials)))
        out["deflated_sharpe"] = st.get("ledger_deflated_sharpe")
        out["expected_max_sharpe"] = st.get("ledger_expected_max_sharpe")
    return out


def dump_config_text(cfg: OptimizeConfig) -> str:
    from cryptoai.config import dump_config

    return dump_config(cfg)


def dataset_text(cfg: OptimizeConfig) -> str:
    d = cfg.data
    if d.file:
        return d.file
    return f"{d.source}:{d.symbol}:{d.timeframe}:{d.start or ''}..{d.end or ''}"


def track_run(result: OptimizationResult, source: str, fingerprint: str, today: dt.date) -> str:
    """One MLflow run: template fields, best metrics and statistics, the trials table, the
    report folder as artifacts; a nested run per trial for small sweeps."""
    import mlflow
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    from cryptoai.tracking import set_backtest_summary, tracked_run

    cfg = result.config
    metric = cfg.objective.metric
    template = {
        "experiment_id": cfg.name,
        "owner": cfg.owner or getpass.getuser(),
        "date": today.isoformat(),
        "objective": f"{cfg.objective.direction} {metric} of {cfg.strategy} ({cfg.method})",
        "dataset": dataset_text(cfg),
        "config_file": source,
        "model": f"strategy:{cfg.strategy}",
        "metrics": [metric, "deflated_sharpe", "pbo"],
        "notes": cfg.notes,
    }
    tags = {"optimize.method": cfg.method, "optimize.smoke": str(cfg.smoke).lower()}
    if result.study:
        tags |= {"optimize.study": result.study, "optimize.storage": result.storage or ""}
    with tracked_run(
        cfg.experiment,
        template,
        config=cfg.model_dump(mode="json"),
        seeds={"optimize": cfg.seed},
        data_fingerprint=fingerprint,
        run_name=cfg.name,
        tags=tags,
    ) as run:
        client = MlflowClient()
        run_id = run.info.run_id
        values: dict[str, float] = {}
        if result.best:
            values |= {f"best.{k}": v for k, v in result.best["metrics"].items()}
        if result.stable:
            values |= {f"stable.{k}": v for k, v in result.stable["metrics"].items()}
        values |= {f"stats.{k}": v for k, v in result.statistics.items()}
        if result.ledger:
            values |= {f"ledger.{k}": v for k, v in result.ledger.items()}
        metrics = [
            Metric(k.replace("@", "_"), float(v), 0, 0)
            for k, v in values.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        ]
        client.log_batch(run_id, metrics=metrics)
        if result.best_params:
            client.log_batch(
                run_id, params=[Param(f"best.{k}", str(v)) for k, v in result.best_params.items()]
            )
        table = trials_frame(result.trials, list(cfg.space)).astype(object)
        table = table.where(table.notna(), None)
        mlflow.log_table(data=table, artifact_file="trials.json")
        if result.best:
            m = result.best["metrics"]
            set_backtest_summary(
                ", ".join(f"{k} {m.get(k)}" for k in SHOWN_METRICS if k in m)
                + f"; deflated Sharpe {result.statistics.get('deflated_sharpe')}"
                + f", PBO {result.statistics.get('pbo')}"
            )
        if len(result.trials) < NESTED_RUNS_BELOW:
            exp = run.info.experiment_id
            for t in result.trials:
                child = client.create_run(
                    exp,
                    run_name=f"trial-{t.number}",
                    tags={"mlflow.parentRunId": run_id, "optimize.state": t.state},
                )
                client.log_batch(
                    child.info.run_id,
                    metrics=[
                        Metric(k, float(v), 0, 0)
                        for k, v in t.metrics.items()
                        if isinstance(v, int | float) and math.isfinite(v)
                    ],
                    params=[Param(k, str(v)) for k, v in t.params.items()],
                    tags=[RunTag("optimize.trial", str(t.number))],
                )
                client.set_terminated(child.info.run_id, "FINISHED")
        client.log_artifacts(run_id, str(result.out_dir), "report")
    return run_id
