"""Finding, joining and leading groups through HTTP."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.text import Truncator

from forum import publishing
from forum.models import JoinRequest, Membership, Notification, SupportGroup, Thread
from tests.conftest import join, make_group, thread_among


@pytest.mark.django_db
def test_directory_search_and_kind_filter(client):
    make_group("evening-circle")
    smart = make_group("smart-tools")
    smart.kind = SupportGroup.Kind.SMART
    smart.save()
    body = client.get("/groups/?q=evening").content.decode()
    assert "Evening Circle" in body and "Smart Tools" not in body
    body = client.get("/groups/?kind=smart").content.decode()
    assert "Smart Tools" in body and "Evening Circle" not in body
    assert "No group matches" in client.get("/groups/?q=zzz").content.decode()


@pytest.mark.django_db
def test_each_card_list_shows_its_cards_or_says_it_is_empty(client, public_group, member):
    """The directory, the home page and "My groups" render their cards through one include."""
    make_group("evening-circle")
    client.force_login(member)
    mine = client.get("/groups/mine/").content.decode()
    assert "You have not joined a group yet" in mine and 'class="group-card"' not in mine
    join(member, public_group)
    mine = client.get("/groups/mine/").content.decode()
    assert mine.count('class="group-card"') == 1 and public_group.name in mine
    assert "You have not joined a group yet" not in mine and "you are a member" in mine
    directory = client.get("/groups/").content.decode()
    assert directory.count('class="group-card"') == 2 and "No group matches" not in directory
    home = client.get("/").content.decode()
    assert 'class="group-card"' in home and "Evening Circle" in home


@pytest.mark.django_db
def test_private_groups_are_invisible_to_outsiders(client, private_group, outsider, member):
    join(member, private_group)
    assert private_group.name not in client.get("/groups/").content.decode()
    client.force_login(outsider)
    assert private_group.name not in client.get("/groups/").content.decode()
    response = client.get(f"/g/{private_group.slug}/")
    assert response.status_code == 404
    assert private_group.name not in response.content.decode()
    client.force_login(member)
    assert private_group.name in client.get("/groups/").content.decode()
    assert private_group.name in client.get("/groups/mine/").content.decode()


@pytest.mark.django_db
def test_joining_asks_for_the_guidelines(client, public_group, member):
    client.force_login(member)
    page = client.get(f"/g/{public_group.slug}/join/").content.decode()
    assert "Be kind." in page
    response = client.post(f"/g/{public_group.slug}/join/", {})
    assert response.status_code == 200
    assert "guidelines to join" in response.content.decode()
    assert not Membership.objects.exists()
    response = client.post(f"/g/{public_group.slug}/join/", {"accept_guidelines": "on"})
    assert response.status_code == 302
    assert Membership.objects.get().role == "member"
    public_group.refresh_from_db()
    assert public_group.member_count == 1


@pytest.mark.django_db
def test_joining_twice_is_explained(client, public_group, member):
    join(member, public_group)
    client.force_login(member)
    page = client.get(f"/g/{public_group.slug}/join/").content.decode()
    assert "already a member" in page
    response = client.post(f"/g/{public_group.slug}/join/", {"accept_guidelines": "on"})
    assert "already a member" in response.content.decode()
    assert Membership.objects.count() == 1


@pytest.mark.django_db
def test_private_group_by_invitation_and_leader_approval(client, private_group, member, outsider):
    join(member, private_group, Membership.Role.LEADER)
    client.force_login(outsider)
    invite = f"/invite/{private_group.invite_code}/"
    assert client.get("/invite/not-the-code/").status_code == 404
    response = client.post(invite, {"accept_guidelines": "on"})
    assert response.status_code == 302
    request = JoinRequest.objects.get(user=outsider)
    assert "waiting for a leader" in client.get(invite).content.decode()
    assert client.get(f"/g/{private_group.slug}/").status_code == 404

    client.force_login(member)
    assert outsider.handle in client.get(f"/g/{private_group.slug}/requests/").content.decode()
    client.post(f"/g/{private_group.slug}/requests/{request.pk}/approve/")
    assert Membership.objects.filter(user=outsider, group=private_group).exists()
    assert Notification.objects.filter(recipient=outsider, kind="join_approved").exists()

    client.force_login(outsider)
    assert client.get(f"/g/{private_group.slug}/").status_code == 200


@pytest.mark.django_db
def test_declined_request_and_unknown_decision(client, private_group, member, outsider):
    join(member, private_group, Membership.Role.LEADER)
    request = JoinRequest.objects.create(user=outsider, group=private_group)
    client.force_login(member)
    base = f"/g/{private_group.slug}/requests/{request.pk}"
    assert client.post(f"{base}/maybe/").status_code == 404
    client.post(f"{base}/decline/")
    request.refresh_from_db()
    assert request.status == "declined"
    response = client.post(f"{base}/approve/", follow=True)
    assert "already decided" in response.content.decode()
    assert not Membership.objects.filter(user=outsider).exists()


@pytest.mark.django_db
def test_renewing_the_invitation_retires_the_old_link(client, private_group, member, outsider):
    join(member, private_group, Membership.Role.LEADER)
    old = private_group.invite_code
    client.force_login(member)
    client.post(f"/g/{private_group.slug}/settings/invite/")
    private_group.refresh_from_db()
    assert private_group.invite_code != old
    client.force_login(outsider)
    assert client.get(f"/invite/{old}/").status_code == 404


@pytest.mark.django_db
def test_leaving_a_group(client, public_group, member):
    join(member, public_group)
    client.force_login(member)
    assert client.post(f"/g/{public_group.slug}/leave/").status_code == 302
    assert not Membership.objects.exists()
    response = client.post(f"/g/{public_group.slug}/leave/")
    assert "not a member" in response.content.decode()


@pytest.mark.django_db
def test_site_moderator_creates_a_group_and_leads_it(client, site_moderator):
    client.force_login(site_moderator)
    data = {
        "name": "Night Owls",
        "slug": "night-owls",
        "kind": "mutual_aid",
        "description": "For *late* nights.",
        "guidelines": "Be gentle.",
        "visibility": "public",
        "join_policy": "open",
    }
    response = client.post("/groups/new/", data)
    assert response.status_code == 302
    group = SupportGroup.objects.get(slug="night-owls")
    assert group.description_html == "<p>For <em>late</em> nights.</p>\n"
    assert Membership.objects.get(group=group).role == "leader"
    response = client.post("/groups/new/", {**data, "name": "Copy"})
    assert "already uses this address" in response.content.decode()
    response = client.post("/groups/new/", {**data, "slug": "Bad Slug!"})
    assert "lower-case letters" in response.content.decode()
    assert SupportGroup.objects.count() == 1


@pytest.mark.django_db
def test_leader_edits_group_settings(client, public_group, member):
    join(member, public_group, Membership.Role.LEADER)
    client.force_login(member)
    page = client.get(f"/g/{public_group.slug}/settings/").content.decode()
    assert public_group.invite_code in page
    data = {
        "name": "Open Circle",
        "slug": public_group.slug,
        "kind": "smart",
        "description": "",
        "guidelines": "New rules",
        "visibility": "public",
        "join_policy": "open",
    }
    response = client.post(f"/g/{public_group.slug}/settings/", data)
    assert response.status_code == 200
    assert "The description cannot be empty." in response.content.decode()
    data["description"] = "Updated"
    assert client.post(f"/g/{public_group.slug}/settings/", data).status_code == 302
    public_group.refresh_from_db()
    assert public_group.kind == "smart"
    assert public_group.guidelines_html == "<p>New rules</p>\n"


@pytest.mark.django_db
def test_directory_cards_show_each_reader_their_role_and_every_change(client, member, outsider):
    group = make_group("evening-circle")
    join(member, group, Membership.Role.LEADER)
    join(outsider, group)
    group.refresh_from_db()
    assert "you are" not in client.get("/groups/").content.decode()
    client.force_login(member)
    assert "you are a leader" in client.get("/groups/").content.decode()
    client.force_login(outsider)
    page = client.get("/groups/").content.decode()
    assert "you are a member" in page and "2 members" in page
    # Rendered once for the same inputs: the second page truncates no description.
    with mock.patch.object(Truncator, "words", autospec=True, side_effect=Truncator.words) as cut:
        client.get("/groups/")
    assert cut.call_count == 0
    # A changed description or count is a new card, never the kept one.
    SupportGroup.objects.filter(pk=group.pk).update(
        description_html="<p>" + " ".join(f"word{n}" for n in range(40)) + "</p>", member_count=7
    )
    page = client.get("/groups/").content.decode()
    assert "7 members" in page and "word29" in page and "word30" not in page


@pytest.mark.django_db
def test_a_members_group_page_reads_the_group_with_the_member(client, public_group, member):
    join(member, public_group, Membership.Role.LEADER)
    client.force_login(member)
    client.get(f"/g/{public_group.slug}/")  # the session and the navigation warm
    with CaptureQueriesContext(connection) as queries:
        page = client.get(f"/g/{public_group.slug}/").content.decode()
    assert "Group settings" in page  # the leader's tools: the role was read
    # The member with their group and role; the threads; the upcoming sessions.
    assert len(queries) == 3, [q["sql"] for q in queries]
    assert "forum_supportgroup" in queries[0]["sql"]


@pytest.mark.django_db
def test_group_listing_rows_follow_every_change_and_the_clock(
    settings, client, public_group, member, other_member
):
    thread = thread_among(settings, public_group, member, other_member, title="Day one", body="Hi.")
    client.force_login(other_member)
    url = f"/g/{public_group.slug}/"
    page = client.get(url).content.decode()
    assert "Day one" in page and f"started by {member.handle} · 0 replies" in page
    publishing.publish_reply(author=other_member, thread=thread, parent=None, body="Welcome.")
    page = client.get(url).content.decode()
    assert "· 1 reply ·" in page and f"by {other_member.handle}</p>" in page
    Thread.objects.filter(pk=thread.pk).update(
        title="Day two", is_pinned=True, last_activity_at=timezone.now() - timedelta(hours=3)
    )
    page = client.get(url).content.decode()
    assert "Day one" not in page and '<span class="tag">Pinned</span> Day two' in page
    assert "3\xa0hours ago" in page
    # The same row a while later: its time is not kept with it.
    Thread.objects.filter(pk=thread.pk).update(last_activity_at=timezone.now() - timedelta(hours=5))
    assert "5\xa0hours ago" in client.get(url).content.decode()
