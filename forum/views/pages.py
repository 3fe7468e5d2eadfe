"""Home, crisis resources, notifications and the health check."""

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .. import engagement, selectors
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
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        checks["database"] = "ok"
    except Exception as error:  # any failure at all means unhealthy
        checks["database"] = f"unavailable: {type(error).__name__}"
    if settings.REDIS_URL:
        try:
            client = redis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
            )
            client.ping()
            client.close()
            checks["redis"] = "ok"
        except redis.RedisError as error:
            checks["redis"] = f"unavailable: {type(error).__name__}"
    else:
        checks["redis"] = "not configured (in-memory cache, single process)"
    failed = [name for name, state in checks.items() if state.startswith("unavailable")]
    body = {"status": "unhealthy" if failed else "ok", "failed": failed, **checks}
    return JsonResponse(body, status=503 if failed else 200)
