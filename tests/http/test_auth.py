"""Bearer tokens and grants, without a server."""

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from loyalty_streams.http.auth import (
    ALL_BRANDS,
    Caller,
    InvalidToken,
    Permission,
    Role,
    TokenRules,
    issue_token,
    verify_token,
)
from loyalty_streams.settings import Settings

SECRET = "unit-tests-token-secret-of-32-bytes-or-more"
RULES = TokenRules(SECRET, max_ttl=timedelta(hours=1))
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
STAMP = int(NOW.timestamp())


def bearer(
    *roles: Role,
    brands: tuple[str, ...] = ("aurora-casino",),
    ttl_s: int = 60,
    rules: TokenRules = RULES,
) -> str:
    token = issue_token(rules, "anna", roles, brands, NOW, timedelta(seconds=ttl_s))
    return f"Bearer {token}"


def test_a_token_names_the_caller_their_roles_and_brands() -> None:
    caller = verify_token(RULES, bearer(Role.MARKETING_MANAGER), NOW)
    assert caller == Caller(
        "anna", frozenset({Role.MARKETING_MANAGER}), frozenset({"aurora-casino"})
    )
    assert caller.covers("aurora-casino") and not caller.covers("lucky-sweeps")
    everywhere = verify_token(RULES, bearer(Role.SERVICE, brands=(ALL_BRANDS,)), NOW)
    assert everywhere.covers("lucky-sweeps")


OTHER_SECRET = "another-secret-of-32-bytes-or-more!"
SOON = STAMP + 600


def signed(claims: dict[str, object], key: str | None = SECRET, algorithm: str = "HS256") -> str:
    return f"Bearer {jwt.encode(claims, key, algorithm=algorithm)}"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Authorization: Bearer"),
        ("Basic YW5uYTpwdw==", "Authorization: Bearer"),
        ("Bearer ", "Authorization: Bearer"),
        ("Bearer not-a-jwt", "invalid token"),
        (signed({"sub": "x", "exp": SOON}, OTHER_SECRET), "Signature verification failed"),
        (signed({"sub": "x", "exp": SOON}, None, "none"), "invalid token"),
        (signed({"exp": SOON}), "sub"),
        (signed({"sub": "x"}), "exp"),
        (signed({"sub": "x", "exp": SOON, "roles": ["root"]}), "roles"),
        (signed({"sub": "x", "exp": SOON, "brands": "aurora-casino"}), "brands"),
        # claims of the wrong type: refused, never a server error
        (signed({"sub": "x", "exp": str(SOON)}), "exp"),
        (signed({"sub": "x", "exp": [SOON]}), "exp"),
        (signed({"sub": "x", "exp": SOON + 0.5}), "exp"),
        (signed({"sub": "x", "exp": True}), "exp"),
        (signed({"sub": "x", "exp": SOON, "iat": "yesterday"}), "iat"),
        (signed({"sub": "x", "exp": SOON, "roles": None}), "roles"),
        (signed({"sub": "x", "exp": SOON, "roles": 3}), "roles"),
        (signed({"sub": "x", "exp": SOON, "roles": "loyalty_admin"}), "roles"),
        (signed({"sub": "x", "exp": SOON, "roles": {"loyalty_admin": True}}), "roles"),
        (signed({"sub": "x", "exp": SOON, "brands": [1]}), "brands"),
        (signed({"sub": 7, "exp": SOON}), "(?i)sub"),
        (signed({"sub": "x", "exp": SOON, "nbf": SOON}), "not valid yet"),
        # bytes outside ASCII: PyJWT raised UnicodeEncodeError, a 500
        ("Bearer \xff\xfe", "not ASCII"),
        ("Bearer éé", "not ASCII"),
    ],
)
def test_anything_but_a_valid_signed_token_is_refused(header: str | None, message: str) -> None:
    with pytest.raises(InvalidToken, match=message):
        verify_token(RULES, header, NOW)


def test_a_token_expires_by_the_workers_clock() -> None:
    header = bearer(Role.SERVICE, ttl_s=60)
    verify_token(RULES, header, NOW + timedelta(seconds=59))
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(RULES, header, NOW + timedelta(seconds=60))


def test_a_token_may_not_live_longer_than_the_longest_lifetime() -> None:
    hour = 3600
    verify_token(RULES, signed({"sub": "x", "exp": STAMP + hour, "iat": STAMP}), NOW)
    for claims in (
        {"sub": "x", "exp": STAMP + hour + 1, "iat": STAMP},  # by its own iat
        {"sub": "x", "exp": STAMP + hour + 1},  # no iat: from now
        {"sub": "x", "exp": STAMP + 10 * hour, "iat": STAMP + 9 * hour},  # iat in the future
        {"sub": "x", "exp": STAMP + 60, "iat": STAMP - 10 * hour},  # issued long ago
    ):
        with pytest.raises(InvalidToken, match="lifetime"):
            verify_token(RULES, signed(claims), NOW)
    with pytest.raises(ValueError, match="lifetime"):
        issue_token(RULES, "anna", [Role.SERVICE], ["*"], NOW, timedelta(hours=2))


def test_issuer_and_audience_when_set_are_written_and_required() -> None:
    strict = TokenRules(SECRET, timedelta(hours=1), issuer="ops.example", audience="loyalty")
    header = bearer(Role.SERVICE, rules=strict)
    claims = jwt.decode(header.split()[1], options={"verify_signature": False})
    assert (claims["iss"], claims["aud"]) == ("ops.example", "loyalty")
    assert verify_token(strict, header, NOW).roles == {Role.SERVICE}
    base = {"sub": "x", "exp": SOON}
    for claims, message in (
        (base, "iss"),
        (base | {"iss": "ops.example"}, "aud"),
        (base | {"iss": "elsewhere", "aud": "loyalty"}, "(?i)issuer"),
        (base | {"iss": "ops.example", "aud": "another-api"}, "(?i)audience"),
    ):
        with pytest.raises(InvalidToken, match=message):
            verify_token(strict, signed(claims), NOW)


def test_the_rules_come_from_the_settings() -> None:
    settings = Settings(
        api_token_secret=SECRET,
        api_token_max_ttl_s=120,
        api_token_issuer="ops.example",
        api_token_audience="loyalty",
    )
    assert TokenRules.of(settings) == TokenRules(
        SECRET, timedelta(seconds=120), "ops.example", "loyalty"
    )


def test_roles_grant_what_seed_zero_says() -> None:
    def may(role: Role) -> set[Permission]:
        return {p for p in Permission if Caller("x", frozenset({role}), frozenset()).may(p)}

    assert may(Role.LOYALTY_ADMIN) == set(Permission)
    assert may(Role.MARKETING_MANAGER) == {
        Permission.READ_PLAYERS, Permission.READ_PROGRAMMES, Permission.MANAGE_PROMOTIONS,
        Permission.EXPORT, Permission.RUN_WHAT_IF,
    }  # fmt: skip
    assert may(Role.SERVICE) == {Permission.READ_PLAYERS, Permission.READ_PROGRAMMES}
