"""Quiet hours a member sets for themself: the pure window arithmetic, the write path's
kind refusal with a one-post override, the settings section and the chat frame."""

from datetime import UTC, datetime, time
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from forum import accounts, publishing, quiet_hours
from forum.models import ChatMessage, ChatRoom, Post, Thread
from tests.chat_helpers import open_socket, run_async
from tests.conftest import join, make_group, make_user

NIGHT = (time(23, 0), time(6, 0))


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 25, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "window", "tz", "expected"),
    [
        (at(23, 30), NIGHT, "UTC", datetime(2026, 11, 26, 6, 0, tzinfo=UTC)),
        (at(2), NIGHT, "UTC", datetime(2026, 11, 25, 6, 0, tzinfo=UTC)),
        (at(6), NIGHT, "UTC", None),  # the end is not quiet
        (at(22, 59), NIGHT, "UTC", None),
        (at(12), (time(9), time(17)), "UTC", datetime(2026, 11, 25, 17, 0, tzinfo=UTC)),
        (at(17), (time(9), time(17)), "UTC", None),
        (at(12), (time(9), time(9)), "UTC", None),  # start == end is off
        (at(12), (None, None), "UTC", None),
    ],
)
def test_quiet_until(now, window, tz, expected):
    assert quiet_hours.quiet_until(now, *window, tz) == expected


def test_quiet_hours_are_in_the_members_time_zone():
    # 05:30 UTC is 23:30 the evening before in Chicago (UTC-6 in November): quiet until
    # 06:00 there, 12:00 UTC.
    until = quiet_hours.quiet_until(at(5, 30), *NIGHT, "America/Chicago")
    assert until is not None and until.astimezone(UTC) == at(12)
    assert quiet_hours.quiet_until(at(4, 30), *NIGHT, "America/Chicago") is None
    assert quiet_hours.describe_end(until) == "06:00"
    assert quiet_hours.quiet_until(at(13), *NIGHT, "America/Chicago") is None


def test_unknown_time_zones_are_not_valid():
    assert quiet_hours.valid_timezone("Europe/London")
    assert not quiet_hours.valid_timezone("Mars/Olympus")
    assert not quiet_hours.valid_timezone("")


@pytest.fixture
def circle(db, settings):
    settings.KINSHIP_RATE_LIMITS = {k: (1000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    group = make_group("open-circle")
    river, meadow = make_user("river"), make_user("meadow")
    join(river, group)
    join(meadow, group)
    thread = publishing.publish_thread(author=meadow, group=group, title="Day three", body="Hi")
    room = ChatRoom.objects.create(group=group, name="General", slug="general", is_default=True)
    return group, thread, room, river


def quiet_now(user) -> None:
    """Give ``user`` quiet hours that contain this moment, whatever the clock says."""
    now = datetime.now(UTC)
    start = time((now.hour - 1) % 24, 0)
    end = time((now.hour + 2) % 24, 0)
    accounts.set_quiet_hours(user=user, start=start, end=end, timezone="UTC")


def test_posting_in_quiet_hours_is_refused_kindly_and_can_be_overridden(circle):
    group, thread, room, river = circle
    quiet_now(river)
    end = river.quiet_end.strftime("%H:%M")
    for attempt in (
        lambda **kw: publishing.publish_thread(
            author=river, group=group, title="Late", body="Up late, a thread", **kw
        ),
        lambda **kw: publishing.publish_reply(
            author=river, thread=thread, body="Up late, a reply", **kw
        ),
        lambda **kw: publishing.publish_chat_message(
            author=river, room=room, body="Up late", client_id="q1", **kw
        ),
    ):
        with pytest.raises(ValidationError) as refused:
            attempt()
        message = refused.value.message_dict[publishing.QUIET_HOURS_FIELD][0]
        assert "your own quiet hours" in message and end in message
        attempt(post_anyway=True)
    assert Thread.objects.filter(author=river).count() == 1
    assert Post.objects.filter(author=river, parent__isnull=False).count() == 1
    assert ChatMessage.objects.filter(author=river).count() == 1


def test_outside_quiet_hours_nothing_changes(circle):
    _group, thread, _room, river = circle
    now = datetime.now(UTC)
    later = time((now.hour + 3) % 24, 0), time((now.hour + 5) % 24, 0)
    accounts.set_quiet_hours(user=river, start=later[0], end=later[1], timezone="UTC")
    publishing.publish_reply(author=river, thread=thread, body="Fine now")


def test_set_quiet_hours_validates():
    user = mock.Mock(spec=["quiet_start", "quiet_end", "quiet_timezone", "save"])
    cases = [
        ((time(23), None, "UTC"), "quiet_end"),
        ((time(23), time(23), "UTC"), "quiet_end"),
        ((time(23), time(6), "Nowhere/Town"), "quiet_timezone"),
    ]
    for (start, end, tz), field in cases:
        with pytest.raises(ValidationError) as error:
            accounts.set_quiet_hours(user=user, start=start, end=end, timezone=tz)
        assert field in error.value.message_dict
    user.save.assert_not_called()


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_settings_section_saves_quiet_hours_and_forms_offer_the_override(circle):
    _group, thread, _room, river = circle
    client = as_user(river)
    page = client.get("/settings/").content.decode()
    assert "Quiet hours" in page
    assert 'name="post_anyway"' not in client.get(thread.get_absolute_url()).content.decode()
    bad = client.post("/settings/", {"section": "quiet", "quiet_start": "23:00", "quiet_end": ""})
    assert bad.status_code == 200 and "Give both a start and an end" in bad.content.decode()
    response = client.post(
        "/settings/",
        {
            "section": "quiet",
            "quiet_start": "23:00",
            "quiet_end": "06:00",
            "quiet_timezone": "Europe/London",
        },
    )
    assert response.status_code == 302
    river.refresh_from_db()
    assert (river.quiet_start, river.quiet_end, river.quiet_timezone) == (
        time(23),
        time(6),
        "Europe/London",
    )
    assert 'name="post_anyway"' in client.get(thread.get_absolute_url()).content.decode()


def test_the_reply_form_refuses_then_posts_anyway(circle):
    _group, thread, _room, river = circle
    quiet_now(river)
    client = as_user(river)
    url = f"{thread.get_absolute_url()}reply/"
    refused = client.post(url, {"body": "Cannot sleep"})
    assert refused.status_code == 200
    text = refused.content.decode()
    assert "your own quiet hours" in text and "Cannot sleep" in text
    assert not Post.objects.filter(author=river).exists()
    assert client.post(url, {"body": "Cannot sleep", "post_anyway": "on"}).status_code == 302
    assert Post.objects.filter(author=river, source="Cannot sleep").exists()


@pytest.mark.django_db(transaction=True)
def test_chat_says_quiet_hours_and_takes_post_anyway(settings):
    settings.KINSHIP_RATE_LIMITS = {k: (1000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    group = make_group("open-circle")
    river = make_user("river")
    join(river, group)
    room = ChatRoom.objects.create(group=group, name="General", slug="general")
    quiet_now(river)
    skip = {"presence", "heartbeat", "typing", "message", "room", "history"}

    async def scenario():
        socket = await open_socket(room, river)
        await socket.send({"type": "send", "client_id": "a", "body": "Late one"})
        error = await socket.expect("error", skip=skip)
        assert error["code"] == "quiet_hours" and "your own quiet hours" in error["message"]
        await socket.send(
            {"type": "send", "client_id": "a", "body": "Late one", "post_anyway": True}
        )
        await socket.expect("ack", client_id="a", skip=skip)
        await socket.disconnect()

    run_async(scenario)
    assert ChatMessage.objects.filter(author=river, source="Late one").count() == 1
