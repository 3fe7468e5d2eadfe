"""Every route the URL resolver knows, with a concrete request for each.

tests/forum/test_http_security.py walks ``get_resolver().url_patterns`` and asks this
table how to build each route's URL in a small forum (tests/permissions_world.py) and who
may use it. A route the walk finds without a case here fails there, so a new route gets
its security headers, its rendered HTML and its CSRF protection checked as soon as it
exists. Kinship's own pages reuse the requests of tests/forum/test_views_permissions.py;
the Django admin's model pages come from its registry, one object per registered model.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date

from django.contrib import admin
from django.contrib.auth.models import Group as AuthGroup
from django.contrib.auth.tokens import default_token_generator
from django.contrib.contenttypes.models import ContentType
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from forum import publishing
from forum.models import CrisisResource, Post, SupportGroup, Thread, User
from moderation import actions
from moderation.models import (
    Appeal,
    ContextNote,
    DomainRule,
    Flag,
    LinkApproval,
    ModerationLogEntry,
    ModeratorNote,
    QueueItem,
    Rule,
    Sanction,
    WatchedPhrase,
)
from tests.conftest import make_user
from tests.forum.test_views_permissions import PAGES
from tests.permissions_world import World, build_world

# --- the walk ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    key: str  # "namespace:name", or the route itself for a pattern without a name
    route: str
    pattern: URLPattern


def walk(patterns=None, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    """Every URLPattern under the root URLconf, with its full route and qualified name."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        else:
            route = prefix + str(pattern.pattern)
            key = f"{namespace}{pattern.name}" if pattern.name else route
            yield Route(key=key, route=route, pattern=pattern)


# --- a case per route ----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    url: Callable[[World], str]
    # Who may use the route (one of tests.permissions_world.ROLES): the actor of the world
    # each request runs in, signed in unless anonymous.
    role: str = "member"
    # Valid input for a POST by that actor.
    data: dict = field(default_factory=dict)
    # The status the view itself answers that POST with when nobody may make it (a
    # read-only admin page); None when the actor may.
    refusal: int | None = None


def page(row: str, role: str = "member") -> Case:
    """The request of a row of docs/permissions.md's pages tables."""
    found = PAGES[row]
    return Case(found.url, role, found.data if found.method == "post" else {})


def plain(name: str, role: str = "member") -> Case:
    return Case(lambda w: reverse(name), role)


def build(role: str) -> World:
    return build_world("public", role)


# Moderation: the objects its pages are about.


def _moderator() -> User:
    return User.objects.filter(is_site_moderator=True).first() or make_user(
        "case-warden", is_site_moderator=True
    )


def _flag(world: World) -> Flag:
    flagger = make_user("case-flagger")
    return actions.flag(flagger=flagger, obj=world.others_post, reason="spam")


def _warning(world: World, member: User | None = None) -> Sanction:
    return actions.sanction_member(
        actor=_moderator(),
        member=member or world.poster,
        kind=Sanction.Kind.WARNING,
        group=world.group,
        reason="Please keep it kind.",
    )


def _own_warning_entry(world: World) -> ModerationLogEntry:
    _warning(world, world.actor)
    return ModerationLogEntry.objects.filter(member_id=world.actor.pk).latest("pk")


def _appeal(world: World) -> Appeal:
    _warning(world)
    entry = ModerationLogEntry.objects.filter(member_id=world.poster.pk).latest("pk")
    return actions.appeal(member=world.poster, entry=entry, text="I was quoting someone.")


def _note(world: World) -> ContextNote:
    return ContextNote.objects.create(
        claim="Cold turkey is always safe.",
        phrasings="cold turkey is safe",
        correction_source="Withdrawal can be dangerous.",
        correction_html="<p>Withdrawal can be dangerous.</p>",
    )


def _held_post(world: World) -> Post:
    """A reply the write path held for review (a watched phrase says so)."""
    WatchedPhrase.objects.create(pattern="lorazepam", action=WatchedPhrase.Action.HOLD)
    return publishing.publish_reply(
        author=world.poster, thread=world.fresh_thread(), body="Is lorazepam safe to stop?"
    )


def _mod(name: str, make: Callable[[World], object], arg: str) -> Case:
    return Case(lambda w: reverse(f"moderation:{name}", kwargs={arg: make(w).pk}), "site moderator")


def _mod_group(name: str, role: str = "group moderator") -> Case:
    return Case(lambda w: reverse(f"moderation:{name}", kwargs={"slug": w.group.slug}), role)


NOTE = {"action": "note", "note-text": "Checked in with them by message."}


MODERATION: dict[str, Case] = {
    "moderation:queue": plain("moderation:queue", "site moderator"),
    "moderation:item": Case(
        lambda w: reverse("moderation:item", kwargs={"item_id": _flag(w).item.pk}),
        "site moderator",
        NOTE,
    ),
    "moderation:member": Case(
        lambda w: reverse("moderation:member", kwargs={"handle": w.poster.handle}),
        "site moderator",
        NOTE,
    ),
    "moderation:mine": plain("moderation:mine"),
    "moderation:appeal": Case(
        lambda w: reverse("moderation:appeal", kwargs={"entry_id": _own_warning_entry(w).pk}),
        data={"text": "I was quoting a song."},
    ),
    "moderation:flag": Case(
        lambda w: reverse("moderation:flag", kwargs={"kind": "post", "pk": w.others_post.pk}),
        data={"reason": "spam", "details": ""},
    ),
    "moderation:flag_thanks": Case(
        lambda w: reverse("moderation:flag_thanks", kwargs={"kind": "post", "pk": w.others_post.pk})
    ),
    "moderation:log": plain("moderation:log", "site moderator"),
    "moderation:group_log": _mod_group("group_log"),
    "moderation:site_rules": plain("moderation:site_rules", "site moderator"),
    "moderation:group_rules": _mod_group("group_rules"),
    "moderation:retire_rule": _mod(
        "retire_rule", lambda w: Rule.objects.create(title="Be kind"), "rule_id"
    ),
    "moderation:site_watched": plain("moderation:site_watched", "site moderator"),
    "moderation:group_watched": _mod_group("group_watched"),
    "moderation:remove_watched": _mod(
        "remove_watched", lambda w: WatchedPhrase.objects.create(pattern="pills"), "phrase_id"
    ),
    "moderation:site_links": plain("moderation:site_links", "site moderator"),
    "moderation:group_links": _mod_group("group_links"),
    "moderation:link_allowances": _mod_group("link_allowances", "leader"),
    "moderation:withdraw_link_allowance": Case(
        lambda w: reverse(
            "moderation:withdraw_link_allowance",
            kwargs={"approval_id": LinkApproval.objects.create(member=w.poster, group=w.group).pk},
        ),
        "leader",
    ),
    "moderation:remove_link": _mod(
        "remove_link",
        lambda w: DomainRule.objects.create(domain="spam.example", kind="block"),
        "rule_id",
    ),
    "moderation:approve": Case(
        lambda w: reverse("moderation:approve", kwargs={"kind": "post", "pk": _held_post(w).pk}),
        "site moderator",
    ),
    "moderation:notes": plain("moderation:notes", "site moderator"),
    "moderation:note_edit": _mod("note_edit", _note, "note_id"),
    "moderation:note_retire": _mod("note_retire", _note, "note_id"),
    "moderation:note_restore": _mod("note_restore", _note, "note_id"),
}


# The Django admin: one object of each registered model, reached by a site admin.

ADMIN_OBJECTS: dict[type, Callable[[World], object]] = {
    AuthGroup: lambda w: AuthGroup.objects.create(name="Volunteers"),
    User: lambda w: w.poster,
    SupportGroup: lambda w: w.group,
    Thread: lambda w: w.thread,
    Post: lambda w: w.others_post,
    CrisisResource: lambda w: CrisisResource.objects.create(
        name="Helpline", region="Anywhere", contact="988"
    ),
    Rule: lambda w: Rule.objects.create(title="Be kind"),
    QueueItem: lambda w: _flag(w).item,
    Flag: _flag,
    Sanction: _warning,
    ModeratorNote: lambda w: actions.add_note(
        actor=_moderator(), member=w.poster, group=w.group, text="Check in with them."
    ),
    Appeal: _appeal,
    ModerationLogEntry: lambda w: (_warning(w), ModerationLogEntry.objects.latest("pk"))[1],
}
ADMIN_OBJECT_VIEWS = ("change", "delete", "history")


def _admin_allows(model: type, view: str) -> bool:
    """Whether the model's admin lets a superuser add, change or delete at all."""
    request = RequestFactory().post("/")
    request.user = User(is_active=True, is_staff=True, is_superuser=True)
    return getattr(admin.site._registry[model], f"has_{view}_permission")(request)


def _admin_object(model: type, view: str | None) -> Case:
    def url(world: World) -> str:
        obj = ADMIN_OBJECTS[model](world)
        if view is None:  # the bare object URL, which redirects to its change page
            return (
                reverse("admin:index")
                + f"{model._meta.app_label}/{model._meta.model_name}/{obj.pk}/"
            )
        return reverse(
            f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=[obj.pk]
        )

    allowed = view is None or view == "history" or _admin_allows(model, view)
    return Case(url, "admin", refusal=None if allowed else 403)


def admin_cases() -> dict[str, Case]:
    cases = {
        "admin:index": plain("admin:index", "admin"),
        "admin:login": plain("admin:login", "anonymous"),
        "admin:logout": plain("admin:logout", "admin"),
        "admin:password_change": plain("admin:password_change", "admin"),
        "admin:password_change_done": plain("admin:password_change_done", "admin"),
        "admin:autocomplete": plain("admin:autocomplete", "admin"),
        "admin:jsi18n": plain("admin:jsi18n", "admin"),
        "admin:view_on_site": Case(
            lambda w: reverse(
                "admin:view_on_site",
                args=[ContentType.objects.get_for_model(SupportGroup).pk, w.group.pk],
            ),
            "admin",
        ),
        "admin:app_list": Case(lambda w: reverse("admin:app_list", args=["forum"]), "admin"),
        "admin/(?P<url>.*)$": Case(
            lambda w: reverse("admin:index") + "no-such-page/", "admin", refusal=404
        ),
        "admin:auth_user_password_change": Case(
            lambda w: reverse("admin:auth_user_password_change", args=[w.poster.pk]), "admin"
        ),
    }
    for model in admin.site._registry:
        opts = model._meta
        prefix = f"admin:{opts.app_label}_{opts.model_name}"
        cases[f"{prefix}_changelist"] = plain(f"{prefix}_changelist", "admin")
        add_refusal = None if _admin_allows(model, "add") else 403
        cases[f"{prefix}_add"] = Case(
            lambda w, p=prefix: reverse(f"{p}_add"), "admin", refusal=add_refusal
        )
        if model not in ADMIN_OBJECTS:
            continue  # no case: the walk reports the model's object pages as missing
        for view in ADMIN_OBJECT_VIEWS:
            cases[f"{prefix}_{view}"] = _admin_object(model, view)
        cases[f"admin/{opts.app_label}/{opts.model_name}/<path:object_id>/"] = _admin_object(
            model, None
        )
    return cases


# Accounts: Django's views under Kinship's templates.


def _reset_link(world: World) -> str:
    uid = urlsafe_base64_encode(force_bytes(world.poster.pk))
    token = default_token_generator.make_token(world.poster)
    return reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})


ACCOUNTS: dict[str, Case] = {
    "login": Case(lambda w: reverse("login"), "anonymous", {"username": "poster"}),
    "logout": plain("logout"),
    "password_change": plain("password_change"),
    "password_change_done": plain("password_change_done"),
    "password_reset": Case(
        lambda w: reverse("password_reset"), "anonymous", {"email": "poster@example.test"}
    ),
    "password_reset_done": plain("password_reset_done", "anonymous"),
    "password_reset_confirm": Case(_reset_link, "anonymous"),
    "password_reset_complete": plain("password_reset_complete", "anonymous"),
    "signup": page("`signup`", "anonymous"),
}


def _eligible_mentor(world: World) -> str:
    """The mentor profile page of a member who may offer to mentor."""
    PAGES["`mentor_approval_request` (POST, an eligible member with a mentor profile)"].url(world)
    User.objects.filter(pk=world.actor.pk).update(recovery_date=date(2020, 1, 1))
    return reverse("mentor_profile")


# Kinship's own pages: the documented requests, and who may make each one.

FORUM: dict[str, Case] = {
    "home": page("`home`"),
    "crisis_help": page("`crisis_help`"),
    "healthz": page("`healthz`"),
    "notifications": page("`notifications`"),
    "search": page("`search` (a word of the group's thread title, in the group)"),
    "settings": page("`settings`"),
    "change_email": page("`change_email`"),
    "your_data": plain("your_data"),
    "export_data": plain("export_data"),
    "withdraw_left_chat": plain("withdraw_left_chat"),
    "profile": page("`profile` (another member's)"),
    "block": page("`block` (POST, another member)"),
    "directory": page("`directory`"),
    "my_groups": page("`my_groups`"),
    "group_create": page("`group_create`", "site moderator"),
    "invite": page("`invite`", "non-member"),
    "group": page("`group`"),
    "group_join": page("`group_join`", "non-member"),
    "group_leave": page("`group_leave`"),
    "group_settings": page("`group_settings`", "leader"),
    "renew_invite": page("`renew_invite` (POST)", "leader"),
    "join_requests": page("`join_requests`", "leader"),
    "decide_join_request": page(
        "`decide_join_request` (POST, decline a pending request)", "leader"
    ),
    "rooms": page("`rooms`"),
    "room_new": page("`room_new` (POST)", "leader"),
    "room": page("`room`"),
    "room_settings": page("`room_settings` (POST)", "leader"),
    "room_mute": page("`room_mute` (POST)"),
    "room_slow_mode": page("`room_slow_mode` (POST)", "leader"),
    "sessions": page("`sessions`"),
    "session_new": page("`session_new` (POST)", "leader"),
    "group_sessions_feed": page("`group_sessions_feed` (with the person's own feed link)"),
    "session_scripts": page("`session_scripts` (POST)", "leader"),
    "session_script_edit": page("`session_script_edit`", "leader"),
    "session": page("`session`"),
    "session_edit": page("`session_edit` (POST)", "leader"),
    "session_cancel": page("`session_cancel` (POST)", "leader"),
    "session_rsvp": page("`session_rsvp` (POST)"),
    "session_ics": page("`session_ics`"),
    "thread_new": page("`thread_new`"),
    "thread": page("`thread`"),
    "reply": page("`reply` (GET)"),
    "thread_follow": page("`thread_follow` (POST)"),
    "thread_mute": page("`thread_mute` (POST)"),
    "thread_slow_mode": page("`thread_slow_mode` (POST)", "leader"),
    "subthread": page("`subthread`"),
    "post_edit": page("`post_edit` (own post)"),
    "post_remove": page("`post_remove` (POST, own post)"),
    "post_history": page("`post_history` (own post)"),
    "post_support": page("`post_support` (POST, someone else's post)"),
    "held_posts": page("`held_posts`"),
    "held_send": page("`held_send` (POST, own held post)"),
    "held_edit": page("`held_edit` (own held post)"),
    "held_discard": page("`held_discard` (POST, own held post)"),
    "attendance": page("`attendance`"),
    "attendance_proof_new": page("`attendance_proof_new` (POST, a range with a session attended)"),
    "attendance_proof_download": page("`attendance_proof_download` (own proof)"),
    "attendance_proof_revoke": page("`attendance_proof_revoke` (POST, own proof)"),
    "attendance_proof": page("`attendance_proof` (someone else's proof)", "anonymous"),
    "recovery": page("`recovery`"),
    "check_in": page("`check_in` (POST, today)"),
    "check_in_delete": page("`check_in_delete` (POST, own check-in)"),
    "check_in_history": page("`check_in_history`"),
    "recovery_date": page("`recovery_date` (POST)"),
    "goal_new": page("`goal_new` (POST)"),
    "goal_edit": page("`goal_edit` (own goal)"),
    "goal_archive": page("`goal_archive` (POST, own goal)"),
    "mentorship_goals": page("`mentorship_goals` (the actor mentors the member)"),
    "mentors": page("`mentors`"),
    "mentoring": page("`mentoring`"),
    "mentor_profile": Case(_eligible_mentor, data={"experience": "Five years, one day at a time."}),
    "mentor_profile_withdraw": page("`mentor_profile_withdraw` (POST)"),
    "mentorship": page("`mentorship` (own mentorship)"),
    "mentorship_accept": page("`mentorship_accept` (POST, a request to the actor)"),
    "mentorship_decline": page("`mentorship_decline` (POST, a request to the actor)"),
    "mentorship_end": page("`mentorship_end` (POST, own mentorship)"),
    "group_mentors": page("`group_mentors`", "leader"),
    "mentor_approval_request": page(
        "`mentor_approval_request` (POST, an eligible member with a mentor profile)"
    ),
    "group_mentor_decide": page("`group_mentor_decide` (POST, decline a pending offer)", "leader"),
    "mentor_request": page("`mentor_request` (POST, a note to a mentor listed in the group)"),
    "messages": page("`messages`"),
    "message_settings": page("`message_settings` (POST, requests off)"),
    "conversation_new": page("`conversation_new` (POST, a note to a member of the group)"),
    "conversation": page("`conversation` (own conversation)"),
    "conversation_accept": page("`conversation_accept` (POST, a request to the actor)"),
    "conversation_ignore": page("`conversation_ignore` (POST, a request to the actor)"),
    "conversation_block": page("`conversation_block` (POST, own conversation)"),
    "conversation_close": page("`conversation_close` (POST, own conversation)"),
    "conversation_report": page("`conversation_report` (POST, own conversation)"),
}

CASES: dict[str, Case] = {**FORUM, **ACCOUNTS, **MODERATION, **admin_cases()}
