"""The page around a body (base.html: head, navigation, footer), rendered once per process
for each reader's few facts, then copied.

A member's thread page body comes from the cache (forum.fragments); rendering base.html
around it through the template engine then cost a third of the page. Like
``{% chrome %}``, a frame is rendered from a context holding *only* its inputs (signed in,
handle, unread count, review link), so what it shows is a function of them and its key is
complete by construction; the title, the body and the CSRF token are holes, filled for each
page. Its parts are kept as the body is (forum.fragments.Body: UTF-8, holes found once),
and a page is the frame joined around the body, filled once. A reader with messages waiting
gets the page rendered in full (``None`` here): a message is shown once, and only to them.
"""

from dataclasses import dataclass

from django.contrib.messages import get_messages
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.template.loader import get_template
from django.urls import get_script_prefix, get_urlconf
from django.utils.html import escape

from moderation import permissions

from . import selectors
from .cache import Recent
from .fragments import CSRF_HOLE, Body, joined

# NUL cannot reach a title or a post (forms refuse it, the sanitiser drops it).
TITLE_HOLE = "\x00frame-title\x00"
BODY_HOLE = "\x00frame-body\x00"
SIZE = 2048  # a frame per member and template, about 4 KiB each
_frames = Recent(SIZE)


@dataclass(frozen=True)
class _Reader:
    """All the frame may know of its reader (base.html reads no more)."""

    is_authenticated: bool
    handle: str


def page(request: HttpRequest, template_name: str, *, title: str, body: Body) -> Body | None:
    """``template_name`` (extending base.html, its title and content blocks showing
    ``title`` and ``body``) for this reader, as one Body whose holes are the body's and the
    navigation's CSRF fields; None when they have messages waiting."""
    if messages_waiting(request):
        return None
    user = request.user
    signed_in = user.is_authenticated
    inputs = {
        "user": _Reader(signed_in, user.handle if signed_in else ""),
        "unread_notifications": selectors.unread_notification_count(user) if signed_in else 0,
        "can_review": permissions.can_review(user) if signed_in else False,
    }
    key = (template_name, get_script_prefix(), get_urlconf(), *inputs.values())
    parts = _frames.get(key)
    if parts is None:
        html = get_template(template_name).render(
            {**inputs, "title": TITLE_HOLE, "body": BODY_HOLE, "csrf_token": CSRF_HOLE}
        )
        before, rest = html.split(TITLE_HOLE)
        between, after = rest.split(BODY_HOLE)
        parts = (Body.of(before), Body.of(between), Body.of(after))
        _frames.set(key, parts)
    before, between, after = parts
    return joined(before, Body.text(escape(title)), between, body, after)


def messages_waiting(request: HttpRequest) -> bool:
    """Whether the reader has a message to be shown once (their page is then rendered in
    full, and no kept page of theirs serves)."""
    return bool(len(get_messages(request)))


@receiver(setting_changed, dispatch_uid="forum.frames.forget")
def forget(**kwargs) -> None:
    """Drop every frame: a changed setting may change what URLs and static paths read."""
    _frames.clear()
