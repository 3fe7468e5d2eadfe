"""Link rules (domains blocked or allowed, site-wide and per group) and the approval of
held posts by trusted members. Thin adapters over moderation.actions."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from forum import selectors
from forum.models import User
from forum.views._util import posted, submit

from .. import actions, permissions
from ..models import DomainRule, LinkApproval


class DomainRuleForm(forms.Form):
    domain = forms.CharField(
        label="Domain",
        max_length=253,
        help_text="For example example.com; its subdomains are included.",
    )
    kind = forms.ChoiceField(
        label="Links to it are",
        choices=DomainRule.Kind.choices,
        initial=DomainRule.Kind.BLOCK,
        widget=forms.RadioSelect,
    )


def _links_page(request, group):
    permissions.check_can_moderate(request.user, "manage_rules", group)
    form = DomainRuleForm(posted(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        rule = submit(
            form,
            lambda: actions.add_domain_rule(
                actor=request.user, group=group, domain=data["domain"], kind=data["kind"]
            ),
        )
        if rule is not None:
            messages.success(request, f"Link rule added for {rule.domain}.")
            return redirect(request.path)
    context = {
        "group": group,
        "rules": DomainRule.objects.filter(group=group).select_related("created_by"),
        "site_count": DomainRule.objects.filter(group__isnull=True).count() if group else None,
        "form": form,
    }
    return render(request, "moderation/links.html", context)


@login_required
def group_links(request, slug: str):
    return _links_page(request, selectors.get_group_for(request.user, slug))


@login_required
def site_links(request):
    return _links_page(request, None)


@login_required
def remove_link(request, rule_id: int):
    if request.method != "POST":
        raise Http404("Use the form.")
    rule = get_object_or_404(DomainRule.objects.select_related("group"), pk=rule_id)
    actions.remove_domain_rule(actor=request.user, rule=rule)
    messages.success(request, f"Link rule for {rule.domain} removed.")
    if rule.group is None:
        return redirect("moderation:site_links")
    return redirect("moderation:group_links", slug=rule.group.slug)


KINDS = {"post": "post", "thread": "thread", "chat": "chat message"}


@login_required
def approve(request, kind: str, pk: int):
    """A held post, thread or chat message, shown to one who may approve it, with the
    button that does."""
    obj = actions.load_target(KINDS.get(kind, ""), pk)
    if obj is None:
        raise Http404("Nothing to approve here.")
    permissions.check_can_approve_held(request.user, obj)
    if request.method == "POST":
        actions.approve_held(actor=request.user, obj=obj)
        messages.success(request, "Approved: everyone can see it now.")
        return redirect(actions.target_of(obj).url)
    target = actions.target_of(obj)
    if kind == "thread":
        body = obj.posts.filter(parent__isnull=True).values_list("html", flat=True).first()
    else:
        body = obj.html
    context = {"target": target, "kind": kind, "obj": obj, "body": body,
               "waiting": actions.held_item(obj) is not None}  # fmt: skip
    return render(request, "moderation/approve.html", context)


class AllowLinksForm(forms.Form):
    handle = forms.CharField(
        label="Member's handle",
        max_length=31,
        help_text="A member of this group whose links wait for review, whom you know and trust.",
    )


@login_required
def group_link_allowances(request, slug: str):
    """Members a leader let past the link threshold in a group, and the form to add one."""
    group = selectors.get_group_for(request.user, slug)
    permissions.check_can_moderate(request.user, "allow_links", group)
    form = AllowLinksForm(posted(request))
    if request.method == "POST" and form.is_valid():
        handle = form.cleaned_data["handle"].strip().lstrip("@")
        member = User.objects.filter(handle__iexact=handle).first()
        if member is None:
            form.add_error("handle", f"There is no member called {handle}.")
        elif submit(
            form, lambda: actions.allow_links(actor=request.user, member=member, group=group)
        ):
            messages.success(request, f"{member.handle} can now post links here.")
            return redirect(request.path)
    context = {
        "group": group,
        "form": form,
        "approvals": LinkApproval.objects.filter(group=group).select_related(
            "member", "approved_by"
        ),
    }
    return render(request, "moderation/link_allowances.html", context)


@login_required
@require_POST
def withdraw_link_allowance(request, approval_id: int):
    approval = get_object_or_404(
        LinkApproval.objects.select_related("group", "member"), pk=approval_id
    )
    group = selectors.get_group_for(request.user, approval.group.slug)  # 404 if unknown to them
    approval.group = group
    actions.withdraw_links(actor=request.user, approval=approval)
    messages.success(request, f"{approval.member.handle}'s links wait for review again.")
    return redirect("moderation:link_allowances", slug=group.slug)
