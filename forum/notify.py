"""The one place that decides whether, and how, a member is told something.

Every notification goes through ``notify`` (or ``notify_many`` for a crowd): it honours the
member's preferences (forum.models.NotificationPreference), skips deactivated accounts,
stores the row and, once the transaction commits, sends the member's sockets their new
unread count (only the count: the socket never carries what happened or where).

Also here: the e-mail digest (counts only: no words, no thread titles, no group names) and
the reminders before a live session for those who said they are coming. A reminder is a
``Notification.Kind.SESSION`` like a change to the session: one preference covers both.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from moderation import permissions

from . import realtime, recurrence, standing
from .models import (
    LiveSession,
    Notification,
    NotificationPreference,
    Post,
    SessionRSVP,
    SupportGroup,
    Thread,
    User,
)

logger = logging.getLogger(__name__)

Kind = Notification.Kind


@dataclass(frozen=True)
class Category:
    """A choice on the settings page: which kinds it covers, and its digest wording."""

    key: str  # NotificationPreference fields are <key>_in_app and <key>_in_digest
    label: str
    kinds: tuple[str, ...]
    one: str  # "1 new reply"
    many: str  # "3 new replies"
    # Moderation notices and held posts always reach the app: a member must learn of a
    # sanction, and of their own words that did not go out.
    always_in_app: bool = False


CATEGORIES: tuple[Category, ...] = (
    Category("replies", "Replies to you and in threads you follow",
             (Kind.REPLY, Kind.THREAD_REPLY), "new reply", "new replies"),
    Category("mentions", "Mentions of you", (Kind.MENTION,), "mention", "mentions"),
    Category("mentorship", "Mentorship requests and news", (Kind.MENTORSHIP,),
             "mentorship update", "mentorship updates"),
    Category("direct_messages", "Direct messages and message requests",
             (Kind.DIRECT_MESSAGE,), "direct message", "direct messages"),
    Category("sessions", "Live sessions: reminders, changes and cancellations",
             (Kind.SESSION,), "session notice", "session notices"),
    Category("memberships", "Your requests to join a group", (Kind.JOIN_APPROVED,),
             "group membership update", "group membership updates"),
    Category("moderation", "Moderation notices", (Kind.MODERATION,),
             "moderation notice", "moderation notices", always_in_app=True),
    Category("held_posts", "Your held posts", (Kind.HELD_POST,),
             "held post update", "held post updates", always_in_app=True),
)  # fmt: skip

_CATEGORY_OF_KIND: dict[str, Category] = {
    kind: category for category in CATEGORIES for kind in category.kinds
}
assert set(_CATEGORY_OF_KIND) == set(Kind.values), "every kind needs a category"

DIGEST_PERIODS = {
    NotificationPreference.Frequency.DAILY: timedelta(days=1),
    NotificationPreference.Frequency.WEEKLY: timedelta(weeks=1),
}
# A cron run a little early still counts: "daily" at the same hour every day must not
# slip to every other day because yesterday's run took a minute longer.
DIGEST_SLACK = timedelta(hours=1)


# --- preferences -----------------------------------------------------------------------------


def preferences_for(user: User) -> NotificationPreference:
    """The member's choices; the defaults (unsaved) when they never chose."""
    return NotificationPreference.objects.filter(user=user).first() or NotificationPreference(
        user=user
    )


def preference_initial(user: User) -> dict:
    """The member's choices as the settings form's initial data."""
    preference = preferences_for(user)
    initial = {"digest_frequency": preference.digest_frequency}
    for category in CATEGORIES:
        for channel in ("in_app", "in_digest"):
            name = f"{category.key}_{channel}"
            if hasattr(preference, name):
                initial[name] = getattr(preference, name)
    return initial


def set_preferences(
    *, user: User, choices: dict[str, bool], digest_frequency: str
) -> NotificationPreference:
    """Save the member's choices. Switching the digest on starts its first period now, so
    the first e-mail comes a day (or a week) later and counts only what came since."""
    if digest_frequency not in NotificationPreference.Frequency.values:
        raise ValidationError({"digest_frequency": "Choose off, daily or weekly."})
    allowed = {
        f"{category.key}_{channel}"
        for category in CATEGORIES
        for channel in ("in_app", "in_digest")
        if channel == "in_digest" or not category.always_in_app
    }
    unknown = set(choices) - allowed
    if unknown:
        raise ValidationError({"__all__": f"Unknown choice: {', '.join(sorted(unknown))}."})
    with transaction.atomic():
        preference, _ = NotificationPreference.objects.select_for_update().get_or_create(user=user)
        was_off = preference.digest_frequency == NotificationPreference.Frequency.OFF
        for name, value in choices.items():
            setattr(preference, name, bool(value))
        preference.digest_frequency = digest_frequency
        if was_off and digest_frequency != NotificationPreference.Frequency.OFF:
            preference.last_digest_at = timezone.now()
        preference.updated_at = timezone.now()
        preference.save()
    return preference


def wants_in_app(preference: NotificationPreference, kind: str) -> bool:
    category = _CATEGORY_OF_KIND[kind]
    return category.always_in_app or getattr(preference, f"{category.key}_in_app")


def wants_in_digest(preference: NotificationPreference, kind: str) -> bool:
    return getattr(preference, f"{_CATEGORY_OF_KIND[kind].key}_in_digest")


# --- telling a member ------------------------------------------------------------------------


def notify(
    *,
    recipient: User,
    kind: str,
    actor: User | None = None,
    group: SupportGroup | None = None,
    thread: Thread | None = None,
    post: Post | None = None,
    text: str = "",
    url: str = "",
) -> Notification | None:
    """Tell ``recipient``; None when they turned this kind off or their account is closed.
    ``text`` and ``url`` are for kinds that carry their own words, shown on the
    notifications page as: mentorship, the actor's handle then ``text`` ("asked you to be
    their mentor"); moderation, held posts, sessions and direct messages, ``text`` alone, a
    whole sentence. Keep it free of private content the recipient may not see. Inside the
    caller's transaction; the badge is updated after it commits."""
    if not recipient.is_active or not wants_in_app(preferences_for(recipient), kind):
        return None
    note = Notification.objects.create(
        recipient=recipient,
        kind=kind,
        actor=actor,
        group=group,
        thread=thread,
        post=post,
        text=text[:300],
        url=url[:300],
    )
    broadcast_unread_count(recipient.pk)
    return note


def notify_many(
    *,
    recipient_ids: Iterable[int],
    kind: str,
    actor: User | None = None,
    group: SupportGroup | None = None,
    thread: Thread | None = None,
    post: Post | None = None,
    text: str = "",
    url: str = "",
) -> list[Notification]:
    """``notify`` for many members at once (a thread's followers, a session's RSVPs), in a
    constant number of queries; each member's badge is updated after commit."""
    ids = set(recipient_ids)
    if not ids:
        return []
    category = _CATEGORY_OF_KIND[kind]
    wanted = User.objects.filter(pk__in=ids, is_active=True)
    if not category.always_in_app:
        wanted = wanted.exclude(
            pk__in=NotificationPreference.objects.filter(
                user_id__in=ids, **{f"{category.key}_in_app": False}
            ).values("user_id")
        )
    notes = Notification.objects.bulk_create(
        Notification(
            recipient_id=user_id,
            kind=kind,
            actor=actor,
            group=group,
            thread=thread,
            post=post,
            text=text[:300],
            url=url[:300],
        )
        for user_id in sorted(wanted.values_list("pk", flat=True))
    )
    standing.changed_many(note.recipient_id for note in notes)
    for note in notes:
        broadcast_unread_count(note.recipient_id)
    return notes


def unread_count(user_id: int) -> int:
    return Notification.objects.filter(recipient_id=user_id, read_at__isnull=True).count()


def unread_event(count: int) -> dict:
    """What the member's notification sockets receive (forum.notify_consumer)."""
    return {"type": "notify.unread", "count": count}


def broadcast_unread_count(user_id: int) -> None:
    """After commit, send the member's sockets their unread count, counted then (so several
    notifications in one transaction, or a read in between, end on the right number). A
    failure is logged, not raised: the page shows the right count on its next load."""

    def send() -> None:
        event = unread_event(unread_count(user_id))
        realtime.broadcast_on_commit(realtime.user_group(user_id), event)

    transaction.on_commit(send, robust=True)


# --- e-mail digests --------------------------------------------------------------------------


def digest_due(preference: NotificationPreference, now: datetime) -> bool:
    period = DIGEST_PERIODS.get(preference.digest_frequency)
    if period is None:
        return False
    last = preference.last_digest_at
    return last is None or now - last >= period - DIGEST_SLACK


def digest_counts(
    preference: NotificationPreference, *, since: datetime, until: datetime
) -> list[tuple[Category, int]]:
    """How many unread notifications of each included kind came in the period, by category."""
    kinds = [kind for kind in Kind.values if wants_in_digest(preference, kind)]
    rows = (
        Notification.objects.filter(
            recipient_id=preference.user_id,
            read_at__isnull=True,
            kind__in=kinds,
            created_at__gt=since,
            created_at__lte=until,
        )
        .values("kind")
        .annotate(n=Count("pk"))
    )
    by_kind = {row["kind"]: row["n"] for row in rows}
    counts = [(c, sum(by_kind.get(kind, 0) for kind in c.kinds)) for c in CATEGORIES]
    return [(category, n) for category, n in counts if n]


def digest_text(counts: list[tuple[Category, int]]) -> str:
    """Counts and links only: no words of anyone's, no thread titles, no group names, so a
    shared inbox or a glance at a lock screen gives nothing away."""
    parts = [f"{n} {category.one if n == 1 else category.many}" for category, n in counts]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    site = settings.KINSHIP_SITE_URL.rstrip("/")
    return (
        f"You have {listed} on Kinship. Sign in to read them: {site}{reverse('notifications')}\n"
        "\n"
        f"To change what this e-mail counts, or stop it: {site}{reverse('settings')}\n"
    )


def send_digests(*, now: datetime | None = None) -> int:
    """E-mail every member whose digest is due; returns how many e-mails went out. A due
    digest with nothing to count sends nothing but still starts the next period."""
    now = now or timezone.now()
    sent = 0
    preferences = NotificationPreference.objects.exclude(
        digest_frequency=NotificationPreference.Frequency.OFF
    ).select_related("user")
    for preference in preferences.filter(user__is_active=True).exclude(user__email=""):
        if not digest_due(preference, now):
            continue
        since = preference.last_digest_at or now - DIGEST_PERIODS[preference.digest_frequency]
        counts = digest_counts(preference, since=since, until=now)
        if counts:
            try:
                send_mail(
                    "Your Kinship digest",
                    digest_text(counts),
                    None,
                    [preference.user.email],
                )
            except Exception:  # one bad address must not stop the others; retried next run
                logger.warning("digest for %s not sent", preference.user_id, exc_info=True)
                continue
            sent += 1
        NotificationPreference.objects.filter(pk=preference.pk).update(last_digest_at=now)
    return sent


# --- session reminders -----------------------------------------------------------------------


def reminder_text(session: LiveSession) -> str:
    when = recurrence.local(session.starts_at, session.time_zone)
    return f"“{session.title}” starts at {when:%H:%M} on {when:%a %d %b} ({session.time_zone})."


def send_session_reminders(*, now: datetime | None = None) -> int:
    """Remind who said they are coming that a session starts within
    KINSHIP_SESSION_REMINDER_MINUTES; once each (``SessionRSVP.reminded_at``). Not for
    cancelled or ended sessions, nor for whom can no longer attend, nor for a member who
    said yes inside the window (they just did). Returns how many were reminded."""
    now = now or timezone.now()
    lead = timedelta(minutes=settings.KINSHIP_SESSION_REMINDER_MINUTES)
    due = (
        SessionRSVP.objects.filter(
            reminded_at__isnull=True,
            session__cancelled_at__isnull=True,
            session__ended_at__isnull=True,
            session__starts_at__gt=now,
            session__starts_at__lte=now + lead,
            user__is_active=True,
        )
        .select_related("session__group", "user")
        .order_by("session_id", "pk")
    )
    reminded = 0
    for rsvp in due:
        session = rsvp.session
        with transaction.atomic():
            # Claim the row first: two workers' chores loops may run at once.
            if not SessionRSVP.objects.filter(pk=rsvp.pk, reminded_at__isnull=True).update(
                reminded_at=now
            ):
                continue
            if rsvp.created_at > session.starts_at - lead:
                continue
            if not permissions.can_read_rooms(rsvp.user, session.group):
                continue
            if permissions.removed_from_session(rsvp.user, session):
                continue
            if notify(
                recipient=rsvp.user,
                kind=Kind.SESSION,
                group=session.group,
                text=reminder_text(session),
                url=session.get_absolute_url(),
            ):
                reminded += 1
    return reminded
