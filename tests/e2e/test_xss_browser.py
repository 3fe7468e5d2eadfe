"""XSS payloads rendered in headless Chromium on real pages: nothing runs.

A spread of the shared corpus (every 11th payload, over 600) plus payloads written to set a
global if they ever ran is entered by the server's own process through the write path
(forum.publishing): replies on thread pages of 50, chat messages in rooms whose history
shows 50, thread titles on the group's page and bios on profile pages. A reader then opens
each page with window.alert, prompt, confirm and print replaced by recorders (before any
page script runs), dialogs recorded too, and the console watched for the Content Security
Policy refusing something (which would mean markup got through that tried to run).
"""

import json
import re

import pytest

from tests.xss_oracle import CORPUS_FILE, corpus_available

from .conftest import FOREIGN_REQUESTS
from .servers import start_app

pytestmark = pytest.mark.e2e

PASSWORD = "quiet-harbour-5820"
GROUP = "xss-circle"
READER = "river"
STRIDE = 11  # every 11th of the 6,613 payloads: 602 of them
PER_PAGE = 50  # forum.selectors.POSTS_PER_PAGE, and the chat history shown below
# Payloads of our own that leave a trace if any of their code ever runs.
CANARIES = [
    "<script>window.__xssRan = 1</script>",
    "<img src=x onerror=window.__xssRan=1>",
    "<svg onload=window.__xssRan=1>",
    '<a href="javascript:window.__xssRan=1">x</a>',
    "[link](javascript:window.__xssRan=1)",
    '<iframe srcdoc="<script>parent.__xssRan=1</script>"></iframe>',
    "<body onload=window.__xssRan=1>",
    "<details open ontoggle=window.__xssRan=1>",
    "<input autofocus onfocus=window.__xssRan=1>",
    "<video><source onerror=window.__xssRan=1></video>",
    '<meta http-equiv="refresh" content="0;url=javascript:window.__xssRan=1">',
    "<base href=javascript:window.__xssRan=1//>",
]
HOOKS = """
window.__xssCalls = [];
for (const name of ["alert", "prompt", "confirm", "print"]) {
  window[name] = function () { window.__xssCalls.push(name); };
}
"""

SEED = f"""
import json
from django.conf import settings
from forum import memberships, publishing
from forum.models import Membership, SupportGroup, User

settings.KINSHIP_RATE_LIMITS = {{k: (10**9, 60) for k in settings.KINSHIP_RATE_LIMITS}}
settings.KINSHIP_DUPLICATE_WINDOW_SECONDS = 0
payloads = json.loads(open({{corpus!r}}).read())
numbered = list(enumerate(payloads))
group = SupportGroup.objects.create(
    name="XSS Circle", slug="{GROUP}", kind=SupportGroup.Kind.MUTUAL_AID,
    visibility="public", join_policy="open",
    guidelines_source="Be kind.", guidelines_html="<p>Be kind.</p>",
)
reader = User.objects.create_user("{READER}", "{READER}@example.test", "{PASSWORD}")
writer = User.objects.create_user("meadow", "meadow@example.test", "{PASSWORD}")
leader = User.objects.create_user("lighthouse", "lighthouse@example.test", "{PASSWORD}")
memberships.add_member(user=reader, group=group)
memberships.add_member(user=writer, group=group)
memberships.add_member(user=leader, group=group, role=Membership.Role.LEADER)

def marked(i, payload):
    return f"xss{{i}}x\\n\\n{{payload}}"

def refused(call):
    try:
        call()
    except Exception as error:  # too long for the place, or refused by policy: shown as such
        print("refused", type(error).__name__, error)

for n in range(0, len(numbered), {PER_PAGE}):
    chunk = numbered[n:n + {PER_PAGE}]
    if n // {PER_PAGE} % 3 == 2:
        room = publishing.save_room(
            actor=leader, group=group, room=None, name=f"Room {{n}}", state="open"
        )
        for i, payload in chunk:
            refused(lambda: publishing.publish_chat_message(
                author=writer, room=room, body=marked(i, payload), client_id=str(i)
            ))
        continue
    (first, title), *rest = chunk
    thread = publishing.publish_thread(
        author=writer, group=group, title=f"xss{{first}}x {{title}}"[:200], body="Replies below."
    )
    for i, payload in rest:
        refused(lambda: publishing.publish_reply(
            author=writer, thread=thread, body=marked(i, payload)
        ))
for i, payload in numbered[::25]:
    author = User.objects.create_user(f"bio{{i}}", f"bio{{i}}@example.test", "{PASSWORD}")
    refused(lambda: publishing.update_profile(
        user=author, bio=marked(i, payload), recovery_date=None,
        recovery_date_visibility="everyone",
    ))
"""


def sample() -> list[str]:
    payloads = [line for line in CORPUS_FILE.read_text(encoding="utf-8").split("\n") if line]
    return payloads[::STRIDE] + CANARIES


@pytest.fixture(scope="module")
def server(databases, chromium, tmp_path_factory):
    if not corpus_available():
        pytest.skip(f"XSS corpus not found at {CORPUS_FILE}")
    corpus = tmp_path_factory.mktemp("xss") / "sample.json"
    corpus.write_text(json.dumps(sample()))
    if databases.has_postgres:
        urls = databases.postgres()
        database_url = next(urls)
    else:
        urls, database_url = None, databases.sqlite("xss")
    seed = SEED.replace("{corpus!r}", repr(str(corpus)))
    live = start_app(tmp_path_factory, database_url, seed, KINSHIP_CHAT_HISTORY=str(PER_PAGE))
    yield live
    live.stop()
    if urls is not None:
        next(urls, None)


@pytest.fixture(scope="module")
def reader(chromium, server):
    context = chromium.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(20_000)
    context.add_init_script(HOOKS)
    page = context.new_page()
    page.dialogs, page.csp = [], []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on(
        "console",
        lambda message: (
            page.csp.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(f"{server.url}/accounts/login/")
    page.get_by_label("Handle").fill(READER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{server.url}/")
    yield page
    context.close()


def visit(page, url: str) -> dict:
    page.goto(url, wait_until="load")
    page.wait_for_timeout(150)  # let deferred scripts, autofocus and media errors fire
    return page.evaluate(
        "() => ({calls: window.__xssCalls, ran: window.__xssRan === 1,"
        " hooked: typeof window.__xssCalls === 'object', text: document.body.innerText})"
    )


def assert_nothing_ran(page, url: str, seen: dict) -> None:
    assert seen["hooked"], f"{url}: the init script did not run, so nothing was watched"
    assert seen["calls"] == [], f"{url}: {seen['calls']} called"
    assert not seen["ran"], f"{url}: a payload's script ran"
    assert page.dialogs == [], f"{url}: dialogs opened: {page.dialogs}"
    assert page.csp == [], f"{url}: the CSP had to stop something: {page.csp[:3]}"


def test_the_watchers_see_what_they_watch_for(reader, server):
    # The controls: script the test itself runs is seen by the hooks, and markup slipped
    # into the page the way a sanitiser bug would put it is stopped by the CSP, visibly.
    seen = visit(reader, f"{server.url}/groups/")
    reader.evaluate("() => { alert('x'); window.__xssRan = 1; }")
    after = reader.evaluate("() => ({calls: window.__xssCalls, ran: window.__xssRan === 1})")
    assert seen["hooked"] and after == {"calls": ["alert"], "ran": True}
    visit(reader, f"{server.url}/groups/")
    reader.evaluate(
        "() => document.body.insertAdjacentHTML('beforeend', "
        "'<img src=/static/missing.png onerror=window.__xssRan=1>')"
    )
    reader.wait_for_timeout(300)
    assert reader.evaluate("() => window.__xssRan") is None
    assert reader.csp, "the console did not report the CSP refusing an inline handler"
    reader.csp.clear()


def test_a_request_to_another_origin_is_recorded(chromium, server):
    context = chromium.new_context()
    page = context.new_page()
    # Answered inside the browser: nothing leaves the machine.
    page.route("http://elsewhere.invalid/**", lambda route: route.fulfill(body="hi"))
    page.goto(f"{server.url}/healthz")
    page.goto("http://elsewhere.invalid/page")
    context.close()
    assert FOREIGN_REQUESTS == ["http://elsewhere.invalid/page"]
    FOREIGN_REQUESTS.clear()


def test_payloads_run_nowhere_in_threads_chat_titles_or_bios(reader, server):
    base = server.url
    reader.goto(f"{base}/g/{GROUP}/")
    thread_urls = reader.eval_on_selector_all(
        "a[href*='/t/']", "links => [...new Set(links.map(a => a.href))]"
    )
    reader.goto(f"{base}/g/{GROUP}/chat/")
    room_urls = reader.eval_on_selector_all(
        "a[href*='/chat/room-']", "links => [...new Set(links.map(a => a.href))]"
    )
    bio_urls = [f"{base}/u/bio{i}/" for i in range(0, len(sample()), 25)]
    urls = [f"{base}/g/{GROUP}/", f"{base}/g/{GROUP}/?page=2", *thread_urls, *room_urls, *bio_urls]
    assert len(thread_urls) >= 8 and len(room_urls) >= 4, (thread_urls, room_urls)
    shown: set[str] = set()
    for url in urls:
        seen = visit(reader, url)
        assert_nothing_ran(reader, url, seen)
        shown.update(re.findall(r"xss(\d+)x", seen["text"]))
    # The payloads were on the pages, as text: not a pass by showing nothing.
    assert len(shown) >= 500, len(shown)
