"""Fold synthetic events through the domain's `apply` in one process and print events/s.

Target: at least 200,000 events/s, so the domain is never the pipeline's bottleneck.
Run: .venv/bin/python bench/domain_apply.py [--events N] [--players N]
"""

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from loyalty_streams.domain.event_rules import apply
from loyalty_streams.domain.events import (
    BetPlaced,
    DepositMade,
    GameCategory,
    PlayerEvent,
    WinCredited,
)
from loyalty_streams.domain.money import Currency
from loyalty_streams.domain.player import PlayerState, SourcePosition
from loyalty_streams.domain.programme import shipped_programmes
from loyalty_streams.runtime.gc_tuning import tune_collector

CATEGORIES = list(GameCategory)


def make_events(count: int, players: int, seed: int) -> list[PlayerEvent]:
    """Pre-built events (construction is not what is measured): 80% bets, 15% wins, 5% deposits."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    events: list[PlayerEvent] = []
    for i in range(count):
        common = {
            "event_id": f"e{i}",
            "brand_id": "aurora-casino",
            "player_id": f"p{rng.randrange(players)}",
            "occurred_at": start + timedelta(seconds=i * 2),
            "amount": Decimal(rng.randrange(10, 50_000)) / 100,
            "currency": Currency.EUR,
        }
        roll = rng.random()
        if roll < 0.80:
            events.append(
                BetPlaced.model_construct(
                    **common, bet_id=f"b{i}", game_id="g1", game_category=rng.choice(CATEGORIES)
                )
            )
        elif roll < 0.95:
            events.append(WinCredited.model_construct(**common, bet_id=f"b{i - 1}"))
        else:
            events.append(DepositMade.model_construct(**common))
    return events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--players", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    programme = next(p for p in shipped_programmes() if p.brand_id == "aurora-casino")
    events = make_events(args.events, args.players, args.seed)
    tune_collector()  # as the worker does: the domain runs in its process
    states: dict[str, PlayerState] = {}
    outputs = 0
    began = time.perf_counter()
    for offset, event in enumerate(events):
        key = event.key
        state, emitted = apply(
            states.get(key), event, programme, SourcePosition("casino.player-events:0", offset)
        )
        states[key] = state
        outputs += len(emitted)
    elapsed = time.perf_counter() - began
    print(
        f"{len(events):,} events, {len(states):,} players, {outputs:,} outputs "
        f"in {elapsed:.2f} s: {len(events) / elapsed:,.0f} events/s"
    )


if __name__ == "__main__":
    main()
