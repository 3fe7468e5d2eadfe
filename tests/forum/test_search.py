"""forum.search: ranking, filters, excerpts and, above all, what never leaks.

Runs on SQLite (the icontains fallback) and on PostgreSQL (full-text search with the GIN
indexes of migration 0014): DATABASE_URL=postgres://postgres@127.0.0.1:5432/search_s.
"""

import contextlib
import html
from datetime import date, timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from forum import engagement, live, memberships, publishing, search
from forum.models import ChatMessage, ChatRoom, LiveSession, Membership, Post, Thread
from moderation import actions
from tests.conftest import join, make_group, make_user
from tests.permissions_world import lift_limits
from tests.xss_oracle import assert_no_executable_html, corpus_available, load_payloads

WORD = "lighthouse"  # the word every test's content shares; a stem of itself in English


@pytest.fixture(autouse=True)
def _limits(settings):
    lift_limits(settings)
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "chat": (10**9, 60)}


@pytest.fixture
def town(db):
    """A public and a private group; river belongs to both, meadow to the public one."""
    public, private = make_group("open-circle"), make_group("womens-circle", private=True)
    river, meadow = make_user("river"), make_user("meadow")
    leader = make_user("sage")
    for group in (public, private):
        join(river, group)
        join(leader, group, Membership.Role.MODERATOR)
    join(meadow, public)
    return type(
        "Town",
        (),
        {"public": public, "private": private, "river": river, "meadow": meadow, "mod": leader},
    )


def room_of(group, slug="general", **extra) -> ChatRoom:
    room, _ = ChatRoom.objects.get_or_create(
        group=group, slug=slug, defaults={"name": slug.title(), **extra}
    )
    return ChatRoom.objects.select_related("group").get(pk=room.pk)


def say(author, room, body, client_id=None) -> ChatMessage:
    message, _ = publishing.publish_chat_message(
        author=author,
        room=room,
        body=body,
        client_id=client_id or f"c{ChatMessage.objects.count()}",
    )
    return message


def thread_in(group, author, title=f"The {WORD} keeper", body=f"A {WORD} by the sea."):
    return publishing.publish_thread(author=author, group=group, title=title, body=body)


def found(user, query=WORD, **filters) -> set[tuple[str, str]]:
    """(kind, title) of every hit, across pages."""
    hits, page = set(), 1
    while True:
        results = search.search(user, query=query, page=page, **filters)
        hits |= {(hit.kind, hit.title) for hit in results.hits}
        if not results.has_next:
            return hits
        page += 1


def plain(marked) -> str:
    return html.unescape(str(marked).replace("<mark>", "").replace("</mark>", ""))


def texts(user, query=WORD, **filters) -> str:
    """Every hit's title and excerpt as plain text, across the first page."""
    results = search.search(user, query=query, **filters)
    return " ".join(plain(f"{hit.title_html} {hit.excerpt}") for hit in results.hits)


# --- the basics ---------------------------------------------------------------------------


def test_finds_threads_posts_and_chat(town):
    thread = thread_in(town.public, town.meadow)
    publishing.publish_reply(author=town.meadow, thread=thread, body=f"The {WORD} is lit.")
    say(town.meadow, room_of(town.public), f"Saw the {WORD} tonight")
    kinds = {kind for kind, _title in found(town.river)}
    assert kinds == {"thread", "post", "chat"}


def test_links_lead_to_the_post_and_the_message(town):
    thread = thread_in(town.public, town.meadow)
    reply = publishing.publish_reply(author=town.meadow, thread=thread, body=f"My {WORD}.")
    message = say(town.meadow, room_of(town.public), f"{WORD} again")
    urls = {hit.url for hit in search.search(town.river, query=WORD).hits}
    opening = Post.objects.get(thread=thread, parent__isnull=True)
    assert f"/g/open-circle/t/{thread.pk}/#post-{opening.pk}" in urls
    assert f"/g/open-circle/t/{thread.pk}/p/{reply.pk}/#post-{reply.pk}" in urls
    assert f"/g/open-circle/chat/general/#msg-{message.pk}" in urls
    assert f"/g/open-circle/t/{thread.pk}/" in urls


def test_more_matches_rank_first_then_newer(town):
    thread = thread_in(town.public, town.meadow, title="Evening notes", body="Nothing here.")
    once = publishing.publish_reply(author=town.meadow, thread=thread, body=f"One {WORD}.")
    thrice = publishing.publish_reply(
        author=town.meadow,
        thread=thread,
        body=f"{WORD}, {WORD} and another {WORD}: the {WORD} coast has many.",
    )
    newer_once = publishing.publish_reply(author=town.meadow, thread=thread, body=f"A {WORD}.")
    Post.objects.filter(pk=once.pk).update(created_at=timezone.now() - timedelta(days=3))
    hits = search.search(town.river, query=WORD, kind="posts").hits
    order = [hit.url.rsplit("-", 1)[1] for hit in hits]
    assert order == [str(thrice.pk), str(newer_once.pk), str(once.pk)]


def test_every_word_must_appear_and_a_minus_leaves_one_out(town):
    thread = thread_in(town.public, town.meadow, title="Harbour", body="quiet harbour at dawn")
    publishing.publish_reply(author=town.meadow, thread=thread, body="a noisy harbour at night")
    assert len(search.search(town.river, query="harbour dawn", kind="posts").hits) == 1
    results = search.search(town.river, query="harbour -noisy", kind="posts")
    assert [plain(h.excerpt) for h in results.hits] == ["quiet harbour at dawn"]


def test_pages_of_twenty(town):
    thread = thread_in(town.public, town.meadow, title="Counting", body="none")
    for n in range(search.PER_PAGE + 3):
        publishing.publish_reply(author=town.meadow, thread=thread, body=f"{WORD} number {n}")
    first = search.search(town.river, query=WORD, kind="posts")
    second = search.search(town.river, query=WORD, kind="posts", page=2)
    assert len(first.hits) == search.PER_PAGE and first.has_next and not first.has_previous
    assert len(second.hits) == 3 and not second.has_next and second.has_previous
    assert {h.url for h in first.hits}.isdisjoint(h.url for h in second.hits)
    assert search.search(town.river, query=WORD, kind="posts", page=9).hits == []


# --- filters ----------------------------------------------------------------------------


def test_filters_by_group_author_kind_and_dates(town):
    thread_in(town.public, town.meadow, title=f"Public {WORD}", body="plain")
    thread_in(town.private, town.river, title=f"Private {WORD}", body="plain")
    say(town.river, room_of(town.private), f"chat {WORD}")
    assert found(town.river, group=town.private) == {
        ("thread", f"Private {WORD}"),
        ("chat", "Chat: General"),
    }
    assert found(town.river, author="MEADOW") == {("thread", f"Public {WORD}")}
    assert found(town.river, author="@meadow") == {("thread", f"Public {WORD}")}
    assert found(town.river, kind="chat") == {("chat", "Chat: General")}
    assert found(town.river, kind="threads") == {
        ("thread", f"Public {WORD}"),
        ("thread", f"Private {WORD}"),
    }
    Thread.objects.filter(title=f"Public {WORD}").update(
        created_at=timezone.now() - timedelta(days=40)
    )
    today = timezone.localdate()
    recent = found(town.river, kind="threads", date_from=today - timedelta(days=7))
    assert recent == {("thread", f"Private {WORD}")}
    older = found(town.river, kind="threads", date_to=today - timedelta(days=30))
    assert older == {("thread", f"Public {WORD}")}
    assert found(town.river, kind="threads", date_from=today, date_to=today) == recent


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"kind": "everything"}, "kind"),
        ({"author": "no spaces allowed"}, "author"),
        ({"author": "<script>"}, "author"),
        ({"date_from": date(2025, 5, 2), "date_to": date(2025, 5, 1)}, "date_to"),
        ({"date_from": date(1, 1, 1)}, "date_from"),
        ({"date_to": date(9999, 12, 31)}, "date_to"),
    ],
)
def test_bad_filters_are_field_errors(town, filters, field):
    with pytest.raises(ValidationError) as refused:
        search.search(town.river, query=WORD, **filters)
    assert field in refused.value.message_dict


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("", "Type a word"),
        ("   \n\t ", "Type a word"),
        ("\x00\x01\u202e", "Type a word"),
        ("a", "at least 2"),
        ('"" -', "Type at least"),
        ("-sad -angry", "not only what to leave out"),
        ("x" * 201, "at most 200"),
    ],
)
def test_bad_queries_say_why(town, query, says):
    with pytest.raises(ValidationError) as refused:
        search.search(town.river, query=query)
    assert says in refused.value.message_dict["q"][0]


def test_control_characters_are_stripped_not_searched(town):
    thread_in(town.public, town.meadow)
    assert search.clean_query("\x00light\u202ehouse\x07 \n  keeper") == "lighthouse keeper"
    assert found(town.river, query=f"{WORD}\x00\x1b") == found(town.river)


def test_odd_queries_never_fail(town):
    thread_in(town.public, town.meadow)
    for query in ['"unclosed', "OR OR", "a & b | !c", "'; DROP TABLE forum_post; --", "((x))", "-"]:
        with contextlib.suppress(ValidationError):  # a clear refusal is fine; a 500 is not
            search.search(town.river, query=query)


# --- excerpts are escaped, matches marked ---------------------------------------------------


def test_excerpt_escapes_markup_and_marks_the_match(town):
    payload = f'<img src=x onerror=alert(1)> {WORD} <script>alert("x")</script>'
    thread = thread_in(town.public, town.meadow, title=f"<b>{WORD}</b>", body="plain")
    publishing.publish_reply(author=town.meadow, thread=thread, body=payload)
    hits = {hit.kind: hit for hit in search.search(town.river, query=WORD).hits}
    excerpt = str(hits["post"].excerpt)
    assert "<script" not in excerpt and "<img" not in excerpt
    assert "&lt;img src=x onerror=alert(1)&gt;" in excerpt
    assert f"<mark>{WORD}</mark>" in excerpt
    assert str(hits["thread"].title_html) == f"&lt;b&gt;<mark>{WORD}</mark>&lt;/b&gt;"
    assert_no_executable_html(excerpt, context="excerpt")


@pytest.mark.skipif(not corpus_available(), reason="the shared XSS corpus is not here")
def test_corpus_payloads_come_out_escaped_with_marks(town):
    thread = thread_in(town.public, town.meadow, title="Payloads", body="plain")
    # Not "<script": PostgreSQL's parser indexes no word after an unclosed script tag.
    payloads = [p for p in load_payloads() if "<" in p and "<script" not in p.lower()][:40]
    for n, payload in enumerate(payloads):
        publishing.publish_reply(
            author=town.meadow, thread=thread, body=f"{payload}\n\n{WORD} {n}\n\n{payload}"
        )
    shown = 0
    for page in (1, 2):
        for hit in search.search(town.river, query=WORD, kind="posts", page=page).hits:
            assert_no_executable_html(str(hit.excerpt), context=hit.url)
            assert f"<mark>{WORD}</mark>" in str(hit.excerpt)
            shown += 1
    assert shown == len(payloads)


def test_excerpt_of_the_whole_corpus_is_never_executable():
    if not corpus_available():
        pytest.skip("the shared XSS corpus is not here")
    for payload in load_payloads():
        plain, ranges = search._from_terms(payload, ["script", "on", "<", "a"])
        assert_no_executable_html(str(search.excerpt_html(plain, ranges)), context=payload)
        marked = f"\x02{payload}\x03 and \x03stray\x02 marker"
        plain, ranges = search._from_headline(marked)
        assert_no_executable_html(str(search.excerpt_html(plain, ranges)), context=payload)


def test_long_text_is_cut_around_the_first_match():
    text = "calm " * 200 + f"the {WORD} here " + "sea " * 200
    text, ranges = search._from_terms(text, [WORD])
    out = str(search.excerpt_html(text, ranges))
    assert out.startswith("… ") and out.endswith(" …")
    assert f"<mark>{WORD}</mark>" in out
    assert len(plain(out)) <= search.EXCERPT_CHARS + 4


def test_stray_markers_keep_the_html_balanced():
    plain, ranges = search._from_headline("a \x03b\x02 c \x02d")
    assert plain == "a b c d"
    assert str(search.excerpt_html(plain, ranges, length=None)) == "a b<mark> c d</mark>"


# --- leaks: private content, moderation, blocks, sessions ---------------------------------


@pytest.fixture
def secrets_(town):
    """A thread, a reply and a chat message in the private group, all with WORD."""
    thread = thread_in(town.private, town.river, title=f"Secret {WORD}", body=f"{WORD} within")
    publishing.publish_reply(author=town.river, thread=thread, body=f"private {WORD} reply")
    say(town.river, room_of(town.private), f"private {WORD} chat")
    return thread


def test_members_and_site_moderators_find_the_private_group(town, secrets_):
    assert found(town.river) == {
        ("thread", f"Secret {WORD}"),
        ("post", f"Secret {WORD}"),
        ("chat", "Chat: General"),
    }
    assert len(found(make_user("warden", is_site_moderator=True))) == 3


@pytest.mark.parametrize("who", ["anonymous", "outsider", "public member"])
def test_private_group_never_shows_to_people_outside_it(town, secrets_, who):
    user = {
        "anonymous": AnonymousUser(),
        "outsider": make_user("stranger"),
        "public member": town.meadow,
    }[who]
    assert found(user) == set()
    assert found(user, query="private secret within") == set()


def test_a_member_who_left_finds_nothing_more(town, secrets_):
    memberships.leave_group(user=town.river, group=town.private)
    assert found(town.river) == set()


def test_a_banned_or_suspended_member_finds_nothing_of_the_private_group(town, secrets_):
    actions.suspend_from_group(
        actor=town.mod,
        member=town.river,
        group=town.private,
        reason="Cooling off",
        duration=timedelta(days=1),
    )
    river = type(town.river).objects.get(pk=town.river.pk)
    assert found(river) == set()
    thread_in(town.public, town.meadow, title=f"Open {WORD}", body="plain")
    assert found(river) == {("thread", f"Open {WORD}")}
    banned = make_user("fern")
    join(banned, town.private)
    actions.ban_member(actor=make_user("warden", is_site_moderator=True), member=banned, reason="x")
    banned = type(banned).objects.get(pk=banned.pk)
    assert found(banned) == {("thread", f"Open {WORD}")}


def test_hidden_removed_and_held_content_never_shows(town):
    thread = thread_in(town.public, town.meadow, title="Plain title", body="opening")
    hidden = publishing.publish_reply(author=town.meadow, thread=thread, body=f"{WORD} hidden")
    removed = publishing.publish_reply(author=town.meadow, thread=thread, body=f"{WORD} gone")
    kept = publishing.publish_reply(author=town.meadow, thread=thread, body=f"{WORD} kept")
    actions.hide_content(actor=town.mod, obj=hidden, reason="Off topic")
    publishing.remove_own_post(actor=town.meadow, post=Post.objects.get(pk=removed.pk))
    actions.add_watched_phrase(
        actor=town.mod, group=town.public, pattern="quarantine", match="word", action="hold"
    )
    held = publishing.publish_reply(author=town.meadow, thread=thread, body=f"{WORD} quarantine")
    assert Post.objects.get(pk=held.pk).hidden_pending_review
    for viewer in (town.river, town.meadow, town.mod):  # not even the author or moderators
        hits = search.search(viewer, query=WORD, kind="posts").hits
        assert [hit.url.rsplit("-", 1)[1] for hit in hits] == [str(kept.pk)]


def test_a_hidden_thread_takes_its_posts_with_it(town):
    thread = thread_in(town.public, town.meadow)
    publishing.publish_reply(author=town.meadow, thread=thread, body=f"{WORD} reply")
    actions.hide_content(actor=town.mod, obj=thread, reason="Off topic")
    assert found(town.river) == set()
    assert found(town.meadow) == set()


def test_removed_and_held_chat_never_shows(town):
    room = room_of(town.public)
    removed = say(town.meadow, room, f"{WORD} removed by a moderator")
    withdrawn = say(town.meadow, room, f"{WORD} withdrawn by its author")
    say(town.meadow, room, f"{WORD} kept")
    actions.remove_chat_message(actor=town.mod, message=removed, reason="No")
    publishing.withdraw_chat_message(author=town.meadow, message=withdrawn)
    actions.add_watched_phrase(
        actor=town.mod, group=town.public, pattern="quarantine", match="word", action="hold"
    )
    held, _ = publishing.publish_chat_message(
        author=town.meadow, room=room, body=f"{WORD} quarantine", client_id="held"
    )
    assert ChatMessage.objects.get(pk=held.pk).removed_at is not None
    assert texts(town.river, kind="chat") == f"Chat: General {WORD} kept"


def test_blocked_members_are_left_out_for_the_blocker_only(town):
    thread_in(town.public, town.meadow, title=f"Meadow's {WORD}", body="plain")
    say(town.meadow, room_of(town.public), f"{WORD} from meadow")
    engagement.block_member(user=town.river, member=town.meadow)
    assert found(town.river) == set()
    assert found(make_user("fern")) == {("thread", f"Meadow's {WORD}")}  # no chat: no member
    assert found(town.mod) != set()


def test_chat_only_from_group_and_session_rooms(town):
    """A room of any other kind (direct conversations) is left out by default."""
    say(town.river, room_of(town.public), f"{WORD} group room")
    other = ChatRoom.objects.create(group=town.public, slug="elsewhere", name="Elsewhere")
    ChatMessage.objects.create(
        room=other, seq=1, version=1, author=town.meadow, client_id="x",
        source=f"{WORD} in another kind of room", html="<p>x</p>",
    )  # fmt: skip
    ChatRoom.objects.filter(pk=other.pk).update(kind="direct")
    assert texts(town.river, kind="chat") == f"Chat: General {WORD} group room"
    assert texts(make_user("warden", is_site_moderator=True), kind="chat").count(WORD) == 1


def test_chat_is_for_members_even_in_public_groups(town):
    say(town.meadow, room_of(town.public), f"{WORD} members only")
    assert found(AnonymousUser(), kind="chat") == set()
    assert found(make_user("stranger"), kind="chat") == set()


# Live sessions: a session room's chat is searchable while its transcript exists.


def _session(town, *, transcript: str, days: int | None = None) -> LiveSession:
    room = ChatRoom.objects.create(
        group=town.public, slug=f"session-{transcript}", name="Evening share",
        kind=ChatRoom.Kind.SESSION,
    )  # fmt: skip
    starts = timezone.now() - timedelta(minutes=5)
    return LiveSession.objects.create(
        group=town.public, room=room, title="Evening share", starts_at=starts,
        ends_at=starts + timedelta(hours=1), leader=town.mod, facilitator=town.mod,
        transcript=transcript, transcript_days=days,
    )  # fmt: skip


def _say_in_session(town, session: LiveSession, body: str) -> ChatMessage:
    room = ChatRoom.objects.select_related("group", "live_session").get(pk=session.room_id)
    return say(town.meadow, room, body)


def test_session_chat_shows_while_running_and_links_to_the_session(town):
    session = _session(town, transcript=LiveSession.Transcript.DELETE)
    message = _say_in_session(town, session, f"{WORD} shared in the session")
    hits = search.search(town.river, query=WORD, kind="chat").hits
    assert [(h.title, h.url) for h in hits] == [
        ("Live session: Evening share", f"{session.get_absolute_url()}#msg-{message.pk}")
    ]


def test_session_chat_is_gone_once_its_transcript_is_deleted(town):
    session = _session(town, transcript=LiveSession.Transcript.DELETE)
    _say_in_session(town, session, f"{WORD} said in the session")
    live.end_session(actor=town.mod, session=session)
    assert found(town.river, kind="chat") == set()


def test_kept_transcript_shows_until_due_even_before_the_sweep(town):
    session = _session(town, transcript=LiveSession.Transcript.KEEP_DAYS, days=7)
    _say_in_session(town, session, f"{WORD} kept a week")
    live.end_session(actor=town.mod, session=session)
    assert found(town.river, kind="chat") == {("chat", "Live session: Evening share")}
    LiveSession.objects.filter(pk=session.pk).update(
        ended_at=timezone.now() - timedelta(days=8)
    )  # due, and the sweep has not run yet
    assert found(town.river, kind="chat") == set()
    live.sweep_sessions()
    assert LiveSession.objects.get(pk=session.pk).transcript_purged_at is not None
    assert found(town.river, kind="chat") == set()


def test_someone_removed_from_a_session_does_not_search_its_chat(town):
    session = _session(town, transcript=LiveSession.Transcript.KEEP)
    _say_in_session(town, session, f"{WORD} in the session")
    live.join_session(user=town.river, session=session)
    live.remove_participant(actor=town.mod, session=session, handle="river", reason="Disruptive")
    assert found(town.river, kind="chat") == set()
    assert found(town.mod, kind="chat") == {("chat", "Live session: Evening share")}


def test_a_cancelled_session_is_not_searched(town):
    session = _session(town, transcript=LiveSession.Transcript.KEEP)
    _say_in_session(town, session, f"{WORD} before the cancel")
    LiveSession.objects.filter(pk=session.pk).update(cancelled_at=timezone.now())
    assert found(town.river, kind="chat") == set()


# --- the same number of queries for any page ------------------------------------------------


def _fill(town, n: int) -> None:
    room = room_of(town.public)
    for i in range(n):
        thread = thread_in(town.public, town.meadow, title=f"{WORD} {i}", body=f"{WORD} {i}")
        publishing.publish_reply(author=town.meadow, thread=thread, body=f"{WORD} reply {i}")
        say(town.meadow, room, f"{WORD} chat {i}", client_id=f"q{i}")


def _queries_for_a_page(town) -> int:
    river = type(town.river).objects.get(pk=town.river.pk)  # nothing remembered
    with CaptureQueriesContext(connection) as captured:
        results = search.search(river, query=WORD)
    assert {hit.kind for hit in results.hits} == {"thread", "post", "chat"}
    return len(captured)


def test_query_count_does_not_grow_with_results(town):
    _fill(town, 2)
    few = _queries_for_a_page(town)
    _fill(town, 12)
    many = _queries_for_a_page(town)
    assert few == many <= 8


# --- PostgreSQL: stemming, and the GIN indexes are used ----------------------------------------


postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL full-text search"
)


@postgres_only
def test_postgres_matches_word_forms_and_marks_them(town):
    thread = thread_in(town.public, town.meadow, title="Walking", body="plain")
    publishing.publish_reply(author=town.meadow, thread=thread, body="She walks every morning.")
    hits = search.search(town.river, query="walking", kind="posts").hits
    assert len(hits) == 1
    assert "<mark>walks</mark>" in str(hits[0].excerpt)


@postgres_only
@pytest.mark.parametrize(
    ("model", "column", "index"),
    [
        (Post, "source", "search_post_source"),
        (Thread, "title", "search_thread_title"),
        (ChatMessage, "source", "search_chat_source"),
    ],
)
def test_postgres_search_uses_the_gin_index(db, model, column, index):
    queryset = search._matching(model.objects.all(), column, WORD, search.parse_terms(WORD))
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan, plan


@postgres_only
@pytest.mark.parametrize(
    "index", ["search_chat_source", "search_post_source", "search_thread_title"]
)
def test_search_indexes_have_no_pending_list_to_flush_while_writers_wait(db, index):
    """A flush, every 12,000 or so chat messages, held a room's writes for 200 ms."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [index])
        (options,) = cursor.fetchone()
    assert "fastupdate=off" in (options or [])
