"""The live review queue in real browsers: a member flags a thread and the moderator's
open queue shows the new item without a reload; the item page blurs distressing content.

Like tests/e2e/test_chat.py, the site runs in its own uvicorn process (in-memory channel
layer), so the flag is made through the member's browser: the server's own process
writes it and rings the queue.
"""

import pytest

from .conftest import screenshot
from .servers import Server, start_app
from .test_chat import PASSWORD

pytestmark = pytest.mark.e2e

GROUP = "morning-circle"
SEED = f"""
from forum import memberships, publishing
from forum.models import Membership, SupportGroup, User
group = SupportGroup.objects.create(
    name="Morning Circle", slug="{GROUP}", kind=SupportGroup.Kind.MUTUAL_AID,
    visibility="public", join_policy="open",
    guidelines_source="Be kind.", guidelines_html="<p>Be kind.</p>",
)
author = User.objects.create_user("pebble", "pebble@example.test", "{PASSWORD}")
flagger = User.objects.create_user("quietwatcher", "qw@example.test", "{PASSWORD}")
moderator = User.objects.create_user("tender", "tender@example.test", "{PASSWORD}")
memberships.add_member(user=author, group=group)
memberships.add_member(user=flagger, group=group)
memberships.add_member(user=moderator, group=group, role=Membership.Role.MODERATOR)
publishing.publish_thread(
    author=author, group=group, title="Rough night", body="I feel hopeless tonight."
)
"""


@pytest.fixture(scope="module")
def server(chromium, databases, tmp_path_factory):
    live = start_app(tmp_path_factory, databases.sqlite("queue"), SEED)
    yield live
    live.stop()


def log_in(browser, server: Server, handle: str, next_path: str):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    foreign: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "request",
        lambda r: None if r.url.startswith((server.url, "data:")) else foreign.append(r.url),
    )
    page.goto(f"{server.url}/accounts/login/?next={next_path}")
    page.get_by_label("Handle").fill(handle)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_path}")
    return context, page, errors, foreign


def test_a_flag_appears_in_the_open_queue_without_a_reload(chromium, server):
    from playwright.sync_api import expect

    mod_context, queue, mod_errors, mod_foreign = log_in(
        chromium, server, "tender", "/moderation/queue/"
    )
    # Filtered to the group: the live refresh fetches this same page, filter included.
    queue.get_by_label("Group").select_option(GROUP)
    queue.get_by_role("button", name="Show").click()
    queue.wait_for_url(f"**/moderation/queue/?group={GROUP}")
    expect(queue.locator("#queue-live")).to_have_attribute("data-state", "open")
    expect(queue.locator(".review-row")).to_have_count(0)
    queue.evaluate("window.notReloaded = true")

    member_context, member, member_errors, _ = log_in(chromium, server, "quietwatcher", "/")
    member.goto(f"{server.url}/g/{GROUP}/")
    member.get_by_role("link", name="Rough night").click()
    member.get_by_role("link", name="Flag this thread").click()
    member.get_by_label("I'm worried about this person").check()
    member.get_by_role("button", name="Send to the moderators").click()
    expect(member.get_by_role("heading", level=1)).to_contain_text("Thank you")

    row = queue.locator(".review-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Rough night")
    expect(row).to_contain_text("Urgent: support needed")
    expect(queue.locator("#queue-live")).to_have_text("The queue changed.")
    assert queue.evaluate("window.notReloaded") is True
    screenshot(queue, "moderation-queue")

    row.get_by_role("link").first.click()
    queue.wait_for_url("**/moderation/items/**")
    body = queue.locator(".review-sensitive-body")
    # Distressing: blurred behind a button until the moderator chooses to look.
    assert "blur" in body.evaluate("el => getComputedStyle(el).filter")
    expect(queue.locator(".review-flag")).to_contain_text("quietwatcher")
    screenshot(queue, "moderation-item-blurred")
    queue.get_by_role("button", name="Show content").click()
    assert body.evaluate("el => getComputedStyle(el).filter") == "none"
    expect(queue.get_by_role("button", name="Hide content")).to_be_visible()
    screenshot(queue, "moderation-item")
    queue.get_by_role("link", name="Moderate this member").click()
    expect(queue.get_by_role("heading", level=1)).to_have_text("Moderating pebble")
    queue.locator("details#action-chat_mute > summary").click()
    screenshot(queue, "moderation-member")

    assert mod_errors == [] and member_errors == [], (mod_errors, member_errors)
    assert mod_foreign == []
    mod_context.close()
    member_context.close()
