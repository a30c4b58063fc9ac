"""Small builders for domain tests: events with sensible defaults, the shipped programmes."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from itertools import count
from typing import Any

from loyalty_streams.domain.command_rules import execute
from loyalty_streams.domain.commands import COMMAND, Command
from loyalty_streams.domain.events import (
    BetCancelled,
    BetPlaced,
    BonusRedeemed,
    CoinPackPurchased,
    DepositMade,
    WinCredited,
)
from loyalty_streams.domain.outputs import Output
from loyalty_streams.domain.player import PlayerState, SourcePosition
from loyalty_streams.domain.programme import Programme, shipped_programmes

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
_ids = count(1)


@cache
def programme(brand_id: str = "aurora-casino") -> Programme:
    return next(p for p in shipped_programmes() if p.brand_id == brand_id)


def _envelope(amount: str | Decimal, **fields: Any) -> dict[str, Any]:
    n = next(_ids)
    return {
        "event_id": f"evt-{n}",
        "brand_id": "aurora-casino",
        "player_id": "p1",
        "occurred_at": T0,
        "amount": str(amount),
        "currency": "EUR",
        **fields,
    }


def bet(amount: str | Decimal, category: str = "slots", **fields: Any) -> BetPlaced:
    data = _envelope(amount, **fields)
    return BetPlaced.model_validate(
        {"bet_id": f"bet-{data['event_id']}", "game_id": "starburst", "game_category": category}
        | data
    )


def win(amount: str | Decimal, bet_id: str = "bet-1", **fields: Any) -> WinCredited:
    return WinCredited.model_validate({"bet_id": bet_id} | _envelope(amount, **fields))


def deposit(amount: str | Decimal, **fields: Any) -> DepositMade:
    return DepositMade.model_validate(_envelope(amount, **fields))


def bonus(amount: str | Decimal, **fields: Any) -> BonusRedeemed:
    return BonusRedeemed.model_validate({"bonus_id": "welcome"} | _envelope(amount, **fields))


def cancellation(bet_id: str, amount: str | Decimal, **fields: Any) -> BetCancelled:
    """A cancellation of `amount` of bet `bet_id` (a technical rollback unless told)."""
    return BetCancelled.model_validate({"bet_id": bet_id} | _envelope(amount, **fields))


def purchase(
    gc: str, sc: str, price: str = "9.99", purchase_id: str | None = None, **fields: Any
) -> CoinPackPurchased:
    """A coin package bought by lucky-sweeps:p1 at T0 for `price` USD (a fresh purchase id
    unless told)."""
    data = _envelope(price, **({"brand_id": "lucky-sweeps", "currency": "USD"} | fields))
    return CoinPackPurchased.model_validate(
        {
            "purchase_id": purchase_id or f"pur-{data['event_id']}",
            "package_id": "pack-standard",
            "gc": gc,
            "sc": sc,
        }
        | data
    )


def command(kind: str, **fields: Any) -> Command:
    """A command of type `kind` for aurora-casino:p1 at T0, with a fresh command_id."""
    data = {
        "type": kind,
        "command_id": f"cmd-{next(_ids)}",
        "brand_id": "aurora-casino",
        "player_id": "p1",
        "issued_at": T0,
        **fields,
    }
    return COMMAND.validate_python(data)


SKEW = timedelta(minutes=5)
"""The shipped `command_clock_skew_s`."""


def received(
    state: PlayerState | None,
    made: Command,
    rules: Programme,
    source: SourcePosition | None = None,
    at: datetime | None = None,
) -> tuple[PlayerState, tuple[Output, ...]]:
    """`execute` as the stream runs it, for a command received at `at` (by default at the
    `issued_at` it carries)."""
    return execute(state, made, rules, made.issued_at if at is None else at, SKEW, source)
