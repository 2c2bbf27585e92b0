"""Latency and throughput of ``/predict`` for a 500-candle request, against ``mlflow models
serve`` doing the same work on the same model and payload.

    python benchmarks/bench_serve.py [--requests 500] [--concurrency 4] [--time-limit 60]

A small logreg direction model (``configs/features/minimal.yaml``, synthetic 1h BTC/USDT) is
trained with tracking into a temporary SQLite MLflow store and registered. Then, each in
its own process on 127.0.0.1, one worker each:

* ``cryptoai serve`` (FastAPI under uvicorn, no API keys, rate limit lifted):
  ``POST /predict`` with 500 raw candles; the service validates them and rebuilds the
  features itself.
* ``mlflow models serve --env-manager local`` on a pyfunc logged into the same store whose
  ``predict`` takes the raw candle frame and calls the same registered model through
  ``cryptoai``'s runtime ``Predictor`` (contract check, feature rebuild, warm-up): the same
  work, and the same 500 candles posted to ``/invocations`` as ``dataframe_records``. The
  pyfunc is logged without a signature, so MLflow's server adds no schema check of its own.
* ``mlflow models serve`` on the registered model itself, a second row: the client sends the
  *features* of the same candles (``dataframe_split``, computed before timing), since a
  plain pyfunc takes model inputs, not candles. Less work for the server than the others.

Payloads: sliding 500-candle windows over a longer series, one window per request in the
same order for every server (nothing can be answered from a cache of earlier requests), each
serialized before timing. Each server gets ``--warmup`` requests, then ``--requests``
sequential ones (latency p50 and p99 in ms: the client's round trip on one keep-alive
connection of the standard library's ``http.client``, lighter than httpx, so less of it is
the client's own time) and ``--requests`` more from ``--concurrency`` client threads, one
connection each (throughput in requests/s), bounded by ``--time-limit`` seconds per server.
On two CPUs or more the server runs on CPU 0 and the client on CPU 1 (``--no-pin`` to
share them), the same for every server, so neither the client's work nor the moves
between cores land in a server's latency. Before timing, the wrapper's answer on one window
is checked to equal cryptoai's. Results go to ``docs/performance_serve.md``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
N_CANDLES = 500
SERVER_CPU, CLIENT_CPU = 0, 1  # with --pin (the default on 2+ CPUs)
NAME = "bench-serve"
JSON = {"Content-Type": "application/json"}
OHLCV = ("open", "high", "low", "close", "volume")
CRYPTOAI = "cryptoai serve (FastAPI/uvicorn): raw candles"
MLFLOW_RAW = "mlflow models serve, pyfunc wrapping cryptoai: raw candles (like for like)"
MLFLOW_FEATURES = "mlflow models serve, registered model: features precomputed by the client"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(tmp: Path) -> tuple[str, object]:
    from cryptoai.modeling.training import TrainConfig, load_training_data, train
    from cryptoai.tracking.registry import register_model

    cfg = TrainConfig.model_validate(
        {
            "name": "bench-serve",
            "data": {
                "source": "synthetic",
                "symbol": "BTC/USDT",
                "timeframe": "1h",
                "start": "2023-01-01",
                "end": "2023-04-01",
                "store_root": str(tmp / "raw"),
            },
            "features": str(ROOT / "configs" / "features" / "minimal.yaml"),
            "target": {"kind": "direction", "horizon": 1},
            "model": {"name": "logreg", "params": {"C": 0.5}},
            "validation": {"n_splits": 2, "test_size": 200},
            "seed": 1,
            "output_dir": str(tmp / "runs"),
            "tracking": {"experiment": "bench-serve"},
        }
    )
    result = train(cfg, progress=False)
    register_model(result.model_uri, NAME, alias="champion")
    return result.model_uri, load_training_data(cfg.data)


# ------------------------------------------------------------------ the like-for-like pyfunc
def _log_candle_pyfunc(model_uri: str) -> str:
    """Log a pyfunc that takes raw candles and predicts with the registered model through
    cryptoai's runtime ``Predictor``; returns its model URI."""
    import mlflow

    from cryptoai.serve.runtime import load_predictor

    class CandlePredictor(mlflow.pyfunc.PythonModel):
        """Candle records in (``timestamp`` plus OHLCV), cryptoai's predictions out."""

        def __init__(self, predictor) -> None:
            self.predictor = predictor

        def predict(self, context, model_input, params=None):
            import pandas as pd

            index = pd.DatetimeIndex(
                pd.to_datetime(model_input["timestamp"], utc=True), name="timestamp"
            ).as_unit("ns")
            frame = pd.DataFrame(
                {c: model_input[c].to_numpy(dtype="float64") for c in OHLCV}, index=index
            )
            return self.predictor.predict(frame).reset_index(drop=True)

    mlflow.set_experiment("bench-serve")
    with mlflow.start_run(run_name="candle-pyfunc"):
        info = mlflow.pyfunc.log_model(
            name="candles", python_model=CandlePredictor(load_predictor(model_uri))
        )
    return info.model_uri


# ------------------------------------------------------------------ payloads
def _candles(df) -> list[dict]:
    return [
        {"timestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), **{c: float(r[c]) for c in OHLCV}}
        for ts, r in zip(df.index, df[list(OHLCV)].to_dict("records"), strict=True)
    ]


def _payloads(ohlcv, n: int) -> dict[str, list[bytes]]:
    """``n`` sliding windows of ``N_CANDLES`` (one bar apart), serialized for each server."""
    from cryptoai.features.engineering import build_features

    spec = ROOT / "configs" / "features" / "minimal.yaml"
    starts = [i % (len(ohlcv) - N_CANDLES + 1) for i in range(n)]
    out: dict[str, list[bytes]] = {CRYPTOAI: [], MLFLOW_RAW: [], MLFLOW_FEATURES: []}
    for s in starts:
        window = ohlcv.iloc[s : s + N_CANDLES]
        candles = _candles(window)
        out[CRYPTOAI].append(json.dumps({"candles": candles}).encode())
        out[MLFLOW_RAW].append(json.dumps({"dataframe_records": candles}).encode())
        X = build_features(window, spec).fillna(0.0)  # warm-up rows: a pyfunc has no notion
        split = json.loads(X.to_json(orient="split", index=False))
        out[MLFLOW_FEATURES].append(json.dumps({"dataframe_split": split}).encode())
    return out


# ------------------------------------------------------------------ measuring
def _wait(url: str, proc: subprocess.Popen, limit: float) -> bool:
    import httpx

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    return False


class _Connection:
    """One keep-alive HTTP/1.1 connection (the standard library's client: a lighter client
    than httpx, so less of the round trip is the client's own time, for every server)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.path = parts.path
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def post(self, body: bytes) -> int:
        self.conn.request("POST", self.path, body=body, headers=JSON)
        response = self.conn.getresponse()
        response.read()
        return response.status

    def close(self) -> None:
        self.conn.close()


def _measure(url: str, bodies: list[bytes], args) -> dict:
    deadline = time.monotonic() + args.time_limit
    feed = iter(bodies)
    conn = _Connection(url)
    try:
        for _ in range(args.warmup):
            if conn.post(next(feed)) != 200:
                raise RuntimeError(f"{url}: a warm-up request failed")
        lat = []
        for _ in range(args.requests):
            if time.monotonic() > deadline:
                break
            body = next(feed)
            t = time.perf_counter()
            status = conn.post(body)
            lat.append(time.perf_counter() - t)
            if status != 200:
                raise RuntimeError(f"{url}: answered {status}")
    finally:
        conn.close()

    rest = [next(feed) for _ in range(args.requests)]
    chunks = [rest[i :: args.concurrency] for i in range(args.concurrency)]

    def client(chunk: list[bytes]) -> int:  # one connection per client thread
        own = _Connection(url)
        try:
            return sum(own.post(b) == 200 for b in chunk if time.monotonic() < deadline)
        finally:
            own.close()

    t = time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        ok = sum(pool.map(client, chunks))
    wall = time.perf_counter() - t
    ms = np.array(lat) * 1e3
    return {
        "n": len(lat),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "throughput": ok / wall if wall > 0 else float("nan"),
        "n_concurrent": ok,
    }


def _same_answers(ours: dict, theirs: dict) -> bool:
    """cryptoai's ``/predict`` records against MLflow's ``{"predictions": [...]}``."""
    mine, other = ours.get("predictions", []), theirs.get("predictions", [])
    if not mine or len(mine) != len(other):
        return False
    for a, b in zip(mine, other, strict=True):
        for col in ("proba_up", "score"):
            x = math.nan if a[col] is None else a[col]
            y = math.nan if b[col] is None else b[col]
            if not (x == y or (math.isnan(x) and math.isnan(y))):
                return False
    return True


class _Server:
    """One server process, its stderr in a file (a pipe nobody reads would fill and stall it)."""

    def __init__(self, cmd: list[str], env: dict, health: str, log: Path, args) -> None:
        self.cmd, self.env, self.health, self.log, self.args = cmd, env, health, log, args

    def __enter__(self) -> str | None:
        self._err = self.log.open("wb")
        pin = self.args.pin
        self.proc = subprocess.Popen(
            self.cmd,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self._err,
            # the server (and any worker it starts) on CPU 0, before anything runs
            preexec_fn=(lambda: os.sched_setaffinity(0, {SERVER_CPU})) if pin else None,
        )
        if _wait(self.health, self.proc, self.args.start_limit):
            return None
        tail = " ".join(self.log.read_text(errors="replace").split())[-160:].replace("|", "/")
        return f"did not start within {self.args.start_limit:.0f} s: {tail or 'no error output'}"

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._err.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--start-limit", type=float, default=90.0)
    ap.add_argument("--no-mlflow", action="store_true", help="skip mlflow models serve")
    ap.add_argument(
        "--no-pin", dest="pin", action="store_false",
        help="do not put the server on CPU 0 and the client on CPU 1",
    )  # fmt: skip
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "performance_serve.md")
    args = ap.parse_args(argv)
    args.pin = args.pin and (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity")

    import httpx

    results: dict[str, dict | str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{(tmp / 'mlflow.db').as_posix()}"}
        env.pop("CRYPTOAI_API_KEYS", None)
        # mlflow starts its scoring server as `uvicorn ...`: the venv's bin must be on PATH
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        os.environ["MLFLOW_TRACKING_URI"] = env["MLFLOW_TRACKING_URI"]
        model_uri, ohlcv = _train(tmp)
        candle_pyfunc = _log_candle_pyfunc(f"models:/{NAME}/1")
        payloads = _payloads(ohlcv, args.warmup + 2 * args.requests)
        if args.pin:  # from here on the client runs on its own CPU
            os.sched_setaffinity(0, {CLIENT_CPU})
        mlflow_bin = str(Path(sys.executable).with_name("mlflow"))

        port = _port()
        base = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "cryptoai", "serve", "--model", f"models:/{NAME}@champion",
               "--port", str(port), "--rate-limit", "1000000/second"]  # fmt: skip
        with _Server(cmd, env, f"{base}/health", tmp / "cryptoai.log", args) as failed:
            ours = httpx.post(f"{base}/predict", content=payloads[CRYPTOAI][0], headers=JSON,
                              timeout=30).json()  # fmt: skip
            results[CRYPTOAI] = failed or _measure(f"{base}/predict", payloads[CRYPTOAI], args)

        servers = [] if args.no_mlflow else [(MLFLOW_RAW, candle_pyfunc), (MLFLOW_FEATURES, None)]
        for label, uri in servers:
            port = _port()
            base = f"http://127.0.0.1:{port}"
            cmd = [mlflow_bin, "models", "serve", "-m", uri or f"models:/{NAME}/1",
                   "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port),
                   "--workers", "1"]  # fmt: skip
            with _Server(cmd, env, f"{base}/ping", tmp / "mlflow.log", args) as failed:
                if failed:
                    results[label] = failed
                    continue
                if uri is not None:
                    theirs = httpx.post(
                        f"{base}/invocations",
                        content=payloads[label][0],
                        headers=JSON,
                        timeout=30,
                    ).json()
                    if not _same_answers(ours, theirs):
                        results[label] = "answers differ from cryptoai serve's: not timed"
                        continue
                results[label] = _measure(f"{base}/invocations", payloads[label], args)
    _write(args, results)
    return 0


def _write(args, results: dict) -> None:
    versions = {}
    for dist in ("fastapi", "uvicorn", "httptools", "orjson", "mlflow"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    lines = [
        "# Serving performance: `/predict` latency and throughput",
        "",
        "Generated by `python benchmarks/bench_serve.py` (see its docstring for the method).",
        f"One request = {N_CANDLES} candles, a different sliding window each time (the same"
        " sequence for every server). Sequential requests for latency (the round trip of a"
        " keep-alive `http.client` connection),"
        f" {args.concurrency} client threads for throughput, {args.requests} requests each,"
        f" at most {args.time_limit:.0f} s per server, after {args.warmup} warm-up requests."
        " One server worker each; client and server share the machine"
        + (
            f", the server pinned to CPU {SERVER_CPU} and the client to CPU {CLIENT_CPU}"
            " (both servers alike)."
            if args.pin
            else "."
        ),
        "",
        "| server | work per request | requests | p50 (ms) | p99 (ms) | throughput (req/s) |",
        "|---|---|---|---|---|---|",
    ]
    work = {
        CRYPTOAI: "parse, OHLCV checks, features, predict",
        MLFLOW_RAW: "parse, OHLCV checks, features, predict (same `Predictor`)",
        MLFLOW_FEATURES: "parse features, predict",
    }
    for name, r in results.items():
        if isinstance(r, str):
            lines.append(f"| {name} | {work[name]} | {r} | | | |")
        else:
            lines.append(
                f"| {name} | {work[name]} | {r['n']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
                f" {r['throughput']:.1f} |"
            )
    ours, theirs = results.get(CRYPTOAI), results.get(MLFLOW_RAW)
    if isinstance(ours, dict) and isinstance(theirs, dict):
        lines += [
            "",
            f"Like for like, MLflow's p99 is {theirs['p99_ms'] / ours['p99_ms']:.1f}x cryptoai's"
            f" (p50: {theirs['p50_ms'] / ours['p50_ms']:.1f}x).",
        ]
        lines[1:1] = [
            "",
            f"Summary: a 500-candle /predict at p50 {ours['p50_ms']:.1f} ms, p99"
            f" {ours['p99_ms']:.1f} ms; MLflow's scoring server doing the same work"
            f" {theirs['p50_ms']:.1f} / {theirs['p99_ms']:.1f} ms (p99 goal: 5x lower).",
        ]
    lines += [
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python"
        f" {platform.python_version()}; " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        "",
    ]
    text = "\n".join(lines)
    if args.out.exists():  # keep the hand-written notes below the generated part
        old = args.out.read_text()
        marker = "\n## "
        if marker in old:
            text += "\n" + old[old.index(marker) + 1 :]
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    raise SystemExit(main())
