"""Hold my post for an hour before it goes out: forum.publishing.hold_thread / hold_reply,
the release (release_due_posts, send now), refusals that keep the words, the pages, the
cron command and the ASGI worker's release loop."""

import asyncio
import threading
from datetime import UTC, datetime, time, timedelta
from io import StringIO
from time import monotonic

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from forum import accounts, asgi, memberships, publishing
from forum.backends import MemberBackend
from forum.models import HeldPost, Notification, Post, Thread, User
from moderation import actions
from moderation.models import QueueItem, Sanction, WatchedPhrase
from moderation.ratelimit import RateLimited
from tests.conftest import join, make_group, make_user

LATER = timedelta(minutes=61)


@pytest.fixture
def circle(db, settings):
    settings.KINSHIP_RATE_LIMITS = {k: (1000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 0
    group = make_group("open-circle")
    river, meadow, heron = make_user("river"), make_user("meadow"), make_user("heron")
    join(river, group)
    join(meadow, group)
    join(heron, group, "moderator")
    thread = publishing.publish_thread(author=meadow, group=group, title="Day three", body="Hi")
    return group, thread, river, meadow, heron


def later() -> datetime:
    return timezone.now() + LATER


def hold(thread, author, body="I want to say this carefully.", **kw) -> HeldPost:
    return publishing.hold_reply(author=author, thread=thread, body=body, **kw)


def replies(thread) -> list[Post]:
    return list(Post.objects.filter(thread=thread, parent__isnull=False))


# --- holding ---------------------------------------------------------------------------------


def test_a_held_reply_waits_the_configured_time_and_is_not_published(circle, settings):
    settings.KINSHIP_HOLD_MINUTES = 45
    _group, thread, river, _meadow, _heron = circle
    before = timezone.now()
    held = hold(thread, river, content_warning=" relapse ", cw_categories=["use"])
    assert held.kind == HeldPost.Kind.REPLY and held.thread == thread and held.parent is None
    assert held.content_warning == "relapse" and held.cw_categories == ["use"]
    assert (
        before + timedelta(minutes=45) <= held.release_at <= timezone.now() + timedelta(minutes=45)
    )
    assert replies(thread) == []
    assert Thread.objects.get(pk=thread.pk).reply_count == 0
    assert publishing.hold_duration() == "45 minutes"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"body": "   "}, "body"),
        ({"body": "a\x00b"}, "body"),
        ({"body": "x" * (publishing.POST_MAX + 1)}, "body"),
        ({"body": "fine", "content_warning": "a\x07"}, "content_warning"),
        ({"body": "fine", "cw_categories": ["nonsense"]}, "cw_categories"),
    ],
)
def test_holding_validates_now_as_the_write_path_does(circle, fields, field):
    _group, thread, river, _meadow, _heron = circle
    with pytest.raises(ValidationError) as refused:
        publishing.hold_reply(author=river, thread=thread, **fields)
    assert field in refused.value.message_dict
    assert not HeldPost.objects.exists()


def test_holding_a_thread_validates_its_title(circle):
    group, _thread, river, _meadow, _heron = circle
    with pytest.raises(ValidationError) as refused:
        publishing.hold_thread(author=river, group=group, title=" ", body="Body")
    assert "title" in refused.value.message_dict
    assert not HeldPost.objects.exists()


def test_a_blocking_watched_phrase_refuses_at_once(circle):
    group, thread, river, _meadow, _heron = circle
    WatchedPhrase.objects.create(group=group, pattern="bad deal", action="block", message="No.")
    with pytest.raises(ValidationError) as refused:
        hold(thread, river, body="I have a bad deal for you")
    assert refused.value.message_dict["body"] == ["No."]
    assert not HeldPost.objects.exists()


def test_the_same_words_held_twice_are_a_duplicate(circle, settings):
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 60
    _group, thread, river, _meadow, _heron = circle
    hold(thread, river, body="Double click")
    with pytest.raises(ValidationError) as refused:
        hold(thread, river, body="Double click")
    assert "body" in refused.value.message_dict
    assert HeldPost.objects.count() == 1


def test_a_member_holds_at_most_so_many_at_once(circle):
    _group, thread, river, _meadow, _heron = circle
    for i in range(publishing.HELD_MAX):
        hold(thread, river, body=f"Thought {i}")
    with pytest.raises(ValidationError) as refused:
        hold(thread, river, body="One more")
    assert publishing.HOLD_FIELD in refused.value.message_dict


def test_only_who_may_reply_can_hold(circle):
    group, thread, _river, _meadow, _heron = circle
    outsider = make_user("stranger")
    with pytest.raises(PermissionDenied):
        hold(thread, outsider)
    with pytest.raises(PermissionDenied):
        publishing.hold_thread(author=outsider, group=group, title="T", body="B")
    other = publishing.publish_thread(author=_meadow, group=group, title="Other", body="x")
    with pytest.raises(ValidationError) as refused:
        hold(thread, _river, parent=Post.objects.get(thread=other))
    assert "parent" in refused.value.message_dict


def quiet_now(user) -> None:
    now = datetime.now(UTC)
    start, end = time((now.hour - 1) % 24, 0), time((now.hour + 3) % 24, 0)
    accounts.set_quiet_hours(user=user, start=start, end=end, timezone="UTC")


def test_quiet_hours_apply_when_holding_but_not_at_release(circle):
    _group, thread, river, _meadow, _heron = circle
    quiet_now(river)
    with pytest.raises(ValidationError) as refused:
        hold(thread, river)
    assert publishing.QUIET_HOURS_FIELD in refused.value.message_dict
    hold(thread, river, post_anyway=True)
    # An hour on, still inside the window: the member chose this post while they allowed
    # themself to, so the release does not refuse it.
    assert publishing.release_due_posts(now=later()) == 1
    assert [p.source for p in replies(thread)] == ["I want to say this carefully."]


def test_crisis_words_offer_resources_now_and_alert_moderators_only_at_release(
    circle, django_capture_on_commit_callbacks
):
    _group, thread, river, _meadow, _heron = circle
    with django_capture_on_commit_callbacks(execute=True):
        held = hold(thread, river, body="I keep thinking about suicide tonight")
    assert held.crisis_categories == frozenset({"suicide"})
    assert not QueueItem.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        publishing.release_due_posts(now=later())
    assert QueueItem.objects.filter(object_id=replies(thread)[0].pk).exists()


# --- release ---------------------------------------------------------------------------------


def test_release_publishes_through_the_write_path_once(circle):
    _group, thread, river, meadow, _heron = circle
    held = hold(thread, river, body="Thinking of you @meadow", cw_categories=["trauma"])
    assert publishing.release_due_posts() == 0  # not yet
    assert publishing.release_due_posts(now=later()) == 1
    assert publishing.release_due_posts(now=later()) == 0
    (post,) = replies(thread)
    assert (post.author, post.cw_categories) == (river, ["trauma"])
    assert 'href="/u/meadow/"' in post.html
    assert not HeldPost.objects.filter(pk=held.pk).exists()
    assert Thread.objects.get(pk=thread.pk).reply_count == 1
    # The write path's notifications: meadow is mentioned (and follows her thread).
    assert Notification.objects.filter(recipient=meadow, post=post).exists()


def test_a_held_thread_is_published_with_its_title_and_warnings(circle):
    group, _thread, river, _meadow, _heron = circle
    publishing.hold_thread(
        author=river,
        group=group,
        title="A hard week",
        body="Long story",
        content_warning="relapse",
        cw_categories=["use"],
    )
    assert not Thread.objects.filter(title="A hard week").exists()
    assert publishing.release_due_posts(now=later()) == 1
    thread = Thread.objects.get(title="A hard week")
    assert (thread.author, thread.content_warning) == (river, "relapse")
    assert Post.objects.get(thread=thread).cw_categories == ["use"]


def test_a_nested_held_reply_keeps_its_parent(circle):
    _group, thread, river, meadow, _heron = circle
    first = publishing.publish_reply(author=meadow, thread=thread, body="Anyone?")
    hold(thread, river, parent=first, body="Me")
    publishing.release_due_posts(now=later())
    post = Post.objects.get(source="Me")
    assert post.parent == first and post.depth == 2


def refusal_notice(member) -> Notification:
    return Notification.objects.get(recipient=member, kind=Notification.Kind.HELD_POST)


def test_a_thread_locked_meanwhile_refuses_keeps_the_words_and_tells_the_author(circle):
    _group, thread, river, _meadow, heron = circle
    held = hold(thread, river)
    actions.lock_thread(actor=heron, thread=thread)
    assert publishing.release_due_posts(now=later()) == 0
    held.refresh_from_db()
    assert held.is_refused and "locked" in held.refusal
    assert held.body == "I want to say this carefully."
    assert replies(thread) == []
    notice = refusal_notice(river)
    assert notice.url == "/me/held/" and "locked" in notice.text
    assert notice.text.startswith("Your held reply could not go out")
    # Not retried every round, nor told twice.
    assert publishing.release_due_posts(now=later() + LATER) == 0
    assert Notification.objects.filter(kind=Notification.Kind.HELD_POST).count() == 1


def test_a_ban_meanwhile_refuses(circle):
    _group, thread, river, _meadow, heron = circle
    heron.is_site_moderator = True
    heron.save()
    held = hold(thread, river)
    actions.sanction_member(
        actor=heron, member=river, kind=Sanction.Kind.BAN, group=None, reason="Spam"
    )
    publishing.release_due_posts(now=later())
    held.refresh_from_db()
    assert held.is_refused and replies(thread) == []
    assert refusal_notice(river)


def test_a_new_watched_phrase_refuses_at_release(circle):
    group, thread, river, _meadow, _heron = circle
    held = hold(thread, river, body="Meet me at the corner")
    WatchedPhrase.objects.create(group=group, pattern="corner", action="block", message="Nope.")
    publishing.release_due_posts(now=later())
    held.refresh_from_db()
    assert held.refusal == "Nope."
    assert "Nope." in refusal_notice(river).text


def test_leaving_the_group_or_a_hidden_thread_refuses(circle):
    group, thread, river, meadow, heron = circle
    held = hold(thread, river)
    actions.hide_content(actor=heron, obj=thread, reason="Off topic")
    publishing.release_due_posts(now=later())
    held.refresh_from_db()
    assert held.is_refused and held.refusal == "The thread is no longer there for you."
    held_thread = publishing.hold_thread(author=meadow, group=group, title="T", body="B")
    memberships.leave_group(user=meadow, group=group)
    publishing.release_due_posts(now=later())
    held_thread.refresh_from_db()
    assert "Join it first" in held_thread.refusal


def test_a_deleted_thread_refuses_and_keeps_the_words(circle):
    _group, thread, river, _meadow, _heron = circle
    held = hold(thread, river)
    Thread.objects.filter(pk=thread.pk).delete()
    publishing.release_due_posts(now=later())
    held.refresh_from_db()
    assert held.thread is None and held.is_refused and held.body
    assert refusal_notice(river)


def test_a_rate_limit_at_release_only_moves_the_time_on(circle, settings):
    _group, thread, river, _meadow, _heron = circle
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "reply": (1, 600)}
    hold(thread, river, body="First")
    hold(thread, river, body="Second")
    now = later()
    assert publishing.release_due_posts(now=now) == 1
    waiting = HeldPost.objects.get()
    assert not waiting.is_refused and waiting.release_at > now
    assert not Notification.objects.filter(kind=Notification.Kind.HELD_POST).exists()


def test_a_held_post_held_by_policy_at_release_waits_for_review(circle):
    group, thread, river, _meadow, _heron = circle
    hold(thread, river, body="Ask me about pills")
    WatchedPhrase.objects.create(group=group, pattern="pills", action="hold")
    publishing.release_due_posts(now=later())
    (post,) = replies(thread)
    assert post.hidden_pending_review
    assert QueueItem.objects.filter(object_id=post.pk, held_by_policy=True).exists()


def test_one_faulty_row_does_not_stop_the_others(circle, monkeypatch):
    _group, thread, river, meadow, _heron = circle
    broken = hold(thread, river, body="Broken")
    hold(thread, meadow, body="Fine")
    real = publishing.publish_reply

    def flaky(**kw):
        if kw["body"] == "Broken":
            raise RuntimeError("a bug")
        return real(**kw)

    monkeypatch.setattr(publishing, "publish_reply", flaky)
    now = later()
    assert publishing.release_due_posts(now=now) == 1
    broken.refresh_from_db()
    assert not broken.is_refused and broken.release_at == now + publishing.HELD_RETRY_AFTER_FAULT
    assert [p.source for p in replies(thread)] == ["Fine"]


def postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL: run with DATABASE_URL=postgres://...")


@pytest.mark.django_db(transaction=True)
def test_workers_at_once_publish_each_row_exactly_once(settings):
    postgres_only()
    settings.KINSHIP_RATE_LIMITS = {k: (1000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 0
    settings.KINSHIP_HOLD_MINUTES = 0
    group = make_group("open-circle")
    authors = [make_user(f"peer{i}") for i in range(4)]
    for author in authors:
        join(author, group)
    thread = publishing.publish_thread(author=authors[0], group=group, title="T", body="B")
    for i in range(24):
        hold(thread, authors[i % 4], body=f"Reply {i}")
    start = threading.Barrier(4)
    counts: list[int] = []

    def worker() -> None:
        try:
            start.wait()
            counts.append(publishing.release_due_posts())
        finally:
            connection.close()

    workers = [threading.Thread(target=worker) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert sum(counts) == 24 and len(counts) == 4
    assert sorted(p.source for p in replies(thread)) == sorted(f"Reply {i}" for i in range(24))
    assert not HeldPost.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_row_another_worker_is_releasing_is_skipped_not_waited_for(settings):
    postgres_only()
    group = make_group("open-circle")
    river = make_user("river")
    join(river, group)
    thread = publishing.publish_thread(author=river, group=group, title="T", body="B")
    held = hold(thread, river)
    taken, finish = threading.Event(), threading.Event()

    def other_worker() -> None:
        try:
            with transaction.atomic():
                HeldPost.objects.select_for_update().get(pk=held.pk)
                taken.set()
                finish.wait(10)
        finally:
            connection.close()

    other = threading.Thread(target=other_worker)
    other.start()
    assert taken.wait(10)
    began = monotonic()
    assert publishing.release_due_posts(now=later()) == 0
    assert monotonic() - began < 5
    finish.set()
    other.join(10)
    assert publishing.release_due_posts(now=later()) == 1


# --- send now, edit, discard, the list -------------------------------------------------------


def test_send_now_publishes_at_once(circle):
    _group, thread, river, _meadow, _heron = circle
    held = hold(thread, river)
    post = publishing.send_held_post(author=river, held=held)
    assert post.source == "I want to say this carefully." and not HeldPost.objects.exists()
    assert publishing.send_held_post(author=river, held=held) is None  # already gone


def test_send_now_refused_raises_and_keeps_without_a_notice(circle):
    _group, thread, river, _meadow, heron = circle
    held = hold(thread, river)
    actions.lock_thread(actor=heron, thread=thread)
    with pytest.raises(ValidationError) as refused:
        publishing.send_held_post(author=river, held=held)
    assert "locked" in refused.value.message_dict["__all__"][0]
    held.refresh_from_db()
    assert held.is_refused
    assert not Notification.objects.filter(kind=Notification.Kind.HELD_POST).exists()


def test_send_now_on_a_rate_limit_raises_it(circle, settings):
    _group, thread, river, _meadow, _heron = circle
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "reply": (1, 600)}
    publishing.publish_reply(author=river, thread=thread, body="Just now")
    held = hold(thread, river)
    with pytest.raises(RateLimited):
        publishing.send_held_post(author=river, held=held)
    assert HeldPost.objects.filter(pk=held.pk, refused_at__isnull=True).exists()


def test_nobody_else_sends_edits_or_discards_it(circle):
    _group, thread, river, meadow, _heron = circle
    held = hold(thread, river)
    assert publishing.send_held_post(author=meadow, held=held) is None
    publishing.discard_held_post(author=meadow, held=held)
    with pytest.raises(Exception, match="No such held post"):
        publishing.edit_held_post(author=meadow, held=held, body="Mine now")
    assert HeldPost.objects.get(pk=held.pk).body == "I want to say this carefully."


def test_editing_revalidates_and_clears_a_refusal(circle):
    _group, thread, river, _meadow, heron = circle
    held = hold(thread, river)
    actions.lock_thread(actor=heron, thread=thread)
    publishing.release_due_posts(now=later())
    with pytest.raises(ValidationError):
        publishing.edit_held_post(author=river, held=held, body="")
    actions.lock_thread(actor=heron, thread=thread, locked=False)
    held.refresh_from_db()
    publishing.edit_held_post(author=river, held=held, body="Said better")
    held.refresh_from_db()
    assert not held.is_refused and held.body == "Said better"
    assert publishing.release_due_posts(now=later()) == 1
    assert [p.source for p in replies(thread)] == ["Said better"]


def test_the_list_releases_what_is_due_first(circle, settings):
    _group, thread, river, _meadow, _heron = circle
    settings.KINSHIP_HOLD_MINUTES = 0
    hold(thread, river, body="Due now")
    settings.KINSHIP_HOLD_MINUTES = 60
    waiting = hold(thread, river, body="Later")
    assert publishing.held_posts_of(author=river) == [waiting]
    assert [p.source for p in replies(thread)] == ["Due now"]


def test_whether_a_member_holds_posts_is_read_with_them(circle, django_assert_num_queries):
    _group, thread, river, _meadow, _heron = circle

    def signed_in():
        return MemberBackend().get_user(river.pk)

    assert not publishing.may_have_held_posts(signed_in())
    held = hold(thread, river)
    member = signed_in()
    with django_assert_num_queries(0):
        assert publishing.may_have_held_posts(member)
    assert publishing.may_have_held_posts(User.objects.get(pk=river.pk))  # asked afresh
    publishing.discard_held_post(author=river, held=held)
    assert not publishing.may_have_held_posts(signed_in())
    assert not publishing.may_have_held_posts(AnonymousUser())


# --- the command and the ASGI worker ---------------------------------------------------------


def test_the_cron_command_releases_what_is_due(circle, settings):
    _group, thread, river, _meadow, _heron = circle
    settings.KINSHIP_HOLD_MINUTES = 0
    hold(thread, river)
    out = StringIO()
    call_command("release_held_posts", stdout=out)
    assert "1 held post(s) released." in out.getvalue()
    assert len(replies(thread)) == 1


@pytest.mark.django_db(transaction=True)
def test_the_asgi_worker_releases_due_posts_by_itself(settings):
    settings.KINSHIP_CHORES_SECONDS = 0.05
    settings.KINSHIP_HOLD_MINUTES = 0
    group = make_group("open-circle")
    river = make_user("river")
    join(river, group)
    publishing.hold_thread(author=river, group=group, title="Soon", body="Out by itself")

    async def published() -> bool:
        return await database_sync_to_async(Thread.objects.filter(title="Soon").exists)()

    async def serve_two_requests_then_wait() -> None:
        await HttpCommunicator(asgi.application, "GET", "/healthz").get_response()
        task = asgi._chore_tasks[asyncio.get_running_loop()]
        await HttpCommunicator(asgi.application, "GET", "/healthz").get_response()
        assert asgi._chore_tasks[asyncio.get_running_loop()] is task  # one per event loop
        for _ in range(100):
            if await published():
                break
            await asyncio.sleep(0.05)
        assert not task.done()  # it goes on after a round

    async_to_sync(serve_two_requests_then_wait)()
    assert Thread.objects.filter(title="Soon", author=river).exists()
    assert not HeldPost.objects.exists()


def test_the_release_loop_can_be_switched_off(settings):
    settings.KINSHIP_CHORES_SECONDS = 0

    async def start() -> bool:
        asgi.start_periodic_chores()
        return asyncio.get_running_loop() in asgi._chore_tasks

    assert async_to_sync(start)() is False


# --- pages -----------------------------------------------------------------------------------


def test_pages_need_a_login_and_a_post(circle):
    _group, thread, river, _meadow, _heron = circle
    held = hold(thread, river)
    anonymous = Client()
    assert anonymous.get("/me/held/").status_code == 302
    client = Client()
    client.force_login(river)
    assert client.get(f"/me/held/{held.pk}/send/").status_code == 405
    assert client.get(f"/me/held/{held.pk}/discard/").status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(river)
    assert strict.post(f"/me/held/{held.pk}/send/").status_code == 403
    assert strict.post(f"/me/held/{held.pk}/discard/").status_code == 403
    assert HeldPost.objects.filter(pk=held.pk).exists() and replies(thread) == []


# --- held for review, then approved: the notifications kept back go out (notify_on_approval)


def kept_back(member) -> list[str]:
    return sorted(Notification.objects.filter(recipient=member).values_list("kind", flat=True))


def test_approving_a_held_reply_sends_its_kept_back_notifications_once(circle):
    group, thread, river, meadow, heron = circle
    kestrel = make_user("kestrel")
    join(kestrel, group)
    WatchedPhrase.objects.create(group=group, pattern="pills", action="hold")
    post = publishing.publish_reply(author=river, thread=thread, body="@kestrel about pills")
    assert post.held_for_review
    assert kept_back(meadow) == [] and kept_back(kestrel) == []
    actions.approve_held(actor=heron, obj=post)
    assert kept_back(meadow) == ["reply"]  # the thread's author, replied to
    assert kept_back(kestrel) == ["mention"]
    publishing.notify_on_approval(obj=post)  # once only
    assert kept_back(meadow) == ["reply"] and kept_back(kestrel) == ["mention"]


def test_dismissing_the_flags_of_a_held_thread_sends_its_mentions(circle):
    group, _thread, river, _meadow, heron = circle
    kestrel = make_user("kestrel")
    join(kestrel, group)
    WatchedPhrase.objects.create(group=group, pattern="pills", action="hold")
    thread = publishing.publish_thread(
        author=river, group=group, title="Pills", body="@kestrel pills again"
    )
    assert thread.held_for_review and kept_back(kestrel) == []
    item = QueueItem.objects.get(object_id=thread.pk, held_by_policy=True)
    actions.dismiss_flags(actor=heron, item=item)
    assert kept_back(kestrel) == ["mention"]


def test_a_post_held_after_an_edit_notifies_nobody_again(circle):
    group, thread, river, meadow, heron = circle
    post = publishing.publish_reply(author=river, thread=thread, body="Hello")
    assert kept_back(meadow) == ["reply"]
    WatchedPhrase.objects.create(group=group, pattern="pills", action="hold")
    publishing.edit_post(editor=river, post=post, body="Hello, pills")
    actions.approve_held(actor=heron, obj=post)
    assert kept_back(meadow) == ["reply"]


# --- thread titles and the link rules (moderation.trust) --------------------------------------


def test_a_link_in_a_new_members_thread_title_is_held_like_one_in_the_body(circle, settings):
    group, _thread, river, _meadow, _heron = circle
    settings.KINSHIP_TRUST_RULES = True
    settings.KINSHIP_NEW_MEMBER_HOLDS = 0  # only the link rules here
    plain = publishing.publish_thread(author=river, group=group, title="Day two", body="Words")
    assert not plain.held_for_review
    linked = publishing.publish_thread(
        author=river, group=group, title="Read pills.com first", body="Words"
    )
    assert linked.held_for_review and linked.hidden_pending_review
    rule = QueueItem.objects.get(object_id=linked.pk).flags.get().details_source
    assert "pills.com" in rule
    phoned = publishing.publish_thread(
        author=river, group=group, title="Call 0412 345 678", body="Words"
    )
    assert phoned.held_for_review
    # An edit that puts a link in the title is held as well.
    opening = Post.objects.get(thread=plain, parent__isnull=True)
    edited = publishing.edit_post(editor=river, post=opening, body="Words", title="see pills.com")
    assert edited.held_for_review


def test_a_blocked_domain_in_a_title_is_refused_on_the_title(circle):
    group, _thread, river, _meadow, heron = circle
    actions.add_domain_rule(actor=heron, group=group, domain="pills.com", kind="block")
    for write in (publishing.publish_thread, publishing.hold_thread):
        with pytest.raises(ValidationError) as refused:
            write(author=river, group=group, title="www.pills.com deals", body="Words")
        assert "pills.com" in refused.value.message_dict["title"][0]
        with pytest.raises(ValidationError) as refused:
            write(author=river, group=group, title="Deals", body="www.pills.com")
        assert set(refused.value.message_dict) == {"body"}
    assert not Thread.objects.filter(author=river).exists() and not HeldPost.objects.exists()
