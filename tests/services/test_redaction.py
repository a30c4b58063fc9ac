"""No secret of a URL reaches a log line, an error or a dead letter: user info and query are
redacted wherever the PMS webhook's or the Redis mirror's URL is shown."""

import threading

import pytest

from loyalty_streams.services import pms_webhook
from loyalty_streams.services.pms_webhook import Attempt, Deliverer, post
from loyalty_streams.services.redaction import redact, redact_url
from loyalty_streams.services.redis_mirror import target
from loyalty_streams.settings import Settings


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pass@pms.example/hook?token=abc", "https://***@pms.example/hook?***"),
        ("https://pms.example:8443/hook?token=abc#frag", "https://pms.example:8443/hook?***#***"),
        ("https://pms.example/hook", "https://pms.example/hook"),
        ("redis://:pw@redis:6379/0", "redis://***@redis:6379/0"),
        ("redis://redis:6379/0?password=pw", "redis://redis:6379/0?***"),
        ("http://[::1/hook?token=abc", "<a URL that does not parse>"),
    ],
)
def test_a_url_is_shown_without_user_info_query_or_fragment(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_text_that_quotes_parts_of_the_url_loses_them_too() -> None:
    url = "https://us%40er:pa%2055word@pms.example/hook?token=abc"
    text = "cannot reach 'us@er:pa 55word@pms.example' (pa%2055word), token=abc"
    redacted = redact(text, url)
    for secret in ("pa 55word", "pa%2055word", "us@er", "token=abc"):
        assert secret not in redacted
    assert "pms.example" in redacted
    assert redact("nothing to hide", "https://pms.example/hook") == "nothing to hide"


@pytest.mark.parametrize(
    "url",
    [
        "http://us%40er:pa%2055word@127.0.0.1:1/hook?token=abc",  # http.client: InvalidURL
        "http://user:pa55word@[::1/hook?token=abc",  # urllib: ValueError
        "htp://user:pa55word@127.0.0.1:1/hook?token=abc",
    ],
)
def test_a_failed_post_says_why_without_the_urls_secrets_and_never_raises(url: str) -> None:
    attempt = post(url, b"{}", {}, 2.0)
    assert not attempt.delivered
    for secret in ("pa55word", "pa 55word", "token=abc"):
        assert secret not in attempt.detail


def test_each_retry_is_signed_afresh_with_the_time_it_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[dict[str, str]] = []

    def unavailable(to: str, body: bytes, headers: dict[str, str], timeout: float) -> Attempt:
        sent.append(headers)
        return Attempt(False, 503, "HTTP 503 Service Unavailable")

    monkeypatch.setattr(pms_webhook, "post", unavailable)
    settings = Settings(
        bootstrap_servers="127.0.0.1:1",
        pms_webhook_url="https://pms.example/hook",
        pms_webhook_secret="s" * 32,
        pms_webhook_max_attempts=3,
        pms_webhook_backoff_s=0.001,
        pms_webhook_backoff_max_s=0.001,
    )
    seconds = iter([1_764_400_000.0, 1_764_400_007.5, 1_764_400_031.0])
    deliverer = Deliverer(settings, threading.Event(), wall_clock=lambda: next(seconds))
    try:
        attempt = deliverer.deliver(b'{"output_id": "o-1"}', "o-1", "LevelChanged")
    finally:
        deliverer.close()
    assert attempt == Attempt(False, 503, "HTTP 503 Service Unavailable")
    stamps = [headers["X-Loyalty-Signature"].split(",")[0] for headers in sent]
    assert stamps == ["t=1764400000", "t=1764400007", "t=1764400031"]
    assert [headers["X-Loyalty-Delivery-Attempt"] for headers in sent] == ["1", "2", "3"]


def test_the_redis_mirror_shows_its_target_without_passwords() -> None:
    shown = target(Settings(redis_url="redis://:pw-in-userinfo@redis:6379/0?password=pw-in-q"))
    assert "redis:6379/0" in shown
    assert "pw-in-userinfo" not in shown and "pw-in-q" not in shown
