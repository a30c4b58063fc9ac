"""The PMS webhook's rules, free of I/O: how a body is signed, how long to wait, when to stop.

Kept apart from the delivery loop so every rule runs in unit tests with a fake clock and a
fake random source, and so a receiver can import `verify` to check signatures the same way.
"""

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

SIGNATURE_PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the exact body bytes, the value of X-Loyalty-Signature.

    The bytes sent are the bytes signed: no re-serialisation, so a receiver verifies the raw
    request body before parsing it.
    """
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_PREFIX}{digest}"


def verify(body: bytes, secret: str, signature: str | None) -> bool:
    """Whether `signature` is the one `sign` gives for `body`; constant time against probing."""
    if signature is None:
        return False
    # as bytes: compare_digest refuses str with non-ASCII characters, which a caller can send
    return hmac.compare_digest(sign(body, secret).encode(), signature.encode(errors="replace"))


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter: delay n is uniform in [0, min(max, base * 2^n)).

    Full jitter spreads the retries of many deliverers hitting one recovering endpoint, instead
    of having them all come back at the same instants.
    """

    base_s: float
    max_s: float

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry `retry` (0 for the first retry), capped at `max_s`."""
        if retry < 0:
            raise ValueError(f"retry must be >= 0, got {retry}")
        # 2.0 ** 1024 overflows a float; far before that the cap applies anyway
        if retry >= 64:
            return self.max_s
        return min(self.max_s, self.base_s * 2.0**retry)

    def delay(self, retry: int, random: Callable[[], float]) -> float:
        """Seconds to wait before retry `retry`; `random()` is uniform in [0, 1)."""
        return random() * self.ceiling(retry)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Stops requests to an endpoint that keeps failing, then probes it with one request.

    closed: requests flow; `failures` consecutive failures open it. open: nothing is sent for
    `reset_s`; then half-open: exactly one trial request is allowed; its success closes the
    breaker, its failure opens it again for another `reset_s`. Not thread-safe: the deliverer
    sends one request at a time.
    """

    def __init__(self, failures: int, reset_s: float, clock: Callable[[], float]) -> None:
        if failures < 1:
            raise ValueError(f"failures must be >= 1, got {failures}")
        if reset_s <= 0:
            raise ValueError(f"reset_s must be > 0, got {reset_s}")
        self.failures = failures
        self.reset_s = reset_s
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        """The state now: an open breaker whose reset time has passed reads as half-open."""
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_s:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive

    def retry_in(self) -> float:
        """Seconds until `allow` can say yes (0 now); while a trial is out, the full reset."""
        state = self.state
        if state is BreakerState.CLOSED:
            return 0.0
        if state is BreakerState.HALF_OPEN:
            return self.reset_s if self._trial_in_flight else 0.0
        return max(0.0, self._opened_at + self.reset_s - self._clock())

    def allow(self) -> bool:
        """May a request go now? In half-open, yes once: that request is the trial."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN or self._trial_in_flight:
            return False
        self._state = BreakerState.HALF_OPEN
        self._trial_in_flight = True
        return True

    def record_success(self) -> None:
        """The endpoint answered 2xx: close, and forget earlier failures."""
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._trial_in_flight = False

    def record_failure(self) -> None:
        """A request failed; a failed trial, or the N-th failure in a row, opens the breaker."""
        self._consecutive += 1
        was_trial = self._trial_in_flight
        self._trial_in_flight = False
        if was_trial or self._state is BreakerState.HALF_OPEN or self._consecutive >= self.failures:
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
