"""``{% chrome %}`` (forum/templatetags/chrome.py): a block rendered once per set of inputs,
which sees nothing else, so a changed input shows at once; each page gets its own token."""

import re

import pytest
from django.middleware.csrf import get_token
from django.template import Context, RequestContext, Template
from django.test import Client, RequestFactory
from django.utils.safestring import mark_safe

from forum.models import Notification
from forum.templatetags import chrome

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _block(body: str, inputs: str = "value=value") -> Template:
    return Template(f"{{% load chrome %}}{{% chrome {inputs} %}}{body}{{% endchrome %}}")


class Renders:
    """Counts renders of a block's own template (its misses)."""

    def __init__(self, template: Template, monkeypatch) -> None:
        self.count = 0
        node = next(n for n in template.nodelist if isinstance(n, chrome.ChromeNode))
        render = node.nodelist.render

        def counted(context):
            self.count += 1
            return render(context)

        monkeypatch.setattr(node.nodelist, "render", counted)


def test_a_block_sees_only_its_inputs():
    template = _block("{{ value }}/{{ other }}/{{ user }}")
    assert template.render(Context({"value": 1, "other": 2, "user": "me"})) == "1//"


def test_a_changed_input_renders_anew_and_the_same_is_served_again(monkeypatch):
    template = _block("<b>{{ value }}</b>")
    renders = Renders(template, monkeypatch)
    assert template.render(Context({"value": "one"})) == "<b>one</b>"
    assert template.render(Context({"value": "two"})) == "<b>two</b>"
    assert template.render(Context({"value": "one"})) == "<b>one</b>"
    assert renders.count == 2


def test_inputs_of_another_kind_are_other_entries():
    template = _block(
        "{{ value }}|{% if value == 1 %}1{% endif %}{% if value is True %}T{% endif %}"
    )
    assert template.render(Context({"value": "<i>"})) == "&lt;i&gt;|"
    assert template.render(Context({"value": mark_safe("<i>")})) == "<i>|"
    assert template.render(Context({"value": 1})) == "1|1"
    assert template.render(Context({"value": True})) == "True|1T"


def test_model_instances_are_refused(db, member):
    with pytest.raises(TypeError, match="value is a User"):
        _block("{{ value.handle }}").render(Context({"value": member}))


def test_entries_are_bounded(monkeypatch):
    monkeypatch.setattr(chrome, "SIZE", 2)
    template = _block("{{ value }}")
    renders = Renders(template, monkeypatch)
    for value in (1, 2, 3, 1):
        template.render(Context({"value": value}))
    assert renders.count == 4  # 1 was the oldest entry, dropped for 3


def test_each_page_gets_its_own_csrf_token():
    template = _block('<form method="post">{% csrf_token %}</form>')
    tokens = []
    for _ in range(2):
        request = RequestFactory().get("/")
        html = template.render(RequestContext(request, {"value": "same"}))
        tokens.append(TOKEN.search(html)[1])
        assert "\x00" not in html
        # The token shown is one for this request's secret, as {% csrf_token %} shows it.
        assert len(tokens[-1]) == len(get_token(request))
    assert tokens[0] != tokens[1]
    # Without a token in the context, no field, as {% csrf_token %} does.
    assert template.render(Context({"value": "same"})) == '<form method="post"></form>'


@pytest.mark.django_db
def test_the_navigation_is_each_members_own_and_shows_changes_at_once(member, other_member):
    river, meadow = Client(), Client()
    river.force_login(member)
    meadow.force_login(other_member)
    assert "<summary>river</summary>" in river.get("/help/").content.decode()
    page = meadow.get("/help/").content.decode()
    assert "<summary>meadow</summary>" in page
    assert "unread" not in page
    Notification.objects.create(recipient=other_member, kind=Notification.Kind.MENTION)
    assert 'aria-label="1 unread"' in meadow.get("/help/").content.decode()
    assert 'aria-label="1 unread"' not in river.get("/help/").content.decode()


@pytest.mark.django_db
def test_log_out_works_with_the_token_of_a_cached_navigation(member):
    first = Client()
    first.force_login(member)
    first.get("/help/")  # the navigation is cached for this member now
    reader = Client(enforce_csrf_checks=True)
    reader.force_login(member)
    page = reader.get("/help/").content.decode()
    logout = page[page.index('action="/accounts/logout/"') :]
    response = reader.post("/accounts/logout/", {"csrfmiddlewaretoken": TOKEN.search(logout)[1]})
    assert response.status_code == 302
    assert "_auth_user_id" not in reader.session
