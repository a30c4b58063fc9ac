"""A programme is shared by the fold thread and the API's threads: its remembered day and
promotion interval must never give one thread another thread's half-written answer."""

import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from loyalty_streams.domain.events import GameCategory
from loyalty_streams.domain.programme import Programme, Promotion
from tests.domain.builders import programme

START = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def switching() -> Iterator[None]:
    """Threads switch after every few bytecodes, so a torn read shows at once."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def hammer(check: Callable[[datetime], bool], moments: list[datetime]) -> int:
    """Two threads asking in turn about moments far apart; gives the wrong answers seen."""
    wrong = [0, 0]

    def ask(n: int) -> None:
        for moment in moments[n::2] * 200:
            if not check(moment):
                wrong[n] += 1

    threads = [threading.Thread(target=ask, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(wrong)


@pytest.mark.usefixtures("switching")
def test_day_of_is_right_whichever_thread_asked_last() -> None:
    rules: Programme = programme().model_copy()
    moments = [START + timedelta(days=d, hours=d % 5) for d in range(40)]
    expected = {m: m.astimezone(rules.zone).date().toordinal() for m in moments}
    assert hammer(lambda m: rules.day_of(m) == expected[m], moments) == 0


@pytest.mark.usefixtures("switching")
def test_promotion_factor_is_right_whichever_thread_asked_last() -> None:
    promotions = tuple(
        Promotion(
            name=f"p{n}",
            multiplier=2 + n,
            starts_at=START + timedelta(days=2 * n),
            ends_at=START + timedelta(days=2 * n + 1),
        )
        for n in range(10)
    )
    rules = programme().model_copy(update={"promotions": promotions})
    moments = [START + timedelta(days=d, hours=12) for d in range(20)]
    expected = {m: rules._promotion_factor(m, GameCategory.SLOTS) for m in moments}
    check = lambda m: rules.promotion_factor(m, GameCategory.SLOTS) == expected[m]  # noqa: E731
    assert hammer(check, moments) == 0
