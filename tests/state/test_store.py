"""The player table's store on real RocksDB: what survives a crash and what a clean close keeps."""

import multiprocessing
import os
from pathlib import Path

from loyalty_streams.state.store import RocksDBStore


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
