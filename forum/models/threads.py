"""Threads, nested posts, reactions, subscriptions and in-app notifications.

Posts form a tree stored as a materialised path: each post's ``path`` is its
ancestors' ids followed by its own, each zero-padded to PATH_STEP digits. Ordering
a thread by ``path`` yields the tree depth-first, so any window of it is one
indexed range scan, however deep or large the thread is. Digits only, so every
database collation sorts the paths the same way.
"""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from .groups import SupportGroup

PATH_STEP = 10
# Replies deeper than this attach beside their parent instead of below it; the
# bound keeps every path inside a B-tree index entry.
MAX_TREE_DEPTH = 200


def path_segment(post_id: int) -> str:
    return str(post_id).zfill(PATH_STEP)


class Thread(models.Model):
    group = models.ForeignKey(SupportGroup, on_delete=models.CASCADE, related_name="threads")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="threads"
    )
    title = models.CharField(max_length=200)
    content_warning = models.CharField(max_length=100, blank=True)
    is_locked = models.BooleanField(default=False)
    is_pinned = models.BooleanField(default=False)
    # Set by its group's leaders and moderators (moderation.actions.set_slow_mode, logged):
    # members wait this long between replies here; 0 is off.
    slow_mode_seconds = models.PositiveIntegerField(default=0)
    # Set by moderation: hidden for everyone but its author (who sees why) and moderators.
    hidden_at = models.DateTimeField(null=True, blank=True)
    hidden_pending_review = models.BooleanField(default=False)
    hidden_reason = models.TextField(blank=True)
    reply_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now)
    last_poster = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        indexes = [
            models.Index(
                fields=["group", "-is_pinned", "-last_activity_at"], name="thread_listing"
            ),
            # A member's home page: the latest of each of their groups (recent_threads_in).
            models.Index(fields=["group", "-last_activity_at", "-id"], name="thread_recent"),
            models.Index(
                fields=["author"], name="thread_hidden", condition=models.Q(hidden_at__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("thread", kwargs={"slug": self.group.slug, "thread_id": self.pk})

    @property
    def is_hidden(self) -> bool:
        return self.hidden_at is not None


class Post(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="posts")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="posts"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    path = models.CharField(max_length=PATH_STEP * (MAX_TREE_DEPTH + 1))
    depth = models.PositiveSmallIntegerField(default=0)
    source = models.TextField()
    html = models.TextField()
    content_warning = models.CharField(max_length=100, blank=True)
    # Codes from forum.content_warnings.CATEGORIES, chosen by the author or a moderator.
    cw_categories = models.JSONField(default=list, blank=True)
    reply_count = models.PositiveIntegerField(default=0)
    support_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    removed_by_author_at = models.DateTimeField(null=True, blank=True)
    # Set by moderation: hidden for everyone but its author (who sees why) and moderators.
    hidden_at = models.DateTimeField(null=True, blank=True)
    hidden_pending_review = models.BooleanField(default=False)
    hidden_reason = models.TextField(blank=True)
    moderator_note = models.TextField(blank=True, help_text="Shown under a moderator's edit.")

    class Meta:
        indexes = [
            models.Index(fields=["thread", "path"], name="post_tree"),
            models.Index(fields=["author", "-created_at"], name="post_by_author"),
            # What was hidden, counted for each write's trust (moderation.permissions).
            models.Index(
                fields=["author"], name="post_hidden", condition=models.Q(hidden_at__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"post {self.pk} in thread {self.thread_id}"

    def get_absolute_url(self) -> str:
        return f"{self.thread.get_absolute_url()}#post-{self.pk}"

    @property
    def is_opening(self) -> bool:
        return self.parent_id is None

    @property
    def is_removed_by_author(self) -> bool:
        return self.removed_by_author_at is not None

    @property
    def is_hidden(self) -> bool:
        return self.hidden_at is not None


class PostRevision(models.Model):
    """A post as it was before an edit; shown to its author and to moderators."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="revisions")
    source = models.TextField()
    html = models.TextField()
    title = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(help_text="When this version was first published.")

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"version of post {self.post_id} from {self.created_at:%Y-%m-%d %H:%M}"


class Reaction(models.Model):
    """A "support" reaction: one per member per post."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reactions"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["post", "user"], name="reaction_once_per_member"),
        ]

    def __str__(self) -> str:
        return f"support from {self.user_id} on post {self.post_id}"


class Subscription(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="subscriptions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscriptions"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["thread", "user"], name="subscription_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} follows thread {self.thread_id}"


class Notification(models.Model):
    class Kind(models.TextChoices):
        REPLY = "reply", "replied to you"
        THREAD_REPLY = "thread_reply", "replied in a thread you follow"
        MENTION = "mention", "mentioned you"
        JOIN_APPROVED = "join_approved", "approved your request to join"
        MODERATION = "moderation", "a moderator acted"
        HELD_POST = "held_post", "your held post"
        # Also used for the reminder before a session starts (one preference covers both).
        SESSION = "session", "a live session changed"
        MENTORSHIP = "mentorship", "mentorship"
        DIRECT_MESSAGE = "direct_message", "direct message"

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    group = models.ForeignKey(
        SupportGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    thread = models.ForeignKey(Thread, null=True, on_delete=models.CASCADE, related_name="+")
    post = models.ForeignKey(Post, null=True, on_delete=models.CASCADE, related_name="+")
    # Moderation notices carry their own words and link; their actor stays unnamed.
    text = models.CharField(max_length=300, blank=True)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(
                fields=["recipient", "-created_at"],
                name="notification_unread",
                condition=models.Q(read_at__isnull=True),
            ),
            models.Index(fields=["recipient", "-created_at"], name="notification_inbox"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id}"


class Mute(models.Model):
    """A member muted a thread or a chat room: it stops notifying them and its unread
    count stops calling for attention. Exactly one of ``thread`` and ``room`` is set."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.CASCADE, related_name="mutes"
    )
    room = models.ForeignKey(
        "forum.ChatRoom", null=True, blank=True, on_delete=models.CASCADE, related_name="mutes"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "thread"], name="mute_thread_once"),
            models.UniqueConstraint(fields=["user", "room"], name="mute_room_once"),
            models.CheckConstraint(
                condition=models.Q(thread__isnull=True) ^ models.Q(room__isnull=True),
                name="mute_one_target",
            ),
        ]

    def __str__(self) -> str:
        target = f"thread {self.thread_id}" if self.thread_id else f"room {self.room_id}"
        return f"{self.user_id} muted {target}"
