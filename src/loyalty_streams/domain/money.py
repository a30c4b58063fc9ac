"""Currencies and exact amounts.

Amounts travel as decimal strings and live as `Decimal`; floats never touch money. Each currency
has a fixed number of decimal places, and an amount with more places than its currency allows is
refused rather than silently rounded.
"""

from decimal import ROUND_DOWN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from enum import StrEnum
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetPydanticSchema, WithJsonSchema
from pydantic_core import core_schema

AMOUNT_PATTERN = r"^(0|[1-9][0-9]{0,17})(\.[0-9]{1,8})?$"


class Currency(StrEnum):
    """Fiat currencies the platform takes, and the sweepstakes coins of the VIP-table spec."""

    EUR = "EUR"
    USD = "USD"
    GBP = "GBP"
    CAD = "CAD"
    AUD = "AUD"
    BRL = "BRL"
    SEK = "SEK"
    NOK = "NOK"
    CHF = "CHF"
    SC = "SC"  # sweeps coins: redeemable, 1 SC wagered = 1 VIP point
    GC = "GC"  # gold coins: play-only, 100,000 GC wagered = 1 VIP point


DECIMAL_PLACES: dict[Currency, int] = dict.fromkeys(Currency, 2)
CENT = Decimal("0.01")
"""The smallest unit of every currency above: amounts the rules compute round to it."""

EXACT = Context(prec=64, rounding=ROUND_DOWN, traps=[InvalidOperation, Overflow, DivisionByZero])
"""The context every rule computes money and points in: products and sums of the platform's
amounts are exact at 64 digits, and overflow or an invalid operation raises instead of giving a
wrong figure. Its rounding is *down*, for the quantizes that do not name theirs."""


def _amount_schema(_: Any, __: GetCoreSchemaHandler) -> core_schema.CoreSchema:
    """A canonical decimal string, checked and converted inside pydantic-core: every event has
    an amount, and a Python validator costs more than the rest of its decoding."""
    canonical = core_schema.custom_error_schema(
        core_schema.str_schema(pattern=AMOUNT_PATTERN, strict=True),
        custom_error_type="amount_format",
        custom_error_message='amount must be a non-negative decimal string such as "12.50" '
        "(no sign, exponent, NaN or infinity, and never a JSON number)",
    )
    return core_schema.no_info_after_validator_function(
        Decimal, canonical, serialization=core_schema.to_string_ser_schema()
    )


Amount = Annotated[
    Decimal,
    GetPydanticSchema(_amount_schema),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": AMOUNT_PATTERN,
            "description": 'Non-negative decimal amount as a string, e.g. "12.50"',
        }
    ),
]


def check_places(amount: Decimal, currency: Currency) -> None:
    """Refuse an amount finer than its currency's smallest unit."""
    places = DECIMAL_PLACES[currency]
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise ValueError(
            f"amount {amount} has more than {places} decimal places allowed for {currency}"
        )


def check_cents(name: str, amount: Decimal) -> None:
    """Refuse an amount of coins or points finer than 0.01, naming its field `name`
    (ValueError)."""
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError(f"{name}: {amount} has more than 2 decimal places")
