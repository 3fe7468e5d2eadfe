"""Direct conversations: one-to-one messages between two members, always by request.

A conversation owns a chat room (kind DIRECT, in a group both members share, never
listed among the group's rooms), so its messages get the room's sequence numbers,
history, resume, edits, flags, policy and the crisis path through the same write path
and socket as any room. Only its two participants may read or write it; everyone else,
moderators included, gets a 404 (forum.conversations, moderation.permissions).
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models.functions import Greatest, Least
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from .chat import ChatRoom

# A request nobody answered (or the recipient quietly ignored) lapses after this long:
# the starter may ask again, and the recipient never had to say no.
REQUEST_LIFETIME = timedelta(days=14)


class Conversation(models.Model):
    class State(models.TextChoices):
        REQUESTED = "requested", "Requested"
        ACCEPTED = "accepted", "Accepted"
        # The recipient set the request aside; the starter still sees it pending.
        IGNORED = "ignored", "Ignored"
        BLOCKED = "blocked", "Blocked"
        CLOSED = "closed", "Closed"

    OPEN_STATES = (State.REQUESTED, State.IGNORED, State.ACCEPTED)

    room = models.OneToOneField(ChatRoom, on_delete=models.CASCADE, related_name="conversation")
    # A member who deletes their account stays as an anonymous stand-in (forum.privacy), so
    # the conversation stays, closed, for the other participant; removing a user row (the
    # admin) deletes the conversation, its room and its messages.
    starter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.REQUESTED)
    # The starter's request, shown to the recipient before they accept (never a message).
    note_source = models.TextField(blank=True)
    note_html = models.TextField(blank=True)
    # Set when a mentorship opened it (forum.conversations.open_for_mentorship); ending the
    # mentorship closes it.
    mentorship = models.ForeignKey(
        "forum.Mentorship",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="conversations",
    )
    # Who blocked, so the conversation leaves their list but stays in the other's.
    blocked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(starter=models.F("recipient")), name="conversation_not_self"
            ),
            # One open conversation per unordered pair of members.
            models.UniqueConstraint(
                Least("starter", "recipient"),
                Greatest("starter", "recipient"),
                condition=models.Q(state__in=["requested", "ignored", "accepted"]),
                name="conversation_open_once_per_pair",
            ),
        ]
        indexes = [
            models.Index(fields=["starter", "state"], name="conversation_starter"),
            models.Index(fields=["recipient", "state"], name="conversation_recipient"),
        ]

    def __str__(self) -> str:
        return f"conversation {self.pk} ({self.starter_id}, {self.recipient_id}, {self.state})"

    def get_absolute_url(self) -> str:
        return reverse("conversation", kwargs={"pk": self.pk})

    def other(self, user) -> "settings.AUTH_USER_MODEL":
        """The participant who is not ``user``."""
        return self.recipient if user.pk == self.starter_id else self.starter

    def has_participant(self, user) -> bool:
        return user.is_authenticated and user.pk in (self.starter_id, self.recipient_id)

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @property
    def is_pending(self) -> bool:
        return self.state in (self.State.REQUESTED, self.State.IGNORED)

    def is_expired(self, now=None) -> bool:
        """A pending request past its lifetime: it no longer holds the pair's open slot."""
        return self.is_pending and self.created_at < (now or timezone.now()) - REQUEST_LIFETIME


@receiver(post_delete, sender=Conversation)
def delete_room(sender, instance: Conversation, **kwargs) -> None:
    # A removed user row takes its conversations with it (CASCADE), and their rooms with
    # every message in them, the other participant's included: nothing private is left over.
    ChatRoom.objects.filter(pk=instance.room_id).delete()
