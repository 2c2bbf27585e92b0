"""Retrying transient HTTP failures (network errors, 429/418, 5xx) with exponential backoff.

Sources wrap each request in ``call_with_retry``; the request raises ``TransientError`` for
a failure worth another try, carrying the server's ``Retry-After`` when it sent one. After
the last try, or when the server asks for a longer wait than the policy allows, the
failure becomes a one-line ``SourceError``.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import tenacity

from cryptoai.errors import SourceError

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUSES = frozenset({418, 429})


def is_retry_status(status: int | None) -> bool:
    """Rate limits (429, Binance's 418 ban) and server errors (5xx) deserve another try."""
    return status is not None and (status in RETRY_STATUSES or 500 <= status <= 599)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``max_retries`` extra tries, waits doubling from ``base_delay_s``.

    A server's ``Retry-After`` is honoured (the wait is at least that long); one asking for
    more than ``max_delay_s`` ends the retries at once, since waiting that long inside a
    fetch helps nobody. ``sleep`` does the waiting (tests pass a recorder instead of the
    wall clock).
    """

    max_retries: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    honour_retry_after: bool = True
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        backoff = min(self.max_delay_s, self.base_delay_s * 2 ** (retry_number - 1))
        if self.honour_retry_after and retry_after is not None:
            return max(backoff, retry_after)
        return backoff


class TransientError(Exception):
    """A failure worth retrying; ``hint`` says what the user can do if it persists."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, hint: str = "retry later"
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.hint = hint


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date relative to now."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def call_with_retry(
    fn: Callable[[], T], policy: RetryPolicy | None = None, *, what: str = "request"
) -> T:
    """Run ``fn``, retrying ``TransientError`` per ``policy``; other exceptions pass through.

    Raises ``SourceError`` (one line, with the last failure and its hint) once retries are
    spent or the server's ``Retry-After`` exceeds ``policy.max_delay_s``.
    """
    policy = policy or RetryPolicy()

    def worth_retrying(exc: BaseException) -> bool:
        if not isinstance(exc, TransientError):
            return False
        ra = exc.retry_after if policy.honour_retry_after else None
        return ra is None or ra <= policy.max_delay_s

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return policy.delay(state.attempt_number, getattr(exc, "retry_after", None))

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s failed (%s); retry %d/%d in %.1f s",
            what,
            exc,
            state.attempt_number,
            policy.max_retries,
            state.upcoming_sleep,
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.max_retries + 1),
        wait=wait,
        retry=tenacity.retry_if_exception(worth_retrying),
        before_sleep=before_sleep,
        sleep=policy.sleep,
        reraise=True,
    )
    try:
        return retrying(fn)
    except TransientError as exc:
        ra = exc.retry_after if policy.honour_retry_after else None
        if ra is not None and ra > policy.max_delay_s:
            raise SourceError(
                f"{exc}: the server asks to wait {ra:.0f} s before the next request"
                f" (more than {policy.max_delay_s:.0f} s); retry later"
            ) from exc
        tries = policy.max_retries + 1
        raise SourceError(
            f"{exc} (gave up after {tries} tr{'y' if tries == 1 else 'ies'}): {exc.hint}"
        ) from exc
