"""Sessions' pages as a leader and a member meet them in a browser: scheduling in the
browser's time zone, times shown in each reader's own zone, RSVP, the calendar file, and
the countdown that brings the session's room onto the page when it opens."""

from datetime import timedelta

import pytest
from django.utils import timezone

from forum.models import LiveSession, Membership
from tests.conftest import PASSWORD, join, make_group, make_user

from .conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def browser_page(chromium, live_server, *, zone: str):
    context = chromium.new_context(
        viewport={"width": 1100, "height": 900}, timezone_id=zone, locale="en-GB"
    )
    page = context.new_page()
    foreign: list[str] = []
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith(live_server.url) else foreign.append(request.url)
        ),
    )
    page.foreign_requests = foreign
    return context, page


def log_in(page, base: str, handle: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Handle").fill(handle)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_a_leader_schedules_and_a_member_far_away_sees_it_in_their_own_time(chromium, live_server):
    from playwright.sync_api import expect

    group = make_group("evening-circle")
    join(make_user("lantern"), group, Membership.Role.LEADER)
    join(make_user("river"), group)
    base = live_server.url

    # The leader, in New York: the form starts on the browser's zone.
    context, page = browser_page(chromium, live_server, zone="America/New_York")
    log_in(page, base, "lantern")
    page.goto(f"{base}{group.get_absolute_url()}")
    page.get_by_role("link", name="Live sessions").click()
    page.get_by_role("link", name="Schedule a session").click()
    expect(page.get_by_label("Time zone")).to_have_value("America/New_York")
    page.get_by_label("Title").fill("Evening open share")
    page.get_by_label("Topic (optional)").fill("What went **well** this week?")
    page.get_by_label("Date").fill("2030-10-15")
    page.get_by_label("Starts at").fill("19:00")
    page.get_by_label("Ends at").fill("19:00")
    page.get_by_label("Time zone").select_option("Europe/London")
    page.get_by_label("Repeat weekly").check()
    page.get_by_role("button", name="Schedule").click()
    # A mistake is a field error next to the field, and nothing typed is lost.
    expect(page.get_by_text("The session ends after it starts.")).to_be_visible()
    expect(page.get_by_label("Title")).to_have_value("Evening open share")
    expect(page.get_by_label("Time zone")).to_have_value("Europe/London")
    screenshot(page, "session-form-error")
    page.get_by_label("Ends at").fill("20:00")
    page.get_by_role("button", name="Schedule").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Evening open share")
    expect(page.get_by_text("Scheduled 12 weekly sessions")).to_be_visible()
    # 19:00 in London on 15 October 2030 is 14:00 in New York.
    when = page.locator(".session-when time")
    expect(when).to_contain_text("14:00 to 15:00 (your time, America/New York)")
    assert when.get_attribute("title") == "Tue 15 Oct 2030, 19:00 to 20:00 (Europe/London)"
    expect(page.get_by_role("link", name="Edit")).to_be_visible()
    assert LiveSession.objects.count() == 12
    context.close()

    # A member in Tokyo: the group page lists what is coming, in Tokyo time.
    context, page = browser_page(chromium, live_server, zone="Asia/Tokyo")
    log_in(page, base, "river")
    page.goto(f"{base}{group.get_absolute_url()}")
    upcoming = page.locator(".group-sessions")
    expect(upcoming.locator(".session-row")).to_have_count(3)
    expect(upcoming.locator("time").first).to_contain_text("03:00 to 04:00 (your time, Asia/Tokyo)")
    upcoming.get_by_role("link", name="Evening open share").first.click()
    expect(page.get_by_text("What is said here is deleted when the session ends.")).to_be_visible()
    expect(page.locator(".session-topic strong")).to_have_text("well")
    expect(page.locator(".session-countdown-value")).to_contain_text("day")
    page.get_by_role("button", name="I'm going").click()
    expect(page.get_by_text("You're going.")).to_be_visible()
    expect(page.get_by_role("button", name="I'm going ✓")).to_be_visible()
    calendar = page.get_by_role("link", name="Add to calendar").get_attribute("href")
    response = page.request.get(f"{base}{calendar}")
    assert response.headers["content-type"].startswith("text/calendar")
    assert "DTSTART:20301015T180000Z" in response.text()
    assert page.get_by_role("link", name="Edit").count() == 0
    screenshot(page, "session-page-member")
    page.set_viewport_size({"width": 360, "height": 800})
    page.reload()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the session page scrolls sideways at 360 px ({width})"
    screenshot(page, "session-page-360")
    assert page.foreign_requests == []
    context.close()


def test_the_countdown_brings_the_room_in_when_it_opens(chromium, live_server):
    from playwright.sync_api import expect

    from forum import publishing

    group = make_group("evening-circle")
    leader, member = make_user("lantern"), make_user("river")
    join(leader, group, Membership.Role.LEADER)
    join(member, group)
    plan = publishing.SessionPlan(
        title="Drop-in share",
        starts_on=timezone.localdate() + timedelta(days=1),
        start_time=timezone.now().time(),
        end_time=(timezone.now() + timedelta(hours=1)).time(),
        time_zone="UTC",
        opens_before_minutes=0,
    )
    [session] = publishing.schedule_session(actor=leader, group=group, plan=plan)
    opens = timezone.now() + timedelta(seconds=4)
    LiveSession.objects.filter(pk=session.pk).update(
        starts_at=opens, ends_at=opens + timedelta(hours=1)
    )

    context, page = browser_page(chromium, live_server, zone="UTC")
    log_in(page, live_server.url, "river")
    page.goto(f"{live_server.url}{session.get_absolute_url()}")
    expect(page.locator(".session-countdown-value")).to_contain_text("second")
    assert page.locator("#session-console").count() == 0
    screenshot(page, "session-countdown")
    # At zero the page reloads itself, and the session's room is there.
    expect(page.locator("#session-console")).to_be_attached(timeout=15_000)
    expect(page.locator("#session-countdown")).to_have_count(0)
    expect(page.get_by_text("Live now")).to_be_visible()
    context.close()
