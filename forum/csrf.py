"""Django's CSRF protection, with two costs of every member's page taken out.

- Masking. Each page carries the CSRF secret under a new random mask (Django's defence
  against BREACH). Django draws the mask one character at a time, a system call each,
  which took a twentieth of a member's thread page; ``masked_token`` draws it in one call,
  just as uniformly, and gives the token Django's middleware checks.
- Renewal. Django sends the CSRF cookie again with every page that uses it, to push its
  expiry back. Kinship's CSRF cookie has no expiry (``CSRF_COOKIE_AGE = None``): it lasts
  until the browser closes, so no year-long identifier stays on a shared computer, and
  there is nothing to renew. ``HeldCookieMiddleware`` lets Django's middleware send it
  only when the browser does not already hold this value.
"""

import os

from django.conf import settings
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH, get_token
from django.utils.cache import patch_vary_headers
from django.utils.deprecation import MiddlewareMixin
from django.utils.functional import SimpleLazyObject

_SIZE = len(CSRF_ALLOWED_CHARS)
_POSITION = {char: position for position, char in enumerate(CSRF_ALLOWED_CHARS)}
# Bytes from here up would make the first characters likelier than the rest: dropped.
_UNBIASED = 256 - 256 % _SIZE


def _random_positions(count: int) -> list[int]:
    """``count`` positions in CSRF_ALLOWED_CHARS, each uniform and from the OS's CSPRNG."""
    positions: list[int] = []
    while len(positions) < count:
        positions += [byte % _SIZE for byte in os.urandom(count + 8) if byte < _UNBIASED]
    return positions[:count]


def masked_token(request) -> str:
    """What ``django.middleware.csrf.get_token`` returns, with the same effects: the CSRF
    secret under a fresh mask (mask, then each secret character shifted by the mask's)."""
    secret = request.META.get("CSRF_COOKIE")
    if secret is None:
        return get_token(request)  # a new secret, and its cookie
    request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True
    mask = _random_positions(CSRF_SECRET_LENGTH)
    shifted = ((_POSITION[char] + shift) % _SIZE for char, shift in zip(secret, mask, strict=True))
    return "".join([CSRF_ALLOWED_CHARS[position] for position in (*mask, *shifted)])


def context_processor(request) -> dict:
    """``{% csrf_token %}`` through ``masked_token`` (after Django's own processor, which
    this replaces), taken only when a template shows a form."""
    return {"csrf_token": SimpleLazyObject(lambda: masked_token(request))}


class HeldCookieMiddleware(MiddlewareMixin):
    """Listed just after Django's CsrfViewMiddleware, so that a response passes here first:
    a cookie with no expiry that the browser already holds is not sent again."""

    def process_response(self, request, response):
        if (
            request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
            and settings.CSRF_COOKIE_AGE is None
            and not settings.CSRF_USE_SESSIONS
            and request.COOKIES.get(settings.CSRF_COOKIE_NAME) == request.META.get("CSRF_COOKIE")
        ):
            request.META["CSRF_COOKIE_NEEDS_UPDATE"] = False
            # As Django does when it sends the cookie: the page holds this browser's token.
            patch_vary_headers(response, ("Cookie",))
        return response
