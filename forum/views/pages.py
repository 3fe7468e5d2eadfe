"""Home, crisis resources, notifications and the health check."""

import sys

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.cache import caches
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .. import engagement, selectors
from ..cache import ResilientRedisCache
from ..middleware import SERVICE_ERRORS, service_unavailable
from ._util import page_number


def home(request):
    context = {"directory": selectors.group_directory(request.user)[:8]}
    if request.user.is_authenticated:
        mine = list(selectors.groups_of(request.user))
        context["my_groups"] = mine
        context["recent_threads"] = selectors.recent_threads_in(request.user, mine)
    return render(request, "forum/home.html", context)


def crisis_help(request):
    return render(request, "forum/help.html", {"resources": selectors.crisis_resources()})


@login_required
def notifications(request):
    window = selectors.notifications_for(request.user, page=page_number(request))
    response = render(request, "forum/notifications.html", {"window": window})
    # Seeing the list is reading it; the page above was rendered with unread marks.
    engagement.mark_notifications_read(user=request.user)
    return response


@require_GET
@never_cache
def healthz(request):
    """200 when the database, the cache and the channel layer answer; 503 naming each part
    that does not (docs/operations.md)."""
    checks = {
        "database": _check(_ping_database),
        "cache": _check(_ping_cache),
        "channel_layer": _check(_ping_channel_layer),
    }
    failed = [name for name, state in checks.items() if state.startswith("unavailable")]
    body = {"status": "unhealthy" if failed else "ok", "failed": failed, **checks}
    return JsonResponse(body, status=503 if failed else 200)


def _check(ping) -> str:
    try:
        return ping()
    except Exception as error:  # any failure at all means unhealthy
        return f"unavailable: {type(error).__name__}"


def _ping_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _ping_cache() -> str:
    backend = caches["default"]
    if not isinstance(backend, ResilientRedisCache):
        return "ok (in-process memory, single process)"
    backend.ping()  # a miss would not tell an outage from an empty cache
    return "ok"


def _ping_channel_layer() -> str:
    hosts = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("hosts", [])
    if not hosts:
        return "ok (in-process memory, single process)"
    for host in hosts:
        address = host["address"] if isinstance(host, dict) else host
        client = redis.Redis.from_url(address, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    return "ok"


def server_error(request):
    """handler500: an outage met outside a view (saving the session, say) is a 503 too."""
    error = sys.exc_info()[1]
    if isinstance(error, SERVICE_ERRORS):
        return service_unavailable(error)
    return defaults.server_error(request)
