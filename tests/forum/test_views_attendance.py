"""The attendance pages: a member's history and proofs, the public verification page,
the downloaded file."""

from datetime import date, timedelta
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from forum.models import AttendanceProof
from tests.conftest import join
from tests.forum.test_attendance import D1, D2, D3, at, attend, make_session, proof_for

PROOF_CHOICES = {"shows_group": "on", "shows_duration": "on"}


@pytest.fixture
def attended(public_group, member, other_member):
    """river attended three sessions; meadow attended the middle one too."""
    join(member, public_group)
    join(other_member, public_group)
    sessions = [
        make_session(public_group, starts_at=at(day), title=title)
        for day, title in ((D1, "Monday night share"), (D2, "Step four"), (D3, "Speaker night"))
    ]
    for session in sessions:
        attend(session, member, seconds=45 * 60)
    attend(sessions[1], other_member, seconds=30 * 60)
    return sessions


def login_path() -> str:
    return urlsplit(reverse("login")).path


def assert_goes_to_login(response):
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == login_path()


# --- the member's page -------------------------------------------------------------------


@pytest.mark.django_db
def test_attendance_page_needs_a_login(client):
    assert_goes_to_login(client.get(reverse("attendance")))
    assert_goes_to_login(client.post(reverse("attendance_proof_new"), PROOF_CHOICES))
    assert_goes_to_login(client.get(reverse("attendance_proof_download", args=[1])))
    assert_goes_to_login(client.post(reverse("attendance_proof_revoke", args=[1])))


@pytest.mark.django_db
def test_attendance_page_lists_the_members_own_sessions(client, attended, member, other_member):
    client.force_login(other_member)
    html = client.get(reverse("attendance")).content.decode()
    assert "Step four" in html
    assert "Monday night share" not in html
    assert "Speaker night" not in html
    assert member.handle not in html


@pytest.mark.django_db
def test_attendance_page_history_and_form_defaults(client, attended, member):
    client.force_login(member)
    response = client.get(reverse("attendance"))
    assert response.status_code == 200
    html = response.content.decode()
    for title in ("Monday night share", "Step four", "Speaker night"):
        assert title in html
    assert "19:00 UTC" in html
    form = response.context["form"]
    assert form["date_from"].value() == D1
    assert form["shows_group"].value() is True
    assert form["shows_duration"].value() is True
    assert not form["shows_handle"].value()
    assert not form["shows_title"].value()
    # Each choice is explained in a line of its own.
    assert "otherwise it says “the holder”" in html
    assert 'value="2025-03-03"' in html


@pytest.mark.django_db
def test_attendance_page_is_empty_for_a_newcomer(client, member):
    client.force_login(member)
    html = client.get(reverse("attendance")).content.decode()
    assert "None yet" in html


@pytest.mark.django_db
def test_history_is_paginated_by_fifty(client, public_group, member):
    join(member, public_group)
    first = date(2024, 1, 1)
    for n in range(51):
        attend(make_session(public_group, starts_at=at(first + timedelta(days=n))), member)
    client.force_login(member)
    page_one = client.get(reverse("attendance"))
    assert len(page_one.context["window"].items) == 50
    assert page_one.context["window"].has_next
    page_two = client.get(reverse("attendance"), {"page": "2"})
    (oldest,) = page_two.context["window"].items
    assert oldest.date == first
    assert client.get(reverse("attendance"), {"page": "nonsense"}).status_code == 200


@pytest.mark.django_db
def test_settings_page_links_to_attendance(client, member):
    client.force_login(member)
    assert reverse("attendance") in client.get(reverse("settings")).content.decode()


# --- making a proof ----------------------------------------------------------------------


@pytest.mark.django_db
def test_making_a_proof(client, attended, member):
    client.force_login(member)
    response = client.post(
        reverse("attendance_proof_new"),
        {"date_from": "2025-03-01", "date_to": "2025-03-12", **PROOF_CHOICES},
    )
    proof = AttendanceProof.objects.get(user=member)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('attendance')}#proof-{proof.pk}"
    assert (proof.date_from, proof.date_to) == (date(2025, 3, 1), date(2025, 3, 12))
    assert len(proof.entries) == 2
    assert not proof.shows_handle
    assert not proof.shows_title

    html = client.get(reverse("attendance")).content.decode()
    assert f"http://testserver/proof/{proof.token}/" in html
    assert reverse("attendance_proof_download", args=[proof.pk]) in html
    assert reverse("attendance_proof_revoke", args=[proof.pk]) in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"date_from": "2025-03-12", "date_to": "2025-03-01"}, "before the first day"),
        ({"date_from": "2025-03-01", "date_to": "2999-01-01"}, "cannot be in the future"),
        ({"date_from": "2015-03-01", "date_to": "2025-03-12"}, "at most 5 years"),
        ({"date_from": "2024-01-01", "date_to": "2024-02-01"}, "attended no sessions between"),
        ({"date_from": "", "date_to": ""}, "Enter the first day"),
        ({"date_from": "2025-13-45", "date_to": "yesterday"}, "Enter a valid date"),
        ({"date_from": "9" * 40, "date_to": "\x00"}, "Enter a valid date"),
        ({}, "Enter the last day"),
        ({"date_from": "0001-01-01", "date_to": "0001-01-02"}, "attended no sessions between"),
        ({"date_from": "0001-01-01", "date_to": "2025-03-12"}, "at most 5 years"),
        ({"date_from": "2025-03-01", "date_to": "9999-12-31"}, "cannot be in the future"),
    ],
)
def test_bad_input_shows_errors_on_the_page(client, attended, member, data, message):
    client.force_login(member)
    response = client.post(reverse("attendance_proof_new"), {**data, **PROOF_CHOICES})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not AttendanceProof.objects.exists()


@pytest.mark.django_db
def test_making_a_proof_is_a_post(client, member):
    client.force_login(member)
    assert client.get(reverse("attendance_proof_new")).status_code == 405


# --- the verification page ---------------------------------------------------------------


@pytest.mark.django_db
def test_proof_page_is_public_and_private_to_search_engines(client, attended, member):
    proof = proof_for(member, D1, D3)
    response = client.get(proof.get_absolute_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert '<meta name="robots" content="noindex, nofollow">' in html
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert "no-store" in response["Cache-Control"]
    assert "Kinship confirms that the holder of this proof attended" in html
    assert "between 3 March 2025 and 17 March 2025" in html
    assert "testserver" in html
    assert member.email not in html


@pytest.mark.django_db
def test_unknown_proof_is_a_404_that_says_so(client):
    response = client.get(reverse("attendance_proof", args=["not-a-real-token"]))
    assert response.status_code == 404
    html = response.content.decode()
    assert "doesn't exist or was withdrawn" in html
    assert '<meta name="robots" content="noindex, nofollow">' in html


@pytest.mark.django_db
def test_proof_page_takes_no_post(client, attended, member):
    proof = proof_for(member, D1, D3)
    assert client.post(proof.get_absolute_url()).status_code == 405


# --- download ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_download_is_a_standalone_html_file(client, attended, member):
    proof = proof_for(member, D1, D3, shows_title=True)
    client.force_login(member)
    response = client.get(reverse("attendance_proof_download", args=[proof.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="kinship-attendance-2025-03-03-2025-03-17.html"'
    )
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert html.startswith("<!DOCTYPE html>")
    assert f'href="http://testserver/proof/{proof.token}/"' in html
    assert "<style>" in html
    # Nothing in the file makes a request when it is opened.
    for fetches in ("<link", "<script", "src=", "url(", "@import"):
        assert fetches not in html, fetches
    assert "Speaker night" in html
    assert member.handle not in html


@pytest.mark.django_db
def test_only_the_owner_downloads_a_proof(client, attended, member, other_member):
    proof = proof_for(member, D1, D3)
    client.force_login(other_member)
    assert client.get(reverse("attendance_proof_download", args=[proof.pk])).status_code == 404


# --- revoking ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_owner_revokes_and_the_link_is_withdrawn(client, attended, member):
    proof = proof_for(member, D1, D3)
    client.force_login(member)
    response = client.post(reverse("attendance_proof_revoke", args=[proof.pk]))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('attendance')}#proofs"
    client.logout()
    gone = client.get(proof.get_absolute_url())
    assert gone.status_code == 404
    assert "withdrawn" in gone.content.decode()


@pytest.mark.django_db
def test_another_member_cannot_revoke(client, attended, member, other_member):
    proof = proof_for(member, D1, D3)
    client.force_login(other_member)
    assert client.post(reverse("attendance_proof_revoke", args=[proof.pk])).status_code == 404
    assert client.post(reverse("attendance_proof_revoke", args=[99999])).status_code == 404
    assert AttendanceProof.objects.filter(pk=proof.pk).exists()


@pytest.mark.django_db
def test_revoking_is_a_post(client, attended, member):
    proof = proof_for(member, D1, D3)
    client.force_login(member)
    assert client.get(reverse("attendance_proof_revoke", args=[proof.pk])).status_code == 405
    assert AttendanceProof.objects.filter(pk=proof.pk).exists()


# --- queries do not grow with the history ------------------------------------------------


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def history_of(group, user, sessions: int) -> None:
    first = date(2024, 1, 1)
    for n in range(sessions):
        attend(make_session(group, starts_at=at(first + timedelta(days=n))), user)


@pytest.mark.django_db
def test_page_queries_are_constant(client, public_group, member, other_member):
    join(member, public_group)
    join(other_member, public_group)
    history_of(public_group, member, 1)
    history_of(public_group, other_member, 20)
    small = proof_for(member, date(2024, 1, 1), date(2024, 12, 31), shows_title=True)
    large = proof_for(other_member, date(2024, 1, 1), date(2024, 12, 31), shows_title=True)
    assert len(large.entries) == 20

    counts = {}
    for user, proof in ((member, small), (other_member, large)):
        client.force_login(user)
        client.get("/")  # a returning member's session is warm
        counts[user.handle] = (
            count_queries(client, reverse("attendance")),
            count_queries(client, proof.get_absolute_url()),
            count_queries(client, reverse("attendance_proof_download", args=[proof.pk])),
        )
    assert counts[member.handle] == counts[other_member.handle]
