"""The CSRF token as Kinship masks it, and its cookie that lasts the browser session
(forum.csrf).

What matters: every token Kinship hands out is one Django's middleware accepts, and only
for its own secret; masks are fresh and uniform; the cookie is sent when the browser lacks
it or holds another value, never renewed needlessly, and the page still varies on it.
"""

import collections
import re

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.middleware.csrf import (
    CSRF_ALLOWED_CHARS,
    CSRF_SECRET_LENGTH,
    CSRF_TOKEN_LENGTH,
    CsrfViewMiddleware,
    _unmask_cipher_token,
    get_token,
)
from django.test import Client, RequestFactory

from forum import csrf
from tests.conftest import PASSWORD, thread_among

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _request_with_secret():
    request = RequestFactory().get("/")
    get_token(request)  # a new secret, as a first page makes one
    return request, request.META["CSRF_COOKIE"]


def test_a_masked_token_unmasks_to_the_secret_and_asks_for_the_cookie():
    request, secret = _request_with_secret()
    request.META["CSRF_COOKIE_NEEDS_UPDATE"] = False
    token = csrf.masked_token(request)
    assert len(token) == CSRF_TOKEN_LENGTH
    assert set(token) <= set(CSRF_ALLOWED_CHARS)
    assert _unmask_cipher_token(token) == secret
    assert request.META["CSRF_COOKIE_NEEDS_UPDATE"] is True


def test_each_token_has_a_fresh_mask():
    request, secret = _request_with_secret()
    tokens = {csrf.masked_token(request) for _ in range(200)}
    assert len(tokens) == 200
    assert {_unmask_cipher_token(token) for token in tokens} == {secret}
    assert secret not in {token[CSRF_SECRET_LENGTH:] for token in tokens}


def test_without_a_secret_a_new_one_is_made_as_django_does():
    request = RequestFactory().get("/")
    token = csrf.masked_token(request)
    assert _unmask_cipher_token(token) == request.META["CSRF_COOKIE"]
    assert request.META["CSRF_COOKIE_NEEDS_UPDATE"] is True


def test_templates_get_the_masked_token():
    request, secret = _request_with_secret()
    token = str(csrf.context_processor(request)["csrf_token"])
    assert _unmask_cipher_token(token) == secret


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["form", "thread"])
def test_pages_mask_their_tokens_here(
    page, settings, public_group, member, other_member, monkeypatch
):
    """Every form's token comes from masked_token: the templates' (settings) and the thread
    page's own (views.threads)."""
    thread = thread_among(settings, public_group, other_member, member, title="Hi", body="Hi.")
    client = Client()
    if page == "thread":
        client.force_login(member)
    url = thread.get_absolute_url() if page == "thread" else "/accounts/signup/"
    client.get(url)  # the cookie
    monkeypatch.setattr(csrf, "_random_positions", lambda count: [0] * count)
    tokens = set(TOKEN.findall(client.get(url).content.decode()))
    secret = client.cookies[settings.CSRF_COOKIE_NAME].value
    assert tokens == {"a" * CSRF_SECRET_LENGTH + secret}  # a mask of "a"s shifts nothing


def test_masks_are_uniform_over_the_alphabet():
    """Taking random bytes modulo 62 would make the first 8 characters a quarter likelier
    than the rest (256 = 4 * 62 + 8): 32,000 draws tell them apart."""
    counts = collections.Counter(
        position for _ in range(1000) for position in csrf._random_positions(32)
    )
    assert set(counts) == set(range(len(CSRF_ALLOWED_CHARS)))
    first = sum(counts[position] for position in range(8)) / 8
    rest = sum(counts[position] for position in range(8, 62)) / 54
    assert 0.9 < first / rest < 1.1


@pytest.mark.django_db
def test_a_form_page_token_is_accepted_and_a_forged_one_refused(member):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/")
    token = TOKEN.search(page.content.decode())[1]
    assert _unmask_cipher_token(token) == client.cookies[settings.CSRF_COOKIE_NAME].value
    forged = token[:-1] + ("a" if token[-1] != "a" else "b")
    refused = client.post(
        "/accounts/login/",
        {"username": member.handle, "password": PASSWORD, "csrfmiddlewaretoken": forged},
    )
    assert refused.status_code == 403
    signed_in = client.post(
        "/accounts/login/",
        {"username": member.handle, "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    assert signed_in.status_code == 302
    assert int(client.session["_auth_user_id"]) == member.pk


@pytest.mark.django_db
def test_the_cookie_lasts_the_browser_session_and_is_sent_only_when_new(
    settings, public_group, member, other_member
):
    thread = thread_among(settings, public_group, other_member, member, title="Hi", body="Hi.")
    url = thread.get_absolute_url()
    client = Client()
    client.get("/accounts/login/")
    cookie = client.cookies[settings.CSRF_COOKIE_NAME]
    assert cookie.value and not cookie["max-age"] and not cookie["expires"]
    # Signing in makes a new secret (Django's rotate_token): sent at once.
    client.post("/accounts/login/", {"username": member.handle, "password": PASSWORD})
    rotated = client.cookies[settings.CSRF_COOKIE_NAME].value
    assert rotated != cookie.value
    page = client.get(url)
    assert settings.CSRF_COOKIE_NAME not in page.cookies
    assert _unmask_cipher_token(TOKEN.search(page.content.decode())[1]) == rotated
    assert "Cookie" in page["Vary"]
    # A browser that lost it (closed) gets a new one with its next page.
    del client.cookies[settings.CSRF_COOKIE_NAME]
    page = client.get(url)
    renewed = page.cookies[settings.CSRF_COOKIE_NAME].value
    assert renewed != rotated
    assert _unmask_cipher_token(TOKEN.search(page.content.decode())[1]) == renewed


@pytest.mark.django_db
def test_a_visitors_form_page_varies_on_the_cookie_it_does_not_resend():
    client = Client()
    first = client.get("/accounts/signup/")
    assert first.cookies[settings.CSRF_COOKIE_NAME].value
    again = client.get("/accounts/signup/")
    assert settings.CSRF_COOKIE_NAME not in again.cookies
    assert TOKEN.search(again.content.decode())
    assert "Cookie" in again["Vary"]  # a shared cache must not hand one token to another


def test_a_response_with_the_token_varies_on_the_cookie_even_when_not_sending_it():
    """As Django marks a response when it sends the cookie: a page holding a token must not
    be handed by a shared cache to another browser, whatever else touched the session."""

    def view(request):
        return HttpResponse(csrf.masked_token(request))

    _, secret = _request_with_secret()
    request = RequestFactory().get("/", HTTP_COOKIE=f"{settings.CSRF_COOKIE_NAME}={secret}")
    middleware = CsrfViewMiddleware(csrf.HeldCookieMiddleware(view))
    response = middleware(request)
    assert _unmask_cipher_token(response.content.decode()) == secret
    assert settings.CSRF_COOKIE_NAME not in response.cookies
    assert response["Vary"] == "Cookie"


@pytest.mark.django_db
def test_a_cookie_in_another_form_is_replaced(member, settings):
    """An older masked cookie (64 characters) reads as its secret and is sent back plain."""
    request, secret = _request_with_secret()
    client = Client()
    client.cookies[settings.CSRF_COOKIE_NAME] = csrf.masked_token(request)
    response = client.get("/accounts/login/")
    assert response.cookies[settings.CSRF_COOKIE_NAME].value == secret


@pytest.mark.django_db
def test_with_an_expiry_the_cookie_is_renewed_as_django_does(settings):
    settings.CSRF_COOKIE_AGE = 60 * 60 * 24
    client = Client()
    client.get("/accounts/login/")
    again = client.get("/accounts/login/")
    assert again.cookies[settings.CSRF_COOKIE_NAME]["max-age"] == settings.CSRF_COOKIE_AGE
