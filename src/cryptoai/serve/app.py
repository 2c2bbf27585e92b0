"""The prediction service: FastAPI over one registered model, run by uvicorn.

``create_app("models:/NAME@champion")`` loads the model and returns the app:

- ``POST /predict``: candles in, one prediction per candle out (what ``cryptoai.predict``
  returns on the same candles; NaN becomes ``null``).
- ``GET /health``: status, model name/version/alias, uptime (open to everyone).
- ``GET /metrics``: Prometheus text from a registry of this app's own.
- ``POST /admin/reload``: re-resolve the alias and swap the model in place.

Every endpoint but ``/health`` needs an ``X-API-Key`` when keys are configured; each key
(or each client address, without keys) has a token bucket; bodies over the limit get 413;
bad candles get 422 with a ``detail`` that names the problem. One structured log line per
request: method, path, status, latency, key id (a hash, never the key).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.datastructures import Headers

from cryptoai.errors import CryptoaiError
from cryptoai.serve._wire import read_candles, request_schema, values_response_bytes
from cryptoai.serve.auth import HEADER, check_key, key_id, keys_from_env
from cryptoai.serve.ratelimit import RateLimiter
from cryptoai.serve.runtime import Predictor, load_predictor

logger = logging.getLogger(__name__)
access_log = logging.getLogger("cryptoai.serve.access")

DEFAULT_MAX_BODY = 2_000_000  # bytes: ~10,000 candles
OPEN_PATHS = frozenset({"/health"})
ENDPOINTS = frozenset({"/predict", "/health", "/metrics", "/admin/reload"})


class ModelInfo(BaseModel):
    name: str
    version: int
    alias: str | None


class PredictResponse(BaseModel):
    model: ModelInfo
    label: str
    predictions: list[dict[str, str | float | None]]


class HealthResponse(BaseModel):
    status: str
    model: ModelInfo
    uptime_s: float


class _Metrics:
    """This app's Prometheus collectors, on a registry of its own (many apps per process)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cryptoai_requests",
            "HTTP requests by endpoint, method and status",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "cryptoai_request_latency_seconds",
            "Request latency by endpoint",
            ["endpoint"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.errors = Counter(
            "cryptoai_errors",
            "Responses with status >= 400, by endpoint and kind (client, server)",
            ["endpoint", "kind"],
            registry=self.registry,
        )
        self.model_version = Gauge(
            "cryptoai_model_version",
            "Version of the registered model being served",
            ["name", "alias"],
            registry=self.registry,
        )
        self.predictions = Counter(
            "cryptoai_predicted_candles", "Candles predicted", registry=self.registry
        )

    def set_model(self, p: Predictor) -> None:
        self.model_version.clear()
        self.model_version.labels(p.name, p.alias or "").set(p.version)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _State:
    def __init__(self, model: str, predictor: Predictor, clock: Callable[[], float]) -> None:
        self.model_uri = model
        self.predictor = predictor
        self.clock = clock
        self.started = clock()
        self.reload_lock = threading.Lock()
        self.metrics = _Metrics()
        self.metrics.set_model(predictor)


def create_app(
    model: str,
    *,
    api_keys: tuple[str, ...] | list[str] | None = None,
    rate_limit: str = "60/minute",
    max_body_bytes: int = DEFAULT_MAX_BODY,
    clock: Callable[[], float] = time.monotonic,
    loader: Callable[[str], Predictor] = load_predictor,
) -> FastAPI:
    """The service for registry URI ``model`` (loaded now, so a bad URI fails before serving).

    ``api_keys`` default to ``CRYPTOAI_API_KEYS``; ``clock`` drives uptime and the rate limit.
    """
    keys = keys_from_env() if api_keys is None else tuple(k for k in api_keys if k)
    limiter = RateLimiter(rate_limit, clock=clock)
    state = _State(model, loader(model), clock)
    app = FastAPI(
        title="cryptoai prediction service",
        version="1",
        description="Predictions of a registered cryptoai model on OHLCV candles.",
    )
    app.state.service = state

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        return JSONResponse(
            {"detail": _describe(errors), "errors": _plain_errors(errors)}, status_code=422
        )

    @app.exception_handler(CryptoaiError)
    async def _bad_input(request: Request, exc: CryptoaiError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses={401: {}, 413: {}, 422: {}, 429: {}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": request_schema()}},
            }
        },
    )
    async def predict_endpoint(request: Request) -> Response:
        """Predictions for every candle (``null`` during the model's warm-up)."""
        # the body is parsed here, not by a declared model: see cryptoai.serve._wire
        candles = read_candles(await request.body(), request.headers.get("content-type"))
        predictor = state.predictor
        args = (candles.times, candles.columns, lambda: candles.frame)
        if predictor.plan is not None:  # about a ms: on the event loop, no thread hand-off
            values = predictor.predict_columns(*args)
        else:  # forests, sequence models: a thread, so they never stall /health
            values = await run_in_threadpool(predictor.predict_columns, *args)
        state.metrics.predictions.inc(len(values))
        info, label, names = predictor.info(), predictor.label, predictor.outputs
        body = values_response_bytes(info, label, names, values, candles)
        return Response(body, media_type="application/json")

    @app.get("/health", response_model=HealthResponse)
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": state.predictor.info(),
            "uptime_s": round(state.clock() - state.started, 3),
        }

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        from prometheus_client import CONTENT_TYPE_LATEST

        return PlainTextResponse(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/admin/reload", responses={401: {}, 403: {}})
    def reload() -> dict[str, Any]:
        """Re-resolve the model URI (its alias) and swap the served model without a restart."""
        if not keys:
            raise HTTPException(403, "admin endpoints need API keys: set CRYPTOAI_API_KEYS")
        with state.reload_lock:
            previous = state.predictor.info()
            fresh = loader(state.model_uri)
            state.predictor = fresh  # one reference swap: requests in flight keep the old one
            state.metrics.set_model(fresh)
        logger.info("reloaded %s: v%s -> v%s", state.model_uri, previous["version"], fresh.version)
        return {"previous": previous, "model": fresh.info()}

    app.add_middleware(_Guard, state=state, keys=keys, limiter=limiter, max_body=max_body_bytes)
    return app


def _describe(errors: list[dict[str, Any]]) -> str:
    """The first validation error as one line: where (``candles[3].open``) and what."""
    if not errors:
        return "invalid request"
    first = errors[0]
    loc = [p for p in first.get("loc", ()) if p != "body"]
    where = ""
    for part in loc:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where or 'body'}: {first.get('msg', 'invalid')}{more}"


def _plain_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in errors[:20]
    ]


# ------------------------------------------------------------------ the gate in front
class _BodyTooLarge(HTTPException):
    pass


class _Guard:
    """Auth, rate limit, body limit, metrics and the access log, around every request.

    A plain ASGI middleware: it sees each request before FastAPI parses anything, counts the
    body as it streams (``Content-Length`` is checked up front, chunked bodies as they come),
    and records the status that was actually sent.
    """

    def __init__(
        self, app: Any, *, state: _State, keys: tuple[str, ...], limiter: RateLimiter, max_body: int
    ) -> None:
        self.app, self.state, self.keys = app, state, keys
        self.limiter, self.max_body = limiter, max_body

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope.get("path", "")
        endpoint = path if path in ENDPOINTS else "other"
        headers = Headers(scope=scope)
        key = headers.get(HEADER)
        status = {"code": 500}

        async def send_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            early = self._gate(path, headers, key, scope)
            if early is not None:
                await early(scope, receive, send_status)
            else:
                await self.app(scope, self._counted(receive), send_status)
        finally:
            self._record(scope, endpoint, status["code"], started, key)

    def _gate(self, path: str, headers: Headers, key: str | None, scope: dict) -> Any:
        if path in OPEN_PATHS:
            return None
        if self.keys and not check_key(key, self.keys):
            detail = f"missing {HEADER} header" if not key else f"invalid {HEADER}"
            return JSONResponse({"detail": detail}, status_code=401)
        who = key_id(key) if self.keys else f"ip:{(scope.get('client') or ('?',))[0]}"
        allowed, retry = self.limiter.allow(who)
        if not allowed:
            return JSONResponse(
                {"detail": f"rate limit exceeded: retry in {retry} s"},
                status_code=429,
                headers={"Retry-After": str(retry)},
            )
        length = headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                return JSONResponse({"detail": "bad Content-Length header"}, status_code=400)
            if too_big:
                return _too_large(self.max_body)
        return None

    def _counted(self, receive: Callable) -> Callable:
        seen = 0
        limit = self.max_body

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge(413, f"request body over {limit} bytes")
            return message

        return counted

    def _record(
        self, scope: dict, endpoint: str, code: int, started: float, key: str | None
    ) -> None:
        elapsed = time.perf_counter() - started
        m = self.state.metrics
        method = scope.get("method", "")
        m.requests.labels(endpoint, method, str(code)).inc()
        m.latency.labels(endpoint).observe(elapsed)
        if code >= 400:
            m.errors.labels(endpoint, "server" if code >= 500 else "client").inc()
        access_log.info(
            json.dumps(
                {
                    "event": "request",
                    "method": method,
                    "path": scope.get("path", ""),
                    "status": code,
                    "latency_ms": round(elapsed * 1000, 3),
                    "key_id": key_id(key),
                    "model_version": self.state.predictor.version,
                },
                sort_keys=True,
            )
        )


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body over {limit} bytes"}, status_code=413)
