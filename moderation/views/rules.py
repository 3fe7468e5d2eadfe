"""The rules a group's sanctions can cite: everyone who sees the group reads them; its
moderators (site moderators, for the site's own) add and retire them."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from forum import selectors
from forum.views._util import posted, submit

from .. import actions, permissions
from ..models import Rule


class RuleForm(forms.Form):
    title = forms.CharField(label="The rule", max_length=actions.RULE_TITLE_MAX)
    description = forms.CharField(
        label="What it means (optional)", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


def _rules_page(request, group):
    can_manage = permissions.can_moderate(request.user, "manage_rules", group)
    form = RuleForm(posted(request))
    if request.method == "POST":
        permissions.check_can_moderate(request.user, "manage_rules", group)
        if form.is_valid():
            data = form.cleaned_data
            rule = submit(
                form,
                lambda: actions.add_rule(
                    actor=request.user, group=group, title=data["title"],
                    description=data["description"],
                ),
            )  # fmt: skip
            if rule is not None:
                messages.success(request, f"The rule “{rule.title}” is in place.")
                return redirect(request.path)
    context = {
        "group": group,
        "rules": Rule.objects.filter(group=group),
        "site_rules": Rule.objects.filter(group__isnull=True) if group else None,
        "can_manage": can_manage,
        "form": form,
    }
    return render(request, "moderation/rules.html", context)


def group_rules(request, slug: str):
    return _rules_page(request, selectors.get_group_for(request.user, slug))


def site_rules(request):
    return _rules_page(request, None)


@login_required
@require_POST
def retire_rule(request, rule_id: int):
    rule = get_object_or_404(Rule.objects.select_related("group"), pk=rule_id)
    if rule.group is not None:
        permissions.check_can_view_group(request.user, rule.group)
    actions.remove_rule(actor=request.user, rule=rule)
    messages.success(request, f"The rule “{rule.title}” is retired.")
    if rule.group is None:
        return redirect("moderation:site_rules")
    return redirect("moderation:group_rules", slug=rule.group.slug)
