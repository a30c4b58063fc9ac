"""The test driver's own promises: the examples of its docstring run as written, and a player
put in the store is found by the time-driven work as a checkpointed one is."""

import textwrap
from pathlib import Path
from typing import Any

from loyalty_streams.runtime import test_driver
from loyalty_streams.runtime.test_driver import WorkerDriver
from loyalty_streams.state.keyspace import PLAYER, timer_key
from loyalty_streams.state.store import decode_player
from tests.domain.builders import T0, bet, programme
from tests.runtime.test_timers import player


def examples() -> list[str]:
    """The code blocks of the driver's module docstring: runs of indented lines (blank lines
    inside a block included), in order."""
    blocks: list[list[str]] = []
    inside = False
    for line in (test_driver.__doc__ or "").splitlines():
        if line.startswith("    "):
            if not inside:
                blocks.append([])
            blocks[-1].append(line)
            inside = True
        elif line.strip():
            inside = False
        elif inside:
            blocks[-1].append(line)
    return [textwrap.dedent("\n".join(block)) for block in blocks]


def test_the_module_examples_run_as_written(tmp_path: Path) -> None:
    found = examples()
    assert len(found) == 3  # the checkpointed bet, the crash mid-checkpoint, exactly-once
    names: dict[str, Any] = {}
    for number, code in enumerate(found):
        names["directory"] = tmp_path / f"example-{number}"
        exec(compile(code, f"test_driver example {number}", "exec"), names)


def test_a_player_put_in_the_store_is_indexed_as_a_checkpoint_leaves_it(tmp_path: Path) -> None:
    rules = programme()
    driver = WorkerDriver(tmp_path, lambda brand, at: rules, now=T0)
    state = player(bet("100"))
    assert state.timer_at is not None
    driver.put_player(state)
    assert driver.player(state.key) == state
    store = driver.store(driver.partition_of(state.key))
    assert store.get(timer_key(state.timer_at, PLAYER, state.key.encode())) == b""
    raw = store.get(state.key.encode())
    assert raw is not None and decode_player(raw) == state
    driver.close()
