from . import selectors


def site(request) -> dict:
    # Lazy: the count query runs only if a template shows it.
    return {
        "unread_notifications": lambda: selectors.unread_notification_count(request.user),
    }
