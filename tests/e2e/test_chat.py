"""Live chat in real browsers against a real uvicorn process, through a server restart.

The server runs as in development: one uvicorn process (DJANGO_DEBUG=true), no REDIS_URL so
the in-memory channel layer and cache are used, and its own database: an SQLite file in the
test's temporary directory, or, when DATABASE_URL points at PostgreSQL, a fresh database
created for this module and dropped afterwards (both copied from a migrated template:
tests/e2e/servers.py). Everything in the database is written by the server process itself
(``manage.py shell -c``), never by the test.
"""

import json
from urllib.parse import urlsplit

import pytest

from .conftest import screenshot
from .servers import Server, start_app

pytestmark = pytest.mark.e2e

PASSWORD = "quiet-harbour-5820"
GROUP = "evening-circle"
MEMBER = "river"  # writes
LEADER = "meadow"  # reads, and removes as a leader
ROOM_PATH = f"/g/{GROUP}/chat/general/"
SEED = f"""
from forum import memberships
from forum.models import ChatRoom, Membership, SupportGroup, User
group = SupportGroup.objects.create(
    name="Evening Circle", slug="{GROUP}", kind=SupportGroup.Kind.MUTUAL_AID,
    visibility="public", join_policy="open",
    guidelines_source="Be kind.", guidelines_html="<p>Be kind.</p>",
)
ChatRoom.objects.create(group=group, name="General", slug="general", is_default=True)
member = User.objects.create_user("{MEMBER}", "{MEMBER}@example.test", "{PASSWORD}")
leader = User.objects.create_user("{LEADER}", "{LEADER}@example.test", "{PASSWORD}")
memberships.add_member(user=member, group=group)
memberships.add_member(user=leader, group=group, role=Membership.Role.LEADER)
"""
# What Chromium itself logs while the server is down: the failed handshakes, and the
# health check chat.js makes to tell "down" from "refused". Nothing else may be logged.
OUTAGE_NOISE = (
    "WebSocket connection to 'ws://",
    "Failed to load resource: net::ERR_CONNECTION_REFUSED",
)


@pytest.fixture(scope="module")
def database_url(databases, chromium):
    # PostgreSQL when the run has it (the production database), else SQLite.
    if databases.has_postgres:
        yield from databases.postgres()
    else:
        yield databases.sqlite("chat")


@pytest.fixture(scope="module")
def server(database_url, tmp_path_factory):
    live = start_app(tmp_path_factory, database_url, SEED)
    yield live
    live.stop()


class Visitor:
    """One person in their own browser context, watched for foreign requests and errors."""

    def __init__(self, browser, server: Server, handle: str, width: int = 1100) -> None:
        self.handle = handle
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.context.set_default_timeout(10_000)
        self.page = self.context.new_page()
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.failed: list[str] = []  # requests that got no answer at all
        origin, ws_origin = server.url, server.url.replace("http://", "ws://", 1)

        def request(req) -> None:
            if not req.url.startswith((origin + "/", "data:")):
                self.foreign.append(req.url)

        def websocket(ws) -> None:
            if not ws.url.startswith(ws_origin + "/"):
                self.foreign.append(ws.url)

        def console(message) -> None:
            if message.type == "error":
                self.errors.append(message.text)

        def request_failed(req) -> None:
            # A page that moves on cancels what it was still loading (its icon, say): the
            # browser's own abort, not a request the server left unanswered.
            if req.failure != "net::ERR_ABORTED":
                self.failed.append(urlsplit(req.url).path)

        self.page.on("request", request)
        self.page.on("websocket", websocket)
        self.page.on("console", console)
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        self.page.on("requestfailed", request_failed)
        self.page.on(
            "dialog", lambda dialog: (self.errors.append(dialog.message), dialog.dismiss())
        )

    def log_in_to_room(self, server: Server) -> None:
        page = self.page
        page.goto(f"{server.url}/accounts/login/?next={ROOM_PATH}")
        page.get_by_label("Handle").fill(self.handle)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"**{ROOM_PATH}")
        self.expect_connected()

    def expect_connected(self, timeout: float = 10_000) -> None:
        from playwright.sync_api import expect

        expect(self.page.locator("#chat-status")).to_have_attribute(
            "data-state", "open", timeout=timeout
        )

    def send(self, text: str) -> None:
        box = self.page.get_by_label("Your message")
        box.fill(text)
        box.press("Enter")

    def stored(self):
        """The bodies of stored messages (not pending, not failed), in page order."""
        return self.page.locator("#chat-messages li.chat-message:not(.is-local) .chat-body")

    def check_clean(self, allow_outage_noise: bool = False) -> None:
        errors, failed = self.errors, self.failed
        if allow_outage_noise:
            errors = [e for e in errors if not e.startswith(OUTAGE_NOISE)]
            failed = [path for path in failed if path != "/healthz"]
        assert self.foreign == [], f"{self.handle}: requests left the site: {self.foreign}"
        assert errors == [], f"{self.handle}: console errors: {errors}"
        assert failed == [], f"{self.handle}: requests failed: {failed}"

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visitors(chromium, server):
    server.ensure_running()
    opened: list[Visitor] = []

    def visit(handle: str, width: int = 1100, before_login=None) -> Visitor:
        visitor = Visitor(chromium, server, handle, width)
        opened.append(visitor)
        if before_login is not None:
            before_login(visitor)
        visitor.log_in_to_room(server)
        return visitor

    yield visit
    for visitor in opened:
        visitor.close()


def test_messages_survive_a_server_restart_exactly_once_in_order(server, visitors):
    from playwright.sync_api import expect

    river, meadow = visitors(MEMBER), visitors(LEADER)
    first = [f"Checking in, day {n} **steady**" for n in (1, 2, 3)]
    for text in first:
        river.send(text)
    shown_first = [t.replace(" **steady**", " steady") for t in first]
    # Each arrives once, in order, on both screens; nothing is left pending.
    expect(meadow.stored()).to_have_text(shown_first)
    expect(river.stored()).to_have_text(shown_first)
    expect(river.page.locator("li.is-local")).to_have_count(0)
    expect(meadow.stored().first.locator("strong")).to_have_text("steady")

    server.stop()
    for visitor in (river, meadow):
        expect(visitor.page.locator("#chat-status")).not_to_have_attribute("data-state", "open")
    later = ["Written while the server was down", "Still down, still here", "Third one waiting"]
    for text in later:
        river.send(text)
    # Not lost: shown as pending, and kept for a reload.
    pending = river.page.locator("#chat-messages li.is-pending")
    expect(pending).to_have_count(3)
    expect(pending.locator(".chat-body")).to_have_text(later)
    expect(pending.locator(".chat-send-state")).to_have_text(["waiting to send…"] * 3)
    assert "Third one waiting" in river.page.evaluate("JSON.stringify(sessionStorage)")
    screenshot(river.page, "chat-offline-1100")

    server.start()
    # Both reconnect on their own (backoff: about 1, 2, 4, 8 s) and resume.
    river.expect_connected(timeout=30_000)
    meadow.expect_connected(timeout=30_000)
    everything = [*shown_first, *later]
    expect(river.stored()).to_have_text(everything, timeout=15_000)
    expect(meadow.stored()).to_have_text(everything, timeout=15_000)
    for visitor in (river, meadow):
        expect(visitor.page.locator("#chat-messages li.is-local")).to_have_count(0)
        expect(visitor.page.locator("#chat-messages li.chat-message")).to_have_count(6)
    assert river.page.evaluate("JSON.stringify(sessionStorage)").find("Third one waiting") < 0
    # Exactly once each, by id as well as by text.
    ids = meadow.page.locator("#chat-messages li.chat-message").evaluate_all(
        "items => items.map(li => li.id)"
    )
    assert len(set(ids)) == 6, ids
    # And a reload (the server-rendered page) agrees.
    meadow.page.reload()
    meadow.expect_connected()
    expect(meadow.stored()).to_have_text(everything)
    screenshot(meadow.page, "chat-after-restart-1100")
    screenshot(river.page, "chat-after-restart-river-1100")
    river.check_clean(allow_outage_noise=True)
    meadow.check_clean(allow_outage_noise=True)


def test_leader_removal_is_live_and_the_room_fits_360_px(server, visitors):
    from playwright.sync_api import expect

    river, meadow = visitors(MEMBER), visitors(LEADER)
    text = "Something I should not have shared"
    river.send(text)
    mine = river.page.locator("#chat-messages li.chat-message:not(.is-local)", has_text=text)
    expect(mine).to_have_count(1)
    message_id = mine.get_attribute("id")
    on_leader = meadow.page.locator(f"#{message_id}")
    expect(on_leader).to_contain_text(text)

    on_leader.get_by_role("button", name="Remove").click()
    on_leader.get_by_role("button", name="Remove", exact=True).click()
    # Gone from the other member's screen without a reload: no text left, only the note.
    on_member = river.page.locator(f"#{message_id}")
    expect(on_member.locator(".chat-removed")).to_have_text("[removed by a moderator]")
    expect(on_member).not_to_contain_text(text)
    # Nowhere in either page, not even in the screen-reader announcements.
    for visitor in (river, meadow):
        expect(visitor.page.locator("#chat")).not_to_contain_text(text)
        assert text not in visitor.page.content()
    expect(on_member.locator(".chat-actions")).to_have_count(0)
    screenshot(river.page, "chat-removed-1100")

    river.page.set_viewport_size({"width": 360, "height": 780})
    river.page.reload()
    river.expect_connected()
    river.send("A long word for a narrow screen: " + "unbreakable" * 8)
    expect(river.page.locator("li.is-local")).to_have_count(0)
    scroll_width = river.page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 360, f"the room page scrolls sideways at 360 px ({scroll_width})"
    log_width, log_visible = river.page.locator("#chat-log").evaluate(
        "log => [log.scrollWidth, log.clientWidth]"
    )
    assert log_width <= log_visible, f"the messages scroll sideways ({log_width} > {log_visible})"
    screenshot(river.page, "chat-360")
    river.check_clean()
    meadow.check_clean()


class Relay:
    """Stands between one page and the server and can swap or drop live message frames."""

    def __init__(self) -> None:
        self.from_page: list[dict] = []
        self.held: str | None = None
        self.swap_next = False
        self.drop_next = False

    def attach(self, visitor: Visitor) -> None:
        visitor.page.route_web_socket("**/ws/**", self._route)

    def _route(self, ws) -> None:
        server = ws.connect_to_server()

        def up(raw) -> None:
            self.from_page.append(json.loads(raw))
            server.send(raw)

        def down(raw) -> None:
            if json.loads(raw).get("type") != "message":
                ws.send(raw)
            elif self.drop_next:
                self.drop_next = False
            elif self.swap_next:
                self.swap_next, self.held = False, raw
            else:
                ws.send(raw)
                if self.held is not None:
                    ws.send(self.held)
                    self.held = None

        ws.on_message(up)
        server.on_message(down)

    def resumes(self) -> int:
        return sum(1 for frame in self.from_page if frame.get("type") == "resume")


def test_overtaken_broadcasts_wait_briefly_and_lost_ones_are_fetched(server, visitors):
    """With several workers two broadcasts can arrive out of order: the page waits a
    moment for the missing one instead of asking again; one that never comes is fetched."""
    from playwright.sync_api import expect

    relay = Relay()
    river, meadow = visitors(MEMBER), visitors(LEADER, before_login=relay.attach)
    river.send("Overtaken first")
    expect(meadow.stored().last).to_have_text("Overtaken first")
    relay.swap_next = True
    river.send("Swapped one")
    river.send("Swapped two")
    expect(meadow.stored().filter(has_text="Swapped")).to_have_text(["Swapped one", "Swapped two"])
    meadow.page.wait_for_timeout(1500)  # longer than the page's grace for a gap
    assert relay.resumes() == 0, relay.from_page

    relay.drop_next = True
    river.send("Lost on the way")
    river.send("Arrived after it")
    expect(meadow.stored().filter(has_text="Lost on the way")).to_have_count(1, timeout=5_000)
    expect(meadow.stored().last).to_have_text("Arrived after it")
    assert relay.resumes() == 1, relay.from_page
    meadow.check_clean()
    river.check_clean()


def test_a_member_flags_a_chat_message_without_leaving_the_room(server, visitors):
    from playwright.sync_api import expect

    river, meadow = visitors(MEMBER), visitors(LEADER)
    text = "Selling something here"
    river.send(text)
    mine = river.page.locator("#chat-messages li.chat-message:not(.is-local)", has_text=text)
    expect(mine).to_have_count(1)
    expect(mine.get_by_role("button", name="Flag")).to_have_count(0)
    message_id = mine.get_attribute("id")
    on_leader = meadow.page.locator(f"#{message_id}")
    on_leader.get_by_role("button", name="Flag").click()
    select = on_leader.get_by_label("Why are you flagging this message?")
    expect(select).to_be_focused()
    on_leader.get_by_role("button", name="Send").click()
    expect(on_leader.locator(".chat-flag-error")).to_have_text("Choose a reason from the list.")
    select.select_option("other")
    on_leader.get_by_role("button", name="Send").click()
    expect(on_leader.locator(".chat-flag-error")).to_have_text("Tell the moderators what is wrong.")
    select.select_option("spam")
    on_leader.get_by_role("button", name="Send").click()
    expect(on_leader.locator(".chat-flagged")).to_have_text("Thanks — a moderator will look at it.")
    expect(on_leader.locator(".chat-flag-form")).to_have_count(0)
    # Escape closes a form without sending.
    river.send("Another line")
    other = meadow.page.locator("#chat-messages li.chat-message", has_text="Another line")
    other.get_by_role("button", name="Flag").click()
    meadow.page.keyboard.press("Escape")
    expect(other.locator(".chat-flag-form")).to_have_count(0)
    expect(other.get_by_role("button", name="Flag")).to_be_focused()
    # A crisis concern is thanked with the crisis resources under the thanks (the site's
    # defaults: this server has none set); a spam flag is not.
    other.get_by_role("button", name="Flag").click()
    other.get_by_label("Why are you flagging this message?").select_option("crisis")
    other.get_by_role("button", name="Send").click()
    expect(other.locator(".chat-flagged")).to_have_text("Thanks — a moderator will look at it.")
    resources = other.locator(".chat-crisis")
    expect(resources).to_contain_text("Call or text 988")
    link = resources.get_by_role("link", name="988 Suicide & Crisis Lifeline")
    expect(link).to_have_attribute("href", "https://988lifeline.org/")
    expect(resources.get_by_role("link", name="All crisis resources")).to_have_attribute(
        "href", "/help/"
    )
    expect(on_leader.locator(".chat-crisis")).to_have_count(0)
    meadow.check_clean()
    river.check_clean()


def test_crisis_words_in_chat_are_posted_and_the_sender_sees_support(server, visitors):
    from playwright.sync_api import expect

    river, meadow = visitors(MEMBER), visitors(LEADER)
    text = "honestly I can't go on like this"
    river.send(text)
    # Posted and shown to everyone as usual: crisis words never hold or hide anything.
    mine = river.page.locator("#chat-messages li.chat-message:not(.is-local)", has_text=text)
    expect(mine).to_have_count(1)
    theirs = meadow.page.locator("#chat-messages li.chat-message", has_text=text)
    expect(theirs).to_have_count(1)
    # The sender alone sees support under their own message, gently, as text and links.
    support = mine.locator(".chat-support")
    expect(support).to_contain_text("You don't have to go through it alone")
    expect(support).to_contain_text("Call or text 988")
    expect(support.get_by_role("link", name="All crisis resources")).to_have_attribute(
        "href", "/help/"
    )
    expect(river.page.locator("#chat-announcer")).to_contain_text("Support is there if you want it")
    expect(meadow.page.locator(".chat-support, .chat-crisis")).to_have_count(0)
    # It stays under the message through a redraw (an ordinary message after it).
    river.send("thanks for listening")
    expect(river.stored().filter(has_text="thanks for listening")).to_have_count(1)
    expect(mine.locator(".chat-support")).to_have_count(1)
    screenshot(river.page, "chat-crisis-support-1100")
    meadow.check_clean()
    river.check_clean()


def test_a_blocked_members_messages_fold_away_for_the_blocker_only(server, visitors):
    from playwright.sync_api import expect

    river, meadow = visitors(MEMBER), visitors(LEADER)
    river.send("Sent before the block")
    expect(meadow.stored().filter(has_text="Sent before the block")).to_have_count(1)
    # meadow blocks river from river's profile, then comes back to the room.
    meadow.page.goto(f"{server.url}/u/{MEMBER}/")
    meadow.page.get_by_role("button", name=f"Block {MEMBER}").click()
    expect(meadow.page.get_by_text(f"You blocked {MEMBER}.", exact=False).first).to_be_visible()
    meadow.page.goto(f"{server.url}{ROOM_PATH}")
    meadow.expect_connected()
    try:
        river.send("Sent after the block")
        mine = river.page.locator("#chat-messages li.chat-message:not(.is-local)",
                                  has_text="Sent after the block")  # fmt: skip
        expect(mine).to_have_count(1)
        expect(mine.locator("details")).to_have_count(0)  # river sees nothing different
        folded = meadow.page.locator(f"#{mine.get_attribute('id')} details.chat-blocked")
        expect(folded.locator("summary")).to_have_text(f"You blocked {MEMBER}: show this message")
        expect(folded.locator(".chat-body")).not_to_be_visible()
        folded.locator("summary").click()
        expect(folded.locator(".chat-body")).to_have_text("Sent after the block")
        # Earlier messages, rendered by the server, fold too.
        earlier = meadow.page.locator("#chat-messages li.chat-message", has_text="before the block")
        expect(earlier.locator("details.chat-blocked")).to_have_count(1)
        screenshot(meadow.page, "chat-blocked-1100")
    finally:
        meadow.page.goto(f"{server.url}/u/{MEMBER}/")
        meadow.page.get_by_role("button", name="Unblock").click()
    meadow.check_clean()
    river.check_clean()


QUIET_ALL_DAY = """
import datetime
from forum.models import User
now = datetime.datetime.now(datetime.timezone.utc)
User.objects.filter(handle="{handle}").update(
    quiet_start=(now - datetime.timedelta(hours=1)).time().replace(second=0, microsecond=0),
    quiet_end=(now + datetime.timedelta(hours=1)).time().replace(second=0, microsecond=0),
    quiet_timezone="UTC",
)
"""
QUIET_OFF = """
from forum.models import User
User.objects.filter(handle="{handle}").update(quiet_start=None, quiet_end=None)
"""


def test_quiet_hours_hold_a_chat_message_until_the_member_posts_it_anyway(server, visitors):
    from playwright.sync_api import expect

    server.manage("shell", "-c", QUIET_ALL_DAY.format(handle=MEMBER))
    try:
        river, meadow = visitors(MEMBER), visitors(LEADER)
        text = "is anyone still awake?"
        river.send(text)
        local = river.page.locator("#chat-messages li.is-local.is-failed", has_text=text)
        expect(local).to_contain_text("quiet hours")
        # Nothing reached the room; the choice is the member's, one message at a time.
        expect(meadow.page.locator("#chat-messages li", has_text=text)).to_have_count(0)
        expect(local.get_by_role("button", name="Retry")).to_have_count(0)
        local.get_by_role("button", name="I know, post anyway").click()
        expect(river.stored().filter(has_text=text)).to_have_count(1)
        expect(meadow.page.locator("#chat-messages li", has_text=text)).to_have_count(1)
        river.check_clean()
        meadow.check_clean()
    finally:
        server.manage("shell", "-c", QUIET_OFF.format(handle=MEMBER))
