"""Revoked authority reaches every open socket of the member at once (docs/chat-protocol.md,
"Close codes"): the chat room, the notifications socket and the review queue.

river moderates one group and has all three sockets open, signed in with one real session.
After a logout in another tab, a password change on another device, a ban, a suspension,
leaving the group or stepping down, each socket that must go closes with its code within
5 seconds, hears nothing that happened after the change, and a reconnect is refused.

The periodic re-check is slowed to a minute here, so what closes the sockets is the
member's authority broadcast (forum.realtime.bump_authority); the last test drops that
broadcast and shows the periodic re-check, at its production interval, still closes them.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from forum import memberships, notify, publishing, realtime
from forum.models import ChatRoom, Membership, Notification, SupportGroup, User
from moderation import actions
from moderation.models import FlagReason
from tests.chat_helpers import ChatSocket, db, login_session, room_path, run_async
from tests.conftest import PASSWORD, join, make_group, make_user

pytestmark = pytest.mark.django_db(transaction=True)

REVOKED_WITHIN = 5.0
NEW_PASSWORD = "another-calm-river-5522"
QUEUE_PATH = "/ws/moderation/queue/"
NOTIFICATIONS_PATH = "/ws/notifications/"
STAYS = None  # the socket stays open


@dataclass
class Scene:
    group: SupportGroup
    room: ChatRoom
    river: User  # moderates the group
    meadow: User  # a member, who keeps talking after river's change
    heron: User  # a leader of the group
    warden: User  # a site moderator
    key: str  # river's session, shared by the three sockets


@pytest.fixture
def scene(settings) -> Scene:
    settings.KINSHIP_CHAT_RECHECK_SECONDS = 60.0  # only the broadcast can be in time
    settings.KINSHIP_RATE_LIMITS = {k: (10_000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    group = make_group("open-circle")
    river, meadow, heron = make_user("river"), make_user("meadow"), make_user("heron")
    warden = make_user("warden", is_site_moderator=True)
    join(river, group, Membership.Role.MODERATOR)
    join(meadow, group)
    join(heron, group, Membership.Role.LEADER)
    room = ChatRoom.objects.create(group=group, name="General", slug="general")
    return Scene(group, room, river, meadow, heron, warden, login_session(river))


# --- the changes ---------------------------------------------------------------------------


def log_out_in_another_tab(scene: Scene) -> None:
    """The same session, logged out from another tab: the session row is gone."""
    tab = Client()
    tab.cookies[django_settings.SESSION_COOKIE_NAME] = scene.key
    assert tab.post(reverse("logout")).status_code == 302


def change_password_on_another_device(scene: Scene) -> None:
    """Django's own form on another signed-in device: the session auth hash changes; that
    device stays signed in (update_session_auth_hash), every other session ends."""
    device = Client()
    device.force_login(User.objects.get(pk=scene.river.pk))
    response = device.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content


def ban(scene: Scene) -> None:
    actions.ban_member(actor=scene.warden, member=scene.river, reason="Repeated harassment.")


def suspend(scene: Scene) -> None:
    actions.suspend_from_group(
        actor=scene.warden,
        member=scene.river,
        group=scene.group,
        reason="Cooling off.",
        duration=timedelta(days=2),
    )


def leave(scene: Scene) -> None:
    memberships.leave_group(user=scene.river, group=scene.group)


def step_down(scene: Scene) -> None:
    membership = Membership.objects.get(user=scene.river, group=scene.group)
    membership.role = Membership.Role.MEMBER
    membership.save()


# Close codes per socket (chat, notifications, queue). A ban or a suspension stops taking
# part, not moderating (moderation.permissions.moderated_group_ids), and a sanctioned member
# keeps hearing their own notifications: the notice of the sanction is one of them.
CHANGES: dict[str, tuple[Callable[[Scene], None], dict[str, int | None]]] = {
    "logout elsewhere": (
        log_out_in_another_tab, {"chat": 4401, "notifications": 4401, "queue": 4401}
    ),
    "password change": (
        change_password_on_another_device, {"chat": 4401, "notifications": 4401, "queue": 4401}
    ),
    "site ban": (ban, {"chat": 4403, "notifications": STAYS, "queue": STAYS}),
    "group suspension": (suspend, {"chat": 4403, "notifications": STAYS, "queue": STAYS}),
    "leaving the group": (leave, {"chat": 4403, "notifications": STAYS, "queue": 4403}),
    "stepping down as moderator": (
        step_down, {"chat": STAYS, "notifications": STAYS, "queue": 4403}
    ),
}  # fmt: skip


# --- the sockets ---------------------------------------------------------------------------


async def open_all(scene: Scene, key: str) -> dict[str, ChatSocket]:
    sockets = {
        "chat": ChatSocket(room_path(scene.room), session_key=key),
        "notifications": ChatSocket(NOTIFICATIONS_PATH, session_key=key),
        "queue": ChatSocket(QUEUE_PATH, session_key=key),
    }
    for name, socket in sockets.items():
        connected, detail = await socket.connect()
        assert connected, f"{name} refused with {detail}"
    for kind in ("history", "room", "presence"):
        await sockets["chat"].expect(kind, skip=())
    await sockets["notifications"].expect("unread", skip=())
    return sockets


def what_happens_next(scene: Scene, step: int) -> None:
    """Things each of river's sockets would hear: a chat message, a notification for river,
    a change to the group's review queue."""
    publishing.publish_chat_message(
        author=scene.meadow, room=scene.room, body=f"After the change {step}", client_id=f"n{step}"
    )
    notify.notify(recipient=scene.river, kind=Notification.Kind.MODERATION, text=f"note {step}")
    thread = publishing.publish_thread(
        author=scene.meadow, group=scene.group, title=f"Thread {step}", body="Hello"
    )
    actions.flag(flagger=scene.heron, obj=thread, reason=FlagReason.SPAM, details="")


async def reconnect(path: str, key: str) -> object:
    socket = ChatSocket(path, session_key=key)
    connected, detail = await socket.connect()
    if connected:
        await socket.disconnect()
        return STAYS
    return detail


@pytest.mark.parametrize("change", CHANGES)
def test_revoked_authority_closes_each_socket_at_once_and_for_good(scene, change):
    revoke, codes = CHANGES[change]

    async def scenario():
        sockets = await open_all(scene, scene.key)
        seen = {name: len(socket.frames) for name, socket in sockets.items()}
        started = time.monotonic()
        await db(revoke, scene)
        await db(what_happens_next, scene, 1)
        outcome, heard = {}, {}
        for name, socket in sockets.items():
            if codes[name] is STAYS:
                continue
            outcome[name] = await socket.closed(timeout=REVOKED_WITHIN)
            heard[name] = socket.frames[seen[name] :]
        elapsed = time.monotonic() - started
        # The sockets that stay still work, and hear what concerns them.
        if codes["chat"] is STAYS:
            await sockets["chat"].expect("message")
        if codes["notifications"] is STAYS:
            await sockets["notifications"].expect("unread")
        if codes["queue"] is STAYS:
            await sockets["queue"].expect("queue_changed")
        for socket in sockets.values():
            await socket.disconnect()
        # A reconnect with the same cookie, or after signing in again, is refused.
        key = scene.key if codes["chat"] == 4401 else await db(login_session, scene.river)
        again = {
            "chat": await reconnect(room_path(scene.room), key),
            "notifications": await reconnect(NOTIFICATIONS_PATH, key),
            "queue": await reconnect(QUEUE_PATH, key),
        }
        return outcome, heard, elapsed, again

    outcome, heard, elapsed, again = run_async(scenario)
    closing = {name: code for name, code in codes.items() if code is not STAYS}
    assert outcome == closing
    assert elapsed < REVOKED_WITHIN
    # Nothing that happened after the change reached a socket that had to go.
    for name, frames in heard.items():
        assert all("After the change" not in str(f) for f in frames), (name, frames)
        assert not any(f["type"] in {"unread", "queue_changed", "message"} for f in frames), (
            name,
            frames,
        )
    assert again == codes


def test_the_periodic_re_check_closes_the_sockets_when_the_broadcast_is_lost(
    scene, settings, monkeypatch
):
    """The channel layer may drop the authority broadcast: the watchers' poll of the
    authority epochs, at its production interval, still closes every socket in time."""
    settings.KINSHIP_CHAT_RECHECK_SECONDS = 2.0
    send = realtime.broadcast_on_commit

    def lossy(group: str, event: dict) -> None:
        if not group.startswith("authority."):
            send(group, event)

    monkeypatch.setattr(realtime, "broadcast_on_commit", lossy)

    async def scenario():
        sockets = await open_all(scene, scene.key)
        started = time.monotonic()
        await db(change_password_on_another_device, scene)
        codes = {name: await s.closed(timeout=REVOKED_WITHIN) for name, s in sockets.items()}
        elapsed = time.monotonic() - started
        for socket in sockets.values():
            await socket.disconnect()
        return codes, elapsed

    codes, elapsed = run_async(scenario)
    assert codes == {"chat": 4401, "notifications": 4401, "queue": 4401}
    assert elapsed < REVOKED_WITHIN


def test_another_sessions_logout_leaves_this_one_open(scene):
    """Logging out one browser ends that browser's sockets only."""
    other_key = login_session(scene.river)

    def log_out_the_other_browser():
        browser = Client()
        browser.cookies[django_settings.SESSION_COOKIE_NAME] = other_key
        assert browser.post(reverse("logout")).status_code == 302

    async def scenario():
        mine = await open_all(scene, scene.key)
        theirs = await open_all(scene, other_key)
        await db(log_out_the_other_browser)
        closed = {name: await s.closed(timeout=REVOKED_WITHIN) for name, s in theirs.items()}
        await db(what_happens_next, scene, 2)
        await mine["chat"].expect("message")
        await mine["notifications"].expect("unread")
        await mine["queue"].expect("queue_changed")
        for socket in [*mine.values(), *theirs.values()]:
            await socket.disconnect()
        return closed

    assert run_async(scenario) == {"chat": 4401, "notifications": 4401, "queue": 4401}
