"""Forwarding a read about a player to the worker that owns the player's partition.

Any worker can take a request: it forwards it to the owner named in `loyalty.workers`, so a load
balancer may send requests anywhere. The owner checks the token again and answers; its answer is
passed back as it is. When the owner cannot be reached, the caller (`players`) answers from this
worker's own copy instead.
"""

from collections.abc import Mapping
from urllib.parse import quote

import aiohttp
from faust.web import Request
from yarl import URL

from loyalty_streams.http.parameters import BRAND_HEADER
from loyalty_streams.runtime.worker import Worker

FORWARDED = "X-Loyalty-Forwarded-By"
"""Set on a forwarded request, so the owner answers itself instead of forwarding again."""

PASSED_ON = ("Authorization", BRAND_HEADER)
"""Headers a forwarded request keeps: the owner checks the token again."""

FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=2.0)


async def ask_owner(
    worker: Worker,
    partition: int,
    request: Request,
    brand_id: str,
    player_id: str,
    suffix: str,
) -> tuple[int, bytes] | None:
    """The status and JSON body with which the owner of `partition` answers `request`, a GET
    of `/loyalty/{brand_id}/{player_id}{suffix}` with its query. None when this worker is to
    answer itself: it owns the partition, the request was forwarded to it, no owner is known,
    or the owner cannot be reached within `FORWARD_TIMEOUT`."""
    if request.headers.get(FORWARDED) or worker.owns(partition):
        return None
    owner = worker.owner_url(partition)
    if owner is None:
        return None
    url = owner_url(owner, brand_id, player_id, suffix, request.query)
    headers = {FORWARDED: worker.worker_id}
    headers |= {name: request.headers[name] for name in PASSED_ON if name in request.headers}
    try:
        async with (
            aiohttp.ClientSession(timeout=FORWARD_TIMEOUT) as session,
            session.get(url, headers=headers) as reply,
        ):
            return reply.status, await reply.read()
    except (aiohttp.ClientError, TimeoutError):
        return None


def owner_url(
    owner: str, brand_id: str, player_id: str, suffix: str, query: Mapping[str, str]
) -> URL:
    """The URL at which the worker at `owner` answers `/loyalty/{brand_id}/{player_id}{suffix}`
    with `query`: each id quoted whole, so a `%`, `#`, `?` or `/` in it stays part of the id."""
    path = f"/loyalty/{quote(brand_id, safe='')}/{quote(player_id, safe='')}{suffix}"
    return URL(f"{owner}{path}", encoded=True).with_query(query)
