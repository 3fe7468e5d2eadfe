"""The search page (/search/): results as members meet them, and bad input never a 500."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from forum import publishing
from forum.models import ChatRoom
from tests.conftest import join, make_group, make_user
from tests.permissions_world import lift_limits
from tests.xss_oracle import assert_no_executable_html

URL = reverse("search")
WORD = "lighthouse"


@pytest.fixture(autouse=True)
def _limits(settings):
    lift_limits(settings)
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "chat": (10**9, 60)}


@pytest.fixture
def town(db):
    public, private = make_group("open-circle"), make_group("womens-circle", private=True)
    river, meadow = make_user("river"), make_user("meadow")
    for group in (public, private):
        join(river, group)
    join(meadow, public)
    publishing.publish_thread(
        author=meadow, group=public, title=f"The {WORD} keeper", body=f"A {WORD} by the sea."
    )
    publishing.publish_thread(
        author=river, group=private, title=f"Our {WORD} secret", body=f"Private {WORD} words."
    )
    return type(
        "Town", (), {"public": public, "private": private, "river": river, "meadow": meadow}
    )


def page(client, **params) -> str:
    response = client.get(URL, params)
    assert response.status_code == 200
    return response.content.decode()


def test_the_empty_page_explains_and_shows_no_error(client, town):
    body = page(client)
    assert "Search the discussions of public groups" in body
    assert 'role="alert"' not in body


def test_a_member_finds_public_and_private_with_links(client, town):
    client.force_login(town.river)
    body = page(client, q=WORD)
    assert f"The <mark>{WORD}</mark> keeper" in body
    assert f"Our <mark>{WORD}</mark> secret" in body
    assert 'href="/g/womens-circle/' in body
    assert "Open Circle" in body and "Womens Circle" in body  # the group of each hit
    assert "meadow" in body and "river" in body  # authors by handle, never an e-mail
    assert "@example.test" not in body


@pytest.mark.parametrize("who", ["anonymous", "outsider", "public member"])
def test_outsiders_never_see_the_private_group(client, town, who):
    user = {"anonymous": None, "outsider": make_user("stranger"), "public member": town.meadow}[who]
    if user is not None:
        client.force_login(user)
    body = page(client, q=f"{WORD} secret")
    assert "secret</" not in body and "Womens Circle" not in body
    assert "Nothing found" in body
    body = page(client, q=WORD)
    assert f"The <mark>{WORD}</mark> keeper" in body
    assert "Womens Circle" not in body and "Private" not in body


def test_the_private_group_filter_is_a_404_for_outsiders(client, town):
    response = client.get(URL, {"q": WORD, "group": "womens-circle"})
    assert response.status_code == 404
    assert b"Womens Circle" not in response.content and b"womens-circle" not in response.content
    client.force_login(make_user("stranger"))
    assert client.get(URL, {"q": WORD, "group": "womens-circle"}).status_code == 404
    for slug in ("no-such-group", "a\x00b", "../admin", "x" * 500):
        assert client.get(URL, {"q": WORD, "group": slug}).status_code == 404


def test_searching_one_group(client, town):
    client.force_login(town.river)
    body = page(client, q=WORD, group="womens-circle")
    assert f"Our <mark>{WORD}</mark> secret" in body and "keeper" not in body
    assert '<option value="womens-circle" selected>' in body


def test_a_public_group_box_for_a_non_member(client, town):
    """The group page's box searches a public group the visitor is not in."""
    group_page = client.get(town.public.get_absolute_url()).content.decode()
    assert 'name="group" value="open-circle"' in group_page
    body = page(client, q=WORD, group="open-circle")
    assert f"The <mark>{WORD}</mark> keeper" in body
    assert '<option value="open-circle" selected>' in body


def test_every_page_has_the_search_box(client, town):
    assert f'action="{URL}"' in client.get(reverse("home")).content.decode()
    client.force_login(town.river)
    assert f'action="{URL}"' in client.get(reverse("directory")).content.decode()


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"q": ""}, "Type a word or two"),
        ({"q": "a"}, "at least 2"),
        ({"q": "x" * 201}, "at most 200 characters"),
        ({"q": "\x00\x07\u202e"}, "Type a word or two"),
        ({"q": "-sad"}, "not only what to leave out"),
        ({"q": WORD, "date_from": "yesterday"}, "Enter a valid date"),
        ({"q": WORD, "date_from": "2025-02-30"}, "Enter a valid date"),
        ({"q": WORD, "date_from": "2025-05-02", "date_to": "2025-05-01"}, "before the start"),
        ({"q": WORD, "date_to": "9999-12-31"}, "Choose a date between"),
        ({"q": WORD, "kind": "secrets"}, "Select a valid choice"),
        ({"q": WORD, "author": "<script>"}, "A handle is"),
        ({"q": WORD, "author": "river\x00"}, "Null characters are not allowed"),
        ({"q": WORD, "group": ""}, "keeper"),
        ({"q": WORD, "page": "-3"}, "keeper"),
        ({"q": WORD, "page": "lots"}, "keeper"),
    ],
)
def test_bad_input_gets_a_clear_message_never_a_500(client, town, params, says):
    body = page(client, **params)
    assert says in body


def test_injected_markup_is_shown_escaped_with_the_match_marked(client, town):
    thread = town.public.threads.get()
    payloads = ["<img src=x onerror=alert(1)>", '"><svg/onload=alert(document.domain)>']
    for payload in payloads:
        publishing.publish_reply(
            author=town.meadow, thread=thread, body=f"{payload} {WORD} {payload}"
        )
    body = page(client, q=WORD, kind="posts")
    start, end = body.index('<ol class="search-hits">'), body.index("</ol>")
    hits = body[start:end]
    assert_no_executable_html(hits, context="search results")
    assert "&lt;img src=x onerror=alert(1)&gt;" in hits
    assert hits.count(f"<mark>{WORD}</mark>") >= 3


def test_chat_hits_for_members_link_to_the_message(client, town):
    room = ChatRoom.objects.create(group=town.private, slug="general", name="General")
    room = ChatRoom.objects.select_related("group").get(pk=room.pk)
    message, _ = publishing.publish_chat_message(
        author=town.river, room=room, body=f"{WORD} tonight", client_id="one"
    )
    client.force_login(town.river)
    body = page(client, q=WORD, kind="chat")
    assert f'href="/g/womens-circle/chat/general/#msg-{message.pk}"' in body
    assert "Chat: General" in body


def test_content_settings_hide_an_excerpt(client, town):
    newcomer = make_user("fern")  # new members hide "use" details by default
    join(newcomer, town.public)
    publishing.publish_reply(
        author=town.meadow,
        thread=town.public.threads.get(),
        body=f"Details of my {WORD} relapse",
        cw_categories=["use"],
    )
    client.force_login(newcomer)
    body = page(client, q=f"{WORD} relapse")
    assert "Hidden by your content settings" in body
    assert "Details of my" not in body


def test_anonymous_visitors_are_told_what_they_search(client, town):
    body = page(client, q=WORD)
    assert "You are searching public groups" in body
    client.force_login(town.river)
    assert "You are searching public groups" not in page(client, q=WORD)


def test_pages_keep_the_filters(client, town):
    thread = town.public.threads.get()
    for n in range(25):
        publishing.publish_reply(author=town.meadow, thread=thread, body=f"{WORD} {n}")
    body = page(client, q=WORD, kind="posts", author="meadow")
    assert "q=lighthouse&amp;kind=posts&amp;author=meadow&amp;page=2" in body
    second = page(client, q=WORD, kind="posts", author="meadow", page="2")
    assert "Better matches" in second
    assert "No more results" in page(client, q=WORD, kind="posts", page="40")


def _queries(client) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        body = page(client, q=WORD)
    return len(captured), body


def test_the_page_costs_no_more_queries_for_many_hits(client, town):
    """A query per kind of hit on the page at most: never one per hit."""
    room = ChatRoom.objects.create(group=town.public, slug="general", name="General")
    room = ChatRoom.objects.select_related("group").get(pk=room.pk)
    thread = town.public.threads.get()

    def more(n):
        for i in range(n):
            publishing.publish_reply(author=town.meadow, thread=thread, body=f"{WORD} r{i}")
            publishing.publish_chat_message(
                author=town.meadow, room=room, body=f"{WORD} c{i}", client_id=f"c{n}-{i}"
            )

    client.force_login(town.river)
    more(1)
    page(client, q="warm")  # the first request of a session costs a few extra queries
    few, body = _queries(client)
    assert all(f"search-hit-{kind}" in body for kind in ("thread", "post", "chat"))
    more(15)
    many, body = _queries(client)
    assert body.count('<li class="search-hit ') == 20
    assert many <= few


def test_searching_too_fast_is_refused_kindly_per_member_and_per_address(client, town, settings):
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "search": (2, 60)}
    for _ in range(2):
        assert "The lighthouse keeper" in page(client, q=WORD)
    refused = page(client, q=WORD)
    assert "faster than Kinship allows" in refused and "The lighthouse keeper" not in refused
    client.force_login(town.river)  # a member's allowance is their own
    assert "The lighthouse keeper" in page(client, q=WORD)
