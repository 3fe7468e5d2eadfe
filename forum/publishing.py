"""THE write path for every piece of member-written text.

Each function runs the same steps, in this order:

1. access: check permission (404 where the member may not know the target exists);
2. rate limit;
3. validate: normalise, reject NUL and control characters, enforce lengths;
4. render and sanitise once (forum.sanitize), keeping source and safe HTML;
5. policy verdict (moderation.policy);
6. persist inside one transaction;
7. anything that leaves the process happens after commit.

Errors reach callers as exceptions they can show: ``ValidationError`` with a
field -> message dict, ``moderation.ratelimit.RateLimited``, ``Http404`` and
``PermissionDenied``. A rejected submission changes nothing that was saved.

Crisis words (moderation.crisis) never stop anything: the thread, post or chat message
these functions return carries ``crisis_categories``, a frozenset naming what its new
text touched ("suicide", "self-harm", "overdose"; empty when nothing), so the view or
consumer can show its author crisis resources at once; and after commit the
``crisis_words`` signal asks moderation.actions for an urgent queue item.
"""

import logging
import math
import re
import unicodedata
from dataclasses import replace
from datetime import date, timedelta

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.db.models.functions import Lower
from django.dispatch import Signal
from django.utils import timezone
from django.utils.html import escape
from django.utils.text import slugify

from moderation import context_notes, crisis, permissions, policy, ratelimit, trust
from moderation.models import (
    DOMAIN_RULES_VERSION,
    FLAG_WEIGHTS,
    WATCHED_PHRASES_VERSION,
    DomainRule,
    Flag,
    FlagReason,
    NoteAttachment,
    QueueItem,
    Sanction,
    WatchedPhrase,
)

from . import content_warnings, engagement, memberships, quiet_hours, realtime, sanitize
from .models import (
    ChatMessage,
    ChatRoom,
    Membership,
    Post,
    PostRevision,
    SupportGroup,
    Thread,
    User,
)
from .models.threads import MAX_TREE_DEPTH, path_segment

TITLE_MAX = 200
POST_MAX = 20_000
CONTENT_WARNING_MAX = 100
BIO_MAX = 1_000
GROUP_NAME_MAX = 80
GROUP_TEXT_MAX = 10_000
MENTIONS_MAX = 10
REMOVED_TITLE = "[removed by author]"
# The error field, and the override's name in forms and chat frames, for quiet hours.
QUIET_HOURS_FIELD = "post_anyway"

# C0 and C1 controls other than tab and newline, plus the bidirectional
# overrides that can make text read differently from what it says.
# Lone UTF-16 surrogates (JSON can carry them) cannot be encoded, stored or shown.
_SURROGATES = re.compile("[\ud800-\udfff]")
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _is_blank(text: str) -> bool:
    """Nothing a reader could see: whitespace and invisible format characters only."""
    return all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in text)


def clean_text(
    value: str | None,
    *,
    field: str,
    label: str,
    max_length: int,
    required: bool = True,
    multiline: bool = True,
) -> str:
    """Normalise one piece of member text or raise ValidationError({field: ...})."""
    text = unicodedata.normalize("NFC", (value or "").replace("\r\n", "\n").replace("\r", "\n"))
    if "\x00" in text:
        raise ValidationError({field: f"{label} contains a NUL character. Please remove it."})
    if _SURROGATES.search(text):
        raise ValidationError({field: f"{label} contains characters that are not valid text."})
    if _FORBIDDEN_CHARS.search(text):
        raise ValidationError(
            {field: f"{label} contains invisible control characters. Please remove them."}
        )
    text = text.strip() if multiline else " ".join(text.split())
    if required and _is_blank(text):
        raise ValidationError({field: f"{label} cannot be empty."})
    if len(text) > max_length:
        raise ValidationError(
            {field: f"{label} is {len(text):,} characters; the limit is {max_length:,}."}
        )
    return text


MODERATION_TEXT_MAX = 2_000


def prepare_text(
    value: str | None,
    *,
    field: str,
    label: str,
    max_length: int = MODERATION_TEXT_MAX,
    required: bool = True,
    kind: str = "moderation",
) -> tuple[str, str]:
    """Steps 3 to 5 for text that moderation code stores (flag details, reasons, notes,
    appeals): validate, render and sanitise, policy. Returns (source, safe HTML)."""
    source = clean_text(value, field=field, label=label, max_length=max_length, required=required)
    if not source:
        return "", ""
    html = sanitize.render_markdown(source)
    _check_verdict(policy.evaluate(policy.Submission(kind, source)), default_field=field)
    return source, html


def _clean_title(value: str) -> str:
    return clean_text(
        value, field="title", label="The title", max_length=TITLE_MAX, multiline=False
    )


def _clean_content_warning(value: str) -> str:
    return clean_text(
        value,
        field="content_warning",
        label="The content warning",
        max_length=CONTENT_WARNING_MAX,
        required=False,
        multiline=False,
    )


def _check_verdict(verdict: policy.Verdict, *, default_field: str) -> None:
    if verdict.rejected:
        raise ValidationError({verdict.field or default_field: verdict.reason})


logger = logging.getLogger(__name__)

# Sent after commit when stored member text has crisis words, with ``obj`` (the thread,
# post or chat message) and ``categories``. moderation.actions answers with an urgent
# queue item; a signal because that module builds on this one (no import circle).
crisis_words = Signal()


def _note_crisis(obj, *texts: str, alert: bool = True) -> None:
    """Mark ``obj.crisis_categories`` for the caller and, after commit, alert moderators.
    Never raises into the write: the member's words are already saved."""
    categories = crisis.detect("\n".join(texts))
    obj.crisis_categories = categories
    if categories and alert:
        transaction.on_commit(lambda: _send_crisis_words(obj, categories))


def _send_crisis_words(obj, categories: frozenset[str]) -> None:
    for receiver, result in crisis_words.send_robust(
        sender=type(obj), obj=obj, categories=categories
    ):
        if isinstance(result, Exception):
            logger.error("crisis alert failed in %r", receiver, exc_info=result)


# --- watched phrases (moderation.policy) ------------------------------------------------------

HOLD_NOTICE = "A moderator will look at this soon, then it will appear for everyone."


def _watch_label(phrase: WatchedPhrase) -> str:
    where = "site-wide" if phrase.group_id is None else "this group"
    return (
        f"Watched phrase “{phrase.pattern}” ({phrase.get_match_display().lower()}, {where}): "
        f"{phrase.get_action_display().lower()}"
    )


def _site_and_group(group_id: int | None) -> Q:
    """Rows that apply site-wide, plus (given one) a group's own."""
    site = Q(group__isnull=True)
    return site if group_id is None else site | Q(group_id=group_id)


def watched_rules(group: SupportGroup | None) -> policy.CompiledRules:
    """The site's watched phrases plus ``group``'s, compiled once per change in each worker
    (the version token lives in the shared cache, so a change anywhere reaches every worker)."""
    key = group.pk if group is not None else None

    def compile_them() -> policy.CompiledRules:
        scope = _site_and_group(key)
        # The group's own entries first: for the same phrase, its message speaks.
        phrases = WatchedPhrase.objects.filter(scope).order_by(
            F("group_id").asc(nulls_last=True), "pk"
        )
        return policy.compile_rules(
            policy.WatchEntry(p.pattern, p.match, p.action, p.message, _watch_label(p))
            for p in phrases
        )

    return WATCHED_PHRASES_VERSION.cached(key, compile_them)


def _screen(
    kind: str,
    text: str,
    *,
    group: SupportGroup | None,
    field: str = "body",
    recent: tuple[str, ...] = (),
    title: str = "",
) -> policy.Verdict:
    """Step 5: the policy verdict with the watched phrases in force; a block or a duplicate
    raises ValidationError on its field, anything else is returned for the caller to apply."""
    verdict = policy.evaluate(policy.Submission(kind, text, recent, title), watched_rules(group))
    if verdict.rejected:  # policy names "body" or "title"; the text's own field is ``field``
        name = field if verdict.field in ("", "body") else verdict.field
        raise ValidationError({name: verdict.reason})
    return verdict


def _trust_level(author: User, group: SupportGroup | None) -> trust.Level | None:
    """The author's trust level where the text goes (None when trust rules are off)."""
    if not settings.KINSHIP_TRUST_RULES:
        return None
    return permissions.trust_level(author, group)


def _domain_rules(group: SupportGroup | None) -> trust.DomainRules:
    """The site's link rules plus ``group``'s (a group's allow wins over a site block),
    read once per change in each worker."""
    key = group.pk if group is not None else None

    def read_them() -> trust.DomainRules:
        scope = _site_and_group(key)
        blocked, allowed = set(), set()
        for domain, kind in DomainRule.objects.filter(scope).values_list("domain", "kind"):
            (allowed if kind == DomainRule.Kind.ALLOW else blocked).add(domain)
        return trust.DomainRules(blocked=frozenset(blocked), allowed=frozenset(allowed))

    return DOMAIN_RULES_VERSION.cached(key, read_them)


def _screen_trust(
    verdict: policy.Verdict,
    *,
    author: User,
    group: SupportGroup | None,
    level: trust.Level | None,
    text: str,
    html: str,
    first_post: bool = True,
    field: str = "body",
) -> policy.Verdict:
    """Step 5, continued: link rules and what the author's trust allows (moderation.trust).
    A blocked domain or too many mentions raise ValidationError; a hold joins ``verdict``."""
    facts = trust.Facts(
        level=level if level is not None else trust.Level.TRUSTED,
        # Only a new member's count matters (their first posts wait for approval).
        published=(
            permissions.trust_standing(author, group).published if level == trust.Level.NEW else 0
        ),
        text=text,
        html=html,
        mentions=len(sanitize.linked_mentions(html)),
        first_post=first_post,
        domains=_domain_rules(group),
        trust_rules=level is not None,
    )
    limits = trust.Limits(
        link_level=settings.KINSHIP_TRUST_LINK_LEVEL,
        new_member_holds=settings.KINSHIP_NEW_MEMBER_HOLDS,
        mentions=settings.KINSHIP_TRUST_MENTIONS,
    )
    found = trust.assess(facts, limits)
    if found.rejected:
        raise ValidationError({field: found.reason})
    return trust.combine(verdict, found)


def _open_review_item(
    obj,
    *,
    group: SupportGroup | None,
    member: User,
    verdict: policy.Verdict,
    reason: str = FlagReason.OTHER,
) -> None:
    """Put held or flagged content in the queue with an automatic flag (no flagger; the
    details name the watched phrase, for moderators only). Inside the caller's transaction."""
    content_type = ContentType.objects.get_for_model(type(obj))
    lookup = {
        "content_type": content_type,
        "object_id": obj.pk,
        "state": QueueItem.State.OPEN,
        "kind": QueueItem.Kind.FLAGS,
    }
    item = QueueItem.objects.select_for_update().filter(**lookup).first()
    if item is None:
        try:
            with transaction.atomic():
                item = QueueItem.objects.create(**lookup, group=group, member=member)
        except IntegrityError:  # a member's flag opened it at the same moment
            item = QueueItem.objects.select_for_update().get(**lookup)
    details = verdict.rule or "A watched phrase"
    if verdict.held:
        details += " (held until a moderator looks)"
    flag = Flag.objects.create(
        flagger=None,
        content_type=content_type,
        object_id=obj.pk,
        item=item,
        reason=reason,
        details_source=details,
        details_html=f"<p>{escape(details)}</p>",
    )
    QueueItem.objects.filter(pk=item.pk).update(
        flag_count=F("flag_count") + 1,
        weight=F("weight") + FLAG_WEIGHTS[reason],
        last_flag_at=flag.created_at,
        hidden_pending_review=item.hidden_pending_review or verdict.held,
        held_by_policy=item.held_by_policy or verdict.held,
    )
    realtime.broadcast_queue_change(group.pk if group is not None else None)


# --- context notes (moderation.context_notes) ---------------------------------------------

# Sent after commit when the matcher attached notes, with ``obj`` (the post or chat message
# they are shown under) and ``note_scores`` [(note id, score)]: moderation.actions logs
# each attach (every attach is logged; a signal for the same reason as crisis_words).
context_notes_attached = Signal()


def _send_context_notes_attached(obj, note_scores: list[tuple[int, float]]) -> None:
    for receiver, result in context_notes_attached.send_robust(
        sender=type(obj), obj=obj, note_scores=note_scores
    ):
        if isinstance(result, Exception):
            logger.error("logging a context note failed in %r", receiver, exc_info=result)


def _hold_for_notes(verdict: policy.Verdict, notes) -> policy.Verdict:
    """A matched note that says "hold" holds the content, as a watched-phrase hold does."""
    holding = [note for note, _score in notes if note.hold_on_match]
    if not holding or verdict.held:
        return verdict
    label = verdict.rule or f"Context note “{holding[0].claim}”"
    return replace(verdict, outcome=policy.Outcome.HOLD, rule=label)


def _attach_context_notes(
    obj, notes, *, shown_on=None, group: SupportGroup | None, member: User
) -> None:
    """Attach matched notes under ``shown_on`` (default ``obj``) for every reader, and put
    ``obj`` in the queue with an automatic misinformation flag so a moderator confirms or
    detaches them. Inside the caller's transaction."""
    if not notes:
        return
    shown_on = shown_on if shown_on is not None else obj
    content_type = ContentType.objects.get_for_model(type(shown_on))
    NoteAttachment.objects.bulk_create(
        NoteAttachment(note_id=note.id, content_type=content_type, object_id=shown_on.pk,
                       score=score)
        for note, score in notes
    )  # fmt: skip
    note_scores = [(note.id, score) for note, score in notes]
    transaction.on_commit(lambda: _send_context_notes_attached(shown_on, note_scores))
    claims = "; ".join(f"“{note.claim}”" for note, _score in notes)
    rule = f"Context note attached automatically, to confirm or detach: {claims}"[:500]
    _open_review_item(
        obj,
        group=group,
        member=member,
        verdict=policy.Verdict(policy.Outcome.FLAG, rule=rule),
        reason=FlagReason.MISINFORMATION,
    )


def _hold_fields(verdict: policy.Verdict) -> dict:
    """Model fields that keep held content from everyone but its author and moderators."""
    if not verdict.held:
        return {}
    return {
        "hidden_at": timezone.now(),
        "hidden_pending_review": True,
        "hidden_reason": HOLD_NOTICE,
    }


def _recent_texts(author: User) -> tuple[str, ...]:
    since = timezone.now() - timedelta(seconds=settings.KINSHIP_DUPLICATE_WINDOW_SECONDS)
    return tuple(
        Post.objects.filter(author=author, created_at__gte=since)
        .order_by("-created_at")
        .values_list("source", flat=True)[:20]
    )


def _check_slow_mode(author: User, group: SupportGroup) -> None:
    """A member a moderator put in slow mode waits between posts and messages here."""
    sanction = permissions.sanction_in_force(author, Sanction.Kind.SLOW_MODE, group)
    if sanction is None:
        return
    times = [
        Post.objects.filter(author=author, thread__group=group).aggregate(t=Max("created_at"))["t"],
        ChatMessage.objects.filter(author=author, room__group=group).aggregate(t=Max("created_at"))[
            "t"
        ],
    ]
    last = max((t for t in times if t is not None), default=None)
    if last is None:
        return
    wait = sanction.slow_mode_seconds - (timezone.now() - last).total_seconds()
    if wait > 0:
        raise ratelimit.RateLimited(action="slow_mode", retry_after=math.ceil(wait))


def _check_place_slow_mode(author: User, place: Thread | ChatRoom) -> None:
    """A thread or room its moderators put in slow mode: each member waits between
    replies or messages there; the group's leaders and moderators are exempt."""
    if not place.slow_mode_seconds or permissions.can_moderate(
        author, "slow_mode_place", place.group
    ):
        return
    if isinstance(place, Thread):
        mine = Post.objects.filter(thread=place, author=author)
        action = "thread_slow_mode"
    else:
        mine = ChatMessage.objects.filter(room=place, author=author)
        action = "room_slow_mode"
    last = mine.aggregate(t=Max("created_at"))["t"]
    if last is None:
        return
    wait = place.slow_mode_seconds - (timezone.now() - last).total_seconds()
    if wait > 0:
        raise ratelimit.RateLimited(action=action, retry_after=math.ceil(wait))


def _check_quiet_hours(author: User, *, post_anyway: bool) -> None:
    """The member's own quiet hours: refused kindly, with the end time, unless they say
    "post anyway" for this one post (their rule, not ours; and never a wall at 2 a.m.)."""
    if post_anyway:
        return
    until = quiet_hours.quiet_until(
        timezone.now(), author.quiet_start, author.quiet_end, author.quiet_timezone
    )
    if until is not None:
        raise ValidationError(
            {
                QUIET_HOURS_FIELD: "These are your own quiet hours: you asked Kinship not to "
                f"post for you until {quiet_hours.describe_end(until)}. If you still want to, "
                "choose “I know, post anyway”."
            }
        )


def _render_with_mentions(source: str) -> tuple[str, list[User]]:
    """Render member Markdown; return the HTML and the members it mentions (at most
    MENTIONS_MAX, in order), counting only mentions that render as links."""
    wanted = sanitize.mentioned_handles(source)
    users: dict[str, User] = {}
    if wanted:
        found = User.objects.annotate(handle_lower=Lower("handle")).filter(
            handle_lower__in=wanted, is_active=True
        )
        users = {user.handle.lower(): user for user in found}
    html = sanitize.render_markdown(source, mentions=users.keys())
    mentioned = [users[handle] for handle in sanitize.linked_mentions(html) if handle in users]
    return html, mentioned[:MENTIONS_MAX]


def _insert_post(
    *,
    thread: Thread,
    author: User,
    parent: Post | None,
    source: str,
    html: str,
    cw: str,
    cw_categories: list[str] | None = None,
) -> Post:
    now = timezone.now()
    post = Post.objects.create(
        thread=thread,
        author=author,
        parent=parent,
        depth=0 if parent is None else parent.depth + 1,
        source=source,
        html=html,
        content_warning=cw,
        cw_categories=cw_categories or [],
        created_at=now,
        path="",
    )
    post.path = (parent.path if parent else "") + path_segment(post.pk)
    Post.objects.filter(pk=post.pk).update(path=post.path)
    return post


def publish_thread(
    *,
    author: User,
    group: SupportGroup,
    title: str,
    body: str,
    content_warning: str = "",
    post_anyway: bool = False,
    cw_categories: list[str] | None = None,
) -> Thread:
    """Start a thread in a group; the author follows it."""
    permissions.check_can_post_in_group(author, group)
    _check_quiet_hours(author, post_anyway=post_anyway)
    _check_slow_mode(author, group)
    level = _trust_level(author, group)
    ratelimit.hit("thread", key=str(author.pk), level=level)
    title = _clean_title(title)
    body = clean_text(body, field="body", label="Your post", max_length=POST_MAX)
    cw = _clean_content_warning(content_warning)
    categories = content_warnings.clean_categories(cw_categories)
    html, mentioned = _render_with_mentions(body)
    verdict = _screen("thread", body, group=group, recent=_recent_texts(author), title=title)
    title = verdict.title or title
    if verdict.text is not None:
        body = verdict.text
        html, mentioned = _render_with_mentions(body)
    verdict = _screen_trust(verdict, author=author, group=group, level=level, text=body, html=html)
    notes = context_notes.matching_notes(title, body)
    verdict = _hold_for_notes(verdict, notes)
    with transaction.atomic():
        now = timezone.now()
        thread = Thread.objects.create(
            group=group,
            author=author,
            title=title,
            content_warning=cw,
            created_at=now,
            last_activity_at=now,
            last_poster=author,
            **_hold_fields(verdict),
        )
        post = _insert_post(
            thread=thread,
            author=author,
            parent=None,
            source=body,
            html=html,
            cw="",
            cw_categories=categories,
        )
        if verdict.needs_review:
            _open_review_item(thread, group=group, member=author, verdict=verdict)
        _attach_context_notes(thread, notes, shown_on=post, group=group, member=author)
        engagement.subscribe(user=author, thread=thread)
        if not verdict.held:  # mentions of held words would leak them
            engagement.notify_mentions(post=post, mentioned=mentioned)
    thread.held_for_review = verdict.held
    _note_crisis(thread, title, body)
    return thread


def publish_reply(
    *,
    author: User,
    thread: Thread,
    body: str,
    parent: Post | None = None,
    content_warning: str = "",
    post_anyway: bool = False,
    cw_categories: list[str] | None = None,
) -> Post:
    """Reply to a thread's opening post or, nested, to any post in it."""
    permissions.check_can_reply(author, thread)
    _check_quiet_hours(author, post_anyway=post_anyway)
    if parent is None:
        parent = Post.objects.get(thread=thread, parent__isnull=True)
    elif parent.thread_id != thread.pk:
        raise ValidationError({"parent": "That post is not in this thread."})
    _check_slow_mode(author, thread.group)
    _check_place_slow_mode(author, thread)
    level = _trust_level(author, thread.group)
    ratelimit.hit("reply", key=str(author.pk), level=level)
    body = clean_text(body, field="body", label="Your reply", max_length=POST_MAX)
    cw = _clean_content_warning(content_warning)
    categories = content_warnings.clean_categories(cw_categories)
    html, mentioned = _render_with_mentions(body)
    verdict = _screen("reply", body, group=thread.group, recent=_recent_texts(author))
    if verdict.text is not None:
        body = verdict.text
        html, mentioned = _render_with_mentions(body)
    verdict = _screen_trust(
        verdict, author=author, group=thread.group, level=level, text=body, html=html
    )
    notes = context_notes.matching_notes(body)
    verdict = _hold_for_notes(verdict, notes)
    if parent.depth >= MAX_TREE_DEPTH:
        parent = parent.parent
    with transaction.atomic():
        post = _insert_post(
            thread=thread,
            author=author,
            parent=parent,
            source=body,
            html=html,
            cw=cw,
            cw_categories=categories,
        )
        if verdict.held:
            Post.objects.filter(pk=post.pk).update(**_hold_fields(verdict))
            post.refresh_from_db(fields=["hidden_at", "hidden_pending_review", "hidden_reason"])
        if verdict.needs_review:
            _open_review_item(post, group=thread.group, member=author, verdict=verdict)
        _attach_context_notes(post, notes, group=thread.group, member=author)
        Post.objects.filter(pk=parent.pk).update(reply_count=F("reply_count") + 1)
        Thread.objects.filter(pk=thread.pk).update(
            reply_count=F("reply_count") + 1,
            last_activity_at=post.created_at,
            last_poster=author,
        )
        engagement.subscribe(user=author, thread=thread)
        if not verdict.held:  # followers hear of it once a moderator lets it through
            engagement.notify_reply(post=post, parent=parent, mentioned=mentioned)
    post.held_for_review = verdict.held
    _note_crisis(post, body)
    return post


def edit_post(
    *,
    editor: User,
    post: Post,
    body: str,
    title: str | None = None,
    content_warning: str | None = None,
    cw_categories: list[str] | None = None,
) -> Post:
    """The author edits a post (and, for an opening post, the thread title).

    The previous version is kept as a PostRevision; readers see an "edited" marker.
    """
    permissions.check_can_edit_post(editor, post)
    ratelimit.hit("edit", key=str(editor.pk))
    body = clean_text(body, field="body", label="Your post", max_length=POST_MAX)
    thread = post.thread
    new_title = thread.title
    if title is not None and post.is_opening:
        new_title = _clean_title(title)
    cw = post.content_warning
    if content_warning is not None:
        cw = _clean_content_warning(content_warning)
    categories = post.cw_categories or []
    if cw_categories is not None:  # None keeps them; [] clears them
        categories = content_warnings.clean_categories(cw_categories)
    html, _mentions = _render_with_mentions(body)
    verdict = _screen("edit", body, group=thread.group, title=new_title if post.is_opening else "")
    if verdict.text is not None:
        body = verdict.text
        html, _mentions = _render_with_mentions(body)
    verdict = _screen_trust(
        verdict,
        author=editor,
        group=thread.group,
        level=_trust_level(editor, thread.group),
        text=body,
        html=html,
        first_post=False,
    )
    new_title = verdict.title or new_title
    post.held_for_review = False
    unchanged = cw == post.content_warning and categories == (post.cw_categories or [])
    if body == post.source and new_title == thread.title and unchanged:
        return post
    with transaction.atomic():
        PostRevision.objects.create(
            post=post,
            source=post.source,
            html=post.html,
            title=thread.title if post.is_opening else "",
            created_at=post.edited_at or post.created_at,
        )
        post.source, post.html, post.content_warning = body, html, cw
        post.cw_categories = categories
        post.edited_at = timezone.now()
        post.save(update_fields=["source", "html", "content_warning", "cw_categories", "edited_at"])
        if verdict.held and not post.is_hidden:
            for name, value in _hold_fields(verdict).items():
                setattr(post, name, value)
            post.save(update_fields=["hidden_at", "hidden_pending_review", "hidden_reason"])
            post.held_for_review = True
        if verdict.needs_review:
            _open_review_item(post, group=thread.group, member=post.author, verdict=verdict)
        if new_title != thread.title:
            thread.title = new_title
            thread.save(update_fields=["title"])
    _note_crisis(post, new_title if post.is_opening else "", body)
    return post


def remove_own_post(*, actor: User, post: Post) -> Post:
    """The author takes a post back: its words and history are erased, the tree keeps
    a "[removed by author]" node so replies to it still make sense."""
    permissions.check_can_remove_own_post(actor, post)
    with transaction.atomic():
        post.revisions.all().delete()
        post.reactions.all().delete()
        post.source = post.html = post.content_warning = ""
        post.support_count = 0
        post.removed_by_author_at = timezone.now()
        if post.is_opening:
            # The title is the author's words too.
            Thread.objects.filter(pk=post.thread_id).update(title=REMOVED_TITLE, content_warning="")
        post.save(
            update_fields=[
                "source",
                "html",
                "content_warning",
                "support_count",
                "removed_by_author_at",
            ]
        )
    return post


def update_profile(
    *,
    user: User,
    bio: str,
    recovery_date: date | None,
    recovery_date_visibility: str,
) -> User:
    ratelimit.hit("profile", key=str(user.pk))
    bio = clean_text(bio, field="bio", label="Your bio", max_length=BIO_MAX, required=False)
    today = timezone.localdate()
    if recovery_date is not None and not date(1900, 1, 1) <= recovery_date <= today:
        raise ValidationError({"recovery_date": "A recovery date is between 1900 and today."})
    if recovery_date_visibility not in User.Visibility.values:
        raise ValidationError({"recovery_date_visibility": "Choose who can see the date."})
    # Site phrases only: a bio shows everywhere. A bio cannot wait hidden, so a hold
    # publishes it and puts it in the queue, like a flag.
    verdict = _screen("bio", bio, group=None, field="bio")
    bio = verdict.text if verdict.text is not None else bio
    html = sanitize.render_markdown(bio)
    user.bio_source, user.bio_html = bio, html
    user.recovery_date = recovery_date
    user.recovery_date_visibility = recovery_date_visibility
    with transaction.atomic():
        user.save(
            update_fields=["bio_source", "bio_html", "recovery_date", "recovery_date_visibility"]
        )
        if verdict.needs_review:
            _open_review_item(user, group=None, member=user, verdict=verdict)
    return user


def save_group(
    *,
    actor: User,
    group: SupportGroup | None,
    name: str,
    slug: str,
    kind: str,
    description: str,
    guidelines: str,
    visibility: str,
    join_policy: str,
) -> SupportGroup:
    """Create a group (site moderators) or change its settings (its leaders)."""
    if group is None:
        permissions.check_can_create_group(actor)
        group = SupportGroup()
    else:
        permissions.check_can_lead_group(actor, group)
    name = clean_text(
        name, field="name", label="The name", max_length=GROUP_NAME_MAX, multiline=False
    )
    description = clean_text(
        description, field="description", label="The description", max_length=GROUP_TEXT_MAX
    )
    guidelines = clean_text(
        guidelines, field="guidelines", label="The guidelines", max_length=GROUP_TEXT_MAX
    )
    errors = {}
    if kind not in SupportGroup.Kind.values:
        errors["kind"] = "Choose a kind of group."
    if visibility not in SupportGroup.Visibility.values:
        errors["visibility"] = "Choose public or private."
    if join_policy not in SupportGroup.JoinPolicy.values:
        errors["join_policy"] = "Choose how people join."
    if not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", slug or "") or len(slug) > 60:
        errors["slug"] = "Use lower-case letters, digits and single hyphens (at most 60)."
    elif SupportGroup.objects.filter(slug=slug).exclude(pk=group.pk).exists():
        errors["slug"] = "Another group already uses this address."
    if errors:
        raise ValidationError(errors)
    for text in (description, guidelines):
        _check_verdict(
            policy.evaluate(policy.Submission("group", text)), default_field="description"
        )
    group.name, group.slug, group.kind = name, slug, kind
    group.description_source = description
    group.description_html = sanitize.render_markdown(description)
    group.guidelines_source = guidelines
    group.guidelines_html = sanitize.render_markdown(guidelines)
    group.visibility, group.join_policy = visibility, join_policy
    with transaction.atomic():
        creating = group.pk is None
        group.save()
        if creating:
            memberships.add_member(user=actor, group=group, role=Membership.Role.LEADER)
            ChatRoom.objects.create(group=group, name="General", slug="general", is_default=True)
    return group


CHAT_MAX = 2_000
ROOM_NAME_MAX = 60
CLIENT_ID_MAX = 64


def publish_chat_message(
    *, author: User, room: ChatRoom, body: str, client_id: str, post_anyway: bool = False
) -> tuple[ChatMessage, bool]:
    """Post a chat message; returns (message, created).

    A repeated ``client_id`` (a client resending after a reconnect) returns the
    message it first created, costing no rate-limit allowance.
    """
    permissions.check_can_write_room(author, room)
    if not client_id or len(client_id) > CLIENT_ID_MAX:
        raise ValidationError({"client_id": f"A client id is 1 to {CLIENT_ID_MAX} characters."})
    existing = ChatMessage.objects.filter(room=room, author=author, client_id=client_id).first()
    if existing is not None:
        # A resend: moderators heard the first time; the author may have missed the ack.
        _note_crisis(existing, existing.source, alert=False)
        return existing, False
    _check_quiet_hours(author, post_anyway=post_anyway)
    _check_slow_mode(author, room.group)
    _check_place_slow_mode(author, room)
    level = _trust_level(author, room.group)
    ratelimit.hit("chat", key=str(author.pk), level=level)
    body = clean_text(body, field="body", label="Your message", max_length=CHAT_MAX)
    html, _mentions = _render_with_mentions(body)
    verdict = _screen("chat", body, group=room.group)
    if verdict.text is not None:
        body = verdict.text
        html, _mentions = _render_with_mentions(body)
    verdict = _screen_trust(
        verdict, author=author, group=room.group, level=level, text=body, html=html
    )
    notes = context_notes.matching_notes(body)
    verdict = _hold_for_notes(verdict, notes)
    held = {}
    if verdict.held:  # stored, shown to everyone as "hidden while a moderator reviews it"
        held = {
            "removed_at": timezone.now(),
            "removed_by": ChatMessage.RemovedBy.REVIEW,
            "removal_reason": HOLD_NOTICE,
        }
    try:
        with transaction.atomic():
            seq = ChatRoom.take_seq(room.pk)
            message = ChatMessage.objects.create(
                room=room,
                author=author,
                client_id=client_id,
                source=body,
                html=html,
                seq=seq,
                version=seq,
                **held,
            )
            if verdict.needs_review:
                _open_review_item(message, group=room.group, member=author, verdict=verdict)
            _attach_context_notes(message, notes, group=room.group, member=author)
            realtime.broadcast_room_change(room=room, kind="message", message=message)
    except IntegrityError:
        # The same client id raced in on another socket: the first one won.
        existing = ChatMessage.objects.get(room=room, author=author, client_id=client_id)
        _note_crisis(existing, existing.source, alert=False)
        return existing, False
    _note_crisis(message, body)
    return message, True


def edit_chat_message(*, editor: User, message: ChatMessage, body: str) -> ChatMessage:
    if not permissions.can_edit_chat_message(editor, message):
        raise PermissionDenied("You can only edit your own messages, in rooms you can write in.")
    ratelimit.hit("edit", key=str(editor.pk))
    body = clean_text(body, field="body", label="Your message", max_length=CHAT_MAX)
    html, _mentions = _render_with_mentions(body)
    verdict = _screen("chat", body, group=message.room.group)
    if verdict.text is not None:
        body = verdict.text
        html, _mentions = _render_with_mentions(body)
    verdict = _screen_trust(
        verdict,
        author=editor,
        group=message.room.group,
        level=_trust_level(editor, message.room.group),
        text=body,
        html=html,
        first_post=False,
    )
    if body == message.source:
        return message
    with transaction.atomic():
        message.source, message.html = body, html
        message.edited_at = timezone.now()
        message.version = ChatRoom.take_seq(message.room_id)
        fields = ["source", "html", "edited_at", "version"]
        kind = "message_updated"
        if verdict.held and not message.is_removed:
            message.removed_at, message.removed_by = timezone.now(), ChatMessage.RemovedBy.REVIEW
            message.removal_reason = HOLD_NOTICE
            fields += ["removed_at", "removed_by", "removal_reason"]
            kind = "message_removed"
        message.save(update_fields=fields)
        if verdict.needs_review:
            _open_review_item(message, group=message.room.group, member=editor, verdict=verdict)
        realtime.broadcast_room_change(room=message.room, kind=kind, message=message)
    _note_crisis(message, body)
    return message


def withdraw_chat_message(*, author: User, message: ChatMessage) -> ChatMessage:
    """The author takes a message back: its text is erased and vanishes from every screen."""
    if message.author_id != author.pk or message.is_removed:
        raise PermissionDenied("You can only delete your own messages.")
    with transaction.atomic():
        message.source = message.html = ""
        message.removed_at = timezone.now()
        message.removed_by = ChatMessage.RemovedBy.AUTHOR
        message.version = ChatRoom.take_seq(message.room_id)
        message.save(update_fields=["source", "html", "removed_at", "removed_by", "version"])
        realtime.broadcast_room_change(room=message.room, kind="message_removed", message=message)
    return message


def save_room(
    *, actor: User, group: SupportGroup, room: ChatRoom | None, name: str, state: str
) -> ChatRoom:
    """Create a room in a group, or rename it and set it open, read-only or archived."""
    permissions.check_can_manage_rooms(actor, group)
    name = clean_text(
        name, field="name", label="The room name", max_length=ROOM_NAME_MAX, multiline=False
    )
    if state not in ChatRoom.State.values:
        raise ValidationError({"state": "Choose open, read-only or archived."})
    if room is None:
        slug = slugify(name)[:50].strip("-") or "room"
        # "new" is the address of the new-room form.
        taken = {"new"} | set(
            group.rooms.filter(slug__startswith=slug).values_list("slug", flat=True)
        )
        suffix = 2
        base = slug
        while slug in taken:
            slug, suffix = f"{base}-{suffix}", suffix + 1
        room = ChatRoom(group=group, slug=slug)
    elif room.group_id != group.pk:
        raise ValidationError({"__all__": "That room is not in this group."})
    room.name, room.state = name, state
    with transaction.atomic():
        room.save()
        realtime.broadcast_on_commit(
            realtime.room_group(room.pk),
            {"type": "chat.event", "frame": {"type": "room", **realtime.room_payload(room)}},
        )
    return room
