"""A newcomer's first visit, in a real browser: sign up, join, post, reply in a tree."""

import pytest

from forum.models import Post, Thread
from tests.conftest import make_group, make_user

from .conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_newcomer_signs_up_joins_posts_and_replies(page, live_server):
    group = make_group("daily-reflections")
    make_user("old-timer")
    base = live_server.url

    page.goto(f"{base}/")
    page.get_by_role("link", name="Join Kinship").first.click()
    page.get_by_label("Handle").fill("Sunrise_42")
    page.get_by_label("E-mail").fill("sunrise@example.test")
    page.get_by_label("Password", exact=True).fill("gentle-morning-7713")
    page.get_by_label("Password confirmation").fill("gentle-morning-7713")
    page.get_by_role("button", name="Create my account").click()
    assert "Welcome, Sunrise_42" in page.content()

    page.get_by_role("link", name=group.name).first.click()
    page.get_by_role("link", name="Join this group").click()
    page.get_by_role("button", name="Join the group").click()
    assert "Please read and accept" in page.content()
    page.get_by_label("I have read the guidelines").check()
    page.get_by_role("button", name="Join the group").click()
    assert f"Welcome to {group.name}" in page.content()

    page.get_by_role("link", name="Start a thread").click()
    page.get_by_label("Title").fill("My first week <script>alert(1)</script>")
    page.get_by_label("Your post").fill(
        "Hello everyone.\n\n**Seven days** today.\n\n<img src=x onerror=alert(2)>"
    )
    page.get_by_role("button", name="Post thread").click()
    heading = page.get_by_role("heading", level=1)
    assert heading.inner_text() == "My first week <script>alert(1)</script>"
    assert page.locator(".post-body strong").first.inner_text() == "Seven days"
    assert page.locator(".post-body img").count() == 0

    page.get_by_label("Your reply").fill("Checking in again tonight.")
    page.get_by_role("button", name="Post reply").last.click()
    first_reply = Post.objects.get(source="Checking in again tonight.")

    reply_box = page.locator(f"#post-{first_reply.pk} .reply-inline")
    reply_box.locator("summary").click()
    reply_box.get_by_role("textbox").fill("Answering _myself_ in a nested reply.")
    reply_box.get_by_role("button", name="Post reply").click()
    nested = Post.objects.get(source="Answering _myself_ in a nested reply.")
    assert nested.parent_id == first_reply.pk

    article = page.locator(f"#post-{nested.pk}")
    assert "depth-1" in article.get_attribute("class")
    assert article.locator("em").inner_text() == "myself"
    thread = Thread.objects.get()
    assert thread.reply_count == 2
    screenshot(page, "thread-desktop")

    page.set_viewport_size({"width": 360, "height": 800})
    page.reload()
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 360, f"page scrolls sideways at 360 px ({scroll_width})"
    screenshot(page, "thread-360")


def test_crisis_link_is_on_every_page_and_keyboard_reachable(page, live_server):
    page.goto(f"{live_server.url}/groups/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.get_by_role("link", name="Need help now?").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Need help now?"
    assert "988" in page.content() and "116 123" in page.content()
    screenshot(page, "help")


def test_a_newcomers_first_thread_waits_for_a_moderator_and_says_so(page, live_server, settings):
    """With the new-member rules on (as `make run` and production have them)."""
    from django.test import Client

    from forum.models import Membership
    from moderation import actions
    from moderation.models import QueueItem
    from tests.conftest import join

    settings.KINSHIP_TRUST_RULES = True
    group = make_group("daily-reflections")
    moderator = make_user("steady-hand")
    join(moderator, group, Membership.Role.MODERATOR)
    base = live_server.url

    page.goto(f"{base}/accounts/signup/")
    page.get_by_label("Handle").fill("Dawn_7")
    page.get_by_label("E-mail").fill("dawn@example.test")
    page.get_by_label("Password", exact=True).fill("gentle-morning-7713")
    page.get_by_label("Password confirmation").fill("gentle-morning-7713")
    page.get_by_role("button", name="Create my account").click()
    page.goto(f"{base}{group.get_absolute_url()}join/")
    page.get_by_label("I have read the guidelines").check()
    page.get_by_role("button", name="Join the group").click()
    page.get_by_role("link", name="Start a thread").click()
    page.get_by_label("Title").fill("Hello from a newcomer")
    page.get_by_label("Your post").fill("Day two. Glad this place exists.")
    page.get_by_role("button", name="Post thread").click()
    # The author is told honestly, and still sees what they wrote.
    assert "A moderator will look at this soon" in page.content()
    assert "Day two. Glad this place exists." in page.content()
    screenshot(page, "newcomer-held")

    thread = Thread.objects.get()
    assert thread.hidden_pending_review
    visitor = Client()
    assert "Hello from a newcomer" not in visitor.get(group.get_absolute_url()).content.decode()
    item = QueueItem.objects.get(state=QueueItem.State.OPEN)
    assert item.held_by_policy
    actions.dismiss_flags(actor=moderator, item=item, note="Welcome!")
    thread.refresh_from_db()
    assert not thread.is_hidden
    assert "Hello from a newcomer" in visitor.get(group.get_absolute_url()).content.decode()
