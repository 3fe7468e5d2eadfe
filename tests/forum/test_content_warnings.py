"""Content-warning categories: authors and moderators tag posts, each reader chooses to
show, collapse or hide each category (stricter for members in their first 30 days)."""

import re
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from forum import content_warnings, publishing
from forum.models import Notification, Post, Thread, User
from moderation import actions
from moderation.models import ModerationLogEntry
from tests.conftest import join, make_user, thread_among

BODY = "The night it went wrong"


def field_errors(excinfo) -> dict:
    return excinfo.value.message_dict


def veteran(handle: str) -> User:
    """A member past their first 30 days: the plain collapse defaults apply."""
    return make_user(handle, date_joined=timezone.now() - timedelta(days=400))


@pytest.fixture
def thread(settings, public_group, member, other_member) -> Thread:
    return thread_among(
        settings, public_group, member, other_member, title="Checking in", body="Day 12 today."
    )


def reply_with(thread: Thread, author: User, codes: list[str], **extra) -> Post:
    return publishing.publish_reply(
        author=author, thread=thread, body=BODY, cw_categories=codes, **extra
    )


def opening_of(thread: Thread) -> Post:
    return Post.objects.get(thread=thread, parent__isnull=True)


# --- publishing ------------------------------------------------------------------------


@pytest.mark.django_db
def test_categories_are_stored_deduplicated_in_canonical_order(thread, other_member):
    reply = reply_with(thread, other_member, ["trauma", "use", "trauma"])
    assert Post.objects.get(pk=reply.pk).cw_categories == ["use", "trauma"]


@pytest.mark.django_db
def test_a_new_thread_tags_its_opening_post(public_group, member):
    join(member, public_group)
    thread = publishing.publish_thread(
        author=member,
        group=public_group,
        title="Hard week",
        body="b",
        content_warning="family",
        cw_categories=["self_harm"],
    )
    assert opening_of(thread).cw_categories == ["self_harm"]
    assert Thread.objects.get(pk=thread.pk).content_warning == "family"  # free text kept


@pytest.mark.django_db
@pytest.mark.parametrize("bad", [["gore"], ["use", "USE"], [3]])
def test_unknown_codes_are_a_field_error_and_nothing_is_saved(thread, other_member, bad):
    with pytest.raises(ValidationError) as excinfo:
        reply_with(thread, other_member, bad)
    assert list(field_errors(excinfo)) == ["cw_categories"]
    assert thread.posts.count() == 1


@pytest.mark.django_db
def test_edit_changes_keeps_or_clears_categories(thread, other_member):
    reply = reply_with(thread, other_member, ["trauma"])
    publishing.edit_post(editor=other_member, post=reply, body=BODY, cw_categories=["use"])
    assert Post.objects.get(pk=reply.pk).cw_categories == ["use"]
    assert reply.revisions.count() == 1  # a category change alone is an edit
    publishing.edit_post(editor=other_member, post=reply, body=BODY + ".")
    assert Post.objects.get(pk=reply.pk).cw_categories == ["use"]  # None keeps them
    publishing.edit_post(editor=other_member, post=reply, body=BODY, cw_categories=[])
    assert Post.objects.get(pk=reply.pk).cw_categories == []
    with pytest.raises(ValidationError) as excinfo:
        publishing.edit_post(editor=other_member, post=reply, body=BODY, cw_categories=["x"])
    assert list(field_errors(excinfo)) == ["cw_categories"]


@pytest.mark.django_db
def test_reply_form_checkboxes_reach_the_write_path(client, thread, other_member):
    client.force_login(other_member)
    response = client.post(
        f"{thread.get_absolute_url()}reply/",
        {"body": BODY, "cw_categories": ["substances", "other"]},
    )
    assert response.status_code == 302
    assert thread.posts.latest("pk").cw_categories == ["substances", "other"]


@pytest.mark.django_db
def test_new_thread_form_shows_a_bad_code_as_a_field_error(client, public_group, member):
    join(member, public_group)
    client.force_login(member)
    form_page = client.get(f"/g/{public_group.slug}/new/").content.decode()
    assert 'name="cw_categories" value="self_harm"' in form_page
    response = client.post(
        f"/g/{public_group.slug}/new/",
        {"title": "T", "body": "Kept text", "cw_categories": ["gore"]},
    )
    assert response.status_code == 200
    assert "“gore” is not a content-warning category" in response.content.decode()
    assert "Kept text" in response.content.decode()  # nothing the author wrote is lost
    assert not Thread.objects.exists()


# --- moderators --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_moderator_adds_a_category_logged_and_told(thread, other_member, site_moderator):
    reply = reply_with(thread, other_member, ["trauma"])
    actions.set_content_warning(
        actor=site_moderator, obj=reply, warning="", categories=["trauma", "self_harm"]
    )
    assert Post.objects.get(pk=reply.pk).cw_categories == ["self_harm", "trauma"]
    entry = ModerationLogEntry.objects.get(action=ModerationLogEntry.Action.CONTENT_WARNING_SET)
    assert (entry.actor_id, entry.target_type, entry.target_id) == (
        site_moderator.pk,
        "post",
        reply.pk,
    )
    assert entry.before["cw_categories"] == ["trauma"]
    assert entry.after["cw_categories"] == ["self_harm", "trauma"]
    assert "self-harm" in entry.reason
    notice = Notification.objects.get(recipient=other_member, kind=Notification.Kind.MODERATION)
    assert "self-harm" in notice.text and "trauma" not in notice.text


@pytest.mark.django_db
def test_a_moderator_tags_a_thread_through_its_opening_post(thread, site_moderator):
    actions.set_content_warning(actor=site_moderator, obj=thread, warning="", categories=["use"])
    assert opening_of(thread).cw_categories == ["use"]
    entry = ModerationLogEntry.objects.get(action=ModerationLogEntry.Action.CONTENT_WARNING_SET)
    assert (entry.target_type, entry.after["cw_categories"]) == ("thread", ["use"])


@pytest.mark.django_db
def test_moderator_categories_are_validated_and_no_change_is_refused(
    thread, other_member, site_moderator
):
    reply = reply_with(thread, other_member, ["trauma"])
    with pytest.raises(ValidationError) as excinfo:
        actions.set_content_warning(
            actor=site_moderator, obj=reply, warning="", categories=["nope"]
        )
    assert list(field_errors(excinfo)) == ["categories"]
    with pytest.raises(ValidationError, match="already"):
        actions.set_content_warning(
            actor=site_moderator, obj=reply, warning="", categories=["trauma"]
        )
    # The old call, without categories, still works and leaves them alone.
    actions.set_content_warning(actor=site_moderator, obj=reply, warning="Relapse")
    assert Post.objects.get(pk=reply.pk).cw_categories == ["trauma"]
    assert ModerationLogEntry.objects.count() == 1


# --- what readers see ------------------------------------------------------------------


def page_for(client, viewer: User | None, thread: Thread) -> str:
    if viewer is not None:
        client.force_login(viewer)
    return client.get(thread.get_absolute_url()).content.decode()


@pytest.mark.django_db
def test_collapse_wraps_the_body_in_details_naming_the_categories(client, thread):
    author = veteran("willow")
    join(author, thread.group)
    reply_with(thread, author, ["trauma", "substances"])
    page = page_for(client, veteran("aspen"), thread)
    summary = page.index("Content warning: trauma, alcohol or drug imagery")
    opened = page.rindex('<details class="content-warning">', 0, summary)
    assert opened < summary < page.index(BODY) < page.index("</details>", summary)


@pytest.mark.django_db
def test_show_puts_the_body_in_the_open(client, thread):
    author = veteran("willow")
    join(author, thread.group)
    reply_with(thread, author, ["trauma"])
    viewer = veteran("aspen")
    content_warnings.set_preferences(user=viewer, choices={"trauma": "show"})
    page = page_for(client, viewer, thread)
    body = page.index(BODY)
    assert '<details class="content-warning">' not in page[page.index("cw-note") : body]
    assert "Content warning: trauma" in page


@pytest.mark.django_db
def test_hide_leaves_a_placeholder_and_no_body(client, thread):
    author = veteran("willow")
    join(author, thread.group)
    reply_with(thread, author, ["self_harm", "trauma"])
    viewer = veteran("aspen")
    content_warnings.set_preferences(user=viewer, choices={"self_harm": "hide"})
    page = page_for(client, viewer, thread)
    assert "Hidden by your content settings (self-harm)" in page
    assert 'href="/settings/#content-warnings"' in page
    assert BODY not in page


@pytest.mark.django_db
def test_the_strictest_choice_wins(thread, other_member):
    reply = reply_with(thread, other_member, ["use", "other"])
    viewer = veteran("aspen")
    content_warnings.set_preferences(user=viewer, choices={"use": "show", "other": "hide"})
    shown = content_warnings.display_for(reply, viewer)
    assert (shown.mode, shown.reasons) == ("hide", ("other",))
    content_warnings.set_preferences(user=viewer, choices={"other": "show"})
    assert content_warnings.display_for(reply, viewer).mode == "show"


@pytest.mark.django_db
def test_anonymous_visitors_get_the_collapse_default(client, thread, other_member):
    reply_with(thread, other_member, ["self_harm"])
    page = page_for(client, None, thread)
    assert "Hidden by your content settings" not in page
    summary = page.index("Content warning: self-harm")
    assert summary < page.index(BODY) < page.index("</details>", summary)


@pytest.mark.django_db
def test_authors_still_see_their_own_words(client, thread, other_member):
    reply_with(thread, other_member, ["self_harm"])  # other_member is new: hide by default
    page = page_for(client, other_member, thread)
    assert BODY in page
    assert "Hidden by your content settings" not in page


@pytest.mark.django_db
def test_new_members_have_self_harm_and_use_hidden_for_30_days(client, thread, other_member):
    reply_with(thread, other_member, ["self_harm"])
    reply_with(thread, other_member, ["trauma"])
    newcomer = make_user("sprout")  # joined just now
    page = page_for(client, newcomer, thread)
    assert "Hidden by your content settings (self-harm)" in page
    assert page.count(BODY) == 1  # the trauma post, collapsed
    joined, days = newcomer.date_joined, content_warnings.NEW_MEMBER_DAYS
    assert content_warnings.preferences(newcomer, now=joined + timedelta(days=days - 1)) == {
        **content_warnings.DEFAULTS,
        "use": "hide",
        "self_harm": "hide",
    }
    later = joined + timedelta(days=days, hours=1)
    assert content_warnings.preferences(newcomer, now=later) == content_warnings.DEFAULTS
    # A newcomer's own choice beats the stricter default.
    content_warnings.set_preferences(user=newcomer, choices={"self_harm": "collapse"})
    client.force_login(newcomer)
    assert client.get(thread.get_absolute_url()).content.decode().count(BODY) == 2


# --- settings --------------------------------------------------------------------------


@pytest.mark.django_db
def test_settings_section_saves_choices(client):
    viewer = veteran("aspen")
    client.force_login(viewer)
    page = client.get("/settings/").content.decode()
    assert 'value="content_warnings"' in page
    choices = {f"cw_{code}": "collapse" for code in content_warnings.CATEGORIES}
    response = client.post(
        "/settings/", {"section": "content_warnings", **choices, "cw_trauma": "hide"}
    )
    assert response.status_code == 302
    viewer.refresh_from_db()
    assert viewer.cw_preferences["trauma"] == "hide"
    assert content_warnings.preferences(viewer)["use"] == "collapse"
    assert viewer.bio_source == ""  # the profile form was not touched


@pytest.mark.django_db
def test_settings_form_errors_are_shown_and_nothing_saved(client):
    viewer = veteran("aspen")
    client.force_login(viewer)
    choices = {f"cw_{code}": "collapse" for code in content_warnings.CATEGORIES}
    response = client.post(
        "/settings/", {"section": "content_warnings", **choices, "cw_use": "explode"}
    )
    assert response.status_code == 200
    assert "Choose show, collapse or hide." in response.content.decode()
    del choices["cw_trauma"]
    response = client.post("/settings/", {"section": "content_warnings", **choices})
    assert response.status_code == 200
    assert "Choose show, collapse or hide." in response.content.decode()
    viewer.refresh_from_db()
    assert viewer.cw_preferences == {}


@pytest.mark.django_db
def test_set_preferences_refuses_unknown_categories_and_modes(db):
    viewer = veteran("aspen")
    with pytest.raises(ValidationError) as excinfo:
        content_warnings.set_preferences(user=viewer, choices={"use": "maybe"})
    assert list(field_errors(excinfo)) == ["cw_use"]
    with pytest.raises(ValidationError):
        content_warnings.set_preferences(user=viewer, choices={"gore": "hide"})
    viewer.refresh_from_db()
    assert viewer.cw_preferences == {}


@pytest.mark.django_db
def test_the_settings_page_shows_a_newcomer_their_stricter_defaults(client):
    newcomer = make_user("sprout")
    client.force_login(newcomer)
    page = client.get("/settings/").content.decode()
    checked = dict(re.findall(r'name="cw_(\w+)" value="(\w+)"[^>]*checked', page))
    assert checked == {**content_warnings.DEFAULTS, "use": "hide", "self_harm": "hide"}
    assert "For your first 30 days" in page


# --- listings ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_listings_tag_a_threads_categories_and_hide_its_title_where_the_reader_chose(
    client, public_group
):
    author = veteran("willow")
    join(author, public_group)
    publishing.publish_thread(
        author=author, group=public_group, title="The night I slipped", body=BODY,
        cw_categories=["use", "trauma"],
    )  # fmt: skip
    calm = veteran("aspen")
    join(calm, public_group)
    client.force_login(calm)
    for path in (public_group.get_absolute_url(), "/"):
        page = client.get(path).text
        assert "The night I slipped" in page
        assert "CW: relapse or use detail, trauma" in page
    content_warnings.set_preferences(user=calm, choices={"use": "hide"})
    for path in (public_group.get_absolute_url(), "/"):
        page = client.get(path).text
        assert "The night I slipped" not in page
        assert "A discussion hidden by your content settings (relapse or use detail)" in page
    # A newcomer's stricter defaults apply to listings too; the author sees their own title.
    newcomer = make_user("sprout")
    join(newcomer, public_group)
    client.force_login(newcomer)
    assert "The night I slipped" not in client.get(public_group.get_absolute_url()).text
    client.force_login(author)
    assert "The night I slipped" in client.get(public_group.get_absolute_url()).text
