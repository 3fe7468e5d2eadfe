"""Whether to show the "Review queue" link, without a query on every page.

The answer is worked out when a member logs in (the session is saved then anyway)
and kept in the session; the queue page refreshes it whenever it is visited, so a
new moderator who opens the queue once sees the link from then on. Sessions from
before this existed get it worked out once, on their next page.
"""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from . import permissions

SESSION_KEY = "kinship_can_review"


def remember_can_review(request, value: bool | None = None) -> bool:
    if value is None:
        value = permissions.can_review(request.user)
    if request.session.get(SESSION_KEY) != value:
        request.session[SESSION_KEY] = value
    return value


def show_review_link(request) -> bool:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    if permissions.is_site_moderator(user):
        return True
    known = request.session.get(SESSION_KEY)
    return remember_can_review(request) if known is None else known


@receiver(user_logged_in, dispatch_uid="moderation.remember_can_review")
def _remember_on_login(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = permissions.can_review(user)
