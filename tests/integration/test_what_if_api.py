"""A what-if through the API on a real worker and broker: the worker folds a stream of
aurora-casino play, a marketing manager submits the proposal that lowers Silver's threshold from
10,000 to 5,000 EUR, and the job (a process spawned by the worker, replaying the topic) reports
the players the stream puts between the two thresholds as moved, the others where the worker
has them, an HTML page with its plotly charts, and no output of its own; a service may neither
submit nor read it."""

import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.http.auth import Role
from loyalty_streams.kafka.reading import read_topics
from loyalty_streams.kafka.topics import POINTS_ACCRUED
from tests.integration.conftest import Cluster, call, get, settled, token, wait_until
from tests.whatif.support import AURORA, PLAYS, aurora, bet, changed_levels, deposit

MARKETING = token(Role.MARKETING_MANAGER, brands=[AURORA], subject="mark")
SERVICE = token(Role.SERVICE, brands=[AURORA])
# turnover: a 3,000, b 6,000, c 9,999.99, d 12,000, e 5,000, f 60,000, h 10,000; g deposits
PLAYERS = "abcdefgh"
MOVED = {"b", "c", "e"}
"""Between 5,000 (included) and 10,000 (excluded): Silver only under the proposal."""
JOB_WAIT_S = 25.0


def stream(start: datetime) -> list[PlayerEvent]:
    minute = timedelta(minutes=1)
    events: list[PlayerEvent] = [
        bet(player, amount, start + i * minute) for i, (player, amount) in enumerate(PLAYS)
    ]
    events.append(deposit("g", "50", start + 30 * minute))
    return events


def page(url: str, bearer: str) -> tuple[int, str, str]:
    """GET `url`: the status, the content type and the text."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {bearer}"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return reply.status, reply.headers.get_content_type(), reply.read().decode()


def test_a_marketing_manager_runs_a_what_if_and_fetches_its_report(cluster: Cluster) -> None:
    worker = cluster.worker("what-if")
    cluster.publish(stream(datetime.now(UTC) - timedelta(hours=1)))
    lookups: dict[str, dict[str, Any]] = {}

    def folded() -> bool:
        for player in PLAYERS:
            status, found = get(worker, f"/loyalty/{AURORA}/{player}")
            if status == 200:
                lookups[player] = found
        return len(lookups) == len(PLAYERS)

    wait_until(folded, 60, "the worker to fold the stream")
    settled(worker)
    levels = {player: lookups[player]["level"]["name"] for player in PLAYERS}
    assert levels["d"] == "Silver" and levels["b"] == "Bronze"  # the worker's own view

    proposal = {"programme": changed_levels(aurora(), 2, Silver="5000").model_dump(mode="json")}
    path = f"/loyalty/what-if/{AURORA}"
    status, refused = call(worker, "POST", path, proposal, SERVICE)
    assert (status, refused["error"]) == (403, "service may not run what-ifs")
    status, accepted = call(worker, "POST", path, proposal, MARKETING)
    assert status == 202, accepted
    base = f"http://127.0.0.1:{worker.settings.web_port}"
    job_path = f"/loyalty/what-if/jobs/{accepted['job_id']}"
    assert accepted["url"] == base + job_path

    deadline = time.monotonic() + JOB_WAIT_S
    job = get(worker, job_path, MARKETING)[1]
    while job["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        job = get(worker, job_path, MARKETING)[1]
    assert job["status"] == "done", (job, worker.log_tail())
    assert get(worker, job_path, SERVICE)[0] == 403

    report = job["report"]
    assert (report["brand_id"], report["baseline_versions"]) == (AURORA, [1])
    assert report["stats"]["events"] == len(PLAYS) + 1
    moves = Counter({(m["baseline"], m["proposal"]): m["players"] for m in report["moves"]})
    expected = Counter((levels[p], "Silver" if p in MOVED else levels[p]) for p in PLAYERS)
    assert moves == expected
    assert {p["player_id"] for p in report["affected"] if p["level_change"]} == MOVED
    at_end = dict.fromkeys(report["levels"], 0) | Counter(levels.values())
    assert report["total"]["baseline"]["players"] == at_end

    status, kind, html = page(base + job_path + "/report.html", MARKETING)
    assert (status, kind) == (200, "text/html")
    assert "Plotly.newPlot" in html and 'id="chart-moves"' in html and 'id="chart-levels"' in html
    status, kind, moves_csv = page(base + job_path + "/report.csv?table=moves", MARKETING)
    assert (status, kind) == (200, "text/csv")
    assert moves_csv.startswith("baseline_level,proposal_level,players\n")

    # the job wrote nothing to a topic: the accruals are the worker's, one per bet
    accrued = read_topics(cluster.settings, [POINTS_ACCRUED], until=lambda _: True, timeout=5)
    assert len(accrued[POINTS_ACCRUED]) == len(PLAYS)
    assert {orjson.loads(r.value or b"{}")["player_id"] for r in accrued[POINTS_ACCRUED]} == set(
        "abcdefh"
    )
    assert f"what-if job {accepted['job_id']} of {AURORA} (by mark) done" in worker.log_text()
