"""What the Redis mirror writes for a player: the lookup's figures, as exact strings; what it
leaves out: a record it cannot read."""

from datetime import timedelta

import pytest

from loyalty_streams.domain.event_rules import apply
from loyalty_streams.services.redis_mirror import (
    FIELDS,
    Decoded,
    mirror_fields,
    redis_key,
    run_redis_mirror,
)
from loyalty_streams.settings import Settings
from loyalty_streams.state.store import PLAYER_FORMAT, decode_player, encode_player
from tests.domain.builders import T0, bet, command, programme, received

AURORA = programme()


def test_a_player_hash_holds_level_points_and_turnover_as_the_lookup_shows_them() -> None:
    state, _ = apply(None, bet("12000.50"), AURORA)
    state, _ = received(state, command("RedeemPoints", points="1000", command_id="r1"), AURORA)
    # the mirror reads records back from the changelog
    fields = mirror_fields(decode_player(encode_player(state)), AURORA, T0)
    assert fields == {
        "level": "Silver",
        "level_rank": "2",
        "points_available": "11000.50",
        "points_held": "1000",
        "cumulative_turnover": "12000.50",
        "rolling_30d": "12000.50",
        "vip_points": str(state.vip_points),
        "turnover_currency": "EUR",
        "as_of": T0.isoformat(),
    }
    assert tuple(fields) == FIELDS


def test_the_30_day_figure_is_the_one_at_the_time_of_writing() -> None:
    state, _ = apply(None, bet("250000"), AURORA)
    later = mirror_fields(state, AURORA, T0 + timedelta(days=31))
    assert (later["cumulative_turnover"], later["rolling_30d"]) == ("250000", "0")


def test_a_points_based_brand_mirrors_its_30_days_in_vip_points() -> None:
    sweeps = programme("lucky-sweeps")
    state, _ = apply(
        None, bet("1200", "live_casino", brand_id="lucky-sweeps", currency="SC"), sweeps
    )
    fields = mirror_fields(state, sweeps, T0)
    assert fields["turnover_currency"] == "SC"
    assert fields["rolling_30d"] == fields["vip_points"] == "1200"


def test_a_record_of_a_later_format_or_no_record_is_left_out_and_the_others_written() -> None:
    state, _ = apply(None, bet("100"), AURORA)
    newer = b'{"format":%d,' % (PLAYER_FORMAT + 1) + state.to_json()[1:]
    decoded = Decoded.of(
        {
            b"aurora-casino:new": newer,
            b"aurora-casino:p1": encode_player(state),
            b"aurora-casino:old": state.to_json(),  # format 1: read
            b"aurora-casino:gone": None,  # a tombstone: the hash is deleted
            b"aurora-casino:junk": b"{}",
        }
    )
    assert decoded.players == {
        b"aurora-casino:p1": state,
        b"aurora-casino:old": state,
        b"aurora-casino:gone": None,
    }
    assert decoded.unreadable.keys() == {b"aurora-casino:new", b"aurora-casino:junk"}
    assert f"format {PLAYER_FORMAT + 1}" in decoded.unreadable[b"aurora-casino:new"]


def test_keys_are_the_prefix_and_the_changelog_key() -> None:
    assert redis_key("loyalty:", b"aurora-casino:p1") == "loyalty:aurora-casino:p1"


def test_without_redis_settings_the_mirror_refuses_to_start(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_redis_mirror(Settings(redis_url=None, redis_sentinels=None)) == 2
    assert "LOYALTY_REDIS_URL" in capsys.readouterr().err


def test_a_sentinel_address_without_a_port_is_refused_with_the_variable_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_redis_mirror(Settings(redis_sentinels="127.0.0.1:26379,sentinel-b")) == 2
    assert "LOYALTY_REDIS_SENTINELS: 'sentinel-b' is not host:port" in capsys.readouterr().err
