"""Direct conversations: the member's messages, a conversation, a request, the answers.

Every page here is for the conversation's two participants only: anyone else, moderators
and admins included, gets a 404 (forum.conversations.get_conversation_for). The live
part is the chat panel over forum.consumers, as in any room.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from moderation import actions, permissions
from moderation.forms_members import FlagForm
from moderation.models import FlagReason

from .. import conversations, publishing, selectors
from ..models import Conversation
from ._util import posted, submit
from .chat import chat_panel_context

REPORT_THANKS = "Thank you. A moderator will look at it. {handle} will not be told who reported it."


class RequestForm(forms.Form):
    note = forms.CharField(
        label="Your note",
        max_length=publishing.REQUEST_NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": publishing.REQUEST_NOTE_MAX}),
        help_text="Say who you are and why you would like to talk. They see this note and "
        "choose whether to accept; nothing else reaches them until they do.",
        error_messages={"required": "Write a short note with your request."},
    )


class ReportForm(FlagForm):
    block = forms.BooleanField(
        label="Also block them (they are not told)", required=False, initial=True
    )


def _answer(request, pk: int, change, done: str) -> tuple[Conversation, bool]:
    """Run one answer (accept, ignore, block, close) and say what happened."""
    conversation = conversations.get_conversation_for(request.user, pk)
    try:
        change(user=request.user, conversation=conversation)
    except PermissionDenied as refusal:
        messages.error(request, str(refusal))
        return conversation, False
    messages.success(request, done.format(handle=conversation.other(request.user).handle))
    return conversation, True


@login_required
def inbox(request):
    return render(
        request, "forum/messages.html", {"inbox": conversations.conversations_of(request.user)}
    )


@login_required
def conversation(request, pk: int):
    conversation = conversations.get_conversation_for(request.user, pk)
    partner = conversation.other(request.user)
    context = {
        "conversation": conversation,
        "partner": partner,
        "is_starter": conversation.starter_id == request.user.pk,
        "lapsed": conversation.is_expired(),
    }
    if conversation.accepted_at is not None:
        context.update(chat_panel_context(request.user, conversation.room))
        # Leaders of the room's group have no say in here: moderators act on reports only.
        context["can_moderate"] = False
    return render(request, "forum/conversation.html", context)


@login_required
def conversation_new(request, handle: str):
    """The request form behind a profile's "Message" button."""
    recipient = selectors.get_member(handle)
    existing = conversations.open_between(request.user, recipient)
    if existing is not None and not existing.is_expired():
        return redirect(existing.get_absolute_url())
    refusal = permissions.conversation_request_refusal(request.user, recipient)
    form = RequestForm(posted(request))
    if refusal is None and request.method == "POST" and form.is_valid():
        made = submit(
            form,
            lambda: conversations.request_conversation(
                starter=request.user, recipient=recipient, note=form.cleaned_data["note"]
            ),
        )
        if made is not None:
            messages.success(
                request,
                f"Your request is on its way. {recipient.handle} can accept it; until then "
                "it waits here. Requests nobody answers lapse after 14 days.",
            )
            if made.crisis_categories:
                # The note's words suggest risk: support for the author at once.
                return redirect(reverse("crisis_help"))
            return redirect(made.get_absolute_url())
    return render(
        request,
        "forum/conversation_new.html",
        {"recipient": recipient, "form": form, "refusal": refusal},
        # The form says why a request cannot be sent; posting one anyway is refused.
        status=403 if refusal is not None and request.method == "POST" else 200,
    )


@login_required
@require_POST
def conversation_accept(request, pk: int):
    conversation, _done = _answer(
        request, pk, conversations.accept, "You accepted. You can talk with {handle} now."
    )
    return redirect(conversation.get_absolute_url())


@login_required
@require_POST
def conversation_ignore(request, pk: int):
    conversation, done = _answer(
        request,
        pk,
        conversations.ignore,
        "You set the request aside. {handle} is not told; it lapses after 14 days, and "
        "you can still accept it until then.",
    )
    return redirect("messages" if done else conversation.get_absolute_url())


@login_required
@require_POST
def conversation_block(request, pk: int):
    conversation, done = _answer(
        request,
        pk,
        conversations.block_from,
        "You blocked {handle} and the conversation is closed. They are not told.",
    )
    return redirect("messages" if done else conversation.get_absolute_url())


@login_required
@require_POST
def conversation_close(request, pk: int):
    conversation, _done = _answer(
        request,
        pk,
        conversations.close,
        "The conversation is closed. Its history stays here for both of you.",
    )
    return redirect(conversation.get_absolute_url())


@login_required
def conversation_report(request, pk: int):
    """Report the other member to the moderators; a request's note goes with the report
    (it is what was sent). Reports of messages are made on the message itself, in the
    chat: moderators then see that message alone, never the conversation."""
    conversation = conversations.get_conversation_for(request.user, pk)
    partner = conversation.other(request.user)
    form = ReportForm(posted(request), initial={"reason": FlagReason.HARASSMENT})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        details = data["details"]
        if conversation.note_source and conversation.starter_id == partner.pk:
            quoted = f"Their message request: “{conversation.note_source}”"
            details = f"{details}\n\n{quoted}" if details else quoted
            details = details[: publishing.REQUEST_NOTE_MAX]
        try:
            made = submit(
                form,
                lambda: actions.flag(
                    flagger=request.user, obj=partner, reason=data["reason"], details=details
                ),
            )
        except PermissionDenied as refusal:
            form.add_error(None, str(refusal))
            made = None
        if made is not None:
            if data["block"]:
                conversations.block_from(user=request.user, conversation=conversation)
            messages.success(request, REPORT_THANKS.format(handle=partner.handle))
            if data["block"]:
                return redirect("messages")
            return redirect(conversation.get_absolute_url())
    return render(
        request,
        "forum/conversation_report.html",
        {"conversation": conversation, "partner": partner, "form": form},
    )


@login_required
@require_POST
def message_settings(request):
    """The settings page's "Accept message requests" switch."""
    accepts = request.POST.get("accepts_dm_requests") == "on"
    conversations.set_accepts_requests(user=request.user, accepts=accepts)
    messages.success(
        request,
        "Members can send you message requests."
        if accepts
        else "Message requests are off: nobody can send you a new one. Conversations you "
        "already have carry on.",
    )
    return redirect(reverse("settings") + "#message-settings")


def profile_message_context(viewer, member) -> dict:
    """The profile's "Message" button: shown only when a request may be sent, a link when
    a conversation is open, otherwise the viewer's own reason (trust, no shared group). A
    refusal that would reveal the member's choices (requests off, a block) shows nothing."""
    if not viewer.is_authenticated or viewer.pk == member.pk:
        return {}
    existing = conversations.open_between(viewer, member)
    if existing is not None and not existing.is_expired():
        return {"open_conversation": existing}
    refusal = permissions.conversation_request_refusal(viewer, member)
    if refusal is None:
        return {"can_message": True}
    return {"message_note": "" if refusal == permissions.DM_REFUSAL else refusal}
