"""The trial ledger: how many trials every sweep ever ran on a dataset.

A sweep's deflated Sharpe ratio corrects for its own trials, but a researcher who ran ten
sweeps on the same data has tried ten times as many things. The ledger lives in the
tracking store, so a shared MLflow server shares it too: the MLflow experiment
``cryptoai-trial-ledger`` holds one run per sweep, tagged with the data's fingerprint
(`cryptoai.fingerprint.frame_fingerprint`), with the metric ``n_trials`` (trials that sweep
ran). A dataset's total is the sum over its runs.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

LEDGER_EXPERIMENT = "cryptoai-trial-ledger"
FINGERPRINT_TAG = "data.fingerprint"


def _experiment_id() -> str:
    """The ledger experiment's id, created on first use (another worker may race us)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from cryptoai.tracking import artifact_root, configure

    configure()
    client = MlflowClient()
    exp = client.get_experiment_by_name(LEDGER_EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    root = artifact_root()
    try:
        return client.create_experiment(
            LEDGER_EXPERIMENT, artifact_location=root and f"{root}/{LEDGER_EXPERIMENT}"
        )
    except MlflowException:
        exp = client.get_experiment_by_name(LEDGER_EXPERIMENT)
        if exp is None:
            raise
        return exp.experiment_id


def ledger_total(fingerprint: str) -> tuple[int, int]:
    """(trials, sweeps) recorded so far for the data with this fingerprint."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    exp = _experiment_id()
    total = sweeps = 0
    token = None
    while True:
        page = client.search_runs(
            [exp],
            filter_string=f"tags.`{FINGERPRINT_TAG}` = '{fingerprint}'",
            max_results=1000,
            page_token=token,
        )
        for run in page:
            total += int(run.data.metrics.get("n_trials", 0))
            sweeps += 1
        token = page.token
        if not token:
            return total, sweeps


def record_sweep(fingerprint: str, n_trials: int, tags: dict[str, Any]) -> str:
    """Add one sweep's trial count for this data; returns the ledger run id."""
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    all_tags = {FINGERPRINT_TAG: fingerprint, **{k: str(v) for k, v in tags.items()}}
    run = client.create_run(
        _experiment_id(), tags=all_tags, run_name=f"{tags.get('optimize.name', 'sweep')}"
    )
    client.log_batch(
        run.info.run_id,
        metrics=[Metric("n_trials", float(n_trials), 0, 0)],
        tags=[RunTag(k, v) for k, v in all_tags.items()],
    )
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id
