"""Peer mentoring: members with time in recovery offer to guide someone newer.

A mentor is listed in a group only once a leader of that group approved them
(``MentorApproval``). A ``Mentorship`` pairs two members of one group; either side may end
it at any time and no reason is ever asked or stored. Deleting an account deletes its
profile, approvals and mentorships (CASCADE).
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone

from .groups import SupportGroup

APPROACHES: list[tuple[str, str]] = [
    ("twelve_step", "12-step"),
    ("smart", "SMART Recovery"),
    ("refuge", "Refuge Recovery / Buddhist"),
    ("medication_assisted", "Medication-assisted recovery"),
    ("harm_reduction", "Harm reduction"),
    ("faith_based", "Faith-based"),
    ("other", "Other"),
]
APPROACH_LABELS: dict[str, str] = dict(APPROACHES)


def validate_approaches(value) -> None:
    if not isinstance(value, list) or not all(isinstance(code, str) for code in value):
        raise ValidationError("Choose approaches from the list.")
    unknown = [code for code in value if code not in APPROACH_LABELS]
    if unknown:
        raise ValidationError("Unknown approach: %(codes)s.", params={"codes": ", ".join(unknown)})


class MentorProfile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mentor_profile"
    )
    experience_source = models.TextField()
    experience_html = models.TextField()
    approaches = models.JSONField(default=list, blank=True, validators=[validate_approaches])
    availability = models.CharField(max_length=120, blank=True)
    languages = models.CharField(max_length=120, blank=True)
    # Off: the profile stays, but the mentor is not listed and takes no requests.
    accepting = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"mentor profile of {self.user_id}"

    def clean(self) -> None:
        super().clean()
        # Keep the stored list canonical: known codes, no repeats, in the list's order.
        if isinstance(self.approaches, list):
            chosen = set(self.approaches)
            self.approaches = [code for code, _ in APPROACHES if code in chosen] + [
                code for code in self.approaches if code not in APPROACH_LABELS
            ]

    @property
    def approach_labels(self) -> list[str]:
        return [APPROACH_LABELS[code] for code in self.approaches if code in APPROACH_LABELS]


class MentorApproval(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Waiting for a leader"
        APPROVED = "approved", "Approved"
        REVOKED = "revoked", "Not approved"

    profile = models.ForeignKey(MentorProfile, on_delete=models.CASCADE, related_name="approvals")
    group = models.ForeignKey(
        SupportGroup, on_delete=models.CASCADE, related_name="mentor_approvals"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["profile", "group"], name="mentor_approval_once"),
        ]
        indexes = [models.Index(fields=["group", "state"], name="mentor_approval_group")]

    def __str__(self) -> str:
        return f"mentor {self.profile_id} in group {self.group_id}: {self.state}"


class Mentorship(models.Model):
    class State(models.TextChoices):
        REQUESTED = "requested", "Requested"
        ACTIVE = "active", "Active"
        DECLINED = "declined", "Declined"
        ENDED = "ended", "Ended"

    OPEN_STATES = (State.REQUESTED, State.ACTIVE)

    mentor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mentorships_as_mentor"
    )
    mentee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mentorships_as_mentee"
    )
    # Where they met: both are members of it, and its leaders approved the mentor.
    group = models.ForeignKey(SupportGroup, on_delete=models.CASCADE, related_name="mentorships")
    state = models.CharField(max_length=10, choices=State.choices, default=State.REQUESTED)
    note_source = models.TextField(blank=True)
    note_html = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Who ended or declined it; deliberately no reason field.
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["mentor", "mentee"],
                condition=models.Q(state__in=["requested", "active"]),
                name="mentorship_one_open_per_pair",
            ),
            models.CheckConstraint(
                condition=~models.Q(mentor=models.F("mentee")), name="mentorship_not_self"
            ),
        ]
        indexes = [models.Index(fields=["mentor", "state"], name="mentorship_mentor_state")]

    def __str__(self) -> str:
        return f"mentorship {self.pk}: {self.mentor_id} -> {self.mentee_id} ({self.state})"

    def get_absolute_url(self) -> str:
        return reverse("mentorship", kwargs={"mentorship_id": self.pk})

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    def other(self, user):
        """The other side of the pair, seen from ``user``."""
        return self.mentee if user.pk == self.mentor_id else self.mentor
