"""Fill a development database with demo accounts, groups and conversations.

``make run`` calls this on every start, so it only ever adds what is missing: accounts
are looked up by handle, groups by slug and threads by title within their group. All
member text goes through ``forum.publishing``, rendered and sanitised like real posts.
"""

import re
import textwrap
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings
from django.urls import reverse
from django.utils import timezone

from forum import engagement, live, memberships, mentoring, publishing
from forum.models import (
    CheckIn,
    Goal,
    LiveSession,
    Membership,
    MentorApproval,
    MentorProfile,
    Notification,
    Post,
    Reaction,
    SessionScript,
    Subscription,
    SupportGroup,
    Thread,
    User,
)
from moderation import actions
from moderation.models import FlagReason

# Published on purpose (README, `make run` output): these accounts exist only for demos.
DEMO_PASSWORD = "kinship-demo-2026"  # noqa: S105

MEMBER, MEMBER2, LEADER, MODERATOR, ADMIN = (
    "demo-member",
    "demo-member2",
    "demo-leader",
    "demo-moderator",
    "demo-admin",
)
# A newcomer whose referral spam (with dangerous detox advice) waits in the review queue.
SPAMMER = "fresh-start-deals"
SPAM_GROUP = "tools-for-change"
SPAM_BODY = (
    "Struggling? Our private detox clinic gets you clean in 3 days, no meds needed, "
    "you can stop everything at once. DM me for a discount code!"
)
# Stands for the crisis page's address, resolved when the command runs.
HELP_LINK = "(HELP_URL)"

_BLOCK_START = re.compile(r"^(?:[-*+] |\d+[.)] |\||>|#)")


def md(text: str) -> str:
    """Dedent and unwrap Markdown written for this file.

    The forum renders every newline as <br>, so wrapped lines of a paragraph or list
    item are joined back into one; list items, table rows, quotes and headings keep
    their own line.
    """
    lines: list[str] = []
    for raw in textwrap.dedent(text).strip().splitlines():
        line = raw.strip()
        if line and lines and lines[-1] and not _BLOCK_START.match(line):
            lines[-1] = f"{lines[-1]} {line}"
        else:
            lines.append(line)
    return "\n".join(lines)


@dataclass(frozen=True)
class AccountSpec:
    handle: str
    bio: str = ""
    recovery_days: int | None = None  # sober for this many days when first seeded
    recovery_visibility: str = User.Visibility.ONLY_ME
    joined_days_ago: int = 60
    is_site_moderator: bool = False
    is_admin: bool = False


@dataclass(frozen=True)
class GroupSpec:
    slug: str
    name: str
    kind: str
    visibility: str
    join_policy: str
    description: str
    guidelines: str  # the group's own rules, listed before the shared ones
    members: tuple[str, ...]  # plain members; demo-admin and demo-leader lead every group


@dataclass(frozen=True)
class Reply:
    author: str
    body: str
    replies: tuple["Reply", ...] = ()
    content_warning: str = ""


def reply(author: str, body: str, *replies: Reply, cw: str = "") -> Reply:
    return Reply(author, md(body), replies, cw)


@dataclass(frozen=True)
class ThreadSpec:
    group: str
    author: str
    title: str
    body: str
    days_ago: int
    at: str  # local time of day the thread was started, "HH:MM"
    replies: tuple[Reply, ...] = ()
    content_warning: str = ""


ACCOUNTS = (
    AccountSpec(
        MEMBER,
        bio="Taking it one day at a time. Long walks, bad puns and far too much tea.",
        recovery_days=31,
        recovery_visibility=User.Visibility.MY_GROUPS,
        joined_days_ago=45,
    ),
    AccountSpec(
        MEMBER2,
        bio="A bit over two years sober. Happy to share what worked for me, and what didn't.",
        recovery_days=790,
        recovery_visibility=User.Visibility.EVERYONE,
        joined_days_ago=70,
    ),
    AccountSpec(
        LEADER,
        bio=(
            "Volunteer peer facilitator, nine years in recovery. I'm not a clinician, "
            "just someone who has been there."
        ),
        recovery_days=9 * 365 + 40,
        recovery_visibility=User.Visibility.EVERYONE,
        joined_days_ago=85,
    ),
    AccountSpec(
        MODERATOR,
        bio="Site moderator. If something here worries you, flag it and I'll take a look.",
        joined_days_ago=88,
        is_site_moderator=True,
    ),
    AccountSpec(ADMIN, bio="Keeps the lights on at Kinship.", joined_days_ago=90, is_admin=True),
    AccountSpec(SPAMMER, joined_days_ago=1),
)

COMMON_GUIDELINES = md(
    f"""
    - **What's shared here stays here.** Don't copy posts or screenshots outside the group.
    - **Handles, not real names**, yours or anyone else's. Leave out workplaces, towns and
      other details that could identify someone.
    - **Speak from your own experience.** "What helped me was..." lands better than
      "You should...".
    - **No medical advice.** We are peers, not clinicians. Questions about detox,
      withdrawal or medication belong with a doctor, pharmacist or treatment service:
      stopping some substances suddenly can be dangerous.
    - **Be kind.** Every path to recovery is welcome, including ones that aren't yours.
      No shaming about slips or relapses.
    - **Add a content warning** when you describe using, relapse, self-harm or trauma in
      detail.
    - **In crisis?** This forum is not an emergency service. If you might hurt yourself or
      someone else, open [Need help now?]{HELP_LINK} for a crisis line, or call your local
      emergency number.

    Leaders and moderators may hide posts that break these guidelines, and will tell you why.
    """
)

GROUPS = (
    GroupSpec(
        slug="daily-reflections",
        name="Daily Reflections",
        kind=SupportGroup.Kind.MUTUAL_AID,
        visibility=SupportGroup.Visibility.PUBLIC,
        join_policy=SupportGroup.JoinPolicy.OPEN,
        description="""
            A 12-step style circle for sharing where you are today: a reflection, a reading
            that stayed with you, a worry or a small win. Newcomers and old-timers are equally
            welcome. You don't need to be working the steps, or have any particular amount of
            time, to belong here.

            **Just arrived?** Say hello in any thread. Reading without posting is fine too.
            """,
        guidelines="""
            - **Keep the focus on recovery.** Outside issues are welcome when they touch your
              recovery; debates about them belong elsewhere.
            """,
        members=(MEMBER, MEMBER2),
    ),
    GroupSpec(
        slug="tools-for-change",
        name="Tools for Change",
        kind=SupportGroup.Kind.SMART,
        visibility=SupportGroup.Visibility.PUBLIC,
        join_policy=SupportGroup.JoinPolicy.OPEN,
        description="""
            A SMART-style group for changing your relationship with alcohol, drugs or other
            behaviours using practical, evidence-informed tools. We work through the four
            points (building motivation, coping with urges, managing thoughts, feelings and
            behaviours, and living a balanced life) with tools such as the cost-benefit
            analysis, the ABC worksheet and urge surfing.

            Whether your goal is abstinence or you are still deciding, you're welcome. Bring a
            worksheet, a question or a week's worth of progress.
            """,
        guidelines="""
            - **Share tools, not verdicts.** Show how a tool worked for you and let others
              decide whether it fits them.
            """,
        members=(MEMBER, MEMBER2),
    ),
    GroupSpec(
        slug="women-in-recovery",
        name="Women in Recovery",
        kind=SupportGroup.Kind.SPECIALISED,
        visibility=SupportGroup.Visibility.PRIVATE,
        join_policy=SupportGroup.JoinPolicy.REQUEST,
        description="""
            A private space for women in recovery (trans women very much included) to talk
            about what is easier to say among women: parenting, relationships, safety, bodies,
            shame and strength.

            Only members can see this group and its posts. A leader approves each request to
            join.
            """,
        guidelines="""
            - **This group is private.** Never confirm to anyone outside it who is a member.
            - **Safety first.** If someone in your life is making you unsafe, a leader can help
              you find specialist support.
            """,
        members=(MEMBER,),
    ),
    GroupSpec(
        slug="rainbow-recovery",
        name="Rainbow Recovery",
        kind=SupportGroup.Kind.SPECIALISED,
        visibility=SupportGroup.Visibility.PUBLIC,
        join_policy=SupportGroup.JoinPolicy.OPEN,
        description="""
            Recovery support by and for LGBTQ+ people and anyone questioning. Talk about
            finding sober community when so much queer social life happens in bars, coming
            out, chosen family, dating sober and carrying the extra weight of stigma.

            Allies are welcome to read; please let LGBTQ+ members lead the conversation.
            """,
        guidelines="""
            - **Respect names and pronouns.** Use the ones people give you. Nobody's identity
              is up for debate here.
            - **This group is public:** anyone can read it. Share only what you are comfortable
              with being seen.
            """,
        members=(MEMBER, MEMBER2),
    ),
    GroupSpec(
        slug="family-and-friends",
        name="Family & Friends",
        kind=SupportGroup.Kind.FAMILY,
        visibility=SupportGroup.Visibility.PUBLIC,
        join_policy=SupportGroup.JoinPolicy.OPEN,
        description="""
            For partners, parents, children, siblings and friends of someone living with
            addiction, whether they are using, in recovery or somewhere in between. Talk
            about boundaries, worry, anger, hope and looking after yourself.

            People in recovery are welcome too: hearing from the other side often helps.
            """,
        guidelines="""
            - **Tell your own story.** Leave out details that identify the person you are
              worried about; they haven't chosen to be discussed here.
            """,
        members=(MEMBER, MEMBER2),
    ),
)

THREADS = (
    # Daily Reflections
    ThreadSpec(
        group="daily-reflections",
        author=MEMBER,
        title="Cravings hit hardest at night. What do you do at 11pm?",
        days_ago=26,
        at="23:10",
        body="""
            Days are mostly OK now. I keep busy at work and go to a lunchtime meeting a couple
            of times a week. But around 11pm, when the house goes quiet, the craving comes in
            like a wave. That used to be when I'd pour the first "just one".

            Last night I sat in the car outside the late-night shop for twenty minutes before I
            drove home. I didn't go in, but it scared me.

            What do you all do in those late hours?
            """,
        replies=(
            reply(
                MEMBER2,
                """
                I'm glad you drove home. Twenty minutes in the car and *not* going in is
                recovery working, even if it didn't feel like it.

                Nights were the worst for me in the first few months too. What helped was
                deciding in the afternoon what I'd do at night, so I wasn't making decisions
                at the exact moment my brain was worst at them.
                """,
                reply(
                    MEMBER,
                    "Deciding in advance makes sense. What was actually on your plan?",
                    reply(
                        MEMBER2,
                        """
                        Mine was boring on purpose:

                        1. Eat a proper dinner (I was running on empty most nights).
                        2. Hot shower, then straight into pyjamas. Much harder to go out once
                           you're in them.
                        3. Herbal tea and one episode of something gentle.
                        4. Text one person, even just "still here".
                        5. If it's still loud after all that, post here or ring a meeting line.

                        It didn't fix everything, but it gave the evening a shape.
                        """,
                        reply(
                            MEMBER,
                            """
                            The pyjamas rule made me laugh, but it's true. Writing my own list
                            tonight. Thank you.
                            """,
                        ),
                    ),
                ),
            ),
            reply(
                LEADER,
                f"""
                Welcome to the night shift; a lot of us have worked it. One thing worth checking
                when it hits is **HALT**: am I Hungry, Angry, Lonely or Tired? At 11pm it's
                usually at least two of those.

                Please keep posting here at night, someone is usually around. And if a night
                ever feels unsafe rather than just hard, [Need help now?]{HELP_LINK} lists
                lines that answer at any hour.
                """,
                reply(
                    MEMBER,
                    """
                    Hungry and tired, honestly. I skip dinner more often than I'd like to admit.
                    I'll start there.
                    """,
                ),
            ),
        ),
    ),
    ThreadSpec(
        group="daily-reflections",
        author=MEMBER2,
        title="A close call at a work dinner",
        content_warning="a strong craving and a near-relapse, described in detail",
        days_ago=16,
        at="21:35",
        body="""
            Posting this so I don't keep it to myself.

            Work dinner on Friday. Someone ordered wine for the table and the waiter filled my
            glass before I could say anything. I sat looking at it for most of the starter. I
            could smell it. My head was already writing the story: *it's been two years, one
            glass at a work thing is basically nothing, nobody here knows.*

            I didn't drink it. I went to the bathroom, texted my sponsor, and when I got back I
            asked the waiter to take it away and bring me a lime and soda. But I'm still shaken
            that it got so close after all this time.
            """,
        replies=(
            reply(
                LEADER,
                """
                Thank you for bringing it here instead of carrying it alone. That is exactly the
                moment recovery is for: the thought showed up, and you did the next right thing
                anyway. Leaving the table, texting your sponsor, sending the glass back: three
                good decisions under pressure.

                Feeling shaken afterwards doesn't mean you're failing. It means you care about
                what you've built.
                """,
                reply(
                    MEMBER2,
                    """
                    > the thought showed up, and you did the next right thing anyway

                    Writing that one down.
                    """,
                ),
            ),
            reply(
                MEMBER,
                """
                This helps me more than you know. I keep assuming the pull will be gone by the
                time I have a couple of years. It's oddly reassuring that it still shows up and
                that you still handled it.
                """,
                reply(
                    MEMBER2,
                    """
                    It shows up much less often, and much more quietly. Friday was the loudest
                    it's been in over a year. It does get easier; it just doesn't disappear on a
                    schedule.
                    """,
                ),
            ),
        ),
    ),
    ThreadSpec(
        group="daily-reflections",
        author=MEMBER2,
        title="Going back to in-person meetings after a move: nerves",
        days_ago=12,
        at="18:20",
        body="""
            I've been going to meetings for over two years, so I didn't expect this, but I
            moved to a new city last month and I'm anxious about walking into a room where
            nobody knows me. At home I had my seat, my mug and people who'd notice if I wasn't
            there.

            Online meetings have kept me going, but I know I need people in person. Has anyone
            else found this hard? How did you get through the first one?
            """,
        replies=(
            reply(
                MEMBER,
                """
                I only went to my first meeting ever a month ago, so I can't claim much
                experience, but what got me through the door was telling myself I only had to
                stay ten minutes. I stayed for the whole thing.
                """,
                reply(
                    MEMBER2,
                    """
                    Ten minutes is a deal I can make with myself. There's one on Thursday
                    evening near my new place, so I'll try it.
                    """,
                ),
            ),
            reply(
                LEADER,
                """
                Very normal. A move is one of the most common times to feel unsteady, even with
                years behind you. What has helped people I know: arrive ten minutes early and
                offer to set out the chairs (an instant job and an instant conversation), and
                mention in the sharing that you've just moved. Groups usually love a newcomer
                from out of town.
                """,
                reply(
                    MEMBER2,
                    "Setting out chairs, I like that. It gives my hands something to do.",
                    reply(
                        LEADER,
                        "Exactly. Let us know how Thursday goes.",
                        reply(
                            MEMBER2,
                            """
                            Update: I went! Someone noticed my accent and we ended up getting
                            tea afterwards. Still nervous, but a lot less.
                            """,
                        ),
                    ),
                ),
            ),
        ),
    ),
    ThreadSpec(
        group="daily-reflections",
        author=MEMBER,
        title="30 days today",
        days_ago=1,
        at="07:45",
        body="""
            Thirty days. I didn't think I'd get to write that.

            It hasn't been pretty: I've cried in a supermarket, slept through two alarms and
            been short with people I love. But I've woken up every day for a month remembering
            the night before, and that's new.

            Thank you to everyone in this group, and especially to @demo-leader for answering
            my message at 2am in week one. You probably don't remember it. I do.
            """,
        replies=(
            reply(
                LEADER,
                """
                I do remember, and I'm so glad you sent it. Thirty days is real. Not "only"
                thirty: real. Be proud of yourself today.
                """,
                reply(
                    MEMBER,
                    """
                    I'm trying to let myself be proud without immediately worrying about day 31.
                    """,
                    reply(LEADER, "Day 31 can worry about itself. Today's job is just today."),
                ),
            ),
            reply(
                MEMBER2,
                """
                Crying in a supermarket is practically a rite of passage. Congratulations! The
                mornings only get better from here.
                """,
            ),
            reply(
                ADMIN,
                """
                Congratulations from all of us at Kinship. Posts like this are why this place
                exists.
                """,
            ),
        ),
    ),
    # Tools for Change
    ThreadSpec(
        group="tools-for-change",
        author=MEMBER,
        title="Cost-benefit analysis: my honest attempt",
        days_ago=19,
        at="20:05",
        body="""
            @demo-leader suggested a cost-benefit analysis, so here's mine. It was harder to
            fill in than I expected, especially the first row.

            | | Benefits | Costs |
            |---|---|---|
            | **Drinking** | Switches my brain off after work. Feels like a reward. Easier at parties. | Sleep is wrecked. Money. Lying to my sister. Anxiety every morning. |
            | **Not drinking** | Mornings. Remembering conversations. Saving a real chunk of my pay. | Evenings feel long. Awkward at parties. Having to actually feel things. |

            Writing down the benefits of drinking felt wrong, like I was defending it. Is that
            normal?
            """,  # noqa: E501 - a Markdown table row must stay on one line
        replies=(
            reply(
                LEADER,
                """
                Very normal, and a sign you were honest. A CBA only works if the benefits of
                using are real on paper, because they're real in your head at 11pm. If we
                pretend they don't exist, they ambush us.

                One thing to try next: mark each item **short-term** or **long-term**. Most
                people find the benefits of using are nearly all short-term and the costs
                long-term.
                """,
                reply(
                    MEMBER,
                    """
                    Just did that. Every benefit of drinking is short-term. Every cost is
                    long-term except "awkward at parties". That's quite something to see.
                    """,
                    reply(
                        LEADER,
                        """
                        That's the tool doing its job. Keep the sheet where you can see it; some
                        people take a photo and look at it when an urge starts.
                        """,
                        reply(MEMBER, "It's now my phone's lock screen. Subtle, I know."),
                    ),
                ),
            ),
            reply(
                MEMBER2,
                """
                "Having to actually feel things" in the costs column is so honest. It was on
                mine too. For what it's worth, it moved over to the benefits side for me after
                about a year.
                """,
            ),
        ),
    ),
    ThreadSpec(
        group="tools-for-change",
        author=MEMBER2,
        title="Urge surfing: does it actually work for you?",
        days_ago=9,
        at="13:30",
        body="""
            I've read about urge surfing: noticing an urge like a wave, watching it rise, peak
            and fall instead of fighting it or giving in. On paper it makes sense. In practice I
            find it hard to just *watch* it without my brain starting to bargain.

            Does anyone use it regularly? Any tips for actually doing it?
            """,
        replies=(
            reply(
                LEADER,
                """
                I use it, and it took practice. What helped me:

                - **Name it and rate it:** "This is an urge. It's a 7." Rating it gives your
                  mind a job other than bargaining.
                - **Set a timer for fifteen minutes.** Most urges peak and start to fade well
                  inside that.
                - **Notice where it sits in your body:** jaw, chest, hands. Describe it as if
                  explaining it to someone else.

                The bargaining will still happen. You don't have to win the argument; let it
                talk while you watch the clock.
                """,
                reply(
                    MEMBER2,
                    """
                    "You don't have to win the argument" is the bit I was missing. I've been
                    trying to out-debate it.
                    """,
                    reply(
                        MEMBER,
                        """
                        Same. I tried the rating last night: it started at an 8 and was a 4 by the
                        time the timer went off. I was honestly surprised.
                        """,
                    ),
                ),
            ),
            reply(
                MEMBER,
                """
                I pair it with DISARM and give the urge a silly name, so it feels less like *me*
                wanting it. Mine is called Gerald. Gerald is very persuasive, but he is not in
                charge.
                """,
                reply(MEMBER2, "Gerald! I'm naming mine too."),
            ),
        ),
    ),
    ThreadSpec(
        group="tools-for-change",
        author=LEADER,
        title="Weekly balance check-in: one thing you did just for living",
        days_ago=4,
        at="09:00",
        body="""
            Point four, living a balanced life, is the one we talk about least. So here's a
            simple check-in:

            **What's one thing you did this week that wasn't about not using, just about
            living?**

            Mine: I went back to the allotment for the first time since spring and pulled up a
            frankly embarrassing number of weeds.
            """,
        replies=(
            reply(
                MEMBER,
                """
                Cooked a proper meal from a recipe instead of eating toast over the sink. Only
                pasta, but I set the table.
                """,
                reply(LEADER, "Setting the table counts double."),
            ),
            reply(
                MEMBER2,
                """
                Signed up for a Saturday-morning walking group. The first walk is tomorrow.
                Slightly terrified, mostly excited.
                """,
            ),
        ),
    ),
    # Women in Recovery (private)
    ThreadSpec(
        group="women-in-recovery",
        author=LEADER,
        title="Feeling safe at mixed meetings",
        days_ago=22,
        at="17:00",
        body="""
            A few women have told me recently that they felt uncomfortable at some mixed
            meetings: unwanted attention afterwards, or someone offering to "sponsor" them who
            seemed more interested in other things.

            Let's share what helps. From me: it's completely fine to ask only a woman to
            sponsor you and to say no to anyone else. You can leave straight after the close.
            And you can tell the meeting's secretary if something feels off; a good group
            wants to know.
            """,
        replies=(
            reply(
                MEMBER,
                """
                This happened to me in my second week and I nearly stopped going. I didn't know
                I was allowed to say no to someone offering help. I found a women's meeting on
                Tuesdays instead and it has been completely different.
                """,
                reply(
                    LEADER,
                    """
                    I'm really sorry that happened, and really glad you found the Tuesday
                    meeting. You are always allowed to say no.
                    """,
                    reply(
                        MEMBER,
                        """
                        It's part of why this group matters so much to me. Thank you for
                        starting the thread.
                        """,
                    ),
                ),
            ),
        ),
    ),
    ThreadSpec(
        group="women-in-recovery",
        author=MEMBER,
        title="Parenting in early recovery: the guilt",
        days_ago=15,
        at="21:40",
        body="""
            I have two kids under ten. I told myself they didn't see the worst of it, but kids
            notice everything. Now that I'm sober I keep replaying things: the school play I
            watched hungover, the bedtimes I rushed so I could get back to the fridge.

            Some days the guilt is heavier than the craving. How do other mums carry this
            without drowning in it or pretending it didn't happen?
            """,
        replies=(
            reply(
                LEADER,
                """
                I could have written this nine years ago. What helped me was separating guilt
                from shame. Guilt says *I did something harmful*; shame says *I am something
                harmful*. Guilt can be useful because it points at what to repair. Shame just
                keeps us stuck, and for a lot of us it's a fast road back to using.

                With kids, the repair is mostly living amends: turning up, being present at
                bedtime, keeping small promises. They notice that too.
                """,
                reply(
                    MEMBER,
                    "Guilt points at repair, shame keeps you stuck. I needed that today.",
                    reply(
                        LEADER,
                        """
                        And you're already making the repair by being here and being sober for
                        them. Be as gentle with yourself as you'd be with a friend who said this.
                        """,
                    ),
                ),
            ),
        ),
    ),
    ThreadSpec(
        group="women-in-recovery",
        author=LEADER,
        title="Small wins this week",
        days_ago=2,
        at="08:30",
        body="""
            Let's share small wins; nothing is too small. Mine: I said no to an extra
            commitment at work without writing a three-paragraph apology.
            """,
        replies=(
            reply(
                MEMBER,
                """
                I went to the dentist, which I'd avoided for three years because I was ashamed
                of how much I'd let slide. She was kind. No lecture.
                """,
                reply(LEADER, "That took real courage. Well done you."),
            ),
        ),
    ),
    # Rainbow Recovery
    ThreadSpec(
        group="rainbow-recovery",
        author=MEMBER2,
        title="Sober queer spaces that aren't bars?",
        days_ago=17,
        at="19:15",
        body="""
            Most of the queer community I found in my twenties was in bars and clubs. Now I'm
            sober I love my life, but I miss being in a room full of people like me.

            What have you found? Sober socials, sports clubs, book groups, anything.
            """,
        replies=(
            reply(
                MEMBER,
                """
                The LGBTQ+ centre near me runs a monthly board game night with no alcohol. It's
                gloriously nerdy and nobody asks why you're not drinking.
                """,
                reply(MEMBER2, "Board games and no questions sounds perfect."),
            ),
            reply(
                LEADER,
                """
                Some cities have LGBTQ+ recovery meetings, and many run socials afterwards.
                Queer choirs and running clubs have been great for people here too. And
                alcohol-free Pride events get more common every year.
                """,
                reply(
                    MEMBER2,
                    "A choir! I haven't sung since school. That's oddly appealing.",
                    reply(MEMBER, "Do it. I want a full report."),
                ),
            ),
        ),
    ),
    ThreadSpec(
        group="rainbow-recovery",
        author=MEMBER,
        title="Coming out and getting sober in the same year",
        content_warning="family rejection",
        days_ago=7,
        at="22:30",
        body="""
            This year I came out to my family and stopped drinking, about four months apart.
            I'm starting to see they were connected: a lot of my drinking was about not being
            able to be myself.

            My parents have been mixed. My mum is trying. My dad has barely spoken to me since.
            Some nights that's the thing that makes me want a drink most.

            I'm not really asking for advice. I just wanted to say it somewhere people would
            get it.
            """,
        replies=(
            reply(
                MEMBER2,
                """
                I get it. Getting sober and coming out are both about stopping the hiding, so
                it makes sense they arrived together. I'm sorry about your dad. That's a real
                loss, and it's OK to grieve it while he's still here.
                """,
                reply(
                    MEMBER,
                    """
                    "Grieve it while he's still here" is exactly what it feels like. I didn't
                    have words for it.
                    """,
                ),
            ),
            reply(
                LEADER,
                f"""
                Thank you for trusting us with this. Keep leaning on the people who are showing
                up: your mum, this group, your meetings. Chosen family is real family. And if a
                night gets very dark, [Need help now?]{HELP_LINK} has lines that answer at any
                hour.
                """,
            ),
        ),
    ),
    ThreadSpec(
        group="rainbow-recovery",
        author=MEMBER2,
        title="Dating sober: when do you tell them?",
        days_ago=3,
        at="21:05",
        body="""
            First dates around here are almost always drinks. I've started suggesting coffee or
            a walk instead, but then comes the question of when to mention I'm in recovery.
            First message? First date? Third? What has worked for you?
            """,
        replies=(
            reply(MEMBER, "Much too early for me to be dating, but I'm taking notes."),
            reply(
                LEADER,
                """
                There's no rule, but many people find saying it early and lightly works: "I
                don't drink, so how about coffee?" You don't owe anyone your whole story on a
                first date. And anyone who makes a fuss about you not drinking has told you
                something useful about themselves.
                """,
                reply(MEMBER2, "That last line made me laugh. Coffee it is."),
            ),
        ),
    ),
    # Family & Friends
    ThreadSpec(
        group="family-and-friends",
        author=MEMBER2,
        title="Setting boundaries with my brother without shutting him out",
        days_ago=24,
        at="20:50",
        body="""
            My younger brother is drinking heavily again. He's asked to borrow money three
            times this month, and last week he turned up at my door at midnight. I love him,
            and being in recovery myself I know what's going on in his head. But I also have to
            protect my own sobriety and my home.

            How do you hold a boundary with someone you love without it feeling like
            abandoning them?
            """,
        replies=(
            reply(
                LEADER,
                """
                One of the hardest questions in this group. A framing that helps many families:
                a boundary is about what *you* will do, not what *he* must do. "I won't lend
                money, but I'll gladly buy you groceries." "I can't let you in when you've been
                drinking, but ring me tomorrow and I'll pick up."

                That way the door to *him* stays open while the door to the drinking stays shut.
                """,
                reply(
                    MEMBER2,
                    """
                    The door to him open, the door to the drinking shut. That's the distinction
                    I couldn't find.
                    """,
                    reply(
                        LEADER,
                        """
                        Say it kindly, say it once, then let your actions repeat it. Expect him
                        to test it; that doesn't mean it isn't working.
                        """,
                    ),
                ),
            ),
            reply(
                MEMBER,
                """
                Speaking from the other side: my sister did exactly this with me. At the time I
                was furious. Looking back, her saying no to money but yes to Sunday dinner every
                week was one of the reasons I eventually got help. It wasn't abandonment, even
                when I told her it was.
                """,
                reply(
                    MEMBER2,
                    """
                    That means a lot, thank you. It's hard to trust it's right when he's upset
                    with me.
                    """,
                ),
            ),
            reply(
                MEMBER2,
                """
                Update: he rang sober this morning and said he wants to stop. He's planning to
                just quit on his own, starting tomorrow.
                """,
                reply(
                    LEADER,
                    """
                    That's hopeful news. One important thing: after a long stretch of heavy
                    drinking, stopping suddenly can be medically dangerous. Please encourage him
                    to talk to a doctor or a local alcohol service *before* he stops, so they can
                    help him do it safely. None of us here can advise on that, but it's a phone
                    call worth making.
                    """,
                    reply(
                        MEMBER2,
                        """
                        I had no idea. He has agreed to call his GP in the morning and I'm going
                        with him.
                        """,
                    ),
                ),
            ),
        ),
    ),
    ThreadSpec(
        group="family-and-friends",
        author=LEADER,
        title="What helped your family most when you got sober?",
        days_ago=10,
        at="10:15",
        body="""
            A question for the people in recovery who read this group, because families here
            so often ask *what can I actually do?*

            Looking back, what did someone close to you do, or stop doing, that genuinely
            helped?
            """,
        replies=(
            reply(
                MEMBER,
                """
                My mum stopped asking "have you been drinking?" every time she called and
                started asking "how was your day?" I could tell she was still worried, but I
                could talk to her without feeling like a suspect.
                """,
            ),
            reply(
                MEMBER2,
                """
                My dad found a family group of his own. I hadn't realised how much he'd been
                carrying until he had somewhere to put it down. It made us both better at
                talking.
                """,
                reply(
                    LEADER,
                    """
                    This comes up again and again: family members getting support for
                    *themselves* helps everyone. It's a big part of why this group exists.
                    """,
                ),
            ),
        ),
    ),
    ThreadSpec(
        group="family-and-friends",
        author=MEMBER,
        title="Getting through family gatherings sober",
        days_ago=5,
        at="16:40",
        body="""
            My cousin's wedding is in three weeks: open bar, relatives I haven't seen since
            before I got sober, and at least one uncle who thinks "one won't hurt".

            Families: what can a relative do to make a day like that easier? And people in
            recovery: what's your plan for events like this?
            """,
        replies=(
            reply(
                MEMBER2,
                """
                My plan is always the same: my own way home, a drink in my hand the whole time
                (soda and lime, nobody asks), one person I can text, and permission to leave
                after the speeches.
                """,
                reply(MEMBER, "Permission to leave. I hadn't thought of giving myself that."),
            ),
            reply(
                LEADER,
                """
                From the family side: tell one relative you trust before the day. Someone who
                will steer the uncle away and check in on you during the evening makes a huge
                difference.
                """,
            ),
        ),
    ),
)

# Minutes between consecutive posts of a thread, cycled so threads don't all look alike.
REPLY_GAPS_MINUTES = (38, 95, 22, 170, 61, 240, 14, 83, 125, 47, 9, 205)
GROUPS_CREATED_DAYS_AGO = 60


# A few lines in each public group's General room, so the chat is not empty on day one.
CHAT = {
    "daily-reflections": (
        (
            "demo-leader",
            "Good morning, everyone. Checking in: one day at a time, and today is a good one.",
        ),
        ("demo-member", "Morning! Slept through the night for the first time in a while."),
        ("demo-member2", "That's huge. Rest is recovery too."),
        ("demo-member", "Thank you. Meeting at 7 tonight, anyone else going?"),
    ),
    "tools-for-change": (
        (
            "demo-member2",
            "Tried **urge surfing** last night. The craving peaked and passed in about 15 minutes.",
        ),
        ("demo-leader", "Well done. Noticing it rise and fall is the whole skill."),
    ),
}


# Live sessions in this group: its readings, a weekly series, and one running now.
SESSION_GROUP = "daily-reflections"
OPENING_READING, CLOSING_READING = "Preamble", "Closing"
SCRIPTS = (
    (
        OPENING_READING,
        """
        Welcome to this Daily Reflections meeting. We are people in recovery who share our
        experience, strength and hope with each other, so that we may stay well today and help
        others who are finding their way.

        There are no dues or fees, and no one here is a professional: we are peers. Everyone
        is welcome, whatever your path and however long you have been on it.

        **What is shared here stays here.** Speak from your own experience, and please don't
        give advice unless someone asks for it. Raise your hand when you would like to share;
        the leader will give you the floor. Listening is taking part too.
        """,
    ),
    (
        CLOSING_READING,
        f"""
        Thank you for being here tonight, and for what you shared and what you heard. Take
        what you liked and leave the rest.

        If today is hard, you don't have to carry it alone: the group is here between meetings,
        and [Need help now?]{HELP_LINK} lists lines that answer at any hour.

        **Keep coming back.**
        """,
    ),
)
SERIES_TITLE = "Evening open share"
SERIES_TOPIC = """
    An open meeting: share whatever is on your mind about your recovery today. Newcomers are
    especially welcome; you can just listen.
    """
MENTOR_EXPERIENCE = """
    Six years sober after a long time with alcohol. I work the steps and use SMART tools
    for cravings; happy to talk about early days, family and going back to work.
    """
MENTEE_NOTE = "Hi, your shares about mornings helped me. Would you walk alongside me for a while?"
MENTOR_CHAT = (
    (MEMBER2, "Welcome! How has this week been for you?"),
    (MEMBER, "Better than last. Mornings are still the hardest part."),
    (MEMBER2, "That was true for me too. Want to set a small goal for tomorrow morning?"),
)
LIVE_TITLE = "Drop-in share"
LIVE_TOPIC = """
    A short drop-in meeting, open now. Come in, say hello, and share if you'd like to.
    """


class Command(BaseCommand):
    help = "Create demo accounts, groups and threads (only those not already present)."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            # The accounts share a published password (demo-admin is a superuser).
            self.stderr.write("seed_demo skipped: it runs only with DJANGO_DEBUG=true.")
            return
        self.tally: Counter[str] = Counter()
        self.help_url = reverse("crisis_help")
        # The seed posts dozens of times a second as a few members; lift the per-member
        # limits for this process only (the cache-backed counters expire in seconds).
        relaxed = {action: (1_000_000, 1) for action in settings.KINSHIP_RATE_LIMITS}
        with override_settings(KINSHIP_RATE_LIMITS=relaxed), transaction.atomic():
            # The community's history is written as members who earned their trust over
            # weeks (the accounts are backdated); only the newcomer below meets the rules
            # a new member meets today.
            with override_settings(KINSHIP_TRUST_RULES=False):
                users = {spec.handle: self.ensure_account(spec) for spec in ACCOUNTS}
                groups = {spec.slug: self.ensure_group(spec, users) for spec in GROUPS}
                for spec in THREADS:
                    self.ensure_thread(spec, groups[spec.group], users)
                for slug, lines in CHAT.items():
                    self.ensure_chat(groups[slug], lines, users)
                self.ensure_sessions(groups[SESSION_GROUP], users)
                self.ensure_connections(groups[SESSION_GROUP], users)
            self.ensure_spam(groups[SPAM_GROUP], users)
        self.report()

    def ensure_spam(self, group: SupportGroup, users: dict[str, User]) -> None:
        """Something for demo-moderator's queue: a day-old account's referral spam, held
        by the new-member rules (or, with them off, flagged by two members)."""
        spammer = users[SPAMMER]
        if Post.objects.filter(author=spammer).exists():
            return
        self.ensure_member(group, spammer, Membership.Role.MEMBER)
        thread = group.threads.order_by("created_at").first()
        post = publishing.publish_reply(author=spammer, thread=thread, body=SPAM_BODY)
        if post.is_hidden:
            return  # held as a new member's solicitation: already waiting in the queue
        actions.flag(flagger=users[MEMBER], obj=post, reason=FlagReason.SPAM)
        actions.flag(
            flagger=users[MEMBER2],
            obj=post,
            reason=FlagReason.MISINFORMATION,
            details="Stopping everything at once can be dangerous, this is not safe advice.",
        )

    def ensure_connections(self, group: SupportGroup, users: dict[str, User]) -> None:
        """A mentor the group's leader approved, mentoring demo-member in a private
        conversation, and demo-member's own goals and recent check-ins."""
        mentor, mentee, leader = users[MEMBER2], users[MEMBER], users[LEADER]
        if MentorProfile.objects.filter(user=mentor).exists():
            self.tally["connections present"] += 1
            return
        profile = MentorProfile.objects.create(
            user=mentor,
            experience_source=MENTOR_EXPERIENCE,
            experience_html=md(MENTOR_EXPERIENCE),
            approaches=["twelve_step", "smart"],
            availability="Weekday evenings, UK time",
            languages="English",
        )
        MentorApproval.objects.create(
            profile=profile,
            group=group,
            state=MentorApproval.State.APPROVED,
            decided_by=leader,
            decided_at=timezone.now(),
        )
        pairing = mentoring.request_mentor(
            mentee=mentee, mentor=mentor, group=group, note=MENTEE_NOTE
        )
        mentoring.accept(mentor=mentor, mentorship=pairing)
        room = pairing.conversations.get().room
        for n, (handle, body) in enumerate(MENTOR_CHAT):
            publishing.publish_chat_message(
                author=users[handle], room=room, body=body, client_id=f"seed-mentor-{n}"
            )
        meetings = Goal.objects.create(
            owner=mentee,
            title="Go to three meetings a week",
            cadence=Goal.Cadence.WEEKLY,
            weekly_target=3,
            visibility=Goal.Visibility.MENTOR,
        )
        calls = Goal.objects.create(owner=mentee, title="Call someone every day")
        today = timezone.localdate()
        for days_ago, mood, cravings in ((4, 3, 2), (3, 3, 1), (2, 4, 1), (1, 4, 0)):
            check_in = CheckIn.objects.create(
                owner=mentee, day=today - timedelta(days=days_ago), mood=mood, cravings=cravings
            )
            check_in.goals_met.add(calls, *([meetings] if days_ago % 2 else []))
        self.tally["connections created"] += 1

    def ensure_sessions(self, group: SupportGroup, users: dict[str, User]) -> None:
        """The group's readings, a weekly evening series from tomorrow, and one session
        running now, so a visitor of `make run` can walk into a live meeting."""
        leader = users[LEADER]
        scripts = {}
        for title, text in SCRIPTS:
            script = SessionScript.objects.filter(group=group, title=title).first()
            if script is None:
                script = publishing.save_script(
                    actor=leader, group=group, title=title, text=self.with_links(md(text))
                )
            scripts[title] = script
        readings = {
            "opening_script_id": scripts[OPENING_READING].pk,
            "closing_script_id": scripts[CLOSING_READING].pk,
        }
        series = group.sessions.filter(title=SERIES_TITLE, series__isnull=False).count()
        if series:
            self.tally["sessions present"] += series
        else:
            made = publishing.schedule_session(
                actor=leader,
                group=group,
                plan=publishing.SessionPlan(
                    title=SERIES_TITLE,
                    topic=md(SERIES_TOPIC),
                    starts_on=timezone.localdate() + timedelta(days=1),
                    start_time=time(19),
                    end_time=time(20),
                    time_zone="Europe/London",
                    weekly=True,
                    co_leaders=MEMBER2,
                    fellowship_after=True,
                    **readings,
                ),
            )
            self.tally["sessions created"] += len(made)
        self.ensure_live_session(group, users, readings)

    def ensure_live_session(
        self, group: SupportGroup, users: dict[str, User], readings: dict[str, int]
    ) -> None:
        """One session open right now (started ten minutes ago); a new one only once the
        last has ended, so a second run finds it."""
        now = timezone.now()
        running = group.sessions.filter(title=LIVE_TITLE, cancelled_at__isnull=True)
        if any(session.phase(now) == LiveSession.Phase.OPEN for session in running):
            self.tally["sessions present"] += 1
            return
        leader = users[LEADER]
        [session] = publishing.schedule_session(
            actor=leader,
            group=group,
            plan=publishing.SessionPlan(
                title=LIVE_TITLE,
                topic=md(LIVE_TOPIC),
                starts_on=timezone.localdate() + timedelta(days=1),
                start_time=time(12),
                end_time=time(13),
                time_zone="Europe/London",
                co_leaders=MEMBER2,
                fellowship_after=True,
                **readings,
            ),
        )
        # The write path schedules only from now on; this one is already under way.
        starts = now - timedelta(minutes=10)
        LiveSession.objects.filter(pk=session.pk).update(
            starts_at=starts, ends_at=starts + timedelta(hours=1)
        )
        session.refresh_from_db()
        live.post_reading(actor=leader, session=session, which="opening")
        publishing.publish_chat_message(
            author=leader,
            room=session.room,
            body="Welcome, everyone. Raise your hand when you'd like to share; "
            "listening is just as welcome.",
            client_id="demo-live-welcome",
        )
        self.tally["sessions created"] += 1

    def ensure_chat(
        self, group: SupportGroup, lines: tuple[tuple[str, str], ...], users: dict[str, User]
    ) -> None:
        room = group.rooms.get(is_default=True)
        for number, (handle, body) in enumerate(lines):
            # A fixed client id per line makes a second run find the message it made.
            _message, created = publishing.publish_chat_message(
                author=users[handle], room=room, body=body, client_id=f"demo-{number}"
            )
            self.tally["chat messages created" if created else "chat messages present"] += 1

    # Accounts, groups, memberships

    def ensure_account(self, spec: AccountSpec) -> User:
        user = User.objects.filter(handle__iexact=spec.handle).first()
        if user is not None:
            self.tally["accounts present"] += 1
            return user
        user = User.objects.create_user(
            spec.handle,
            f"{spec.handle}@kinship.invalid",
            DEMO_PASSWORD,
            is_site_moderator=spec.is_site_moderator,
            is_staff=spec.is_admin,
            is_superuser=spec.is_admin,
            date_joined=timezone.now() - timedelta(days=spec.joined_days_ago),
        )
        recovery_date = None
        if spec.recovery_days is not None:
            recovery_date = timezone.localdate() - timedelta(days=spec.recovery_days)
        publishing.update_profile(
            user=user,
            bio=spec.bio,
            recovery_date=recovery_date,
            recovery_date_visibility=spec.recovery_visibility,
        )
        self.tally["accounts created"] += 1
        return user

    def ensure_group(self, spec: GroupSpec, users: dict[str, User]) -> SupportGroup:
        group = SupportGroup.objects.filter(slug=spec.slug).first()
        if group is None:
            guidelines = f"{md(spec.guidelines)}\n{COMMON_GUIDELINES}"
            group = publishing.save_group(
                actor=users[ADMIN],
                group=None,
                name=spec.name,
                slug=spec.slug,
                kind=spec.kind,
                description=md(spec.description),
                guidelines=self.with_links(guidelines),
                visibility=spec.visibility,
                join_policy=spec.join_policy,
            )
            created_at = timezone.now() - timedelta(days=GROUPS_CREATED_DAYS_AGO)
            SupportGroup.objects.filter(pk=group.pk).update(created_at=created_at)
            group.created_at = created_at
            Membership.objects.filter(group=group, user=users[ADMIN]).update(
                joined_at=created_at, guidelines_accepted_at=created_at
            )
            self.tally["groups created"] += 1
        else:
            self.tally["groups present"] += 1
        self.ensure_member(group, users[LEADER], Membership.Role.LEADER)
        for handle in spec.members:
            self.ensure_member(group, users[handle], Membership.Role.MEMBER)
        # Fresh instance: member_count changed in the database, and permission checks
        # cache roles on the instance.
        return SupportGroup.objects.get(pk=group.pk)

    def ensure_member(self, group: SupportGroup, user: User, role: str) -> None:
        if Membership.objects.filter(group=group, user=user).exists():
            self.tally["memberships present"] += 1
            return
        memberships.add_member(user=user, group=group, role=role)
        joined = max(group.created_at, user.date_joined) + timedelta(hours=2)
        Membership.objects.filter(group=group, user=user).update(
            joined_at=joined, guidelines_accepted_at=joined
        )
        self.tally["memberships created"] += 1

    # Threads

    def with_links(self, text: str) -> str:
        return text.replace(HELP_LINK, f"({self.help_url})")

    def ensure_thread(self, spec: ThreadSpec, group: SupportGroup, users: dict[str, User]) -> None:
        if Thread.objects.filter(group=group, title=spec.title).exists():
            self.tally["threads present"] += 1
            return
        thread = publishing.publish_thread(
            author=users[spec.author],
            group=group,
            title=spec.title,
            body=self.with_links(md(spec.body)),
            content_warning=spec.content_warning,
        )
        opening = Post.objects.get(thread=thread, parent__isnull=True)
        posts = [opening]

        def publish_replies(parent: Post, replies: tuple[Reply, ...]) -> None:
            for item in replies:
                post = publishing.publish_reply(
                    author=users[item.author],
                    thread=thread,
                    parent=parent,
                    body=self.with_links(item.body),
                    content_warning=item.content_warning,
                )
                posts.append(post)
                publish_replies(post, item.replies)

        publish_replies(opening, spec.replies)
        self.tally["threads created"] += 1
        self.tally["replies created"] += len(posts) - 1
        self.backdate(thread, posts, self.timeline(spec, len(posts)))

    def timeline(self, spec: ThreadSpec, count: int) -> list[datetime]:
        """When each post was written, in publishing order (so replies follow parents)."""
        day = timezone.localdate() - timedelta(days=spec.days_ago)
        hour, minute = (int(part) for part in spec.at.split(":"))
        moments = [timezone.make_aware(datetime.combine(day, time(hour, minute)))]
        offset = len(spec.title)  # where in the cycle of gaps this thread starts
        for index in range(1, count):
            gap = REPLY_GAPS_MINUTES[(offset + index) % len(REPLY_GAPS_MINUTES)]
            moments.append(moments[-1] + timedelta(minutes=gap))
        # A recent thread whose replies would run into the future ends just before now.
        overshoot = moments[-1] - (timezone.now() - timedelta(minutes=10))
        if overshoot > timedelta(0):
            moments = [moment - overshoot for moment in moments]
        return moments

    def backdate(self, thread: Thread, posts: list[Post], moments: list[datetime]) -> None:
        """Move a just-published thread and everything it caused to its place in time."""
        opening = posts[0]
        first_post_by: dict[int, datetime] = {}
        read_before = timezone.now() - timedelta(days=3)
        for post, moment in zip(posts, moments, strict=True):
            Post.objects.filter(pk=post.pk).update(created_at=moment)
            first_post_by.setdefault(post.author_id, moment)
            # Old notifications were seen long ago; only the last few days stay unread.
            read_at = moment + timedelta(hours=2) if moment < read_before else None
            Notification.objects.filter(post=post).update(created_at=moment, read_at=read_at)
        Thread.objects.filter(pk=thread.pk).update(
            created_at=moments[0], last_activity_at=moments[-1]
        )
        for user_id, moment in first_post_by.items():
            Subscription.objects.filter(thread=thread, user_id=user_id).update(created_at=moment)
        # Everyone who replied supports the opening post, once they had read it.
        for user_id, moment in first_post_by.items():
            if user_id == opening.author_id:
                continue
            engagement.toggle_support(user=User.objects.get(pk=user_id), post=opening)
            Reaction.objects.filter(post=opening, user_id=user_id).update(created_at=moment)

    def report(self) -> None:
        tally = self.tally
        for label, noun in (
            ("accounts", "Demo accounts"),
            ("groups", "Groups"),
            ("memberships", "Memberships"),
            ("threads", "Threads"),
            ("chat messages", "Chat messages"),
            ("sessions", "Live sessions"),
            ("connections", "Mentoring and goals"),
        ):
            line = f"{noun}: {tally[f'{label} created']} created"
            if label == "threads":
                line += f" (with {tally['replies created']} replies)"
            self.stdout.write(f"{line}, {tally[f'{label} present']} already present.")
        handles = ", ".join(spec.handle for spec in ACCOUNTS)
        self.stdout.write(
            self.style.SUCCESS(f"Demo data ready. Sign in as {handles}; password {DEMO_PASSWORD}")
        )
