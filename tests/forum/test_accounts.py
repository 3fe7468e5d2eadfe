"""Sign-up, log-in, password reset, profiles and the settings page."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from forum.models import User
from tests.conftest import PASSWORD, join, make_user


def signup(client, handle="new-member", email="new@example.test", password=PASSWORD):
    return client.post(
        "/accounts/signup/",
        {"handle": handle, "email": email, "password1": password, "password2": password},
    )


@pytest.mark.django_db
def test_signup_creates_account_and_logs_in(client):
    response = signup(client)
    assert response.status_code == 302
    user = User.objects.get(handle="new-member")
    assert user.email == "new@example.test"
    assert client.get("/").context["user"] == user


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("handle", "message"),
    [
        ("ab", "3 to 30 characters"),
        ("x" * 31, "at most 30 characters"),
        ("has space", "3 to 30 characters"),
        ("<script>", "3 to 30 characters"),
        ("Admin", "reserved"),
        ("moderator", "reserved"),
    ],
)
def test_signup_refuses_bad_handles(client, handle, message):
    response = signup(client, handle=handle)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not User.objects.exists()


@pytest.mark.django_db
def test_handles_are_unique_regardless_of_case(client):
    make_user("River")
    response = signup(client, handle="rIVER")
    assert response.status_code == 200
    assert "That handle is taken" in response.content.decode()
    assert User.objects.count() == 1


@pytest.mark.django_db
def test_common_password_is_refused(client):
    response = signup(client, password="11111111")
    assert response.status_code == 200
    body = response.content.decode()
    assert "too common" in body
    assert not User.objects.exists()


@pytest.mark.django_db
def test_duplicate_email_is_refused_without_naming_the_account(client):
    make_user("river")
    response = signup(client, email="RIVER@example.test")
    assert response.status_code == 200
    body = response.content.decode()
    assert "cannot be used" in body
    assert "river" not in body.split("<main", 1)[1].lower().split("value=")[0]


@pytest.mark.django_db
def test_login_with_handle_in_any_case(client):
    make_user("River")
    response = client.post("/accounts/login/", {"username": "river", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").context["user"].handle == "River"


@pytest.mark.django_db
def test_wrong_password_gives_a_clear_message(client):
    make_user("river")
    response = client.post("/accounts/login/", {"username": "river", "password": "nope"})
    assert response.status_code == 200
    assert "do not match" in response.content.decode()


@pytest.mark.django_db
def test_logout_is_a_post(client, member):
    client.force_login(member)
    assert client.get("/accounts/logout/").status_code == 405
    assert client.post("/accounts/logout/").status_code == 302
    assert not client.get("/").context["user"].is_authenticated


@pytest.mark.django_db
def test_password_reset_by_email(client, member):
    response = client.post("/accounts/password_reset/", {"email": member.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/reset/\S+)", mail.outbox[0].body).group(1)
    form_url = client.get(link).url  # Django swaps the token for a session value
    response = client.post(
        form_url, {"new_password1": "quiet-harbour-5521", "new_password2": "quiet-harbour-5521"}
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.check_password("quiet-harbour-5521")


@pytest.mark.django_db
def test_password_reset_for_unknown_email_looks_the_same(client):
    response = client.post("/accounts/password_reset/", {"email": "nobody@example.test"})
    assert response.status_code == 302
    assert response.url == "/accounts/password_reset/done/"
    assert mail.outbox == []


@pytest.mark.django_db
def test_email_is_never_shown_to_other_members(client, member, other_member, public_group):
    join(member, public_group)
    join(other_member, public_group)
    client.force_login(other_member)
    body = client.get(f"/u/{member.handle}/").content.decode()
    assert member.handle in body
    assert member.email not in body


@pytest.mark.django_db
def test_profiles_need_a_signed_in_viewer(client, member):
    response = client.get(f"/u/{member.handle}/")
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


@pytest.mark.django_db
def test_unknown_profile_is_404(client, member):
    client.force_login(member)
    assert client.get("/u/nobody-here/").status_code == 404


@pytest.mark.django_db
def test_settings_save_bio_and_recovery_date(client, member):
    client.force_login(member)
    response = client.post(
        "/settings/",
        {
            "bio": "One day at a *time*.",
            "recovery_date": "2025-01-01",
            "recovery_date_visibility": "everyone",
        },
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.bio_html == "<p>One day at a <em>time</em>.</p>\n"
    assert str(member.recovery_date) == "2025-01-01"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"recovery_date": "2999-01-01"}, "between 1900 and today"),
        ({"recovery_date": "not-a-date"}, "Enter a date"),
        ({"bio": "x" * 1001}, "the limit is 1,000"),
        ({"bio": "bad\x00nul"}, "Null characters are not allowed"),
        ({"recovery_date_visibility": "the-world"}, "Select a valid choice"),
    ],
)
def test_settings_bad_input_keeps_what_was_saved(client, member, data, message):
    member.bio_source = "kept"
    member.save()
    client.force_login(member)
    form = {"bio": "new text", "recovery_date": "", "recovery_date_visibility": "only_me", **data}
    response = client.post("/settings/", form)
    assert response.status_code == 200
    assert message in response.content.decode()
    member.refresh_from_db()
    assert member.bio_source == "kept"


def recovery_days_shown(client, viewer, member) -> bool:
    client.force_login(viewer)
    return "in recovery" in client.get(f"/u/{member.handle}/").content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("visibility", "stranger_sees", "group_peer_sees"),
    [("only_me", False, False), ("groups", False, True), ("everyone", True, True)],
)
def test_recovery_day_count_follows_the_members_choice(
    client, public_group, member, other_member, outsider, visibility, stranger_sees, group_peer_sees
):
    import datetime

    member.recovery_date = datetime.date(2024, 3, 1)
    member.recovery_date_visibility = visibility
    member.save()
    join(member, public_group)
    join(other_member, public_group)
    assert recovery_days_shown(client, member, member)
    assert recovery_days_shown(client, outsider, member) is stranger_sees
    assert recovery_days_shown(client, other_member, member) is group_peer_sees


def test_custom_user_model_is_in_use():
    assert get_user_model() is User


@pytest.mark.django_db
def test_change_email_needs_the_current_password(client, member, other_member):
    client.force_login(member)
    response = client.post("/settings/email/", {"email": "new@example.test", "password": "wrong"})
    assert "not your current password" in response.content.decode()
    response = client.post(
        "/settings/email/", {"email": other_member.email.upper(), "password": PASSWORD}
    )
    assert "cannot be used" in response.content.decode()
    response = client.post("/settings/email/", {"email": "new@example.test", "password": PASSWORD})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.email == "new@example.test"
    response = client.post("/settings/email/", {})
    assert "This field is required" in response.content.decode()
