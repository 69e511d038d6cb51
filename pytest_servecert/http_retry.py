"""The one HTTP retry policy: which failures are retried and how long to wait before each retry.

Both HTTP clients of the project use it: the sampler (``serving/client.py``) and the LLM judges
(``judges/llm.py``). Transient failures (a connection that did not open, HTTP 429, any 5xx) are
retried up to ``max_retries`` times after an exponential, jitter-free delay (runs stay
reproducible); every other 4xx is the request's own fault and is never re-sent. Each client
keeps its own defaults and its own handling of timeouts (a stalled generation is not re-sent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["RetryPolicy", "retryable_status"]


def retryable_status(status: int) -> bool:
    """True for HTTP 429 and every 5xx: the server may answer the same request later."""
    return status == 429 or status >= 500


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` retries after the first attempt; retry ``k`` (1-based) waits
    ``min(backoff_max_s, backoff_s * 2**(k - 1))`` seconds."""

    max_retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = math.inf

    def __post_init__(self) -> None:
        if self.max_retries < 0 or not self.backoff_s >= 0 or not self.backoff_max_s >= 0:
            raise ValueError(
                f"RetryPolicy: max_retries, backoff_s and backoff_max_s must be >= 0; got {self!r}"
            )

    @property
    def attempts(self) -> int:
        """Attempts in all: the first one and every retry."""
        return self.max_retries + 1

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        return min(self.backoff_max_s, self.backoff_s * 2 ** (retry - 1))
