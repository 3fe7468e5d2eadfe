"""The mentoring pages, as members meet them."""

import pytest
from django.urls import reverse

from forum import mentoring
from forum.models import Conversation, MentorApproval, MentorProfile, Mentorship
from tests.conftest import join, make_group, make_user
from tests.forum.test_mentoring import NOTE, build_world, make_regular

State = Mentorship.State


@pytest.fixture(autouse=True)
def _quick(settings):
    from tests.permissions_world import lift_limits

    lift_limits(settings)


@pytest.fixture
def world(db):
    """A leader, a listed mentor and a newer member of one group."""
    return build_world()


def login(client, user):
    client.force_login(user)
    return client


def test_browse_shows_cards_and_filters(client, world):
    page = login(client, world.mentee).get(reverse("mentors"))
    body = page.content.decode()
    assert page.status_code == 200
    assert "oak" in body and "Weekday evenings" in body and "English, Polish" in body
    assert "SMART Recovery" in body and "<strong>meetings</strong>" in body
    assert reverse("mentor_request", args=[world.group.slug, "oak"]) in body
    for query, shown in (
        ({"approach": "refuge"}, False),
        ({"approach": "smart"}, True),
        ({"language": "polish"}, True),
        ({"language": "Welsh"}, False),
        ({"group": world.group.slug}, True),
    ):
        body = client.get(reverse("mentors"), query).content.decode()
        assert ("Weekday evenings" in body) is shown, query
    # A bad filter is a field error, not a crash.
    bad = client.get(reverse("mentors"), {"approach": "astrology"})
    assert bad.status_code == 200 and "not one of the available choices" in bad.content.decode()


def test_browse_lists_only_mentors_of_my_groups(client, world):
    elsewhere = make_user("elsewhere")
    join(elsewhere, make_group("other-place"))
    body = login(client, elsewhere).get(reverse("mentors")).content.decode()
    assert "oak" not in body


def test_ask_accept_and_end_through_the_pages(client, world):
    ask_url = reverse("mentor_request", args=[world.group.slug, world.mentor.handle])
    login(client, world.mentee)
    assert client.get(ask_url).status_code == 200
    response = client.post(ask_url, {"note": NOTE})
    assert response.status_code == 302 and response["Location"] == reverse("mentoring")
    mentorship = Mentorship.objects.get()
    body = client.get(reverse("mentoring")).content.decode()
    assert "request waiting for an answer" in body

    login(client, world.mentor)
    body = client.get(reverse("mentoring")).content.decode()
    assert "asks you to mentor them" in body and "scared of weekends" in body
    response = client.post(reverse("mentorship_accept", args=[mentorship.pk]))
    assert response.status_code == 302
    conversation = Conversation.objects.get(mentorship=mentorship)
    page = client.get(mentorship.get_absolute_url()).content.decode()
    assert conversation.get_absolute_url() in page
    assert reverse("mentorship_goals", args=[mentorship.pk]) in page

    login(client, world.mentee)
    confirm = client.get(reverse("mentorship_end", args=[mentorship.pk]))
    assert confirm.status_code == 200 and "No reason is needed" in confirm.content.decode()
    assert 'name="reason"' not in confirm.content.decode()
    client.post(reverse("mentorship_end", args=[mentorship.pk]))
    mentorship.refresh_from_db()
    assert mentorship.state == State.ENDED
    page = client.get(mentorship.get_absolute_url()).content.decode()
    assert "Read your conversation (closed)" in page


def test_decline_through_the_page(client, world):
    mentorship = mentoring.request_mentor(
        mentee=world.mentee, mentor=world.mentor, group=world.group, note=""
    )
    login(client, world.mentor).post(reverse("mentorship_decline", args=[mentorship.pk]))
    mentorship.refresh_from_db()
    assert mentorship.state == State.DECLINED


def test_non_participants_get_404(client, world, site_moderator):
    mentorship = mentoring.accept(
        mentor=world.mentor,
        mentorship=mentoring.request_mentor(
            mentee=world.mentee, mentor=world.mentor, group=world.group, note=NOTE
        ),
    )
    for nosy in (world.leader, site_moderator, make_user("nosy")):
        login(client, nosy)
        for name in ("mentorship", "mentorship_end"):
            response = client.get(reverse(name, args=[mentorship.pk]))
            assert response.status_code == 404, (nosy, name)
            assert "weekends" not in response.content.decode()
        for name in ("mentorship_accept", "mentorship_decline", "mentorship_end"):
            assert client.post(reverse(name, args=[mentorship.pk])).status_code == 404
    mentorship.refresh_from_db()
    assert mentorship.state == State.ACTIVE
    assert client.get(reverse("mentorship", args=[99999])).status_code == 404


def test_a_blocked_member_sees_a_neutral_refusal(client, world):
    world.mentor.blocks_made.create(blocked=world.mentee)
    login(client, world.mentee)
    body = client.get(reverse("mentors")).content.decode()
    assert "Not taking requests right now" in body
    response = client.get(reverse("mentor_request", args=[world.group.slug, "oak"]))
    assert response.status_code == 403
    assert "block" not in response.content.decode().lower().replace("blockquote", "")


def test_request_form_errors_are_shown_on_the_field(client, world):
    url = reverse("mentor_request", args=[world.group.slug, world.mentor.handle])
    response = login(client, world.mentee).post(url, {"note": "x" * 1001})
    assert response.status_code == 200
    assert "the limit is 1,000" in response.content.decode()
    assert not Mentorship.objects.exists()
    # An unlisted member is not a mentor to ask.
    missing = reverse("mentor_request", args=[world.group.slug, world.leader.handle])
    assert client.get(missing).status_code == 404


def test_profile_page_explains_what_is_missing(client, public_group):
    newcomer = make_user("newcomer")
    join(newcomer, public_group)
    page = login(client, newcomer).get(reverse("mentor_profile"))
    body = page.content.decode()
    assert page.status_code == 200 and "Not yet" in body and "at least 90 days" in body
    assert client.post(reverse("mentor_profile"), {"experience": "Me"}).status_code == 403


def test_offer_profile_with_field_errors_then_ask_for_approval(client, public_group):
    oak = make_user("oak")
    join(oak, public_group)
    oak = make_regular(oak, public_group)
    login(client, oak)
    bad = client.post(
        reverse("mentor_profile"), {"experience": "", "approaches": ["smart"], "accepting": "on"}
    )
    assert bad.status_code == 200 and "cannot be empty" in bad.content.decode()
    bad = client.post(reverse("mentor_profile"), {"experience": "Hi", "approaches": ["nope"]})
    assert bad.status_code == 200 and "is not one of the approaches" in bad.content.decode()
    assert not MentorProfile.objects.exists()
    ok = client.post(
        reverse("mentor_profile"),
        {"experience": "Ten years.", "approaches": ["smart"], "languages": "English"},
    )
    assert ok.status_code == 302
    profile = MentorProfile.objects.get(user=oak)
    assert profile.accepting is False  # unticked box: paused
    client.post(reverse("mentor_approval_request", args=[public_group.slug]))
    assert MentorApproval.objects.get(profile=profile).state == "pending"
    body = client.get(reverse("mentor_profile")).content.decode()
    assert "waiting for a leader" in body
    client.post(reverse("mentor_profile_withdraw"))
    assert not MentorProfile.objects.filter(user=oak).exists()


def test_leader_pages(client, world):
    willow = make_user("willow")
    join(willow, world.group)
    willow = make_regular(willow, world.group)
    mentoring.save_profile(
        user=willow, experience="Quiet **strength**.", approaches=[], availability="", languages=""
    )
    approval = mentoring.request_approval(user=willow, group=world.group)
    url = reverse("group_mentors", args=[world.group.slug])
    assert login(client, world.mentee).get(url).status_code == 403
    decide = reverse("group_mentor_decide", args=[world.group.slug, approval.pk, "approve"])
    assert client.post(decide).status_code == 403
    login(client, world.leader)
    body = client.get(url).content.decode()
    assert "willow" in body and "<strong>strength</strong>" in body and "oak" in body
    assert client.post(decide).status_code == 302
    approval.refresh_from_db()
    assert approval.state == "approved"
    bogus = reverse("group_mentor_decide", args=[world.group.slug, approval.pk, "promote"])
    assert client.post(bogus).status_code == 404
    revoke = reverse("group_mentor_decide", args=[world.group.slug, world.approval.pk, "revoke"])
    client.post(revoke)
    world.approval.refresh_from_db()
    assert world.approval.state == "revoked"
    # Deciding twice is a message, not an error page.
    again = client.post(revoke, follow=True)
    assert again.status_code == 200 and "not listed here" in again.content.decode()


def test_private_group_mentor_pages_are_404_to_outsiders(client, world):
    secret = make_group("secret-circle", private=True, join_policy="request")
    join(world.leader, secret, "leader")
    outsider = make_user("outsider")
    login(client, outsider)
    assert client.get(reverse("group_mentors", args=[secret.slug])).status_code == 404
    assert (
        client.get(reverse("mentor_request", args=[secret.slug, world.mentor.handle])).status_code
        == 404
    )


def test_nav_and_group_links(client, world):
    body = login(client, world.leader).get(world.group.get_absolute_url()).content.decode()
    assert reverse("mentors") in body
    assert reverse("group_mentors", args=[world.group.slug]) in body
