"""The demo's final check: the points outputs moved, against the players' available + held."""

from decimal import Decimal
from typing import Any

from loyalty_streams.devtools.demo import balanced, point_sides


def _output(kind: str, brand_id: str = "lucky-sweeps", **fields: Any) -> dict[str, Any]:
    return {"type": kind, "brand_id": brand_id, "player_id": "p1", **fields}


def _view(available: str, held: str = "0") -> dict[str, Any]:
    return {"points": {"available": available, "held": held}}


MOVES = [
    _output("PointsAccrued", points="120.50"),
    _output("PointsAccrued", points="80.00"),
    # earned 50, the balance held 20 of them: 20 taken, 30 unrecovered
    _output("PointsReversed", points="50.00", points_reversed="20.00", points_unrecovered="30.00"),
    _output("PointsRedeemed", points="100"),
    _output("PointsAdjusted", direction="credit", points="5"),
    _output("PointsAdjusted", direction="debit", points="2.50"),
    _output("PointsExpiring", points="999"),  # a warning moves nothing
    _output("CancellationRefused", code="unknown_bet"),
    _output("PointsAccrued", brand_id="aurora-casino", points="10"),
]


def test_reversals_count_what_was_taken_and_the_sides_balance() -> None:
    views = {
        ("lucky-sweeps", "p1"): _view("53.00", "30.00"),
        ("aurora-casino", "p9"): _view("10"),
    }
    sides = point_sides(MOVES, views)
    assert set(sides) == {"lucky-sweeps", "aurora-casino"}
    sweeps = sides["lucky-sweeps"]
    assert sweeps == {
        "accrued": Decimal("200.50"),
        "reversed": Decimal("20.00"),
        "redeemed": Decimal("100"),
        "expired": Decimal(0),
        "debited": Decimal("2.50"),
        "credited": Decimal("5"),
        "held": Decimal("83.00"),
    }
    assert balanced(sweeps)  # 200.50 - 20 - 100 - 2.50 + 5 = 83 = 53 + 30
    assert balanced(sides["aurora-casino"])


def test_a_balance_that_misses_a_point_does_not_balance() -> None:
    views = {("lucky-sweeps", "p1"): _view("53.00", "29.99"), ("aurora-casino", "p9"): _view("10")}
    sides = point_sides(MOVES, views)
    assert not balanced(sides["lucky-sweeps"])
    # counting what the reversal earned instead of what it took would not balance either
    wrong = dict(sides["lucky-sweeps"], reversed=Decimal("50.00"), held=Decimal("83.00"))
    assert not balanced(wrong)
