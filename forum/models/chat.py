"""Chat rooms and their messages.

Every change in a room (a message, an edit, a removal) takes the room's next sequence
number. A message keeps the number it was created with (``seq``) and the number of
its latest change (``version``), so a client that saw everything up to N catches up
with one indexed query: every message whose ``version`` is greater than N.
"""

import functools

from django.conf import settings
from django.db import connection, models, transaction
from django.urls import reverse
from django.utils import timezone

from ..sql import names
from .groups import SupportGroup


class ChatRoom(models.Model):
    class Kind(models.TextChoices):
        GROUP = "group", "A group's room"
        SESSION = "session", "A live session's room"
        DIRECT = "direct", "A direct conversation's room"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        READ_ONLY = "read_only", "Read-only: only leaders and moderators write"
        ARCHIVED = "archived", "Archived: nobody writes"

    group = models.ForeignKey(SupportGroup, on_delete=models.CASCADE, related_name="rooms")
    name = models.CharField(max_length=60)
    slug = models.SlugField(max_length=60)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    # A session's room is reached through its session and not listed among the group's.
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.GROUP)
    is_default = models.BooleanField(default=False)
    # Members wait this long between messages here; 0 is off (moderation.actions.set_slow_mode).
    slow_mode_seconds = models.PositiveIntegerField(default=0)
    last_seq = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(fields=["group", "slug"], name="room_slug_per_group"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.group})"

    def get_absolute_url(self) -> str:
        if self.kind == self.Kind.SESSION:
            return self.live_session.get_absolute_url()
        if self.kind == self.Kind.DIRECT:
            return self.conversation.get_absolute_url()
        return reverse("room", kwargs={"slug": self.group.slug, "room_slug": self.slug})

    @classmethod
    def take_seq(cls, room_id: int) -> int:
        """The room's next sequence number. Call inside a transaction: the UPDATE holds
        the room's row lock until commit, so numbers are handed out in commit order."""
        # One statement (PostgreSQL and SQLite 3.35+ both return from an UPDATE): it runs
        # for every chat message and every change of a live session.
        table, pk, seq = names(cls, "id", "last_seq")  # the model's names, not input
        sql = f'UPDATE "{table}" SET "{seq}" = "{seq}" + 1 WHERE "{pk}" = %s RETURNING "{seq}"'  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(sql, [room_id])
            row = cursor.fetchone()
        if row is None:
            raise cls.DoesNotExist(f"No chat room {room_id}.")
        return row[0]


class ChatMessage(models.Model):
    class RemovedBy(models.TextChoices):
        AUTHOR = "author", "its author"
        MODERATOR = "moderator", "a moderator"
        REVIEW = "review", "flags, pending review"

    # No index of its own: chat_seq_per_room and chat_changes lead with the room, and every
    # message would keep a third copy up to date.
    room = models.ForeignKey(
        ChatRoom, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    seq = models.BigIntegerField()
    version = models.BigIntegerField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    client_id = models.CharField(max_length=64)
    source = models.TextField()
    html = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.CharField(max_length=10, choices=RemovedBy.choices, blank=True)
    removal_reason = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="chat_seq_per_room"),
            # A resent frame with the same client id finds the first message.
            models.UniqueConstraint(
                fields=["room", "author", "client_id"], name="chat_client_id_once"
            ),
        ]
        indexes = [
            models.Index(fields=["room", "version"], name="chat_changes"),
            # What moderators removed, counted for each message's trust (moderation.permissions).
            models.Index(
                fields=["author"],
                name="chat_removed_by_moderator",
                condition=models.Q(removed_by="moderator"),
            ),
        ]

    def __str__(self) -> str:
        return f"message {self.seq} in room {self.room_id}"

    @property
    def is_removed(self) -> bool:
        return self.removed_at is not None

    def insert_at_next_seq(self) -> None:
        """Store this new message under its room's next sequence number (its version too).

        On PostgreSQL one statement takes the number and inserts the row, so outside a
        transaction the room's row is locked only while the server runs it. Taken, inserted
        and committed in three round trips, the lock waited on the writing thread between
        them, and a worker's threads take turns at one GIL: every sender in the room queued
        behind it (bench/README.md, "a chat message"). SQLite, which runs one writer at a time
        anyway, has no UPDATE inside WITH: there the two statements share a transaction.
        """
        if connection.vendor != "postgresql":
            with transaction.atomic(savepoint=False):  # a caller's savepoint covers it
                self.seq = self.version = ChatRoom.take_seq(self.room_id)
                self.save(force_insert=True)
            return
        sql, fields = _insert_at_next_seq_sql()
        params = [self.room_id]
        params += [
            field.get_db_prep_save(field.pre_save(self, True), connection) for field in fields
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            self.pk, self.seq = cursor.fetchone()
        self.version = self.seq
        self._state.adding = False
        self._state.db = connection.alias


@functools.cache
def _insert_at_next_seq_sql() -> tuple[str, list[models.Field]]:
    """The statement of ChatMessage.insert_at_next_seq, and the fields its values are for."""
    room, room_pk, last_seq = names(ChatRoom, "id", "last_seq")
    table, pk, seq = names(ChatMessage, "id", "seq")
    numbered = {"seq", "version"}
    fields = [field for field in ChatMessage._meta.concrete_fields if not field.primary_key]
    columns = ", ".join(f'"{field.column}"' for field in fields)
    # VALUES, not a SELECT: the columns type the parameters. With no room there is no
    # number, and seq's NOT NULL refuses the row.
    values = ", ".join("(SELECT n FROM next)" if f.attname in numbered else "%s" for f in fields)
    sql = (
        f'WITH next AS (UPDATE "{room}" SET "{last_seq}" = "{last_seq}" + 1 '  # noqa: S608
        f'WHERE "{room_pk}" = %s RETURNING "{last_seq}" AS n) '
        f'INSERT INTO "{table}" ({columns}) VALUES ({values}) RETURNING "{pk}", "{seq}"'
    )
    return sql, [field for field in fields if field.attname not in numbered]


class RoomReadState(models.Model):
    """How far a member has read a room, for unread counts."""

    room = models.ForeignKey(ChatRoom, on_delete=models.CASCADE, related_name="read_states")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    last_read_seq = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="read_state_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} read room {self.room_id} to {self.last_read_seq}"
