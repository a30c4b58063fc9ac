"""The back office in a real browser (Debian's Chromium, headless, driven by Playwright) against a
real worker on the embedded broker: sign in, a player who played with the numbers the API gives,
an adjustment seen in the history and the audit trail, a refusal by the rules, the keyboard
alone through a dialog, a marketing manager kept from admin actions (and refused by the API when
the page is forced), the promotions editor and a diff of versions, a what-if report.

Any console error or uncaught exception on a page fails its test, except the browser's own line
for an answer the test asked for (a 403 or a 409 the page shows). A screenshot of each main
screen is kept in `LOYALTY_BACKOFFICE_ARTIFACTS` (default `.artifacts/backoffice/`).
"""

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from loyalty_streams.devtools.broker import EmbeddedBroker
from loyalty_streams.devtools.process import ServiceProcess
from loyalty_streams.http.auth import Role
from tests.integration.conftest import Cluster, cluster_on, get, settled, token, wait_until
from tests.whatif.support import AURORA, bet

CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium (`make test` installs it): Playwright never downloads a browser here."""
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("LOYALTY_BACKOFFICE_ARTIFACTS", ROOT / ".artifacts" / "backoffice"))
LAPTOP = {"width": 1366, "height": 900}
TABLET = {"width": 768, "height": 1024}
TIMEOUT_MS = 20_000

ADMIN = token(Role.LOYALTY_ADMIN, subject="anna")
MARKETING = token(Role.MARKETING_MANAGER, brands=[AURORA], subject="mark")
PLAYS = [("p1", "3000"), ("p2", "4000"), ("p2", "2000"), ("p3", "12000"), ("p4", "700.55")]
"""Turnover (EUR): p1 3,000, p2 6,000 (Silver at 5,000 in the what-if), p3 12,000 (Silver),
p4 700.55."""
PLAYERS = ("p1", "p2", "p3", "p4")
FORGED = ".".join(
    [*ADMIN.split(".")[:2], "A" * len(ADMIN.split(".")[2])]
)  # well formed, its claims readable, its signature wrong
IN = "\N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK}"
"""Between the parts of a field's path in the page's differences: levels, Silver, threshold."""


@dataclass
class Stack:
    cluster: Cluster
    worker: ServiceProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.worker.settings.web_port}/backoffice/"


@dataclass
class Tab:
    """A page of the browser, with what it logged that an error is."""

    page: Page
    errors: list[str] = field(default_factory=list)
    allowed: set[int] = field(default_factory=set)
    """Statuses the test asks for: the browser's "Failed to load resource" line for them is not
    the page's error."""
    fail: set[str] = field(default_factory=set)
    """Addresses the test makes fail (an aborted request): the browser's line is not an error."""

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        status = re.search(r"the server responded with a status of (\d{3})", message.text)
        if "net::ERR_FAILED" in message.text and any(
            u in message.location["url"] for u in self.fail
        ):
            return
        if status is None or int(status.group(1)) not in self.allowed:
            self.errors.append(f"console.error: {message.text} ({message.location})")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One broker and one worker for the module, with aurora-casino play folded."""
    clusters = cluster_on(EmbeddedBroker(), tmp_path_factory.mktemp("backoffice"))
    cluster = next(clusters)
    try:
        worker = cluster.worker("backoffice")
        start = datetime.now(UTC) - timedelta(hours=1)
        cluster.publish(
            [bet(p, amount, start + timedelta(minutes=i)) for i, (p, amount) in enumerate(PLAYS)]
        )
        wait_until(
            lambda: all(get(worker, f"/loyalty/{AURORA}/{p}")[0] == 200 for p in PLAYERS),
            60,
            "the worker to fold the play",
        )
        settled(worker)
        yield Stack(cluster, worker)
    finally:
        clusters.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("the back office tests need Debian's Chromium: apt-get install chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def open_tab(browser: Browser) -> Iterator[Any]:
    """`open_tab(viewport)`: a fresh context and page; every tab is checked for errors after
    the test."""
    tabs: list[Tab] = []

    def opened(viewport: dict[str, int] = LAPTOP) -> Tab:
        context = browser.new_context(viewport=viewport, locale="en-GB")
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        tab = Tab(page)
        page.on("console", tab.on_console)
        page.on("pageerror", lambda error: tab.errors.append(f"page error: {error}"))
        tabs.append(tab)
        return tab

    yield opened
    for tab in tabs:
        tab.page.context.close()
    assert [error for tab in tabs for error in tab.errors] == []


def sign_in(tab: Tab, stack: Stack, bearer: str) -> Page:
    page = tab.page
    page.goto(stack.url)
    page.get_by_label("Bearer token").fill(bearer)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#screen-players")).to_be_visible()
    return page


def look_up(page: Page, player: str) -> None:
    screen = page.locator("#screen-players")
    screen.get_by_label("Brand", exact=True).select_option(AURORA)
    screen.get_by_label("Player id").fill(player)
    screen.get_by_role("button", name="Look up").click()
    expect(page.locator("#player-heading")).to_contain_text(player)
    expect(page.locator("table.history tbody tr").first).to_be_visible()


def shoot(page: Page, name: str) -> None:
    """A screenshot of the whole page, named for the screen and the width."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    page.screenshot(path=ARTIFACTS / f"{name}-{width}.png", full_page=True)


def grouped(amount: str) -> str:
    """A decimal string as the page writes it: digits grouped by threes, the fraction kept."""
    whole, _, fraction = amount.partition(".")
    text = f"{int(whole):,}"
    return f"{text}.{fraction}" if fraction else text


def confirm(page: Page) -> None:
    dialog = page.locator("#confirm")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=re.compile("^(?!Cancel)")).click()


def chart_datasets(page: Page, selector: str) -> list[int]:
    """How many points each chart under `selector` draws (Chart.js's own instances)."""
    counts: list[int] = page.eval_on_selector_all(
        f"{selector} canvas",
        "canvases => canvases.map(c => Chart.getChart(c)).map(c => c ? c.data.datasets.length : 0)",
    )
    return counts


def test_sign_in_and_see_the_numbers_the_api_gives(stack: Stack, open_tab: Any) -> None:
    for viewport in (LAPTOP, TABLET):
        tab = open_tab(viewport)
        tab.allowed.add(401)
        page = tab.page
        page.goto(stack.url.rstrip("/"))  # /backoffice redirects to the page
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        shoot(page, "sign-in")
        page.get_by_label("Bearer token").fill("not a token")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#sign-in-error")).to_contain_text("This is not a token")
        # well formed is not enough: who you are shows only once the API took the token
        page.get_by_label("Bearer token").fill(FORGED)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#sign-in-error")).to_contain_text("The API refused the token:")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        expect(page.locator("#who")).to_be_hidden()
        assert page.evaluate("sessionStorage.length") == 0

        # a token pasted across lines is one token: the line breaks and spaces are dropped
        sign_in(tab, stack, f"{ADMIN[:40]}\n{ADMIN[40:90]}\r\n  {ADMIN[90:]}\n")
        expect(page.locator("#who-subject")).to_have_text("anna")
        expect(page.locator("#who-roles")).to_have_text("Loyalty admin")
        expect(page.locator("#who-brands")).to_have_text("all brands")
        expect(page.get_by_role("link", name="Audit trail")).to_be_visible()

        # a request that cannot be made ends "Looking up…" with the error
        page.route("**/loyalty/aurora-casino/nobody", lambda route: route.abort())
        tab.fail.add("/loyalty/aurora-casino/nobody")
        screen = page.locator("#screen-players")
        screen.get_by_label("Player id").fill("nobody")
        screen.get_by_role("button", name="Look up").click()
        expect(page.locator("#lookup-message")).to_contain_text("The look-up failed:")
        expect(page.locator("#lookup-message")).to_have_attribute("data-kind", "error")

        look_up(page, "p3")
        status, api = get(stack.worker, f"/loyalty/{AURORA}/p3", ADMIN)
        assert status == 200
        assert api["level"]["name"] == "Silver"
        expect(page.locator('[data-field="level.name"]')).to_have_text(api["level"]["name"])
        expect(page.locator('[data-field="points.available"]')).to_have_text(
            grouped(api["points"]["available"])
        )
        expect(page.locator('[data-field="points.held"]')).to_have_text(
            grouped(api["points"]["held"])
        )
        needed = api["progress"]["next_level"]["still_needed"]
        expect(page.locator("#card-progress").locator("..")).to_contain_text(
            f"{grouped(needed)} EUR to Gold"
        )
        assert chart_datasets(page, "#player-summary") == [2]  # reached and still needed
        history = get(stack.worker, f"/loyalty/{AURORA}/p3/history", ADMIN)[1]["history"]
        expect(page.locator("table.history tbody tr")).to_have_count(len(history))
        expect(page.locator("table.history tbody tr").first).to_contain_text("Points accrued")
        shoot(page, "player")
        # nothing makes the page scroll sideways, at either width, not even a huge balance
        page.evaluate(
            "document.querySelector('[data-field=\"points.available\"]').textContent = "
            "'99,999,999,999,999,999,999,999,999.99'"
        )
        assert page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )

        page.get_by_role("tab", name="Explanation").click()
        expect(page.locator("#explain")).to_contain_text("Every movement reconciles")
        expect(page.locator("#explain")).to_contain_text(
            f"{grouped(api['points']['available'])} points"
        )
        assert chart_datasets(page, "#explain") == [1]  # the balance over time
        shoot(page, "explanation")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_an_adjustment_shows_in_the_history_and_the_audit_trail(
    stack: Stack, open_tab: Any
) -> None:
    tab = open_tab()
    tab.allowed.add(409)
    page = sign_in(tab, stack, ADMIN)
    look_up(page, "p1")
    before = get(stack.worker, f"/loyalty/{AURORA}/p1", ADMIN)[1]["points"]["available"]
    assert before == "3000.00"

    adjust = page.locator("#adjust")
    # the Direction gives the sign: a negative or zero amount is refused here, nothing sent
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    for amount, says in (("-5", "positive amount"), ("0", "more than 0"), ("1.005", "2 decimal")):
        adjust.get_by_label("Points").fill(amount)
        adjust.get_by_label("Reason").fill("a typo")
        adjust.get_by_role("button", name="Adjust points…").click()
        expect(adjust.locator(".result")).to_contain_text(says)
        expect(page.locator("#confirm")).to_be_hidden()
    assert posts == []
    adjust.get_by_label("Points").fill("250")
    adjust.get_by_label("Reason").fill("goodwill from the back office")
    adjust.get_by_role("button", name="Adjust points…").click()
    expect(page.locator("#confirm-title")).to_have_text(f"Credit 250 points to p1 at {AURORA}?")
    shoot(page, "confirm-dialog")
    confirm(page)
    expect(adjust.locator(".result")).to_contain_text("Applied (200).")
    expect(adjust.locator(".result")).to_contain_text("Points adjusted +250")
    after = get(stack.worker, f"/loyalty/{AURORA}/p1", ADMIN)[1]["points"]["available"]
    assert after == "3250.00"
    expect(page.locator('[data-field="points.available"]')).to_have_text(grouped(after))
    rows = page.locator("table.history tbody tr")
    expect(rows.first).to_contain_text("Operator's command")  # the command's audit entry
    expect(rows.first).to_contain_text("points.adjust applied by anna")
    newest = rows.filter(has_text="Points adjusted").first
    expect(newest).to_contain_text("+250")
    expect(newest).to_contain_text("credit by anna: goodwill from the back office")

    # the rules refuse a debit below zero: 409 with the rule's code and reason
    adjust.get_by_label("Debit").check()
    adjust.get_by_label("Points").fill("99999")
    adjust.get_by_label("Reason").fill("too much")
    adjust.get_by_role("button", name="Adjust points…").click()
    confirm(page)
    expect(adjust.locator(".result")).to_contain_text(
        "Refused by the rules (409): insufficient_points."
    )
    expect(rows.filter(has_text="Command refused")).to_have_count(1)

    # the history's filters: adjustments only
    page.locator("#history-filter summary").click()
    page.get_by_label("Points adjusted").check()
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("table.history tbody tr")).to_have_count(1)

    page.get_by_role("link", name="Audit trail").click()
    audit = page.locator("#screen-audit")
    audit.get_by_label("Brand", exact=True).select_option(AURORA)
    audit.get_by_label("Player id").fill("p1")
    audit.get_by_label("Action").select_option("points.adjust")
    audit.get_by_role("button", name="Search").click()
    rows = page.locator("table.audit > tbody > tr")
    expect(rows).to_have_count(2)  # the credit, and the debit refused
    expect(rows.filter(has_text="goodwill from the back office")).to_contain_text("anna")
    expect(rows.filter(has_text="goodwill from the back office")).to_contain_text("applied")
    expect(rows.filter(has_text="too much")).to_contain_text("rejected")
    entries = get(stack.worker, f"/loyalty/audit?brand_id={AURORA}&player_id=p1", ADMIN)[1]
    assert entries["total"] == 2
    credit = rows.filter(has_text="goodwill from the back office")
    credit.locator("summary").first.click()
    expect(credit.locator("table.diff")).to_contain_text("3000.00")  # available, before
    expect(credit.locator("table.diff")).to_contain_text("3250.00")  # and after
    shoot(page, "audit")


def tab_to(page: Page, selector: str, most: int = 60) -> None:
    """Press Tab until the element `selector` names has the focus."""
    for _ in range(most):
        if page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def focused(page: Page) -> str:
    return str(page.evaluate("document.activeElement.id"))


def test_the_keyboard_alone_forces_a_level_through_the_dialog(stack: Stack, open_tab: Any) -> None:
    page = open_tab().page
    page.goto(stack.url)
    assert focused(page) == "token"  # the sign-in screen starts in its field
    page.keyboard.insert_text(ADMIN)
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#screen-players")).to_be_visible()
    assert focused(page) == "players-title"
    tab_to(page, "#lookup-player")
    page.keyboard.type("p2")
    page.keyboard.press("Enter")
    expect(page.locator("#player-heading")).to_contain_text("p2")
    assert focused(page) == "player-heading"

    tab_to(page, "#force-level")
    page.keyboard.type("Gold")
    page.keyboard.press("Tab")
    page.keyboard.type("VIP deal")
    tab_to(page, "#force button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.locator("#confirm")).to_be_visible()
    assert focused(page) == "confirm-cancel"  # the safe choice first
    page.keyboard.press("Escape")  # closes it, and nothing is sent
    expect(page.locator("#confirm")).to_be_hidden()
    assert page.evaluate("document.activeElement.textContent") == "Force the level…"
    expect(page.locator("#force .result")).to_be_hidden()
    assert get(stack.worker, f"/loyalty/{AURORA}/p2", ADMIN)[1]["forced_level"] is None

    page.keyboard.press("Enter")
    expect(page.locator("#confirm-title")).to_have_text(f"Force p2 at {AURORA} to Gold?")
    page.keyboard.press("Tab")
    assert focused(page) == "confirm-ok"
    page.keyboard.press("Tab")  # the focus stays in the dialog
    assert focused(page) == "confirm-cancel"
    page.keyboard.press("Shift+Tab")
    assert focused(page) == "confirm-ok"
    page.keyboard.press("Enter")
    expect(page.locator("#force .result")).to_contain_text("Applied (200).")
    expect(page.locator("#force .result")).to_contain_text("Level changed: Bronze → Gold")
    expect(page.locator('[data-field="level.name"]')).to_have_text("Gold")
    forced = get(stack.worker, f"/loyalty/{AURORA}/p2", ADMIN)[1]
    assert (forced["level"]["name"], forced["forced_level"]["actor"]) == ("Gold", "anna")

    # the record's tabs: arrows move between them
    tab_to(page, "#tab-history")
    page.keyboard.press("ArrowRight")
    assert focused(page) == "tab-explain"
    expect(page.locator("#panel-explain")).to_be_visible()
    expect(page.locator("#panel-history")).to_be_hidden()


def test_a_marketing_manager_edits_promotions_but_is_refused_admin_actions(
    stack: Stack, open_tab: Any
) -> None:
    tab = open_tab()
    tab.allowed.add(403)
    page = sign_in(tab, stack, MARKETING)
    expect(page.locator("#who-roles")).to_have_text("Marketing manager")
    expect(page.locator("#who-brands")).to_have_text(AURORA)
    expect(page.get_by_role("link", name="Audit trail")).to_be_hidden()
    expect(page.get_by_role("link", name="What-if")).to_be_visible()
    page.evaluate("location.hash = '#/audit'")  # typed: the screen is not rendered
    expect(page.locator("#denied-message")).to_have_text("Your role cannot see the audit trail.")
    expect(page.locator("#screen-audit")).to_be_hidden()
    page.get_by_role("link", name="Players").click()
    look_up(page, "p4")
    expect(page.locator("#actions")).to_be_hidden()

    # forced into view, the page's call is the API's to refuse: 403, shown as it says
    page.evaluate(
        "for (const id of ['actions', 'adjust']) document.getElementById(id).hidden = false"
    )
    adjust = page.locator("#adjust")
    adjust.get_by_label("Points").fill("1000")
    adjust.get_by_label("Reason").fill("a favour")
    adjust.get_by_role("button", name="Adjust points…").click()
    confirm(page)
    expect(adjust.locator(".result")).to_contain_text(
        "403: marketing_manager may not adjust points"
    )
    assert get(stack.worker, f"/loyalty/{AURORA}/p4", ADMIN)[1]["points"]["credited"] == "0"

    # the promotions editor: a new version with a weekend's double points
    page.get_by_role("link", name="Programmes").click()
    expect(page.get_by_role("heading", name="Aurora VIP Club")).to_be_visible()
    before = get(stack.worker, f"/loyalty/programmes/{AURORA}/versions", MARKETING)[1]["versions"]
    zone = ZoneInfo("Europe/Malta")
    saturday = (datetime.now(zone) + timedelta(days=7)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    page.get_by_role("button", name="Add a promotion").click()
    row = page.locator("fieldset.promotion").last
    row.get_by_label("Name").fill("Weekend double")
    row.get_by_label("Multiplier").fill("2")
    row.get_by_label("Starts").fill(saturday.strftime("%Y-%m-%dT%H:%M"))
    row.get_by_label("Ends").fill((saturday + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"))
    row.get_by_label("table", exact=True).check()  # DoublePointsWeek has slots: no overlap
    page.locator("#promotions").get_by_label("Reason").fill("weekend campaign")
    page.get_by_role("button", name="Publish the promotions…").click()
    expect(page.locator("#confirm-body table.diff")).to_contain_text("Weekend double")
    confirm(page)
    expect(page.locator("#promotions .result")).to_contain_text("Published (201).")
    after = get(stack.worker, f"/loyalty/programmes/{AURORA}/versions", MARKETING)[1]["versions"]
    assert len(after) == len(before) + 1 and after[-1]["in_effect"]
    programme = get(stack.worker, f"/loyalty/programmes/{AURORA}", MARKETING)[1]
    (weekend,) = [p for p in programme["promotions"] if p["name"] == "Weekend double"]
    assert datetime.fromisoformat(weekend["starts_at"]) == saturday
    assert (weekend["multiplier"], weekend["categories"]) == ("2", ["table"])
    expect(page.locator("#programme")).to_contain_text("Only the version in effect can be read")
    shoot(page, "programmes")

    # an admin reads every version from the audit trail, and compares them field by field
    admin = sign_in(open_tab(), stack, ADMIN)
    admin.get_by_role("link", name="Programmes").click()
    admin.locator("#screen-programmes").get_by_label("Brand", exact=True).select_option(AURORA)
    admin.get_by_role("button", name="Show").click()
    expect(admin.get_by_label("with version")).to_have_value(str(after[-1]["version"]))
    admin.get_by_role("button", name="Compare").click()
    diff = admin.locator("#compare-result table.diff")
    expect(diff).to_contain_text(f"promotions {IN} Weekend double {IN} multiplier")
    expect(diff).to_contain_text("(none)")


def test_a_what_if_report_opens_with_its_charts(stack: Stack, open_tab: Any) -> None:
    tab = open_tab()
    tab.allowed.add(429)
    page = sign_in(tab, stack, MARKETING)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.get_by_role("link", name="What-if").click()
    page.get_by_role("button", name="Start from the version in effect").click()
    page.get_by_label("Silver: Threshold").fill("5000")
    expect(page.locator("#what-if-diff")).to_contain_text(f"levels {IN} Silver {IN} threshold")
    run = page.get_by_role("button", name="Run the what-if")

    # JSON that does not parse is no proposal: Run is disabled, with the reason, until it does
    page.locator("details.json-editor summary").click()
    editor = page.get_by_label("Programme JSON")
    valid = editor.input_value()
    editor.fill("{ not json")
    expect(run).to_be_disabled()
    expect(page.locator("#what-if-run-note")).to_contain_text("not valid")
    editor.fill(valid)
    expect(run).to_be_enabled()
    page.locator("details.json-editor summary").click()

    run.dblclick()  # one submission in flight at a time: one POST
    status = page.locator("#what-if-status")
    expect(status).to_contain_text("Done.", timeout=60_000)
    assert len(posts) == 1
    job_id = re.search(r"Job (\S+),", status.inner_text())
    assert job_id is not None
    job = get(stack.worker, f"/loyalty/what-if/jobs/{job_id.group(1)}", MARKETING)[1]
    report = job["report"]
    expect(page.locator("#what-if-report-title")).to_contain_text(
        f"job {job['job_id']}: proposal “{report['proposed_name']}”"
    )
    moved = {(m["baseline"], m["proposal"]): m["players"] for m in report["moves"]}
    assert moved[("Bronze", "Silver")] == 1  # p2, at 6,000 EUR
    totals = page.locator("table.what-if-totals tbody tr")
    silver = totals.filter(has_text="Players at Silver at the end")
    expect(silver).to_contain_text(str(report["total"]["proposal"]["players"]["Silver"]))
    issued = totals.filter(has_text="Points issued")
    expect(issued).to_contain_text(grouped(report["total"]["proposal"]["points_issued"]))
    expect(page.locator("table.moves td.moved")).to_have_text(["1"])
    assert chart_datasets(page, "#what-if-report") == [4, 4, 2, 2]
    shoot(page, "what-if")
    with page.expect_download() as download:
        page.get_by_role("button", name="The full report (HTML, plotly)").click()
    assert download.value.suggested_filename == f"what-if-{job['job_id']}.html"
    page.get_by_label("Silver: Threshold").fill("5500")  # the report says it is of the old form
    expect(page.locator("#what-if-report-stale")).to_be_visible()

    # a second job, still running (as the page is told), then a third refused (429): the
    # refusal shows, and the running job's result is never adopted as the refused one's
    running = {"hold": True}

    def as_running(route: Any) -> None:
        answer = route.fetch()
        body = answer.json()
        if running["hold"]:
            body["status"] = "running"
        route.fulfill(response=answer, json=body)

    page.route("**/loyalty/what-if/jobs/*", as_running)
    page.get_by_label("Silver: Threshold").fill("6000")
    run.click()
    expect(status).to_contain_text("running for")
    page.route(
        f"**/loyalty/what-if/{AURORA}",
        lambda route: route.fulfill(status=429, json={"error": "a what-if of yours is running"}),
    )
    page.get_by_label("Silver: Threshold").fill("7000")
    run.click()
    expect(status).to_contain_text("Not started. 429: a what-if of yours is running")
    running["hold"] = False
    page.wait_for_timeout(2_500)  # more than two polls of the job still on the worker
    expect(status).to_contain_text("Not started. 429")
    expect(page.locator("#what-if-report")).to_be_empty()


def test_the_api_answers_the_pages_calls_as_documented(stack: Stack) -> None:
    """The page's one assumption about the document: each operation says its roles."""
    document = get(stack.worker, "/openapi.json", None)[1]
    described = [op["description"] for path in document["paths"].values() for op in path.values()]
    assert all(re.match(r"Roles: [a-z_]+(, [a-z_]+)*;", text) for text in described)


def test_amounts_are_formatted_exactly_in_the_brands_currency(stack: Stack, open_tab: Any) -> None:
    """The page's own formatting, run in the browser: digits grouped as text, never through a
    float (20 digits survive), the currency's symbol or code, and times read in a brand's zone."""
    page = open_tab().page
    page.goto(stack.url)
    found = page.evaluate(
        """async () => {
          const f = await import("./js/format.js");
          const w = await import("./js/what-if.js");
          return [
            f.points("1234567.8900"), f.points("99999999999999999999.99"), f.points("-80"),
            f.money("5250.5", "EUR"), f.money("-80", "SEK"), f.money("239.70200", "NOK"),
            f.money("10", "SC"), f.money("0", "GC"), f.points("250", { signed: true }),
            w.change("0.10", "0.30"), w.change("1090.00", "1000"),
            f.wallToInstant("2026-12-01T00:00", "Europe/Malta"),
            f.wallToInstant("2026-07-01T00:00:00", "America/New_York"),
            f.when("2026-11-30T23:00:00Z", "Europe/Malta"),
          ];
        }"""
    )
    assert found == [
        "1,234,567.8900",
        "99,999,999,999,999,999,999.99",
        "\N{MINUS SIGN}80",
        "€5,250.50",
        "\N{MINUS SIGN}SEK\N{NO-BREAK SPACE}80.00",
        "NOK\N{NO-BREAK SPACE}239.70200",
        "10.00 SC",
        "0.00 GC",
        "+250",
        "+0.20",
        "\N{MINUS SIGN}90.00",
        "2026-11-30T23:00:00.000Z",
        "2026-07-01T04:00:00.000Z",
        "2026-12-01 00:00:00",
    ]
