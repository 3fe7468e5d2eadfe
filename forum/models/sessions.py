"""Live sessions: online meetings that group leaders schedule and facilitate.

A session owns a chat room (not listed among the group's rooms), so its messages get
the room's sequence numbers, history and resume for free. The facilitation state (who
has the floor, the share queue, the lock, the pin) lives on these rows, and every change
to it takes the room's next sequence number too (``state_seq``): a member who missed the
broadcast notices the gap like a missed message and is sent the current state on resume.
"""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from .chat import ChatMessage, ChatRoom
from .groups import SupportGroup


class SessionScript(models.Model):
    """A reading a group reuses: a preamble, the steps, a closing statement."""

    group = models.ForeignKey(SupportGroup, on_delete=models.CASCADE, related_name="scripts")
    title = models.CharField(max_length=80)
    source = models.TextField()
    html = models.TextField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(fields=["group", "title"], name="script_title_per_group"),
        ]

    def __str__(self) -> str:
        return self.title


class LiveSession(models.Model):
    class Format(models.TextChoices):
        OPEN_SHARE = "open_share", "Open share"
        TOPIC = "topic", "Topic discussion"
        STUDY = "study", "Step or workbook study"
        SPEAKER = "speaker", "Speaker meeting"

    class Transcript(models.TextChoices):
        DELETE = "delete", "Deleted when the session ends"
        KEEP_DAYS = "keep_days", "Kept for members for a number of days"
        KEEP = "keep", "Kept for members"

    class Phase(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed by the leader"
        ENDED = "ended", "Ended"
        CANCELLED = "cancelled", "Cancelled"

    group = models.ForeignKey(SupportGroup, on_delete=models.CASCADE, related_name="sessions")
    room = models.OneToOneField(ChatRoom, on_delete=models.PROTECT, related_name="live_session")
    # Occurrences of one weekly series share this; each stays its own row to edit or cancel.
    series = models.UUIDField(null=True, blank=True, db_index=True)
    title = models.CharField(max_length=120)
    topic_source = models.TextField(blank=True)
    topic_html = models.TextField(blank=True)
    format = models.CharField(max_length=12, choices=Format.choices, default=Format.OPEN_SHARE)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    # The zone the leader scheduled in: a weekly series keeps its wall-clock time across DST.
    time_zone = models.CharField(max_length=64, default="UTC")
    capacity = models.PositiveIntegerField(null=True, blank=True)
    leader = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who runs the session now: the leader, until they hand it to a co-leader.
    facilitator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    co_leaders = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="co_led_sessions"
    )
    opening_script = models.ForeignKey(
        SessionScript, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closing_script = models.ForeignKey(
        SessionScript, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opens_before_minutes = models.PositiveSmallIntegerField(default=15)
    welcome_source = models.TextField(blank=True)
    welcome_html = models.TextField(blank=True)
    fellowship_after = models.BooleanField(default=False)
    fellowship_room = models.ForeignKey(
        ChatRoom, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    transcript = models.CharField(
        max_length=10, choices=Transcript.choices, default=Transcript.DELETE
    )
    transcript_days = models.PositiveSmallIntegerField(null=True, blank=True)
    transcript_purged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    # --- live state ---------------------------------------------------------------
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    chat_locked = models.BooleanField(default=False)
    floor_holder = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    floor_since = models.DateTimeField(null=True, blank=True)
    share_seconds = models.PositiveIntegerField(default=0)  # 0: no timer
    pinned = models.ForeignKey(
        ChatMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state_seq = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["starts_at", "pk"]
        indexes = [models.Index(fields=["group", "starts_at"], name="session_group_start")]

    def __str__(self) -> str:
        return f"{self.title} ({self.starts_at:%Y-%m-%d %H:%M} UTC)"

    def get_absolute_url(self) -> str:
        return reverse("session", kwargs={"slug": self.group.slug, "session_id": self.pk})

    @property
    def opens_at(self):
        return self.starts_at - timedelta(minutes=self.opens_before_minutes)

    @property
    def auto_ends_at(self):
        """A session nobody ended is over this long after its planned end."""
        return self.ends_at + timedelta(minutes=settings.KINSHIP_SESSION_GRACE_MINUTES)

    def phase(self, now=None) -> str:
        now = now or timezone.now()
        if self.cancelled_at:
            return self.Phase.CANCELLED
        if self.ended_at or now >= self.auto_ends_at:
            return self.Phase.ENDED
        if self.closed_at:
            return self.Phase.CLOSED
        if self.opened_at or now >= self.opens_at:
            return self.Phase.OPEN
        return self.Phase.SCHEDULED

    def purge_due_at(self):
        """When the transcript is to be erased (None: never, or already done)."""
        if self.transcript_purged_at or self.transcript == self.Transcript.KEEP:
            return None
        ended = self.ended_at or self.auto_ends_at
        if self.transcript == self.Transcript.DELETE:
            return ended
        return ended + timedelta(days=self.transcript_days or 0)


class SessionRSVP(models.Model):
    session = models.ForeignKey(LiveSession, on_delete=models.CASCADE, related_name="rsvps")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    # Set once the member was reminded that the session starts soon (forum.notify).
    reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "user"], name="rsvp_once")]

    def __str__(self) -> str:
        return f"{self.user_id} is going to session {self.session_id}"


class HandRaise(models.Model):
    """One place in a session's share queue, first come first served."""

    session = models.ForeignKey(LiveSession, on_delete=models.CASCADE, related_name="hands")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    raised_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["raised_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["session", "user"], name="hand_once")]

    def __str__(self) -> str:
        return f"{self.user_id}'s hand in session {self.session_id}"


class SessionParticipant(models.Model):
    """A member's attendance of one session.

    ``present_since`` is set while at least one of their sockets is in the room
    (``sockets`` counts them); leaving adds the span to ``seconds_attended``.
    """

    session = models.ForeignKey(LiveSession, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="session_participations"
    )
    first_joined_at = models.DateTimeField(default=timezone.now)
    present_since = models.DateTimeField(null=True, blank=True)
    sockets = models.PositiveSmallIntegerField(default=0)
    seconds_attended = models.PositiveIntegerField(default=0)
    # Their first session in this group: the welcome message is addressed to them.
    first_session = models.BooleanField(default=False)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "user"], name="participant_once")]
        indexes = [models.Index(fields=["user", "first_joined_at"], name="attendance_by_user")]

    def __str__(self) -> str:
        return f"{self.user_id} in session {self.session_id}"


def new_proof_token() -> str:
    return secrets.token_urlsafe(24)


class AttendanceProof(models.Model):
    """A member's proof of attendance: a snapshot of only what they chose to show,
    verifiable at its link by whoever they hand it to, revocable by deleting it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attendance_proofs"
    )
    token = models.CharField(max_length=40, unique=True, default=new_proof_token)
    date_from = models.DateField()
    date_to = models.DateField()
    # What the member chose to show; entries hold nothing else.
    shows_handle = models.BooleanField(default=False)
    shows_group = models.BooleanField(default=True)
    shows_title = models.BooleanField(default=False)
    shows_duration = models.BooleanField(default=True)
    entries = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"attendance proof {self.date_from} to {self.date_to}"

    def get_absolute_url(self) -> str:
        return reverse("attendance_proof", kwargs={"token": self.token})
