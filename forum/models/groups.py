"""Support groups and who belongs to them."""

import secrets

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


def new_invite_code() -> str:
    return secrets.token_urlsafe(18)


class SupportGroup(models.Model):
    class Kind(models.TextChoices):
        MUTUAL_AID = "mutual_aid", "Mutual aid / 12-step"
        SMART = "smart", "SMART-style"
        MENTORING = "mentoring", "Peer mentoring"
        FAMILY = "family", "Family & friends"
        SPECIALISED = "specialised", "Specialised"

    class Visibility(models.TextChoices):
        PUBLIC = "public", "Public: anyone can read, members write"
        PRIVATE = "private", "Private: only members know it exists"

    class JoinPolicy(models.TextChoices):
        OPEN = "open", "Open: anyone can join"
        REQUEST = "request", "By request: a leader approves"

    name = models.CharField(max_length=80)
    slug = models.SlugField(max_length=60, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    description_source = models.TextField(blank=True)
    description_html = models.TextField(blank=True)
    guidelines_source = models.TextField(blank=True)
    guidelines_html = models.TextField(blank=True)
    visibility = models.CharField(
        max_length=10, choices=Visibility.choices, default=Visibility.PUBLIC
    )
    join_policy = models.CharField(
        max_length=10, choices=JoinPolicy.choices, default=JoinPolicy.OPEN
    )
    invite_code = models.CharField(
        max_length=32,
        unique=True,
        default=new_invite_code,
        help_text="Secret part of the invitation link; the only way into a private group.",
    )
    member_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["visibility", "name"])]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("group", kwargs={"slug": self.slug})

    @property
    def is_private(self) -> bool:
        return self.visibility == self.Visibility.PRIVATE


class Membership(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        LEADER = "leader", "Leader"
        MODERATOR = "moderator", "Moderator"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    group = models.ForeignKey(SupportGroup, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    guidelines_accepted_at = models.DateTimeField(default=timezone.now)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "group"], name="membership_unique"),
        ]
        indexes = [models.Index(fields=["group", "role"])]

    def __str__(self) -> str:
        return f"{self.user} in {self.group} ({self.role})"


class JoinRequest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a leader"
        APPROVED = "approved", "Approved"
        DECLINED = "declined", "Declined"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="join_requests"
    )
    group = models.ForeignKey(SupportGroup, on_delete=models.CASCADE, related_name="join_requests")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One open request per member and group; decided ones stay as history.
            models.UniqueConstraint(
                fields=["user", "group"],
                condition=models.Q(status="pending"),
                name="joinrequest_one_pending",
            ),
        ]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.user} asks to join {self.group}"
