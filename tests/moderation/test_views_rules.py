"""The rules page: members read a group's rules; its moderators add and retire them."""

import pytest
from django.test import Client

from forum.models import Membership
from moderation.models import ModerationLogEntry, Rule
from tests.conftest import join, make_group, make_user

pytestmark = pytest.mark.django_db


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def circle():
    group = make_group("open-circle")
    member, leader, moderator = make_user("river"), make_user("sage"), make_user("heron")
    join(member, group)
    join(leader, group, Membership.Role.LEADER)
    join(moderator, group, Membership.Role.MODERATOR)
    return group, member, leader, moderator


def rules_url(group) -> str:
    return f"/moderation/g/{group.slug}/rules/"


def test_everyone_who_sees_the_group_reads_its_rules_and_the_sites(circle):
    group, member, _leader, moderator = circle
    Rule.objects.create(group=group, title="No fundraising", description="Not even for good causes")
    for client in (Client(), as_user(member)):
        html = client.get(rules_url(group)).content.decode()
        assert "No fundraising" in html and "Not even for good causes" in html
        assert "No dangerous advice" in html  # a site rule, from the migration
        assert "Add the rule" not in html and "Retire" not in html
    assert "Add the rule" in as_user(moderator).get(rules_url(group)).content.decode()
    assert f'href="{rules_url(group)}"' in Client().get(group.get_absolute_url()).content.decode()


def test_a_private_groups_rules_do_not_exist_for_outsiders(circle):
    private = make_group("quiet-room", private=True)
    assert as_user(make_user("stranger")).get(rules_url(private)).status_code == 404
    assert Client().get(rules_url(private)).status_code == 404


def test_a_group_moderator_adds_a_rule_that_sanctions_can_then_cite(circle):
    group, member, _leader, moderator = circle
    client = as_user(moderator)
    response = client.post(rules_url(group), {"title": "No fundraising", "description": "Ever"})
    assert response.status_code == 302
    rule = Rule.objects.get(group=group)
    assert (rule.title, rule.description) == ("No fundraising", "Ever")
    entry = ModerationLogEntry.objects.get(action=ModerationLogEntry.Action.RULE_ADDED)
    assert (entry.actor_id, entry.group_id, entry.target_id) == (moderator.pk, group.pk, rule.pk)
    member_page = client.get(f"/moderation/members/{member.handle}/").content.decode()
    assert "No fundraising" in member_page  # offered on the sanction forms


def test_bad_rules_get_field_errors_and_nothing_is_saved(circle):
    group, _member, _leader, moderator = circle
    client = as_user(moderator)
    blank = client.post(rules_url(group), {"title": "   ", "description": "x"})
    assert blank.status_code == 200 and "This field is required." in blank.content.decode()
    client.post(rules_url(group), {"title": "Be gentle"})
    again = client.post(rules_url(group), {"title": "be GENTLE"})
    assert "There is already a rule with that name here." in again.content.decode()
    control = client.post(rules_url(group), {"title": "Bad\x07bell"})
    assert "invisible control characters" in control.content.decode()
    assert list(Rule.objects.filter(group=group).values_list("title", flat=True)) == ["Be gentle"]


def test_members_and_leaders_cannot_add_or_retire_rules(circle):
    group, member, leader, _moderator = circle
    rule = Rule.objects.create(group=group, title="No fundraising")
    for user in (member, leader):
        assert as_user(user).post(rules_url(group), {"title": "Mine"}).status_code == 403
        retire = as_user(user).post(f"/moderation/rules/{rule.pk}/retire/")
        assert retire.status_code == 403
    assert list(Rule.objects.filter(group=group)) == [rule]


def test_retiring_a_rule_keeps_its_title_in_the_log(circle):
    group, _member, _leader, moderator = circle
    rule = Rule.objects.create(group=group, title="No fundraising")
    response = as_user(moderator).post(f"/moderation/rules/{rule.pk}/retire/")
    assert response.status_code == 302 and response.url == rules_url(group)
    assert not Rule.objects.filter(pk=rule.pk).exists()
    entry = ModerationLogEntry.objects.get(action=ModerationLogEntry.Action.RULE_REMOVED)
    assert entry.before["title"] == "No fundraising"


def test_only_site_moderators_change_the_sites_rules(circle, site_moderator):
    _group, _member, _leader, moderator = circle
    assert as_user(moderator).post("/moderation/rules/", {"title": "Site-wide"}).status_code == 403
    assert (
        as_user(site_moderator).post("/moderation/rules/", {"title": "Site-wide"}).status_code
        == 302
    )
    assert Rule.objects.filter(group__isnull=True, title="Site-wide").exists()
