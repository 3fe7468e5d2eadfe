"""Flags, the review queue, sanctions, appeals, moderator notes and the audit log.

Targets are generic (content type and id), like django.contrib.admin's LogEntry, so
this module imports nothing from ``forum``: a flag or log entry can point at a post,
a thread, a chat message or a member alike.
"""

import contextlib
import contextvars
import uuid
from collections.abc import Iterator
from typing import ClassVar

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


class Rule(models.Model):
    """A rule a sanction can cite: the site's (no group) or one group's own."""

    group = models.ForeignKey(
        "forum.SupportGroup", null=True, blank=True, on_delete=models.CASCADE, related_name="rules"
    )
    title = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["group_id", "position", "pk"]

    def __str__(self) -> str:
        return self.title


class FlagReason(models.TextChoices):
    HARASSMENT = "harassment", "Harassment or disruptive behaviour"
    MISINFORMATION = "misinformation", "Misinformation or dangerous advice"
    SPAM = "spam", "Spam or solicitation (including treatment-centre referrals)"
    TRIGGERING = "triggering", "Triggering content without a warning"
    CRISIS = "crisis", "I'm worried about this person"
    OTHER = "other", "Something else"


# How much one flag of each reason counts toward the order of the queue.
FLAG_WEIGHTS = {
    FlagReason.HARASSMENT: 3,
    FlagReason.MISINFORMATION: 3,
    FlagReason.SPAM: 2,
    FlagReason.TRIGGERING: 2,
    FlagReason.OTHER: 1,
    FlagReason.CRISIS: 0,  # crisis concerns sort first by urgency, not by weight
}


class QueueItem(models.Model):
    """One thing waiting for a moderator: flagged content or a member, or an appeal.

    All the flags on one target gather in one open item; once it is resolved, a new
    flag opens a new item.
    """

    class Kind(models.TextChoices):
        FLAGS = "flags", "Flagged"
        APPEAL = "appeal", "Appeal"

    class State(models.TextChoices):
        OPEN = "open", "Waiting"
        RESOLVED = "resolved", "Resolved"

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.FLAGS)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")
    group = models.ForeignKey(
        "forum.SupportGroup", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The member the item is about: the author, or the flagged member.",
    )
    is_urgent = models.BooleanField(default=False)
    auto_reason = models.CharField(
        max_length=200,
        blank=True,
        help_text="Why the site itself opened or joined this item, with no flagger "
        "(e.g. crisis words in the content). Shown to moderators only.",
    )
    weight = models.PositiveIntegerField(default=0)
    flag_count = models.PositiveIntegerField(default=0)
    hidden_pending_review = models.BooleanField(default=False)
    # Held by the write path (a watched phrase or a trust rule) until someone approves it;
    # approval_seconds is how long its author waited, for the queue's median.
    held_by_policy = models.BooleanField(default=False)
    approval_seconds = models.PositiveIntegerField(null=True, blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    last_flag_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution = models.CharField(max_length=200, blank=True)
    appeal = models.OneToOneField(
        "Appeal", null=True, blank=True, on_delete=models.CASCADE, related_name="queue_item"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id"],
                condition=models.Q(state="open", kind="flags"),
                name="queueitem_one_open_per_target",
            ),
        ]
        indexes = [
            models.Index(
                fields=["-is_urgent", "-weight", "opened_at"],
                condition=models.Q(state="open"),
                name="queueitem_open_order",
            ),
            models.Index(fields=["group", "state"], name="queueitem_group"),
            # The queue's median wait for approval (moderation.views.review): the latest
            # approvals, never the whole history of the queue.
            models.Index(
                fields=["-resolved_at"],
                condition=models.Q(approval_seconds__isnull=False),
                name="queueitem_approvals",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} item {self.pk} ({self.get_state_display()})"

    @property
    def is_open(self) -> bool:
        return self.state == self.State.OPEN


class Flag(models.Model):
    """One member's report of one item; the flagged member never learns who flagged."""

    # None: an automatic flag (a watched phrase), named in the details for moderators.
    flagger = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="flags_made",
    )
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")
    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="flags")
    reason = models.CharField(max_length=20, choices=FlagReason.choices)
    details_source = models.TextField(blank=True)
    details_html = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["flagger", "content_type", "object_id"], name="flag_once_per_member"
            ),
        ]
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} flag on {self.content_type.model} {self.object_id}"


class Sanction(models.Model):
    """A step on the ladder, applied to one member, in one group or site-wide.

    A sanction with ``ends_at`` ends by itself: every check asks for sanctions that
    are not lifted and not yet over, so nothing has to run when the time comes.
    """

    class Kind(models.TextChoices):
        WARNING = "warning", "Warning"
        CHAT_MUTE = "chat_mute", "Muted in chat"
        SLOW_MODE = "slow_mode", "Slow mode"
        SUSPENSION = "suspension", "Suspended from the group"
        BAN = "ban", "Banned from the site"

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sanctions"
    )
    group = models.ForeignKey(
        "forum.SupportGroup",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="sanctions",
        help_text="Empty for a site-wide ban.",
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    rule = models.ForeignKey(Rule, null=True, blank=True, on_delete=models.SET_NULL)
    reason_source = models.TextField(blank=True)
    reason_html = models.TextField(blank=True)
    message_source = models.TextField(blank=True)
    message_html = models.TextField(blank=True)
    slow_mode_seconds = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(
                fields=["member", "kind"],
                condition=models.Q(lifted_at__isnull=True),
                name="sanction_in_force",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for member {self.member_id}"

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        return self.lifted_at is None and (self.ends_at is None or self.ends_at > now)


class ModeratorNote(models.Model):
    """A note moderators share about a member; the member never sees it."""

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="moderator_notes"
    )
    group = models.ForeignKey(
        "forum.SupportGroup", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.TextField()
    html = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"note on member {self.member_id}"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("The moderation log is append-only: entries cannot be changed.")

    def delete(self):
        raise TypeError("The moderation log is append-only: entries cannot be deleted.")


class ModerationLogEntry(models.Model):
    """One moderation action, as it happened. Append-only, down to the database:

    ``save()`` refuses an existing entry, ``delete()`` and the queryset's ``update()``
    and ``delete()`` refuse, the admin is read-only, and on PostgreSQL a trigger
    (migration 0002) refuses UPDATE and DELETE from any other client. People are kept
    as plain ids plus their handles at the time, so no cascade ever touches a row.

    One exception: an erased account (forum.privacy.delete_account) becomes an anonymous
    tombstone, and the names in its entries become the tombstone's (migration 0012 lets
    exactly that through); every action, time, target and reason stays.
    """

    class Action(models.TextChoices):
        FLAGS_DISMISSED = "flags_dismissed", "dismissed the flags on"
        HIDDEN_BY_FLAGS = "hidden_by_flags", "hid, pending review,"
        CONTENT_HIDDEN = "content_hidden", "removed"
        CONTENT_RESTORED = "content_restored", "restored"
        CONTENT_EDITED = "content_edited", "edited"
        CONTENT_WARNING_SET = "content_warning_set", "set a content warning on"
        THREAD_LOCKED = "thread_locked", "locked"
        THREAD_UNLOCKED = "thread_unlocked", "unlocked"
        THREAD_PINNED = "thread_pinned", "pinned"
        THREAD_UNPINNED = "thread_unpinned", "unpinned"
        THREAD_MOVED = "thread_moved", "moved"
        WARNING = "warning", "warned"
        CHAT_MUTE = "chat_mute", "muted in chat"
        SLOW_MODE = "slow_mode", "put in slow mode"
        SUSPENSION = "suspension", "suspended from the group"
        BAN = "ban", "banned from the site"
        SANCTION_LIFTED = "sanction_lifted", "lifted a sanction on"
        NOTE_ADDED = "note_added", "added a moderator note on"
        RULE_ADDED = "rule_added", "added"
        RULE_REMOVED = "rule_removed", "retired"
        APPEAL_UPHELD = "appeal_upheld", "upheld the action, on appeal by"
        APPEAL_GRANTED = "appeal_granted", "reversed the action, on appeal by"
        WATCHED_ADDED = "watched_added", "started watching for"
        WATCHED_REMOVED = "watched_removed", "stopped watching for"
        CONTENT_APPROVED = "content_approved", "approved"
        DOMAIN_ADDED = "domain_added", "added a link rule for"
        DOMAIN_REMOVED = "domain_removed", "removed the link rule for"
        CONTEXT_NOTE_ADDED = "context_note_added", "added the context note"
        CONTEXT_NOTE_EDITED = "context_note_edited", "edited the context note"
        CONTEXT_NOTE_RETIRED = "context_note_retired", "retired the context note"
        CONTEXT_NOTE_RESTORED = "context_note_restored", "brought back the context note"
        CONTEXT_ATTACHED = "context_attached", "attached a context note to"
        CONTEXT_CONFIRMED = "context_confirmed", "confirmed the context note on"
        CONTEXT_DETACHED = "context_detached", "detached a context note from"
        PLACE_SLOW_MODE_SET = "place_slow_mode_set", "set slow mode on"
        PLACE_SLOW_MODE_OFF = "place_slow_mode_off", "turned off slow mode on"
        SESSION_OPENED = "session_opened", "opened the room of"
        SESSION_CLOSED = "session_closed", "closed the room of"
        SESSION_ENDED = "session_ended", "ended"
        SESSION_CANCELLED = "session_cancelled", "cancelled"
        SESSION_LOCKED = "session_locked", "locked the chat of"
        SESSION_UNLOCKED = "session_unlocked", "unlocked the chat of"
        FACILITATION_HANDED = "facilitation_handed", "handed facilitation of"
        PARTICIPANT_REMOVED = "participant_removed", "removed a participant from"
        LINKS_ALLOWED = "links_allowed", "allowed links from"
        LINKS_WITHDRAWN = "links_withdrawn", "withdrew the link allowance of"
        MENTOR_APPROVED = "mentor_approved", "approved as a mentor"
        MENTOR_REVOKED = "mentor_revoked", "declined or withdrew mentor approval for"

    # Actions members see in their group's public log; notes and the watched-phrase list
    # (which would teach people what to misspell) stay among moderators.
    PUBLIC_ACTIONS = frozenset(Action.values) - {
        Action.NOTE_ADDED,
        Action.WATCHED_ADDED,
        Action.WATCHED_REMOVED,
        Action.DOMAIN_ADDED,
        Action.DOMAIN_REMOVED,
    }

    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_handle = models.CharField(max_length=30, blank=True)
    actor_role = models.CharField(max_length=20, blank=True)
    action = models.CharField(max_length=30, choices=Action.choices)
    group_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    group_name = models.CharField(max_length=80, blank=True)
    target_type = models.CharField(max_length=30, blank=True)
    target_id = models.BigIntegerField(null=True, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    member_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    member_handle = models.CharField(max_length=30, blank=True)
    rule_title = models.CharField(max_length=120, blank=True)
    reason = models.TextField(blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "moderation log entries"
        indexes = [models.Index(fields=["actor_id", "-created_at"], name="log_by_actor")]

    def __str__(self) -> str:
        return (
            f"{self.actor_handle or 'a moderator'} {self.get_action_display()} {self.target_label}"
        )

    def save(self, *args, **kwargs):
        if self.pk is not None or not self._state.adding:
            raise TypeError("The moderation log is append-only: entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("The moderation log is append-only: entries cannot be deleted.")


class Appeal(models.Model):
    """A member's one appeal against one action (a log entry), decided by another moderator."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting for a moderator"
        UPHELD = "upheld", "The action stands"
        GRANTED = "granted", "The action was reversed"

    entry = models.OneToOneField(
        ModerationLogEntry, on_delete=models.DO_NOTHING, db_constraint=False, related_name="appeal"
    )
    appellant = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="appeals"
    )
    source = models.TextField()
    html = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_source = models.TextField(blank=True)
    decision_html = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"appeal by {self.appellant_id} against entry {self.entry_id}"


class WatchedPhrase(models.Model):
    """A word, phrase or expression the write path watches for (moderation.policy), site-wide
    (no group) or in one group, with what happens to text that contains it."""

    class Match(models.TextChoices):
        WORD = "word", "Whole word or phrase"
        WILDCARD = "wildcard", "Wildcard (* stands for any letters)"
        REGEX = "regex", "Regular expression"

    class Action(models.TextChoices):
        BLOCK = "block", "Block it, with a message to the author"
        HOLD = "hold", "Hold it for review"
        FLAG = "flag", "Publish it and flag it for moderators"
        CENSOR = "censor", "Publish it with the phrase masked"

    group = models.ForeignKey(
        "forum.SupportGroup",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="watched_phrases",
    )
    pattern = models.CharField(max_length=200)
    match = models.CharField(max_length=10, choices=Match.choices, default=Match.WORD)
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.FLAG)
    message = models.CharField(
        max_length=300, blank=True, help_text="Shown to the author when the phrase blocks."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["group_id", "pattern", "pk"]
        indexes = [models.Index(fields=["group"], name="watchedphrase_group")]

    def __str__(self) -> str:
        return f"{self.pattern} ({self.get_action_display()})"


class _Tokens(dict):
    """The tokens of one write (SharedVersion.read_together), by their keys; ``pending``
    until they are read, at the write's first need or with its rate limit's count."""

    pending = True


_read_together: contextvars.ContextVar[_Tokens | None] = contextvars.ContextVar(
    "shared_version_tokens", default=None
)


class SharedVersion:
    """A token in the shared cache that changes whenever a model's rows change. Each worker
    keeps what it compiled from those rows under the token it saw, and recompiles when the
    token moves, so a change made in any worker reaches all of them."""

    MAX_KEPT = 500  # compiled values per worker, e.g. one per group
    every: ClassVar[list["SharedVersion"]] = []

    def __init__(self, key: str) -> None:
        self.key = key
        self._kept: dict[object, tuple[str, object]] = {}
        SharedVersion.every.append(self)

    @classmethod
    @contextlib.contextmanager
    def read_together(cls) -> Iterator[None]:
        """Within, every version's token is read once, all in one round trip: a write that
        screens its text asks for three (watched phrases, link rules, context notes), each a
        round trip of its own on every chat message. They are read when first needed, or
        by the write's rate limit in its own round trip (``unread_keys``), and not at all by
        a write refused before. A token that moves meanwhile counts from the next write, as
        if it had moved a moment later."""
        if _read_together.get() is not None:  # an enclosing write reads them
            yield
            return
        reset = _read_together.set(_Tokens())
        try:
            yield
        finally:
            _read_together.reset(reset)

    @classmethod
    def unread_keys(cls) -> list[str]:
        """Within read_together, the tokens' keys until they are read; otherwise none. A
        round trip the write makes anyway can bring them (``arrived``)."""
        tokens = _read_together.get()
        pending = tokens is not None and tokens.pending
        return [version.key for version in cls.every] if pending else []

    @classmethod
    def arrived(cls, found: dict[str, str]) -> None:
        """The tokens ``unread_keys`` named, as read (absent: not in the cache)."""
        tokens = _read_together.get()
        if tokens is not None and tokens.pending:
            tokens.update(found)
            tokens.pending = False

    @classmethod
    def _tokens(cls) -> _Tokens | None:
        tokens = _read_together.get()
        if tokens is not None and tokens.pending:
            # While Redis is down each is read alone, as ever.
            with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
                tokens.update(cache.get_many([version.key for version in cls.every]))
            tokens.pending = False
        return tokens

    def cached(self, key: object, build):
        """What ``build()`` makes for ``key``, kept in this worker until the token moves."""
        token = self.current()
        kept = self._kept.get(key)
        if kept is not None and kept[0] == token:
            return kept[1]
        value = build()
        if len(self._kept) >= self.MAX_KEPT:
            self._kept.clear()
        self._kept[key] = (token, value)
        return value

    def forget(self) -> None:
        """Drop this worker's compiled values (as a fresh worker would start)."""
        self._kept.clear()

    def current(self) -> str:
        tokens = self._tokens()
        token = cache.get(self.key) if tokens is None else tokens.get(self.key)
        if token is None:
            # A fresh random token, never a counter: a counter reset by an evicted or
            # flushed cache could meet a stale compiled copy still held by a worker.
            cache.add(self.key, uuid.uuid4().hex, timeout=None)
            token = cache.get(self.key)
            if tokens is not None and token is not None:
                tokens[self.key] = token
        return token

    def bump(self) -> None:
        cache.set(self.key, uuid.uuid4().hex, timeout=None)
        tokens = _read_together.get()
        if tokens is not None:  # this write's own change counts at once
            tokens.pop(self.key, None)

    def follow(self, model: type[models.Model]) -> None:
        """Bump on every save and delete of ``model``: at once, for the transaction's own
        later writes, and again after commit, since another worker may have recompiled the
        old rows under the first new token in the meantime."""

        def changed(sender, **kwargs) -> None:
            self.bump()
            transaction.on_commit(self.bump)

        post_save.connect(changed, sender=model, weak=False, dispatch_uid=f"{self.key}-save")
        post_delete.connect(changed, sender=model, weak=False, dispatch_uid=f"{self.key}-delete")


WATCHED_PHRASES_VERSION = SharedVersion("moderation:watched-version")
WATCHED_PHRASES_VERSION.follow(WatchedPhrase)


class ContextNote(models.Model):
    """A misinformation claim the library watches for, with a correction written for peers.

    New posts and chat messages are matched against ``claim`` and ``phrasings``
    (moderation.similarity); a match attaches the note under the content for every reader
    and queues it for a moderator to confirm, or holds the content when ``hold_on_match``.
    """

    claim = models.CharField(max_length=300, help_text="The claim, in one plain sentence.")
    phrasings = models.TextField(
        blank=True, help_text="Other ways people say it, one per line (matched like the claim)."
    )
    correction_source = models.TextField()
    correction_html = models.TextField()
    sources = models.TextField(blank=True, help_text="One source a line: a title or a URL.")
    hold_on_match = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-is_active", "claim", "pk"]

    def __str__(self) -> str:
        return self.claim

    @property
    def source_list(self) -> list[str]:
        return [line.strip() for line in self.sources.splitlines() if line.strip()]

    @property
    def phrasing_list(self) -> list[str]:
        return [line.strip() for line in self.phrasings.splitlines() if line.strip()]


class NoteAttachment(models.Model):
    """A context note shown under one post or chat message (generic target).

    ``attached_by`` None: the matcher attached it, and it waits for a moderator to
    confirm it; a detached attachment stays as the record, and the matcher never
    re-attaches a note a moderator took off.
    """

    class State(models.TextChoices):
        SUGGESTED = "suggested", "Attached automatically, waiting for a moderator"
        CONFIRMED = "confirmed", "Confirmed by a moderator"
        DETACHED = "detached", "Detached"

    note = models.ForeignKey(ContextNote, on_delete=models.CASCADE, related_name="attachments")
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    target = GenericForeignKey("content_type", "object_id")
    state = models.CharField(max_length=10, choices=State.choices, default=State.SUGGESTED)
    score = models.FloatField(null=True, blank=True, help_text="The matcher's score, if automatic.")
    attached_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attached_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["attached_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["note", "content_type", "object_id"], name="noteattachment_once"
            ),
        ]
        indexes = [
            models.Index(fields=["content_type", "object_id"], name="noteattachment_target"),
        ]

    def __str__(self) -> str:
        return f"note {self.note_id} on {self.content_type_id}:{self.object_id} ({self.state})"

    @property
    def is_shown(self) -> bool:
        return self.state != self.State.DETACHED


CONTEXT_NOTES_VERSION = SharedVersion("moderation:context-notes-version")
CONTEXT_NOTES_VERSION.follow(ContextNote)


class DomainRule(models.Model):
    """A domain links may (allow) or may not (block) point to, site-wide (no group) or in
    one group; subdomains are included. An allowed domain passes even for new members."""

    class Kind(models.TextChoices):
        BLOCK = "block", "Blocked: posts linking to it are refused"
        ALLOW = "allow", "Allowed: links to it are fine, even from new members"

    group = models.ForeignKey(
        "forum.SupportGroup",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="domain_rules",
    )
    domain = models.CharField(max_length=253)
    kind = models.CharField(max_length=5, choices=Kind.choices, default=Kind.BLOCK)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["group_id", "kind", "domain"]
        constraints = [
            models.UniqueConstraint(fields=["group", "domain"], name="domainrule_once_per_place"),
        ]

    def __str__(self) -> str:
        return f"{self.domain} ({self.get_kind_display()})"


class LinkApproval(models.Model):
    """A leader's word that a member below the link threshold may post links in a group
    (moderation.trust: the threshold is a trust level; this is the leader's way past it)."""

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="link_approvals"
    )
    group = models.ForeignKey(
        "forum.SupportGroup", on_delete=models.CASCADE, related_name="link_approvals"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-approved_at"]
        constraints = [
            models.UniqueConstraint(fields=["member", "group"], name="linkapproval_once"),
        ]

    def __str__(self) -> str:
        return f"links from {self.member_id} in group {self.group_id}"


DOMAIN_RULES_VERSION = SharedVersion("moderation:domain-rules-version")
DOMAIN_RULES_VERSION.follow(DomainRule)
