from moderation import navigation

from . import selectors


def site(request) -> dict:
    # Lazy: the count query runs only if a template shows it.
    return {
        "unread_notifications": lambda: selectors.unread_notification_count(request.user),
        # The review queue link in the navigation: remembered in the session and checked
        # against the member's authority epoch in the cache, so no query per page.
        "can_review": lambda: navigation.show_review_link(request),
    }
