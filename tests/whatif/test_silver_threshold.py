"""A stream known by hand: aurora-casino's Silver threshold lowered from 10,000 to 5,000 EUR
moves exactly the players whose turnover lies between the two, and the figures follow.

By hand (slots: 1 point a euro, x1.1 at Silver; 1 % daily cashback at Silver, capped at 100;
2 % at Gold, capped at 500; a redemption is worth 10 EUR per 1,000 points):

| player | turnover | baseline | proposal | points B | points P | cashback B | cashback P |
|---|---|---|---|---|---|---|---|
| a | 3,000 | Bronze | Bronze | 3,000 | 3,000 | 0 | 0 |
| b | 5,000 + 1,000 | Bronze | Silver | 6,000 | 5,000 + 1,100 | 0 | 60.00 |
| c | 4,000 + 5,999.99 | Bronze | Silver | 9,999.99 | 9,999.99 | 0 | 99.99 |
| d | 12,000 | Silver | Silver | 12,000 | 12,000 | 100 (cap) | 100 (cap) |
| e | 5,000 | Bronze | Silver | 5,000 | 5,000 | 0 | 50.00 |
| f | 30,000 x 2 | Gold | Gold | 30,000 + 33,000 | the same | 500 (cap) | 500 (cap) |
| g | deposit | Bronze | Bronze | 0 | 0 | 0 | 0 |
| h | 10,000 | Silver | Silver | 10,000 | 10,000 | 100 (not above the cap) | 100 |

Baseline points 108,999.99 (liability 1,089.9999 -> 1,090.00 EUR), proposal 109,099.99
(1,091.00); cashback 700.00 against 909.99, two caps hit in each.
"""

from datetime import UTC, datetime
from decimal import Decimal

from loyalty_streams.whatif.replay import MemorySource, positioned
from loyalty_streams.whatif.report import AffectedPlayer, Move, Report
from loyalty_streams.whatif.run import what_if
from tests.whatif.support import AURORA, aurora, by_hand, changed_levels

MALTA_2_NOV = datetime(2026, 11, 1, 23, 0, tzinfo=UTC)
MALTA_3_NOV = datetime(2026, 11, 2, 23, 0, tzinfo=UTC)
MALTA_5_NOV = datetime(2026, 11, 4, 23, 0, tzinfo=UTC)

LEVELS = ("Bronze", "Silver", "Gold", "Platinum")
BASELINE_AT_END = {"Bronze": 5, "Silver": 2, "Gold": 1, "Platinum": 0}
PROPOSAL_AT_END = {"Bronze": 2, "Silver": 5, "Gold": 1, "Platinum": 0}
MOVES = (
    Move("Bronze", "Bronze", 2),
    Move("Bronze", "Silver", 3),
    Move("Silver", "Silver", 2),
    Move("Gold", "Gold", 1),
)


def run(since: datetime | None, processes: int = 1) -> Report:
    proposal = changed_levels(aurora(), 2, Silver="5000")
    source = MemorySource(positioned(by_hand()))
    return what_if(
        source, AURORA, [aurora()], proposal, since, MALTA_5_NOV, "day", processes, partitions=12
    )


def test_the_proposal_from_the_start_moves_exactly_the_players_between_the_thresholds() -> None:
    report = run(None)

    assert report.since == MALTA_2_NOV  # the first event's brand day
    assert [p.label for p in report.periods] == ["2026-11-02", "2026-11-03", "2026-11-04"]
    assert report.levels == LEVELS
    assert report.moves == MOVES
    assert [(p.player_id, p.baseline_level, p.proposal_level) for p in report.affected] == [
        ("b", "Bronze", "Silver"),
        ("c", "Bronze", "Silver"),
        ("e", "Bronze", "Silver"),
    ]
    assert report.affected[0] == AffectedPlayer(
        "b", "Bronze", "Silver", 1, Decimal("6000.00"), Decimal("6100.00"), Decimal("100.00")
    )
    day, close, last = report.periods
    for period in report.periods:
        assert period.baseline.players == BASELINE_AT_END
        assert period.proposal.players == PROPOSAL_AT_END
    # the bets on the 2nd, their day's cashback paid at its end (Malta midnight: the 3rd)
    assert day.baseline.points_issued == Decimal("108999.99")
    assert day.proposal.points_issued == Decimal("109099.99")
    assert day.baseline.liability == {"EUR": Decimal("1090.00")}
    assert day.proposal.liability == {"EUR": Decimal("1091.00")}
    assert day.baseline.cashback == day.proposal.cashback == {}
    assert (day.baseline.level_ups, day.proposal.level_ups) == (4, 7)
    assert close.baseline.cashback == {"EUR": Decimal("700.00")}
    assert close.proposal.cashback == {"EUR": Decimal("909.99")}
    assert close.baseline.cashback_caps == close.proposal.cashback_caps == 2
    assert close.baseline.points_issued == close.proposal.points_issued == Decimal(0)
    assert last.baseline.points_issued == last.proposal.points_issued == Decimal(0)
    assert report.total.baseline.points_issued == Decimal("108999.99")
    assert report.total.proposal.liability == {"EUR": Decimal("1091.00")}
    assert report.total.proposal.cashback == {"EUR": Decimal("909.99")}
    assert report.total.baseline.tier_rewards == report.total.proposal.tier_rewards == 0
    stats = report.stats
    assert (stats.events, stats.players, stats.folds) == (11, 8, 22)
    assert stats.rejected == stats.failed == (0, 0)


def test_the_same_from_the_first_brand_day_on() -> None:
    assert _figures(run(MALTA_2_NOV)) == _figures(run(None))


def test_a_proposal_from_after_the_play_moves_the_players_at_its_first_instant() -> None:
    """Play before `since` is folded once; the proposal's re-check at `since` moves b, c and
    e to Silver then, and no point differs (none was issued in the range)."""
    report = run(MALTA_3_NOV)

    assert report.since == MALTA_3_NOV
    assert [p.label for p in report.periods] == ["2026-11-03", "2026-11-04"]
    assert report.moves == MOVES
    close, last = report.periods
    assert close.baseline.players == last.baseline.players == BASELINE_AT_END
    assert close.proposal.players == last.proposal.players == PROPOSAL_AT_END
    assert (close.baseline.level_ups, close.proposal.level_ups) == (0, 3)
    # the 2nd closes at the 3rd's first instant, under the proposal, at the level held then:
    # b, c and e were still Bronze (0 %) when it closed
    assert close.baseline.cashback == close.proposal.cashback == {"EUR": Decimal("700.00")}
    assert report.total.baseline.points_issued == report.total.proposal.points_issued == 0
    assert [(p.player_id, p.level_change, p.points_change) for p in report.affected] == [
        ("b", 1, Decimal(0)),
        ("c", 1, Decimal(0)),
        ("e", 1, Decimal(0)),
    ]
    assert (report.stats.events, report.stats.folds) == (11, 11 + 8)  # once each; 8 re-checks


def test_several_processes_give_the_same_report() -> None:
    assert _figures(run(None, processes=3)) == _figures(run(None))
    assert _figures(run(MALTA_3_NOV, processes=2)) == _figures(run(MALTA_3_NOV))


def _figures(report: Report) -> tuple[object, ...]:
    """What a report says, without how it ran (the range's start aside)."""
    return (
        report.periods,
        report.total,
        report.moves,
        report.affected,
        report.stats.events,
        report.stats.players,
    )
