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

import contextlib
import functools
import logging
import math
import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max, Q
from django.db.models.functions import Lower
from django.dispatch import Signal
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.text import Truncator, slugify

from moderation import context_notes, crisis, permissions, policy, ratelimit, trust
from moderation.models import (
    DOMAIN_RULES_VERSION,
    FLAG_WEIGHTS,
    WATCHED_PHRASES_VERSION,
    DomainRule,
    Flag,
    FlagReason,
    LinkApproval,
    NoteAttachment,
    QueueItem,
    Sanction,
    SharedVersion,
    WatchedPhrase,
)

from . import content_warnings, engagement, memberships, quiet_hours, realtime, sanitize
from . import notify as notifications
from .backends import HELD_ATTRIBUTE, Rider
from .models import (
    ChatMessage,
    ChatRoom,
    HeldPost,
    Membership,
    Notification,
    Post,
    PostRevision,
    SupportGroup,
    Thread,
    User,
)
from .models.threads import MAX_TREE_DEPTH, path_segment
from .sql import names

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
    title: str = "",
) -> policy.Verdict:
    """Step 5, continued: link rules and what the author's trust allows (moderation.trust).
    A blocked domain or too many mentions raise ValidationError; a hold joins ``verdict``.
    A thread's ``title`` is screened with its body: a link, phone number or "DM me" there
    counts as in the body (titles are never rendered; rendering here finds bare addresses
    the way a body's links are found)."""
    title_html = sanitize.render_markdown(title) if title else ""
    facts = trust.Facts(
        level=level if level is not None else trust.Level.TRUSTED,
        # Only a new member's count matters (their first posts wait for approval).
        published=(
            permissions.trust_standing(author, group).published if level == trust.Level.NEW else 0
        ),
        text=f"{title}\n{text}" if title else text,
        html=html + title_html,
        mentions=len(sanitize.linked_mentions(html)),
        first_post=first_post,
        domains=_domain_rules(group),
        trust_rules=level is not None,
        # Asked only of members below the link threshold, who are few: one indexed query.
        links_approved=(
            level is not None
            and level < settings.KINSHIP_TRUST_LINK_LEVEL
            and group is not None
            and LinkApproval.objects.filter(member=author, group=group).exists()
        ),
    )
    limits = trust.Limits(
        link_level=settings.KINSHIP_TRUST_LINK_LEVEL,
        new_member_holds=settings.KINSHIP_NEW_MEMBER_HOLDS,
        mentions=settings.KINSHIP_TRUST_MENTIONS,
    )
    found = trust.assess(facts, limits)
    if found.rejected:
        # Refused for the title alone (a blocked domain there): the error goes on the title.
        title_only = replace(facts, text=title, html=title_html, mentions=0)
        name = "title" if title and trust.assess(title_only, limits).rejected else field
        raise ValidationError({name: found.reason})
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


@SharedVersion.read_together()
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
    verdict = _screen_trust(
        verdict, author=author, group=group, level=level, text=body, html=html, title=title
    )
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


@SharedVersion.read_together()
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


# --- held posts: "hold my post for an hour before it goes out" ------------------------------
#
# A cooling-off choice the member makes while writing. The words wait in a HeldPost that
# nobody else can see; at release the real write path above runs as the author, so every
# rule in force *then* applies (a thread locked meanwhile, a ban, a new watched phrase).
# Quiet hours are the exception: they are checked when the member asks for the hold, and
# the release passes ``post_anyway`` - the member chose to post while they allowed
# themself to, and a wait they asked for must not turn into a refusal at 23:05.

HOLD_FIELD = "hold_for_hour"
HELD_MAX = 20  # waiting at once per member: a hold is a pause, not a queue for spam
# A fault nobody foresaw while releasing one row: it waits this long, the others go on.
HELD_RETRY_AFTER_FAULT = timedelta(minutes=5)


def hold_duration() -> str:
    """ "an hour", or the configured wait in words, for labels and messages."""
    minutes = settings.KINSHIP_HOLD_MINUTES
    if minutes == 60:
        return "an hour"
    if minutes % 60 == 0:
        return f"{minutes // 60} hours"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def may_have_held_posts(user) -> bool:
    """Whether the thread page should look for the member's held replies: read with the
    member (forum.backends), which keeps the page's query count flat for everyone else
    (tests/forum/test_page_queries.py); a member loaded otherwise is asked here."""
    if not user.is_authenticated:
        return False
    held = getattr(user, HELD_ATTRIBUTE, None)
    if held is None:
        held = HeldPost.objects.filter(author=user).exists()
    return held


def _held_texts(author: User, *, exclude: int | None = None) -> tuple[str, ...]:
    """The author's held words, so the same text held twice (a double click) is caught
    as a duplicate now rather than refused an hour later."""
    held = HeldPost.objects.filter(author=author).exclude(pk=exclude)
    return tuple(held.values_list("body", flat=True)[:HELD_MAX])


@SharedVersion.read_together()
def _check_held_text(
    *,
    author: User,
    group: SupportGroup,
    kind: str,
    title: str,
    body: str,
    content_warning: str,
    cw_categories: list[str] | None,
    exclude: int | None = None,
) -> dict:
    """Steps 3 and 5 when the member asks for the hold, so a mistake is shown while they
    are still writing, as field errors. Nothing is counted or stored here; the release
    runs every step again. Returns the cleaned fields to keep (the words as written: a
    censoring rule applies at release)."""
    if kind == HeldPost.Kind.THREAD:
        title = _clean_title(title)
    # A HeldPost's kind is the policy's kind of submission: "thread" or "reply".
    label = "Your post" if kind == HeldPost.Kind.THREAD else "Your reply"
    body = clean_text(body, field="body", label=label, max_length=POST_MAX)
    cw = _clean_content_warning(content_warning)
    categories = content_warnings.clean_categories(cw_categories)
    recent = _recent_texts(author) + _held_texts(author, exclude=exclude)
    verdict = _screen(kind, body, group=group, recent=recent, title=title)
    text = verdict.text if verdict.text is not None else body
    html, _mentioned = _render_with_mentions(text)
    level = _trust_level(author, group)
    _screen_trust(
        verdict, author=author, group=group, level=level, text=text, html=html, title=title
    )
    return {"title": title, "body": body, "content_warning": cw, "cw_categories": categories}


def _create_held(*, author: User, **fields) -> HeldPost:
    if HeldPost.objects.filter(author=author).count() >= HELD_MAX:
        raise ValidationError(
            {HOLD_FIELD: f"You have {HELD_MAX} posts waiting already. Send or discard some first."}
        )
    now = timezone.now()
    held = HeldPost.objects.create(
        author=author,
        release_at=now + timedelta(minutes=settings.KINSHIP_HOLD_MINUTES),
        created_at=now,
        **fields,
    )
    # Crisis words: resources for the author now; moderators hear when the words go out.
    _note_crisis(held, held.title, held.body, alert=False)
    return held


def hold_thread(
    *,
    author: User,
    group: SupportGroup,
    title: str,
    body: str,
    content_warning: str = "",
    cw_categories: list[str] | None = None,
    post_anyway: bool = False,
) -> HeldPost:
    """Keep a new thread back for KINSHIP_HOLD_MINUTES; publish_thread runs at release."""
    permissions.check_can_post_in_group(author, group)
    _check_quiet_hours(author, post_anyway=post_anyway)
    fields = _check_held_text(
        author=author,
        group=group,
        kind=HeldPost.Kind.THREAD,
        title=title,
        body=body,
        content_warning=content_warning,
        cw_categories=cw_categories,
    )
    return _create_held(author=author, group=group, kind=HeldPost.Kind.THREAD, **fields)


def hold_reply(
    *,
    author: User,
    thread: Thread,
    body: str,
    parent: Post | None = None,
    content_warning: str = "",
    cw_categories: list[str] | None = None,
    post_anyway: bool = False,
) -> HeldPost:
    """Keep a reply back for KINSHIP_HOLD_MINUTES; publish_reply runs at release."""
    permissions.check_can_reply(author, thread)
    _check_quiet_hours(author, post_anyway=post_anyway)
    if parent is not None and parent.thread_id != thread.pk:
        raise ValidationError({"parent": "That post is not in this thread."})
    fields = _check_held_text(
        author=author,
        group=thread.group,
        kind=HeldPost.Kind.REPLY,
        title="",
        body=body,
        content_warning=content_warning,
        cw_categories=cw_categories,
    )
    return _create_held(
        author=author,
        group=thread.group,
        kind=HeldPost.Kind.REPLY,
        thread=thread,
        parent=parent,
        **fields,
    )


def edit_held_post(
    *,
    author: User,
    held: HeldPost,
    body: str,
    title: str | None = None,
    content_warning: str | None = None,
    cw_categories: list[str] | None = None,
) -> HeldPost:
    """Change held words before they go out. Its time stays; a refused post is tried
    again at the next release (at once if its time has passed)."""
    if held.author_id != author.pk:
        raise Http404("No such held post.")
    fields = _check_held_text(
        author=author,
        group=held.group,
        kind=held.kind,
        title=held.title if title is None else title,
        body=body,
        content_warning=held.content_warning if content_warning is None else content_warning,
        cw_categories=held.cw_categories if cw_categories is None else cw_categories,
        exclude=held.pk,
    )
    for name, value in fields.items():
        setattr(held, name, value)
    held.refused_at, held.refusal = None, ""
    held.save(update_fields=[*fields, "refused_at", "refusal"])
    _note_crisis(held, held.title, held.body, alert=False)
    return held


def discard_held_post(*, author: User, held: HeldPost) -> None:
    """The member changed their mind: the words are deleted, never published."""
    HeldPost.objects.filter(pk=held.pk, author=author).delete()


def _publish_held(held: HeldPost) -> Thread | Post:
    """The real write path, as the author, with what is in force now."""
    common = {
        "author": held.author,
        "body": held.body,
        "content_warning": held.content_warning,
        "cw_categories": held.cw_categories,
        "post_anyway": True,  # see the top of this section
    }
    if held.kind == HeldPost.Kind.THREAD:
        return publish_thread(group=held.group, title=held.title, **common)
    thread = Thread.objects.select_related("group").filter(pk=held.thread_id).first()
    if thread is None:
        raise Http404("No such thread.")
    # The view's access step (selectors.get_thread_for): a thread hidden meanwhile.
    permissions.check_can_view_thread(held.author, thread)
    return publish_reply(thread=thread, parent=held.parent, **common)


def _refusal_reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    if isinstance(error, Http404):
        return "The thread is no longer there for you."
    return str(error) or "You can no longer post there."


def _refuse_held(held: HeldPost, reason: str, *, notify: bool) -> None:
    """Keep the words, say why; the runner leaves the row until the author acts."""
    held.refused_at, held.refusal = timezone.now(), reason
    held.save(update_fields=["refused_at", "refusal"])
    if not notify:
        return
    what = "thread" if held.kind == HeldPost.Kind.THREAD else "reply"
    notifications.notify(
        recipient=held.author,
        kind=Notification.Kind.HELD_POST,
        group=held.group,
        thread=held.thread,
        text=f"Your held {what} could not go out: {Truncator(reason).chars(200)} "
        "Your words are kept on your held posts page.",
        url=reverse("held_posts"),
    )


def _release_held(held: HeldPost, *, now) -> Thread | Post | None:
    """Publish one locked row and delete it, in the caller's transaction; None if it
    stays (refused, or told to wait by a rate limit or slow mode)."""
    try:
        with transaction.atomic():
            published = _publish_held(held)
            held.delete()
    except ratelimit.RateLimited as wait:  # not a refusal: it goes when the limit allows
        held.release_at = now + timedelta(seconds=max(wait.retry_after, 1))
        held.save(update_fields=["release_at"])
        return None
    except (ValidationError, PermissionDenied, Http404) as refused:
        _refuse_held(held, _refusal_reason(refused), notify=True)
        return None
    except Exception:  # one row's fault must not hold back everybody else's posts
        logger.exception("releasing held post %s failed; trying again later", held.pk)
        held.release_at = now + HELD_RETRY_AFTER_FAULT
        held.save(update_fields=["release_at"])
        return None
    return published


def release_due_posts(*, now: datetime | None = None, author: User | None = None) -> int:
    """Publish the held posts whose time has come (only ``author``'s, given one); returns
    how many went out.

    Each row is taken in its own transaction with SELECT ... FOR UPDATE SKIP LOCKED,
    published and deleted there: any number of workers, the cron command and members'
    page views can run this at once, and no row is published twice or waited on."""
    now = now or timezone.now()
    due = HeldPost.objects.filter(release_at__lte=now, refused_at__isnull=True)
    if author is not None:
        due = due.filter(author=author)
    due = due.select_for_update(skip_locked=True).order_by("release_at", "pk")
    released = 0
    # Ends: every row taken goes out, or is deleted, marked refused or moved past ``now``.
    while True:
        with transaction.atomic():
            held = due.first()
            if held is None:
                return released
            if _release_held(held, now=now) is not None:
                released += 1


def send_held_post(*, author: User, held: HeldPost) -> Thread | Post | None:
    """ "Send now": the release at once, at the author's word. A refusal keeps the row,
    marked, and raises ValidationError({"__all__": why}); a rate limit raises RateLimited.
    None: it had already gone out, or was discarded."""
    with transaction.atomic():
        locked = HeldPost.objects.select_for_update().filter(pk=held.pk, author=author).first()
        if locked is None:
            return None
        try:
            with transaction.atomic():
                published = _publish_held(locked)
                locked.delete()
            return published
        except (ValidationError, PermissionDenied, Http404) as refused:
            reason = _refusal_reason(refused)
            _refuse_held(locked, reason, notify=False)
    raise ValidationError({"__all__": reason})


def held_posts_of(*, author: User) -> list[HeldPost]:
    """The author's held posts, soonest first, after releasing those already due: so
    nobody sees their post stuck past its time, even where no runner has come round."""

    def read() -> list[HeldPost]:
        mine = HeldPost.objects.filter(author=author).select_related("group", "thread__group")
        return list(mine.order_by("release_at", "pk"))

    mine = read()
    now = timezone.now()
    if any(held.release_at <= now and not held.is_refused for held in mine):
        release_due_posts(author=author, now=now)
        mine = read()
    return mine


# --- held for review, then approved -----------------------------------------------------------

_NOTIFIED_KINDS = (
    Notification.Kind.REPLY,
    Notification.Kind.THREAD_REPLY,
    Notification.Kind.MENTION,
)


def notify_on_approval(*, obj) -> None:
    """A moderator or a trusted member let a held thread or post through
    (moderation.actions.approve_held, dismiss_flags): send what the write path kept back
    while it was hidden (mentions would have leaked it; followers could not have opened
    it). Only for words held when first published, and only once: a post held after an
    edit had its notifications when it first appeared. Inside the caller's transaction."""
    if isinstance(obj, Thread):
        post = Post.objects.filter(thread=obj, parent__isnull=True).first()
    elif isinstance(obj, Post):
        post = obj
    else:  # chat messages notify nobody
        return
    if post is None or post.edited_at is not None or post.is_removed_by_author:
        return
    if Notification.objects.filter(post=post, kind__in=_NOTIFIED_KINDS).exists():
        return
    handles = sanitize.linked_mentions(post.html)
    found = User.objects.annotate(handle_lower=Lower("handle")).filter(
        handle_lower__in=handles, is_active=True
    )
    users = {user.handle.lower(): user for user in found}
    mentioned = [users[handle] for handle in handles if handle in users][:MENTIONS_MAX]
    if post.parent_id is None:
        engagement.notify_mentions(post=post, mentioned=mentioned)
    else:
        engagement.notify_reply(post=post, parent=post.parent, mentioned=mentioned)


@SharedVersion.read_together()
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
        title=new_title if post.is_opening else "",
    )
    new_title = verdict.title or new_title
    # An edit can make a risky claim the first text did not: matched like a new post.
    notes = context_notes.new_matches(
        post, context_notes.matching_notes(new_title if post.is_opening else "", body)
    )
    verdict = _hold_for_notes(verdict, notes)
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
        _attach_context_notes(
            thread if post.is_opening else post,
            notes,
            shown_on=post,
            group=thread.group,
            member=post.author,
        )
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


SENT_BEFORE_ATTRIBUTE = "sent_before"


@functools.cache
def _sent_before_column() -> str:
    """As a column over the member's row ``u``: the id of the message they sent in the
    room ``%(sent_room)s`` as ``%(client_id)s``, or NULL."""
    message, m_id, m_room, m_author, m_client = names(
        ChatMessage, "id", "room", "author", "client_id"
    )
    _, u_id = names(User, "id")
    return f"""
        (SELECT {m_id} FROM {message}
            WHERE {m_room} = %(sent_room)s AND {m_author} = u.{u_id} AND {m_client} = %(client_id)s)
    """  # noqa: S608 (names come from the model, values are parameters)


def sent_before_with_member(room_id: int, client_id: str) -> Rider:
    """For a chat message: whether its client id made one here already (a resend), read
    in the statement that loads the member (forum.backends), one round trip less."""

    def attach(user: User, values: tuple) -> None:
        setattr(user, SENT_BEFORE_ATTRIBUTE, (room_id, client_id, values[0]))

    return Rider((_sent_before_column(),), {"sent_room": room_id, "client_id": client_id}, attach)


@functools.cache
def _sent_before_sql() -> str:
    user, u_id = names(User, "id")
    return f"SELECT {_sent_before_column()} FROM {user} u WHERE u.{u_id} = %(author)s"  # noqa: S608


def _sent_before(room: ChatRoom, author: User, client_id: str) -> ChatMessage | None:
    """The message this client id already made here (a resend), or None. Every send asks:
    with the member where the write asked for it (sent_before_with_member; used once, so
    asking again reads afresh), otherwise by hand (forum.sql: through the ORM the question
    cost a send nearly as much as storing the message did)."""
    ridden = author.__dict__.pop(SENT_BEFORE_ATTRIBUTE, None)
    if ridden is not None and ridden[:2] == (room.pk, client_id):
        found = ridden[2]
    else:
        with connection.cursor() as cursor:
            params = {"sent_room": room.pk, "author": author.pk, "client_id": client_id}
            cursor.execute(_sent_before_sql(), params)
            row = cursor.fetchone()
        found = row[0] if row is not None else None
    return None if found is None else ChatMessage.objects.get(pk=found)


@SharedVersion.read_together()
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
    existing = _sent_before(room, author, client_id)
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
        verdict,
        author=author,
        group=room.group,
        level=level,
        text=body,
        html=html,
        # A private conversation is not the group's to read: a newcomer's first words to
        # their mentor do not wait for the group's moderators (links, phone numbers and
        # "DM me" from a new member are still held).
        first_post=room.kind != ChatRoom.Kind.DIRECT,
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
    message = ChatMessage(
        room=room, author=author, client_id=client_id, source=body, html=html, **held
    )
    # Alone, the message commits with its own statement (ChatMessage.insert_at_next_seq).
    # Rows that go with it need a transaction, and so does a caller's open one: a savepoint,
    # so that a refused insert leaves it usable.
    alone = not (verdict.needs_review or notes or connection.in_atomic_block)
    try:
        with contextlib.nullcontext() if alone else transaction.atomic():
            message.insert_at_next_seq()
            if verdict.needs_review:
                _open_review_item(message, group=room.group, member=author, verdict=verdict)
            _attach_context_notes(message, notes, group=room.group, member=author)
            if notes:
                message.context_note = notes[0][0]  # the best match, shown under it
            realtime.broadcast_room_change(room=room, kind="message", message=message)
    except IntegrityError:
        # The same client id raced in on another socket: the first one won.
        existing = _sent_before(room, author, client_id)
        if existing is None:  # refused for another reason: nothing was stored
            raise
        _note_crisis(existing, existing.source, alert=False)
        return existing, False
    _note_crisis(message, body)
    return message, True


@SharedVersion.read_together()
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
    notes = context_notes.new_matches(message, context_notes.matching_notes(body))
    verdict = _hold_for_notes(verdict, notes)
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
        _attach_context_notes(message, notes, group=message.room.group, member=editor)
        message.context_note = context_notes.note_shown_under(message)  # kept through edits
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


# --- live sessions ----------------------------------------------------------------------------
# Scheduling, editing and cancelling a group's sessions, their reusable readings, and RSVPs.
# What happens inside a running session (the floor, the queue, the end) is forum.live.

import secrets  # noqa: E402
import uuid  # noqa: E402
from datetime import time  # noqa: E402

from moderation.models import ModerationLogEntry  # noqa: E402

from . import recurrence  # noqa: E402
from .models import LiveSession, SessionRSVP, SessionScript  # noqa: E402

SESSION_TITLE_MAX = 120
SESSION_TOPIC_MAX = 4_000
SESSION_WELCOME_MAX = 1_000
SESSION_HOURS_MAX = 12
SESSION_CAPACITY = (2, 1_000)
SESSION_OPENS_BEFORE_MAX = 120
SESSION_TRANSCRIPT_DAYS = (1, 365)
SESSION_CO_LEADERS_MAX = 10
SCRIPT_TITLE_MAX = 80
SCRIPT_TEXT_MAX = 10_000
DEFAULT_WELCOME = (
    "Welcome to your first meeting here. You are welcome to just listen; "
    "raise your hand when you want to share."
)


_HELD_SESSION_TEXT = (
    "This uses words moderators review before anyone sees them. Please rephrase it: "
    "a session's page cannot wait for review."
)


@dataclass(frozen=True, kw_only=True)
class SessionPlan:
    """What a leader fills in to schedule or edit a session (forum.forms.SessionForm):
    times are wall-clock times on ``starts_on`` in ``time_zone``; ``weekly`` is for
    scheduling a series only."""

    title: str
    starts_on: date | None
    start_time: time | None
    end_time: time | None
    time_zone: str
    topic: str = ""
    format: str = LiveSession.Format.OPEN_SHARE
    weekly: bool = False
    capacity: int | None = None
    co_leaders: str = ""
    opening_script_id: int | None = None
    closing_script_id: int | None = None
    opens_before_minutes: int | None = 15
    welcome: str = ""
    fellowship_after: bool = False
    transcript: str = LiveSession.Transcript.DELETE
    transcript_days: int | None = None


def _screen_session_title(*, group: SupportGroup, title: str) -> str:
    """Step 5 for a session's title, as for a thread's: a block or a hold is an error,
    censoring applies."""
    verdict = _screen("session", "", group=group, field="title", title=title)
    if verdict.held:
        raise ValidationError({"title": _HELD_SESSION_TEXT})
    return verdict.title if verdict.title is not None else title


@SharedVersion.read_together()
def _screen_session_text(
    *, actor: User, group: SupportGroup, field: str, text: str
) -> tuple[str, str]:
    """Steps 4 and 5 for a session's text or a reading: render and sanitise, watched
    phrases and link rules. A session's page cannot wait hidden for review and only the
    group's leaders write it, so a hold asks them to rephrase. Returns (text, html)."""
    if not text:
        return "", ""
    verdict = _screen("session", text, group=group, field=field)
    text = verdict.text if verdict.text is not None else text
    html = sanitize.render_markdown(text)
    verdict = _screen_trust(
        verdict,
        author=actor,
        group=group,
        level=_trust_level(actor, group),
        text=text,
        html=html,
        first_post=False,
        field=field,
    )
    if verdict.held:
        raise ValidationError({field: _HELD_SESSION_TEXT})
    return text, html


def _session_group_script(group: SupportGroup, script_id: int | None, field: str):
    if script_id in (None, ""):
        return None
    script = SessionScript.objects.filter(pk=script_id, group=group).first()
    if script is None:
        raise ValidationError({field: "Choose one of this group's readings."})
    return script


def _co_leaders(group: SupportGroup, handles: str, *, actor: User) -> list[User]:
    """Members of the group named in ``handles`` (commas or spaces, @ optional)."""
    wanted: list[str] = []
    for part in re.split(r"[\s,;]+", handles or ""):
        handle = part.strip().lstrip("@")
        if handle and handle.lower() not in {w.lower() for w in wanted}:
            wanted.append(handle)
    if len(wanted) > SESSION_CO_LEADERS_MAX:
        raise ValidationError(
            {"co_leaders": f"A session has at most {SESSION_CO_LEADERS_MAX} co-leaders."}
        )
    found = {
        user.handle.lower(): user
        for user in User.objects.annotate(handle_lower=Lower("handle")).filter(
            handle_lower__in=[w.lower() for w in wanted],
            is_active=True,
            memberships__group=group,
        )
    }
    missing = [handle for handle in wanted if handle.lower() not in found]
    if missing:
        names = ", ".join(missing)
        raise ValidationError(
            {"co_leaders": f"Not a member of this group: {names}. Co-leaders are members here."}
        )
    return [found[w.lower()] for w in wanted if found[w.lower()].pk != actor.pk]


def _session_fields(
    *, actor: User, group: SupportGroup, plan: "SessionPlan"
) -> tuple[dict, list[User]]:
    """Steps 3 to 5 for everything but the dates: the model fields and the co-leaders.
    Collects every field's error at once, so the form shows them all."""
    title, topic, welcome = plan.title, plan.topic, plan.welcome
    format, time_zone, capacity = plan.format, plan.time_zone, plan.capacity
    transcript, transcript_days = plan.transcript, plan.transcript_days
    opens_before_minutes = plan.opens_before_minutes
    errors: dict[str, str] = {}

    def attempt(check, /, *args, **kwargs):
        try:
            return check(*args, **kwargs)
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                errors.setdefault(name, messages[0])
            return None

    title = attempt(
        clean_text,
        title,
        field="title",
        label="The title",
        max_length=SESSION_TITLE_MAX,
        multiline=False,
    )
    topic = attempt(
        clean_text,
        topic,
        field="topic",
        label="The topic",
        max_length=SESSION_TOPIC_MAX,
        required=False,
    )
    welcome = attempt(
        clean_text,
        welcome,
        field="welcome",
        label="The welcome",
        max_length=SESSION_WELCOME_MAX,
        required=False,
    )
    if format not in LiveSession.Format.values:
        errors["format"] = "Choose a format."
    if plan.start_time is None:
        errors["start_time"] = "Enter a start time, e.g. 19:00."
    if plan.end_time is None:
        errors["end_time"] = "Enter an end time, e.g. 20:00."
    if not recurrence.is_zone(time_zone):
        errors["time_zone"] = f"“{time_zone}” is not a time zone we know. Choose one from the list."
    low, high = SESSION_CAPACITY
    if capacity is not None and not low <= capacity <= high:
        errors["capacity"] = f"Capacity is {low} to {high} people, or empty for no limit."
    low, high = 0, SESSION_OPENS_BEFORE_MAX
    if opens_before_minutes is None or not low <= opens_before_minutes <= high:
        errors["opens_before_minutes"] = f"The room opens 0 to {high} minutes before the start."
    if transcript not in LiveSession.Transcript.values:
        errors["transcript"] = "Choose what happens to what is said."
    elif transcript == LiveSession.Transcript.KEEP_DAYS:
        low, high = SESSION_TRANSCRIPT_DAYS
        if transcript_days is None or not low <= transcript_days <= high:
            errors["transcript_days"] = f"Keep it for {low} to {high} days."
    else:
        transcript_days = None  # only "keep for N days" has a number of days
    leaders = attempt(_co_leaders, group, plan.co_leaders, actor=actor) or []
    opening = attempt(_session_group_script, group, plan.opening_script_id, "opening_script")
    closing = attempt(_session_group_script, group, plan.closing_script_id, "closing_script")
    if errors:
        raise ValidationError(errors)
    title = attempt(_screen_session_title, group=group, title=title)
    topic_screened = attempt(
        _screen_session_text, actor=actor, group=group, field="topic", text=topic
    )
    welcome_screened = attempt(
        _screen_session_text,
        actor=actor,
        group=group,
        field="welcome",
        text=welcome or DEFAULT_WELCOME,
    )
    if errors:
        raise ValidationError(errors)
    topic, topic_html = topic_screened
    welcome, welcome_html = welcome_screened
    fields = {
        "title": title,
        "topic_source": topic,
        "topic_html": topic_html,
        "format": format,
        "time_zone": time_zone,
        "capacity": capacity,
        "opening_script": opening,
        "closing_script": closing,
        "opens_before_minutes": opens_before_minutes,
        "welcome_source": welcome,
        "welcome_html": welcome_html,
        "fellowship_after": bool(plan.fellowship_after),
        "transcript": transcript,
        "transcript_days": transcript_days,
    }
    return fields, leaders


def _session_span(
    starts_on: date | None, start_time: time, end_time: time, time_zone: str
) -> tuple[datetime, datetime]:
    if starts_on is None:
        raise ValidationError({"starts_on": "Enter the date, e.g. 2026-05-12."})
    if start_time == end_time:
        raise ValidationError({"end_time": "The session ends after it starts."})
    starts_at, ends_at = recurrence.span(starts_on, start_time, end_time, time_zone)
    hours = (ends_at - starts_at).total_seconds() / 3600
    if hours > SESSION_HOURS_MAX:
        raise ValidationError(
            {
                "end_time": f"That is {hours:g} hours (an end before the start is the next "
                f"day); a session lasts at most {SESSION_HOURS_MAX} hours."
            }
        )
    if ends_at <= starts_at:  # a skipped hour can swallow a very short session
        raise ValidationError({"end_time": "The session ends after it starts."})
    return starts_at, ends_at


def _check_not_past(starts_at: datetime) -> None:
    if starts_at < timezone.now():
        raise ValidationError({"starts_on": "That time has passed: choose a start from now on."})


def _session_room(group: SupportGroup, title: str) -> ChatRoom:
    """A new room of its own for a session, not listed among the group's rooms."""
    taken = True
    while taken:
        slug = f"session-{secrets.token_hex(4)}"
        taken = ChatRoom.objects.filter(group=group, slug=slug).exists()
    return ChatRoom.objects.create(
        group=group, slug=slug, name=title[:ROOM_NAME_MAX], kind=ChatRoom.Kind.SESSION
    )


def schedule_session(*, actor: User, group: SupportGroup, plan: SessionPlan) -> list[LiveSession]:
    """Schedule a session in ``group``, led by ``actor``; ``plan.weekly`` schedules
    KINSHIP_SESSION_SERIES_WEEKS occurrences at the same local time, sharing ``series``,
    each its own row (and room) to edit or cancel. Returns them, earliest first."""
    permissions.check_can_schedule_sessions(actor, group)
    ratelimit.hit("edit", key=str(actor.pk))
    fields, leaders = _session_fields(actor=actor, group=group, plan=plan)
    first_start, _first_end = _session_span(
        plan.starts_on, plan.start_time, plan.end_time, plan.time_zone
    )
    _check_not_past(first_start)
    count = settings.KINSHIP_SESSION_SERIES_WEEKS if plan.weekly else 1
    days = [plan.starts_on + timedelta(weeks=n) for n in range(count)]
    spans = [_session_span(day, plan.start_time, plan.end_time, plan.time_zone) for day in days]
    series = uuid.uuid4() if plan.weekly else None
    sessions = []
    with transaction.atomic():
        for starts_at, ends_at in spans:
            session = LiveSession.objects.create(
                group=group,
                room=_session_room(group, fields["title"]),
                series=series,
                starts_at=starts_at,
                ends_at=ends_at,
                leader=actor,
                facilitator=actor,
                **fields,
            )
            session.co_leaders.set(leaders)
            sessions.append(session)
    return sessions


def _check_editable(session: LiveSession, *, doing: str) -> None:
    phase = session.phase()
    if phase == LiveSession.Phase.CANCELLED:
        raise ValidationError({"__all__": f"This session was cancelled: you cannot {doing} it."})
    if phase == LiveSession.Phase.ENDED:
        raise ValidationError({"__all__": f"This session is over: you cannot {doing} it."})


def edit_session(*, actor: User, session: LiveSession, plan: SessionPlan) -> LiveSession:
    """Change this occurrence (the rest of its series stays as it was)."""
    group = session.group
    permissions.check_can_schedule_sessions(actor, group)
    _check_editable(session, doing="edit")
    ratelimit.hit("edit", key=str(actor.pk))
    fields, leaders = _session_fields(actor=actor, group=group, plan=plan)
    starts_at, ends_at = _session_span(
        plan.starts_on, plan.start_time, plan.end_time, plan.time_zone
    )
    if starts_at != session.starts_at:
        _check_not_past(starts_at)
    # The co-leaders may include the leader's own successor: keep whoever leads out.
    leaders = [user for user in leaders if user.pk != session.leader_id]
    with transaction.atomic():
        for name, value in fields.items():
            setattr(session, name, value)
        session.starts_at, session.ends_at = starts_at, ends_at
        session.save()
        session.co_leaders.set(leaders)
        session.__dict__.pop("_co_leader_ids", None)
        ChatRoom.objects.filter(pk=session.room_id).update(name=session.title[:ROOM_NAME_MAX])
    return session


def cancel_session(
    *, actor: User, session: LiveSession, reason: str = "", following: bool = False
) -> list[LiveSession]:
    """Cancel a session that has not opened (``following``: and the later occurrences of
    its series). Logged; members who said they were coming are told."""
    # moderation.actions builds on this module, so it is imported when a cancel happens,
    # not when this module loads.
    from moderation import actions

    group = session.group
    permissions.check_can_schedule_sessions(actor, group)
    reason = clean_text(
        reason, field="reason", label="The reason", max_length=MODERATION_TEXT_MAX, required=False
    )
    if session.phase() != LiveSession.Phase.SCHEDULED:
        _check_editable(session, doing="cancel")
        raise ValidationError({"__all__": "The room is open: end the session instead."})
    targets = [session]
    if following and session.series:
        targets += list(
            LiveSession.objects.filter(
                group=group,
                series=session.series,
                starts_at__gt=session.starts_at,
                cancelled_at__isnull=True,
                ended_at__isnull=True,
            ).select_related("group")
        )
    now = timezone.now()
    cancelled = []
    with transaction.atomic():
        for target in targets:
            if target.phase(now) != LiveSession.Phase.SCHEDULED:
                continue
            target.cancelled_at = now
            target.save(update_fields=["cancelled_at"])
            ChatRoom.objects.filter(pk=target.room_id).update(state=ChatRoom.State.ARCHIVED)
            actions.log_action(
                actor=actor,
                action=ModerationLogEntry.Action.SESSION_CANCELLED,
                target=actions.Target(
                    target, "live session", group, None,
                    f"the session “{target.title}”", target.get_absolute_url(),
                ),
                reason=reason,
                after={"starts_at": target.starts_at.isoformat()},
            )  # fmt: skip
            _notify_rsvps(target, reason=reason)
            cancelled.append(target)
    return cancelled


def _notify_rsvps(session: LiveSession, *, reason: str) -> None:
    when = recurrence.local(session.starts_at, session.time_zone)
    text = (
        f"The session “{session.title}” on {when:%a %d %b %H:%M} ({session.time_zone}) "
        "is cancelled" + (f": {reason}" if reason else ".")
    )
    notifications.notify_many(
        recipient_ids=SessionRSVP.objects.filter(session=session).values_list("user_id", flat=True),
        kind=Notification.Kind.SESSION,
        group=session.group,
        text=text,
        url=session.get_absolute_url(),
    )


def toggle_rsvp(*, user: User, session: LiveSession) -> bool:
    """Say you are coming, or take it back; returns whether you are going now."""
    permissions.check_can_read_rooms(user, session.group)
    if session.phase() in (LiveSession.Phase.ENDED, LiveSession.Phase.CANCELLED):
        raise ValidationError({"__all__": "This session is over."})
    with transaction.atomic():
        deleted, _ = SessionRSVP.objects.filter(session=session, user=user).delete()
        if deleted:
            return False
        SessionRSVP.objects.get_or_create(session=session, user=user)
    return True


def save_script(
    *,
    actor: User,
    group: SupportGroup,
    script: SessionScript | None = None,
    title: str,
    text: str,
) -> SessionScript:
    """Add a reading to the group's scripts, or change one."""
    permissions.check_can_schedule_sessions(actor, group)
    if script is not None and script.group_id != group.pk:
        raise ValidationError({"__all__": "That reading belongs to another group."})
    ratelimit.hit("edit", key=str(actor.pk))
    errors = {}
    try:
        title = clean_text(
            title, field="title", label="The title", max_length=SCRIPT_TITLE_MAX, multiline=False
        )
    except ValidationError as error:
        errors.update({k: v[0] for k, v in error.message_dict.items()})
    try:
        text = clean_text(text, field="text", label="The reading", max_length=SCRIPT_TEXT_MAX)
    except ValidationError as error:
        errors.update({k: v[0] for k, v in error.message_dict.items()})
    if "title" not in errors:
        same = SessionScript.objects.filter(group=group, title__iexact=title)
        if script is not None:
            same = same.exclude(pk=script.pk)
        if same.exists():
            errors["title"] = "This group already has a reading with that title."
    if errors:
        raise ValidationError(errors)
    title = _screen_session_title(group=group, title=title)
    text, html = _screen_session_text(actor=actor, group=group, field="text", text=text)
    script = script or SessionScript(group=group)
    script.title, script.source, script.html = title, text, html
    script.updated_at = timezone.now()
    try:
        with transaction.atomic():
            script.save()
    except IntegrityError:  # the same title, saved a moment ago by another leader
        raise ValidationError(
            {"title": "This group already has a reading with that title."}
        ) from None
    return script


def delete_script(*, actor: User, script: SessionScript) -> None:
    """Delete a reading; sessions that used it simply have none there any more."""
    permissions.check_can_schedule_sessions(actor, script.group)
    script.delete()


# --- accountability goals (forum.accountability) ----------------------------------------------

GOAL_TITLE_MAX = 120


def screen_goal_title(*, title: str, group: SupportGroup | None) -> str:
    """Steps 3 and 5 for a recovery goal's title: a goal may be shown to one of the member's
    groups, so that group's watched phrases apply (the site's for a private goal). A goal
    cannot wait hidden for review, so a hold asks for other words; censoring applies."""
    title = clean_text(
        title, field="title", label="The goal", max_length=GOAL_TITLE_MAX, multiline=False
    )
    verdict = _screen("goal", "", group=group, field="title", title=title)
    if verdict.held:
        raise ValidationError({"title": "Please say this goal in other words."})
    return verdict.title if verdict.title is not None else title


# --- direct conversations (forum.conversations) -----------------------------------------------

REQUEST_NOTE_MAX = 1_000


def prepare_request_note(*, note: str, group: SupportGroup) -> tuple[str, str, frozenset[str]]:
    """Steps 3 to 5 for the note that asks a member for a direct conversation: validate,
    render and sanitise, the watched phrases of the group the two share. A request cannot
    wait hidden for review, so a hold asks for other words; censoring applies. Returns
    (source, safe HTML, crisis categories: the caller offers the author support)."""
    source = clean_text(note, field="note", label="Your note", max_length=REQUEST_NOTE_MAX)
    verdict = _screen("dm_request", source, group=group, field="note")
    if verdict.held:
        raise ValidationError({"note": "Please say this in other words."})
    if verdict.text is not None:
        source = verdict.text
    return source, sanitize.render_markdown(source), crisis.detect(source)
