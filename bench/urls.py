"""forum.urls plus `hello/`: the cheapest page Django serves through the same middleware,
the yardstick bench/pages.py compares every page with; and `hello/member/`, the least any
signed-in page does."""

from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.urls import path

from forum.urls import urlpatterns as forum_urlpatterns


def hello(request) -> HttpResponse:
    return HttpResponse(b"hello", content_type="text/plain")


def hello_member(request) -> HttpResponse:
    """What every page does for a member before its own work: load them from the session
    (forum.backends: one read of the session, one statement) and give the page's forms a
    masked CSRF token. No signed-in page can be cheaper, so its rate over a visitor's kept
    thread page bounds bench/pages.py's logged-in ratio."""
    if not request.user.is_authenticated:
        return HttpResponse(b"signed out", status=403, content_type="text/plain")
    # The handle shows bench/pages.py that the session was accepted.
    body = f"hello {request.user.handle} {get_token(request)}"
    return HttpResponse(body, content_type="text/plain")


urlpatterns = [path("hello/", hello), path("hello/member/", hello_member), *forum_urlpatterns]
