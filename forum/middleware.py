"""A clear 503, not a 500, while PostgreSQL or Redis is unreachable.

Pages that the cache can do without keep working through a Redis outage
(forum/cache.py); what needs the database, or Redis itself, answers
templates/503.html with Retry-After and no traceback, and works again by itself
once the service is back: Django opens a fresh database connection on the next
request, redis-py a fresh Redis connection on the next command.
"""

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.template import loader

from .cache import UNAVAILABLE

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
# The service is unreachable or went away mid-request; not a bug in the page.
SERVICE_ERRORS = (OperationalError, InterfaceError, *UNAVAILABLE)


def service_unavailable(error: BaseException) -> HttpResponse:
    """The 503 page. Rendered without the request: its context processors would read
    the session and the database, which may be what is down."""
    logger.warning("service unavailable: %s: %s", type(error).__name__, error)
    response = HttpResponse(loader.render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class ServiceUnavailableMiddleware:
    """Turns a database or Redis outage met by a view into the 503 page (also in
    development, where Django would otherwise show its debug page)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, SERVICE_ERRORS):
            return service_unavailable(exception)
        return None
