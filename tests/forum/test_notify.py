"""forum/notify.py: the one place that decides whether a member is told something.

Preferences per kind (moderation notices and held posts always reach the app), the unread
count broadcast after commit (a number, nothing else), the opt-in e-mail digest that carries
counts and links only, and the reminders before a live session for those who are coming.
"""

import io
from datetime import date, time, timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from forum import asgi, engagement, memberships, notify, publishing, realtime, recurrence
from forum.models import (
    JoinRequest,
    LiveSession,
    Membership,
    Notification,
    NotificationPreference,
    SessionRSVP,
    Subscription,
    User,
)
from moderation import actions
from tests.conftest import join, make_group, make_user

pytestmark = pytest.mark.django_db

Kind = Notification.Kind
FUTURE = date(2030, 10, 15)


@pytest.fixture(autouse=True)
def unlimited(settings):
    settings.KINSHIP_RATE_LIMITS = {k: (10_000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.KINSHIP_SITE_URL = "https://kinship.example"


class Recorder:
    """A channel layer that records what is sent to groups."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    async def group_send(self, group: str, event: dict) -> None:
        self.sent.append((group, event))

    def to(self, user: User) -> list[dict]:
        return [event for name, event in self.sent if name == realtime.user_group(user.pk)]


@pytest.fixture
def layer(monkeypatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: recorder)
    return recorder


@pytest.fixture
def circle(db):
    group = make_group("evening-circle")
    river, meadow = make_user("river"), make_user("meadow")
    join(river, group)
    join(meadow, group)
    return group, river, meadow


def prefer(user: User, **fields) -> NotificationPreference:
    preference, _ = NotificationPreference.objects.update_or_create(user=user, defaults=fields)
    return preference


def kinds_of(user: User) -> list[str]:
    return list(Notification.objects.filter(recipient=user).values_list("kind", flat=True))


# --- preferences -----------------------------------------------------------------------------


def test_every_kind_belongs_to_one_category_with_its_fields():
    seen = [kind for category in notify.CATEGORIES for kind in category.kinds]
    assert sorted(seen) == sorted(Kind.values)
    for category in notify.CATEGORIES:
        assert hasattr(NotificationPreference, f"{category.key}_in_digest")
        assert hasattr(NotificationPreference, f"{category.key}_in_app") != category.always_in_app


def test_without_a_row_every_kind_reaches_the_app_and_the_digest_is_off(circle):
    _group, river, meadow = circle
    for kind in Kind.values:
        assert notify.notify(recipient=river, kind=kind, actor=meadow) is not None
    assert sorted(kinds_of(river)) == sorted(Kind.values)
    preference = notify.preferences_for(river)
    assert preference.pk is None
    assert preference.digest_frequency == NotificationPreference.Frequency.OFF


OPTIONAL = [category for category in notify.CATEGORIES if not category.always_in_app]


@pytest.mark.parametrize("category", OPTIONAL, ids=lambda c: c.key)
def test_a_kind_switched_off_in_app_is_not_stored_and_the_others_are(circle, category):
    _group, river, meadow = circle
    prefer(river, **{f"{category.key}_in_app": False})
    for kind in Kind.values:
        note = notify.notify(recipient=river, kind=kind, actor=meadow)
        assert (note is None) == (kind in category.kinds), kind
    assert set(kinds_of(river)) == set(Kind.values) - set(category.kinds)


def test_moderation_notices_and_held_posts_reach_the_app_whatever_the_member_chose(circle):
    _group, river, _meadow = circle
    prefer(river, **{f"{c.key}_in_app": False for c in OPTIONAL})
    assert (
        notify.notify(recipient=river, kind=Kind.MODERATION, text="removed your post") is not None
    )
    assert notify.notify(recipient=river, kind=Kind.HELD_POST, text="could not go out") is not None
    assert notify.notify(recipient=river, kind=Kind.REPLY) is None
    notify.notify_many(recipient_ids=[river.pk], kind=Kind.MODERATION, text="again")
    assert sorted(kinds_of(river)) == sorted([Kind.MODERATION, Kind.MODERATION, Kind.HELD_POST])


def test_a_moderators_action_reaches_a_member_who_switched_everything_off(circle, site_moderator):
    group, river, _meadow = circle
    prefer(river, **{f"{c.key}_in_app": False for c in OPTIONAL})
    thread = publishing.publish_thread(author=river, group=group, title="Night", body="Words.")
    actions.hide_content(actor=site_moderator, obj=thread, reason="Off topic.")
    [note] = Notification.objects.filter(recipient=river)
    assert note.kind == Kind.MODERATION and "Off topic." in note.text


def test_a_deactivated_account_is_told_nothing(circle):
    _group, river, _meadow = circle
    User.objects.filter(pk=river.pk).update(is_active=False)
    river.refresh_from_db()
    assert notify.notify(recipient=river, kind=Kind.MODERATION, text="x") is None
    assert notify.notify_many(recipient_ids=[river.pk], kind=Kind.SESSION, text="x") == []
    assert not Notification.objects.exists()


def test_notify_many_honours_each_members_choice_in_a_constant_number_of_queries(
    circle, django_assert_num_queries
):
    group, river, meadow = circle
    others = [make_user(f"member{i}") for i in range(5)]
    prefer(meadow, sessions_in_app=False)
    ids = [river.pk, meadow.pk, *(o.pk for o in others)]
    with django_assert_num_queries(2):  # who wants it; one insert
        notes = notify.notify_many(recipient_ids=ids, kind=Kind.SESSION, group=group, text="x")
    assert {n.recipient_id for n in notes} == set(ids) - {meadow.pk}
    assert not Notification.objects.filter(recipient=meadow).exists()


def test_replies_mentions_and_followers_follow_the_preferences(circle):
    group, river, meadow = circle
    fern = make_user("fern")
    join(fern, group)
    thread = publishing.publish_thread(author=river, group=group, title="Mornings", body="Hi.")
    Subscription.objects.get_or_create(user=fern, thread=thread)
    prefer(river, replies_in_app=False)
    prefer(fern, replies_in_app=False)
    root = thread.posts.get(parent__isnull=True)
    publishing.publish_reply(author=meadow, thread=thread, parent=root, body="Me too @fern")
    assert kinds_of(river) == []  # the reply to them: switched off
    assert kinds_of(fern) == [Kind.MENTION]  # a follower, but mentions are still on
    prefer(fern, mentions_in_app=False, replies_in_app=True)
    publishing.publish_reply(author=meadow, thread=thread, parent=root, body="Again @fern")
    assert sorted(kinds_of(fern)) == sorted([Kind.MENTION, Kind.THREAD_REPLY])


def test_a_join_approval_and_a_cancelled_session_follow_the_preferences(db):
    group = make_group("quiet-room", private=True, join_policy="request")
    leader, river = make_user("lantern"), make_user("river")
    join(leader, group, Membership.Role.LEADER)
    prefer(river, memberships_in_app=False)
    request = JoinRequest.objects.create(group=group, user=river)
    memberships.decide_join_request(actor=leader, request=request, approve=True)
    assert kinds_of(river) == []
    [session] = schedule(leader, group)
    publishing.toggle_rsvp(user=river, session=session)
    publishing.cancel_session(actor=leader, session=session, reason="Snowed in.")
    assert kinds_of(river) == [Kind.SESSION]
    prefer(river, sessions_in_app=False)
    [later] = schedule(leader, group, starts_on=FUTURE + timedelta(days=1))
    publishing.toggle_rsvp(user=river, session=later)
    publishing.cancel_session(actor=leader, session=later)
    assert kinds_of(river) == [Kind.SESSION]


def test_text_and_url_are_kept_within_their_columns(circle):
    _group, river, _meadow = circle
    note = notify.notify(recipient=river, kind=Kind.DIRECT_MESSAGE, text="x" * 500, url="/" * 400)
    assert len(note.text) == 300 and len(note.url) == 300


# --- saving the choices ----------------------------------------------------------------------


def test_set_preferences_saves_the_choices(circle):
    _group, river, _meadow = circle
    saved = notify.set_preferences(
        user=river,
        choices={"mentions_in_app": False, "replies_in_digest": False},
        digest_frequency="weekly",
    )
    saved.refresh_from_db()
    assert not saved.mentions_in_app and not saved.replies_in_digest and saved.replies_in_app
    assert saved.digest_frequency == "weekly"
    # Switching the digest on starts its first period now: nothing is due yet.
    assert saved.last_digest_at is not None
    assert not notify.digest_due(saved, timezone.now())


@pytest.mark.parametrize(
    ("choices", "frequency", "field"),
    [
        ({}, "hourly", "digest_frequency"),
        ({}, "", "digest_frequency"),
        ({"moderation_in_app": False}, "off", "__all__"),  # always in the app: no switch
        ({"held_posts_in_app": False}, "off", "__all__"),
        ({"is_staff": True}, "off", "__all__"),
    ],
)
def test_set_preferences_refuses_what_is_not_a_choice(circle, choices, frequency, field):
    _group, river, _meadow = circle
    with pytest.raises(ValidationError) as caught:
        notify.set_preferences(user=river, choices=choices, digest_frequency=frequency)
    assert field in caught.value.message_dict
    assert not NotificationPreference.objects.exists()
    river.refresh_from_db()
    assert not river.is_staff


def test_deleting_an_account_deletes_its_preferences(circle):
    _group, river, _meadow = circle
    prefer(river, digest_frequency="daily")
    river.delete()
    assert not NotificationPreference.objects.exists()


# --- the unread count over the channel layer --------------------------------------------------


def test_the_count_is_sent_after_commit_and_carries_nothing_else(
    circle, layer, django_capture_on_commit_callbacks
):
    group, river, meadow = circle
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notify.notify(recipient=river, kind=Kind.MENTION, actor=meadow, group=group)
    assert layer.sent == []  # nothing before the commit
    assert callbacks
    with django_capture_on_commit_callbacks(execute=True):
        notify.notify(recipient=river, kind=Kind.MENTION, actor=meadow, group=group)
        notify.notify(recipient=river, kind=Kind.REPLY, actor=meadow, group=group)
    # Counted when the commit is done: both carry the final number.
    assert layer.to(river) == [{"type": "notify.unread", "count": 3}] * 2
    assert layer.to(meadow) == []


def test_a_switched_off_kind_rings_no_bell(circle, layer, django_capture_on_commit_callbacks):
    _group, river, _meadow = circle
    prefer(river, replies_in_app=False)
    with django_capture_on_commit_callbacks(execute=True):
        notify.notify(recipient=river, kind=Kind.REPLY)
        notify.notify_many(recipient_ids=[river.pk], kind=Kind.THREAD_REPLY)
    assert layer.sent == []


def test_reading_them_sends_zero_to_the_other_tabs(
    circle, layer, django_capture_on_commit_callbacks
):
    _group, river, _meadow = circle
    notify.notify(recipient=river, kind=Kind.MODERATION, text="x")
    with django_capture_on_commit_callbacks(execute=True):
        assert engagement.mark_notifications_read(user=river) == 1
        assert engagement.mark_notifications_read(user=river) == 0  # nothing new: no ring
    assert layer.to(river) == [{"type": "notify.unread", "count": 0}]


def test_a_broken_layer_does_not_undo_the_notification(
    circle, monkeypatch, django_capture_on_commit_callbacks
):
    _group, river, _meadow = circle

    class Broken:
        async def group_send(self, group, event):
            raise ConnectionError("redis went away")

    monkeypatch.setattr(realtime, "get_channel_layer", lambda: Broken())
    with django_capture_on_commit_callbacks(execute=True):
        note = notify.notify(recipient=river, kind=Kind.MENTION)
    assert Notification.objects.filter(pk=note.pk).exists()


# --- e-mail digests ---------------------------------------------------------------------------

SECRET_TITLE = "Relapsed after 90 days"
SECRET_BODY = "I drank again on Friday night"
SECRET_GROUP = "Secret Sobriety Circle"


@pytest.fixture
def busy(db):
    """river has unread notices of many kinds, from a private group with a telling name."""
    group = make_group("secret-sobriety-circle", private=True, join_policy="request")
    group.name = SECRET_GROUP
    group.save(update_fields=["name"])
    river, meadow = make_user("river"), make_user("meadowlark")
    join(river, group)
    join(meadow, group)
    thread = publishing.publish_thread(author=river, group=group, title=SECRET_TITLE, body="Hi.")
    root = thread.posts.get(parent__isnull=True)
    publishing.publish_reply(author=meadow, thread=thread, parent=root, body=SECRET_BODY)
    again = publishing.publish_reply(
        author=meadow, thread=thread, parent=root, body="Again, friend."
    )
    publishing.publish_reply(
        author=meadow, thread=thread, parent=again, body=f"@river {SECRET_BODY}"
    )
    notify.notify(recipient=river, kind=Kind.SESSION, group=group, text=f"“{SECRET_TITLE}” soon")
    assert sorted(kinds_of(river)) == sorted([Kind.REPLY, Kind.REPLY, Kind.MENTION, Kind.SESSION])
    prefer(river, digest_frequency="daily", last_digest_at=timezone.now() - timedelta(days=2))
    return river, meadow, group, thread


def test_a_due_digest_counts_and_links_but_tells_nothing(busy):
    river, meadow, group, thread = busy
    assert notify.send_digests() == 1
    [email] = mail.outbox
    assert email.to == [river.email]
    assert email.subject == "Your Kinship digest"
    assert email.body.startswith(
        "You have 2 new replies, 1 mention and 1 session notice on Kinship. "
        "Sign in to read them: https://kinship.example/notifications/"
    )
    assert "https://kinship.example/settings/" in email.body
    everything = email.subject + email.body + "".join(str(a) for a in email.alternatives)
    for secret in (SECRET_TITLE, SECRET_BODY, SECRET_GROUP, group.slug, meadow.handle):
        assert secret.lower() not in everything.lower()
    assert f"/{thread.pk}" not in everything  # no link to the thread either


def test_a_digest_is_sent_once_per_period(busy):
    river, *_ = busy
    now = timezone.now()
    assert notify.send_digests(now=now) == 1
    assert notify.send_digests(now=now + timedelta(hours=5)) == 0  # not due
    notify.notify(recipient=river, kind=Kind.MENTION)
    assert notify.send_digests(now=now + timedelta(hours=23, minutes=30)) == 1  # cron slack
    assert "1 mention on Kinship" in mail.outbox[1].body  # only what came since the last


def test_a_weekly_digest_waits_a_week(busy):
    river, *_ = busy
    now = timezone.now()
    prefer(river, digest_frequency="weekly", last_digest_at=now - timedelta(days=3))
    assert notify.send_digests(now=now) == 0
    assert notify.send_digests(now=now + timedelta(days=4)) == 1
    assert "2 new replies" in mail.outbox[0].body


def test_the_digest_is_opt_in(busy):
    river, *_ = busy
    NotificationPreference.objects.filter(user=river).delete()  # never chose: off
    assert notify.send_digests() == 0
    prefer(river, digest_frequency="off", last_digest_at=None)
    assert notify.send_digests() == 0
    assert mail.outbox == []


def test_only_unread_notifications_of_included_kinds_are_counted(busy):
    river, *_ = busy
    prefer(river, replies_in_digest=False, sessions_in_digest=False)
    Notification.objects.filter(recipient=river, kind=Kind.MENTION).update(read_at=timezone.now())
    before = NotificationPreference.objects.get(user=river).last_digest_at
    now = timezone.now()
    assert notify.send_digests(now=now) == 0  # nothing left to count: nothing sent
    assert mail.outbox == []
    # ... but the period starts again, so the next digest counts from now.
    after = NotificationPreference.objects.get(user=river).last_digest_at
    assert after == now and after > before


def test_no_digest_for_a_closed_account(busy):
    river, *_ = busy
    User.objects.filter(pk=river.pk).update(is_active=False)
    assert notify.send_digests() == 0


def test_a_failing_address_does_not_stop_the_others(busy, monkeypatch):
    river, meadow, group, _thread = busy
    notify.notify(recipient=meadow, kind=Kind.MENTION, group=group)
    prefer(meadow, digest_frequency="daily", last_digest_at=timezone.now() - timedelta(days=2))
    real = notify.send_mail

    def flaky(subject, body, sender, to):
        if to == [river.email]:
            raise ConnectionError("smtp refused")
        return real(subject, body, sender, to)

    monkeypatch.setattr(notify, "send_mail", flaky)
    assert notify.send_digests() == 1
    assert [email.to for email in mail.outbox] == [[meadow.email]]
    # river's stays due, for the next run.
    assert notify.digest_due(NotificationPreference.objects.get(user=river), timezone.now())


def test_the_send_digests_command(busy):
    out = io.StringIO()
    call_command("send_digests", stdout=out)
    assert len(mail.outbox) == 1
    assert out.getvalue() == "1 digest(s) sent.\n"


# --- session reminders -----------------------------------------------------------------------


def schedule(actor, group, **changes) -> list[LiveSession]:
    fields = {
        "title": "Tuesday open share",
        "starts_on": FUTURE,
        "start_time": time(19),
        "end_time": time(20),
        "time_zone": "Europe/London",
    }
    fields.update(changes)
    return publishing.schedule_session(
        actor=actor, group=group, plan=publishing.SessionPlan(**fields)
    )


@pytest.fixture
def session_circle(db, settings):
    settings.KINSHIP_SESSION_REMINDER_MINUTES = 60
    group = make_group("evening-circle")
    leader, river, meadow = make_user("lantern"), make_user("river"), make_user("meadow")
    join(leader, group, Membership.Role.LEADER)
    join(river, group)
    join(meadow, group)
    [session] = schedule(leader, group)
    publishing.toggle_rsvp(user=river, session=session)
    return session, leader, river, meadow


def test_who_is_coming_is_reminded_once_with_the_local_time(session_circle):
    session, _leader, river, meadow = session_circle
    soon = session.starts_at - timedelta(minutes=45)
    assert notify.send_session_reminders(now=soon) == 1
    [note] = Notification.objects.filter(recipient=river)
    local = recurrence.local(session.starts_at, "Europe/London")
    assert note.kind == Kind.SESSION
    assert "Tuesday open share" in note.text and f"{local:%H:%M}" == "19:00"
    assert "19:00" in note.text and "Europe/London" in note.text
    assert note.url == session.get_absolute_url()
    assert SessionRSVP.objects.get(user=river).reminded_at == soon
    assert notify.send_session_reminders(now=soon + timedelta(minutes=10)) == 0
    assert Notification.objects.filter(recipient=river).count() == 1
    assert not Notification.objects.filter(recipient=meadow).exists()  # did not say yes


def test_no_reminder_too_early_after_the_start_or_for_a_cancelled_session(session_circle):
    session, leader, river, _meadow = session_circle
    assert notify.send_session_reminders(now=session.starts_at - timedelta(hours=2)) == 0
    assert notify.send_session_reminders(now=session.starts_at + timedelta(minutes=1)) == 0
    publishing.cancel_session(actor=leader, session=session)
    Notification.objects.all().delete()  # the cancellation notice
    assert notify.send_session_reminders(now=session.starts_at - timedelta(minutes=30)) == 0
    assert not Notification.objects.exists()
    assert SessionRSVP.objects.get(user=river).reminded_at is None


def test_no_reminder_for_who_said_yes_inside_the_window_or_left_the_group(session_circle):
    session, _leader, river, meadow = session_circle
    soon = session.starts_at - timedelta(minutes=30)
    late = SessionRSVP.objects.create(session=session, user=meadow, created_at=soon)
    memberships.leave_group(user=river, group=session.group)
    assert notify.send_session_reminders(now=soon) == 0
    assert not Notification.objects.filter(kind=Kind.SESSION).exists()
    late.refresh_from_db()
    assert late.reminded_at == soon  # considered once, not again every round


def test_a_member_who_switched_sessions_off_is_not_reminded(session_circle):
    session, _leader, river, _meadow = session_circle
    prefer(river, sessions_in_app=False)
    assert notify.send_session_reminders(now=session.starts_at - timedelta(minutes=30)) == 0
    assert not Notification.objects.exists()


def test_reminders_run_in_the_asgi_chores_and_from_cron(session_circle, settings, monkeypatch):
    session, _leader, river, _meadow = session_circle
    monkeypatch.setattr(asgi.connection, "close", lambda: None)  # the test's transaction
    settings.KINSHIP_SESSION_REMINDER_MINUTES = (
        int((session.starts_at - timezone.now()).total_seconds() // 60) + 5
    )
    SessionRSVP.objects.update(created_at=timezone.now() - timedelta(days=1))
    asgi.run_chores()
    assert kinds_of(river) == [Kind.SESSION]
    SessionRSVP.objects.update(reminded_at=None)
    Notification.objects.all().delete()
    out = io.StringIO()
    call_command("send_session_reminders", stdout=out)
    assert kinds_of(river) == [Kind.SESSION]
    assert out.getvalue() == "1 member(s) reminded.\n"
