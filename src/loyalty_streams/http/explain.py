"""Why a player has their balance and their level: `GET /loyalty/{brand_id}/{player_id}/explain`.

Answered like the lookup and the history (`players.PlayerView`): by the worker owning the
player's partition, any role that reads players, the token covering the brand. The answer is
`domain.explanation.explain` of the player's record and every history row the store keeps:

- `?limit=`: brand days of the reconciliation a page holds (default `DAYS_PAGE`, at most
  `DAYS_MAX`, every day the history keeps);
- `?cursor=`: the brand day (`YYYY-MM-DD`) the page starts at: the previous page's
  `next_cursor`, or any day. Days run oldest first, so the cursor moves forward in time.

Every page reads the player's whole kept history (a page's opening balance and the totals
depend on every row): about 150 ms for 20,000 rows, a year of a heavy player's bets.
"""

import re
from datetime import date, datetime
from http import HTTPStatus
from typing import Any

from faust.web import Request

from loyalty_streams.domain.explanation import DAYS_PAGE, explain
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.http.api_view import ApiView
from loyalty_streams.http.errors import refuse
from loyalty_streams.http.parameters import query_integer
from loyalty_streams.http.players import PlayerView
from loyalty_streams.state.keyspace import LOG_DAYS
from loyalty_streams.state.queries import history_rows
from loyalty_streams.state.retention import kept_from

DAYS_MAX = LOG_DAYS + 1
"""The most brand days a page holds: every day the history keeps."""

READS = 3
"""Times the record and the rows are read again when a checkpoint changed the record while its
rows were read."""

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Explanation(PlayerView):
    """The balance as a reconciliation of the history, and the level as a statement."""

    suffix = "/explain"

    def answer(
        self, request: Request, state: PlayerState, partition: int, now: datetime
    ) -> dict[str, Any] | None:
        query = request.query
        days = query_integer(query.get("limit"), "limit", DAYS_PAGE, DAYS_MAX)
        start = query_day(query.get("cursor"), "cursor")
        programme = self.worker.tables.catalogue.in_effect(state.brand_id, now)
        if programme is None:
            return None
        state, rows = self.read_together(state, partition)
        kept = kept_from(now)
        return explain(state, programme, rows, now, days=days, start=start, kept_from=kept)

    def read_together(
        self, state: PlayerState, partition: int
    ) -> tuple[PlayerState, list[dict[str, Any]]]:
        """The player's record and history rows as one checkpoint left them: a checkpoint
        writes both at once, so rows read between two reads of the same record are that
        record's. Read again, up to `READS` times, while the record changes."""
        store = self.worker.store(partition)
        if store is None:
            return state, []
        for _ in range(READS):
            rows = history_rows(store, state.brand_id, state.player_id)
            again, _ = self.worker.read(partition, state.key)
            if again is None or again == state:
                break
            state = again
        return state, rows


def query_day(text: str | None, name: str) -> date | None:
    """The query parameter `name`'s day, `YYYY-MM-DD`; None when absent. Raises a 400 WebError
    naming the parameter for anything else."""
    if text is None:
        return None
    if _DAY.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise refuse(HTTPStatus.BAD_REQUEST, f"{name}: {text!r} is not a day (YYYY-MM-DD)")


ROUTES: dict[str, type[ApiView]] = {"/loyalty/{brand_id}/{player_id}/explain": Explanation}
