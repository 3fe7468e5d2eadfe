"""Members: pseudonymous handles, a private e-mail, an optional recovery date."""

import re
from datetime import date

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

HANDLE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{3,30}$")
RESERVED_HANDLES = frozenset(
    {
        "admin", "administrator", "anonymous", "crisis", "deleted", "demo", "everyone",
        "help", "kinship", "leader", "mod", "moderator", "moderators", "null", "root",
        "staff", "support", "system", "team", "undefined", "unknown", "you",
    }
)  # fmt: skip
# Erased accounts become tombstones named with this prefix (forum.privacy); nobody else
# may take such a handle and pass for a former member.
TOMBSTONE_PREFIX = "former-member-"


def validate_handle(value: str) -> None:
    if not HANDLE_PATTERN.fullmatch(value):
        raise ValidationError(
            "A handle is 3 to 30 characters: letters, digits, hyphens and underscores.",
            code="invalid_handle",
        )
    if value.lower() in RESERVED_HANDLES or value.lower().startswith(TOMBSTONE_PREFIX):
        raise ValidationError("That handle is reserved. Please choose another.", code="reserved")


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, handle: str) -> "User":
        # Handles are unique regardless of case, and so is logging in with one.
        return self.get(handle__iexact=handle)

    def create_user(self, handle: str, email: str, password: str | None = None, **extra) -> "User":
        user = self.model(handle=handle, email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, handle: str, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(handle, email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    class Visibility(models.TextChoices):
        ONLY_ME = "only_me", "Only me"
        MY_GROUPS = "groups", "Members of my groups"
        EVERYONE = "everyone", "Everyone"

    handle = models.CharField(max_length=30, unique=True, validators=[validate_handle])
    email = models.EmailField("e-mail (private)", max_length=254)
    bio_source = models.TextField(blank=True)
    bio_html = models.TextField(blank=True)
    recovery_date = models.DateField(null=True, blank=True)
    recovery_date_visibility = models.CharField(
        max_length=10, choices=Visibility.choices, default=Visibility.ONLY_ME
    )
    is_site_moderator = models.BooleanField(
        default=False, help_text="Moderates every group on the site."
    )
    is_staff = models.BooleanField(default=False, help_text="May log in to the Django admin.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # Quiet hours the member sets for themself: no posting from start to end (wrapping past
    # midnight when end < start) in their own time zone; both None is off.
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    quiet_timezone = models.CharField(max_length=64, blank=True)
    # Content-warning category code -> "show" | "collapse" | "hide", only what the member
    # chose; forum.content_warnings fills in the defaults.
    cw_preferences = models.JSONField(default=dict, blank=True)
    # Whether other members may ask this one for a direct conversation (forum.conversations).
    accepts_dm_requests = models.BooleanField(default=True)

    objects = UserManager()

    USERNAME_FIELD = "handle"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("handle"), name="user_handle_ci_unique"),
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.handle

    def get_username(self) -> str:
        return self.handle

    @property
    def is_moderator_sitewide(self) -> bool:
        return self.is_active and (self.is_site_moderator or self.is_superuser)

    def days_in_recovery(self, today: date | None = None) -> int | None:
        if self.recovery_date is None:
            return None
        return ((today or timezone.localdate()) - self.recovery_date).days


class Block(models.Model):
    """A member blocked another: the blocked member's posts and messages collapse for the
    blocker, and their replies and mentions no longer notify them. The blocked member is
    not told, and nothing they can see changes."""

    blocker = models.ForeignKey(User, on_delete=models.CASCADE, related_name="blocks_made")
    blocked = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blocker", "blocked"], name="block_once"),
            models.CheckConstraint(
                condition=~models.Q(blocker=models.F("blocked")), name="block_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.blocker_id} blocked {self.blocked_id}"
