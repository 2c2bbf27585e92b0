"""``/predict`` on the wire: request bytes -> OHLCV frame, predictions -> response bytes.

The hot path of the service. A well-formed body (an object whose ``candles`` are objects
with a ``...Z`` timestamp and JSON numbers) is parsed column by column with orjson and
numpy, not into 500 pydantic models and datetimes. Anything else goes through the pydantic
models (``PredictRequest``), which stay the definition of what is accepted: the fast path
takes only bodies those models accept, builds the frame they would give, and leaves every
other body, and so every 422 detail, to them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC
from email.message import Message
from typing import Annotated, Any

import numpy as np
import orjson
import pandas as pd
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from cryptoai.errors import BadInputError

OHLCV = ("open", "high", "low", "close", "volume")
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class Candle(BaseModel):
    """One OHLCV bar; ``timestamp`` is its open time with a timezone (``...Z``)."""

    model_config = ConfigDict(extra="ignore")

    timestamp: AwareDatetime
    open: Number
    high: Number
    low: Number
    close: Number
    volume: Number


class PredictRequest(BaseModel):
    candles: list[Candle] = Field(min_length=1)


def request_schema() -> dict[str, Any]:
    """``PredictRequest``'s JSON schema with ``Candle`` inlined (no ``$defs``), for OpenAPI."""
    schema = PredictRequest.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)


# ------------------------------------------------------------------ bytes -> frame
@dataclass(frozen=True)
class Candles:
    """The request's candles as an OHLCV frame in the order sent (the contract check judges
    the order), and their timestamps as sent when those are already the response's format."""

    frame: pd.DataFrame
    stamps: list[str] | None = None


def read_candles(body: bytes, content_type: str | None) -> Candles:
    """Parse a ``/predict`` body; one the models reject raises ``RequestValidationError``."""
    fast = _fast_candles(body) if _is_json(content_type) else None
    return fast if fast is not None else Candles(_model_frame(body, content_type))


_NUMBERS = frozenset({float, int})  # not bool: its type is bool, and strict floats refuse it


def _fast_candles(body: bytes) -> Candles | None:
    """The candles of a well-formed body, or None where the models must judge it."""
    try:
        candles = orjson.loads(body)["candles"]
        if type(candles) is not list or not candles:
            return None
        stamps = [c["timestamp"] for c in candles]
        columns = {name: [c[name] for c in candles] for name in OHLCV}
    except (orjson.JSONDecodeError, KeyError, TypeError):  # not JSON, not objects, missing keys
        return None
    data = {}
    for name, values in columns.items():
        if not set(map(type, values)) <= _NUMBERS:
            return None
        arr = np.array(values, dtype=np.float64)
        if not np.isfinite(arr).all():
            return None
        data[name] = arr
    times = _utc_stamps(stamps)
    if times is None:
        return None
    index = pd.DatetimeIndex(times, name="timestamp").tz_localize("UTC")
    return Candles(pd.DataFrame(data, index=index, copy=False), stamps)


# "YYYY-MM-DDTHH:MM:SSZ": where the separators are, where the digits are
_SEPARATORS = np.array([4, 7, 10, 13, 16, 19])
_SEPARATOR_BYTES = np.frombuffer(b"--T::Z", dtype=np.uint8)
_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])


def _utc_stamps(stamps: list[Any]) -> np.ndarray | None:
    """``datetime64[ns]`` of strings that are all exactly ``YYYY-MM-DDTHH:MM:SSZ`` with valid
    fields (what pydantic reads as the same UTC instant), else None.

    Vectorized over the bytes: no per-candle datetime. Years outside 1678-2261 (near and
    past the edges of pandas' nanosecond range) are left to the models' path, which says
    they are out of range.
    """
    if any(type(s) is not str or len(s) != 20 for s in stamps):
        return None
    try:
        raw = "".join(stamps).encode("ascii")
    except UnicodeEncodeError:
        return None
    chars = np.frombuffer(raw, dtype=np.uint8).reshape(len(stamps), 20)
    digits = chars[:, _DIGITS].astype(np.int64) - ord("0")
    if (
        not (chars[:, _SEPARATORS] == _SEPARATOR_BYTES).all()
        or not ((digits >= 0) & (digits <= 9)).all()
    ):
        return None
    pairs = digits[:, 0::2] * 10 + digits[:, 1::2]  # century, year, month, day, h, min, s
    year, (month, day, hour, minute, second) = pairs[:, 0] * 100 + pairs[:, 1], pairs[:, 2:].T
    fields_ok = (
        (year >= 1678) & (year < 2262) & (month >= 1) & (month <= 12)
        & (hour < 24) & (minute < 60) & (second < 60)
    )  # fmt: skip
    if not fields_ok.all():
        return None
    months = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    first = months.astype("datetime64[D]")
    month_days = ((months + 1).astype("datetime64[D]") - first).astype(np.int64)
    if not ((day >= 1) & (day <= month_days)).all():  # Feb 30, Feb 29 of 2023, Apr 31
        return None
    seconds = (day - 1) * 86400 + hour * 3600 + minute * 60 + second
    return (first.astype("datetime64[s]") + seconds).astype("datetime64[ns]")


def _model_frame(body: bytes, content_type: str | None) -> pd.DataFrame:
    """The pydantic route, with the 422 errors FastAPI gives for a declared body model."""
    if not body:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    data: Any = body
    if _is_json(content_type):
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", exc.pos),
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": exc.msg},
                    }
                ]
            ) from exc
        except (ValueError, RecursionError) as exc:  # not text in any JSON encoding; too deep
            raise HTTPException(400, "There was an error parsing the body") from exc
    try:
        request = PredictRequest.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError(
            [{**e, "loc": ("body", *e.get("loc", ()))} for e in errors]
        ) from exc
    return candles_frame(request.candles)


def _is_json(content_type: str | None) -> bool:
    """What FastAPI parses as JSON: no Content-Type, ``application/json`` or ``.../*+json``."""
    if not content_type:
        return True
    message = Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def candles_frame(candles: list[Candle]) -> pd.DataFrame:
    """Validated candles as an OHLCV frame, in the order sent."""
    try:
        index = (
            pd.DatetimeIndex(
                [c.timestamp.astimezone(UTC).replace(tzinfo=None) for c in candles],
                name="timestamp",
            )
            .tz_localize("UTC")
            .as_unit("ns")
        )
    except (ValueError, OverflowError) as exc:  # pandas' OutOfBoundsDatetime is a ValueError
        raise BadInputError(
            f"candles: a timestamp is out of range ({exc}); send bar open times such as "
            "2024-01-01T00:00:00Z"
        ) from exc
    data = {col: [float(getattr(c, col)) for c in candles] for col in OHLCV}
    return pd.DataFrame(data, index=index, dtype="float64")


# ------------------------------------------------------------------ predictions -> bytes
def prediction_records(out: pd.DataFrame, stamps: list[str] | None = None) -> list[dict[str, Any]]:
    """One record per row: ISO UTC timestamp (whole seconds) and the prediction columns.

    ``stamps``: the request's own timestamps, when they are already in that format (the
    rows are the request's candles), which spares formatting them again. NaN stays a
    float here; ``response_bytes`` writes it as ``null``.
    """
    if stamps is None or len(stamps) != len(out):
        utc = np.datetime_as_string(out.index.values, unit="s").tolist()
        stamps = [s + "Z" for s in utc]
    names = [str(c) for c in out.columns]
    columns = out.to_numpy(dtype=np.float64).T.tolist()
    if len(names) == 2:  # the common case (proba_up, score), spelled out: 3x faster
        a, b = names
        return [{"timestamp": t, a: x, b: y} for t, x, y in zip(stamps, *columns, strict=True)]
    keys = ("timestamp", *names)
    return [dict(zip(keys, row, strict=True)) for row in zip(stamps, *columns, strict=True)]


def response_bytes(
    model: dict[str, Any], label: str, out: pd.DataFrame, stamps: list[str] | None = None
) -> bytes:
    """The ``PredictResponse`` JSON; orjson writes NaN (the warm-up) as ``null``."""
    records = prediction_records(out, stamps)
    return orjson.dumps({"model": model, "label": label, "predictions": records})
