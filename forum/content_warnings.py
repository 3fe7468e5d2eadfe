"""Content-warning categories: what authors and moderators tag, and what each reader sees.

Posts carry ``cw_categories``, a list of the codes below (a JSON list: the same on SQLite
and PostgreSQL), next to the free-text ``content_warning``. Each member chooses, per
category, to show, collapse or hide such posts (``User.cw_preferences``, a code -> mode
dict holding only what they chose); what they have not chosen falls back to DEFAULTS, or
to NEW_MEMBER_DEFAULTS in their first NEW_MEMBER_DAYS. Everything here is pure Python on
objects already loaded, so thread pages pay no query for it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

CATEGORIES: dict[str, str] = {
    "use": "relapse or use detail",
    "self_harm": "self-harm",
    "trauma": "trauma",
    "substances": "alcohol or drug imagery",
    "other": "other",
}
CATEGORY_CHOICES = list(CATEGORIES.items())

SHOW, COLLAPSE, HIDE = "show", "collapse", "hide"
MODES: dict[str, str] = {SHOW: "Show", COLLAPSE: "Collapse", HIDE: "Hide"}
MODE_CHOICES = list(MODES.items())
_STRICTNESS = {SHOW: 0, COLLAPSE: 1, HIDE: 2}

DEFAULTS: dict[str, str] = dict.fromkeys(CATEGORIES, COLLAPSE)
# Newcomers are often in early recovery: the riskiest categories stay out of sight at first.
NEW_MEMBER_DAYS = 30
NEW_MEMBER_DEFAULTS: dict[str, str] = {**DEFAULTS, "use": HIDE, "self_harm": HIDE}

FIELD = "cw_categories"


def clean_categories(values, *, field: str = FIELD) -> list[str]:
    """Known codes only, without repeats, in CATEGORIES order; else ValidationError."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    chosen = set()
    for value in values:
        if not isinstance(value, str) or value not in CATEGORIES:
            raise ValidationError(
                {field: f"“{value}” is not a content-warning category. Choose from the list."}
            )
        chosen.add(value)
    return [code for code in CATEGORIES if code in chosen]


def labels(codes) -> list[str]:
    return [CATEGORIES[code] for code in codes if code in CATEGORIES]


def is_new_member(user, now: datetime | None = None) -> bool:
    joined = getattr(user, "date_joined", None)
    if joined is None:
        return False
    return (now or timezone.now()) - joined < timedelta(days=NEW_MEMBER_DAYS)


def defaults_for(user, now: datetime | None = None) -> dict[str, str]:
    if user is None or not getattr(user, "is_authenticated", False):
        return dict(DEFAULTS)
    return dict(NEW_MEMBER_DEFAULTS if is_new_member(user, now) else DEFAULTS)


def preferences(user, now: datetime | None = None) -> dict[str, str]:
    """Every category's mode for this viewer; anonymous visitors get the collapse default."""
    prefs = defaults_for(user, now)
    if user is not None and getattr(user, "is_authenticated", False):
        chosen = user.cw_preferences or {}
        prefs.update({k: v for k, v in chosen.items() if k in CATEGORIES and v in MODES})
    return prefs


def _viewer_preferences(user) -> dict[str, str]:
    """preferences(), memoised on the user instance for the length of one request."""
    if user is None or not getattr(user, "is_authenticated", False):
        return dict(DEFAULTS)
    cached = getattr(user, "_cw_preferences_cache", None)
    if cached is None or cached[0] != user.cw_preferences:
        cached = (dict(user.cw_preferences or {}), preferences(user))
        user._cw_preferences_cache = cached
    return cached[1]


def viewer_choices(user) -> tuple[tuple[str, str], ...]:
    """The viewer's mode for every category: all of what display_for reads of them, for
    keys of what they see (forum.fragments)."""
    return tuple(sorted(_viewer_preferences(user).items()))


@dataclass(frozen=True)
class Display:
    """How one post reads for one viewer: ``mode`` is SHOW, COLLAPSE or HIDE;
    ``categories`` names the post's categories; ``reasons`` those that set the mode."""

    mode: str
    categories: tuple[str, ...]
    reasons: tuple[str, ...]

    @property
    def show(self) -> bool:
        return self.mode == SHOW

    @property
    def collapse(self) -> bool:
        return self.mode == COLLAPSE

    @property
    def hide(self) -> bool:
        return self.mode == HIDE


def display_for(post, user) -> Display:
    """The strictest of the viewer's choices over the post's categories. A post's author
    always sees their own words (collapsed at most) so they can check what they wrote."""
    codes = [code for code in (getattr(post, "cw_categories", None) or []) if code in CATEGORIES]
    if not codes:
        return Display(SHOW, (), ())
    prefs = _viewer_preferences(user)
    mode = max((prefs[code] for code in codes), key=_STRICTNESS.__getitem__)
    viewer_id = getattr(user, "pk", None)
    if mode == HIDE and viewer_id is not None and post.author_id == viewer_id:
        mode = COLLAPSE
    reasons = tuple(CATEGORIES[code] for code in codes if prefs[code] == mode)
    return Display(mode, tuple(labels(codes)), reasons)


def set_preferences(*, user, choices: dict[str, str]):
    """Save the member's choice per category (unknown categories or modes are refused)."""
    errors = {}
    cleaned = {}
    for code, mode in choices.items():
        if code not in CATEGORIES:
            errors.setdefault(f"cw_{code}", "Not a content-warning category.")
        elif mode not in MODES:
            errors[f"cw_{code}"] = "Choose show, collapse or hide."
        else:
            cleaned[code] = mode
    if errors:
        raise ValidationError(errors)
    user.cw_preferences = {**(user.cw_preferences or {}), **cleaned}
    user.save(update_fields=["cw_preferences"])
    return user
