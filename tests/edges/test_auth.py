"""Bearer tokens and grants, without a server."""

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from loyalty_streams.edges.auth import (
    ALL_BRANDS,
    Caller,
    InvalidToken,
    Permission,
    Role,
    issue_token,
    verify_token,
)

SECRET = "unit-tests-token-secret-of-32-bytes-or-more"
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)


def bearer(*roles: Role, brands: tuple[str, ...] = ("aurora-casino",), ttl_s: int = 60) -> str:
    token = issue_token(SECRET, "anna", roles, brands, NOW, timedelta(seconds=ttl_s))
    return f"Bearer {token}"


def test_a_token_names_the_caller_their_roles_and_brands() -> None:
    caller = verify_token(SECRET, bearer(Role.MARKETING_MANAGER), NOW)
    assert caller == Caller(
        "anna", frozenset({Role.MARKETING_MANAGER}), frozenset({"aurora-casino"})
    )
    assert caller.covers("aurora-casino") and not caller.covers("lucky-sweeps")
    everywhere = verify_token(SECRET, bearer(Role.SERVICE, brands=(ALL_BRANDS,)), NOW)
    assert everywhere.covers("lucky-sweeps")


OTHER_SECRET = "another-secret-of-32-bytes-or-more!"
LATER = 2**40


def signed(claims: dict[str, object], key: str | None = SECRET, algorithm: str = "HS256") -> str:
    return f"Bearer {jwt.encode(claims, key, algorithm=algorithm)}"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Authorization: Bearer"),
        ("Basic YW5uYTpwdw==", "Authorization: Bearer"),
        ("Bearer ", "Authorization: Bearer"),
        ("Bearer not-a-jwt", "invalid token"),
        (signed({"sub": "x", "exp": LATER}, OTHER_SECRET), "Signature verification failed"),
        (signed({"sub": "x", "exp": LATER}, None, "none"), "invalid token"),
        (signed({"exp": LATER}), "sub"),
        (signed({"sub": "x", "exp": LATER, "roles": ["root"]}), "root"),
        (signed({"sub": "x", "exp": LATER, "brands": "aurora-casino"}), "brands"),
    ],
)
def test_anything_but_a_valid_signed_token_is_refused(header: str | None, message: str) -> None:
    with pytest.raises(InvalidToken, match=message):
        verify_token(SECRET, header, NOW)


def test_a_token_expires_by_the_workers_clock() -> None:
    header = bearer(Role.SERVICE, ttl_s=60)
    verify_token(SECRET, header, NOW + timedelta(seconds=59))
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(SECRET, header, NOW + timedelta(seconds=60))


def test_roles_grant_what_seed_zero_says() -> None:
    def may(role: Role) -> set[Permission]:
        return {p for p in Permission if Caller("x", frozenset({role}), frozenset()).may(p)}

    assert may(Role.LOYALTY_ADMIN) == set(Permission)
    assert may(Role.MARKETING_MANAGER) == {
        Permission.READ_PLAYERS, Permission.READ_PROGRAMMES, Permission.MANAGE_PROMOTIONS,
        Permission.EXPORT,
    }  # fmt: skip
    assert may(Role.SERVICE) == {Permission.READ_PLAYERS, Permission.READ_PROGRAMMES}
