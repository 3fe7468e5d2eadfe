"""Pure trust decisions: what a member has earned, and what their text may carry.

Nothing here touches the database or imports from ``forum``. The write path gathers the
facts (``Standing``: days since joining, published and removed posts and messages, recent
sanctions; the domain rules in force; the rendered HTML) and this module decides:

- ``level_of``: 0 new, 1 member, 2 regular, 3 trusted, from thresholds kept in settings
  (KINSHIP_TRUST_LEVELS). A recent sanction keeps a member at level 1 at most, and removed
  posts count against levels 2 and 3. Leaders and moderators are trusted in their groups.
- ``assess``: the trust verdict on one submission. A blocked domain refuses it, naming the
  domain (the author can take the link out and lose nothing else). A link from a member
  below the link level, a phone number or a "DM me" from a new member, and a new member's
  first few posts are *held*, not refused: most newcomers who share a link mean well (a
  meeting finder, a helpline), and holding lets a moderator or a trusted member say yes
  while a spammer's link never reaches anyone.
- ``combine``: the watched-phrase verdict and the trust verdict as one.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from html.parser import HTMLParser
from urllib.parse import urlsplit

from .policy import Outcome, Verdict, fold


class Level(IntEnum):
    NEW = 0
    MEMBER = 1
    REGULAR = 2
    TRUSTED = 3

    @property
    def label(self) -> str:
        return LEVEL_LABELS[self]


LEVEL_LABELS = {
    Level.NEW: "new member",
    Level.MEMBER: "member",
    Level.REGULAR: "regular",
    Level.TRUSTED: "trusted member",
}


@dataclass(frozen=True)
class Standing:
    """The facts a trust level is earned from."""

    days: float  # since joining
    published: int  # posts and messages that are visible (not held, not removed)
    removed: int = 0  # posts and messages moderators removed
    recent_sanctions: int = 0  # sanctions within KINSHIP_TRUST_SANCTION_DAYS
    moderates: bool = False  # a leader or moderator where the text goes


# Thresholds for each level above 0: days since joining, published posts and messages,
# and at most this many removed (missing: no limit). Settings may replace any of them.
DEFAULT_LEVELS: Mapping[int, Mapping[str, int]] = {
    1: {"days": 2, "posts": 3},
    2: {"days": 30, "posts": 30, "removed": 2},
    3: {"days": 90, "posts": 100, "removed": 0},
}


def level_of(standing: Standing, levels: Mapping[int, Mapping[str, int]] = DEFAULT_LEVELS) -> Level:
    """The highest level whose every threshold the standing meets (levels are cumulative)."""
    if standing.moderates:
        return Level.TRUSTED
    earned = Level.NEW
    for level in (Level.MEMBER, Level.REGULAR, Level.TRUSTED):
        need = levels.get(int(level), {})
        if standing.days < need.get("days", 0) or standing.published < need.get("posts", 0):
            break
        if "removed" in need and standing.removed > need["removed"]:
            break
        if level > Level.MEMBER and standing.recent_sanctions:
            break  # good standing: nobody earns more trust while recently sanctioned
        earned = level
    return earned


# --- links -------------------------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        values = dict(attrs)
        if "mention" in (values.get("class") or "").split():
            return  # a member's profile, not a link out
        if values.get("href"):
            self.hrefs.append(values["href"] or "")


def link_hosts(html: str) -> list[str]:
    """Lower-cased host names the rendered HTML links to, in order, once each.

    forum.sanitize linkifies bare addresses ("example.com", "www.example.com") when it
    renders, so the rendered HTML is where every link is found, whatever its spelling in
    the source. Links within the site (relative addresses) are not links out; an e-mail
    address counts as a link to its domain."""
    parser = _Links()
    parser.feed(html)
    hosts: dict[str, None] = {}
    for href in parser.hrefs:
        if href.lower().startswith("mailto:"):
            host = href.rsplit("@", 1)[-1]
        else:
            try:
                host = urlsplit(href).hostname or ""
            except ValueError:
                continue
        host = host.strip().strip(".").lower()
        if host:
            hosts.setdefault(host, None)
    return list(hosts)


def normalise_domain(value: str) -> str:
    """A domain as stored and compared: lower case, no scheme, path, port or "www."."""
    value = value.strip().lower()
    if "//" not in value:
        value = "//" + value
    try:
        host = urlsplit(value).hostname or ""
    except ValueError:
        return ""
    host = host.strip(".")
    return host[4:] if host.startswith("www.") else host


DOMAIN_RE = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}")


def validate_domain(domain: str) -> str | None:
    """Why a (normalised) domain cannot be a rule, or None."""
    if not domain or not DOMAIN_RE.fullmatch(domain):
        return "Enter a domain such as example.com (no spaces; subdomains are included)."
    return None


def matching_domain(host: str, domains: Iterable[str]) -> str | None:
    """The rule's domain that covers ``host`` (the domain itself or a subdomain of it)."""
    for domain in domains:
        if host == domain or host.endswith("." + domain):
            return domain
    return None


@dataclass(frozen=True)
class DomainRules:
    blocked: frozenset[str] = frozenset()
    allowed: frozenset[str] = frozenset()


NO_DOMAIN_RULES = DomainRules()

# --- contact details ---------------------------------------------------------------------------

# Nine to fifteen digits with spaces, dots, dashes or brackets between them: a phone number,
# not a date ("2024-01-15" has eight digits) or a count of days.
PHONE_RE = re.compile(r"(?<![\w+])\+?\(?\d(?:[\s().\-]{0,2}\d){8,14}(?!\w)")
# Asking to take the conversation somewhere nobody else can see it, as spammers and
# predators do; matched on folded text (see policy.fold).
SOLICIT_RE = re.compile(
    r"\b(?:"
    r"(?:dm|pm|inbox|msg|whats\s?app|telegram|snap|kik)\s+me"
    r"|(?:message|text|contact|reach|email|e-mail|call|talk\s+to)\s+me\s+"
    r"(?:privately|in\s+private|directly|off[\s-]?(?:site|here|line))"
    r"|send\s+me\s+an?\s+(?:dm|pm|private\s+message)"
    r"|my\s+(?:whats\s?app|telegram|snapchat|kik|number)\s+is"
    r")\b"
)


# --- the verdict -------------------------------------------------------------------------------

NEW_MEMBER_RULE = "New member: their first posts wait for approval"
LINK_RULE = "Link from a {level} ({hosts})"
PHONE_RULE = "Phone number from a new member"
SOLICIT_RULE = "Asks for private contact (a new member)"


@dataclass(frozen=True)
class Limits:
    """The trust settings in force, as plain values."""

    link_level: int = 1  # members below this level have links held (allowlisted ones pass)
    new_member_holds: int = 2  # a new member's first N published items wait for approval
    mentions: Mapping[int, int] = field(default_factory=lambda: {0: 2, 1: 5, 2: 10, 3: 10})


@dataclass(frozen=True)
class Facts:
    level: Level
    published: int
    text: str
    html: str
    mentions: int = 0
    first_post: bool = True  # False for an edit: nothing new to hold as a first post
    domains: DomainRules = NO_DOMAIN_RULES
    trust_rules: bool = True  # False: only the domain blocklist applies
    links_approved: bool = False  # a leader let this member past the link threshold


def assess(facts: Facts, limits: Limits = Limits()) -> Verdict:
    """The trust verdict: REJECT (a blocked domain, too many mentions), HOLD (why, in
    ``rule``, for moderators), or PUBLISH."""
    hosts = link_hosts(facts.html)
    for host in hosts:
        domain = matching_domain(host, facts.domains.blocked)
        if domain is not None and matching_domain(host, facts.domains.allowed) is None:
            return Verdict(
                Outcome.REJECT,
                reason=f"Links to {domain} are not allowed here. Please take the link out.",
                field="body",
                rule=f"Blocked domain {domain}",
            )
    if not facts.trust_rules:
        return Verdict(Outcome.PUBLISH)
    allowed_mentions = limits.mentions.get(int(facts.level))
    if allowed_mentions is not None and facts.mentions > allowed_mentions:
        return Verdict(
            Outcome.REJECT,
            reason=f"As a {facts.level.label} you can mention up to {allowed_mentions} "
            f"{'person' if allowed_mentions == 1 else 'people'} in one post; this mentions "
            f"{facts.mentions}. Please mention fewer.",
            field="body",
        )
    reasons: list[str] = []
    if facts.level < limits.link_level and not facts.links_approved:
        outside = [h for h in hosts if matching_domain(h, facts.domains.allowed) is None]
        if outside:
            reasons.append(LINK_RULE.format(level=facts.level.label, hosts=", ".join(outside)))
    if facts.level == Level.NEW:
        folded = fold(facts.text)[0]
        if PHONE_RE.search(facts.text):
            reasons.append(PHONE_RULE)
        if SOLICIT_RE.search(folded):
            reasons.append(SOLICIT_RULE)
        if facts.first_post and facts.published < limits.new_member_holds:
            reasons.append(NEW_MEMBER_RULE)
    if reasons:
        return Verdict(Outcome.HOLD, rule="; ".join(reasons))
    return Verdict(Outcome.PUBLISH)


def combine(watched: Verdict, trusted: Verdict) -> Verdict:
    """One verdict from the watched phrases' and trust's (neither rejected): a trust hold
    holds, keeping any censoring, and both reasons reach moderators."""
    if not trusted.held:
        return watched
    rule = "; ".join(part for part in (watched.rule, trusted.rule) if part)
    return Verdict(
        Outcome.HOLD, text=watched.text, title=watched.title, rule=rule, reason=watched.reason
    )
