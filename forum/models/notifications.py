"""What a member wants to be told, and how: in the app, in an e-mail digest, or not at all.

One row per member, created the first time they save their choices; a member without a row
gets the defaults (every kind in the app, the digest off). Which kinds each choice covers,
and the rule that moderation notices and held posts always reach the app, live in
forum.notify.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class NotificationPreference(models.Model):
    class Frequency(models.TextChoices):
        OFF = "off", "Off"
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    # In the app (and its live badge). Moderation notices and held posts have no switch here:
    # a member must learn of a sanction, and of words of theirs that did not go out.
    replies_in_app = models.BooleanField(default=True)
    mentions_in_app = models.BooleanField(default=True)
    mentorship_in_app = models.BooleanField(default=True)
    direct_messages_in_app = models.BooleanField(default=True)
    sessions_in_app = models.BooleanField(default=True)
    memberships_in_app = models.BooleanField(default=True)
    # Counted in the e-mail digest (which says how many, never what or where).
    replies_in_digest = models.BooleanField(default=True)
    mentions_in_digest = models.BooleanField(default=True)
    mentorship_in_digest = models.BooleanField(default=True)
    direct_messages_in_digest = models.BooleanField(default=True)
    sessions_in_digest = models.BooleanField(default=True)
    memberships_in_digest = models.BooleanField(default=True)
    moderation_in_digest = models.BooleanField(default=True)
    held_posts_in_digest = models.BooleanField(default=True)
    # The digest is opt-in.
    digest_frequency = models.CharField(
        max_length=10, choices=Frequency.choices, default=Frequency.OFF
    )
    # When the digest was last due (sent, or nothing to send): the next one counts from here.
    last_digest_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"notification preferences of {self.user_id}"
