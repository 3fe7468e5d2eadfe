"""The notifications badge is live (static/js/notify.js over ws/notifications/): a reply
written in one browser lights the badge in the other's open page without a reload, and
announces it politely; reading them elsewhere clears it.

Like tests/e2e/test_chat.py, the site runs in its own uvicorn process (in-memory channel
layer) and every write happens in that process, through the browsers.
"""

import pytest

from .conftest import screenshot
from .servers import Server, start_app
from .test_chat import PASSWORD, Visitor

pytestmark = pytest.mark.e2e

GROUP = "evening-circle"
SEED = f"""
from forum import memberships, publishing
from forum.models import SupportGroup, User
group = SupportGroup.objects.create(
    name="Evening Circle", slug="{GROUP}", kind=SupportGroup.Kind.MUTUAL_AID,
    visibility="public", join_policy="open",
    guidelines_source="Be kind.", guidelines_html="<p>Be kind.</p>",
)
for handle in ("river", "meadow"):
    member = User.objects.create_user(handle, handle + "@example.test", "{PASSWORD}")
    memberships.add_member(user=member, group=group)
river = User.objects.get(handle="river")
publishing.publish_thread(author=river, group=group, title="Evenings are hard", body="Hi all.")
"""


@pytest.fixture(scope="module")
def server(chromium, databases, tmp_path_factory):
    live = start_app(tmp_path_factory, databases.sqlite("notify"), SEED)
    yield live
    live.stop()


def log_in(visitor: Visitor, server: Server, path: str) -> None:
    page = visitor.page
    page.goto(f"{server.url}/accounts/login/?next={path}")
    page.get_by_label("Handle").fill(visitor.handle)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{path}")


def test_a_reply_lights_the_badge_live_and_reading_clears_it(chromium, server):
    from playwright.sync_api import expect

    river, meadow = Visitor(chromium, server, "river"), Visitor(chromium, server, "meadow")
    try:
        log_in(river, server, "/groups/")
        badge = river.page.locator("a.notif .badge")
        expect(badge).to_have_count(0)
        frames: list[str] = []
        river.page.on(
            "websocket",
            lambda ws: (
                ws.on("framereceived", lambda payload: frames.append(str(payload)))
                if ws.url.endswith("/ws/notifications/")
                else None
            ),
        )
        river.page.reload()
        expect(river.page.locator("a.notif")).to_have_attribute(
            "data-notify-socket", "/ws/notifications/"
        )

        log_in(meadow, server, f"/g/{GROUP}/")
        meadow.page.get_by_role("link", name="Evenings are hard").click()
        meadow.page.get_by_label("Your reply").fill("Same here. Walks help me.")
        meadow.page.get_by_role("button", name="Post reply").click()
        expect(meadow.page.get_by_text("Same here. Walks help me.")).to_be_visible()

        # river's page was not reloaded: the badge and the polite announcement are live.
        expect(badge).to_have_text("1", timeout=10_000)
        expect(badge).to_have_attribute("aria-label", "1 unread")
        expect(river.page.locator("#notify-status")).to_have_text("1 unread notifications")
        screenshot(river.page, "notifications-badge-live")
        # Only a count travels over the socket: no words, no handles, no titles.
        assert frames and all("Walks" not in f and "meadow" not in f for f in frames)

        # Reading them in another tab clears the badge here.
        other = river.context.new_page()
        other.goto(f"{server.url}/notifications/")
        expect(other.get_by_text("Evenings are hard")).to_be_visible()
        expect(badge).to_have_count(0, timeout=10_000)
        other.close()
        river.check_clean()
        meadow.check_clean()
    finally:
        river.close()
        meadow.close()
