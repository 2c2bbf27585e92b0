"""``cryptoai serve``: the prediction service (FastAPI under uvicorn) for a registered model."""

from __future__ import annotations

import gc
from typing import Annotated

import typer


def serve(
    model: Annotated[
        str, typer.Option("--model", help="registry URI, e.g. models:/btc-direction@champion")
    ],
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    rate_limit: Annotated[
        str, typer.Option("--rate-limit", help="per API key (or client address), e.g. 60/minute")
    ] = "60/minute",
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", help="larger request bodies get 413")
    ] = 2_000_000,
) -> None:
    """Serve /predict, /health, /metrics and /admin/reload; API keys from CRYPTOAI_API_KEYS."""
    import uvicorn

    from cryptoai.serve.app import create_app
    from cryptoai.serve.ratelimit import parse_rate

    parse_rate(rate_limit)  # a typo fails before the model loads
    app = create_app(model, rate_limit=rate_limit, max_body_bytes=max_body_bytes)
    # The libraries, the model and the app live as long as the process: out of the garbage
    # collector's generations, a full collection no longer walks them, which otherwise
    # lands as a multi-millisecond pause on whichever request triggers it (tail latency).
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)


def register(app: typer.Typer) -> None:
    app.command()(serve)
