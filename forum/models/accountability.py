"""Accountability: a member's recovery goals, daily check-ins and milestone preferences.

All of it is the member's own. A goal may be shared with their mentor or one of their
groups; a check-in's note is never shown to anyone but its author; mood and cravings reach
the mentor only when the member says so (``RecoveryProfile.share_check_ins``). Streaks and
milestones are computed (forum.accountability), never stored, and a new recovery date
leaves no trace of the old one. Deleting an account deletes all of it (CASCADE).
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from .groups import SupportGroup


class Goal(models.Model):
    class Cadence(models.TextChoices):
        DAILY = "daily", "Every day"
        WEEKLY = "weekly", "A number of days each week"

    class Visibility(models.TextChoices):
        ONLY_ME = "only_me", "Only me"
        MENTOR = "mentor", "Me and my mentor"
        GROUP = "group", "Members of one of my groups"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="goals"
    )
    title = models.CharField(max_length=120)
    cadence = models.CharField(max_length=10, choices=Cadence.choices, default=Cadence.DAILY)
    # Days a week the goal asks for; only weekly goals use it.
    weekly_target = models.PositiveSmallIntegerField(default=3)
    visibility = models.CharField(
        max_length=10, choices=Visibility.choices, default=Visibility.ONLY_ME
    )
    # The group a GROUP goal is shown to; if the group goes, the goal is the member's alone.
    group = models.ForeignKey(
        SupportGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(weekly_target__gte=1, weekly_target__lte=7),
                name="goal_weekly_target_range",
            ),
        ]
        indexes = [models.Index(fields=["owner", "archived_at"], name="goal_owner_active")]

    def __str__(self) -> str:
        return f"goal {self.pk} of {self.owner_id}"

    @property
    def is_active(self) -> bool:
        return self.archived_at is None

    @property
    def is_weekly(self) -> bool:
        return self.cadence == self.Cadence.WEEKLY


class CheckIn(models.Model):
    """One per member and day (the day in the member's own time zone); saving the same
    day again updates it."""

    MOOD_CHOICES = [
        (1, "1 · Very low"),
        (2, "2 · Low"),
        (3, "3 · Okay"),
        (4, "4 · Good"),
        (5, "5 · Very good"),
    ]
    CRAVING_CHOICES = [
        (0, "0 · None"),
        (1, "1 · Mild"),
        (2, "2 · Moderate"),
        (3, "3 · Strong"),
        (4, "4 · Overwhelming"),
    ]

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="check_ins"
    )
    day = models.DateField()
    mood = models.PositiveSmallIntegerField(null=True, blank=True, choices=MOOD_CHOICES)
    cravings = models.PositiveSmallIntegerField(null=True, blank=True, choices=CRAVING_CHOICES)
    # Private to the author, always: no page, selector or export shows it to anyone else.
    note = models.TextField(blank=True)
    goals_met = models.ManyToManyField(Goal, blank=True, related_name="check_ins")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "day"], name="check_in_once_a_day"),
            models.CheckConstraint(
                condition=models.Q(mood__isnull=True) | models.Q(mood__gte=1, mood__lte=5),
                name="check_in_mood_range",
            ),
            models.CheckConstraint(
                condition=models.Q(cravings__isnull=True) | models.Q(cravings__lte=4),
                name="check_in_cravings_range",
            ),
        ]

    def __str__(self) -> str:
        return f"check-in of {self.owner_id} on {self.day}"


class RecoveryProfile(models.Model):
    """How a member wants their recovery date used. The date itself and who sees the day
    count stay on the user (``User.recovery_date``, ``recovery_date_visibility``), where the
    settings page has always kept them; this adds what accountability needs."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_profile"
    )
    # A milestone badge on the profile, for whoever may see the day count.
    celebrate = models.BooleanField(default=False)
    # The member's active mentors see the day count and milestones.
    mentor_sees_days = models.BooleanField(default=False)
    # The member's active mentors see check-in mood and cravings (never the notes).
    share_check_ins = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"recovery profile of {self.user_id}"
