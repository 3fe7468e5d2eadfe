"""A direct conversation from end to end in two browsers: request, accept, talk live, block.

Like tests/e2e/test_chat.py, the site runs in its own uvicorn process (in-memory channel
layer) and everything is written by that process, through the browsers.
"""

import pytest

from .conftest import screenshot
from .servers import Server, start_app
from .test_chat import PASSWORD, Visitor

pytestmark = pytest.mark.e2e

GROUP = "morning-circle"
STARTER = "willow"
RECIPIENT = "fern"
SEED = f"""
from forum import memberships
from forum.models import SupportGroup, User
group = SupportGroup.objects.create(
    name="Morning Circle", slug="{GROUP}", kind=SupportGroup.Kind.MUTUAL_AID,
    visibility="private", join_policy="request",
    guidelines_source="Be kind.", guidelines_html="<p>Be kind.</p>",
)
for handle in ("{STARTER}", "{RECIPIENT}"):
    member = User.objects.create_user(handle, handle + "@example.test", "{PASSWORD}")
    memberships.add_member(user=member, group=group)
"""


@pytest.fixture(scope="module")
def server(chromium, databases, tmp_path_factory):
    live = start_app(tmp_path_factory, databases.sqlite("dm"), SEED)
    yield live
    live.stop()


def log_in(visitor: Visitor, server: Server, path: str) -> None:
    page = visitor.page
    page.goto(f"{server.url}/accounts/login/?next={path}")
    page.get_by_label("Handle").fill(visitor.handle)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{path}")


def test_request_accept_talk_live_then_block(chromium, server):
    from playwright.sync_api import expect

    willow = Visitor(chromium, server, STARTER)
    fern = Visitor(chromium, server, RECIPIENT)
    try:
        # willow asks from fern's profile, with a note.
        log_in(willow, server, f"/u/{RECIPIENT}/")
        willow.page.get_by_role("link", name=f"Message {RECIPIENT}").click()
        willow.page.get_by_label("Your note").fill("Hi fern, your share about mornings helped.")
        willow.page.get_by_role("button", name="Send request").click()
        expect(willow.page.locator(".dm-waiting")).to_contain_text(f"Waiting for {RECIPIENT}")
        conversation_path = willow.page.url.removeprefix(server.url)

        # fern sees the request (the note, not a message) and accepts it.
        log_in(fern, server, "/messages/")
        request = fern.page.locator(".dm-request")
        expect(request).to_contain_text(f"{STARTER} would like to talk")
        expect(request).to_contain_text("your share about mornings helped")
        request.get_by_role("button", name="Accept").click()
        fern.page.wait_for_url(f"**{conversation_path}")
        fern.expect_connected()

        # Both talk live.
        willow.page.goto(f"{server.url}{conversation_path}")
        willow.expect_connected()
        willow.send("Thank you for accepting")
        expect(fern.stored()).to_have_text(["Thank you for accepting"])
        fern.send("Glad to talk, **willow**")
        expect(willow.stored()).to_have_text(["Thank you for accepting", "Glad to talk, willow"])
        screenshot(willow.page, "dm-conversation-1100")

        # fern blocks: willow's composer turns off at once, and fern's list no longer has it.
        fern.page.get_by_role("button", name=f"Block {STARTER}").click()
        fern.page.wait_for_url("**/messages/")
        expect(fern.page.locator(f'a[href="{conversation_path}"]')).to_have_count(0)
        expect(willow.page.get_by_label("Your message")).to_be_disabled()
        expect(willow.page.locator("#chat-unavailable")).to_be_visible()
        # The history stays with willow, read-only; nothing says "blocked".
        willow.page.reload()
        expect(willow.page.locator(".dm-closed")).to_contain_text("This conversation is closed")
        expect(willow.stored()).to_have_count(2)
        assert "block" not in willow.page.locator("main").inner_text().lower().replace(
            f"block {RECIPIENT}", ""
        )
        screenshot(willow.page, "dm-closed-1100")
        willow.check_clean()
        fern.check_clean()
    finally:
        willow.close()
        fern.close()
