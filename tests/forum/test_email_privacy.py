"""What leaves Kinship by e-mail gives nothing away.

Kinship sends two kinds of e-mail: the notification digest (forum.notify.send_digests) and
the password reset. Session reminders, moderation notices, mentions, replies and message
requests are in-app notifications; by e-mail they are only counted in the digest. Neither
e-mail carries anyone's words, a thread or session title, a group's name or another
member's handle, whatever the member chose: there is no setting that adds them, because a
shared inbox or a lock screen must never show that someone is in recovery, or where.
"""

from datetime import time, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from forum import conversations, notify, publishing
from forum.models import Membership, Notification, NotificationPreference
from moderation import actions
from tests.conftest import join, make_group, make_user
from tests.permissions_world import lift_limits

pytestmark = pytest.mark.django_db

GROUP_NAME = "Harbour of Quiet Mornings"
THREAD_TITLE = "Relapsed after ninety days"
REPLY = "I drank again on Friday and told nobody"
SESSION_TITLE = "Benzodiazepine taper circle"
REASON = "Posted a dealer's number"
MESSAGE = "Please read the group's guidelines on sourcing"
DM_NOTE = "Saw your share about the methadone clinic"


@pytest.fixture
def busy(settings):
    """river has one of every notification, each naming something private."""
    lift_limits(settings)
    settings.KINSHIP_SITE_URL = "https://kinship.example"
    group = make_group("quiet-mornings", private=True)
    group.name = GROUP_NAME
    group.save(update_fields=["name"])
    river, meadow, leader = make_user("river"), make_user("meadow"), make_user("lighthouse")
    moderator = make_user("warden", is_site_moderator=True)
    join(river, group)
    join(meadow, group)
    join(leader, group, Membership.Role.LEADER)

    thread = publishing.publish_thread(
        author=river, group=group, title=THREAD_TITLE, body="Opening words."
    )
    publishing.publish_reply(author=meadow, thread=thread, body=f"@river {REPLY}")
    [session] = publishing.schedule_session(
        actor=leader,
        group=group,
        plan=publishing.SessionPlan(
            title=SESSION_TITLE,
            starts_on=timezone.localdate() + timedelta(days=3),
            start_time=time(18),
            end_time=time(19),
            time_zone="UTC",
        ),
    )
    publishing.toggle_rsvp(user=river, session=session)
    actions.sanction_member(
        actor=moderator, member=river, kind="warning", group=group, reason=REASON, message=MESSAGE
    )
    conversations.request_conversation(starter=meadow, recipient=river, note=DM_NOTE)
    later = session.starts_at - timedelta(minutes=30)
    assert notify.send_session_reminders(now=later) == 1
    NotificationPreference.objects.update_or_create(
        user=river,
        defaults={"digest_frequency": "daily", "last_digest_at": timezone.now() - timedelta(days=2)}
        | {f"{category.key}_in_digest": True for category in notify.CATEGORIES},
    )
    return river, meadow, group, later


def everything_sent() -> str:
    return "\n".join(
        f"{email.subject}\n{email.body}\n{email.alternatives}\n{email.extra_headers}"
        for email in mail.outbox
    ).lower()


SECRETS = [GROUP_NAME, THREAD_TITLE, REPLY, SESSION_TITLE, REASON, MESSAGE, DM_NOTE]


def test_the_in_app_notifications_do_name_the_private_things(busy):
    # The control: what the digest counts does carry the words, so a digest that copied
    # notification text into the e-mail would fail the tests below.
    river, *_ = busy
    texts = " ".join(Notification.objects.filter(recipient=river).values_list("text", flat=True))
    assert SESSION_TITLE in texts
    assert REASON in texts
    assert set(Notification.objects.filter(recipient=river).values_list("kind", flat=True)) >= {
        "reply", "session", "moderation", "direct_message",
    }  # fmt: skip


def test_the_digest_counts_without_words_titles_groups_or_handles(busy):
    river, meadow, group, later = busy
    assert notify.send_digests(now=later) == 1
    [email] = mail.outbox
    assert email.to == [river.email]
    for counted in ("new reply", "session notice", "moderation notice", "direct message"):
        assert counted in email.body
    sent = everything_sent()
    for secret in [*SECRETS, group.slug, meadow.handle, river.handle]:
        assert secret.lower() not in sent, secret
    assert "/g/" not in sent and "/messages/" not in sent  # no link that names a place


def test_the_password_reset_names_nothing_but_the_site(busy, client):
    river, meadow, group, _later = busy
    response = client.post("/accounts/password_reset/", {"email": river.email})
    assert response.status_code == 302
    [email] = mail.outbox
    assert email.subject == "Reset your Kinship password"
    assert "/accounts/reset/" in email.body
    sent = everything_sent()
    for secret in [*SECRETS, group.slug, meadow.handle, river.handle]:
        assert secret.lower() not in sent, secret


def test_no_preference_puts_words_into_the_e_mail(busy):
    # Every choice a member can make, switched on: the e-mail still only counts.
    river, meadow, group, later = busy
    preference = NotificationPreference.objects.get(user=river)
    for field in NotificationPreference._meta.get_fields():
        if getattr(field, "get_internal_type", lambda: "")() == "BooleanField":
            setattr(preference, field.name, True)
    preference.save()
    assert notify.send_digests(now=later) == 1
    sent = everything_sent()
    for secret in [*SECRETS, group.slug, meadow.handle]:
        assert secret.lower() not in sent, secret
