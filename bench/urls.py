"""forum.urls plus `hello/`: the cheapest page Django serves through the same middleware,
the yardstick bench/pages.py compares every page with."""

from django.http import HttpResponse
from django.urls import path

from forum.urls import urlpatterns as forum_urlpatterns


def hello(request) -> HttpResponse:
    return HttpResponse(b"hello", content_type="text/plain")


urlpatterns = [path("hello/", hello), *forum_urlpatterns]
