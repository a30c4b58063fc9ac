"""The player table's store on real RocksDB: what survives a crash and what a clean close keeps;
and the player record's format, as stored and logged."""

import multiprocessing
import os
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from loyalty_streams.domain.player import PlayerState
from loyalty_streams.state.store import (
    PLAYER_FORMAT,
    PlayerTable,
    RocksDBStore,
    UnknownFormat,
    decode_player,
    encode_player,
    player_fields,
)

PLAYER = PlayerState(
    "aurora-casino",
    "p1",
    level_rank=2,
    level_since=datetime(2026, 11, 21, 9, 30, tzinfo=UTC),
    points_available=Decimal("12.50"),
    buckets={20_000: Decimal("40")},
)


def _write_and_crash(path: Path, batches: int) -> None:
    store = RocksDBStore(path)
    for offset in range(batches):
        store.write({f"player-{offset}".encode(): b"{}"}, offset)
    os._exit(0)  # no close, no flush: as a SIGKILL would leave it


def test_a_crash_loses_a_suffix_of_batches_and_the_offset_agrees_with_the_records(
    tmp_path: Path,
) -> None:
    process = multiprocessing.get_context("spawn").Process(
        target=_write_and_crash, args=(tmp_path, 50)
    )
    process.start()
    process.join(30)
    assert process.exitcode == 0
    store = RocksDBStore(tmp_path)
    kept = {key for key, _ in store.items()}
    # whatever survived is batches 0..offset, no more and no fewer: the restore replays the rest
    assert kept == {f"player-{n}".encode() for n in range(store.changelog_offset + 1)}
    store.close()


def test_a_closed_store_keeps_every_batch(tmp_path: Path) -> None:
    store = RocksDBStore(tmp_path)
    for offset in range(50):
        store.write({f"player-{offset}".encode(): b"{}"}, offset)
    store.close()
    reopened = RocksDBStore(tmp_path)
    assert reopened.changelog_offset == 49
    assert len(list(reopened.items())) == 50
    reopened.close()


def test_a_record_is_stored_with_its_format_first_and_reads_back_equal() -> None:
    raw = encode_player(PLAYER)
    assert next(iter(orjson.loads(raw).items())) == ("format", PLAYER_FORMAT)
    assert decode_player(raw) == PLAYER


def test_a_record_written_before_formats_is_format_1_and_still_reads(tmp_path: Path) -> None:
    table = PlayerTable(tmp_path)
    table.partition(0).write({PLAYER.key.encode(): PLAYER.to_json()}, 0)  # as stores hold them
    table.partition(1).write({PLAYER.key.encode(): encode_player(PLAYER)}, 0)
    assert table.player(0, PLAYER.key) == table.player(1, PLAYER.key) == PLAYER
    table.close()


def test_a_record_of_a_later_format_is_refused() -> None:
    raw = b'{"format":%d,' % (PLAYER_FORMAT + 1) + PLAYER.to_json()[1:]
    with pytest.raises(UnknownFormat, match=f"format {PLAYER_FORMAT + 1}"):
        decode_player(raw)
    with pytest.raises(UnknownFormat, match=f"format {PLAYER_FORMAT + 1}"):
        player_fields(raw)


def test_a_reader_of_a_few_fields_gets_the_same_fields_from_every_format_it_reads() -> None:
    old, new = player_fields(PLAYER.to_json()), player_fields(encode_player(PLAYER))
    assert new.pop("format") == PLAYER_FORMAT
    assert old == new and new["points_available"] == "12.50"


def test_a_compacted_store_holds_what_it_held(tmp_path: Path) -> None:
    store = RocksDBStore(tmp_path)
    store.write({f"player-{n}".encode(): b"{}" for n in range(100)}, 0)
    store.write(dict.fromkeys(f"player-{n}".encode() for n in range(0, 100, 2)), 1)
    store.compact()
    assert [key for key, _ in store.items()] == sorted(
        f"player-{n}".encode() for n in range(1, 100, 2)
    )
    assert store.changelog_offset == 1
    store.close()
