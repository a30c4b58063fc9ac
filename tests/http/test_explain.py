"""`GET /loyalty/{brand_id}/{player_id}/explain`: the view reads the player's record and every
history row of a partition's store, together, and answers the domain's explanation; bad
parameters are 400s naming them; the route is documented with its parameters."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.web.exceptions import WebError

from loyalty_streams.domain.catalogue import Catalogue
from loyalty_streams.domain.outputs import Output, encode
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.time_rules import on_event
from loyalty_streams.http.explain import ROUTES, Explanation
from loyalty_streams.http.openapi import openapi_document
from loyalty_streams.runtime.fold import History
from loyalty_streams.state.keyspace import history_key
from loyalty_streams.state.store import RocksDBStore
from tests.domain.builders import T0, bet, programme

PATH = "/loyalty/{brand_id}/{player_id}/explain"


class Worker:
    """What the view asks of a worker: the programme, a partition's store, a player's record
    (`records`, one read after another: a checkpoint may land between two reads)."""

    def __init__(self, store: RocksDBStore, *records: PlayerState) -> None:
        self.tables = SimpleNamespace(catalogue=Catalogue([programme()]))
        self._store = store
        self.records = list(records)

    def store(self, partition: int) -> RocksDBStore:
        return self._store

    def read(self, partition: int, key: str) -> tuple[PlayerState, None]:
        record = self.records.pop(0) if len(self.records) > 1 else self.records[0]
        return record, None


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RocksDBStore]:
    made = RocksDBStore(tmp_path)
    yield made
    made.close()


def play(store: RocksDBStore, *amounts: str) -> list[PlayerState]:
    """Bets of aurora-casino:p1 an hour apart, their history rows written as a checkpoint
    writes them; the record after each."""
    state, records = None, []
    for n, amount in enumerate(amounts):
        step = on_event(state, bet(amount, occurred_at=T0 + timedelta(hours=n)), programme())
        state = step.state
        records.append(state)
        store.write(rows(step.outputs), n)
    return records


def rows(outputs: tuple[Output, ...]) -> dict[bytes, bytes | None]:
    return {
        history_key(o.brand_id, o.player_id, o.occurred_at, o.output_id): encode(o)
        for o in outputs
        if isinstance(o, History)
    }


def answer(worker: Worker, state: PlayerState, **query: str) -> dict[str, Any]:
    view = object.__new__(Explanation)
    view.worker = worker  # type: ignore[assignment]
    request: Any = SimpleNamespace(query=query)
    found = view.answer(request, state, 0, T0 + timedelta(days=1))
    assert found is not None
    return found


def test_the_answer_is_the_explanation_of_the_record_and_its_rows(store: RocksDBStore) -> None:
    (state,) = play(store, "100")
    found = answer(Worker(store, state), state)
    balance = found["balance"]
    assert (balance["total"], balance["problems"]) == ("100.00", [])
    assert balance["opening"]["history_complete"] is True
    (day,) = balance["days"]
    assert [line["kind"] for line in day["lines"]] == ["accrued"]
    assert found["level"]["current"]["name"] == "Bronze"


def test_rows_written_after_the_record_was_read_are_read_with_their_record(
    store: RocksDBStore,
) -> None:
    """The view was given the record before the second bet's checkpoint; the rows it read hold
    that bet: it reads the record again and explains the two together."""
    first, second = play(store, "100", "50")
    found = answer(Worker(store, second), first)
    assert (found["balance"]["total"], found["balance"]["problems"]) == ("150.00", [])


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "402"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "2026-13-01"}, "cursor"),
        ({"cursor": "20261102"}, "cursor"),
        ({"cursor": "0000-01-01"}, "cursor"),
        ({"cursor": "२०२६-११-०२"}, "cursor"),
    ],
)
def test_bad_parameters_are_refused_with_their_name(
    store: RocksDBStore, query: dict[str, str], named: str
) -> None:
    (state,) = play(store, "100")
    with pytest.raises(WebError) as refused:
        answer(Worker(store, state), state, **query)
    assert refused.value.code == 400 and named in refused.value.detail


def test_a_page_starts_at_the_cursor(store: RocksDBStore) -> None:
    (state,) = play(store, "100")
    assert answer(Worker(store, state), state, cursor="2026-11-03")["balance"]["days"] == []
    assert len(answer(Worker(store, state), state, cursor="2026-11-02")["balance"]["days"]) == 1


def test_the_route_is_documented_with_its_parameters() -> None:
    assert set(ROUTES) == {PATH}
    operation = openapi_document()["paths"][PATH]["get"]
    parameters = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert parameters["limit"] == {"type": "integer", "minimum": 1, "maximum": 401, "default": 31}
    assert parameters["cursor"] == {"type": "string", "format": "date"}
    assert {"brand_id", "player_id"} <= set(parameters)
    assert "loyalty_admin, marketing_manager, service" in operation["description"]
