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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from email.message import Message
from functools import cached_property
from itertools import chain
from operator import itemgetter
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
    """The request's candles in the order sent (the contract check judges the order): their
    open times (``datetime64[ns]``, UTC), the OHLCV columns as float64 arrays, and their
    timestamps as sent when those are already the response's format. ``frame`` is the same
    candles as an OHLCV frame, built on first use (the fast path never needs it)."""

    times: np.ndarray
    columns: dict[str, np.ndarray]
    stamps: list[str] | None = None

    @classmethod
    def of_frame(cls, frame: pd.DataFrame) -> Candles:
        columns = {c: frame[c].to_numpy() for c in OHLCV}
        candles = cls(frame.index.tz_convert(None).as_unit("ns").to_numpy(), columns)
        candles.__dict__["frame"] = frame
        return candles

    @cached_property
    def frame(self) -> pd.DataFrame:
        index = pd.DatetimeIndex(self.times, name="timestamp").tz_localize("UTC")
        return pd.DataFrame(self.columns, index=index, copy=False)


def read_candles(body: bytes, content_type: str | None) -> Candles:
    """Parse a ``/predict`` body; one the models reject raises ``RequestValidationError``."""
    fast = _fast_candles(body) if _is_json(content_type) else None
    return fast if fast is not None else Candles.of_frame(_model_frame(body, content_type))


_NUMBERS = frozenset({float, int})  # not bool: its type is bool, and strict floats refuse it
_ROW = itemgetter("timestamp", *OHLCV)


def _fast_candles(body: bytes) -> Candles | None:
    """The candles of a well-formed body, or None where the models must judge it.

    One pass of C-level calls per step: every candle's six fields (``itemgetter``), the
    columns (``zip``), the types of all the numbers at once, one float64 block."""
    try:
        candles = orjson.loads(body)["candles"]
        if type(candles) is not list or not candles:
            return None
        stamps, *numbers = zip(*map(_ROW, candles), strict=True)
    except (orjson.JSONDecodeError, KeyError, TypeError):  # not JSON, not objects, missing keys
        return None
    if not set(map(type, chain.from_iterable(numbers))) <= _NUMBERS:
        return None
    try:
        block = np.array(numbers, dtype=np.float64)  # (5, n), each row contiguous
    except OverflowError:  # an integer beyond float64: the models say what is wrong
        return None
    if not np.isfinite(block).all():
        return None
    times = _utc_stamps(stamps)
    if times is None:
        return None
    return Candles(times, dict(zip(OHLCV, block, strict=True)), list(stamps))


# "YYYY-MM-DDTHH:MM:SSZ": where the separators are, where the digits are
_SEPARATORS = np.array([4, 7, 10, 13, 16, 19])
_SEPARATOR_BYTES = np.frombuffer(b"--T::Z", dtype=np.uint8)
_DIGITS = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])


def _utc_stamps(stamps: Sequence[Any]) -> np.ndarray | None:
    """``datetime64[ns]`` of strings that are all exactly ``YYYY-MM-DDTHH:MM:SSZ`` with valid
    fields (what pydantic reads as the same UTC instant), else None.

    Vectorized over the bytes: no per-candle datetime. Years outside 1678-2261 (near and
    past the edges of pandas' nanosecond range) are left to the models' path, which says
    they are out of range.
    """
    if not stamps or set(map(type, stamps)) != {str} or set(map(len, stamps)) != {20}:
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
    times = out.index.tz_convert(None).as_unit("ns").to_numpy()
    names = [str(c) for c in out.columns]
    return _records(names, out.to_numpy(dtype=np.float64), times, stamps)


def _records(
    names: list[str], values: np.ndarray, times: np.ndarray, stamps: list[str] | None
) -> list[dict[str, Any]]:
    if stamps is None or len(stamps) != len(values):
        utc = np.datetime_as_string(times, unit="s").tolist()
        stamps = [s + "Z" for s in utc]
    columns = np.asarray(values, dtype=np.float64).T.tolist()
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


def values_response_bytes(
    model: dict[str, Any],
    label: str,
    names: list[str],
    values: np.ndarray,
    candles: Candles,
) -> bytes:
    """``response_bytes`` of the frame ``values`` would make on ``candles``' index (columns
    ``names``), without building that frame."""
    records = _records(names, values, candles.times, candles.stamps)
    return orjson.dumps({"model": model, "label": label, "predictions": records})
