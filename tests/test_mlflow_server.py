"""The real ``mlflow server`` over a SQLite store serves what cryptoai logged, over its REST API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import requests

from cryptoai import tracking

STUDY = "server-check"
TEMPLATE = {
    "experiment_id": "EXP-777",
    "owner": "ana",
    "date": "2025-03-04",
    "objective": "the UI's server shows what the runner logged",
    "dataset": "synthetic BTC/USDT 1h 2024-01-01..2024-02-01",
    "config_file": "configs/experiments/server_check.yaml",
    "model": "logreg (classification), direction h=1",
    "metrics": ["model.balanced_accuracy", "backtest.sharpe"],
}
PARENT_METRICS = {"model.balanced_accuracy": 0.5125, "backtest.sharpe": -0.75}
CHILD_METRICS = {"balanced_accuracy": 0.5125, "log_loss": 0.6931}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory):
    """A SQLite store holding one experiment run with a nested notebook run."""
    root = tmp_path_factory.mktemp("mlflow-server")
    uri = f"sqlite:///{root}/mlflow.db"
    previous = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.delenv(tracking.ARTIFACT_ROOT_ENV, raising=False)
        common = {"config": {"name": "server_check"}, "seeds": {"global": 7}}
        with tracking.tracked_run(
            STUDY, TEMPLATE, data_fingerprint="abc123", run_name="EXP-777 server_check", **common
        ) as parent:
            with tracking.tracked_run(
                STUDY,
                TEMPLATE,
                data_fingerprint="abc123",
                run_name="03-model-prototyping",
                nested=True,
                **common,
            ) as child:
                mlflow.log_metrics(CHILD_METRICS)
            mlflow.log_metrics(PARENT_METRICS)
        yield root, uri, parent.info.run_id, child.info.run_id
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def server(populated):
    """``mlflow server`` from this environment on a free loopback port; stopped afterwards."""
    root, uri, _, _ = populated
    port = _free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow_bin), "server", "--backend-store-uri", uri]
    cmd += ["--default-artifact-root", (root / "mlartifacts").as_uri()]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # slow to import on a busy 2-core machine
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited with {proc.returncode}: {_tail(root)}")
            try:
                if requests.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer /health in time: {_tail(root)}")
            time.sleep(0.5)
        yield base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


def _tail(root: Path) -> str:
    return (root / "server.log").read_text(errors="replace")[-2000:]


def test_health(server):
    response = requests.get(f"{server}/health", timeout=10)
    assert response.status_code == 200 and response.text.strip() == "OK"


def test_experiment_and_runs_over_rest(server, populated):
    _, _, parent_id, child_id = populated
    got = requests.get(
        f"{server}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": STUDY},
        timeout=30,
    )
    assert got.status_code == 200, got.text
    experiment = got.json()["experiment"]
    assert experiment["name"] == STUDY and experiment["lifecycle_stage"] == "active"

    found = requests.post(
        f"{server}/api/2.0/mlflow/runs/search",
        json={"experiment_ids": [experiment["experiment_id"]], "max_results": 100},
        timeout=30,
    )
    assert found.status_code == 200, found.text
    runs = {r["info"]["run_id"]: r for r in found.json()["runs"]}
    assert set(runs) == {parent_id, child_id}

    def metrics(run) -> dict[str, float]:
        return {m["key"]: m["value"] for m in run["data"].get("metrics", [])}

    def tags(run) -> dict[str, str]:
        return {t["key"]: t["value"] for t in run["data"].get("tags", [])}

    parent, child = runs[parent_id], runs[child_id]
    assert metrics(parent) == PARENT_METRICS
    assert metrics(child) == CHILD_METRICS
    assert parent["info"]["status"] == child["info"]["status"] == "FINISHED"
    assert tags(child)["mlflow.parentRunId"] == parent_id
    assert "mlflow.parentRunId" not in tags(parent)
    assert tags(parent)["mlflow.runName"] == "EXP-777 server_check"
    for key in ("experiment_id", "owner", "objective", "dataset", "config_file", "model"):
        assert tags(parent)[f"template.{key}"] == TEMPLATE[key]
    assert tags(parent)["data.fingerprint"] == "abc123"
    params = {p["key"]: p["value"] for p in parent["data"]["params"]}
    assert params["seed.global"] == "7" and params["config.name"] == "server_check"


def test_search_filters_on_the_server(server, populated):
    """The UI's filters run server-side: a metric filter returns only the matching run."""
    _, _, parent_id, _ = populated
    eid = requests.get(
        f"{server}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": STUDY},
        timeout=30,
    ).json()["experiment"]["experiment_id"]
    found = requests.post(
        f"{server}/api/2.0/mlflow/runs/search",
        json={"experiment_ids": [eid], "filter": "metrics.`backtest.sharpe` < 0"},
        timeout=30,
    )
    assert found.status_code == 200, found.text
    assert [r["info"]["run_id"] for r in found.json()["runs"]] == [parent_id]
