"""The members' side of moderation through HTTP: flags, hidden content in pages,
"my moderation" and appeals, the audit log and each group's public log."""

import csv
import io
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import timedelta

import html5lib
import pytest
from django.test import Client
from django.utils import timezone

from forum import publishing
from forum.models import (
    ChatMessage,
    ChatRoom,
    CrisisResource,
    Membership,
    Post,
    SupportGroup,
    Thread,
    User,
)
from moderation import actions
from moderation.models import Appeal, Flag, ModerationLogEntry, QueueItem, Rule
from tests.conftest import join, make_group, make_user
from tests.xss_oracle import assert_no_executable_html, load_payloads

pytestmark = pytest.mark.django_db


@dataclass
class World:
    group: SupportGroup
    river: User  # member, author of the thread
    meadow: User  # member, author of a reply
    tender: User  # the group's moderator
    thread: Thread
    opening: Post
    reply: Post


@pytest.fixture
def world(settings, public_group, member, other_member) -> World:
    settings.KINSHIP_RATE_LIMITS = {k: (10_000, 60) for k in settings.KINSHIP_RATE_LIMITS}
    settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 0
    tender = make_user("tender")
    join(member, public_group)
    join(other_member, public_group)
    join(tender, public_group, Membership.Role.MODERATOR)
    thread = publishing.publish_thread(
        author=member, group=public_group, title="Thirty days", body="Made it to 30."
    )
    reply = publishing.publish_reply(
        author=other_member, thread=thread, parent=None, body="Call me on 555-0100 any time"
    )
    opening = Post.objects.get(thread=thread, parent__isnull=True)
    return World(public_group, member, other_member, tender, thread, opening, reply)


def as_user(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def page(client: Client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, url
    return response.content.decode()


# The elements that carry member- or moderator-written text on these pages.
TEXT_CLASSES = {"members-reason", "members-quote", "members-message", "members-target"}


def fragments(html: str, classes: set[str] = TEXT_CLASSES) -> list[str]:
    """The parts of a page that carry written text, as the browser would build them
    (the oracle is for fragments: a whole page has the site's own forms)."""
    tree = html5lib.parse(html, namespaceHTMLElements=False)
    found = [
        ET.tostring(node, encoding="unicode", method="html")
        for node in tree.iter()
        if classes & set((node.get("class") or "").split())
    ]
    assert found, f"none of {classes} in the page"
    return found


# --- flags -----------------------------------------------------------------------------------


def test_the_flag_form_lists_each_reason_with_its_explanation(world):
    html = page(as_user(world.river), f"/moderation/flag/post/{world.reply.pk}/")
    for value in ("harassment", "misinformation", "spam", "triggering", "crisis", "other"):
        assert f'value="{value}"' in html
    assert "I&#x27;m worried about this person" in html
    assert "not an accusation" in html and "reach out" in html


def test_flagging_a_post_thanks_the_member_and_opens_a_queue_item(world):
    client = as_user(world.river)
    response = client.post(
        f"/moderation/flag/post/{world.reply.pk}/", {"reason": "spam", "details": "A number"}
    )
    assert response.status_code == 302
    assert response.url == world.reply.get_absolute_url()
    made = Flag.objects.get()
    assert (made.flagger, made.object_id, made.reason) == (world.river, world.reply.pk, "spam")
    assert QueueItem.objects.get().member == world.meadow
    followed = client.get(response.url).content.decode()
    assert "will not be told who flagged" in followed


@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({}, "Choose a reason from the list."),
        ({"reason": "not-a-reason"}, "Select a valid choice"),
        ({"reason": "other", "details": "   "}, "Tell the moderators what is wrong."),
    ],
)
def test_a_flag_without_a_reason_or_details_is_refused_with_the_form_kept(world, data, field_error):
    response = as_user(world.meadow).post(f"/moderation/flag/thread/{world.thread.pk}/", data)
    assert response.status_code == 200
    assert field_error in response.content.decode()
    assert not Flag.objects.exists()


def test_flagging_twice_gets_a_friendly_error(world):
    client = as_user(world.river)
    url = f"/moderation/flag/post/{world.reply.pk}/"
    assert client.post(url, {"reason": "harassment"}).status_code == 302
    again = client.post(url, {"reason": "spam"})
    assert again.status_code == 200
    assert "already flagged this" in again.content.decode()
    assert Flag.objects.count() == 1


def test_flagging_your_own_words_or_yourself_is_refused(world):
    client = as_user(world.meadow)
    for url in (
        f"/moderation/flag/post/{world.reply.pk}/",
        f"/moderation/flag/member/{world.meadow.pk}/",
    ):
        for response in (client.get(url), client.post(url, {"reason": "spam"})):
            assert response.status_code == 403
            assert "cannot flag yourself or your own words" in response.content.decode()
    river = as_user(world.river)
    assert river.get(f"/moderation/flag/thread/{world.thread.pk}/").status_code == 403
    assert not Flag.objects.exists()


def test_private_group_content_does_not_exist_for_outsiders(world, private_group, outsider):
    join(world.river, private_group)
    secret = publishing.publish_thread(
        author=world.river, group=private_group, title="Private", body="Between us"
    )
    opening = Post.objects.get(thread=secret, parent__isnull=True)
    client = as_user(outsider)
    for url in (
        f"/moderation/flag/thread/{secret.pk}/",
        f"/moderation/flag/post/{opening.pk}/",
        f"/moderation/flag/post/{opening.pk}/thanks/",
        f"/moderation/flag/chat/{opening.pk}/",
        f"/moderation/flag/post/{opening.pk + 999}/",
    ):
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"reason": "spam"}).status_code == 404, url
    assert not Flag.objects.exists()
    assert Client().get(f"/moderation/flag/thread/{world.thread.pk}/").status_code == 302


def test_a_crisis_flag_shows_the_crisis_resources(world):
    CrisisResource.objects.create(name="Warmline North", region="Anywhere", contact="555-0199")
    client = as_user(world.river)
    response = client.post(f"/moderation/flag/member/{world.meadow.pk}/", {"reason": "crisis"})
    assert response.status_code == 302
    assert response.url == f"/moderation/flag/member/{world.meadow.pk}/thanks/"
    html = page(client, response.url)
    assert "Warmline North" in html and "555-0199" in html
    assert "will not be told who flagged" in html
    assert QueueItem.objects.get().is_urgent
    # Nobody else is thanked for a concern they did not raise.
    thanks = as_user(world.tender).get(response.url)
    assert thanks.status_code == 302 and thanks.url == f"/u/{world.meadow.handle}/"


def test_flag_links_show_for_others_content_only(world):
    river = as_user(world.river)
    thread_page = page(river, world.thread.get_absolute_url())
    assert f"/moderation/flag/post/{world.reply.pk}/" in thread_page
    assert f"/moderation/flag/post/{world.opening.pk}/" not in thread_page
    assert f"/moderation/flag/thread/{world.thread.pk}/" not in thread_page  # river's own
    meadow_page = page(as_user(world.meadow), world.thread.get_absolute_url())
    assert f"/moderation/flag/thread/{world.thread.pk}/" in meadow_page
    assert "/moderation/flag/" not in page(Client(), world.thread.get_absolute_url())
    assert f"/moderation/flag/member/{world.meadow.pk}/" in page(river, "/u/meadow/")
    assert "/moderation/flag/member/" not in page(river, "/u/river/")


# --- hidden content in pages -----------------------------------------------------------------


def test_a_hidden_post_is_a_placeholder_for_members_and_explained_to_its_author(world):
    actions.hide_content(actor=world.tender, obj=world.reply, reason="Phone numbers stay private")
    url = world.thread.get_absolute_url()
    text = "555-0100"
    for viewer in (world.river, None):
        html = page(as_user(viewer), url)
        assert "[removed by a moderator]" in html
        assert text not in html and "Phone numbers stay private" not in html
        assert f'id="post-{world.reply.pk}"' in html  # keeps its place in the tree
    author = page(as_user(world.meadow), url)
    assert text in author and "Phone numbers stay private" in author
    assert "Only you can see this post" in author and "/moderation/mine/" in author
    moderator = page(as_user(world.tender), url)
    assert text in moderator and "hidden-badge" in moderator
    assert "[removed by a moderator]" not in moderator


def test_a_post_hidden_pending_review_says_so(world):
    Post.objects.filter(pk=world.reply.pk).update(
        hidden_at=timezone.now(), hidden_pending_review=True, hidden_reason="Flags"
    )
    html = page(as_user(world.river), world.thread.get_absolute_url())
    assert "[hidden while a moderator reviews it]" in html
    assert "555-0100" not in html


def test_a_moderators_edit_shows_its_note(world):
    actions.edit_content(
        actor=world.tender, post=world.reply, body="Call me any time", note="Took out a number"
    )
    html = page(as_user(world.river), world.thread.get_absolute_url())
    assert "Edited by a moderator:" in html and "Took out a number" in html
    assert "555-0100" not in html


def test_a_hidden_thread_is_gone_for_everyone_but_its_author_and_moderators(world):
    actions.hide_content(actor=world.tender, obj=world.thread, reason="Off topic")
    group_url, url = world.group.get_absolute_url(), world.thread.get_absolute_url()
    for viewer in (world.meadow, None):
        client = as_user(viewer)
        assert "Thirty days" not in page(client, group_url)
        assert client.get(url).status_code == 404
        assert client.get(f"/posts/{world.opening.pk}/history/").status_code in {302, 404}
    assert as_user(world.meadow).post(f"{url}reply/", {"body": "hi"}).status_code == 404
    for flag_url in (
        f"/moderation/flag/thread/{world.thread.pk}/",
        f"/moderation/flag/post/{world.opening.pk}/",
    ):
        assert as_user(world.meadow).get(flag_url).status_code == 404, flag_url
    assert "Thirty days" not in page(as_user(world.meadow), "/u/river/")
    assert "Thirty days" not in page(as_user(world.meadow), "/")  # "Recent in your groups"
    assert "Thirty days" in page(as_user(world.river), "/")
    for viewer in (world.river, world.tender):
        client = as_user(viewer)
        assert "Thirty days" in page(client, group_url)
        html = page(client, url)
        assert "Off topic" in html
    assert "/moderation/mine/" in page(as_user(world.river), url)


# --- my moderation page and appeals ---------------------------------------------------------


def _act_on_meadow(world: World) -> Rule:
    rule = Rule.objects.filter(group__isnull=True).first()
    actions.hide_content(actor=world.tender, obj=world.reply, reason="Phone numbers stay private")
    actions.warn_member(
        actor=world.tender,
        member=world.meadow,
        group=world.group,
        reason="Sharing contact details",
        rule=rule,
        message="We want you safe here.",
    )
    actions.suspend_from_group(
        actor=world.tender,
        member=world.meadow,
        group=world.group,
        reason="Kept sharing them",
        duration=timedelta(days=3),
    )
    return rule


def test_my_moderation_page_shows_removals_sanctions_and_resources(world):
    rule = _act_on_meadow(world)
    room = ChatRoom.objects.create(group=world.group, name="General", slug="general")
    said, _ = publishing.publish_chat_message(
        author=world.river, room=room, body="A chat line", client_id="c1"
    )
    actions.remove_chat_message(actor=world.tender, message=said, reason="Not here")
    CrisisResource.objects.create(name="Warmline North", region="Anywhere", contact="555-0199")

    html = page(as_user(world.meadow), "/moderation/mine/")
    assert "Call me on 555-0100" in html and "Phone numbers stay private" in html
    assert "Suspended from the group" in html and "Kept sharing them" in html
    assert "Warning" in html and rule.title in html and "We want you safe here." in html
    assert "Warmline North" in html
    assert "you were suspended from the group in" in html  # addressed to them
    assert "@meadow" not in html
    entries = ModerationLogEntry.objects.filter(member_id=world.meadow.pk)
    assert entries.count() == 3
    for entry in entries:
        assert f'action="/moderation/appeal/{entry.pk}/"' in html
    assert "A chat line" not in html  # river's message, not meadow's
    river = page(as_user(world.river), "/moderation/mine/")
    assert "A chat line" in river and "Not here" in river
    assert "Warmline North" not in river  # resources come with sanctions
    assert ChatMessage.objects.get(pk=said.pk).is_removed


def test_a_refusal_from_a_sanction_links_to_my_moderation_page(world):
    _act_on_meadow(world)
    response = as_user(world.meadow).get(f"/g/{world.group.slug}/new/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "You are suspended from this group" in html and 'href="/moderation/mine/"' in html


def test_a_member_appeals_an_action_once(world):
    _act_on_meadow(world)
    entry = ModerationLogEntry.objects.get(member_id=world.meadow.pk, action="content_hidden")
    client = as_user(world.meadow)
    url = f"/moderation/appeal/{entry.pk}/"
    empty = client.post(url, {"text": ""})
    assert empty.status_code == 400 and "Tell the moderators why" in empty.content.decode()
    response = client.post(url, {"text": "It was my sponsor's office number"})
    assert response.status_code == 302
    assert response.url == f"/moderation/mine/#entry-{entry.pk}"
    made = Appeal.objects.get()
    assert (made.entry_id, made.appellant, made.state) == (entry.pk, world.meadow, "pending")
    again = client.post(url, {"text": "Please"})
    assert again.status_code == 400
    assert "already appealed this action" in again.content.decode()
    assert Appeal.objects.count() == 1
    html = page(client, "/moderation/mine/")
    assert "Waiting for a moderator" in html and "sponsor's office number" in html
    assert f'action="{url}"' not in html
    # Someone else's action, or one that cannot be appealed, does not exist for them.
    assert as_user(world.river).post(url, {"text": "x"}).status_code == 404
    assert client.get(url).status_code == 405


# --- the audit log ---------------------------------------------------------------------------


@pytest.fixture
def two_groups(world):
    """Actions in two groups, by two moderators."""
    _act_on_meadow(world)
    other = make_group("evening-circle")
    ash, fern = make_user("ash"), make_user("fern")
    join(ash, other, Membership.Role.MODERATOR)
    join(fern, other)
    fern_thread = publishing.publish_thread(
        author=fern, group=other, title="Evening", body="Evening thoughts"
    )
    actions.lock_thread(actor=ash, thread=fern_thread, reason='=HYPERLINK("x")')
    return other, ash, fern


def test_the_log_is_for_reviewers_only(world, two_groups):
    assert as_user(world.river).get("/moderation/log/").status_code == 403
    assert Client().get("/moderation/log/").status_code == 302
    leader = make_user("sage")
    join(leader, world.group, Membership.Role.LEADER)
    assert as_user(leader).get("/moderation/log/").status_code == 403


def test_a_group_moderator_sees_only_their_groups_entries(world, two_groups):
    other, ash, _ = two_groups
    html = page(as_user(world.tender), "/moderation/log/")
    assert "Kept sharing them" in html and "Evening" not in html
    html = page(as_user(ash), "/moderation/log/")
    assert "Evening" in html and "Kept sharing them" not in html
    # Asking for another group's entries by filter finds nothing.
    html = page(as_user(ash), f"/moderation/log/?group={world.group.slug}")
    assert "Kept sharing them" not in html and "No entries match" in html
    rows = _csv(as_user(ash), "/moderation/log/?format=csv")
    assert [row["group"] for row in rows] == [other.name]


def test_log_filters_narrow_the_entries(world, two_groups, site_moderator):
    other = two_groups[0]
    client = as_user(site_moderator)
    html = page(client, "/moderation/log/")
    assert "Kept sharing them" in html and "Evening" in html
    by_group = page(client, f"/moderation/log/?group={other.slug}")
    assert "Evening" in by_group and "Kept sharing them" not in by_group
    by_moderator = page(client, "/moderation/log/?moderator=ash")
    assert "Evening" in by_moderator and "Kept sharing them" not in by_moderator
    by_member = page(client, "/moderation/log/?member=meadow&action=suspension")
    assert "Kept sharing them" in by_member and "Sharing contact details" not in by_member
    bad = page(client, "/moderation/log/?action=nonsense")
    assert "No entries match" in bad


def _csv(client: Client, url: str) -> list[dict]:
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_the_log_exports_csv_with_the_same_filters(world, two_groups, site_moderator):
    client = as_user(site_moderator)
    rows = _csv(client, "/moderation/log/?format=csv")
    assert list(rows[0]) == [
        "time", "moderator", "role", "action", "group", "target", "member", "rule", "reason",
        "before", "after",
    ]  # fmt: skip
    assert len(rows) == ModerationLogEntry.objects.count() == 4
    rows = _csv(client, "/moderation/log/?format=csv&member=meadow&action=content_hidden")
    assert len(rows) == 1
    row = rows[0]
    assert (row["moderator"], row["role"], row["member"]) == ("tender", "group moderator", "meadow")
    assert row["target"] == f"post {world.reply.pk}"
    assert json.loads(row["before"])["source"] == "Call me on 555-0100 any time"
    assert json.loads(row["after"])["hidden"] is True
    # A reason that looks like a spreadsheet formula is not one.
    locked = _csv(client, "/moderation/log/?format=csv&moderator=ash")
    assert locked[0]["reason"] == '\'=HYPERLINK("x")'


# --- the group's public log -----------------------------------------------------------------


def test_the_group_log_never_names_moderators_or_repeats_removed_words(world, two_groups):
    actions.add_note(actor=world.tender, member=world.meadow, group=world.group, text="Watch")
    url = f"/moderation/g/{world.group.slug}/log/"
    html = page(Client(), url)
    assert "a moderator" in html and "Kept sharing them" in html
    assert "tender" not in html
    assert "555-0100" not in html  # the removed post's words
    assert "Evening" not in html  # another group's entries
    assert "Watch" not in html  # notes stay among moderators
    assert f'href="{url}"' in page(Client(), world.group.get_absolute_url())


def test_the_group_log_does_not_name_sanctioned_members(world):
    actions.warn_member(actor=world.tender, member=world.meadow, group=world.group,
                        reason="Please keep it kind")  # fmt: skip
    html = page(Client(), f"/moderation/g/{world.group.slug}/log/")
    assert "Please keep it kind" in html and "a member" in html
    assert "meadow" not in html


def test_a_private_groups_log_does_not_exist_for_outsiders(private_group, member, outsider):
    join(member, private_group)
    url = f"/moderation/g/{private_group.slug}/log/"
    assert as_user(outsider).get(url).status_code == 404
    assert Client().get(url).status_code == 404
    assert as_user(member).get(url).status_code == 200


# --- member-written text renders inert -------------------------------------------------------


def _some_payloads() -> list[str]:
    payloads = load_payloads()
    picked = [p for p in payloads if "<script>" in p][:1]
    picked += [p for p in payloads if "onerror=" in p][:1]
    picked += [p for p in payloads if "javascript:" in p][:1]
    assert len(picked) == 3
    return picked


def test_reasons_messages_and_appeals_render_inert(world):
    for i, payload in enumerate(_some_payloads()):
        Post.objects.filter(pk=world.reply.pk).update(hidden_at=None)
        reply = publishing.publish_reply(
            author=world.meadow, thread=world.thread, parent=None, body=f"reply {i}"
        )
        actions.hide_content(actor=world.tender, obj=reply, reason=payload)
        actions.warn_member(
            actor=world.tender,
            member=world.meadow,
            group=world.group,
            reason=payload,
            message=payload,
        )
        entry = ModerationLogEntry.objects.filter(member_id=world.meadow.pk).first()
        client = as_user(world.meadow)
        assert client.post(f"/moderation/appeal/{entry.pk}/", {"text": payload}).status_code == 302
        Flag.objects.all().delete()
        client.post(f"/moderation/flag/post/{world.opening.pk}/", {"reason": "other",
                                                                   "details": payload})  # fmt: skip
        for url in ("/moderation/mine/", f"/moderation/g/{world.group.slug}/log/"):
            for fragment in fragments(page(client, url)):
                assert_no_executable_html(fragment, context=f"{url} with {payload!r}")
        mod = page(as_user(world.tender), "/moderation/log/")
        for fragment in fragments(mod):
            assert_no_executable_html(fragment, context=f"log with {payload!r}")
        thread_page = page(client, world.thread.get_absolute_url())
        for fragment in fragments(thread_page, {"moderation-state"}):
            assert_no_executable_html(fragment, context=f"thread page with {payload!r}")
