"""Signing in: Django's ModelBackend, reading with the member what every page asks next.

Every page a member sees loads them by id (the session), shows how many notifications
they have not read and whether to link the review queue (do they moderate a group?), and
most ask whether a sanction bars them; a thread page asks whether they hold replies to send
later. Reading all three with the member saves each signed-in page as many round trips. A
page or a write that asks more of its member can have that read in the same statement too
(``read_with_member``): the thread page reads its viewer's part there, a chat write its
room. The statement is written by hand (forum.sql).

A page that read the member's standing version ahead (forum.standing; the thread page
does, with its session) may answer from this worker's copy of the statement's answer kept
under that version, for KEPT_SECONDS at most, rather than ask the database again. Only a
member with no sanction in force and no held replies is kept: their standing can change
only by a write, which replaces the version. Every other page and every write reads afresh.
"""

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.utils import timezone

from moderation import permissions
from moderation.models import Sanction

from . import sql, standing
from .cache import Recent
from .models import HeldPost, Membership, Notification, User
from .sql import names

UNREAD_ATTRIBUTE = "unread_notification_count"
UNSANCTIONED_ATTRIBUTE = "unsanctioned"
MODERATES_ATTRIBUTE = "moderates_a_group"
HELD_ATTRIBUTE = "has_held_posts"

# A kept answer lives this long at most: the bound on what a missed version could show.
KEPT_SECONDS = 10
_kept = Recent(2048, ttl=KEPT_SECONDS)


@dataclass(frozen=True)
class Rider:
    """More of the member for one page or write: SQL expressions over the member's row
    (``u``) and tables joined to it, with their named parameters (the member's id is
    ``%(member)s``; ``%(warning)s``, ``%(now)s`` and ``%(moderator)s`` are taken too), and
    what to do with their values once the member is loaded. Riders add up: ``a + b`` reads
    both."""

    columns: tuple[str, ...]
    params: dict[str, object]
    attach: Callable[[User, tuple], None]
    joins: str = ""
    width: int = 0  # how many values the columns give, where one gives more (0: one each)

    @property
    def values(self) -> int:
        return self.width or len(self.columns)

    def __add__(self, other: "Rider") -> "Rider":
        split = self.values

        def attach(user: User, values: tuple) -> None:
            self.attach(user, values[:split])
            other.attach(user, values[split:])

        return Rider(
            self.columns + other.columns,
            {**self.params, **other.params},
            attach,
            f"{self.joins} {other.joins}".strip(),
            split + other.values,
        )


_rider: ContextVar[Rider | None] = ContextVar("member_rider", default=None)


@contextmanager
def read_with_member(rider: Rider) -> Iterator[None]:
    """Within the block, loading the member reads ``rider``'s columns too."""
    token = _rider.set(rider)
    try:
        yield
    finally:
        _rider.reset(token)


@functools.cache
def _member_sql(extra: tuple[str, ...] = (), joins: str = "") -> str:
    user, u_id = names(User, "id")
    note, n_recipient, n_read = names(Notification, "recipient", "read_at")
    sanction, s_member, s_lifted, s_kind, s_ends = names(
        Sanction, "member", "lifted_at", "kind", "ends_at"
    )
    membership, m_user, m_role = names(Membership, "user", "role")
    held, h_author = names(HeldPost, "author")
    # The same sanctions as moderation.permissions.sanctions_in_force.
    return f"""
        SELECT {sql.columns(User, "u")},
            (SELECT COUNT(*) FROM {note} n WHERE n.{n_recipient} = u.{u_id} AND n.{n_read} IS NULL)
                AS {UNREAD_ATTRIBUTE},
            NOT EXISTS(
                SELECT 1 FROM {sanction} s WHERE s.{s_member} = u.{u_id} AND s.{s_lifted} IS NULL
                AND s.{s_kind} <> %(warning)s AND (s.{s_ends} IS NULL OR s.{s_ends} > %(now)s)
            ) AS {UNSANCTIONED_ATTRIBUTE},
            EXISTS(
                SELECT 1 FROM {membership} m
                WHERE m.{m_user} = u.{u_id} AND m.{m_role} = %(moderator)s
            ) AS {MODERATES_ATTRIBUTE},
            EXISTS(SELECT 1 FROM {held} h WHERE h.{h_author} = u.{u_id}) AS {HELD_ATTRIBUTE}
            {"".join(f", {column}" for column in extra)}
        FROM {user} u {joins} WHERE u.{u_id} = %(member)s
    """  # noqa: S608 (names come from the models, values are parameters)


def load_member(user_id: int) -> User | None:
    """The member with their unread count, knowing whether a sanction is in force (so
    permission checks need no query when none is) and whether they moderate a group,
    active or not, and whether they hold posts; None if there is none. Answered from the
    worker's kept answer where the page read the member's standing version ahead and it
    still names it (the module's docstring)."""
    rider = _rider.get()
    extra = rider.columns if rider is not None else ()
    joins = rider.joins if rider is not None else ""
    width = rider.values if rider is not None else 0
    asked, version = standing.read_ahead(user_id)
    kept_as = None
    if asked and version is None:
        standing.ensure(user_id)
    elif version is not None:
        rider_params = tuple(sorted(rider.params.items())) if rider is not None else ()
        kept_as = (user_id, version, extra, joins, rider_params)
    row = _kept.get(kept_as) if kept_as is not None else None
    if row is None:
        params = {
            **(rider.params if rider is not None else {}),
            "warning": Sanction.Kind.WARNING.value,
            "now": connection.ops.adapt_datetimefield_value(timezone.now()),
            "moderator": Membership.Role.MODERATOR.value,
            "member": user_id,
        }
        with connection.cursor() as cursor:
            cursor.execute(_member_sql(extra, joins), params)
            row = cursor.fetchone()
        if row is None:
            return None
        if kept_as is not None and _may_keep(row, width):
            _kept.set(kept_as, row)
    own = len(row) - width
    user = sql.load(User, row[: own - 4])
    unread, unsanctioned, moderates, held = row[own - 4 : own]
    setattr(user, UNREAD_ATTRIBUTE, unread)
    setattr(user, UNSANCTIONED_ATTRIBUTE, bool(unsanctioned))
    setattr(user, MODERATES_ATTRIBUTE, bool(moderates))
    setattr(user, HELD_ATTRIBUTE, bool(held))
    if unsanctioned:
        permissions.remember_no_sanctions(user)
    permissions.remember_moderates(user, bool(moderates))
    if rider is not None:
        rider.attach(user, row[own:])
    return user


def standing_is_kept(user: User) -> bool:
    """Whether ``user``'s standing is the kind kept (_may_keep): no sanction in force and
    no held replies, so that only a write, which replaces their version, changes it."""
    return getattr(user, UNSANCTIONED_ATTRIBUTE, False) and not getattr(user, HELD_ATTRIBUTE, True)


def _may_keep(row: tuple, width: int) -> bool:
    """No sanction in force and no held replies: what could change this member's standing
    without a write (a sanction's end, a reply's release) is not there to change."""
    _, unsanctioned, _, held = row[len(row) - width - 4 : len(row) - width]
    return bool(unsanctioned) and not held


class MemberBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None and username is not None and password is not None:
            # A refused password stops here: ModelBackend, listed after this backend for
            # the sessions it signed in, would only hash the same wrong password again.
            raise PermissionDenied
        return user

    def get_user(self, user_id):
        user = load_member(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None
