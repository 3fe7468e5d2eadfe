"""A clear 503, not a 500, while PostgreSQL or Redis is unreachable.

Pages that the cache can do without keep working through a Redis outage
(forum/cache.py); what needs the database, or Redis itself, answers
templates/503.html with Retry-After and no traceback, and works again by itself
once the service is back: Django opens a fresh database connection on the next
request, redis-py a fresh Redis connection on the next command.
"""

import logging
from dataclasses import asdict

from csp.constants import HEADER
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware, get_user
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.template import loader
from django.utils.functional import SimpleLazyObject

from .cache import UNAVAILABLE

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
# What a response carries when a view chose its own policy with django-csp's decorators.
OWN_POLICY = frozenset(
    f"_csp_{what}{ro}" for what in ("config", "update", "replace", "exempt") for ro in ("", "_ro")
)

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


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, building the site's one policy once rather than twice for
    every response: 36 µs a response, a fifth of what serving `hello` costs (bench/README.md).
    A response with a policy of its own (django-csp's decorators), a request that took a
    nonce, or a report-only or per-path policy in the settings goes the library's way."""

    _built: tuple[dict, str] | None = None

    def process_response(self, request, response):
        config = settings.CONTENT_SECURITY_POLICY
        if (
            getattr(request, "_csp_nonce", None) is not None
            or not OWN_POLICY.isdisjoint(vars(response))
            or getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
            or config.get("EXCLUDE_URL_PREFIXES")
            or (settings.DEBUG and response.status_code in (404, 500))
        ):
            return super().process_response(request, response)
        if self._built is None or self._built[0] is not config:
            parts = self.get_policy_parts(request=request, response=response)
            self._built = (config, build_policy(**asdict(parts)))
        if HEADER not in response:
            response[HEADER] = self._built[1]
        # As django-csp does: a nonce taken after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response


class MemberMiddleware(AuthenticationMiddleware):
    """Django's AuthenticationMiddleware, except that once the member is loaded (lazily,
    as there), ``request.user`` is the member itself rather than the lazy object around
    them: a thread page reads the user some sixty times, and each read through the lazy
    object raises and catches an AttributeError."""

    def process_request(self, request) -> None:
        super().process_request(request)  # its checks, and request.auser

        def load():
            request.user = get_user(request)
            return request.user

        request.user = SimpleLazyObject(load)


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
