"""Threads and their reply trees."""

from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import get_script_prefix, get_urlconf
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from moderation import permissions
from moderation.ratelimit import RateLimited

from .. import (
    content_warnings,
    engagement,
    fragments,
    frames,
    page_cache,
    publishing,
    selectors,
    standing,
)
from ..backends import read_with_member, standing_is_kept
from ..cache import read_ahead
from ..csrf import masked_token
from ..forms import EditPostForm, ReplyForm, ThreadForm
from ..models import HeldPost, Post, Thread
from ..models.threads import PATH_STEP
from ..quiet_hours import has_quiet_hours, valid_timezone
from ._util import page_number, posted, reader_cache_keys, submit
from .slow_mode import SLOW_MODE_CHOICES

# The session remembers, for one page view, that the author of new words that suggest
# risk (moderation.crisis) should see crisis resources on the thread they land on.
SUPPORT_SESSION_KEY = "kinship_crisis_support"
SUPPORT_MESSAGE = (
    "Your words are posted. Some of what you wrote sounds really hard. You don't have to "
    "carry it alone: if you'd like to talk to someone now, support is listed below, any time."
)


def _offer_support(request, published, thread) -> None:
    """After a write: if publishing found crisis words, the next view of the thread shows
    the author crisis resources. Nothing was held or hidden; this is only an offer."""
    if getattr(published, "crisis_categories", None):
        request.session[SUPPORT_SESSION_KEY] = thread.pk
        messages.info(request, SUPPORT_MESSAGE)


def _tell_if_held(request, published) -> None:
    """A watched phrase held the words: say so honestly, and when they will appear."""
    if getattr(published, "held_for_review", False):
        messages.info(request, publishing.HOLD_NOTICE)


def _support_resources(request, place: int | str) -> list | None:
    """The crisis resources to show once on this page (a thread's pk, or HELD_PAGE), or None."""
    if request.session.get(SUPPORT_SESSION_KEY) != place:
        return None
    del request.session[SUPPORT_SESSION_KEY]
    return selectors.crisis_resources()


@login_required
def thread_new(request, slug: str):
    group = selectors.get_group_for(request.user, slug)
    permissions.check_can_post_in_group(request.user, group)
    form = ThreadForm(posted(request), quiet_hours_set=has_quiet_hours(request.user))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        hold = data[publishing.HOLD_FIELD]
        write = publishing.hold_thread if hold else publishing.publish_thread
        written = submit(
            form,
            lambda: write(
                author=request.user,
                group=group,
                title=data["title"],
                body=data["body"],
                content_warning=data["content_warning"],
                cw_categories=data["cw_categories"],
                post_anyway=data.get(publishing.QUIET_HOURS_FIELD, False),
            ),
        )
        if written is not None and hold:
            _tell_held(request, written, place=HELD_PAGE)
            return redirect("held_posts")
        if written is not None:
            _offer_support(request, written, written)
            _tell_if_held(request, written)
            return redirect(written.get_absolute_url())
    return render(request, "forum/thread_new.html", {"group": group, "form": form})


_reply_forms: dict[tuple[bool, str], str] = {}


def _blank_reply_form(quiet_hours_set: bool) -> str:
    """The thread page's blank reply form. It reads one of a few ways (the quiet-hours
    override or not, the hold's length), so each is built once per process: building the
    form cost more than rendering it from fragments.blank_form."""
    key = (quiet_hours_set, publishing.hold_duration())
    html = _reply_forms.get(key)
    if html is None:
        html = _reply_forms[key] = fragments.blank_form(ReplyForm(quiet_hours_set=quiet_hours_set))
    return html


def _viewer_facts(user, thread) -> dict:
    """What the viewer may do on the thread's page: part of its context and of its key."""
    return {
        "can_reply": permissions.can_reply(user, thread),
        "can_post": permissions.can_post_in_group(user, thread.group),
        "can_lead": permissions.can_lead_group(user, thread.group),
        "can_hide": permissions.can_moderate(user, "hide_content", thread.group),
        "can_slow_mode": permissions.can_moderate(user, "slow_mode_place", thread.group),
        "may_flag_thread": permissions.can_flag(user, thread),
    }


def _thread_context(request, thread, facts: dict, *, page: int, root: Post | None = None) -> dict:
    user = request.user
    # First: releasing the viewer's due held posts may add replies to this page, under
    # versions newer than those the thread was read with.
    held = []
    if publishing.may_have_held_posts(user):
        held = publishing.held_posts_of(author=user)
        thread.page_versions = page_cache.versions(thread.pk)
    opening, window = selectors.thread_page(thread, page=page, root=root)
    context = {
        **facts,
        "held_replies": [h for h in held if h.thread_id == thread.pk],
        "member_tz": member_timezone(user),
        "thread": thread,
        "group": thread.group,
        "opening": opening,
        "root": root,
        "window": window,
        # Trusted members approve held posts (moderation.trust); asked only if one shows.
        "may_approve": SimpleLazyObject(lambda: permissions.is_trusted(user, thread.group)),
        "slow_mode_choices": SLOW_MODE_CHOICES,
        "follows": getattr(thread, "viewer_follows", False),
        "reply_form": _blank_reply_form(has_quiet_hours(user)),
        "support_resources": _support_resources(request, thread.pk),
        # Holes, filled for each page (fragments.Body).
        "csrf_token": fragments.CSRF_HOLE,
    }
    fragments.render_posts(request, [root, opening, *window.items], context)
    # Joined here, not in a template loop: each post is already rendered (and safe).
    context["replies"] = mark_safe("\n".join(post.rendered for post in window.items))  # noqa: S308
    return context


def _body(request, thread, facts: dict, *, page: int, root: Post | None = None):
    context = _thread_context(request, thread, facts, page=page, root=root)
    return fragments.Body.of(render_to_string("forum/thread_body.html", context, request))


def _member_body_key(request, thread, facts: dict, page: int) -> str | None:
    """The key a member's page body is kept under, or None where it must be rendered for
    them alone: a visitor, held replies or crisis resources to show (both read afresh),
    or a cache that is not answering. Everything the body shows of its reader is here:
    what they may do, follow, mute, support and block, their content-warning choices,
    their quiet hours (the reply form), and, from the page's rows, whether they wrote any
    of its posts and, when a post waits for review, whether they may approve it."""
    user = request.user
    if (
        request.method != "GET"
        or not user.is_authenticated
        or request.session.get(SUPPORT_SESSION_KEY) == thread.pk
        or publishing.may_have_held_posts(user)
        or thread.page_versions is None
    ):
        return None
    summary = selectors.page_summary(thread, page=page)
    viewer = thread.viewer
    return fragments.body_key(
        thread,
        page,
        (
            tuple(facts.items()),
            viewer.follows,
            viewer.muted,
            tuple(sorted(viewer.supports)),
            tuple(sorted(viewer.blocked)),
            content_warnings.viewer_choices(user),
            has_quiet_hours(user),
            publishing.hold_duration(),
            user.pk if user.pk in summary.authors else None,
            permissions.is_trusted(user, thread.group) if summary.pending_review else None,
        ),
    )


def _thread_response(request, title: str, body: fragments.Body) -> HttpResponse:
    return _respond(request, _framed(request, title, body), title, body)


def _framed(request, title: str, body: fragments.Body) -> fragments.Body | None:
    """The whole page, its holes unfilled; None for a reader with messages waiting."""
    return frames.page(request, "forum/thread.html", title=title, body=body)


def _respond(request, framed, title: str, body: fragments.Body) -> HttpResponse:
    return _filled(request, framed) if framed is not None else _in_full(request, title, body)


def _in_full(request, title: str, body: fragments.Body) -> HttpResponse:
    """The page rendered through base.html: for a reader with messages waiting."""
    token = _token_for(request, body)
    context = {"title": title, "body": mark_safe(body.fill(token).decode())}  # noqa: S308
    if token is not None:
        context["csrf_token"] = token
    return render(request, "forum/thread.html", context)


def _token_for(request, page: fragments.Body) -> str | None:
    # One masked token for the body's forms and the navigation's (base.html).
    return masked_token(request) if request.user.is_authenticated or page.has_forms else None


def _filled(request, page: fragments.Body) -> HttpResponse:
    return HttpResponse(page.fill(_token_for(request, page)))


def thread_detail(request, slug: str, thread_id: int):
    # A member's page in one round trip to Redis (the session and the thread's versions)
    # and one to the database (the member and their part of the thread).
    with (
        read_ahead([*page_cache.version_keys(thread_id), *reader_cache_keys(request)]),
        read_with_member(selectors.viewer_with_member(thread_id)),
    ):
        return _thread_detail(request, slug, thread_id)


def _read_page_key(request, slug: str, thread_id: int, page: int, versions) -> tuple | None:
    """Where page_cache.member_pages keeps this page, framed; None where it must be worked out:
    not a GET by a member whose standing is kept (backends), their version or the
    thread's ``versions`` not read, or what the body key leaves out (crisis resources to
    show, held replies: _member_body_key)."""
    user = request.user
    if request.method != "GET" or not user.is_authenticated or not standing_is_kept(user):
        return None
    _, version = standing.read_ahead(user.pk)
    if version is None or versions is None:
        return None
    if request.session.get(SUPPORT_SESSION_KEY) == thread_id:
        return None
    return (
        user.pk,
        version,
        versions,
        slug,
        thread_id,
        page,
        publishing.hold_duration(),
        get_script_prefix(),  # what the frame's links read (forum.frames)
        get_urlconf(),
    )


def _thread_detail(request, slug: str, thread_id: int):
    page = page_number(request)
    shared = page_cache.visitor_page(request, slug=slug, thread_id=thread_id, page=page)
    if shared is not None and shared.content is not None:
        return HttpResponse(shared.content)
    # A member's page reads the thread's versions once (page_cache.versions).
    versions = page_cache.versions(thread_id) if request.user.is_authenticated else None
    read_as = _read_page_key(request, slug, thread_id, page, versions)
    kept = page_cache.member_pages.get(read_as) if read_as is not None else None
    if kept is not None and not frames.messages_waiting(request):
        return _filled(request, kept)
    thread = selectors.thread_to_read(
        request.user, slug=slug, thread_id=thread_id, versions=versions
    )
    facts = _viewer_facts(request.user, thread)
    key = _member_body_key(request, thread, facts, page)
    body = fragments.kept_body(key) if key else None
    if body is None:
        body = _body(request, thread, facts, page=page)
        if key:
            fragments.keep_body(key, body)
    framed = _framed(request, thread.title, body)
    # Whether they may approve a post waiting for review follows their trust, which time
    # changes with no write: such a page is worked out each time.
    if (
        framed is not None
        and key
        and read_as is not None
        and not selectors.page_summary(thread, page=page).pending_review
    ):
        page_cache.member_pages.set(read_as, framed)
    response = _respond(request, framed, thread.title, body)
    if shared is not None:
        shared.store(response)
    return response


def subthread(request, slug: str, thread_id: int, post_id: int):
    """ "Continue this thread": the tree re-rooted at a deep post."""
    thread = selectors.thread_to_read(request.user, slug=slug, thread_id=thread_id)
    root = selectors.subthread_root(thread, post_id)
    facts = _viewer_facts(request.user, thread)
    body = _body(request, thread, facts, page=page_number(request), root=root)
    return _thread_response(request, thread.title, body)


@login_required
def reply(request, slug: str, thread_id: int):
    """POST a reply. GET (or a refused POST) shows the reply form on its own page."""
    thread = selectors.get_thread_for(request.user, slug=slug, thread_id=thread_id)
    permissions.check_can_reply(request.user, thread)
    form = ReplyForm(
        posted(request),
        initial={"parent": request.GET.get("parent")},
        quiet_hours_set=has_quiet_hours(request.user),
    )
    parent = None
    parent_id = request.POST.get("parent") or request.GET.get("parent")
    if parent_id:
        try:
            parent = Post.objects.select_related("author").get(pk=int(parent_id), thread=thread)
        except (ValueError, Post.DoesNotExist):
            raise Http404("The post you are replying to is not in this thread.") from None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        hold = data[publishing.HOLD_FIELD]
        write = publishing.hold_reply if hold else publishing.publish_reply
        written = submit(
            form,
            lambda: write(
                author=request.user,
                thread=thread,
                parent=parent,
                body=data["body"],
                content_warning=data["content_warning"],
                cw_categories=data["cw_categories"],
                post_anyway=data.get(publishing.QUIET_HOURS_FIELD, False),
            ),
        )
        if written is not None and hold:
            _tell_held(request, written, place=thread.pk)
            return redirect(f"{thread.get_absolute_url()}#held-{written.pk}")
        if written is not None:
            _offer_support(request, written, thread)
            _tell_if_held(request, written)
            return redirect(_post_url(thread, written))
    return render(
        request,
        "forum/reply.html",
        {"thread": thread, "group": thread.group, "form": form, "parent": parent},
    )


def _post_url(thread, post: Post) -> str:
    """Where a post is shown: its own subtree page when it is deeper than the thread page."""
    if post.depth > selectors.VISIBLE_DEPTH:
        ancestor_path = post.path[: selectors.VISIBLE_DEPTH * PATH_STEP]
        ancestor_id = int(ancestor_path[-PATH_STEP:])
        return f"{thread.get_absolute_url()}p/{ancestor_id}/#post-{post.pk}"
    return f"{thread.get_absolute_url()}#post-{post.pk}"


@login_required
def post_edit(request, post_id: int):
    post = selectors.get_post_for(request.user, post_id)
    permissions.check_can_edit_post(request.user, post)
    thread = post.thread
    initial = {
        "title": thread.title,
        "body": post.source,
        "content_warning": post.content_warning,
        "cw_categories": post.cw_categories,
    }
    form = EditPostForm(posted(request), initial=initial, is_opening=post.is_opening)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        saved = submit(
            form,
            lambda: publishing.edit_post(
                editor=request.user,
                post=post,
                body=data["body"],
                title=data.get("title"),
                content_warning=data["content_warning"],
                cw_categories=data["cw_categories"],
            ),
        )
        if saved is not None:
            messages.success(request, "Your changes are saved.")
            _offer_support(request, saved, thread)
            _tell_if_held(request, saved)
            return redirect(_post_url(thread, saved))
    return render(request, "forum/post_edit.html", {"post": post, "thread": thread, "form": form})


@login_required
def post_remove(request, post_id: int):
    post = selectors.get_post_for(request.user, post_id)
    permissions.check_can_remove_own_post(request.user, post)
    if request.method == "POST":
        publishing.remove_own_post(actor=request.user, post=post)
        messages.success(request, "Your post is removed. Its words and earlier versions are gone.")
        if not permissions.can_view_group(request.user, post.thread.group):
            return redirect("my_groups")
        return redirect(_post_url(post.thread, post))
    return render(request, "forum/post_remove.html", {"post": post, "thread": post.thread})


@login_required
def post_history(request, post_id: int):
    post = selectors.get_post_for(request.user, post_id)
    permissions.check_can_view_history(request.user, post)
    return render(
        request,
        "forum/post_history.html",
        {"post": post, "thread": post.thread, "revisions": post.revisions.all()},
    )


@login_required
@require_POST
def post_support(request, post_id: int):
    post = selectors.get_post_for(request.user, post_id)
    engagement.toggle_support(user=request.user, post=post)
    return redirect(_post_url(post.thread, post))


@login_required
@require_POST
def thread_follow(request, slug: str, thread_id: int):
    thread = selectors.get_thread_for(request.user, slug=slug, thread_id=thread_id)
    follow = request.POST.get("follow") == "1"
    engagement.set_subscription(user=request.user, thread=thread, follow=follow)
    messages.success(
        request,
        "You follow this thread now." if follow else "You no longer follow this thread.",
    )
    return redirect(thread.get_absolute_url())


# --- held posts: "hold my post for an hour before it goes out" (publishing.hold_*) -----------

HELD_PAGE = "held"  # SUPPORT_SESSION_KEY's value for the held-posts page
HELD_SUPPORT_MESSAGE = (
    "Your words will wait, as you asked. Some of what you wrote sounds really hard. You don't "
    "have to carry it alone: if you'd like to talk to someone now, support is listed below."
)
HELD_GONE = "That post has already gone out, or was discarded."


def member_timezone(user) -> str:
    """The zone a member's times show in: the one they gave with their quiet hours, else
    UTC, as forum.quiet_hours reads it."""
    name = getattr(user, "quiet_timezone", "")
    return name if valid_timezone(name) else "UTC"


def _tell_held(request, held: HeldPost, *, place: int | str) -> None:
    what = "thread" if held.kind == HeldPost.Kind.THREAD else "reply"
    if held.release_at <= timezone.now():  # an edit after its time: the next page sends it
        messages.success(request, f"Your {what} is saved and goes out now.")
    else:
        when = held.release_at.astimezone(ZoneInfo(member_timezone(request.user)))
        messages.success(
            request,
            f"Your {what} goes out at {when:%H:%M}. Only you can see it until then; you can "
            "send it sooner, change it or discard it.",
        )
    if held.crisis_categories:
        request.session[SUPPORT_SESSION_KEY] = place
        messages.info(request, HELD_SUPPORT_MESSAGE)


def _own_held(request, held_id: int) -> HeldPost | None:
    return (
        HeldPost.objects.select_related("group", "thread__group")
        .filter(pk=held_id, author=request.user)
        .first()
    )


def _back_from_held(request, held: HeldPost):
    """Where Send now / Discard return: the thread page they were on, else the list."""
    if request.POST.get("next") == "thread" and held.thread is not None:
        return redirect(held.thread.get_absolute_url())
    return redirect("held_posts")


@login_required
def held_posts(request):
    """The member's held posts with their times, and Send now · Edit · Discard."""
    context = {
        "held_posts": publishing.held_posts_of(author=request.user),
        "member_tz": member_timezone(request.user),
        "support_resources": _support_resources(request, HELD_PAGE),
    }
    return render(request, "forum/held_posts.html", context)


@login_required
@require_POST
def held_send(request, held_id: int):
    held = _own_held(request, held_id)
    if held is None:
        messages.info(request, HELD_GONE)
        return redirect("held_posts")
    try:
        published = publishing.send_held_post(author=request.user, held=held)
    except ValidationError as refused:
        messages.error(
            request,
            f"It could not go out: {' '.join(refused.messages)} Your words are kept here.",
        )
        return redirect("held_posts")
    except RateLimited as wait:
        messages.error(request, str(wait))
        return _back_from_held(request, held)
    if published is None:
        messages.info(request, HELD_GONE)
        return redirect("held_posts")
    thread = published if isinstance(published, Thread) else published.thread
    messages.success(request, "It is posted.")
    _offer_support(request, published, thread)
    _tell_if_held(request, published)
    if isinstance(published, Thread):
        return redirect(thread.get_absolute_url())
    return redirect(_post_url(thread, published))


@login_required
@require_POST
def held_discard(request, held_id: int):
    held = _own_held(request, held_id)
    if held is None:
        messages.info(request, HELD_GONE)
        return redirect("held_posts")
    publishing.discard_held_post(author=request.user, held=held)
    messages.success(request, "Discarded. Those words were never posted.")
    return _back_from_held(request, held)


@login_required
def held_edit(request, held_id: int):
    held = _own_held(request, held_id)
    if held is None:
        messages.info(request, HELD_GONE)
        return redirect("held_posts")
    is_thread = held.kind == HeldPost.Kind.THREAD
    initial = {
        "title": held.title,
        "body": held.body,
        "content_warning": held.content_warning,
        "cw_categories": held.cw_categories,
    }
    form = EditPostForm(posted(request), initial=initial, is_opening=is_thread)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        saved = submit(
            form,
            lambda: publishing.edit_held_post(
                author=request.user,
                held=held,
                body=data["body"],
                title=data.get("title"),
                content_warning=data["content_warning"],
                cw_categories=data["cw_categories"],
            ),
        )
        if saved is not None:
            place = HELD_PAGE if is_thread else held.thread_id
            _tell_held(request, saved, place=place)
            if is_thread or held.thread is None:
                return redirect("held_posts")
            return redirect(f"{held.thread.get_absolute_url()}#held-{held.pk}")
    return render(request, "forum/held_edit.html", {"held": held, "form": form})
