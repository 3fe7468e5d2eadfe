"""Watched words and phrases (moderation.policy): the site's, kept by site moderators, and
each group's, kept by its moderators. The list is for moderators only: showing it to
members would teach them what to misspell."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from forum import selectors
from forum.views._util import posted, submit

from .. import actions, permissions, policy
from ..models import WatchedPhrase


class WatchedPhraseForm(forms.Form):
    pattern = forms.CharField(
        label="Word, phrase or expression",
        max_length=policy.PATTERN_MAX,
        help_text="Matched without regard to case or accents, and through simple disguises "
        "such as “h e r o i n” or “h3r01n”. Whole words never match inside other words.",
    )
    match = forms.ChoiceField(
        label="How to match it",
        choices=WatchedPhrase.Match.choices,
        initial=WatchedPhrase.Match.WORD,
        widget=forms.RadioSelect,
    )
    action = forms.ChoiceField(
        label="What happens to text that contains it",
        choices=WatchedPhrase.Action.choices,
        initial=WatchedPhrase.Action.FLAG,
        widget=forms.RadioSelect,
    )
    message = forms.CharField(
        label="Message to the author (for a block, optional)",
        required=False,
        max_length=300,
        help_text="Say what to change, kindly. Without one, a general message is shown.",
    )


def _watched_page(request, group):
    # Only those who keep the list see it: 404 for a private group they cannot see,
    # 403 for everyone else.
    permissions.check_can_moderate(request.user, "manage_rules", group)
    form = WatchedPhraseForm(posted(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        phrase = submit(
            form,
            lambda: actions.add_watched_phrase(
                actor=request.user, group=group, pattern=data["pattern"], match=data["match"],
                action=data["action"], message=data["message"],
            ),
        )  # fmt: skip
        if phrase is not None:
            messages.success(request, f"Now watching for “{phrase.pattern}”.")
            return redirect(request.path)
    phrases = WatchedPhrase.objects.filter(group=group).select_related("created_by")
    context = {
        "group": group,
        "phrases": phrases,
        "site_count": WatchedPhrase.objects.filter(group__isnull=True).count() if group else None,
        "form": form,
    }
    return render(request, "moderation/watched.html", context)


@login_required
def group_watched(request, slug: str):
    return _watched_page(request, selectors.get_group_for(request.user, slug))


@login_required
def site_watched(request):
    return _watched_page(request, None)


@login_required
@require_POST
def remove_watched(request, phrase_id: int):
    phrase = get_object_or_404(WatchedPhrase.objects.select_related("group"), pk=phrase_id)
    actions.remove_watched_phrase(actor=request.user, phrase=phrase)
    messages.success(request, f"No longer watching for “{phrase.pattern}”.")
    if phrase.group is None:
        return redirect("moderation:site_watched")
    return redirect("moderation:group_watched", slug=phrase.group.slug)
