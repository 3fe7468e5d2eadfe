"""The search page: forum.search over GET, with its filters."""

import re

from django import forms
from django.core.exceptions import ValidationError
from django.http import Http404, QueryDict
from django.shortcuts import render

from moderation import ratelimit
from moderation.ratelimit import RateLimited

from .. import search as search_service
from .. import selectors
from ..forms import attach_errors
from ..models import SupportGroup
from ._util import page_number

SLUG = re.compile(r"[-a-zA-Z0-9_]{1,60}")


class SearchForm(forms.Form):
    # Lengths and characters are forum.search's to judge, with its own messages.
    q = forms.CharField(
        label="Search for",
        required=False,
        strip=False,
        widget=forms.TextInput(attrs={"type": "search", "maxlength": search_service.QUERY_MAX}),
        help_text='Words must all appear; "quote a phrase"; -word leaves a word out.',
    )
    group = forms.ChoiceField(label="In", required=False)
    kind = forms.ChoiceField(
        label="Look in",
        required=False,
        choices=[("", "Posts, thread titles and chat"), *search_service.KINDS.items()],
    )
    author = forms.CharField(
        label="Written by", required=False, widget=forms.TextInput(attrs={"maxlength": 31})
    )
    date_from = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, data, *, groups: list[SupportGroup], everywhere: str, slug: str) -> None:
        super().__init__(data, initial={"group": slug})
        self.fields["q"].validators = []  # a NUL too: forum.search strips control characters
        self.fields["group"].choices = [("", everywhere)] + [(g.slug, g.name) for g in groups]


def _group_choices(user, chosen: SupportGroup | None) -> list[SupportGroup]:
    """The searcher's own groups, and the chosen one if it is a public group they are
    not in (its page's "Search this group" box)."""
    groups = list(selectors.groups_of(user)) if user.is_authenticated else []
    if chosen is not None and all(g.pk != chosen.pk for g in groups):
        groups.insert(0, chosen)
    return groups


def search(request):
    user = request.user
    slug = request.GET.get("group", "")
    # A group the searcher may not know of is a 404, as on its own pages.
    if slug and not SLUG.fullmatch(slug):
        raise Http404("No such group.")
    group = selectors.get_group_for(user, slug) if slug else None
    everywhere = "All groups you can read" if user.is_authenticated else "All public groups"
    form = SearchForm(
        request.GET if "q" in request.GET else None,
        groups=_group_choices(user, group),
        everywhere=everywhere,
        slug=slug,
    )
    results = None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            who = str(user.pk) if user.is_authenticated else request.META.get("REMOTE_ADDR", "")
            ratelimit.hit("search", key=who)
            results = search_service.search(
                user,
                query=data["q"],
                group=group,
                author=data["author"],
                kind=data["kind"] or None,
                date_from=data["date_from"],
                date_to=data["date_to"],
                page=page_number(request),
            )
        except ValidationError as error:
            attach_errors(form, error)
        except RateLimited as error:
            form.add_error(None, f"{error} Searching again in a moment will work.")
    keep = QueryDict(mutable=True)
    if results is not None:
        keep.update({k: v for k, v in request.GET.items() if k != "page" and v})
    return render(
        request,
        "forum/search.html",
        {
            "form": form,
            "group": group,
            "results": results,
            "keep": keep.urlencode(),
        },
    )
