"""The shared XSS corpus through every place a person can type, out through every page
that shows it.

tests/forum/test_xss_corpus.py proves the stored HTML is safe; this file proves the
pages are. Each payload is entered through the real write path (forum.publishing,
moderation.actions and the other services the views call), then the pages that show it
are rendered by the real views and parsed whole with html5lib
(tests.xss_oracle.find_executable_page): nothing executable may appear that the site did
not put there itself. WebSocket payloads are checked with their builders
(forum.realtime.message_payload, the session welcome frame).

Chat messages take the whole corpus here, as replies do in test_xss_corpus.py (stored,
then on the thread's pages). Every other place takes its own share of it, fixed by
position (payload i goes to place i mod the number of places), so every payload is tried
in at least three places and each place sees a spread of the corpus; sign-up, where a
refused handle is shown again, takes every 50th. Every batch starts with a marker that
must then be found on the page, so a page that stopped showing the text cannot pass.
"""

from datetime import time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from forum import (
    accountability,
    conversations,
    mentoring,
    notify,
    page_cache,
    publishing,
    realtime,
    selectors,
)
from forum.models import (
    ChatMessage,
    ChatRoom,
    LiveSession,
    Membership,
    Notification,
    Post,
    Thread,
    User,
)
from forum.views.sessions import UPCOMING_LIMIT
from moderation import actions
from moderation.models import ModerationLogEntry, QueueItem
from tests.conftest import join, make_group, make_user
from tests.permissions_world import lift_limits
from tests.xss_oracle import (
    batched,
    find_executable_html,
    find_executable_page,
    load_payloads,
)

pytestmark = pytest.mark.django_db

PLACES = (
    "thread_title", "edit", "chat_edit", "bio", "room_name", "session", "reading",
    "welcome", "flag", "moderator_note", "sanction", "appeal", "notification", "goal",
    "mentoring", "conversation_request", "context_note", "group", "search",
)  # fmt: skip
MAX_REPORTED = 10


@pytest.fixture(scope="module")
def payloads() -> list[str]:
    return load_payloads()


def share_of(payloads: list[str], place: str) -> list[str]:
    return payloads[PLACES.index(place) :: len(PLACES)]


def test_every_payload_has_a_place_besides_posts_and_chat(payloads):
    shares = [share_of(payloads, place) for place in PLACES]
    assert sum(len(share) for share in shares) == len(payloads)
    assert sorted(p for share in shares for p in share) == sorted(payloads)


class Pages:
    """Renders pages for one reader, collecting what the oracle finds on them."""

    def __init__(self, reader: User | None = None) -> None:
        self.client = Client()
        if reader is not None:
            self.client.force_login(reader)
        self.problems: list[str] = []
        self.texts: list[str] = []

    def check(self, url: str, *, status: int = 200) -> str:
        response = self.client.get(url)
        assert response.status_code == status, (url, response.status_code)
        html = response.content.decode()
        for problem in find_executable_page(html):
            self.problems.append(f"{url}: {problem}")
        self.texts.append(html)
        return html

    def check_fragment(self, html: str, *, what: str) -> None:
        for problem in find_executable_html(html):
            self.problems.append(f"{what}: {problem}")
        self.texts.append(html)

    def assert_clean(self, *, markers: list[str]) -> None:
        assert self.problems == [], "\n".join(self.problems[:MAX_REPORTED])
        shown = "".join(self.texts)
        missing = [marker for marker in markers if marker not in shown]
        assert missing == [], f"not shown anywhere checked: {missing[:MAX_REPORTED]}"


class Writer:
    """Writes payloads in marked batches; a refused batch is retried payload by payload,
    and a payload refused on its own must be refused with a field error, never a crash."""

    def __init__(self, place: str, *, max_chars: int, separator: str = "\n\n", size: int = 20):
        self.place = place
        self.max_chars = max_chars
        self.separator = separator
        self.size = size
        self.markers: list[str] = []
        self.refused: list[tuple[str, dict]] = []

    def _marked(self, batch: list[str]) -> tuple[str, str]:
        marker = f"xssmark{self.place.replace('_', '')}{len(self.markers):04d}"
        return marker, self.separator.join([marker, *batch])

    def write(self, items: list[str], save) -> list:
        saved = []
        room = self.max_chars - 24  # the marker and its separator
        for batch in batched(items, size=self.size, max_chars=room, separator=self.separator):
            # A batch over a limit is retried payload by payload; a payload too long for
            # this place on its own, cut to fit as well.
            attempts = [batch] if len(batch) > 1 else []
            attempts += [[payload] for payload in batch]
            attempts += [[payload[:room]] for payload in batch if len(payload) > room]
            for attempt in attempts:
                marker, text = self._marked(attempt)
                try:
                    saved.append(save(text))
                except ValidationError as error:
                    if len(attempt) == 1:
                        self.refused.append((attempt[0], error.message_dict))
                    continue
                self.markers.append(marker)
                if attempt is batch:
                    break
        return saved

    def assert_mostly_accepted(self, total: int) -> None:
        """Refusals are field errors; beyond payloads too long for the place, rare."""
        for payload, errors in self.refused:
            assert errors and all(errors.values()), (payload, errors)
        room = self.max_chars - 24
        other = [(p, e) for p, e in self.refused if len(" ".join(p.split())) <= room]
        assert len(other) < 0.05 * total, other[:MAX_REPORTED]


class World:
    def __init__(self) -> None:
        self.group = make_group("open-circle")
        self.leader = make_user("lighthouse")
        self.river = make_user("river")
        self.meadow = make_user("meadow")
        self.moderator = make_user("warden", is_site_moderator=True)
        join(self.leader, self.group, Membership.Role.LEADER)
        join(self.river, self.group)
        join(self.meadow, self.group)
        self.room = ChatRoom.objects.create(
            group=self.group, name="General", slug="general", is_default=True
        )

    def thread(self, title: str = "A thread", body: str = "Opening post.") -> Thread:
        return publishing.publish_thread(
            author=self.river, group=self.group, title=title, body=body
        )


@pytest.fixture
def world(settings) -> World:
    lift_limits(settings)
    settings.KINSHIP_CHAT_HISTORY = 1_000
    return World()


def _page_urls(url: str, count: int, per_page: int) -> list[str]:
    return [f"{url}?page={n}" for n in range(1, (count - 1) // per_page + 2)]


# --- the whole corpus ------------------------------------------------------------------------


def test_every_payload_as_a_chat_message_is_safe_on_the_room_page_and_socket(payloads, world):
    writer = Writer("chat", max_chars=publishing.CHAT_MAX)
    counter = iter(range(10**6))
    writer.write(
        payloads,
        lambda text: publishing.publish_chat_message(
            author=world.meadow, room=world.room, body=text, client_id=f"c{next(counter)}"
        )[0],
    )
    writer.assert_mostly_accepted(len(payloads))
    pages = Pages(world.river)
    pages.check(world.room.get_absolute_url())
    for message in ChatMessage.objects.filter(room=world.room).select_related("author"):
        payload = realtime.message_payload(message)
        pages.check_fragment(payload["html"], what=f"socket payload of message {message.pk}")
    pages.assert_clean(markers=writer.markers)


# --- a share of the corpus in every other place ----------------------------------------------


def test_thread_titles_and_opening_posts(payloads, world):
    share = share_of(payloads, "thread_title")
    writer = Writer("thread_title", max_chars=publishing.TITLE_MAX, separator=" ")
    threads = writer.write(share, lambda text: world.thread(title=text, body=text))
    writer.assert_mostly_accepted(len(share))
    pages = Pages(world.meadow)
    group_url = world.group.get_absolute_url()
    for url in _page_urls(group_url, len(threads), selectors.THREADS_PER_PAGE):
        pages.check(url)
    for thread in threads[:: max(1, len(threads) // 5)]:
        pages.check(thread.get_absolute_url())
    for html in Post.objects.filter(thread__in=threads, parent=None).values_list("html", flat=True):
        pages.check_fragment(html, what="an opening post")
    for marker in writer.markers[:: max(1, len(writer.markers) // 5)]:
        pages.check(reverse("search") + f"?q={marker}")
    pages.check(reverse("home"))
    pages.assert_clean(markers=writer.markers)


def test_post_edits(payloads, world):
    share = share_of(payloads, "edit")
    thread = world.thread()
    writer = Writer("edit", max_chars=publishing.POST_MAX)

    def edit(text: str) -> Post:
        post = publishing.publish_reply(author=world.meadow, thread=thread, body="First words.")
        return publishing.edit_post(editor=world.meadow, post=post, body=text)

    edited = writer.write(share, edit)
    writer.assert_mostly_accepted(len(share))
    pages = Pages(world.meadow)
    pages.check(thread.get_absolute_url())
    for post in edited[:: max(1, len(edited) // 5)]:  # history, quoted in a reply, removal
        pages.check(reverse("post_history", kwargs={"post_id": post.pk}))
        pages.check(reverse("reply", args=[world.group.slug, thread.pk]) + f"?parent={post.pk}")
        pages.check(reverse("post_remove", kwargs={"post_id": post.pk}))
    pages.assert_clean(markers=writer.markers)


def test_chat_edits(payloads, world):
    share = share_of(payloads, "chat_edit")
    writer = Writer("chat_edit", max_chars=publishing.CHAT_MAX)
    counter = iter(range(10**6))

    def edit(text: str) -> ChatMessage:
        message, _new = publishing.publish_chat_message(
            author=world.meadow, room=world.room, body="First words.", client_id=f"e{next(counter)}"
        )
        return publishing.edit_chat_message(editor=world.meadow, message=message, body=text)

    edited = writer.write(share, edit)
    writer.assert_mostly_accepted(len(share))
    pages = Pages(world.river)
    pages.check(world.room.get_absolute_url())
    for message in edited:
        pages.check_fragment(realtime.message_payload(message)["html"], what="edited message")
    pages.assert_clean(markers=writer.markers)


def test_bios(payloads, world):
    share = share_of(payloads, "bio")
    writer = Writer("bio", max_chars=publishing.BIO_MAX)
    reader, moderator = Pages(world.meadow), Pages(world.moderator)

    def save(text: str) -> User:
        user = publishing.update_profile(
            user=world.river, bio=text, recovery_date=None, recovery_date_visibility="only_me"
        )
        reader.check(reverse("profile", args=[world.river.handle]))
        return user

    writer.write(share, save)
    writer.assert_mostly_accepted(len(share))
    moderator.check(reverse("moderation:member", args=[world.river.handle]))
    reader.assert_clean(markers=writer.markers)
    moderator.assert_clean(markers=[])


def test_room_names(payloads, world):
    share = share_of(payloads, "room_name")
    writer = Writer("room_name", max_chars=publishing.ROOM_NAME_MAX, separator=" ")
    rooms = writer.write(
        share,
        lambda text: publishing.save_room(
            actor=world.leader, group=world.group, room=None, name=text, state="open"
        ),
    )
    writer.assert_mostly_accepted(len(share))
    pages = Pages(world.meadow)
    pages.check(reverse("rooms", args=[world.group.slug]))
    for room in rooms[:: max(1, len(rooms) // 5)]:
        pages.check(room.get_absolute_url())
    pages.assert_clean(markers=writer.markers)


def _schedule(world: World, *, title: str = "Evening share", topic: str = "", welcome: str = ""):
    [session] = publishing.schedule_session(
        actor=world.leader,
        group=world.group,
        plan=publishing.SessionPlan(
            title=title,
            topic=topic,
            welcome=welcome,
            starts_on=timezone.localdate() + timedelta(days=3),
            start_time=time(18),
            end_time=time(19),
            time_zone="UTC",
        ),
    )
    return session


def test_session_titles_and_topics(payloads, world):
    share = share_of(payloads, "session")
    pages = Pages(world.meadow)
    scheduled: list = []

    def schedule(**fields):
        session = _schedule(world, **fields)
        pages.check_fragment(session.topic_html, what=f"topic of session {session.pk}")
        scheduled.append(session)
        if len(scheduled) == UPCOMING_LIMIT:  # all on the list page: check it, make room
            flush()
        return session

    def flush():
        pages.check(reverse("sessions", args=[world.group.slug]))
        pages.check(scheduled[-1].get_absolute_url())
        LiveSession.objects.filter(pk__in=[s.pk for s in scheduled]).delete()
        scheduled.clear()

    titles = Writer("session_title", max_chars=publishing.SESSION_TITLE_MAX, separator=" ")
    titles.write(share, lambda text: schedule(title=text))
    topics = Writer("session_topic", max_chars=publishing.SESSION_TOPIC_MAX)
    topics.write(share, lambda text: schedule(topic=text))
    flush()
    titles.assert_mostly_accepted(len(share))
    topics.assert_mostly_accepted(len(share))
    pages.assert_clean(markers=titles.markers + topics.markers)


def test_readings(payloads, world):
    share = share_of(payloads, "reading")
    titles = Writer("reading_title", max_chars=publishing.SCRIPT_TITLE_MAX, separator=" ")
    titles.write(
        share,
        lambda text: publishing.save_script(
            actor=world.leader, group=world.group, title=text, text="Words."
        ),
    )
    texts = Writer("reading_text", max_chars=publishing.SCRIPT_TEXT_MAX)
    numbers = iter(range(10**6))
    scripts = texts.write(
        share,
        lambda text: publishing.save_script(
            actor=world.leader, group=world.group, title=f"Reading {next(numbers)}", text=text
        ),
    )
    titles.assert_mostly_accepted(len(share))
    texts.assert_mostly_accepted(len(share))
    pages = Pages(world.leader)
    pages.check(reverse("session_scripts", args=[world.group.slug]))
    for script in scripts:  # live.post_reading copies this HTML into the session's room
        pages.check_fragment(script.html, what=f"reading {script.pk}")
    pages.assert_clean(markers=titles.markers + texts.markers)


def test_session_welcomes(payloads, world):
    share = share_of(payloads, "welcome")
    writer = Writer("welcome", max_chars=publishing.SESSION_WELCOME_MAX)
    sessions = writer.write(share, lambda text: _schedule(world, welcome=text))
    writer.assert_mostly_accepted(len(share))
    pages = Pages(world.meadow)
    for session in sessions:
        pages.check(session.get_absolute_url())
        # What the consumer sends a newcomer: {"type": "welcome", "html": welcome_html}.
        pages.check_fragment(session.welcome_html, what=f"welcome of session {session.pk}")
    pages.assert_clean(markers=writer.markers)


def test_flag_details(payloads, world):
    share = share_of(payloads, "flag")
    thread = world.thread()
    writer = Writer("flag", max_chars=1_000)

    def flag(text: str):
        post = publishing.publish_reply(author=world.river, thread=thread, body="Some words.")
        return actions.flag(flagger=world.meadow, obj=post, reason="other", details=text)

    flags = writer.write(share, flag)
    writer.assert_mostly_accepted(len(share))
    pages = Pages(world.moderator)
    pages.check(reverse("moderation:queue"))
    for item_id in {made.item_id for made in flags}:
        pages.check(reverse("moderation:item", args=[item_id]))
    pages.assert_clean(markers=writer.markers)


def test_moderator_notes(payloads, world):
    share = share_of(payloads, "moderator_note")
    writer = Writer("moderator_note", max_chars=publishing.MODERATION_TEXT_MAX)
    writer.write(
        share,
        lambda text: actions.add_note(
            actor=world.moderator, member=world.river, group=None, text=text
        ),
    )
    writer.assert_mostly_accepted(len(share))
    pages = Pages(world.moderator)
    pages.check(reverse("moderation:member", args=[world.river.handle]))
    pages.assert_clean(markers=writer.markers)


def _warn(world: World, *, reason: str = "Unkind words.", message: str = ""):
    return actions.sanction_member(
        actor=world.moderator, member=world.river, kind="warning", group=world.group,
        reason=reason, message=message,
    )  # fmt: skip


def test_sanction_reasons_and_messages(payloads, world):
    share = share_of(payloads, "sanction")
    reasons = Writer("sanction_reason", max_chars=publishing.MODERATION_TEXT_MAX)
    reasons.write(share, lambda text: _warn(world, reason=text))
    messages = Writer("sanction_message", max_chars=publishing.MODERATION_TEXT_MAX)
    messages.write(share, lambda text: _warn(world, message=text))
    reasons.assert_mostly_accepted(len(share))
    messages.assert_mostly_accepted(len(share))
    member, moderator = Pages(world.river), Pages(world.moderator)
    member.check(reverse("moderation:mine"))
    member.check(reverse("notifications"))
    moderator.check(reverse("moderation:member", args=[world.river.handle]))
    member.assert_clean(markers=reasons.markers + messages.markers)
    moderator.assert_clean(markers=reasons.markers)


def test_appeals(payloads, world):
    share = share_of(payloads, "appeal")
    writer = Writer("appeal", max_chars=publishing.MODERATION_TEXT_MAX)

    def appeal(text: str):
        _warn(world)
        entry = ModerationLogEntry.objects.filter(member_id=world.river.pk).latest("pk")
        return actions.appeal(member=world.river, entry=entry, text=text)

    appeals = writer.write(share, appeal)
    writer.assert_mostly_accepted(len(share))
    member, moderator = Pages(world.river), Pages(world.moderator)
    member.check(reverse("moderation:mine"))
    moderator.check(reverse("moderation:queue"))
    for item in QueueItem.objects.filter(appeal__in=appeals):
        moderator.check(reverse("moderation:item", args=[item.pk]))
    member.assert_clean(markers=writer.markers)
    moderator.assert_clean(markers=writer.markers)


def test_notification_texts(payloads, world):
    share = share_of(payloads, "notification")
    writer = Writer("notification", max_chars=300, separator=" ")
    notes = writer.write(
        share,
        lambda text: notify.notify(
            recipient=world.river, kind=Notification.Kind.MODERATION, group=world.group, text=text
        ),
    )
    assert all(notes)
    pages = Pages(world.river)
    for url in _page_urls(reverse("notifications"), len(notes), 30):
        pages.check(url)
    pages.assert_clean(markers=writer.markers)


def test_goal_titles(payloads, world):
    share = share_of(payloads, "goal")
    writer = Writer("goal", max_chars=publishing.GOAL_TITLE_MAX, separator=" ")
    pages = Pages(world.river)
    goals: list = []
    written = iter(range(1, 10**6))

    def save(text: str):
        # GOALS_MAX at most: once there are that many they are rewritten in turn, and each
        # full round is checked on the page before the next begins.
        full = len(goals) == accountability.GOALS_MAX
        goal = accountability.save_goal(
            owner=world.river, goal=goals[0] if full else None, title=text, cadence="daily",
            weekly_target=None, visibility="only_me",
        )  # fmt: skip
        if full:
            goals.pop(0)
        goals.append(goal)
        if next(written) % accountability.GOALS_MAX == 0:
            pages.check(reverse("recovery"))
        return goal

    writer.write(share, save)
    writer.assert_mostly_accepted(len(share))
    pages.check(reverse("recovery"))
    pages.assert_clean(markers=writer.markers)


def test_mentoring_notes_and_profiles(payloads, settings):
    lift_limits(settings)
    from tests.forum.test_mentoring import build_world

    mentoring_world = build_world()
    share = share_of(payloads, "mentoring")
    notes = Writer("mentor_note", max_chars=mentoring.NOTE_MAX)
    mentee_numbers = iter(range(10**6))
    mentor_pages = Pages(mentoring_world.mentor)

    def ask(text: str):
        mentee = make_user(f"mentee{next(mentee_numbers)}")
        join(mentee, mentoring_world.group)
        made = mentoring.request_mentor(
            mentee=mentee, mentor=mentoring_world.mentor, group=mentoring_world.group, note=text
        )
        mentor_pages.check(made.get_absolute_url())
        mentoring.decline(mentor=mentoring_world.mentor, mentorship=made)
        return made

    notes.write(share, ask)
    experience = Writer("mentor_experience", max_chars=mentoring.EXPERIENCE_MAX)
    reader = Pages(mentoring_world.mentee)

    def describe(text: str):
        profile = mentoring.save_profile(
            user=mentoring_world.mentor, experience=text, approaches=["smart"],
            availability="Evenings", languages="English",
        )  # fmt: skip
        reader.check(reverse("mentors"))
        return profile

    experience.write(share, describe)
    notes.assert_mostly_accepted(len(share))
    experience.assert_mostly_accepted(len(share))
    mentor_pages.assert_clean(markers=notes.markers)
    reader.assert_clean(markers=experience.markers)


def test_conversation_requests(payloads, world):
    share = share_of(payloads, "conversation_request")
    writer = Writer("conversation_request", max_chars=publishing.REQUEST_NOTE_MAX)
    starters = iter(range(10**6))

    def ask(text: str):
        starter = make_user(f"starter{next(starters)}")
        join(starter, world.group)
        return conversations.request_conversation(starter=starter, recipient=world.river, note=text)

    made = writer.write(share, ask)
    writer.assert_mostly_accepted(len(share))
    pages = Pages(world.river)
    pages.check(reverse("messages"))
    for conversation in made[:: max(1, len(made) // 5)]:
        pages.check(conversation.get_absolute_url())
    pages.assert_clean(markers=writer.markers)


def test_context_notes(payloads, world):
    share = share_of(payloads, "context_note")
    thread = world.thread()
    writer = Writer("context_note", max_chars=5_000)
    claims = iter(range(10**6))

    def save(text: str):
        note = actions.save_context_note(
            actor=world.moderator, claim=f"Claim number {next(claims)}", correction=text
        )
        post = publishing.publish_reply(author=world.meadow, thread=thread, body="A claim.")
        actions.attach_note(actor=world.moderator, note=note, obj=post)
        return note

    writer.write(share, save)
    writer.assert_mostly_accepted(len(share))
    reader, moderator = Pages(world.river), Pages(world.moderator)
    reader.check(thread.get_absolute_url())
    moderator.check(reverse("moderation:notes"))
    reader.assert_clean(markers=writer.markers[:1])
    moderator.assert_clean(markers=writer.markers)


def test_group_names_descriptions_and_guidelines(payloads, world):
    share = share_of(payloads, "group")
    slugs = iter(range(10**6))

    def save(**fields):
        values = {"name": "A group", "description": "About.", "guidelines": "Be kind."} | fields
        return publishing.save_group(
            actor=world.moderator, group=None, slug=f"xss-{next(slugs)}", kind="mutual_aid",
            visibility="public", join_policy="open", **values,
        )  # fmt: skip

    names = Writer("group_name", max_chars=publishing.GROUP_NAME_MAX, separator=" ")
    groups = names.write(share, lambda text: save(name=text))
    texts = Writer("group_text", max_chars=publishing.GROUP_TEXT_MAX)
    groups += texts.write(share, lambda text: save(description=text, guidelines=text))
    names.assert_mostly_accepted(len(share))
    texts.assert_mostly_accepted(len(share))
    pages = Pages(world.river)
    pages.check(reverse("directory"))
    for group in groups[:: max(1, len(groups) // 5)]:
        pages.check(group.get_absolute_url())
    pages.assert_clean(markers=names.markers + texts.markers)


def test_search_queries_are_reflected_as_text(payloads, world):
    share = share_of(payloads, "search")
    member, visitor = Pages(world.river), Pages()
    for index, batch in enumerate(batched(share, size=5, max_chars=200, separator=" ")):
        pages = member if index % 2 else visitor
        query = " ".join(batch)
        response = pages.client.get(reverse("search"), {"q": query})
        assert response.status_code in {200, 400}, (query, response.status_code)
        for problem in find_executable_page(response.content.decode()):
            pages.problems.append(f"search for {query!r}: {problem}")
    member.assert_clean(markers=[])
    visitor.assert_clean(markers=[])


def test_handles_typed_at_sign_up_come_back_as_text(payloads, settings, db):
    # Handles allow letters, digits, "_" and "-" only (tests/forum/test_xss_corpus.py); the
    # refused handle is shown again in the form, which is where it could do harm.
    lift_limits(settings)
    pages = Pages()
    for payload in payloads[::50]:
        response = pages.client.post(
            reverse("signup"),
            {"handle": payload, "email": "new@example.test", "password1": "quiet-harbour-5521",
             "password2": "quiet-harbour-5521"},
        )  # fmt: skip
        assert response.status_code == 200, (payload, response.status_code)
        for problem in find_executable_page(response.content.decode()):
            pages.problems.append(f"sign-up as {payload!r}: {problem}")
    assert not User.objects.exists()
    pages.assert_clean(markers=[])


def test_the_page_oracle_sees_markup_that_got_through(world):
    # The control: the same pages, with a post whose stored HTML skipped the sanitiser.
    thread = world.thread()
    post = publishing.publish_reply(author=world.meadow, thread=thread, body="Kind words.")
    pages = Pages(world.river)
    pages.check(thread.get_absolute_url())
    assert pages.problems == []
    Post.objects.filter(pk=post.pk).update(
        html='<img src=x onerror=alert(1)><a href="javascript:alert(2)">x</a>'
        "<script>alert(3)</script>"
    )
    page_cache.thread_changed(thread.pk)  # written around the write path, which would do it
    pages.check(thread.get_absolute_url())
    assert len(pages.problems) == 4, pages.problems  # the img, its handler, the URL, the script
