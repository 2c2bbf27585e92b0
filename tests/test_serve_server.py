"""The prediction service over real HTTP: uvicorn on 127.0.0.1 (in a thread, and the
``cryptoai serve`` command in a subprocess), and the OpenAPI schema fuzzed by schemathesis:
no generated input may get a 500."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from serve_support import WARMUP

import cryptoai
from cryptoai.serve.app import create_app

pytest_plugins = ("serve_support",)  # the shared registered model

KEY = "server-key-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, alive, timeout: float = 60.0) -> None:
    """Poll /health until it answers, the server dies, or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise AssertionError("server exited before it became ready")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            threading.Event().wait(0.05)  # next poll; bounded by the deadline
    raise AssertionError(f"server at {url} not ready in {timeout} s")


def _candles(df) -> list[dict]:
    return [
        {"timestamp": ts.isoformat().replace("+00:00", "Z"), **row}
        for ts, row in zip(
            df.index, df[["open", "high", "low", "close", "volume"]].to_dict("records"), strict=True
        )
    ]


@pytest.fixture
def server(registry):
    app = create_app(registry.uri, api_keys=[KEY], rate_limit="5/minute", max_body_bytes=20_000)
    port = _free_port()
    srv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, thread.is_alive)
        yield url
    finally:
        srv.should_exit = True
        thread.join(15)


def test_real_server_predicts_guards_and_limits(server, registry):
    df = registry.ohlcv.iloc[-40:]
    h = {"X-API-Key": KEY}
    with httpx.Client(base_url=server, timeout=30) as c:
        assert c.post("/predict", json={"candles": _candles(df)}).status_code == 401
        r = c.post("/predict", json={"candles": _candles(df)}, headers=h)
        assert r.status_code == 200, r.text
        expected = cryptoai.predict(df, model=registry.uri)
        got = [np.nan if p["proba_up"] is None else p["proba_up"] for p in r.json()["predictions"]]
        assert np.array_equal(got, expected["proba_up"].to_numpy(), equal_nan=True)
        assert sum(v is np.nan for v in got) == WARMUP
        r = c.post("/predict", json={"candles": _candles(registry.ohlcv.iloc[-400:])}, headers=h)
        assert r.status_code == 413
        r = c.post("/predict", json={"candles": _candles(df)[::-1]}, headers=h)
        assert r.status_code == 422 and "time order" in r.json()["detail"]
        assert c.get("/metrics", headers=h).status_code == 200  # 4 of 5 used (401s cost none)
        assert c.get("/metrics", headers=h).status_code == 200
        r = c.get("/metrics", headers=h)  # the 6th request of this key in a minute
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert c.get("/health").json()["model"]["version"] == 1


@pytest.mark.slow
def test_cryptoai_serve_command(registry):
    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": registry.tracking_uri, "CRYPTOAI_API_KEYS": KEY}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cryptoai",
            "serve",
            "--model",
            registry.uri,
            "--port",
            str(port),
            "--rate-limit",
            "100/minute",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, lambda: proc.poll() is None, timeout=90)
        body = {"candles": _candles(registry.ohlcv.iloc[-30:])}
        assert httpx.post(f"{url}/predict", json=body, timeout=30).status_code == 401
        r = httpx.post(f"{url}/predict", json=body, headers={"X-API-Key": KEY}, timeout=30)
        assert r.status_code == 200 and len(r.json()["predictions"]) == 30
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert '"path": "/predict"' in out and KEY not in out  # structured logs, no key


# --------------------------------------------------------------------- schema fuzzing
# schemathesis generates the requests from the app's OpenAPI schema (valid and invalid ones);
# hypothesis drives them directly (schemathesis' pytest plugin predates this pytest).


def _fuzz(op, mode, seen: dict[str, set[int]]):
    from hypothesis import HealthCheck, given, settings

    @settings(
        max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case):
        for headers in ({"X-API-Key": KEY}, {}):
            r = case.call(headers=headers)
            seen.setdefault(op.path, set()).add(r.status_code)
            assert r.status_code < 500, (case.body, r.status_code, r.text[:300])

    return run


@pytest.mark.slow
def test_no_generated_input_gets_a_500(registry):
    schemathesis = pytest.importorskip("schemathesis")
    from schemathesis import GenerationMode

    app = create_app(registry.uri, api_keys=[KEY], rate_limit="1000000/minute")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers={"X-API-Key": KEY})
    seen: dict[str, set[int]] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == {"/predict", "/health", "/metrics", "/admin/reload"}
    for op in operations:
        modes = [GenerationMode.POSITIVE]
        if op.path == "/predict":  # the only one with inputs to get wrong
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            _fuzz(op, mode, seen)()
    assert seen["/predict"] >= {401, 422}
    with TestClient(app) as c:  # still serving
        assert c.get("/health").status_code == 200
