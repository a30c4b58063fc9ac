"""Who may call the API: HS256 bearer tokens (JWT) carrying roles and the brands they cover.

A token's claims: `sub` (who; it becomes the actor of every change they make), `roles` (a list of
`loyalty_admin`, `marketing_manager`, `service`), `brands` (brand ids, or `["*"]` for all), `exp`
(an integer, required) and `iat`; `iss` and `aud` when the workers are set to require them.
Claims of another type are refused, never guessed at, and no token may live longer than the
longest lifetime the workers allow. The roles grant permissions through `GRANTS`; nothing else
decides access.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Self

import jwt
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from loyalty_streams.domain.validation import validation_summary
from loyalty_streams.settings import Settings

ALGORITHM = "HS256"
ALL_BRANDS = "*"


class Role(StrEnum):
    LOYALTY_ADMIN = "loyalty_admin"
    """Configures programmes and levels, forces statuses, re-checks levels, adjusts points,
    reads the audit."""
    MARKETING_MANAGER = "marketing_manager"
    """Views VIP data, manages promotional multipliers, exports for finance."""
    SERVICE = "service"
    """Other platform services: read-only."""


class Permission(StrEnum):
    READ_PLAYERS = "read players"
    ADJUST_POINTS = "adjust points"
    FORCE_STATUS = "force status"
    RECHECK_LEVELS = "re-check levels"
    ACT_FOR_PLAYERS = "redeem and claim for players"
    READ_PROGRAMMES = "read programmes"
    PUBLISH_PROGRAMMES = "publish programmes"
    BACKFILL_PROGRAMMES = "backfill programmes"
    MANAGE_PROMOTIONS = "manage promotions"
    EXPORT = "export"
    RUN_WHAT_IF = "run what-ifs"
    READ_AUDIT = "read the audit trail"


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.LOYALTY_ADMIN: frozenset(Permission),
    Role.MARKETING_MANAGER: frozenset(
        {
            Permission.READ_PLAYERS,
            Permission.READ_PROGRAMMES,
            Permission.MANAGE_PROMOTIONS,
            Permission.EXPORT,
            Permission.RUN_WHAT_IF,
        }
    ),
    Role.SERVICE: frozenset({Permission.READ_PLAYERS, Permission.READ_PROGRAMMES}),
}


class InvalidToken(Exception):
    """No usable token: the API answers 401 with this message."""


@dataclass(frozen=True, slots=True)
class TokenRules:
    """What a token must be besides well signed: its longest lifetime, and the issuer and
    audience it must name (None: not checked, and not written)."""

    secret: str
    max_ttl: timedelta
    issuer: str | None = None
    audience: str | None = None

    @classmethod
    def of(cls, settings: Settings) -> Self:
        """The rules the `LOYALTY_API_TOKEN_*` settings set."""
        return cls(
            settings.api_token_secret,
            timedelta(seconds=settings.api_token_max_ttl_s),
            settings.api_token_issuer,
            settings.api_token_audience,
        )


class Claims(BaseModel):
    """A token's claims once its signature, issuer and audience are verified: each of the type
    it must have (a JSON number where a time is due, a list of known roles), or refused."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sub: Annotated[StrictStr, Field(min_length=1)]
    roles: list[Role] = []
    brands: list[StrictStr] = []
    exp: StrictInt
    iat: StrictInt | None = None
    nbf: StrictInt | None = None


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
    rules: TokenRules,
    subject: str,
    roles: Iterable[Role],
    brands: Iterable[str],
    now: datetime,
    ttl: timedelta,
) -> str:
    """A signed token for `subject`, valid from `now` for `ttl`, naming the rules' issuer and
    audience when they have them. Raises ValueError when `ttl` is longer than the rules allow
    (the workers would refuse the token)."""
    if ttl > rules.max_ttl:
        raise ValueError(
            f"a lifetime of {ttl.total_seconds():g} s is above the longest the workers accept, "
            f"{rules.max_ttl.total_seconds():g} s (LOYALTY_API_TOKEN_MAX_TTL_S)"
        )
    claims: dict[str, Any] = {
        "sub": subject,
        "roles": sorted(str(role) for role in roles),
        "brands": sorted(brands),
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    if rules.issuer is not None:
        claims["iss"] = rules.issuer
    if rules.audience is not None:
        claims["aud"] = rules.audience
    return jwt.encode(claims, rules.secret, algorithm=ALGORITHM)


def verify_token(rules: TokenRules, authorization: str | None, now: datetime) -> Caller:
    """The caller named by an `Authorization: Bearer <token>` header, judged at `now` (the
    worker's clock); raises InvalidToken, with the reason, for anything else."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("an Authorization: Bearer <token> header is required")
    required = ["sub", "exp"] + ["iss"] * (rules.issuer is not None)
    required += ["aud"] * (rules.audience is not None)
    if not token.isascii():  # a JWT is base64url and dots; PyJWT would raise UnicodeEncodeError
        raise InvalidToken("invalid token: not ASCII")
    try:
        decoded = jwt.decode(
            token.strip(),
            rules.secret,
            algorithms=[ALGORITHM],
            issuer=rules.issuer,
            audience=rules.audience,
            # times are judged below, on the worker's clock, once their type is checked
            options={
                "require": required,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
        claims = Claims.model_validate(decoded)
    except jwt.InvalidTokenError as error:
        raise InvalidToken(f"invalid token: {error}") from error
    except ValidationError as error:
        raise InvalidToken(f"invalid token: {validation_summary(error)}") from error
    _check_times(claims, rules, int(now.timestamp()))
    return Caller(claims.sub, frozenset(claims.roles), frozenset(claims.brands))


def _check_times(claims: Claims, rules: TokenRules, now: int) -> None:
    """Raises InvalidToken if the token is expired, not valid yet, or lives (from its `iat`,
    or from now if that is earlier or absent) longer than the rules allow."""
    if claims.exp <= now:
        raise InvalidToken("the token has expired")
    if claims.nbf is not None and claims.nbf > now:
        raise InvalidToken("invalid token: not valid yet (nbf)")
    issued = now if claims.iat is None else min(claims.iat, now)
    if claims.exp - issued > rules.max_ttl.total_seconds():
        raise InvalidToken(
            f"invalid token: its lifetime, {claims.exp - issued} s, is above the longest "
            f"accepted, {rules.max_ttl.total_seconds():g} s"
        )
