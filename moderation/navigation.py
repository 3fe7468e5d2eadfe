"""Whether to show the "Review queue" link, without a database query on every page.

The answer is kept in the session together with the member's authority epoch
(forum.realtime), a cache counter that forum.signals bumps whenever one of their
memberships changes (a promotion or demotion included) or their account is saved. A
page reads the counter from the cache; only when it has moved since the answer was
worked out is the answer worked out again (one query, and the session is saved).
"""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from forum import realtime

from . import permissions

SESSION_KEY = "kinship_can_review"  # [authority epoch, answer]


def _epoch(user) -> int | None:
    return realtime.authority_epochs([user.pk])[user.pk]


def _remember(request, user, epoch: int | None) -> bool:
    """Work the answer out and keep it with ``epoch``, read *before* the answer: a change
    in between moves the epoch again, so the next page works it out once more."""
    value = permissions.can_review(user)
    if request.session.get(SESSION_KEY) != [epoch, value]:
        request.session[SESSION_KEY] = [epoch, value]
    return value


def show_review_link(request) -> bool:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    if permissions.is_site_moderator(user):
        return True
    known = request.session.get(SESSION_KEY)
    epoch = _epoch(user)
    # No epoch (the cache is unreachable): worked out afresh on each page meanwhile.
    if epoch is not None and isinstance(known, list) and len(known) == 2 and known[0] == epoch:
        return bool(known[1])
    return _remember(request, user, epoch)


@receiver(user_logged_in, dispatch_uid="moderation.remember_can_review")
def _remember_on_login(sender, request, user, **kwargs) -> None:
    # The session is saved at login anyway; django's update_last_login (connected
    # first) has already bumped the epoch for this save of the user.
    if request is not None and hasattr(request, "session"):
        _remember(request, user, _epoch(user))
