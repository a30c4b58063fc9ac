"""The PMS webhook's rules without a broker or a socket: signature, backoff bounds, breaker."""

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty_streams.services.webhook_policy import (
    TOLERANCE_S,
    Backoff,
    BreakerState,
    CircuitBreaker,
    sign,
    verify,
)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- signature -----------------------------------------------------------------------------

NOW = 1_764_400_000  # 2025-11-29T07:06:40Z, unix seconds
BODY = b'{"output_id":"e-1:level","to_level":"Gold"}'


def test_the_header_signs_the_timestamp_with_the_exact_body_bytes() -> None:
    expected = hmac.new(b"s3cret", b"%d." % NOW + BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, ["s3cret"], NOW) == f"t={NOW},v1={expected}"
    # a known vector, so a receiver in another language can check its implementation
    assert sign(b"", ["key"], 1_700_000_000) == (
        "t=1700000000,v1=0f1cc1f811f42fd12af9618acf321769899fa521fe07a642f70a61785e130770"
    )


def test_verify_accepts_only_the_same_body_secret_and_timestamp() -> None:
    header = sign(BODY, ["s3cret"], NOW)
    assert verify(header, BODY, ["s3cret"], TOLERANCE_S, NOW)
    assert not verify(header, b'{"output_id": "e-1:level"}', ["s3cret"], TOLERANCE_S, NOW)
    assert not verify(header, BODY, ["other"], TOLERANCE_S, NOW)
    assert not verify(None, BODY, ["s3cret"], TOLERANCE_S, NOW)
    # the timestamp is signed: moving it forward to look fresh breaks the signature
    assert not verify(header.replace(f"t={NOW}", f"t={NOW + 1}"), BODY, ["s3cret"], 300, NOW)


def test_a_captured_delivery_does_not_replay_after_the_tolerance() -> None:
    header = sign(BODY, ["s3cret"], NOW)
    assert verify(header, BODY, ["s3cret"], TOLERANCE_S, NOW + TOLERANCE_S)
    assert not verify(header, BODY, ["s3cret"], TOLERANCE_S, NOW + TOLERANCE_S + 1)
    assert not verify(header, BODY, ["s3cret"], TOLERANCE_S, NOW - TOLERANCE_S - 1)  # future
    assert TOLERANCE_S == 300  # what the README tells receivers, as Stripe does


def test_during_a_rotation_the_sender_signs_with_both_and_either_secret_verifies() -> None:
    header = sign(BODY, ["new-secret", "old-secret"], NOW)
    assert header.count(",v1=") == 2
    assert verify(header, BODY, ["old-secret"], TOLERANCE_S, NOW)  # a PMS not yet rotated
    assert verify(header, BODY, ["new-secret"], TOLERANCE_S, NOW)  # a PMS already rotated
    one = sign(BODY, ["new-secret"], NOW)
    assert verify(one, BODY, ["new-secret", "old-secret"], TOLERANCE_S, NOW)  # a receiver's pair
    assert not verify(one, BODY, ["old-secret"], TOLERANCE_S, NOW)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "sha256=abc",
        f"v1={'0' * 64}",
        "t=,v1=abc",
        "t=soon,v1=abc",
        f"t={NOW}",
        f"t={NOW},v1=é\udc80",
        f"t={NOW}.5,v1=abc",
        f"t={NOW},t={NOW},v1=abc",
    ],
)
def test_junk_headers_are_refused_without_raising(header: str) -> None:
    assert not verify(header, BODY, ["s3cret"], TOLERANCE_S, NOW)


def test_secrets_are_a_sequence_never_one_string() -> None:
    with pytest.raises(TypeError):
        sign(BODY, "s3cret", NOW)
    with pytest.raises(ValueError):
        verify(sign(BODY, ["s3cret"], NOW), BODY, [], TOLERANCE_S, NOW)


@given(
    body=st.binary(max_size=512),
    secret=st.text(min_size=1, max_size=64),
    timestamp=st.integers(min_value=0, max_value=2**40),
)
def test_a_signature_always_verifies_and_has_the_documented_shape(
    body: bytes, secret: str, timestamp: int
) -> None:
    header = sign(body, [secret], timestamp)
    assert verify(header, body, [secret], TOLERANCE_S, timestamp)
    stamp, digest = header.split(",")
    assert stamp == f"t={timestamp}"
    assert digest.startswith("v1=") and len(digest) == 67 and int(digest[3:], 16) >= 0


# -- backoff -------------------------------------------------------------------------------


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    backoff = Backoff(base_s=0.5, max_s=30.0)
    assert [backoff.ceiling(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff.ceiling(10_000) == 30.0  # no float overflow for absurd retry counts
    with pytest.raises(ValueError):
        backoff.ceiling(-1)


def test_full_jitter_scales_the_ceiling_by_the_random_draw() -> None:
    backoff = Backoff(base_s=0.5, max_s=30.0)
    assert backoff.delay(3, lambda: 0.0) == 0.0
    assert backoff.delay(3, lambda: 0.5) == 2.0
    assert backoff.delay(20, lambda: 0.25) == 7.5


positive = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False, allow_infinity=False)
unit = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


@given(base=positive, cap=positive, retry=st.integers(0, 2000), draw=unit)
def test_every_delay_is_between_zero_and_the_cap(
    base: float, cap: float, retry: int, draw: float
) -> None:
    backoff = Backoff(base_s=base, max_s=cap)
    ceiling = backoff.ceiling(retry)
    delay = backoff.delay(retry, lambda: draw)
    assert 0.0 <= delay <= ceiling <= cap
    assert ceiling <= base * 2.0 ** min(retry, 64) or ceiling == cap


@given(base=positive, cap=positive, retry=st.integers(0, 200))
def test_the_ceiling_never_shrinks_and_starts_at_the_base(
    base: float, cap: float, retry: int
) -> None:
    backoff = Backoff(base_s=base, max_s=cap)
    assert backoff.ceiling(0) == min(base, cap)
    assert backoff.ceiling(retry) <= backoff.ceiling(retry + 1)
    # once the doubling passes the cap it stays there
    if base * 2.0**retry >= cap:
        assert backoff.ceiling(retry) == cap


# -- circuit breaker -----------------------------------------------------------------------


def test_breaker_opens_after_n_consecutive_failures_only() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=3, reset_s=10.0, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # a success in between resets the count
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.retry_in() == 10.0


def test_open_breaker_allows_one_trial_after_the_reset_and_a_success_closes_it() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=1, reset_s=10.0, clock=clock)
    breaker.record_failure()
    clock.advance(9.9)
    assert not breaker.allow()
    assert breaker.retry_in() == pytest.approx(0.1)
    clock.advance(0.1)
    assert breaker.state is BreakerState.HALF_OPEN and breaker.retry_in() == 0.0
    assert breaker.allow()  # the trial
    assert not breaker.allow()  # only one while it is out
    assert breaker.retry_in() == 10.0
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.allow() for _ in range(5))


def test_a_failed_trial_reopens_for_a_full_reset() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=5, reset_s=10.0, clock=clock)
    for _ in range(5):
        breaker.record_failure()
    clock.advance(12.0)
    assert breaker.allow()
    breaker.record_failure()  # one failure is enough in half-open
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_in() == 10.0
    clock.advance(10.0)
    assert breaker.allow()


def test_breaker_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failures=0, reset_s=1.0, clock=FakeClock())
    with pytest.raises(ValueError):
        CircuitBreaker(failures=1, reset_s=0.0, clock=FakeClock())


@given(
    outcomes=st.lists(st.tuples(st.booleans(), st.floats(0.0, 30.0)), max_size=60),
    failures=st.integers(1, 6),
)
def test_breaker_never_lets_a_request_through_while_open(
    outcomes: list[tuple[bool, float]], failures: int
) -> None:
    """Whatever the sequence, a request is allowed only when closed or as the single trial."""
    clock = FakeClock()
    breaker = CircuitBreaker(failures=failures, reset_s=10.0, clock=clock)
    last_opened: float | None = None
    for succeeded, pause in outcomes:
        clock.advance(pause)
        state = breaker.state
        allowed = breaker.allow()
        if state is BreakerState.OPEN:
            assert not allowed
            assert last_opened is not None and clock.now - last_opened < 10.0
        else:
            assert allowed
        if not allowed:
            continue
        if succeeded:
            breaker.record_success()
        else:
            breaker.record_failure()
            if breaker.state is BreakerState.OPEN:
                last_opened = clock.now
                assert state is BreakerState.HALF_OPEN or breaker.consecutive_failures >= failures
