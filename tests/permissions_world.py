"""Scaffolding shared by the tests that check docs/permissions.md against the code.

tests/moderation/test_permissions.py asks the ``can_*``/``check_*`` predicates about
the action tables; tests/forum/test_views_permissions.py makes HTTP requests for the
pages tables. Both read the tables from the document with ``read_tables`` and build
the same small forum with ``build_world``: a group, a poster with a thread and a
reply, and an actor in one of the documented roles.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser

from forum import memberships, publishing
from forum.models import ChatMessage, ChatRoom, Post, SupportGroup, Thread, User
from moderation import permissions
from tests.conftest import join, make_group, make_user

DOC = Path(__file__).resolve().parents[1] / "docs" / "permissions.md"
ROLES = (
    "anonymous",
    "non-member",
    "member",
    "leader",
    "group moderator",
    "site moderator",
    "admin",
)
MEMBERSHIP_ROLES = {"member": "member", "leader": "leader", "group moderator": "moderator"}
VISIBILITIES = ("public", "private")
UNLIMITED = 10**9
THREAD_TITLE = "Sunrise letters to myself"


# --- a small Markdown table reader -------------------------------------------------


@dataclass
class Table:
    columns: tuple[str, ...]
    rows: dict[str, dict[str, str]]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def read_tables(path: Path = DOC) -> dict[str, Table]:
    """Every pipe table in the file, keyed by the text of the heading above it."""
    tables: dict[str, Table] = {}
    heading = ""
    lines: list[str] = []

    def flush() -> None:
        if not lines:
            return
        header, separator, *body = lines
        assert re.fullmatch(r"\|?(\s*:?-+:?\s*\|)+\s*:?-*:?\s*\|?", separator.strip()), (
            f"table under {heading!r} has no separator row"
        )
        columns = tuple(_cells(header))
        rows: dict[str, dict[str, str]] = {}
        for line in body:
            cells = _cells(line)
            assert len(cells) == len(columns), f"{heading!r}: wrong cell count in {line!r}"
            assert cells[0] not in rows, f"{heading!r}: row {cells[0]!r} appears twice"
            rows[cells[0]] = dict(zip(columns[1:], cells[1:], strict=True))
        assert heading not in tables, f"two tables under the heading {heading!r}"
        tables[heading] = Table(columns, rows)
        lines.clear()

    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("|"):
            lines.append(line)
            continue
        flush()
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
    flush()
    return tables


TABLES = read_tables()


def table_cases(table_for: Callable[[str], Table]) -> Iterator:
    """One pytest param per (visibility, row, role) with the documented cell."""
    for visibility in VISIBILITIES:
        for row, cells in table_for(visibility).rows.items():
            for role in ROLES:
                yield pytest.param(
                    visibility, row, role, cells.get(role), id=f"{visibility}-{row}-{role}"
                )


def lift_limits(settings):
    """No rate limits and no duplicate-post window, so a test may write freely."""
    settings.KINSHIP_RATE_LIMITS = {k: (UNLIMITED, 60) for k in settings.KINSHIP_RATE_LIMITS}
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 0
    return settings


# --- the situations each row needs -------------------------------------------------


@dataclass
class World:
    group: SupportGroup
    poster: User
    thread: Thread
    others_post: Post
    actor: User | AnonymousUser

    def fresh_post(self, post: Post) -> Post:
        """The post with its thread and group loaded anew (no remembered roles)."""
        return Post.objects.select_related("thread__group").get(pk=post.pk)

    def fresh_group(self) -> SupportGroup:
        return SupportGroup.objects.get(pk=self.group.pk)

    def fresh_thread(self) -> Thread:
        return Thread.objects.select_related("group").get(pk=self.thread.pk)

    def own_post(self) -> Post:
        """A post by the actor. Non-members and site staff wrote it while they were
        members and have left since; anonymous visitors have none, so theirs is
        someone else's."""
        actor = self.actor
        if not actor.is_authenticated:
            return self.fresh_post(self.others_post)
        was_member = permissions.membership_role(actor, self.fresh_group()) is not None
        if not was_member:
            join(actor, self.fresh_group())
        post = publishing.publish_reply(
            author=actor, thread=self.fresh_thread(), body=f"My own words, {actor.handle}."
        )
        if not was_member:
            memberships.leave_group(user=actor, group=self.fresh_group())
        return self.fresh_post(post)

    # Chat: rooms and messages are made on demand, since most rows need none.

    def room(self, state: str = ChatRoom.State.OPEN) -> ChatRoom:
        """A room of the group in ``state`` (open, read_only or archived)."""
        room, _created = ChatRoom.objects.get_or_create(
            group=self.group, slug=f"room-{state.replace('_', '-')}",
            defaults={"name": f"A {state} room", "state": state},
        )  # fmt: skip
        return ChatRoom.objects.select_related("group").get(pk=room.pk)

    def fresh_chat_message(self, message: ChatMessage) -> ChatMessage:
        return ChatMessage.objects.select_related("room__group").get(pk=message.pk)

    def others_chat_message(self) -> ChatMessage:
        """A message by the poster in the open room."""
        message, _created = publishing.publish_chat_message(
            author=self.poster, room=self.room(), body="Checking in tonight.", client_id="poster"
        )
        return self.fresh_chat_message(message)

    def own_chat_message(self, client_id: str = "own") -> ChatMessage:
        """A message by the actor in the open room; like ``own_post``, non-members and
        site staff wrote it while they were members, and anonymous visitors get someone
        else's."""
        actor = self.actor
        if not actor.is_authenticated:
            return self.others_chat_message()
        was_member = permissions.membership_role(actor, self.fresh_group()) is not None
        if not was_member:
            join(actor, self.fresh_group())
        message, _created = publishing.publish_chat_message(
            author=actor,
            room=self.room(),
            body=f"My own words, {actor.handle}.",
            client_id=client_id,
        )
        if not was_member:
            memberships.leave_group(user=actor, group=self.fresh_group())
        return self.fresh_chat_message(message)


def make_actor(role: str, group: SupportGroup) -> User | AnonymousUser:
    """Someone in ``role`` (one of ROLES); members of the group join it as that role."""
    if role == "anonymous":
        return AnonymousUser()
    if role == "site moderator":
        return make_user("actor", is_site_moderator=True)
    if role == "admin":
        return make_user("actor", is_staff=True, is_superuser=True)
    actor = make_user("actor")
    if role in MEMBERSHIP_ROLES:
        join(actor, group, MEMBERSHIP_ROLES[role])
    return actor


def build_world(visibility: str, role: str, *, join_policy: str = "open") -> World:
    """A group of the given visibility and join policy, with a thread titled
    THREAD_TITLE and a reply by a member (the poster), and an actor in ``role``."""
    group = make_group("quiet-harbour", private=visibility == "private", join_policy=join_policy)
    poster = make_user("poster")
    join(poster, group)
    thread = publishing.publish_thread(
        author=poster, group=group, title=THREAD_TITLE, body="What helped you this week?"
    )
    others_post = publishing.publish_reply(
        author=poster, thread=thread, body="Writing a letter to myself every morning."
    )
    return World(
        group=group,
        poster=poster,
        thread=thread,
        others_post=others_post,
        actor=make_actor(role, group),
    )
