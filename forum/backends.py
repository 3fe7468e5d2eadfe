"""Signing in: Django's ModelBackend, reading the header's unread badge with the member.

Every page a member sees loads them by id (the session) and shows how many notifications
they have not read. Counting in the same query saves each signed-in page a round trip;
the count is the viewer's own and is read afresh on every request, never cached.
"""

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce

from .models import Notification, User

UNREAD_ATTRIBUTE = "unread_notification_count"


def unread_count_subquery() -> Subquery:
    unread = (
        Notification.objects.filter(recipient=OuterRef("pk"), read_at__isnull=True)
        .order_by()
        .values("recipient")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(unread, output_field=IntegerField()), 0)


class MemberBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None and username is not None and password is not None:
            # A refused password stops here: ModelBackend, listed after this backend for
            # the sessions it signed in, would only hash the same wrong password again.
            raise PermissionDenied
        return user

    def get_user(self, user_id):
        user = (
            User._default_manager.annotate(**{UNREAD_ATTRIBUTE: unread_count_subquery()})
            .filter(pk=user_id)
            .first()
        )
        return user if user is not None and self.user_can_authenticate(user) else None
