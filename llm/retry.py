"""Retries with exponential backoff (tenacity), honouring a server's Retry-After."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from llm.errors import ProviderRateLimitError, ProviderUnavailableError

T = TypeVar("T")


class RetryPolicy:
    """Retry transient provider failures: timeouts, connection errors, 429 and 5xx.

    `max_retries` extra attempts after the first; waits grow as base_wait_s * 2**n, capped at
    max_wait_s; a 429's Retry-After replaces the computed wait (also capped). No attempt starts
    after `max_total_s` from the first (so one call takes at most that plus one request's timeout,
    and its cost cannot multiply unseen). `waits` records every wait taken, so callers (and tests)
    can see them without measuring time; `clock` is what the total is measured with.
    """

    def __init__(
        self,
        max_retries: int = 3,
        base_wait_s: float = 0.5,
        max_wait_s: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        max_total_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0 (got {max_retries})")
        if max_total_s <= 0:
            raise ValueError(f"max_total_s must be > 0 (got {max_total_s})")
        self.max_retries = max_retries
        self.base_wait_s = base_wait_s
        self.max_wait_s = max_wait_s
        self.sleep = sleep
        self.max_total_s = max_total_s
        self.clock = clock
        self.waits: deque[float] = deque(maxlen=100)  # recent waits only: a server runs for days

    def wait_for(self, state: RetryCallState) -> float:
        """Seconds to wait before the next attempt."""
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, ProviderRateLimitError) and error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.max_wait_s)
        return min(self.base_wait_s * 2 ** (state.attempt_number - 1), self.max_wait_s)

    def _sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.sleep(seconds)

    def call(self, fn: Callable[..., T], *args: object) -> T:
        """Run fn(*args), retrying transient failures; the last error is raised as is."""
        started = self.clock()

        def out_of_time(state: RetryCallState) -> bool:
            # The next attempt would start after the total allowed: stop now, not after the wait.
            return self.clock() - started + self.wait_for(state) > self.max_total_s

        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1) | out_of_time,
            wait=self.wait_for,
            retry=retry_if_exception_type(ProviderUnavailableError),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(fn, *args)
