from moderation import permissions

from . import selectors


def site(request) -> dict:
    # Lazy: the count query runs only if a template shows it.
    return {
        "unread_notifications": lambda: selectors.unread_notification_count(request.user),
        # The review queue link in the navigation: read with the member (forum.backends).
        "can_review": lambda: permissions.can_review(request.user),
    }
