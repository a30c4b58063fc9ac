"""Who may call the API: HS256 bearer tokens (JWT) carrying roles and the brands they cover.

A token's claims: `sub` (who; it becomes the actor of every change they make), `roles` (any of
`loyalty_admin`, `marketing_manager`, `service`), `brands` (brand ids, or `["*"]` for all) and
`exp`. The roles grant permissions through `GRANTS`; nothing else decides access.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import jwt

ALGORITHM = "HS256"
ALL_BRANDS = "*"


class Role(StrEnum):
    LOYALTY_ADMIN = "loyalty_admin"
    """Configures programmes and levels, forces statuses, adjusts points, reads the audit."""
    MARKETING_MANAGER = "marketing_manager"
    """Views VIP data, manages promotional multipliers, exports for finance."""
    SERVICE = "service"
    """Other platform services: read-only."""


class Permission(StrEnum):
    READ_PLAYERS = "read players"
    ADJUST_POINTS = "adjust points"
    FORCE_STATUS = "force status"
    ACT_FOR_PLAYERS = "redeem and claim for players"
    READ_PROGRAMMES = "read programmes"
    PUBLISH_PROGRAMMES = "publish programmes"
    MANAGE_PROMOTIONS = "manage promotions"
    EXPORT = "export"
    READ_AUDIT = "read the audit trail"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.LOYALTY_ADMIN: frozenset(Permission),
    Role.MARKETING_MANAGER: frozenset(
        {
            Permission.READ_PLAYERS,
            Permission.READ_PROGRAMMES,
            Permission.MANAGE_PROMOTIONS,
            Permission.EXPORT,
        }
    ),
    Role.SERVICE: frozenset({Permission.READ_PLAYERS, Permission.READ_PROGRAMMES}),
}


class InvalidToken(Exception):
    """No usable token: the API answers 401 with this message."""


@dataclass(frozen=True, slots=True)
class Caller:
    subject: str
    roles: frozenset[Role]
    brands: frozenset[str]

    def may(self, permission: Permission) -> bool:
        return any(permission in GRANTS[role] for role in self.roles)

    def covers(self, brand_id: str) -> bool:
        return ALL_BRANDS in self.brands or brand_id in self.brands


def issue_token(
    secret: str,
    subject: str,
    roles: Iterable[Role],
    brands: Iterable[str],
    now: datetime,
    ttl: timedelta,
) -> str:
    claims = {
        "sub": subject,
        "roles": sorted(str(role) for role in roles),
        "brands": sorted(brands),
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, authorization: str | None, now: datetime) -> Caller:
    """The caller named by an `Authorization: Bearer <token>` header, or InvalidToken."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("an Authorization: Bearer <token> header is required")
    try:
        claims = jwt.decode(
            token.strip(),
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp"], "verify_exp": False},
        )
    except jwt.InvalidTokenError as error:
        raise InvalidToken(f"invalid token: {error}") from error
    if claims["exp"] <= now.timestamp():
        raise InvalidToken("the token has expired")
    try:
        roles = frozenset(Role(role) for role in claims.get("roles", []))
    except ValueError as error:
        raise InvalidToken(f"invalid token: {error}") from error
    brands = claims.get("brands", [])
    if not isinstance(brands, list) or not all(isinstance(b, str) for b in brands):
        raise InvalidToken("invalid token: brands must be a list of brand ids")
    return Caller(str(claims["sub"]), roles, frozenset(brands))
