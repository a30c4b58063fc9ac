"""Streams and programmes for the what-if tests."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

from loyalty_streams.domain.events import BetPlaced, DepositMade, PlayerEvent
from loyalty_streams.domain.programme import Programme, shipped_programmes

AURORA = "aurora-casino"

_ids = count(1)


def aurora() -> Programme:
    """The shipped aurora-casino programme (version 1, turnover basis, EUR, Europe/Malta)."""
    return next(p for p in shipped_programmes() if p.brand_id == AURORA)


def changed_levels(programme: Programme, version: int, **thresholds: str) -> Programme:
    """`programme` numbered `version`, with the named levels' thresholds changed."""
    levels = [
        level.model_copy(update={"threshold": Decimal(thresholds[level.name])})
        if level.name in thresholds
        else level
        for level in programme.levels
    ]
    return programme.model_copy(
        update={"version": version, "name": f"{programme.name} (proposal)", "levels": levels}
    )


def _envelope(player: str, amount: str, at: datetime) -> dict[str, Any]:
    return {
        "event_id": f"e{next(_ids)}",
        "brand_id": AURORA,
        "player_id": player,
        "occurred_at": at,
        "amount": amount,
        "currency": "EUR",
    }


def bet(player: str, amount: str, at: datetime) -> BetPlaced:
    """A slots bet of aurora-casino in EUR."""
    fields = _envelope(player, amount, at)
    game = {"bet_id": f"b-{fields['event_id']}", "game_id": "starburst", "game_category": "slots"}
    return BetPlaced.model_validate(fields | game)


def deposit(player: str, amount: str, at: datetime) -> DepositMade:
    """A deposit at aurora-casino in EUR."""
    return DepositMade.model_validate(_envelope(player, amount, at))


DAY = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
"""A Monday morning in Malta (UTC+1): the by-hand stream's bets fall on brand day 2026-11-02."""


PLAYS = [
    ("a", "3000"),
    ("b", "5000"),
    ("b", "1000"),
    ("c", "4000"),
    ("c", "5999.99"),
    ("d", "12000"),
    ("e", "5000"),
    ("f", "30000"),
    ("f", "30000"),
    ("h", "10000"),
]
"""The bets of `by_hand`, in order: (player, amount in EUR)."""


def by_hand() -> list[PlayerEvent]:
    """Eight players' play on 2026-11-02, turnover (lifetime) per player:

    a 3,000; b 6,000 (5,000 then 1,000); c 9,999.99 (4,000 then 5,999.99); d 12,000;
    e 5,000; f 60,000 (30,000 twice); g a deposit only; h 10,000.
    """
    minute = timedelta(minutes=1)
    events: list[PlayerEvent] = [
        bet(player, amount, DAY + i * minute) for i, (player, amount) in enumerate(PLAYS)
    ]
    events.append(deposit("g", "50", DAY + 30 * minute))
    return events
