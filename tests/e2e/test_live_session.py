"""A live session from end to end in real browsers: one leader and two members.

The leader schedules it with the form and opens the room; both members join and raise their
hands (the queue shows in order on every screen); the leader gives the floor to the first; the
second's message is refused with a clear reason; the sharer posts and passes the floor; the
leader locks the chat (a member's message refused), a member trying a leader's control is told
no; the leader ends it: every screen says so, the composers are off, and attendance is recorded.
A second test takes the leader's console through a mute, a removal (with its checks and its
confirmation) and a server outage.

Like tests/e2e/test_chat.py, the site runs in its own uvicorn process (in-memory channel layer)
and everything is written by that process, through the browsers.
"""

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from .conftest import screenshot
from .servers import ROOT, Server, start_app
from .test_chat import PASSWORD, Visitor

pytestmark = pytest.mark.e2e

GROUP = "tuesday-circle"
LEADER = "harbour"
FIRST = "willow"  # raises a hand first, shares
SECOND = "fern"  # raises a hand second, waits
TITLE = "Tuesday evening share"
READING = "We meet as equals. What is said here stays here."
SEED = f"""
from forum import memberships, publishing
from forum.models import Membership, SupportGroup, User
group = SupportGroup.objects.create(
    name="Tuesday Circle", slug="{GROUP}", kind=SupportGroup.Kind.MUTUAL_AID,
    visibility="public", join_policy="open",
    guidelines_source="Be kind.", guidelines_html="<p>Be kind.</p>",
)
leader = User.objects.create_user("{LEADER}", "{LEADER}@example.test", "{PASSWORD}")
memberships.add_member(user=leader, group=group, role=Membership.Role.LEADER)
for handle in ("{FIRST}", "{SECOND}"):
    member = User.objects.create_user(handle, handle + "@example.test", "{PASSWORD}")
    memberships.add_member(user=member, group=group)
publishing.save_script(actor=leader, group=group, title="Preamble", text="{READING}")
"""
ATTENDANCE = f"""
import json
from forum.models import LiveSession, SessionParticipant
session = LiveSession.objects.get(title="{TITLE}")
rows = SessionParticipant.objects.filter(session=session).select_related("user")
print(json.dumps({{
    "ended": session.ended_at is not None,
    "seconds": {{row.user.handle: row.seconds_attended for row in rows}},
    "present": {{row.user.handle: row.present_since is not None for row in rows}},
}}))
"""


@pytest.fixture(scope="module")
def server(chromium, databases, tmp_path_factory):
    live = start_app(tmp_path_factory, databases.sqlite("session"), SEED)
    yield live
    live.stop()


def server_json(server: Server, code: str) -> dict:
    """Run ``code`` in the server's own settings and database; it prints one JSON line."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT, env=server.env, check=True, timeout=60, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


class Person(Visitor):
    """A visitor who also keeps the last session state their socket received."""

    def __init__(self, browser, server: Server, handle: str) -> None:
        super().__init__(browser, server, handle)
        self.state: dict = {}

        def received(payload) -> None:
            frame = json.loads(payload) if isinstance(payload, str) else {}
            if frame.get("type") == "session":
                self.state = frame["session"]

        self.page.on("websocket", lambda ws: ws.on("framereceived", received))

    def replay_state(self, **changes) -> None:
        """Hand the page its last state again, changed, as chat.js hands on a frame."""
        state = {**self.state, **changes}
        self.page.evaluate(
            "s => document.getElementById('chat').dispatchEvent("
            "new CustomEvent('kinship:frame', {detail: {type: 'session', session: s}}))",
            state,
        )

    def log_in(self, server: Server, path: str) -> None:
        page = self.page
        page.goto(f"{server.url}/accounts/login/?next={path}")
        page.get_by_label("Handle").fill(self.handle)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"**{path}")

    def queue(self):
        return self.page.locator("#session-queue-list .session-queue-handle")

    def composer_error(self):
        return self.page.locator("#chat-error .chat-error-text")


@pytest.fixture
def people(chromium, server):
    server.ensure_running()
    opened: list[Person] = []

    def person(handle: str) -> Person:
        visitor = Person(chromium, server, handle)
        opened.append(visitor)
        return visitor

    yield person
    for visitor in opened:
        visitor.close()


def schedule(leader: Person, server: Server, title: str = TITLE) -> str:
    """The leader fills the schedule form; returns the session page's path."""
    from playwright.sync_api import expect

    page = leader.page
    # An hour from now, in UTC: not open yet (the room opens 15 minutes before).
    start = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
    leader.log_in(server, f"/g/{GROUP}/sessions/new/")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Date").fill(start.strftime("%Y-%m-%d"))
    page.get_by_label("Starts at").fill(start.strftime("%H:%M"))
    page.get_by_label("Ends at").fill((start + timedelta(hours=1)).strftime("%H:%M"))
    page.get_by_label("Time zone").select_option("UTC")
    page.get_by_label("Opening reading").select_option(label="Preamble")
    page.get_by_role("button", name="Schedule").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    return page.url.removeprefix(server.url)


def test_a_leader_and_two_members_hold_a_session(server, people):
    from playwright.sync_api import expect

    leader, first, second = people(LEADER), people(FIRST), people(SECOND)
    everyone = (leader, first, second)
    path = schedule(leader, server)

    # Before its time the leader's console offers to open the room; opening it is live.
    lp = leader.page
    leader.expect_connected()
    expect(lp.locator("#session-phase")).to_contain_text("Not open yet: the room opens at")
    expect(lp.get_by_label("Your message")).to_be_disabled()
    screenshot(lp, "session-scheduled-leader")
    lp.get_by_role("button", name="Open room").click()
    expect(lp.locator("#session-phase")).to_have_text("Open")
    expect(lp.get_by_role("button", name="Close room")).to_be_focused()
    expect(lp.get_by_label("Your message")).to_be_enabled()
    assert "{#" not in lp.locator("main").inner_text()  # no template comment shows

    for member in (first, second):
        member.log_in(server, path)
        member.expect_connected()
        expect(member.page.locator("#session-phase")).to_have_text("Open")
        # First time in this group's sessions: the welcome, addressed to them alone.
        expect(member.page.locator("#session-welcome")).to_be_visible()
        # What happens to what is said, right above the composer, before they speak.
        note = member.page.locator("#chat-composer").locator("xpath=preceding-sibling::*[1]")
        expect(note).to_contain_text("What is said here is deleted when the session ends.")
    expect(lp.locator("#session-present")).to_have_text("3 here")

    # The opening reading, with one click.
    lp.get_by_role("button", name="Post opening reading").click()
    for person in everyone:
        expect(person.stored().filter(has_text=READING)).to_have_count(1)
    # Pinned above the chat, on every screen, with the "Pin" on the message itself.
    reading = lp.locator("#chat-messages li.chat-message", has_text=READING)
    reading.get_by_role("button", name="Pin").click()
    for person in everyone:
        expect(person.page.locator("#session-pinned-body")).to_have_text(READING)
    expect(reading.get_by_role("button", name="Unpin")).to_be_visible()
    expect(first.page.locator("#chat-messages").get_by_role("button", name="Pin")).to_have_count(0)

    # Hands up, in order, on every screen.
    first.page.get_by_role("button", name="Raise hand").click()
    expect(first.queue()).to_have_text([FIRST])
    expect(first.page.get_by_role("button", name="Lower hand")).to_be_focused()
    second.page.get_by_role("button", name="Raise hand").click()
    for person in everyone:
        expect(person.queue()).to_have_text([FIRST, SECOND])
    expect(first.page.locator("#session-queue-list .session-queue-you")).to_have_count(1)

    # Shares last two minutes; the leader gives the floor to the first in the queue.
    lp.get_by_label("Share timer").select_option(label="2 minutes")
    lp.get_by_role("button", name="Set timer").click()
    expect(second.page.locator("#session-announcer")).to_contain_text("Each share now lasts 2")
    lp.get_by_role("button", name="Next share").click()
    for person in (leader, second):
        expect(person.page.locator("#session-floor-text")).to_have_text(f"{FIRST} has the floor")
        expect(person.queue()).to_have_text([SECOND])
    fp = first.page
    expect(fp.locator("#session-floor-text")).to_have_text("You have the floor")
    expect(fp.locator("#session-turn")).to_be_visible()
    expect(fp.locator("#session-announcer")).to_contain_text("It's your turn")
    expect(second.page.locator("#session-announcer")).to_contain_text(f"{FIRST} has the floor.")
    expect(second.page.locator("#session-floor-rule")).to_contain_text(
        f"{FIRST} has the floor: only they and the leaders post"
    )
    for person in everyone:
        expect(person.page.locator("#session-timer-value")).to_have_text(
            re.compile(r"^[12]:\d\d left$")
        )
    # The console fits a phone: nothing scrolls sideways at 360 px.
    second.page.set_viewport_size({"width": 360, "height": 780})
    width = second.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the session page scrolls sideways at 360 px ({width})"
    screenshot(second.page, "session-console-360")
    second.page.set_viewport_size({"width": 1100, "height": 900})
    screenshot(lp, "session-console-leader")
    screenshot(fp, "session-console-sharer")
    screenshot(second.page, "session-console-waiting")

    # The sharer is warned at 30 seconds left, then when the time is up (the same state
    # frame, with the share's end brought near: nobody waits two minutes here).
    now = datetime.now(UTC)
    floor = first.state["floor"]
    first.replay_state(
        server_time=now.isoformat(),
        floor={**floor, "ends_at": (now + timedelta(seconds=29)).isoformat()},
    )
    warning = fp.locator("#session-timer-warning")
    expect(warning).to_have_text("Less than 30 seconds left in your share.")
    expect(fp.locator("#session-announcer")).to_contain_text("30 seconds left in your share.")
    expect(fp.locator("#session-timer")).to_have_class(re.compile("is-warning"))
    first.replay_state(server_time=now.isoformat(), floor={**floor, "ends_at": now.isoformat()})
    expect(warning).to_have_text("Time's up — please wrap up.")
    expect(fp.locator("#session-announcer")).to_contain_text("Time's up — please wrap up.")
    expect(fp.locator("#session-timer-value")).to_have_text("0:00 left")
    expect(second.page.locator("#session-timer-warning")).to_be_hidden()  # the sharer's alone

    # The second member's message is refused while the first has the floor, and says why.
    second.send("Can I jump in?")
    expect(second.composer_error()).to_contain_text(
        f"{FIRST} has the floor: only they and the leaders post until they pass it back."
    )
    expect(second.page.locator("#chat-messages li.is-failed")).to_contain_text("Can I jump in?")
    for person in (leader, first):
        expect(person.page.locator("#chat")).not_to_contain_text("Can I jump in?")

    # The sharer shares, then passes the floor.
    first.send("Ninety days today. Thank you all for listening.")
    for person in everyone:
        expect(person.stored().filter(has_text="Ninety days today.")).to_have_count(1)
    fp.get_by_role("button", name="I'm done sharing").click()
    for person in everyone:
        expect(person.page.locator("#session-floor")).to_be_hidden()
    expect(fp.locator("#session-turn")).to_be_hidden()

    # Locked: only the leaders speak.
    lp.get_by_role("button", name="Lock chat").click()
    for person in everyone:
        expect(person.page.locator("#session-locked")).to_be_visible()
    expect(lp.get_by_role("button", name="Unlock chat")).to_be_focused()
    first.send("One more thing")
    expect(first.composer_error()).to_contain_text("A leader has locked the chat")
    leader.send("Thank you for coming tonight.")
    for person in everyone:
        expect(person.stored().filter(has_text="Thank you for coming tonight.")).to_have_count(1)

    # A member trying a leader's control gets a clear no, next to the console's controls.
    sent = second.page.evaluate(
        "document.getElementById('chat').kinshipSend({type: 'end_session'})"
    )
    assert sent is True
    error = second.page.locator("#session-error")
    expect(error).to_have_text("Only the session's leaders can do this.")
    expect(error).to_have_attribute("role", "alert")
    expect(second.page.locator("#session-phase")).to_have_text("Open")

    # The leader ends it, after confirming: every screen says so; nobody can write.
    lp.get_by_role("button", name="End session…").click()
    lp.get_by_role("button", name="End session", exact=True).click()
    for person in everyone:
        page = person.page
        expect(page.locator("#session-phase")).to_have_text("Ended")
        expect(page.locator("#session-ended")).to_contain_text("This session is over.")
        expect(page.get_by_label("Your message")).to_be_disabled()
        expect(page.locator("#chat-unavailable")).to_contain_text("This session is over")
        expect(page.locator("#session-queue-actions")).to_be_hidden()
        # The group's transcript choice (the default: deleted at the end) reaches every screen.
        expect(page.locator("#chat-messages li")).to_have_count(0)
        expect(page.locator("#chat-empty")).to_contain_text("has been deleted, as the group chose")
    expect(lp.get_by_role("button", name="Lock chat")).to_have_count(0)
    screenshot(lp, "session-ended-leader")
    screenshot(first.page, "session-ended-member")

    # Attendance: a row for each member, with time.
    recorded = server_json(server, ATTENDANCE)
    assert recorded["ended"] is True
    for handle in (FIRST, SECOND):
        assert recorded["seconds"][handle] > 0, recorded
        assert recorded["present"][handle] is False, recorded
    # The member's own attendance page opens (it lists sessions of a minute or more).
    first.page.goto(f"{server.url}/me/attendance/")
    expect(first.page.get_by_role("heading", level=1)).to_have_text("Your attendance")

    for person in everyone:
        person.check_clean()


def test_the_leaders_console_mutes_removes_and_says_when_it_is_not_connected(server, people):
    from playwright.sync_api import expect

    leader, second = people(LEADER), people(SECOND)
    path = schedule(leader, server, title="Thursday step study")
    lp = leader.page
    leader.expect_connected()
    lp.get_by_role("button", name="Open room").click()
    expect(lp.locator("#session-phase")).to_have_text("Open")
    second.log_in(server, path)
    second.expect_connected()
    expect(lp.locator("#session-present")).to_have_text("2 here")
    # Words that suggest risk: the sender sees support, the leader is alerted on the console.
    second.send("honestly I can't go on like this")
    expect(second.page.locator(".chat-support")).to_contain_text("You don't have to go through it")
    crisis = lp.locator("#session-crisis")
    expect(crisis).to_be_visible()
    expect(crisis).to_contain_text(f"{SECOND}'s message suggests they may be at risk (suicide)")
    expect(second.page.locator("#session-crisis")).to_have_count(0)
    # A mute, with its reason: the member's sends are refused with it.
    mute = lp.locator("#session-mute-form")
    mute.get_by_label("Who").select_option(SECOND)
    mute.get_by_label("For").select_option(label="5 minutes")
    mute.get_by_label("Reason (they see it)").fill("Let's keep to one topic")
    mute.get_by_role("button", name="Mute").click()
    expect(lp.locator("#session-announcer")).to_contain_text(f"{SECOND} is muted.")
    expect(mute.get_by_label("Who")).to_have_value("")
    second.send("Am I muted?")
    expect(second.composer_error()).to_contain_text("You are muted in this group's chat until")
    expect(second.composer_error()).to_contain_text("Let's keep to one topic")

    # Nobody is chosen until the leader chooses, and the reason is asked for before anything.
    remove = lp.locator("#session-remove-form")
    remove.get_by_role("button", name="Remove…").click()
    expect(lp.locator("#session-panel-error")).to_have_text("Choose who to remove.")
    remove.get_by_label("Who").select_option(SECOND)
    remove.get_by_role("button", name="Remove…").click()
    expect(lp.locator("#session-panel-error")).to_have_text(
        "Give a reason for the removal: the member sees it."
    )
    remove.get_by_label("Reason (they see it)").fill("Trying to end the meeting for everyone")
    remove.get_by_role("button", name="Remove…").click()
    expect(remove.locator("#session-remove-confirm-text")).to_have_text(
        f"Remove {SECOND} from this session? They cannot come back to it."
    )
    remove.get_by_role("button", name="Cancel").click()
    expect(remove.get_by_role("button", name="Remove…")).to_be_focused()
    remove.get_by_role("button", name="Remove…").click()
    remove.get_by_role("button", name="Remove", exact=True).click()
    expect(lp.locator("#session-announcer")).to_contain_text(
        f"{SECOND} was removed from the session."
    )
    expect(lp.locator("#session-present")).to_have_text("1 here")
    expect(second.page.locator("#chat-status")).to_have_attribute("data-state", "stopped")
    expect(second.page.get_by_label("Your message")).to_be_disabled()
    expect(remove.get_by_label("Who")).to_have_value("")  # the form is cleared for the next
    # Their console says plainly that nothing goes out any more.
    second.page.get_by_role("button", name="Raise hand").click()
    expect(second.page.locator("#session-error")).to_have_text(
        "The chat has stopped, so this was not sent. Reload the page to see why."
    )

    # With the server away, a control is not lost in silence either; the state outlives it.
    server.stop()
    expect(lp.locator("#chat-status")).not_to_have_attribute("data-state", "open")
    lp.get_by_role("button", name="Lock chat").click()
    expect(lp.locator("#session-panel-error")).to_have_text(
        "Not connected — trying again. Press it again once the chat is back."
    )
    server.start()
    leader.expect_connected(timeout=30_000)
    expect(lp.locator("#session-present")).to_have_text("1 here")
    lp.get_by_role("button", name="Lock chat").click()
    expect(lp.locator("#session-locked")).to_be_visible()
    expect(lp.locator("#session-panel-error")).to_be_hidden()

    leader.check_clean(allow_outage_noise=True)
    second.check_clean(allow_outage_noise=True)  # its notifications socket lived through it
