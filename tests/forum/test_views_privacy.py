"""The "Your data" page: download everything, delete the account (forum/views/privacy.py)."""

import json

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from forum import memberships, publishing
from forum.models import ChatMessage, ChatRoom, User
from tests.conftest import PASSWORD, join, make_group, make_user

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_page_needs_a_login_and_sits_in_the_account_menu():
    url = reverse("your_data")
    assert Client().get(url).status_code == 302
    client = signed_in(make_user("lantern"))
    page = client.get(url)
    assert page.status_code == 200
    assert f'href="{url}"' in client.get(reverse("settings")).content.decode()
    body = page.content.decode()
    assert reverse("export_data") in body
    assert 'name="password"' in body


def test_download_is_a_json_attachment_of_the_members_own_data():
    member = make_user("lantern", bio_source="Walking every morning.")
    response = signed_in(member).post(reverse("export_data"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith('attachment; filename="kinship-')
    assert response["Cache-Control"] == "no-store"
    data = json.loads(response.content)
    assert data["profile"]["handle"] == "lantern"
    assert data["profile"]["bio"] == "Walking every morning."


def test_download_takes_a_post_and_a_login():
    assert signed_in(make_user("lantern")).get(reverse("export_data")).status_code == 405
    response = Client().post(reverse("export_data"))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_a_wrong_password_or_no_choice_is_a_clear_error_and_erases_nothing():
    member = make_user("lantern")
    client = signed_in(member)
    wrong = client.post(reverse("your_data"), {"posts": "remove", "password": "nope"})
    assert wrong.status_code == 200
    assert "That is not your current password." in wrong.content.decode()
    missing = client.post(reverse("your_data"), {"posts": "burn", "password": PASSWORD})
    assert missing.status_code == 200
    assert "Select a valid choice" in missing.content.decode()
    member.refresh_from_db()
    assert member.is_active
    assert member.handle == "lantern"


def test_deleting_signs_the_member_out_everywhere():
    member = make_user("lantern")
    other_device = signed_in(member)
    client = signed_in(member)
    stays = signed_in(make_user("beacon"))

    response = client.post(reverse("your_data"), {"posts": "keep", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    member.refresh_from_db()
    assert not member.is_active
    assert member.handle.startswith("former-member-")
    assert Session.objects.count() == 1
    for device in (client, other_device):
        assert device.get(reverse("settings")).status_code == 302  # to the login page
    assert stays.get(reverse("settings")).status_code == 200
    # The old handle signs nobody in, and is free again.
    assert not Client().login(handle="lantern", password=PASSWORD)
    assert not User.objects.filter(handle="lantern").exists()


def test_downloads_are_limited(settings):
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "export": (2, 3600)}
    client = signed_in(make_user("lantern"))
    for _ in range(2):
        assert client.post(reverse("export_data")).status_code == 200
    refused = client.post(reverse("export_data"), follow=True)
    assert refused.redirect_chain == [(reverse("your_data"), 302)]
    assert "faster than Kinship allows" in refused.content.decode()


def test_password_guesses_on_the_delete_form_are_limited(settings):
    settings.KINSHIP_RATE_LIMITS = {**settings.KINSHIP_RATE_LIMITS, "account_delete": (2, 3600)}
    member = make_user("lantern")
    client = signed_in(member)
    for _ in range(2):
        client.post(reverse("your_data"), {"posts": "keep", "password": "guess"})
    response = client.post(reverse("your_data"), {"posts": "keep", "password": PASSWORD})
    assert response.status_code == 200
    assert "faster than Kinship allows" in response.content.decode()
    member.refresh_from_db()
    assert member.is_active


def test_a_former_member_deletes_their_chat_messages_in_the_groups_they_left():
    left, stayed = make_group("open-circle"), make_group("evening-circle")
    member, other = make_user("lantern"), make_user("meadow")
    for group in (left, stayed):
        join(member, group)
        join(other, group)
    rooms = {
        group: ChatRoom.objects.create(group=group, name="General", slug="general")
        for group in (left, stayed)
    }

    def say(room, author, body):
        return publishing.publish_chat_message(author=author, room=room, body=body, client_id=body)[
            0
        ]

    gone = [say(rooms[left], member, f"Mine, left {n}") for n in range(2)]
    kept = say(rooms[stayed], member, "Mine, still here")
    theirs = say(rooms[left], other, "Theirs")
    memberships.leave_group(user=member, group=left)

    client = signed_in(member)
    page = client.get(reverse("your_data")).content.decode()
    assert "You wrote 2 chat messages in groups you are no longer in" in page
    response = client.post(reverse("withdraw_left_chat"), follow=True)
    assert "Deleted 2 chat messages." in response.content.decode()
    for message in gone:
        message.refresh_from_db()
        assert message.removed_by == ChatMessage.RemovedBy.AUTHOR and message.source == ""
    # A room they can still open keeps theirs (they delete it there), and nobody else's moved.
    for message in (kept, theirs):
        message.refresh_from_db()
        assert message.removed_at is None and message.source
    again = client.post(reverse("withdraw_left_chat"), follow=True).content.decode()
    assert "There were no chat messages left to delete." in again
    assert (
        "None. Messages in groups you are in" in client.get(reverse("your_data")).content.decode()
    )
