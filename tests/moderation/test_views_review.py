"""The review side through HTTP: the queue, an item's page and its actions, a member's
ladder; who may see each page, and that the flagged member never learns who flagged."""

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from forum import conversations, publishing
from forum.models import ChatMessage, ChatRoom, Membership, Post, SupportGroup, Thread, User
from moderation import actions, selectors
from moderation.models import (
    Appeal,
    FlagReason,
    ModerationLogEntry,
    ModeratorNote,
    QueueItem,
    Rule,
    Sanction,
)
from tests.conftest import join, make_group, make_user

pytestmark = pytest.mark.django_db
Action = ModerationLogEntry.Action
QUEUE = "/moderation/queue/"


@dataclass
class World:
    group: SupportGroup
    elsewhere: SupportGroup
    river: User  # a member, author of the thread and a reply
    watcher: User  # a member who flags; never posts, so her handle shows only as flagger
    leader: User
    tender: User  # the group's moderator
    stranger_mod: User  # moderates another group only
    warden: User  # site moderator
    thread: Thread
    reply: Post


@pytest.fixture
def world(settings, public_group, member, site_moderator) -> World:
    settings.KINSHIP_RATE_LIMITS = {k: (10_000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 0
    settings.KINSHIP_FLAGS_TO_HIDE = 3
    elsewhere = make_group("other-circle")
    watcher, leader = make_user("quietwatcher"), make_user("lantern")
    tender, stranger_mod = make_user("tender"), make_user("faraway")
    join(member, public_group)
    join(watcher, public_group)
    join(leader, public_group, Membership.Role.LEADER)
    join(tender, public_group, Membership.Role.MODERATOR)
    join(tender, elsewhere, Membership.Role.MODERATOR)
    join(stranger_mod, elsewhere, Membership.Role.MODERATOR)
    thread = publishing.publish_thread(
        author=member, group=public_group, title="Thirty days", body="Made it to 30."
    )
    reply = publishing.publish_reply(author=member, thread=thread, body="Call me on 555-0100")
    return World(
        public_group,
        elsewhere,
        member,
        watcher,
        leader,
        tender,
        stranger_mod,
        site_moderator,
        thread,
        reply,
    )


def as_user(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def get(client: Client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.content.decode()


def item_url(item: QueueItem) -> str:
    return reverse("moderation:item", kwargs={"item_id": item.pk})


def member_url(user: User) -> str:
    return reverse("moderation:member", kwargs={"handle": user.handle})


def flag(world: World, obj, reason: str = FlagReason.HARASSMENT, by: User | None = None):
    return actions.flag(flagger=by or world.watcher, obj=obj, reason=reason, details="Not kind")


def queue_row(html: str, item: QueueItem) -> str:
    """The whole <li> of one item, its classes included."""
    found = re.search(rf'<li [^>]*id="queue-item-{item.pk}".*?</li>', html, re.S)
    assert found, f"item {item.pk} is not in the queue"
    return found.group(0)


def row_order(html: str, items: list[QueueItem]) -> list[int]:
    positions = {item.pk: html.index(f'id="queue-item-{item.pk}"') for item in items}
    return sorted(positions, key=positions.get)


# --- who may see what -------------------------------------------------------------------


def test_the_queue_is_for_moderators_only(world):
    flag(world, world.reply)
    response = Client().get(QUEUE)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login")
    for user in (world.river, world.watcher, world.leader):
        get(as_user(user), QUEUE, 403)
    assert "Thirty days" in get(as_user(world.tender), QUEUE)
    assert "Thirty days" in get(as_user(world.warden), QUEUE)
    # A moderator of another group reviews nothing of this one.
    assert "Thirty days" not in get(as_user(world.stranger_mod), QUEUE)


def test_the_navigation_links_the_queue_for_reviewers_only(world):
    link = f'href="{QUEUE}"'
    assert link in get(as_user(world.tender), "/")
    assert link in get(as_user(world.warden), "/")
    assert link not in get(as_user(world.river), "/")
    assert link not in get(as_user(world.leader), "/")


def test_the_queue_link_follows_promotion_and_demotion_on_the_next_page(world):
    link = f'href="{QUEUE}"'
    client = as_user(world.river)
    assert link not in get(client, "/")
    membership = Membership.objects.get(user=world.river, group=world.group)
    membership.role = Membership.Role.MODERATOR
    membership.save()
    assert link in get(client, "/")  # no new login needed
    membership.role = Membership.Role.MEMBER
    membership.save()
    assert link not in get(client, "/")
    get(client, QUEUE, 403)


def test_the_queue_link_costs_no_query_of_its_own(world, client):
    """Whether the member moderates a group is read with them (forum.backends), so a page
    that shows the navigation asks nothing more for the link."""
    client.force_login(world.tender, backend="forum.backends.MemberBackend")
    get(client, "/help/")  # the page, warm
    with CaptureQueriesContext(connection) as queries:
        assert f'href="{QUEUE}"' in get(client, "/help/")
    asked = [q["sql"] for q in queries.captured_queries]
    assert not any(sql.startswith('SELECT "forum_membership"') for sql in asked), asked


def test_group_moderators_see_their_groups_and_site_moderators_everything(world):
    flag(world, world.reply)
    other_author = make_user("pebble")
    join(other_author, world.elsewhere)
    join(world.watcher, world.elsewhere)
    far = publishing.publish_thread(
        author=other_author, group=world.elsewhere, title="Far thread", body="Hello"
    )
    flag(world, far)
    actions.flag(flagger=world.watcher, obj=other_author, reason=FlagReason.SPAM, details="ads")

    stranger = get(as_user(world.stranger_mod), QUEUE)
    assert "Far thread" in stranger and "Thirty days" not in stranger
    assert "@pebble" not in stranger  # member flags are site-wide: site moderators only
    tender = get(as_user(world.tender), QUEUE)
    assert "Far thread" in tender and "Thirty days" in tender
    site = get(as_user(world.warden), QUEUE)
    assert "Far thread" in site and "Thirty days" in site and "@pebble" in site
    # Filters: one group, or only the site-wide items.
    filtered = get(as_user(world.warden), f"{QUEUE}?group={world.elsewhere.slug}")
    assert "Far thread" in filtered and "Thirty days" not in filtered
    site_only = get(as_user(world.warden), f"{QUEUE}?group=site")
    assert "@pebble" in site_only and "Far thread" not in site_only


def test_queue_rows_say_what_where_why_and_sort_urgent_then_weight_then_age(world, settings):
    flaggers = [make_user(f"peer{i}") for i in range(3)]
    for peer in flaggers:
        join(peer, world.group)
    light = publishing.publish_reply(author=world.river, thread=world.thread, body="light")
    heavy = publishing.publish_reply(author=world.river, thread=world.thread, body="heavy")
    worry = publishing.publish_reply(author=world.river, thread=world.thread, body="worry")
    flag(world, light, FlagReason.OTHER)
    flag(world, heavy, FlagReason.SPAM, by=flaggers[0])
    flag(world, heavy, FlagReason.SPAM, by=flaggers[1])
    flag(world, worry, FlagReason.CRISIS)
    older = publishing.publish_reply(author=world.river, thread=world.thread, body="older")
    flag(world, older, FlagReason.OTHER)
    items = {
        name: QueueItem.objects.get(object_id=obj.pk, content_type__model="post")
        for name, obj in {"light": light, "heavy": heavy, "worry": worry, "older": older}.items()
    }
    long_ago = timezone.now() - timedelta(minutes=settings.KINSHIP_QUEUE_WAIT_MINUTES + 5)
    QueueItem.objects.filter(pk=items["older"].pk).update(opened_at=long_ago)

    html = get(as_user(world.tender), QUEUE)
    order = row_order(html, list(items.values()))
    assert order == [items[n].pk for n in ("worry", "heavy", "older", "light")]
    heavy_row = queue_row(html, items["heavy"])
    assert "2 flags" in heavy_row and "Spam or solicitation" in heavy_row and "(2)" in heavy_row
    assert "Post" in heavy_row and "Thirty days" in heavy_row
    worry_row = queue_row(html, items["worry"])
    assert "Urgent: support needed" in worry_row and "not an accusation" in worry_row
    older_row = queue_row(html, items["older"])
    assert "waiting over an hour" in older_row and "waiting-long" in older_row
    assert "waiting over" not in heavy_row


def test_each_kind_of_item_says_what_it_is_and_where(world):
    name = world.group.name
    appeal = appealed(world)  # against the removal of world.reply
    post = publishing.publish_reply(author=world.river, thread=world.thread, body="Flagged")
    flag(world, post)
    for peer in (make_user("peer1"), make_user("peer2")):
        join(peer, world.group)
        flag(world, post, FlagReason.SPAM, by=peer)
    flag(world, world.thread)
    flag(world, chat(world.river, lounge(world), "Loud"), by=make_flagger(world))
    conversation = conversations.request_conversation(
        starter=world.river, recipient=world.watcher, note="Talk about mornings?"
    )
    conversations.accept(user=world.watcher, conversation=conversation)
    flag(world, chat(world.river, ChatRoom.objects.get(pk=conversation.room_id), "Just us"))
    flag(world, world.river, FlagReason.SPAM)
    gone = publishing.publish_reply(author=world.river, thread=world.thread, body="Soon gone")
    flag(world, gone)
    Post.objects.filter(pk=gone.pk).delete()

    def row(about) -> str:
        item = QueueItem.objects.get(
            object_id=about.pk, content_type__model=about.__class__.__name__.lower()
        )
        return " ".join(re.sub(r"<[^>]+>", " ", queue_row(html, item)).split())

    html = get(as_user(world.warden), QUEUE)
    assert f"Post by {world.river.handle} in “Thirty days”, {name}" in row(post)
    assert f"Thread by {world.river.handle} “Thirty days” in {name}" in row(world.thread)
    (loud,) = ChatMessage.objects.filter(source="Loud")
    assert f"Chat message by {world.river.handle} in {name} / Lounge" in row(loud)
    (private,) = ChatMessage.objects.filter(source="Just us")
    assert f"Direct message by {world.river.handle} in a private conversation ({name})" in row(
        private
    )
    assert f"Member by {world.river.handle} @{world.river.handle}" in row(world.river)
    assert f"Deleted content by {world.river.handle} {name}" in row(gone)  # its group only
    spam, harassment = FlagReason.SPAM.label, FlagReason.HARASSMENT.label
    assert f"3 flags: {spam} (2), {harassment} (1)" in row(post)  # the most given first
    assert "hidden pending review" in row(post)
    assert f"1 flag: {spam} (1)" in row(world.river)
    appeal_row = " ".join(re.sub(r"<[^>]+>", " ", queue_row(html, appeal)).split())
    assert f"Appeal by {world.river.handle} against “removed” " in appeal_row
    assert appeal_row.count(" flag") == 0  # an appeal has no flags to count


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's query plans")
@pytest.mark.parametrize("groups", [None, 2])
def test_the_queue_reads_open_items_through_their_index_in_the_generic_plan(db, groups):
    """The plan a prepared statement settles on after five runs cannot see its
    parameters: the open state, a constant of the statement, must still lead to the index,
    or PostgreSQL plans every page anew (bench/README.md)."""
    values = {"me": "$1", "limit": "$2", "offset": "$3", "group0": "$4", "group1": "$5"}
    statement = selectors._queue_sql(groups, "") % values
    types = "bigint, bigint, bigint" + (", bigint, bigint" if groups else "")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE queue_page({types}) AS {statement}")
        arguments = "1, 51, 0" + (", 1, 2" if groups else "")
        cursor.execute(f"EXPLAIN EXECUTE queue_page({arguments})")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("DEALLOCATE queue_page")
    assert "queueitem_open_order" in plan, plan


def test_the_live_queue_fetches_only_the_list(world):
    flag(world, world.reply)
    client = as_user(world.tender)
    fragment = get(client, f"{QUEUE}?fragment=1")
    assert fragment.lstrip().startswith('<div id="queue-list"') and "<html" not in fragment
    assert "Thirty days" in fragment
    by_header = client.get(QUEUE, headers={"X-Requested-With": "fetch"}).content.decode()
    assert by_header.lstrip().startswith('<div id="queue-list"')


def test_queue_queries_do_not_grow_with_the_items(world):
    client = as_user(world.warden)
    room = lounge(world)

    def add_items(count: int) -> None:
        for i in range(count):
            author = make_user(f"author{QueueItem.objects.count()}x{i}")
            join(author, world.group)
            post = publishing.publish_reply(author=author, thread=world.thread, body=f"p{i}")
            thread = publishing.publish_thread(
                author=author, group=world.group, title=f"T{i}", body="b"
            )
            message, _ = publishing.publish_chat_message(
                author=author, room=room, body=f"m{i}", client_id=f"c{author.pk}"
            )
            for obj in (post, thread, message, author):
                flag(world, obj, FlagReason.SPAM)
            entry = actions.warn_member(
                actor=world.tender, member=author, group=world.group, reason="Be kind"
            )
            actions.appeal(
                member=author,
                entry=ModerationLogEntry.objects.get(target_id=entry.pk, target_type="sanction"),
                text="Please look again",
            )

    add_items(1)
    get(client, QUEUE)  # warm the session
    with CaptureQueriesContext(connection) as few:
        get(client, QUEUE)
    add_items(9)
    with CaptureQueriesContext(connection) as many:
        html = get(client, QUEUE)
    assert html.count('class="review-row') == selectors.QUEUE_PER_PAGE == 50
    assert len(many) == len(few), [q["sql"] for q in many]


def test_the_queue_pages_keep_their_filter_and_the_live_refresh_fetches_the_page(
    world, monkeypatch
):
    monkeypatch.setattr(selectors, "QUEUE_PER_PAGE", 2)
    peers = [make_user(f"peer{i}") for i in range(3)]
    posts = []
    for i, peer in enumerate(peers):
        join(peer, world.group)
        posts.append(publishing.publish_reply(author=peer, thread=world.thread, body=f"p{i}"))
        flag(world, posts[-1])
    far_author = make_user("pebble")
    join(far_author, world.elsewhere)
    join(world.watcher, world.elsewhere)
    far = publishing.publish_thread(
        author=far_author, group=world.elsewhere, title="Far thread", body="b"
    )
    flag(world, far)
    items = list(QueueItem.objects.filter(group=world.group).order_by("opened_at", "pk"))
    client = as_user(world.tender)
    filtered = f"{QUEUE}?group={world.group.slug}"

    first = get(client, filtered)
    assert "3 items waiting" in first
    assert row_order(first, items[:2]) == [items[0].pk, items[1].pk]
    assert f"queue-item-{items[2].pk}" not in first
    assert f'href="?group={world.group.slug}&amp;page=2"' in first
    second = get(client, f"{filtered}&page=2")
    assert f"queue-item-{items[2].pk}" in second and "Far thread" not in second
    assert f'href="?group={world.group.slug}&amp;page=1"' in second
    # The live refresh asks for the page it shows, filter included, and gets that page.
    fragment = get(client, f"{filtered}&page=2&fragment=1")
    assert fragment.lstrip().startswith('<div id="queue-list"')
    assert f"queue-item-{items[2].pk}" in fragment and f"queue-item-{items[0].pk}" not in fragment
    assert "fragment" not in re.search(r'<nav class="pagination".*?</nav>', fragment, re.S)[0]
    # A page emptied meanwhile says so and leads back to the first.
    actions.dismiss_flags(actor=world.warden, item=items[2])
    emptied = get(client, f"{filtered}&page=2&fragment=1")
    assert "Back to the first page" in emptied and "2 items waiting" in emptied


# --- an item ---------------------------------------------------------------------------


def test_the_item_page_shows_the_content_in_context_the_flags_and_the_history(world):
    parent = publishing.publish_reply(author=world.watcher, thread=world.thread, body="Parent")
    flagged = publishing.publish_reply(
        author=world.river, thread=world.thread, parent=parent, body="The flagged words"
    )
    publishing.publish_reply(author=world.watcher, thread=world.thread, body="Came after")
    flag(world, flagged)
    item = QueueItem.objects.get(object_id=flagged.pk, content_type__model="post")
    actions.warn_member(actor=world.tender, member=world.river, group=world.group, reason="Tone")
    actions.add_note(actor=world.tender, member=world.river, group=world.group, text="Watch kindly")

    html = get(as_user(world.warden), item_url(item))
    for text in ("Thirty days", "Parent", "The flagged words", "Came after"):
        assert text in html
    assert "Harassment" in html and "Not kind" in html and "quietwatcher" in html
    assert "Tone" in html and "Watch kindly" in html and "Warning" in html
    assert "data-sensitive" not in html  # nothing distressing here
    assert member_url(world.river) in html
    assert "suspend, ban)" in html  # a site moderator's ladder goes up to a ban
    assert "suspend)" in get(as_user(world.tender), item_url(item))


def test_item_page_access(world, private_group):
    flag(world, world.reply)
    item = QueueItem.objects.get()
    url = item_url(item)
    assert Client().get(url).status_code == 302
    for user in (world.river, world.watcher, world.leader, world.stranger_mod):
        get(as_user(user), url, 403)
    get(as_user(world.tender), url)
    get(as_user(world.warden), url)
    get(as_user(world.tender), "/moderation/items/999999/", 404)
    # A private group's item does not exist for a moderator who cannot see that group.
    author, flagger = make_user("hidden-author"), make_user("hidden-flagger")
    join(author, private_group)
    join(flagger, private_group)
    secret = publishing.publish_thread(author=author, group=private_group, title="S", body="s")
    actions.flag(flagger=flagger, obj=secret, reason=FlagReason.SPAM)
    secret_item = QueueItem.objects.get(object_id=secret.pk, content_type__model="thread")
    get(as_user(world.stranger_mod), item_url(secret_item), 404)


def test_a_moderator_does_not_review_flags_about_themselves(world):
    publishing.publish_reply(author=world.tender, thread=world.thread, body="Mod words")
    post = Post.objects.get(source="Mod words")
    flag(world, post)
    item = QueueItem.objects.get(object_id=post.pk, content_type__model="post")
    get(as_user(world.tender), item_url(item), 403)
    assert f"queue-item-{item.pk}" not in get(as_user(world.tender), QUEUE)
    assert f"queue-item-{item.pk}" in get(as_user(world.warden), QUEUE)


def test_crisis_and_triggering_content_is_blurred_until_shown(world):
    flag(world, world.reply, FlagReason.CRISIS)
    html = get(as_user(world.tender), item_url(QueueItem.objects.get()))
    assert "data-sensitive" in html and "Show content" in html
    assert re.search(r"<details[^>]*data-sensitive", html)
    assert "I&#x27;m worried about this person" in html or "worried about this person" in html


def test_the_flagged_member_never_sees_who_flagged(world):
    flag(world, world.reply)
    flag(world, world.thread)
    actions.flag(flagger=world.watcher, obj=world.river, reason=FlagReason.OTHER, details="Odd")
    client = as_user(world.river)
    pages = [
        "/",
        world.thread.get_absolute_url(),
        reverse("moderation:mine"),
        reverse("notifications"),
        reverse("profile", kwargs={"handle": world.river.handle}),
    ]
    for url in pages:
        assert world.watcher.handle not in get(client, url), url
    for item in QueueItem.objects.all():
        assert world.watcher.handle not in get(client, item_url(item), 403)
    get(client, member_url(world.river), 403)


# --- actions on an item ---------------------------------------------------------------------


def post_action(client: Client, item: QueueItem, name: str, **fields):
    data = {"action": name, **{f"{name}-{key}": value for key, value in fields.items()}}
    return client.post(item_url(item), data)


def logged(action: str) -> ModerationLogEntry:
    return ModerationLogEntry.objects.filter(action=action).latest("pk")


def test_dismissing_flags_closes_the_item_and_shows_hidden_content_again(world):
    peers = [make_user(f"peer{i}") for i in range(3)]
    for peer in peers:
        join(peer, world.group)
        flag(world, world.reply, by=peer)
    world.reply.refresh_from_db()
    assert world.reply.is_hidden
    item = QueueItem.objects.get()
    client = as_user(world.tender)
    response = post_action(client, item, "dismiss", note="It was fine")
    assert response.status_code == 302 and response["Location"] == QUEUE
    item.refresh_from_db()
    world.reply.refresh_from_db()
    assert item.state == QueueItem.State.RESOLVED and not world.reply.is_hidden
    assert logged(Action.FLAGS_DISMISSED).reason == "It was fine"
    assert "Flags dismissed." in get(client, QUEUE)


def test_removing_with_a_rule_and_reason(world):
    flag(world, world.reply)
    item = QueueItem.objects.get()
    rule = Rule.objects.filter(group__isnull=True).first()
    client = as_user(world.tender)
    response = post_action(client, item, "hide", rule=rule.pk, reason="Phone numbers stay private")
    assert response.status_code == 302
    world.reply.refresh_from_db()
    assert world.reply.is_hidden and not world.reply.hidden_pending_review
    entry = logged(Action.CONTENT_HIDDEN)
    assert entry.rule_title == rule.title and entry.reason == "Phone numbers stay private"
    assert entry.actor_id == world.tender.pk
    item.refresh_from_db()
    assert item.state == QueueItem.State.RESOLVED


def test_bad_input_shows_errors_without_losing_anything(world):
    flag(world, world.reply)
    item = QueueItem.objects.get()
    client = as_user(world.tender)
    response = post_action(client, item, "hide", reason="   ")
    assert response.status_code == 200
    assert "Give a reason: the member sees it and can appeal." in response.content.decode()
    assert not ModerationLogEntry.objects.filter(action=Action.CONTENT_HIDDEN).exists()
    other_rule = Rule.objects.create(group=world.elsewhere, title="Elsewhere only")
    response = post_action(client, item, "hide", rule=other_rule.pk, reason="Kept text")
    html = response.content.decode()
    assert response.status_code == 200 and "Choose a rule from the list." in html
    assert "Kept text" in html  # the reason typed is still there
    response = post_action(client, item, "hide", rule="9999999", reason="x")
    assert response.status_code == 200
    assert "Choose a rule from the list." in response.content.decode()
    world.reply.refresh_from_db()
    assert not world.reply.is_hidden


def test_restore_edit_and_content_warning(world):
    flag(world, world.reply)
    item = QueueItem.objects.get()
    client = as_user(world.tender)
    assert (
        post_action(client, item, "edit", body="Call me", note="Number removed").status_code == 302
    )
    world.reply.refresh_from_db()
    assert world.reply.source == "Call me" and "Number removed" in world.reply.moderator_note
    assert logged(Action.CONTENT_EDITED).before["source"] == "Call me on 555-0100"

    response = post_action(client, item, "edit", body="Call me", note="")
    assert response.status_code == 200 and "Say why you edited it" in response.content.decode()

    assert post_action(client, item, "warning", warning="relapse").status_code == 302
    world.reply.refresh_from_db()
    assert world.reply.content_warning == "relapse"
    assert logged(Action.CONTENT_WARNING_SET).reason == "relapse"

    actions.hide_content(actor=world.tender, obj=world.reply, reason="Too much")
    assert post_action(client, item, "restore", reason="On reflection").status_code == 302
    world.reply.refresh_from_db()
    assert not world.reply.is_hidden
    assert logged(Action.CONTENT_RESTORED).reason == "On reflection"


def test_leaders_and_group_moderators_get_the_forms_the_table_allows(world):
    flag(world, world.thread)
    item = QueueItem.objects.get()
    html = get(as_user(world.tender), item_url(item))
    for name in ("dismiss", "hide", "warning", "lock", "pin", "move"):
        assert f'value="{name}"' in html, name
    assert 'value="edit"' not in html  # a thread has no body of its own to edit
    # Move: only the groups this moderator moderates.
    assert world.elsewhere.name in html
    # An action the user may not take through a crafted POST is refused on the page.
    response = post_action(as_user(world.stranger_mod), item, "lock")
    assert response.status_code == 403


def test_lock_pin_and_move_a_thread(world):
    flag(world, world.thread)
    item = QueueItem.objects.get()
    client = as_user(world.tender)
    assert post_action(client, item, "lock", reason="Cooling off").status_code == 302
    assert post_action(client, item, "pin", reason="").status_code == 302
    world.thread.refresh_from_db()
    assert world.thread.is_locked and world.thread.is_pinned
    assert logged(Action.THREAD_LOCKED).reason == "Cooling off"
    html = get(client, item_url(item))
    assert 'value="unlock"' in html and 'value="unpin"' in html
    assert post_action(client, item, "unlock").status_code == 302
    world.thread.refresh_from_db()
    assert not world.thread.is_locked and logged(Action.THREAD_UNLOCKED)

    response = post_action(client, item, "move", group="")
    assert response.status_code == 200 and "Choose the group" in response.content.decode()
    assert post_action(client, item, "move", group=world.elsewhere.pk).status_code == 302
    world.thread.refresh_from_db()
    assert world.thread.group == world.elsewhere
    assert logged(Action.THREAD_MOVED).after["group"] == world.elsewhere.slug


def test_a_flagged_posts_thread_can_be_locked_pinned_and_moved_from_its_page(world):
    flag(world, world.reply)
    item = QueueItem.objects.get()
    client = as_user(world.tender)
    html = get(client, item_url(item))
    for name in ("lock", "pin", "move", "edit", "hide"):
        assert f'value="{name}"' in html, name
    assert post_action(client, item, "lock", reason="Cooling off").status_code == 302
    assert post_action(client, item, "pin").status_code == 302
    world.thread.refresh_from_db()
    assert world.thread.is_locked and world.thread.is_pinned
    entry = logged(Action.THREAD_LOCKED)
    assert entry.target_type == "thread" and entry.target_id == world.thread.pk
    world.reply.refresh_from_db()
    assert not world.reply.is_hidden  # the post itself is untouched
    # The item stays open: locking its thread does not decide about the post.
    item = flag(world, world.reply, by=world.leader).item
    html = get(client, item_url(item))
    assert 'value="unlock"' in html and 'value="unpin"' in html and 'value="lock"' not in html
    assert post_action(client, item, "unpin").status_code == 302
    assert post_action(client, item, "move", group=world.elsewhere.pk).status_code == 302
    world.thread.refresh_from_db()
    assert not world.thread.is_pinned and world.thread.group == world.elsewhere
    # A chat message has no thread: a crafted lock is refused.
    message = chat(world.river, lounge(world), "Hello")
    chat_item = flag(world, message, by=make_flagger(world)).item
    assert 'value="lock"' not in get(client, item_url(chat_item))
    assert post_action(client, chat_item, "lock").status_code == 403


def test_a_refused_action_shows_its_reason_on_the_item_page(world):
    flag(world, world.reply)
    item = QueueItem.objects.get()
    actions.dismiss_flags(actor=world.warden, item=item)
    response = post_action(as_user(world.tender), item, "dismiss")
    # Dismissing a resolved item is not on offer any more.
    assert response.status_code == 403
    assert "not available" in response.content.decode()
    # A refusal from the action itself (not the form) lands on the form, text kept.
    opening = Post.objects.get(thread=world.thread, parent__isnull=True)
    item = flag(world, opening).item
    response = post_action(as_user(world.tender), item, "edit", body=opening.source, note="Tidied")
    assert response.status_code == 200
    assert "The text is unchanged." in response.content.decode()
    assert not ModerationLogEntry.objects.filter(action=Action.CONTENT_EDITED).exists()


def test_notes_on_the_item_page(world):
    flag(world, world.reply)
    item = QueueItem.objects.get()
    client = as_user(world.tender)
    response = client.post(item_url(item), {"action": "note", "note-text": "Reach out gently"})
    assert response.status_code == 302 and response["Location"] == item_url(item)
    note = ModeratorNote.objects.get()
    assert note.member == world.river and note.group == world.group and note.author == world.tender
    assert logged(Action.NOTE_ADDED)
    response = client.post(item_url(item), {"action": "note", "note-text": ""})
    assert response.status_code == 200 and "Write the note first." in response.content.decode()


def test_a_chat_message_in_its_room(world):
    room = lounge(world)
    before = chat(world.watcher, room, "Hi")
    bad = chat(world.river, room, "Bad")
    ChatMessage.objects.filter(pk=before.pk).update(
        created_at=bad.created_at - timedelta(minutes=2)
    )
    old = chat(world.watcher, room, "Ancient")
    ChatMessage.objects.filter(pk=old.pk).update(created_at=bad.created_at + timedelta(minutes=30))
    flag(world, bad, FlagReason.HARASSMENT, by=make_flagger(world))
    item = QueueItem.objects.get()
    client = as_user(world.tender)
    html = get(client, item_url(item))
    assert "Hi" in html and "Bad" in html and "Ancient" not in html and "Lounge" in html
    assert post_action(client, item, "hide", reason="Not here").status_code == 302
    bad.refresh_from_db()
    assert bad.is_removed and bad.removed_by == ChatMessage.RemovedBy.MODERATOR


def lounge(world: World) -> ChatRoom:
    room, _ = ChatRoom.objects.get_or_create(
        group=world.group, slug="lounge", defaults={"name": "Lounge"}
    )
    return room


def chat(author: User, room: ChatRoom, body: str) -> ChatMessage:
    return publishing.publish_chat_message(
        author=author, room=room, body=body, client_id=f"{author.pk}-{body}"
    )[0]


def make_flagger(world: World) -> User:
    peer = make_user("chatpeer")
    join(peer, world.group)
    return peer


# --- appeals -------------------------------------------------------------------------------


def appealed(world: World) -> QueueItem:
    actions.hide_content(actor=world.tender, obj=world.reply, reason="Phone number")
    entry = ModerationLogEntry.objects.get(action=Action.CONTENT_HIDDEN)
    actions.appeal(member=world.river, entry=entry, text="It was my own number")
    return QueueItem.objects.get(kind=QueueItem.Kind.APPEAL)


def test_an_appeal_shows_the_action_and_is_decided_by_another_moderator(world):
    item = appealed(world)
    own = get(as_user(world.tender), item_url(item))
    assert "It was my own number" in own and "Phone number" in own
    assert "another moderator must decide" in own and 'value="decide"' not in own
    assert post_action(
        as_user(world.tender), item, "decide", decision="reverse", note="x"
    ).status_code in (403,)

    client = as_user(world.warden)
    html = get(client, item_url(item))
    assert 'value="decide"' in html
    response = post_action(client, item, "decide", decision="reverse", note="")
    assert response.status_code == 200 and "Explain your decision" in response.content.decode()
    response = post_action(client, item, "decide", decision="reverse", note="Fair point")
    assert response.status_code == 302
    world.reply.refresh_from_db()
    assert not world.reply.is_hidden
    assert Appeal.objects.get().state == Appeal.State.GRANTED
    assert logged(Action.APPEAL_GRANTED).reason == "Fair point"


# --- a member --------------------------------------------------------------------------------


def sanction(client: Client, member: User, kind: str, **fields):
    data = {"action": kind, **{f"{kind}-{key}": value for key, value in fields.items()}}
    return client.post(member_url(member), data)


def test_member_page_access(world):
    url = member_url(world.river)
    assert Client().get(url).status_code == 302
    get(as_user(world.watcher), url, 403)
    get(as_user(world.stranger_mod), url, 403)  # river is not in their group
    get(as_user(world.river), url, 403)  # nobody moderates themselves
    get(as_user(world.tender), "/moderation/members/nobody-here/", 404)
    html = get(as_user(world.tender), url)
    for kind in ("warning", "chat_mute", "slow_mode", "suspension"):
        assert f'value="{kind}"' in html
    assert 'value="ban"' not in html  # site moderators only
    assert 'value="ban"' in get(as_user(world.warden), url)
    # Reachable from the member's profile, for moderators.
    profile = reverse("profile", kwargs={"handle": world.river.handle})
    assert url in get(as_user(world.tender), profile)
    assert url not in get(as_user(world.watcher), profile)
    # A leader may mute in chat (the table) but not warn or suspend.
    leader = get(as_user(world.leader), url)
    assert 'value="chat_mute"' in leader and 'value="suspension"' not in leader


def test_the_ladder_through_the_member_page(world):
    client = as_user(world.tender)
    rule = Rule.objects.filter(group__isnull=True).first()
    g = world.group.pk
    assert (
        sanction(client, world.river, "warning", group=g, rule=rule.pk, reason="Tone").status_code
        == 302
    )
    assert (
        sanction(
            client, world.river, "chat_mute", group=g, reason="Flooding", duration="1h"
        ).status_code
        == 302
    )
    assert (
        sanction(
            client,
            world.river,
            "slow_mode",
            group=g,
            reason="Slow down",
            duration="1d",
            slow_mode_seconds="60",
        ).status_code
        == 302
    )
    assert (
        sanction(
            client,
            world.river,
            "suspension",
            group=g,
            reason="A break",
            duration="7d",
            message="Come back soon",
        ).status_code
        == 302
    )
    made = {s.kind: s for s in Sanction.objects.filter(member=world.river)}
    assert set(made) == {"warning", "chat_mute", "slow_mode", "suspension"}
    assert made["warning"].rule == rule and made["slow_mode"].slow_mode_seconds == 60
    assert made["suspension"].message_source == "Come back soon"
    hours = (made["chat_mute"].ends_at - timezone.now()).total_seconds() / 3600
    assert 0.9 < hours <= 1
    for action in (Action.WARNING, Action.CHAT_MUTE, Action.SLOW_MODE, Action.SUSPENSION):
        assert logged(action).member_id == world.river.pk

    html = get(client, member_url(world.river))
    assert "A break" in html and "in force" in html
    mute = made["chat_mute"]
    response = client.post(
        member_url(world.river),
        {"action": "lift", "lift-sanction": mute.pk, "lift-reason": "Calmer now"},
    )
    assert response.status_code == 302
    mute.refresh_from_db()
    assert mute.lifted_at is not None and logged(Action.SANCTION_LIFTED).reason == "Calmer now"


def test_a_lift_button_shows_only_where_lifting_is_allowed(world):
    fellow = make_user("fellow")
    join(fellow, world.group, Membership.Role.MODERATOR)
    muted = actions.mute_in_chat(
        actor=world.warden,
        member=world.tender,
        group=world.group,
        reason="Cool down",
        duration=timedelta(hours=1),
    )
    button = f'name="lift-sanction" value="{muted.pk}"'
    # A fellow group moderator may see it, but not lift what was put on an equal.
    fellow_page = get(as_user(fellow), member_url(world.tender))
    assert "Cool down" in fellow_page and button not in fellow_page
    assert button in get(as_user(world.warden), member_url(world.tender))


def test_bans_with_and_without_an_end(world):
    client = as_user(world.warden)
    assert sanction(client, world.river, "ban", reason="Spam", duration="none").status_code == 302
    ban = Sanction.objects.get(kind="ban")
    assert ban.group is None and ban.ends_at is None
    assert logged(Action.BAN).member_handle == world.river.handle
    other = make_user("spammer")
    assert sanction(client, other, "ban", reason="Spam", duration="30d").status_code == 302
    assert Sanction.objects.get(member=other).ends_at is not None
    # A group moderator cannot ban, even with a crafted form.
    response = sanction(as_user(world.tender), world.watcher, "ban", reason="x", duration="1d")
    assert response.status_code == 403
    assert not Sanction.objects.filter(member=world.watcher).exists()


def test_ladder_errors_are_shown_on_the_form(world):
    client = as_user(world.tender)
    g = world.group.pk
    cases = [
        ({"group": g, "reason": "", "duration": "1h"}, "Give a reason"),
        ({"group": g, "reason": "x", "duration": "forever"}, "Choose a duration from the list."),
        ({"group": g, "reason": "x", "duration": ""}, "Choose how long it lasts."),
        ({"group": g, "reason": "x", "duration": "1h", "rule": "123456"}, "Choose a rule"),
        (
            {"group": world.elsewhere.pk, "reason": "x", "duration": "1h"},
            "Choose one of the groups you moderate that they belong to.",
        ),
    ]
    for fields, error in cases:
        response = sanction(client, world.river, "suspension", **fields)
        assert response.status_code == 200, fields
        assert error in response.content.decode(), (fields, error)
    own_rule = Rule.objects.create(group=world.elsewhere, title="Other group's rule")
    response = sanction(
        client, world.river, "suspension", group=g, reason="x", duration="1h", rule=own_rule.pk
    )
    assert response.status_code == 200
    assert not Sanction.objects.exists()
    # Twice in force: the action's refusal is shown on the page.
    sanction(client, world.river, "chat_mute", group=g, reason="x", duration="1h")
    response = sanction(client, world.river, "chat_mute", group=g, reason="x", duration="1h")
    assert response.status_code == 403 and "lift that one first" in response.content.decode()


def test_notes_on_the_member_page(world):
    client = as_user(world.tender)
    response = client.post(
        member_url(world.river),
        {"action": "note", "note-text": "Struggling lately", "note-group": world.group.pk},
    )
    assert response.status_code == 302
    assert ModeratorNote.objects.get().group == world.group
    assert "Struggling lately" in get(client, member_url(world.river))
    # Notes stay among moderators: the member's own pages never show them.
    assert "Struggling lately" not in get(as_user(world.river), reverse("moderation:mine"))
    response = client.post(member_url(world.river), {"action": "note", "note-text": "x"})
    assert response.status_code == 200 and "Choose the group" in response.content.decode()


def test_an_appeal_against_a_sanction_is_upheld_through_the_page(world):
    warning = actions.warn_member(
        actor=world.tender, member=world.river, group=world.group, reason="Tone"
    )
    entry = ModerationLogEntry.objects.get(target_type="sanction", target_id=warning.pk)
    actions.appeal(member=world.river, entry=entry, text="I was quoting someone")
    item = QueueItem.objects.get(kind=QueueItem.Kind.APPEAL)
    assert "Appeal" in get(as_user(world.warden), QUEUE)
    client = as_user(world.warden)
    html = get(client, item_url(item))
    assert "I was quoting someone" in html and "warned" in html and "Tone" in html
    response = post_action(client, item, "decide", decision="uphold", note="It stands")
    assert response.status_code == 302
    assert Appeal.objects.get().state == Appeal.State.UPHELD
    assert logged(Action.APPEAL_UPHELD).reason == "It stands"
    item.refresh_from_db()
    assert item.state == QueueItem.State.RESOLVED


def test_a_leader_on_a_member_page_is_not_sent_to_a_queue_they_cannot_open(world):
    html = get(as_user(world.leader), member_url(world.river))
    assert "Mute in chat" in html
    assert 'href="/moderation/queue/"' not in html
    assert 'href="/moderation/queue/"' in get(as_user(world.tender), member_url(world.river))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's query plans")
@pytest.mark.parametrize("ids", [None, [1, 2]])
def test_the_queue_s_median_wait_reads_only_the_latest_approvals(db, ids):
    """Not the queue's whole history, which grows for as long as the site runs."""
    from moderation.views.review import recent_approvals

    sql, params = recent_approvals(ids).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan, plan  # site-wide: queueitem_approvals; a group's: by group


def test_an_appeal_against_an_action_no_longer_named_shows_it_as_stored(world, monkeypatch):
    """A log entry is never rewritten: an action whose choice was later renamed or retired
    still lists, under its stored name, rather than failing the whole queue."""
    item = appealed(world)
    monkeypatch.setattr(selectors, "_ACTION_LABELS", {})
    row = queue_row(get(as_user(world.warden), QUEUE), item)
    assert f"against “{Action.CONTENT_HIDDEN.value}”" in row
