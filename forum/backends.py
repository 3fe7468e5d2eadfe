"""Signing in: Django's ModelBackend, reading with the member what every page asks next.

Every page a member sees loads them by id (the session), shows how many notifications
they have not read, and most ask whether a sanction bars them. Reading both with the
member saves each signed-in page two round trips; both are read afresh on every request,
never cached. The statement is written by hand (forum.sql).
"""

import functools

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.utils import timezone

from moderation import permissions
from moderation.models import Sanction

from .models import Notification, User
from .sql import names

UNREAD_ATTRIBUTE = "unread_notification_count"
UNSANCTIONED_ATTRIBUTE = "unsanctioned"


@functools.cache
def _member_sql() -> str:
    user, u_id = names(User, "id")
    note, n_recipient, n_read = names(Notification, "recipient", "read_at")
    sanction, s_member, s_lifted, s_kind, s_ends = names(
        Sanction, "member", "lifted_at", "kind", "ends_at"
    )
    # The same sanctions as moderation.permissions.sanctions_in_force.
    return f"""
        SELECT u.*,
            (SELECT COUNT(*) FROM {note} n WHERE n.{n_recipient} = u.{u_id} AND n.{n_read} IS NULL)
                AS {UNREAD_ATTRIBUTE},
            NOT EXISTS(
                SELECT 1 FROM {sanction} s WHERE s.{s_member} = u.{u_id} AND s.{s_lifted} IS NULL
                AND s.{s_kind} <> %s AND (s.{s_ends} IS NULL OR s.{s_ends} > %s)
            ) AS {UNSANCTIONED_ATTRIBUTE}
        FROM {user} u WHERE u.{u_id} = %s
    """  # noqa: S608 (names come from the models, values are parameters)


def load_member(user_id: int) -> User | None:
    """The member with their unread count, and knowing whether a sanction is in force (so
    permission checks need no query when none is), active or not; None if there is none."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    params = [Sanction.Kind.WARNING.value, now, user_id]
    user = next(iter(User._default_manager.raw(_member_sql(), params)), None)
    if user is not None and getattr(user, UNSANCTIONED_ATTRIBUTE):
        permissions.remember_no_sanctions(user)
    return user


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
