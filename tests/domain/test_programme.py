"""Programmes: the shipped ones match the seeds, and inconsistent ones are refused by field."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from loyalty_streams.domain.programme import (
    SHIPPED_DIR,
    LevelBasis,
    Programme,
    load_programme,
    shipped_programmes,
)
from tests.domain.builders import programme


def test_seed_zero_level_table_is_shipped_exactly() -> None:
    casino = programme("aurora-casino")
    table = [
        (level.name, level.threshold, level.points_multiplier, level.cashback_percent)
        for level in casino.levels
    ]
    assert table == [
        ("Bronze", 0, Decimal("1"), 0),
        ("Silver", 10_000, Decimal("1.1"), 1),
        ("Gold", 50_000, Decimal("1.25"), 2),
        ("Platinum", 200_000, Decimal("1.5"), 3),
    ]
    assert casino.level_basis is LevelBasis.TURNOVER
    assert [level.perks.email_support for level in casino.levels] == [False, False, True, True]
    assert [level.perks.personal_manager for level in casino.levels] == [False] * 3 + [True]
    weights = {category.value: weight for category, weight in casino.category_weights.items()}
    assert weights == {
        "slots": Decimal(1),
        "table": Decimal("0.5"),
        "live_casino": Decimal("1.5"),
        "exclusive": Decimal(2),
    }
    assert casino.policies.redemption_points == 1000
    assert casino.policies.redemption_value == 10
    assert casino.policies.inactivity_expiry_days == 365


def test_sweepstakes_programme_is_points_based_with_a_diamond_level() -> None:
    sweeps = programme("lucky-sweeps")
    assert sweeps.level_basis is LevelBasis.VIP_POINTS
    assert sweeps.levels[-1].name == "Diamond"
    assert sweeps.currencies["SC"].points_per_unit == 1  # type: ignore[index]
    assert sweeps.currencies["GC"].points_per_unit * 100_000 == 1  # type: ignore[index]
    assert all(level.tier_up_reward_gc >= 0 for level in sweeps.levels)


def test_default_retention_is_the_threshold_of_the_level_below() -> None:
    assert programme().retentions == (0, 0, 10_000, 50_000)


def test_every_shipped_programme_is_valid_and_unique_per_brand() -> None:
    brands = [p.brand_id for p in shipped_programmes()]
    assert len(brands) == len(set(brands)) >= 2


def _mutated(change: Any) -> dict[str, Any]:
    data = programme().model_dump(mode="json")
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["levels"][2].update(threshold="5000"), "levels[2].threshold"),
        (lambda d: d["levels"][1].update(cashback_percent="101"), "cashback_percent"),
        (lambda d: d["levels"][1].update(cashback_daily_cap="-1"), "cashback_daily_cap"),
        (
            lambda d: d["currencies"].update(
                XYZ={"points_per_unit": "1", "turnover_per_unit": "1"}
            ),
            "currencies.XYZ",
        ),
        (lambda d: d["category_weights"].pop("exclusive"), "category_weights"),
        (lambda d: d["levels"][0].update(threshold="1"), "levels[0].threshold"),
        (lambda d: d["policies"].update(timezone="Mars/Olympus"), "timezone"),
        (lambda d: d["promotions"].append(dict(d["promotions"][0], name="Overlap")), "overlap"),
        (lambda d: d["promotions"][0].update(ends_at="2026-12-01T00:00:00Z"), "ends_at"),
        (lambda d: d["levels"][3].update(rank=2), "ranks"),
        # a version every consumer can hold (32-bit), and a whole number, not "2", 2.0 or true
        (lambda d: d.update(version=2**63), "version"),
        (lambda d: d.update(version=10**30), "version"),
        (lambda d: d.update(version="2"), "version"),
        (lambda d: d.update(version=2.0), "version"),
        (lambda d: d.update(version=True), "version"),
    ],
)
def test_inconsistent_programmes_are_refused_naming_the_field(change: Any, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Programme.model_validate(_mutated(change))
    assert field in str(refused.value)


def test_overlapping_promotions_are_accepted_when_the_programme_allows_them() -> None:
    data = _mutated(lambda d: d["promotions"].append(dict(d["promotions"][0], name="Overlap")))
    data["promotions_may_overlap"] = True
    assert len(Programme.model_validate(data).promotions) == 2


def test_a_copy_with_changes_is_validated_and_derives_its_own_values() -> None:
    aurora = load_programme(SHIPPED_DIR / "aurora-casino.json")
    assert aurora.grace == timedelta(days=7)  # cached on the original
    quick = aurora.model_copy(
        update={"policies": aurora.policies.model_copy(update={"downgrade_grace_days": 0})}
    )
    assert quick.grace == timedelta(0) and aurora.grace == timedelta(days=7)
    with pytest.raises(ValidationError, match="levels"):
        aurora.model_copy(update={"levels": ()})


@pytest.mark.parametrize("field", ["tier_up_reward_gc", "birthday_gift_gc", "birthday_gift_sc"])
def test_the_coins_a_level_pays_are_in_cents(field: str) -> None:
    data = programme("lucky-sweeps").model_dump(mode="json")
    data["levels"][1][field] = "1.005"
    with pytest.raises(ValidationError, match=rf"{field}: 1.005 has more than 2 decimal places"):
        Programme.model_validate(data)
