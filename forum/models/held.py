"""Posts a member asked Kinship to hold for a while before they go out.

A cooling-off choice for people in recovery: the words wait here, seen by no one but
their author, until ``release_at``; then forum.publishing runs the real write path
(publish_thread or publish_reply) as the author. A refused release keeps the row, with
the reason, so nothing the member wrote is lost.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from .groups import SupportGroup
from .threads import Post, Thread


class HeldPost(models.Model):
    class Kind(models.TextChoices):
        THREAD = "thread", "new thread"
        REPLY = "reply", "reply"

    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="held_posts"
    )
    group = models.ForeignKey(SupportGroup, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # A reply's thread and parent; SET_NULL so a deleted thread refuses the release (with a
    # notice) instead of silently deleting the member's words. No parent: the opening post.
    thread = models.ForeignKey(
        Thread, null=True, blank=True, on_delete=models.SET_NULL, related_name="held_posts"
    )
    parent = models.ForeignKey(
        Post, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    title = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    content_warning = models.CharField(max_length=100, blank=True)
    cw_categories = models.JSONField(default=list, blank=True)
    release_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    # Set when the write path refused the release; the runner then leaves the row alone
    # until the author sends it again, edits or discards it.
    refused_at = models.DateTimeField(null=True, blank=True)
    refusal = models.TextField(blank=True)

    class Meta:
        ordering = ["release_at", "pk"]
        indexes = [
            models.Index(
                fields=["release_at"],
                name="held_post_due",
                condition=models.Q(refused_at__isnull=True),
            ),
            models.Index(fields=["author", "release_at"], name="held_post_author"),
        ]

    def __str__(self) -> str:
        return f"held {self.kind} by {self.author_id} until {self.release_at:%Y-%m-%d %H:%M}"

    @property
    def is_refused(self) -> bool:
        return self.refused_at is not None
