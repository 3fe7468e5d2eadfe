"""The "Notifications" section of the settings page (forum/views/accounts.py settings_page,
forum.forms.NotificationSettingsForm): the table of kinds x (in the app, in the digest) and
the digest's frequency; bad input is a field error, never a 500, and saves nothing."""

import re

import pytest
from django.utils import timezone

from forum import notify
from forum.models import Notification, NotificationPreference

pytestmark = pytest.mark.django_db


def all_on(**changes) -> dict:
    data = {"section": "notifications", "digest_frequency": "off"}
    for category in notify.CATEGORIES:
        if not category.always_in_app:
            data[f"{category.key}_in_app"] = "on"
        data[f"{category.key}_in_digest"] = "on"
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_the_section_shows_every_kind_and_says_moderation_always_reaches_the_app(client, member):
    client.force_login(member)
    response = client.get("/settings/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="notification-settings"' in html
    for category in notify.CATEGORIES:
        assert category.label in html
        assert f'name="{category.key}_in_digest"' in html
        assert (f'name="{category.key}_in_app"' in html) != category.always_in_app
    assert "always reach you in the app" in html
    # The defaults: every box ticked, the digest off.
    assert 'name="replies_in_app" id="id_replies_in_app" checked' in html
    assert re.search(r'<input type="radio" name="digest_frequency" value="off"[^>]* checked>', html)


def test_saving_the_choices(client, member):
    client.force_login(member)
    response = client.post(
        "/settings/",
        all_on(mentions_in_app=None, sessions_in_digest=None, digest_frequency="daily"),
    )
    assert response.status_code == 302
    assert response["Location"] == "/settings/#notification-settings"
    saved = NotificationPreference.objects.get(user=member)
    assert not saved.mentions_in_app and not saved.sessions_in_digest
    assert saved.replies_in_app and saved.moderation_in_digest
    assert saved.digest_frequency == "daily" and saved.last_digest_at is not None
    page = client.get("/settings/").content.decode()
    assert 'name="mentions_in_app" id="id_mentions_in_app"' in page  # unticked now
    assert notify.notify(recipient=member, kind=Notification.Kind.MENTION) is None


@pytest.mark.parametrize("frequency", ["hourly", "", None, "<script>"])
def test_a_bad_frequency_is_a_field_error_and_saves_nothing(client, member, frequency):
    client.force_login(member)
    response = client.post("/settings/", all_on(mentions_in_app=None, digest_frequency=frequency))
    assert response.status_code == 200
    assert response.context["notify_form"].errors["digest_frequency"] == [
        "Choose off, daily or weekly."
    ]
    assert "<script>" not in response.content.decode()
    assert not NotificationPreference.objects.exists()


def test_a_forged_switch_for_moderation_notices_changes_nothing(client, member):
    client.force_login(member)
    response = client.post("/settings/", all_on(moderation_in_app="", held_posts_in_app=""))
    assert response.status_code == 302  # unknown fields are ignored by the form
    note = notify.notify(recipient=member, kind=Notification.Kind.MODERATION, text="x")
    assert note is not None


def test_the_other_sections_are_left_alone(client, member):
    client.force_login(member)
    member.bio_source = "Keep me."
    member.save(update_fields=["bio_source"])
    client.post("/settings/", all_on(bio="Changed?", digest_frequency="weekly"))
    member.refresh_from_db()
    assert member.bio_source == "Keep me."


def test_the_settings_page_needs_a_signed_in_member(client):
    response = client.post("/settings/", all_on())
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not NotificationPreference.objects.exists()


def test_the_notifications_page_links_to_the_choices_and_shows_new_kinds(
    client, member, other_member
):
    notify.notify(
        recipient=member,
        kind=Notification.Kind.MENTORSHIP,
        actor=other_member,
        text="asked you to be their mentor",
        url="/mentors/requests/",
    )
    notify.notify(
        recipient=member,
        kind=Notification.Kind.DIRECT_MESSAGE,
        actor=other_member,
        text=f"{other_member.handle} would like to talk",
        url="/messages/",
    )
    client.force_login(member)
    html = client.get("/notifications/").content.decode()
    assert "/settings/#notification-settings" in html
    assert 'href="/mentors/requests/">asked you to be their mentor</a>' in html
    assert 'Direct messages:</strong> <a href="/messages/">meadow would like to talk</a>' in html
    assert Notification.objects.filter(recipient=member, read_at__lte=timezone.now()).count() == 2
