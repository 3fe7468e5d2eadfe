"""The chat write path at service level: forum.publishing (publish_chat_message,
edit_chat_message, withdraw_chat_message, save_room) and moderation.actions
(remove_chat_message).

Sequence numbers, versions, client ids, the XSS corpus through messages and room
names, and broadcasts that leave the process only after the transaction commits.
"""

import re
import threading
import unicodedata

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.template.loader import render_to_string
from django.urls import resolve

from forum import backends, publishing, realtime
from forum.models import ChatMessage, ChatRoom, Membership
from moderation import actions, ratelimit
from tests.chat_helpers import broadcast_frame
from tests.conftest import join, make_group, make_user
from tests.xss_oracle import batched, find_executable_html, load_payloads

UNLIMITED = 10**9
MAX_REPORTED = 25
CHAT_BATCH = 20
ROOMS_PER_GROUP = 200


class RecordingLayer:
    """Stands in for the channel layer: records what would have been broadcast."""

    def __init__(self, *, fail: bool = False) -> None:
        self.sent: list[tuple[str, dict]] = []
        self.fail = fail

    async def group_send(self, group: str, event: dict) -> None:
        if self.fail:
            raise ConnectionError("the channel layer is down")
        self.sent.append((group, event))

    def frames(self, kind: str | None = None) -> list[dict]:
        frames = [broadcast_frame(event) for _group, event in self.sent]
        return [f for f in frames if kind is None or f["type"] == kind]


@pytest.fixture
def layer(monkeypatch) -> RecordingLayer:
    recording = RecordingLayer()
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: recording)
    return recording


@pytest.fixture
def no_limits(settings):
    settings.KINSHIP_RATE_LIMITS = {k: (UNLIMITED, 60) for k in settings.KINSHIP_RATE_LIMITS}
    return settings


@pytest.fixture
def circle(db, no_limits):
    group = make_group("open-circle")
    river, meadow, sage = make_user("river"), make_user("meadow"), make_user("sage")
    join(river, group)
    join(meadow, group)
    join(sage, group, Membership.Role.LEADER)
    room = ChatRoom.objects.create(group=group, name="General", slug="general")
    return group, room, river, meadow, sage


def send(room, author, body="Hello", client_id=None) -> ChatMessage:
    message, _created = publishing.publish_chat_message(
        author=author, room=room, body=body, client_id=client_id or body[:64]
    )
    return message


def send_then_fail(room, author, body) -> None:
    """Send inside a transaction that then fails, so the message is rolled back."""
    with transaction.atomic():
        send(room, author, body)
        raise RuntimeError("the surrounding work failed")


def fresh(message: ChatMessage) -> ChatMessage:
    return ChatMessage.objects.select_related("room__group").get(pk=message.pk)


def last_seq(room: ChatRoom) -> int:
    return ChatRoom.objects.values_list("last_seq", flat=True).get(pk=room.pk)


# --- sequence numbers and versions ------------------------------------------------------


def test_sequence_numbers_increase_per_room_and_rooms_do_not_share_them(circle):
    group, room, river, meadow, _sage = circle
    other = ChatRoom.objects.create(group=group, name="Evening", slug="evening")
    order = [room, other, room, room, other, room]
    seqs = {room.pk: [], other.pk: []}
    for n, where in enumerate(order):
        message = send(where, river if n % 2 else meadow, f"Message {n}")
        assert message.version == message.seq
        seqs[where.pk].append(message.seq)
    assert seqs == {room.pk: [1, 2, 3, 4], other.pk: [1, 2]}
    assert (last_seq(room), last_seq(other)) == (4, 2)


def test_a_sequence_number_is_one_statement_and_a_missing_room_is_refused(
    circle, django_assert_num_queries
):
    _group, room, _river, _meadow, _sage = circle
    with django_assert_num_queries(1):
        first = ChatRoom.take_seq(room.pk)
    assert (first, ChatRoom.take_seq(room.pk), last_seq(room)) == (1, 2, 2)
    with pytest.raises(ChatRoom.DoesNotExist):
        ChatRoom.take_seq(room.pk + 1000)


@pytest.mark.django_db(transaction=True)
def test_a_message_is_stored_and_numbered_in_one_statement_outside_a_transaction(
    no_limits, django_assert_num_queries
):
    """The room's row is locked only while PostgreSQL runs one statement: no BEGIN, no
    COMMIT, no round trip in between for a worker's thread to hold it across."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no UPDATE inside WITH; it takes the number in a transaction")
    group, river = make_group("open-circle"), make_user("river")
    join(river, group)
    room = ChatRoom.objects.create(group=group, name="General", slug="general")
    send(room, river, "First")  # the worker compiles its rules once
    in_transaction: list[bool] = []

    def note_transaction(execute, sql, params, many, context):
        in_transaction.append(connection.in_atomic_block)
        return execute(sql, params, many, context)

    with (
        django_assert_num_queries(2) as captured,  # the client id's check, then the store
        connection.execute_wrapper(note_transaction),
    ):
        message = send(room, river, "Second **thoughts**", client_id="c2")
    assert [q["sql"].split()[0] for q in captured.captured_queries] == ["SELECT", "WITH"]
    assert in_transaction == [False, False]
    stored = ChatMessage.objects.get(pk=message.pk)
    assert (stored.seq, stored.version, message.seq, message.version) == (2, 2, 2, 2)
    assert (stored.author_id, stored.client_id, stored.source) == (
        river.pk,
        "c2",
        "Second **thoughts**",
    )
    assert stored.html == message.html and "<strong>thoughts</strong>" in stored.html
    assert stored.created_at == message.created_at and stored.removed_at is None
    assert last_seq(room) == 2

    orphan = ChatMessage(room_id=room.pk + 1000, author=river, client_id="x", source="x", html="")
    with pytest.raises(IntegrityError):  # no room, no number: nothing is stored
        orphan.insert_at_next_seq()
    assert ChatMessage.objects.count() == 2


def test_every_change_takes_the_rooms_next_number_without_gaps(circle):
    _group, room, river, meadow, sage = circle
    first, second = send(room, river, "First"), send(room, meadow, "Second")

    edited = publishing.edit_chat_message(editor=river, message=fresh(first), body="First!")
    assert (edited.seq, edited.version) == (1, 3)
    withdrawn = publishing.withdraw_chat_message(author=meadow, message=fresh(second))
    assert (withdrawn.seq, withdrawn.version) == (2, 4)
    removed = actions.remove_chat_message(actor=sage, message=fresh(first))
    assert (removed.seq, removed.version) == (1, 5)
    assert last_seq(room) == 5

    # Refusals and an edit that changes nothing take no number.
    third = send(room, river, "Third")
    unchanged = publishing.edit_chat_message(editor=river, message=fresh(third), body=" Third ")
    assert unchanged.version == third.version == 6
    with pytest.raises(PermissionDenied):
        publishing.edit_chat_message(editor=meadow, message=fresh(third), body="Not mine")
    with pytest.raises(ValidationError):
        publishing.edit_chat_message(editor=river, message=fresh(third), body="")
    with pytest.raises(ValidationError):
        send(room, river, "x" * (publishing.CHAT_MAX + 1), client_id="long")
    with pytest.raises(PermissionDenied):
        publishing.withdraw_chat_message(author=meadow, message=fresh(second))  # already gone
    with pytest.raises(PermissionDenied):
        actions.remove_chat_message(actor=meadow, message=fresh(third))  # not a leader
    assert last_seq(room) == 6

    # A change rolled back with its transaction gives its number back.
    with pytest.raises(RuntimeError):
        send_then_fail(room, river, "Never mind")
    assert last_seq(room) == 6
    assert send(room, river, "Fourth").seq == 7

    stored = dict(ChatMessage.objects.values_list("seq", "version"))
    assert stored == {1: 5, 2: 4, 6: 6, 7: 7}


def test_removals_keep_or_erase_the_text_as_documented(circle):
    _group, room, river, meadow, sage = circle
    withdrawn = publishing.withdraw_chat_message(author=river, message=send(room, river, "Mine"))
    removed = actions.remove_chat_message(actor=sage, message=fresh(send(room, meadow, "Hers")))
    withdrawn, removed = fresh(withdrawn), fresh(removed)
    assert (withdrawn.source, withdrawn.html, withdrawn.removed_by) == ("", "", "author")
    # A moderator's removal keeps the text stored, hidden, for review ...
    assert (removed.source, removed.removed_by) == ("Hers", "moderator")
    # ... but nothing of it goes out to clients.
    for message in (withdrawn, removed):
        payload = realtime.message_payload(message)
        assert (payload["html"], payload["source"], payload["removed"]) == ("", "", True)


# --- client ids ---------------------------------------------------------------------------


def test_a_repeated_client_id_returns_the_first_message_and_costs_nothing(circle, settings):
    group, room, river, meadow, _sage = circle
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "chat": (1, 60)}
    first, created = publishing.publish_chat_message(
        author=river, room=room, body="Only once", client_id="3f0c9a50"
    )
    assert created
    again, created = publishing.publish_chat_message(
        author=river, room=room, body="Different text", client_id="3f0c9a50"
    )
    assert (again.pk, created, again.source) == (first.pk, False, "Only once")
    # The limit (one a minute) is still unspent by the repeat: another new one is refused.
    with pytest.raises(ratelimit.RateLimited):
        send(room, river, "A second one", client_id="another")
    # A client id belongs to its author and room: the same one elsewhere is a new message,
    # never a way to reach someone else's.
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "chat": (UNLIMITED, 60)}
    theirs, created = publishing.publish_chat_message(
        author=meadow, room=room, body="Meadow here", client_id="3f0c9a50"
    )
    assert created and theirs.pk != first.pk and theirs.author_id == meadow.pk
    other_room = ChatRoom.objects.create(group=group, name="Evening", slug="evening")
    elsewhere, created = publishing.publish_chat_message(
        author=river, room=other_room, body="Evening", client_id="3f0c9a50"
    )
    assert created and elsewhere.room_id == other_room.pk
    assert ChatMessage.objects.filter(client_id="3f0c9a50").count() == 3


def test_a_client_id_that_races_in_twice_stores_one_message(circle, monkeypatch):
    """The check for an existing client id misses a twin committed a moment later: the
    unique constraint catches it, the twin is returned and its number given back."""
    _group, room, river, _meadow, _sage = circle
    real_hit = ratelimit.hit
    twins: list[ChatMessage] = []

    def hit_while_a_twin_commits(action, *, key, now=None, level=None):
        real_hit(action, key=key, now=now, level=level)
        if not twins:  # the other socket wins the race, right after our check
            twins.append(None)
            twins[0] = send(room, river, "Resent", client_id="same-uuid")

    monkeypatch.setattr(ratelimit, "hit", hit_while_a_twin_commits)
    message, created = publishing.publish_chat_message(
        author=river, room=room, body="Resent", client_id="same-uuid"
    )
    assert (message.pk, created) == (twins[0].pk, False)
    assert ChatMessage.objects.filter(room=room).count() == 1
    assert last_seq(room) == 1
    assert send(room, river, "Next", client_id="next").seq == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_sends_of_one_client_id_store_one_message(no_limits):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL (the CI database)")
    group = make_group("open-circle")
    river = make_user("river")
    join(river, group)
    room = ChatRoom.objects.create(group=group, name="General", slug="general")
    workers = 6
    barrier = threading.Barrier(workers)
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def resend():
        try:
            barrier.wait(timeout=10)
            message, created = publishing.publish_chat_message(
                author=river, room=room, body="Are you there?", client_id="c0ffee"
            )
            results.append((message.pk, created))
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=resend) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(results) == workers
    assert len({pk for pk, _created in results}) == 1
    assert sum(created for _pk, created in results) == 1
    assert ChatMessage.objects.filter(room=room).count() == 1
    assert last_seq(room) == 1  # the losers' numbers were given back


# --- broadcasts after commit ------------------------------------------------------------------


def test_broadcasts_wait_for_the_commit(circle, layer, django_capture_on_commit_callbacks):
    group, room, river, _meadow, sage = circle
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = send(room, river, "Hello")
        publishing.edit_chat_message(editor=river, message=fresh(message), body="Hello!")
        actions.remove_chat_message(actor=sage, message=fresh(message))
        publishing.save_room(actor=sage, group=group, room=room, name="Lounge", state="open")
    assert layer.sent == []  # nothing left the process before the commit
    # Four room changes, and the removal's notice to its author: their badge, and their
    # standing version (the unread count) replaced again at the commit.
    assert len(callbacks) == 6
    for callback in callbacks:
        callback()
    assert {name for name, _event in layer.sent} == {realtime.room_group(room.pk)}
    assert [f["type"] for f in layer.frames()] == [
        "message",
        "message_updated",
        "message_removed",
        "room",
    ]
    assert [f["message"]["version"] for f in layer.frames()[:3]] == [1, 2, 3]
    assert layer.frames("room") == [
        {"type": "room", "name": "Lounge", "state": "open", "slow_mode": 0}
    ]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_is_never_broadcast(layer, no_limits):
    group = make_group("open-circle")
    river = make_user("river")
    join(river, group)
    room = ChatRoom.objects.create(group=group, name="General", slug="general")
    layer.sent.clear()  # joining told river's own sockets to re-check their authority
    with pytest.raises(RuntimeError):
        send_then_fail(room, river, "Second thoughts")
    assert layer.sent == []
    assert not ChatMessage.objects.exists() and last_seq(room) == 0

    with transaction.atomic():
        message = send(room, river, "Committed")
        assert layer.sent == []
    assert layer.frames() == [{"type": "message", "message": realtime.message_payload(message)}]


@pytest.mark.django_db(transaction=True)
def test_a_failed_broadcast_does_not_undo_the_write(monkeypatch, no_limits, caplog):
    monkeypatch.setattr(realtime, "get_channel_layer", lambda: RecordingLayer(fail=True))
    group = make_group("open-circle")
    river = make_user("river")
    join(river, group)
    room = ChatRoom.objects.create(group=group, name="General", slug="general")
    message = send(room, river, "Stored even if the doorbell fails")
    assert ChatMessage.objects.filter(pk=message.pk).exists()
    assert "broadcast to room." in caplog.text


# --- the XSS corpus ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def payloads() -> list[str]:
    return load_payloads()


def _normalised(text: str, *, multiline: bool) -> str:
    """What publishing.clean_text stores for text it accepts."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    return text.strip() if multiline else " ".join(text.split())


def _report(failures: list[str], total: int, what: str) -> None:
    if failures:
        shown = "\n".join(failures[:MAX_REPORTED])
        pytest.fail(
            f"{len(failures)} of {total} {what} produced executable HTML:\n{shown}",
            pytrace=False,
        )


def test_every_payload_as_a_chat_message_is_stored_and_sent_safe(
    payloads, circle, layer, django_capture_on_commit_callbacks
):
    _group, room, river, _meadow, _sage = circle
    accepted: list[list[str]] = []
    refused_alone: list[str] = []
    with django_capture_on_commit_callbacks(execute=True):
        for n, batch in enumerate(
            batched(payloads, size=CHAT_BATCH, max_chars=publishing.CHAT_MAX)
        ):
            try:
                send(room, river, "\n\n".join(batch), client_id=f"batch-{n}")
                accepted.append(batch)
            except ValidationError:
                for m, payload in enumerate(batch):  # over a limit: each goes alone
                    try:
                        send(room, river, payload, client_id=f"batch-{n}-{m}")
                        accepted.append([payload])
                    except ValidationError:
                        refused_alone.append(payload)

    for payload in refused_alone:  # only what cannot be a chat message on its own
        text = _normalised(payload, multiline=True)
        assert not text or len(text) > publishing.CHAT_MAX, f"refused: {payload!r}"
    assert sum(len(batch) for batch in accepted) + len(refused_alone) == len(payloads)

    stored = list(ChatMessage.objects.filter(room=room).order_by("seq"))
    assert len(stored) == len(accepted)
    sent = {frame["message"]["id"]: frame["message"] for frame in layer.frames("message")}
    failures = []
    for message, batch in zip(stored, accepted, strict=True):
        assert message.source == _normalised("\n\n".join(batch), multiline=True)
        assert sent[message.pk]["html"] == message.html  # what clients get is what was checked
        problems = find_executable_html(message.html)
        if problems:
            failures.append(f"{batch!r} -> {message.html!r}: {problems}")
    _report(failures, len(stored), "chat messages")


def test_every_payload_as_a_chat_edit_is_stored_safe(payloads, circle):
    _group, room, river, _meadow, _sage = circle
    message = send(room, river, "To be edited many times")
    failures, edits = [], 0
    for batch in batched(payloads, size=CHAT_BATCH, max_chars=publishing.CHAT_MAX):
        try:
            message = publishing.edit_chat_message(
                editor=river, message=message, body="\n\n".join(batch)
            )
        except ValidationError:
            continue  # a batch too long or blank; the messages test covers payloads alone
        edits += 1
        html = ChatMessage.objects.values_list("html", flat=True).get(pk=message.pk)
        problems = find_executable_html(html)
        if problems:
            failures.append(f"{batch!r} -> {html!r}: {problems}")
    assert edits > 0.9 * len(payloads) / CHAT_BATCH
    _report(failures, edits, "chat edits")


def test_every_payload_as_a_room_name_is_plain_text(payloads, circle, layer):
    _group, _room, _river, _meadow, sage = circle
    expected: dict[int, str] = {}
    refused = 0
    batches = batched(payloads, size=CHAT_BATCH, max_chars=publishing.ROOM_NAME_MAX, separator=" ")
    for n, batch in enumerate(batches):
        if n % ROOMS_PER_GROUP == 0:
            # Many payloads make the same slug; a few hundred rooms to a group is plenty.
            group = make_group(f"corpus-{n}")
            join(sage, group, Membership.Role.LEADER)
        name = _normalised(" ".join(batch), multiline=False)
        try:
            room = publishing.save_room(
                actor=sage, group=group, room=None, name=" ".join(batch), state="open"
            )
        except ValidationError as error:
            assert len(batch) == 1, batch
            assert list(error.message_dict) == ["name"], (batch, error.message_dict)
            assert not name or len(name) > publishing.ROOM_NAME_MAX, (batch, error.message_dict)
            refused += 1
            continue
        expected[room.pk] = name
    assert refused == sum(
        1
        for p in payloads
        if not _normalised(p, multiline=False)
        or len(_normalised(p, multiline=False)) > publishing.ROOM_NAME_MAX
    )

    rooms = list(ChatRoom.objects.filter(pk__in=expected).select_related("group"))
    assert len(rooms) == len(expected)
    slugs = [(room.group_id, room.slug) for room in rooms]
    assert len(set(slugs)) == len(slugs)  # unique within each group
    for room in rooms:
        assert room.name == expected[room.pk]  # stored as typed: plain text, not HTML
        assert re.fullmatch(r"[-a-z0-9_]+", room.slug), room.slug
        assert room.slug != "new"
        assert resolve(room.get_absolute_url()).kwargs["room_slug"] == room.slug
    # The room list every chat page shows: member-chosen names, escaped.
    html = render_to_string("partials/room_list.html", {"rooms": rooms, "room": None})
    problems = find_executable_html(html)
    assert problems == [], problems[:MAX_REPORTED]


# --- a resend found with the member (publishing.sent_before_with_member) -----------------


def _loaded_with(rider, user):
    with backends.read_with_member(rider):
        return backends.load_member(user.pk)


def test_a_resend_found_with_the_member_is_the_first_message_and_is_asked_once(
    circle, django_assert_num_queries
):
    _group, room, river, _meadow, _sage = circle
    first = send(room, river, "Hello", client_id="c1")
    author = _loaded_with(publishing.sent_before_with_member(room.pk, "c1"), river)
    with django_assert_num_queries(1):  # the message itself; the question was answered
        assert publishing._sent_before(room, author, "c1") == first
    with django_assert_num_queries(2):  # used once: asked again, the question is asked afresh
        assert publishing._sent_before(room, author, "c1") == first


def test_a_client_id_not_sent_before_is_new_and_another_id_or_room_is_asked_afresh(
    circle, django_assert_num_queries
):
    group, room, river, _meadow, _sage = circle
    send(room, river, "Hello", client_id="c1")
    author = _loaded_with(publishing.sent_before_with_member(room.pk, "c2"), river)
    with django_assert_num_queries(0):
        assert publishing._sent_before(room, author, "c2") is None
    other = ChatRoom.objects.create(group=group, name="Evening", slug="evening")
    author = _loaded_with(publishing.sent_before_with_member(other.pk, "c1"), river)
    with django_assert_num_queries(2):  # not what was asked: the question, then the message
        assert publishing._sent_before(room, author, "c1").client_id == "c1"
    author = _loaded_with(publishing.sent_before_with_member(room.pk, "c3"), river)
    with django_assert_num_queries(2):
        assert publishing._sent_before(room, author, "c1").client_id == "c1"
