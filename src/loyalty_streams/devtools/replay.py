"""Fold a topic's events through the rules outside any worker: what a single worker must produce.

The demo and the integration tests compare the workers' outputs and records with this replay, so
"exact" means "the same as the rules applied once, in order, to every record".
"""

from dataclasses import dataclass, field

from loyalty_streams.domain.cancellations import PlacedBet, fold_with_bet
from loyalty_streams.domain.event_rules import EventRejected
from loyalty_streams.domain.events import decode_player_event
from loyalty_streams.domain.outputs import Output
from loyalty_streams.domain.player import PlayerState, SourcePosition
from loyalty_streams.kafka.reading import ReadRecord
from loyalty_streams.runtime.fold import ProgrammeFor


@dataclass
class Replay:
    states: dict[str, PlayerState] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)
    bets: dict[tuple[str, str], PlacedBet] = field(default_factory=dict)
    """The bets' records by player key and bet id, as a worker keeps them beside the player."""


def replay(records: list[ReadRecord], programme_for: ProgrammeFor) -> Replay:
    """Fold usable records in the order given; the unusable ones are skipped (dead letters)."""
    result = Replay()
    for record in records:
        try:
            event = decode_player_event(record.value or b"")
        except ValueError:
            continue
        programme = programme_for(event.brand_id, event.occurred_at)
        if programme is None:
            continue
        source = SourcePosition(f"{record.topic}:{record.partition}", record.offset)
        bet_of = (event.key, getattr(event, "bet_id", ""))
        try:
            state, outputs, bet = fold_with_bet(
                result.states.get(event.key), event, programme, source, result.bets.get(bet_of)
            )
        except EventRejected:
            continue
        if bet is not None:
            result.bets[bet_of] = bet
        result.states[event.key] = state
        result.outputs.extend(outputs)
    return result
