"""The prediction service in process (``TestClient``): auth, rate limit with a hand-moved
clock, body limit, every kind of bad payload, metrics, logs, reload, and equality with
``cryptoai.predict``."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from serve_support import WARMUP

import cryptoai
from cryptoai.serve.app import create_app
from cryptoai.serve.auth import key_id

pytest_plugins = ("serve_support",)  # the shared registered model

KEY, OTHER = "k-alpha-123", "k-beta-456"


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def candles(df: pd.DataFrame) -> list[dict]:
    return [
        {
            "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            **{c: float(row[c]) for c in ("open", "high", "low", "close", "volume")},
        }
        for ts, row in df.iterrows()
    ]


@pytest.fixture
def body(registry) -> dict:
    return {"candles": candles(registry.ohlcv.iloc[-60:])}


@pytest.fixture
def client(registry):
    clock = Clock()
    app = create_app(registry.uri, api_keys=[KEY, OTHER], rate_limit="1000/minute", clock=clock)
    with TestClient(app) as c:
        c.clock = clock
        yield c


def test_predict_equals_cryptoai_predict(client, registry, body):
    r = client.post("/predict", json=body, headers={"X-API-Key": KEY})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["model"] == {"name": "btc-direction", "version": 1, "alias": "champion"}
    assert data["label"] == "proba_up"
    df = registry.ohlcv.iloc[-60:]
    expected = cryptoai.predict(df, model=registry.uri)
    got = data["predictions"]
    assert [p["timestamp"] for p in got] == [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in df.index]
    assert all(p["proba_up"] is None and p["score"] is None for p in got[:WARMUP])
    for col in ("proba_up", "score"):
        served = np.array([np.nan if p[col] is None else p[col] for p in got])
        assert np.array_equal(served, expected[col].to_numpy(), equal_nan=True)


def test_health_is_open_and_reports_uptime_from_the_clock(client):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "model": {"name": "btc-direction", "version": 1, "alias": "champion"},
        "uptime_s": 0.0,
    }
    client.clock.t += 42.5
    assert client.get("/health").json()["uptime_s"] == 42.5


def test_api_keys_guard_everything_but_health(client, body):
    assert client.post("/predict", json=body).status_code == 401
    r = client.post("/predict", json=body, headers={"X-API-Key": "nope"})
    assert r.status_code == 401 and "invalid" in r.json()["detail"]
    assert client.get("/metrics").status_code == 401
    assert client.post("/admin/reload").status_code == 401
    assert client.get("/metrics", headers={"X-API-Key": OTHER}).status_code == 200


def test_keys_come_from_the_environment(registry, monkeypatch, body):
    monkeypatch.setenv("CRYPTOAI_API_KEYS", f" {KEY} ,, {OTHER}")
    with TestClient(create_app(registry.uri)) as c:
        assert c.post("/predict", json=body).status_code == 401
        assert c.post("/predict", json=body, headers={"X-API-Key": OTHER}).status_code == 200
    monkeypatch.delenv("CRYPTOAI_API_KEYS")
    with TestClient(create_app(registry.uri)) as c:  # no keys: open, but no admin
        assert c.post("/predict", json=body).status_code == 200
        r = c.post("/admin/reload")
        assert r.status_code == 403 and "CRYPTOAI_API_KEYS" in r.json()["detail"]


def test_rate_limit_per_key_with_retry_after(registry, body):
    clock = Clock()
    app = create_app(registry.uri, api_keys=[KEY, OTHER], rate_limit="3/minute", clock=clock)
    with TestClient(app) as c:
        a, b = {"X-API-Key": KEY}, {"X-API-Key": OTHER}
        assert [c.get("/metrics", headers=a).status_code for _ in range(3)] == [200] * 3
        r = c.post("/predict", json=body, headers=a)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "20"  # 3 per 60 s: one token every 20 s
        assert c.get("/metrics", headers=b).status_code == 200  # another key's own bucket
        assert c.get("/health").status_code == 200  # never limited
        clock.t += 19.0
        r = c.get("/metrics", headers=a)
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        clock.t += 1.0
        assert c.post("/predict", json=body, headers=a).status_code == 200
        assert c.get("/metrics", headers=a).status_code == 429
        clock.t += 3600  # refills to the burst size, not beyond
        assert [c.get("/metrics", headers=a).status_code for _ in range(4)] == [200] * 3 + [429]


def test_body_limit_413_with_and_without_content_length(registry, body):
    app = create_app(registry.uri, api_keys=[KEY], max_body_bytes=6000)
    with TestClient(app) as c:
        h = {"X-API-Key": KEY}
        big = json.dumps(body).encode()
        assert len(big) > 6000
        r = c.post("/predict", content=big, headers={**h, "Content-Type": "application/json"})
        assert r.status_code == 413 and "6000 bytes" in r.json()["detail"]

        def chunks():  # streamed: no Content-Length, counted as it arrives
            for i in range(0, len(big), 1000):
                yield big[i : i + 1000]

        r = c.post("/predict", content=chunks(), headers={**h, "Content-Type": "application/json"})
        assert r.status_code == 413
        small = {"candles": body["candles"][:25]}
        assert len(json.dumps(small)) < 6000
        assert c.post("/predict", json=small, headers=h).status_code == 200


def _bad_payloads(good: list[dict]) -> dict[str, tuple[object, str]]:
    def edit(i: int, **change) -> list[dict]:
        out = [dict(c) for c in good]
        out[i].update(change)
        return out

    dropped = [dict(c) for c in good]
    del dropped[5]["close"]
    return {
        "nan": ('{"candles": [' + json.dumps(good[0])[:-1] + ', "close": NaN}]}', "finite"),
        "infinity": (json.dumps({"candles": edit(3, high=float("inf"))}), "finite"),
        "unsorted": ({"candles": good[::-1]}, "time order"),
        "duplicates": ({"candles": good[:30] + good[29:]}, "duplicate"),
        "missing field": ({"candles": dropped}, "candles[5].close: Field required"),
        "too few bars": ({"candles": good[:WARMUP]}, "needs at least 21"),
        "non-numeric": ({"candles": edit(2, volume="lots")}, "candles[2].volume"),
        "numeric string": ({"candles": edit(2, open="1.5")}, "candles[2].open"),
        "bool": ({"candles": edit(2, open=True)}, "candles[2].open"),
        "naive timestamp": ({"candles": edit(1, timestamp="2023-03-01T00:00:00")}, "timezone"),
        "bad timestamp": ({"candles": edit(1, timestamp="yesterday")}, "candles[1].timestamp"),
        "far timestamp": ({"candles": edit(1, timestamp="9999-01-01T00:00:00Z")}, "range"),
        "high below low": ({"candles": edit(4, high=1.0, low=2.0)}, "high"),
        "negative price": ({"candles": edit(4, low=-1.0)}, "prices <= 0"),
        "negative volume": ({"candles": edit(4, volume=-5.0)}, "volume"),
        "empty": ({"candles": []}, "at least 1"),
        "not a list": ({"candles": {"a": 1}}, "candles: Input should be a valid list"),
        "no candles": ({}, "candles: Field required"),
        "not json": ("{candles: [", "JSON"),
        "a list": ("[1, 2]", "valid dictionary"),
    }


def test_every_bad_payload_is_422_with_a_detail_and_the_service_keeps_serving(client, body):
    h = {"X-API-Key": KEY, "Content-Type": "application/json"}
    good = body["candles"]
    for name, (payload, needle) in _bad_payloads(good).items():
        content = payload if isinstance(payload, str) else json.dumps(payload)
        r = client.post("/predict", content=content, headers=h)
        assert r.status_code == 422, (name, r.status_code, r.text)
        detail = r.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail, name
        assert needle.lower() in detail.lower(), (name, detail)
    assert client.post("/predict", json=body, headers=h).status_code == 200


def test_metrics_count_requests_latency_errors_and_the_model_version(client, body):
    h = {"X-API-Key": KEY}
    client.post("/predict", json=body, headers=h)
    client.post("/predict", json=body, headers=h)
    client.post("/predict", json={"candles": []}, headers=h)
    client.post("/predict", json=body)  # 401
    text = client.get("/metrics", headers=h).text
    lines = set(text.splitlines())
    assert 'cryptoai_requests_total{endpoint="/predict",method="POST",status="200"} 2.0' in lines
    assert 'cryptoai_requests_total{endpoint="/predict",method="POST",status="422"} 1.0' in lines
    assert 'cryptoai_requests_total{endpoint="/predict",method="POST",status="401"} 1.0' in lines
    assert 'cryptoai_errors_total{endpoint="/predict",kind="client"} 2.0' in lines
    assert 'cryptoai_request_latency_seconds_count{endpoint="/predict"} 4.0' in lines
    assert 'cryptoai_model_version{alias="champion",name="btc-direction"} 1.0' in lines
    assert "cryptoai_predicted_candles_total 120.0" in lines
    client.get("/no/such/path", headers=h)  # unknown paths share one label
    text = client.get("/metrics", headers=h).text
    assert 'cryptoai_requests_total{endpoint="other",method="GET",status="404"} 1.0' in text


def test_request_logs_carry_a_key_id_never_the_key(client, body, caplog):
    with caplog.at_level(logging.INFO, logger="cryptoai.serve.access"):
        client.post("/predict", json=body, headers={"X-API-Key": KEY})
        client.get("/health")
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name.endswith("access")]
    assert [(r["path"], r["status"]) for r in records] == [("/predict", 200), ("/health", 200)]
    assert records[0]["key_id"] == key_id(KEY) != KEY and records[1]["key_id"] == "anonymous"
    assert records[0]["latency_ms"] > 0
    assert KEY not in caplog.text


def test_reload_swaps_to_the_version_the_alias_points_at(client, body):
    from cryptoai.tracking.registry import promote

    h = {"X-API-Key": KEY}
    promote("btc-direction", 2, "champion")
    assert client.get("/health").json()["model"]["version"] == 1  # not until reloaded
    r = client.post("/admin/reload", headers=h)
    assert r.status_code == 200
    assert r.json() == {
        "previous": {"name": "btc-direction", "version": 1, "alias": "champion"},
        "model": {"name": "btc-direction", "version": 2, "alias": "champion"},
    }
    assert client.get("/health").json()["model"]["version"] == 2
    assert client.post("/predict", json=body, headers=h).json()["model"]["version"] == 2
    text = client.get("/metrics", headers=h).text
    assert 'cryptoai_model_version{alias="champion",name="btc-direction"} 2.0' in text


def test_many_apps_in_one_process_keep_their_own_metrics(registry, body):
    apps = [create_app(registry.uri, api_keys=[KEY]) for _ in range(3)]
    with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
        a.post("/predict", json=body, headers={"X-API-Key": KEY})
        text_b = b.get("/metrics", headers={"X-API-Key": KEY}).text
    assert 'endpoint="/predict"' not in text_b


# --------------------------------------------------------------------- the parsing fast path
def _body(candles: list[dict], **top) -> bytes:
    return json.dumps({"candles": candles, **top}).encode()


def test_the_fast_path_builds_the_frame_the_models_build(registry):
    from cryptoai.serve._wire import _fast_candles, _model_frame

    good = candles(registry.ohlcv)
    as_ints = [{**c, "volume": int(c["volume"]), "open": round(c["open"])} for c in good]
    extra = [{**c, "trades": 12, "note": "x"} for c in good]
    for cs in (good, as_ints, extra, good[:1]):
        body = _body(cs, client="test")
        fast = _fast_candles(body)
        assert fast is not None, cs[0]
        slow = _model_frame(body, "application/json")
        pd.testing.assert_frame_equal(fast.frame, slow, check_exact=True)
        assert fast.frame.index.dtype == slow.index.dtype == "datetime64[ns, UTC]"
        assert fast.stamps == [c["timestamp"] for c in cs]


def test_the_fast_path_reads_timestamps_as_pandas_does():
    from cryptoai.serve._wire import _utc_stamps

    rng = np.random.default_rng(7)
    lo, hi = pd.Timestamp("1678-01-01").value // 10**9, pd.Timestamp("2261-12-31").value // 10**9
    seconds = np.concatenate([rng.integers(lo, hi, 2000), [lo, hi]])
    edges = ["2024-02-29T23:59:59Z", "2000-02-29T00:00:00Z", "1900-02-28T12:00:00Z"]
    stamps = [pd.Timestamp(s, unit="s").strftime("%Y-%m-%dT%H:%M:%SZ") for s in seconds] + edges
    expected = pd.to_datetime(stamps, utc=True).tz_convert(None).as_unit("ns").to_numpy()
    assert np.array_equal(_utc_stamps(stamps), expected)
    for bad in ("2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-04-31T00:00:00Z",
                "2024-13-01T00:00:00Z", "2024-00-10T00:00:00Z", "2024-01-00T00:00:00Z",
                "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z", "2024-01-01T00:00:60Z",
                "2024-01-01 00:00:00Z", "2024-01-01T00:00:00z", "2024-01-01T00:00:00+00",
                "2024-01-01T00:00:00.5Z", "2024-01-01T00:00:00", "\u0662024-01-01T00:00:00Z",
                "1677-12-31T00:00:00Z", "2262-01-01T00:00:00Z", "-024-01-01T00:00:00Z"):  # fmt: skip
        assert _utc_stamps(["2024-01-01T00:00:00Z", bad]) is None, bad
    assert _utc_stamps(["2024-01-01T00:00:00Z", 1704067200]) is None


def test_the_fast_path_leaves_everything_else_to_the_models(registry):
    from cryptoai.serve._wire import _fast_candles

    good = candles(registry.ohlcv.iloc[:30])
    for name, (payload, _) in _bad_payloads(good).items():
        body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        if name in ("high below low", "negative price", "negative volume", "unsorted",
                    "duplicates", "too few bars"):  # fmt: skip
            continue  # well-formed: the contract check and the warm-up judge these
        assert _fast_candles(body) is None, name
    offsets = [{**c, "timestamp": c["timestamp"].replace("Z", "+00:00")} for c in good]
    fraction = [{**c, "timestamp": c["timestamp"].replace("Z", ".250Z")} for c in good]
    huge = [{**c, "volume": 1e400} for c in good]
    for cs in (offsets, fraction, huge):
        assert _fast_candles(_body(cs)) is None


def test_bodies_off_the_fast_path_still_predict_like_cryptoai_predict(client, registry):
    """Offsets and fractions of a second go the models' way; the answer is the same."""
    df = registry.ohlcv.iloc[-50:]
    shifted = df.copy()
    shifted.index = df.index + pd.Timedelta(milliseconds=250)
    h = {"X-API-Key": KEY}
    sent = [
        {**c, "timestamp": (t.tz_convert("Europe/Paris")).isoformat(timespec="milliseconds")}
        for c, t in zip(candles(shifted), shifted.index, strict=True)
    ]
    r = client.post("/predict", json={"candles": sent}, headers=h)
    assert r.status_code == 200, r.text
    got = r.json()["predictions"]
    # the response's timestamps are UTC, whole seconds (as strftime writes them)
    assert [p["timestamp"] for p in got] == [
        t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in shifted.index
    ]
    expected = cryptoai.predict(shifted, model=registry.uri)
    served = np.array([np.nan if p["proba_up"] is None else p["proba_up"] for p in got])
    assert np.array_equal(served, expected["proba_up"].to_numpy(), equal_nan=True)


def test_the_whole_history_in_one_request_equals_cryptoai_predict(registry):
    app = create_app(registry.uri, api_keys=[], rate_limit="1000/minute")
    df = registry.ohlcv  # 480 bars, near the benchmark's 500
    with TestClient(app) as c:
        r = c.post(
            "/predict", content=_body(candles(df)), headers={"Content-Type": "application/json"}
        )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    got = r.json()["predictions"]
    expected = cryptoai.predict(df, model=registry.uri)
    for col in ("proba_up", "score"):
        served = np.array([np.nan if p[col] is None else p[col] for p in got])
        assert np.array_equal(served, expected[col].to_numpy(), equal_nan=True)
    assert got[0]["proba_up"] is None and "null" in r.text and "NaN" not in r.text


def test_content_types_and_bodies_fastapi_would_refuse(client, body):
    h = {"X-API-Key": KEY}
    raw = json.dumps(body)
    r = client.post("/predict", content=raw, headers={**h, "Content-Type": "text/plain"})
    assert r.status_code == 422 and "valid dictionary" in r.json()["detail"]
    r = client.post("/predict", content=raw, headers={**h, "Content-Type": "application/x+json"})
    assert r.status_code == 200
    r = client.post("/predict", content=b"", headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"] == "body: Field required"
    r = client.post(
        "/predict", content=b"\xff\xfe\xfa", headers={**h, "Content-Type": "application/json"}
    )
    assert r.status_code == 400  # not text in any JSON encoding: as FastAPI answers it
    deep = b"[" * 100_000 + b"]" * 100_000  # under the body limit, too deep for any parser
    r = client.post("/predict", content=deep, headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 400


def test_the_openapi_schema_documents_the_request_body(client):
    schema = client.get("/openapi.json", headers={"X-API-Key": KEY}).json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]
    assert body["required"] is True
    request = body["content"]["application/json"]["schema"]
    assert request["required"] == ["candles"] and "$defs" not in json.dumps(request)
    candle = request["properties"]["candles"]["items"]
    assert set(candle["required"]) == {"timestamp", "open", "high", "low", "close", "volume"}
    assert candle["properties"]["timestamp"]["format"] == "date-time"
    response = schema["paths"]["/predict"]["post"]["responses"]["200"]["content"]
    assert response["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PredictResponse"
    }


def test_predicting_from_the_arrays_equals_predicting_from_the_frame(registry):
    """The service's route (arrays, the frame built only to word an error) against
    cryptoai.predict on the frame: the same numbers, and the same error for a bad window."""
    from cryptoai.errors import DataValidationError
    from cryptoai.serve._wire import Candles, _fast_candles, response_bytes, values_response_bytes
    from cryptoai.serve.runtime import Predictor, load_predictor

    p = load_predictor(registry.uri)
    general = Predictor(p.name, p.version, p.alias, p.estimator, p.card, _plan=False)
    for start in (0, 37, len(registry.ohlcv) - 120):
        window = registry.ohlcv.iloc[start : start + 120]
        fast = _fast_candles(_body(candles(window)))
        built = []

        def frame(fast=fast, built=built):
            built.append(1)
            return fast.frame

        for predictor in (p, general):
            got = predictor.predict_columns(fast.times, fast.columns, frame)
            expected = predictor.predict(window)
            assert np.array_equal(got, expected.to_numpy(), equal_nan=True)
        assert len(built) == 1  # only the model without a plan needed the frame
        mine = values_response_bytes(p.info(), p.label, p.outputs, got, fast)
        assert mine == response_bytes(p.info(), p.label, expected)
        via_frame = Candles.of_frame(window)
        assert np.array_equal(via_frame.times, fast.times) and via_frame.frame is window
    bad = registry.ohlcv.iloc[:120].copy()
    bad.iloc[50, bad.columns.get_loc("high")] = bad["low"].iloc[50] / 2
    bad_fast = _fast_candles(_body(candles(bad)))
    with pytest.raises(DataValidationError) as from_frame:
        p.predict(bad)
    with pytest.raises(DataValidationError) as from_arrays:
        p.predict_columns(bad_fast.times, bad_fast.columns, lambda: bad_fast.frame)
    assert str(from_arrays.value) == str(from_frame.value) and "high/low" in str(from_frame.value)
