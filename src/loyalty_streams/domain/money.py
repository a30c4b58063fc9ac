"""Currencies and exact amounts.

Amounts travel as decimal strings and live as `Decimal`; floats never touch money. Each currency
has a fixed number of decimal places, and an amount with more places than its currency allows is
refused rather than silently rounded.
"""

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

AMOUNT_PATTERN = r"^(0|[1-9][0-9]{0,17})(\.[0-9]{1,8})?$"
_AMOUNT_RE = re.compile(AMOUNT_PATTERN)


class Currency(StrEnum):
    """Fiat currencies the platform takes, and the sweepstakes coins of seed 1."""

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


def _parse_amount(value: Any) -> Decimal:
    """Accept only canonical decimal strings: no floats, exponents, signs, NaN or infinity."""
    if not isinstance(value, str):
        raise ValueError('amount must be a decimal string such as "12.50"')
    if not _AMOUNT_RE.fullmatch(value):
        raise ValueError(f'amount {value!r} is not a non-negative decimal string such as "12.50"')
    return Decimal(value)


Amount = Annotated[
    Decimal,
    BeforeValidator(_parse_amount),
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
