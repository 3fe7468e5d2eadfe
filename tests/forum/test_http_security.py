"""Every route the URL resolver knows, attacked over HTTP.

The routes come from walking ``get_resolver().url_patterns``; tests/route_table.py
builds a real URL for each in a small forum and names who may use it. Every response
(whatever its status, signed in or not) carries the Content-Security-Policy and the other
security headers; every HTML page renders nothing the policy would need 'unsafe-inline'
for; and every unsafe method without a CSRF token is refused with nothing changed, while
the same request with a token gets through (so the refusal is CSRF's, not a permission's).
"""

import html5lib
import pytest
from django.apps import apps
from django.contrib.auth.models import AnonymousUser
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory

from tests.permissions_world import lift_limits
from tests.route_table import CASES, build, walk

UNSAFE_METHODS = ("post", "put", "patch", "delete")
# Script elements that hold data, which no browser runs (Django's json_script).
DATA_SCRIPT_TYPES = {"application/json", "application/ld+json"}
STRICT_REFERRER_POLICIES = {"no-referrer", "same-origin"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction"}


@pytest.fixture(autouse=True)
def _quick(settings):
    lift_limits(settings)


def route_keys() -> list[str]:
    return sorted({route.key for route in walk()})


# --- the table covers the resolver -----------------------------------------------------------


def test_every_route_has_a_case():
    """A new route fails here until tests/route_table.py can build its URL."""
    walked = route_keys()
    assert len(walked) > 100, "the walk found suspiciously few routes"
    missing = [key for key in walked if key not in CASES]
    assert missing == [], "routes without a case in tests/route_table.py"
    assert sorted(set(CASES) - set(walked)) == [], "cases for routes that do not exist"


def test_no_view_is_exempt_from_csrf():
    exempt = [r.route for r in walk() if getattr(r.pattern.callback, "csrf_exempt", False)]
    assert exempt == []


# --- headers and rendered HTML -----------------------------------------------------------


def parse_csp(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name.lower()] = values
    return directives


def check_headers(response, where: str) -> None:
    header = response.get("Content-Security-Policy")
    assert header, f"{where}: no Content-Security-Policy"
    csp = parse_csp(header)
    assert "default-src" in csp, where
    for directive in ("default-src", "script-src"):
        sources = csp.get(directive, [])
        for unsafe in ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"):
            assert unsafe not in sources, f"{where}: {directive} allows {unsafe}"
    for directive in ("object-src", "base-uri", "frame-ancestors"):
        assert csp.get(directive) == ["'none'"], f"{where}: {directive} is {csp.get(directive)}"
    assert response.get("X-Content-Type-Options") == "nosniff", where
    assert response.get("Referrer-Policy") in STRICT_REFERRER_POLICIES, where
    assert response.get("X-Frame-Options") == "DENY", where


def inline_code(body: bytes) -> list[str]:
    """What in the page would need 'unsafe-inline' to run or apply."""
    found = []
    tree = html5lib.parse(body, namespaceHTMLElements=False)
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue  # comments
        tag = element.tag.rsplit("}", 1)[-1].lower()  # SVG and MathML keep a namespace
        script_type = element.get("type", "").strip().lower()
        if tag == "script" and not element.get("src") and script_type not in DATA_SCRIPT_TYPES:
            found.append(f"inline <script>: {(element.text or '')[:60]!r}")
        if tag == "style":
            found.append(f"<style> element: {(element.text or '')[:60]!r}")
        for name, value in element.attrib.items():
            name = name.lower()
            if name.startswith("on"):
                found.append(f"<{tag} {name}=...>")
            elif name == "style":
                found.append(f'<{tag} style="{value[:40]}">')
            elif name in URL_ATTRIBUTES and value.strip().lower().startswith("javascript:"):
                found.append(f"<{tag} {name}=javascript:...>")
    return found


def viewers(world) -> dict[str, object]:
    """Who looks at each route: a visitor, a member of the group, and the route's actor."""
    people = {"anonymous": AnonymousUser(), "member": world.poster}
    if world.actor.is_authenticated:
        people["actor"] = world.actor
    return people


@pytest.mark.django_db
@pytest.mark.parametrize("key", route_keys())
def test_every_response_carries_the_security_headers_and_no_inline_code(key):
    case = CASES[key]
    world = build(case.role)
    url = case.url(world)
    html_pages = 0
    for who, user in viewers(world).items():
        client = Client()
        if user.is_authenticated:
            client.force_login(user)
        response = client.get(url)
        where = f"GET {url} as {who}: {response.status_code}"
        assert response.status_code < 500, where
        check_headers(response, where)
        # A download (a self-contained proof of attendance) is saved, not shown in the page.
        downloaded = response.get("Content-Disposition", "").startswith("attachment")
        if response.get("Content-Type", "").startswith("text/html") and not downloaded:
            html_pages += 1
            assert inline_code(response.content) == [], where
    if case.role != "anonymous":
        assert html_pages or not url.startswith("/admin/"), f"{key}: no page was rendered"


# --- CSRF --------------------------------------------------------------------------------


def database_state() -> dict[str, list[tuple]]:
    """Every row of every table, sessions included (a refused logout keeps its session)."""
    return {
        model._meta.label: list(model._base_manager.order_by("pk").values_list())
        for model in apps.get_models()
    }


def refused_by_csrf(response) -> bool:
    templates = {template.name for template in response.templates}
    return response.status_code == 403 and "403_csrf.html" in templates


def csrf_pair() -> tuple[str, str]:
    """(cookie secret, form token), as a page the browser loaded would hand out."""
    request = RequestFactory().get("/")
    token = get_token(request)
    return request.META["CSRF_COOKIE"], token


@pytest.mark.django_db
@pytest.mark.parametrize("key", route_keys())
def test_unsafe_methods_without_a_csrf_token_are_refused_and_change_nothing(key, settings):
    case = CASES[key]
    world = build(case.role)
    url = case.url(world)
    client = Client(enforce_csrf_checks=True)
    if world.actor.is_authenticated:
        client.force_login(world.actor)
    before = database_state()
    for method in UNSAFE_METHODS:
        send = getattr(client, method)
        response = send(url, case.data) if method == "post" else send(url)
        where = f"{method.upper()} {url} as {case.role}: {response.status_code}"
        assert refused_by_csrf(response), where
    # One comparison after all four (reading every table is most of this test's time).
    assert database_state() == before, f"{url} without a token changed the database"

    # The same POST with a valid token gets past CSRF to a view that lets this person in.
    secret, token = csrf_pair()
    client.cookies[settings.CSRF_COOKIE_NAME] = secret
    response = client.post(url, {**case.data, "csrfmiddlewaretoken": token})
    where = f"POST {url} with a token as {case.role}: {response.status_code}"
    assert not refused_by_csrf(response), where
    if case.refusal is not None:  # nobody may: the view's own refusal, not CSRF's
        assert response.status_code == case.refusal, where
        return
    assert response.status_code not in (403, 404), where
    assert "/login/" not in response.get("Location", ""), where
