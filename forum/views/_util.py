"""Small helpers the views share."""

from collections.abc import Callable
from typing import TypeVar

from django import forms
from django.core.exceptions import ValidationError

from moderation.ratelimit import RateLimited

from .. import standing
from ..forms import attach_errors
from ..sessions import member_in_key

T = TypeVar("T")


def page_number(request) -> int:
    """``?page=`` as a positive integer; anything malformed is page 1."""
    try:
        page = int(request.GET.get("page", "1"))
    except (TypeError, ValueError):
        return 1
    return min(max(page, 1), 10_000)


def reader_cache_keys(request) -> list[str]:
    """Where the cache keeps this request's session and, for a GET by a session that
    names its member in its key (forum.sessions), that member's standing version
    (forum.standing), for a page that reads them ahead (forum.cache.read_ahead); nothing
    when the request brings no session or the engine keeps none in the cache."""
    session = request.session
    if not session.session_key or not hasattr(session, "cache_key"):
        return []
    member = member_in_key(session.session_key)
    if member is None or request.method not in ("GET", "HEAD"):
        return [session.cache_key]
    return [session.cache_key, standing.version_key(member)]


def posted(request):
    """Form data for a POST, even an empty one (``request.POST or None`` would
    treat an empty POST as a fresh GET and hide the errors)."""
    return request.POST if request.method == "POST" else None


def submit(form: forms.Form, write: Callable[[], T]) -> T | None:
    """Run a write-path call; on a refusal put its message on the form and return None."""
    try:
        return write()
    except ValidationError as error:
        attach_errors(form, error)
    except RateLimited as error:
        form.add_error(None, str(error))
    return None
