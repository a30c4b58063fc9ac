"""The PMS webhook's rules, free of I/O: how a request is signed, how long to wait, when to stop.

Kept apart from the delivery loop so every rule runs in unit tests with a fake clock and a
fake random source, and so a receiver can import `verify` to check signatures the same way.
"""

import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

SCHEME = "v1"
"""The signature scheme: hex HMAC-SHA256 of `<t>.<raw body>`."""
TOLERANCE_S = 300
"""How far from its own clock a receiver should accept a signature's timestamp (5 minutes, as
Stripe recommends): a captured delivery replays for at most this long, so a receiver that also
acts once per Idempotency-Key is safe from replays altogether."""


def _check(secrets: Sequence[str]) -> None:
    """Raises TypeError for one string (a sequence of characters), ValueError for none."""
    if isinstance(secrets, str):
        raise TypeError("secrets: a sequence of secrets, not one string")
    if not secrets:
        raise ValueError("secrets: at least one")


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secrets: Sequence[str], timestamp: int) -> str:
    """The value of X-Loyalty-Signature: `t=<timestamp>,v1=<hex>`, one `v1` per secret.

    Each `v1` is the HMAC-SHA256 of `<timestamp>.<body>` with one of `secrets` (the current
    one, then the one being rotated out); `timestamp` is the unix time in whole seconds when
    the request is sent. The bytes sent are the bytes signed: no re-serialisation, so a
    receiver verifies the raw request body before parsing it. Raises TypeError if `secrets`
    is a single string, ValueError if it is empty.
    """
    _check(secrets)
    signatures = "".join(f",{SCHEME}={_digest(s, timestamp, body)}" for s in secrets)
    return f"t={timestamp}{signatures}"


def verify(
    header: str | None, body: bytes, secrets: Sequence[str], tolerance_s: float, now: float
) -> bool:
    """Whether `header` (an X-Loyalty-Signature value) signs `body` with any of `secrets`
    (a receiver's current secret, and its previous one during a rotation) at a timestamp
    within `tolerance_s` of `now` (unix seconds), earlier or later.

    A missing or malformed header (no `t`, two of them, no `v1`) is refused; signatures of
    other schemes are ignored. Every comparison runs in constant time. Raises TypeError if
    `secrets` is a single string, ValueError if it is empty.
    """
    _check(secrets)
    if header is None:
        return False
    stamps: list[str] = []
    candidates: list[bytes] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            stamps.append(value)
        elif name == SCHEME:
            # as bytes: compare_digest refuses str with non-ASCII characters, which anyone can send
            candidates.append(value.encode(errors="replace"))
    if len(stamps) != 1 or not stamps[0].isascii() or not stamps[0].isdigit() or not candidates:
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance_s:
        return False
    matched = False
    for secret in secrets:
        expected = _digest(secret, timestamp, body).encode()
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
    return matched


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
