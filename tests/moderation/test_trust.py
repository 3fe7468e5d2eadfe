"""Trust levels, link rules and new-member holds: the pure decisions, then each rule through
the forum and chat write paths, approval by moderators and trusted members."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from forum import publishing, selectors
from forum.models import ChatMessage, ChatRoom, Membership, Post, Thread, User
from moderation import actions, permissions, ratelimit, trust
from moderation.models import (
    DomainRule,
    Flag,
    LinkApproval,
    ModerationLogEntry,
    QueueItem,
    Sanction,
)
from tests.conftest import join, make_group, make_user

Level = trust.Level
LEVELS = {
    1: {"days": 2, "posts": 3},
    2: {"days": 30, "posts": 30, "removed": 2},
    3: {"days": 90, "posts": 100, "removed": 0},
}


# --- pure decisions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("standing", "level"),
    [
        (trust.Standing(days=0, published=0), Level.NEW),
        (trust.Standing(days=10, published=2), Level.NEW),
        (trust.Standing(days=1, published=50), Level.NEW),
        (trust.Standing(days=2, published=3), Level.MEMBER),
        (trust.Standing(days=30, published=30), Level.REGULAR),
        (trust.Standing(days=30, published=30, removed=3), Level.MEMBER),
        (trust.Standing(days=30, published=30, recent_sanctions=1), Level.MEMBER),
        (trust.Standing(days=90, published=100), Level.TRUSTED),
        (trust.Standing(days=90, published=100, removed=1), Level.REGULAR),
        (trust.Standing(days=0, published=0, moderates=True), Level.TRUSTED),
    ],
)
def test_levels_follow_time_and_good_standing(standing, level):
    assert trust.level_of(standing, LEVELS) == level


def test_link_hosts_come_from_the_rendered_html():
    from forum import sanitize

    html = sanitize.render_markdown(
        "see example.com and [x](https://Sub.Spam.com/p) and @river and /local and a@mail.com",
        mentions={"river"},
    )
    assert trust.link_hosts(html) == ["example.com", "sub.spam.com", "mail.com"]


def test_domains_normalise_and_cover_subdomains():
    assert trust.normalise_domain(" https://WWW.Example.com/path ") == "example.com"
    assert trust.validate_domain("not a domain") is not None
    assert trust.validate_domain("example.com") is None
    assert trust.matching_domain("a.b.example.com", {"example.com"}) == "example.com"
    assert trust.matching_domain("notexample.com", {"example.com"}) is None


def facts(level=Level.NEW, text="hello", html="<p>hello</p>", published=5, **extra):
    return trust.Facts(level=level, published=published, text=text, html=html, **extra)


LINK = '<p><a href="https://pills.com/x">pills.com</a></p>'


def test_assess_links_by_level_and_domain_lists():
    assert trust.assess(facts(html=LINK)).held
    assert not trust.assess(facts(level=Level.MEMBER, html=LINK)).held
    allowed = trust.DomainRules(allowed=frozenset({"pills.com"}))
    assert trust.assess(facts(html=LINK, domains=allowed)).outcome == trust.Outcome.PUBLISH
    blocked = trust.DomainRules(blocked=frozenset({"pills.com"}))
    verdict = trust.assess(facts(level=Level.TRUSTED, html=LINK, domains=blocked))
    assert verdict.rejected and "pills.com" in verdict.reason
    # The blocklist applies even with trust rules off.
    assert trust.assess(facts(html=LINK, domains=blocked, trust_rules=False)).rejected
    assert not trust.assess(facts(html=LINK, trust_rules=False)).held


@pytest.mark.parametrize(
    ("text", "held"),
    [
        ("call 0412 345 678 any time", True),
        ("+44 (20) 7946-0958", True),
        ("sober since 2024-01-15, 365 days", False),
        ("DM me for details", True),
        ("message me privately", True),
        ("my WhatsApp is on my profile", True),
        ("the meeting helped me", False),
    ],
)
def test_new_members_phone_numbers_and_solicitation_are_held(text, held):
    assert trust.assess(facts(text=text)).held is held
    assert not trust.assess(facts(level=Level.MEMBER, text=text)).held


def test_a_new_members_first_posts_wait_and_mentions_follow_trust():
    limits = trust.Limits(new_member_holds=2)
    assert trust.assess(facts(published=1), limits).rule == trust.NEW_MEMBER_RULE
    assert not trust.assess(facts(published=2), limits).held
    assert not trust.assess(facts(published=0, first_post=False), limits).held
    assert trust.assess(facts(level=Level.NEW, mentions=3)).rejected
    assert not trust.assess(facts(level=Level.REGULAR, mentions=3)).rejected


def test_combine_keeps_censoring_and_both_reasons():
    watched = trust.Verdict(trust.Outcome.CENSOR, text="***", rule="watched")
    held = trust.Verdict(trust.Outcome.HOLD, rule="new")
    combined = trust.combine(watched, held)
    assert combined.held and combined.text == "***" and combined.rule == "watched; new"
    assert trust.combine(watched, trust.Verdict(trust.Outcome.PUBLISH)) is watched


def test_rate_limits_have_per_level_variants(settings):
    settings.KINSHIP_RATE_LIMITS = {"chat": (3, 10), "chat.0": (1, 10)}
    assert ratelimit.limit_for("chat", 0) == (1, 10)
    assert ratelimit.limit_for("chat", 2) == (3, 10)
    ratelimit.hit("chat", key="k", now=100.0, level=0)
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.hit("chat", key="k", now=101.0, level=0)
    ratelimit.hit("chat", key="k", now=101.0, level=2)  # the same counter, a larger allowance


def test_earning_trust_never_lowers_a_rate_limit(settings):
    """A trusted member's variant is a raise over the default; an operator who raises the
    plain limit above it must not leave trusted members with less than everyone else."""
    settings.KINSHIP_RATE_LIMITS = {
        "chat": (1000, 10), "chat.0": (5, 10), "chat.3": (15, 10),
        "thread": (5, 600), "thread.0": (2, 600), "thread.1": (3, 600), "thread.3": (10, 600),
    }  # fmt: skip
    assert [ratelimit.limit_for("chat", level) for level in Level] == [
        (5, 10), (1000, 10), (1000, 10), (1000, 10),
    ]  # fmt: skip
    assert [ratelimit.limit_for("thread", level) for level in Level] == [
        (2, 600), (3, 600), (5, 600), (10, 600),
    ]  # fmt: skip
    for _ in range(20):  # more than "chat.3" allows, none refused
        ratelimit.hit("chat", key="trusted", now=200.0, level=Level.TRUSTED)


# --- through the write paths ---------------------------------------------------------------


@pytest.fixture
def circle(db, settings):
    settings.KINSHIP_TRUST_RULES = True
    settings.KINSHIP_TRUST_LEVELS = LEVELS
    settings.KINSHIP_NEW_MEMBER_HOLDS = 2
    group = make_group("open-circle")
    newcomer, moderator = make_user("river"), make_user("heron")
    join(newcomer, group)
    join(moderator, group, Membership.Role.MODERATOR)
    settings.KINSHIP_RATE_LIMITS = {"chat": (1000, 60), "thread": (100, 60), "reply": (100, 60)}
    room = ChatRoom.objects.create(group=group, name="General", slug="general", is_default=True)
    return group, newcomer, moderator, room


def veteran(handle: str, group, *, published: int = 100) -> User:
    """A member with months behind them and many published posts."""
    user = make_user(handle)
    User.objects.filter(pk=user.pk).update(date_joined=timezone.now() - timedelta(days=120))
    user.refresh_from_db()
    join(user, group)
    room = ChatRoom.objects.get(group=group, is_default=True)
    ChatMessage.objects.bulk_create(
        ChatMessage(
            room=room,
            author=user,
            client_id=f"v{i}",
            source="hi",
            html="hi",
            seq=user.pk * 1000 + i,
            version=user.pk * 1000 + i,
        )
        for i in range(published)
    )
    return user


def test_trust_level_is_gathered_from_the_database(circle):
    group, newcomer, moderator, _room = circle
    assert permissions.trust_level(newcomer, group) == Level.NEW
    assert permissions.trust_level(moderator, group) == Level.TRUSTED
    elder = veteran("elder", group)
    assert permissions.trust_level(elder, group) == Level.TRUSTED
    Sanction.objects.create(member=elder, group=group, kind=Sanction.Kind.WARNING)
    assert permissions.trust_level(elder, group) == Level.MEMBER


def test_the_standing_counts_what_stayed_up_and_what_moderators_took_down(
    circle, django_assert_num_queries
):
    group, newcomer, _moderator, room = circle
    elder = veteran("elder", group, published=0)
    now = timezone.now()

    def thread(title: str, **hidden) -> Post:
        made = Thread.objects.create(group=group, author=elder, title=title, **hidden)
        return Post.objects.create(thread=made, author=elder, source="o", html="o", path=title)

    shown = thread("shown")
    removed_thread = thread("gone", hidden_at=now)  # its opening post counts as removed
    thread("waiting", hidden_at=now, hidden_pending_review=True)  # neither
    for n, fields in enumerate(
        [
            {},  # published
            {"hidden_at": now},  # removed by a moderator
            {"hidden_at": now, "hidden_pending_review": True},  # held: neither
            {"removed_by_author_at": now},  # taken back by its author: neither
        ]
    ):
        Post.objects.create(
            thread=shown.thread, parent=shown, author=elder, source="r", html="r",
            path=f"r{n}", **fields,
        )  # fmt: skip
    # A reply in the removed thread: not published, and not removed on its own.
    Post.objects.create(
        thread=removed_thread.thread, parent=removed_thread, author=elder, source="r",
        html="r", path="rx",
    )  # fmt: skip
    messages = [
        {},  # published
        {"removed_at": now, "removed_by": ChatMessage.RemovedBy.MODERATOR},  # removed
        {"removed_at": now, "removed_by": ChatMessage.RemovedBy.AUTHOR},  # neither
    ]
    for n, fields in enumerate(messages):
        ChatMessage.objects.create(
            room=room, author=elder, client_id=f"c{n}", source="m", html="m", seq=n + 1,
            version=n + 1, **fields,
        )  # fmt: skip
    old = Sanction.objects.create(member=elder, group=group, kind=Sanction.Kind.WARNING)
    Sanction.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=91))
    Sanction.objects.create(member=elder, group=group, kind=Sanction.Kind.WARNING)

    standing = permissions.trust_standing(elder, group)
    # Published: the shown opening post and reply, one message. Removed: the removed
    # thread's opening post, the removed reply, the removed message.
    assert (standing.published, standing.removed, standing.recent_sanctions) == (3, 3, 1)
    assert 119 < standing.days < 121
    assert not standing.moderates
    assert permissions.trust_standing(newcomer, group).published == 0

    # A chat write reads the same counts with its room: its trust check then asks nothing.
    writing = User.objects.get(pk=elder.pk)
    selectors.room_to_write(writing, room.pk)
    with django_assert_num_queries(0):
        read = permissions.trust_standing(writing, group)
    assert (read.published, read.removed, read.recent_sanctions) == (3, 3, 1)


def test_an_opening_post_taken_down_with_its_thread_counts_once(circle):
    group, _newcomer, _moderator, _room = circle
    elder, now = veteran("elder", group, published=0), timezone.now()
    both = Thread.objects.create(group=group, author=elder, title="both", hidden_at=now)
    Post.objects.create(thread=both, author=elder, source="o", html="o", path="b", hidden_at=now)
    assert permissions.trust_standing(elder, group).removed == 1


def test_published_is_counted_only_as_far_as_a_threshold_asks(circle, settings):
    """A member's thousandth message must not cost their trust check a thousand rows."""
    settings.KINSHIP_TRUST_LEVELS = {1: {"days": 2, "posts": 3}, 3: {"days": 90, "posts": 5}}
    settings.KINSHIP_NEW_MEMBER_HOLDS = 2
    group = circle[0]
    assert permissions.trust_standing(veteran("busy", group, published=9), group).published == 5
    assert permissions.trust_standing(veteran("quiet", group, published=4), group).published == 4
    assert permissions.trust_level(veteran("steady", group, published=5), group) == Level.TRUSTED
    settings.KINSHIP_NEW_MEMBER_HOLDS = 7
    assert permissions.trust_standing(veteran("chatty", group, published=9), group).published == 7


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's query plans")
def test_what_was_taken_down_is_counted_through_its_partial_indexes(db):
    """Not by reading every post and message the member ever wrote: in the generic plan a
    prepared statement settles on too, which cannot see its parameters' values."""
    statement = permissions._trust_counts_sql() % {"member": "$1", "cap": "$2", "since": "$3"}
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE trust_counts(bigint, bigint, timestamptz) AS {statement}")
        cursor.execute("EXPLAIN EXECUTE trust_counts(1, 100, now())")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("DEALLOCATE trust_counts")
    for index in ("chat_removed_by_moderator", "post_hidden", "thread_hidden"):
        assert index in plan, plan


def test_a_new_members_first_thread_and_reply_are_held_then_approved(circle):
    group, newcomer, moderator, _room = circle
    thread = publishing.publish_thread(author=newcomer, group=group, title="Hi", body="Day one.")
    assert thread.held_for_review and thread.hidden_pending_review
    assert thread.hidden_reason == publishing.HOLD_NOTICE
    item = QueueItem.objects.get(object_id=thread.pk, held_by_policy=True)
    assert trust.NEW_MEMBER_RULE in item.flags.get().details_source
    actions.dismiss_flags(actor=moderator, item=item)
    thread.refresh_from_db()
    item.refresh_from_db()
    assert not thread.is_hidden and item.resolution == "Approved"
    assert item.approval_seconds is not None and item.approval_seconds >= 0
    entry = ModerationLogEntry.objects.get(action=ModerationLogEntry.Action.CONTENT_APPROVED)
    assert entry.target_id == thread.pk
    # One published (the opening post): the next reply still waits, the one after does not.
    reply = publishing.publish_reply(author=newcomer, thread=thread, body="Thanks all.")
    assert reply.held_for_review
    actions.approve_held(actor=moderator, obj=reply)
    later = publishing.publish_reply(author=newcomer, thread=thread, body="Back again.")
    assert not later.held_for_review and not later.is_hidden


def test_a_new_members_first_chat_messages_are_held(circle):
    _group, newcomer, moderator, room = circle
    message, _ = publishing.publish_chat_message(
        author=newcomer, room=room, body="hello", client_id="a"
    )
    assert message.removed_by == ChatMessage.RemovedBy.REVIEW
    assert message.removal_reason == publishing.HOLD_NOTICE
    actions.approve_held(actor=moderator, obj=message)
    message.refresh_from_db()
    assert not message.is_removed
    assert QueueItem.objects.get(object_id=message.pk).approval_seconds is not None


@pytest.mark.parametrize("path", ["forum", "chat"])
def test_links_phone_numbers_and_solicitation_from_new_members_are_held(circle, settings, path):
    settings.KINSHIP_NEW_MEMBER_HOLDS = 0  # only the link rules here
    group, newcomer, _moderator, room = circle
    thread = Thread.objects.create(group=group, author=newcomer, title="t")
    Post.objects.create(thread=thread, author=newcomer, source="x", html="x", path="x")
    for n, body in enumerate(["see pills.com", "call 0412 345 678", "DM me", "plain words"]):
        if path == "forum":
            obj = publishing.publish_reply(author=newcomer, thread=thread, body=body)
            held = obj.hidden_pending_review
        else:
            obj, _ = publishing.publish_chat_message(
                author=newcomer, room=room, body=body, client_id=str(n)
            )
            held = obj.removed_by == ChatMessage.RemovedBy.REVIEW
        assert held is (body != "plain words"), body


@pytest.mark.parametrize("path", ["forum", "chat"])
def test_blocked_domains_are_refused_and_allowed_ones_pass_for_new_members(circle, settings, path):
    group, newcomer, moderator, room = circle
    actions.add_domain_rule(actor=moderator, group=group, domain="https://pills.com/", kind="block")
    actions.add_domain_rule(actor=moderator, group=group, domain="aa.org", kind="allow")
    elder = veteran("elder", group)
    thread = publishing.publish_thread(author=elder, group=group, title="t", body="b")

    def send(author, body, client_id):
        if path == "forum":
            return publishing.publish_reply(author=author, thread=thread, body=body)
        return publishing.publish_chat_message(
            author=author, room=room, body=body, client_id=client_id
        )[0]

    with pytest.raises(ValidationError) as refused:
        send(elder, "go to www.pills.com now", "a")
    assert "pills.com" in str(refused.value)
    settings.KINSHIP_NEW_MEMBER_HOLDS = 0  # allowed even for a new member: only links here
    sent = send(newcomer, "meetings: https://meetings.aa.org/find", "b")
    assert not getattr(sent, "held_for_review", False)
    assert not (sent.is_removed if path == "chat" else sent.is_hidden)


def test_mentions_per_post_follow_trust(circle):
    group, newcomer, _moderator, room = circle
    for handle in ("ann1", "bob2", "cat3"):
        make_user(handle)
    with pytest.raises(ValidationError, match="up to 2 people"):
        publishing.publish_thread(author=newcomer, group=group, title="t", body="@ann1 @bob2 @cat3")
    with pytest.raises(ValidationError, match="up to 2 people"):
        publishing.publish_chat_message(
            author=newcomer, room=room, body="@ann1 @bob2 @cat3", client_id="m"
        )


def test_trusted_members_approve_held_posts_unless_flagged(circle):
    group, newcomer, moderator, _room = circle
    elder, regular = veteran("elder", group), veteran("plain", group, published=40)
    thread = publishing.publish_thread(author=newcomer, group=group, title="Hi", body="Day one.")
    with pytest.raises(PermissionDenied):
        actions.approve_held(actor=regular, obj=thread)
    with pytest.raises(PermissionDenied):
        actions.approve_held(actor=newcomer, obj=thread)
    item = actions.approve_held(actor=elder, obj=thread)
    assert item.resolved_by == elder
    thread.refresh_from_db()
    assert not thread.is_hidden
    with pytest.raises(PermissionDenied):  # nothing left to approve
        actions.approve_held(actor=elder, obj=thread)
    reply = publishing.publish_reply(author=newcomer, thread=thread, body="Me again.")
    # Flagged before it was held (members cannot flag what is hidden): moderators decide.
    item = actions.held_item(reply)
    Flag.objects.create(
        flagger=regular,
        content_type=item.content_type,
        object_id=reply.pk,
        item=item,
        reason="spam",
    )
    with pytest.raises(PermissionDenied, match="moderator"):
        actions.approve_held(actor=elder, obj=reply)
    actions.approve_held(actor=moderator, obj=reply)


def test_domain_rules_are_validated_and_logged(circle):
    group, newcomer, moderator, _room = circle
    with pytest.raises(ValidationError):
        actions.add_domain_rule(actor=moderator, group=group, domain="not a domain", kind="block")
    with pytest.raises(PermissionDenied):
        actions.add_domain_rule(actor=newcomer, group=group, domain="x.test", kind="block")
    rule = actions.add_domain_rule(actor=moderator, group=group, domain="x.test", kind="block")
    with pytest.raises(ValidationError):
        actions.add_domain_rule(actor=moderator, group=group, domain="X.test", kind="allow")
    actions.remove_domain_rule(actor=moderator, rule=rule)
    assert not DomainRule.objects.exists()
    logged = ModerationLogEntry.objects.values_list("action", flat=True)
    assert set(logged) >= {"domain_added", "domain_removed"}


# --- pages ---------------------------------------------------------------------------------


def test_moderators_keep_link_rules_on_their_page(circle, client):
    group, newcomer, moderator, _room = circle
    client.force_login(newcomer)
    assert client.get(f"/moderation/g/{group.slug}/links/").status_code == 403
    client.force_login(moderator)
    page = client.post(
        f"/moderation/g/{group.slug}/links/", {"domain": "bad site", "kind": "block"}
    )
    assert page.status_code == 200 and "Enter a domain" in page.content.decode()
    client.post(f"/moderation/g/{group.slug}/links/", {"domain": "pills.com", "kind": "block"})
    rule = DomainRule.objects.get(group=group)
    assert rule.domain == "pills.com"
    assert "pills.com" in client.get(f"/moderation/g/{group.slug}/links/").content.decode()
    client.post(f"/moderation/links/{rule.pk}/remove/")
    assert not DomainRule.objects.exists()


def test_a_trusted_member_approves_from_the_held_post(circle, client):
    group, newcomer, moderator, _room = circle
    elder = veteran("elder", group)
    thread = publishing.publish_thread(author=elder, group=group, title="t", body="b")
    reply = publishing.publish_reply(author=newcomer, thread=thread, body="First words.")
    client.force_login(elder)
    page = client.get(thread.get_absolute_url()).content.decode()
    approve_url = f"/moderation/approve/post/{reply.pk}/"
    assert approve_url in page
    assert "First words." in client.get(approve_url).content.decode()
    client.post(approve_url)
    reply.refresh_from_db()
    assert not reply.is_hidden
    # The median wait shows on the queue page.
    client.force_login(moderator)
    assert "waited" in client.get("/moderation/queue/").content.decode()


def test_members_without_trust_see_no_approve_link(circle, client):
    group, newcomer, _moderator, _room = circle
    plain = veteran("plain", group, published=5)
    thread = publishing.publish_thread(author=plain, group=group, title="t", body="b")
    reply = publishing.publish_reply(author=newcomer, thread=thread, body="First words.")
    client.force_login(plain)
    assert "/moderation/approve/" not in client.get(thread.get_absolute_url()).content.decode()
    assert client.get(f"/moderation/approve/post/{reply.pk}/").status_code == 403


def test_link_rules_are_read_once_per_change_in_each_worker(circle, django_assert_num_queries):
    group, _newcomer, moderator, _room = circle
    first = publishing._domain_rules(group)
    with django_assert_num_queries(0):
        assert publishing._domain_rules(group) is first
    # Saving a rule moves the shared token at once (and again on commit).
    actions.add_domain_rule(actor=moderator, group=group, domain="spam.example", kind="block")
    assert "spam.example" in publishing._domain_rules(group).blocked


def test_approving_from_the_item_page_says_approved(circle, client):
    group, newcomer, moderator, _room = circle
    thread = publishing.publish_thread(author=newcomer, group=group, title="Hi", body="Day one.")
    item = QueueItem.objects.get(object_id=thread.pk, held_by_policy=True)
    client.force_login(moderator)
    page = client.post(
        f"/moderation/items/{item.pk}/", {"action": "dismiss", "dismiss-note": ""}, follow=True
    )
    html = page.content.decode()
    assert "Approved: everyone can see it now." in html and "Flags dismissed." not in html


@pytest.mark.parametrize("path", ["forum", "chat"])
def test_a_leader_lets_a_new_member_past_the_link_threshold_and_can_take_it_back(
    circle, settings, path
):
    settings.KINSHIP_NEW_MEMBER_HOLDS = 0  # only the link rules here
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 0
    group, newcomer, _moderator, room = circle
    leader = make_user("lantern")
    join(leader, group, Membership.Role.LEADER)
    thread = Thread.objects.create(group=group, author=newcomer, title="t")
    Post.objects.create(thread=thread, author=newcomer, source="x", html="x", path="x")
    DomainRule.objects.create(group=group, domain="pills.com", kind=DomainRule.Kind.BLOCK)
    sent = iter(range(100))

    def held(body: str) -> bool:
        if path == "forum":
            return publishing.publish_reply(author=newcomer, thread=thread, body=body).is_hidden
        message, _ = publishing.publish_chat_message(
            author=newcomer, room=room, body=body, client_id=str(next(sent))
        )
        return message.removed_by == ChatMessage.RemovedBy.REVIEW

    assert held("a meeting list: meetings.example.org")
    approval = actions.allow_links(actor=leader, member=newcomer, group=group)
    assert not held("a meeting list: meetings.example.org")
    assert held("call 0412 345 678")  # only links: the other new-member rules still apply
    with pytest.raises(ValidationError, match="not allowed here"):
        held("pills.com has deals")  # and a blocked domain stays blocked
    entry = ModerationLogEntry.objects.get(action=ModerationLogEntry.Action.LINKS_ALLOWED)
    assert entry.member_id == newcomer.pk and entry.actor_id == leader.pk
    assert newcomer.notifications.filter(text__contains="You can now post links").exists()
    actions.withdraw_links(actor=leader, approval=approval)
    assert held("a meeting list: meetings.example.org")


def test_the_link_allowances_page(circle, client):
    group, newcomer, moderator, _room = circle
    url = f"/moderation/g/{group.slug}/links/members/"
    client.force_login(newcomer)
    assert client.get(url).status_code == 403
    client.force_login(moderator)
    page = client.post(url, {"handle": "nobody-here"})
    assert page.status_code == 200 and "There is no member called nobody-here" in page.text
    outsider = make_user("faraway")
    page = client.post(url, {"handle": "faraway"})
    assert "faraway is not a member of" in page.text
    assert client.post(url, {"handle": "@river"}).status_code == 302
    page = client.post(url, {"handle": "river"})
    assert "may post links here already" in page.text
    approval = LinkApproval.objects.get(member=newcomer, group=group)
    assert "river" in client.get(url).text
    client.force_login(outsider)
    assert client.post(f"/moderation/links/members/{approval.pk}/withdraw/").status_code == 403
    client.force_login(moderator)
    client.post(f"/moderation/links/members/{approval.pk}/withdraw/")
    assert not LinkApproval.objects.exists()
