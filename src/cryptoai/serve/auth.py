"""API keys: ``CRYPTOAI_API_KEYS`` (comma-separated) turns them on; requests carry one in
``X-API-Key``. Keys are compared in constant time and never logged: logs and metrics name a
key by a short hash of it (its key id)."""

from __future__ import annotations

import hashlib
import hmac
import os

API_KEYS_ENV = "CRYPTOAI_API_KEYS"
HEADER = "X-API-Key"


def keys_from_env(value: str | None = None) -> tuple[str, ...]:
    """The configured keys (empty: authentication off)."""
    raw = os.environ.get(API_KEYS_ENV, "") if value is None else value
    return tuple(k.strip() for k in raw.split(",") if k.strip())


def key_id(key: str | None) -> str:
    """A short, stable name for a key that does not reveal it (``anonymous`` for none)."""
    if not key:
        return "anonymous"
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def check_key(given: str | None, keys: tuple[str, ...]) -> bool:
    """Whether ``given`` is one of ``keys``; every key is compared, in constant time each."""
    if not given:
        return False
    supplied = given.encode()
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(supplied, key.encode())
    return ok
