"""``{% chrome name=value ... %}…{% endchrome %}``: a part of a page rendered once per process
for each set of values, then copied.

The navigation, a thread's title and tools and its reply box read the same on every page
with the same inputs, yet rendering them cost a member's thread page more than its posts
did (bench/thread_parts.py). The enclosed template sees *only* the values the tag names (no
request, no user, no context processors), so what it shows is a function of them and the
key is complete by construction: a changed input is a new entry, never a stale one. Values
are plain (text, numbers, booleans, None), never model instances, whose equality is their pk.

The CSRF token differs for each visitor and is left as a hole, filled for each page as
``{% csrf_token %}`` renders it. Entries live in the template's node, in this process only:
a deploy or a template reload starts afresh, and URLs and static paths are fixed for a
process. Blocks must not show the time or anything else the tag is not given.
"""

import weakref

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.template.defaulttags import CsrfTokenNode
from django.urls import get_script_prefix, get_urlconf

from ..cache import Recent

register = template.Library()

# Entries per block (up to ~5 KiB each: a reply box holds its form): a member's navigation
# is one each, a thread's parts a few per thread.
SIZE = 2048
# The token's place. What is filled is the whole field as {% csrf_token %} renders it with
# this value, markup that no escaped input can contain.
CSRF_HOLE = "\x00chrome-csrf\x00"
PLAIN = (str, int, float, type(None))  # bool is an int
_blocks: "weakref.WeakSet[ChromeNode]" = weakref.WeakSet()


class ChromeNode(template.Node):
    def __init__(self, nodelist: template.NodeList, inputs: dict) -> None:
        self.nodelist, self.inputs = nodelist, inputs
        self._rendered = Recent(SIZE)
        self._hole = CsrfTokenNode().render(template.Context({"csrf_token": CSRF_HOLE}))
        _blocks.add(self)

    def render(self, context: template.Context) -> str:
        values = {name: expression.resolve(context) for name, expression in self.inputs.items()}
        for name, value in values.items():
            if not isinstance(value, PLAIN):
                raise TypeError(f"{{% chrome %}} input {name} is a {type(value).__name__}")
        # The class too: "<b>" marked safe shows otherwise than "<b>", and True than 1.
        key = (get_script_prefix(), get_urlconf(), *((v.__class__, v) for v in values.values()))
        html = self._rendered.get(key)
        if html is None:
            html = self.nodelist.render(context.new({**values, "csrf_token": CSRF_HOLE}))
            self._rendered.set(key, html)
        if self._hole in html:
            html = html.replace(self._hole, CsrfTokenNode().render(context))
        return html


@receiver(setting_changed, dispatch_uid="forum.chrome.forget")
def forget(**kwargs) -> None:
    """Drop every block's entries: a changed setting may change what URLs and static paths
    read (tests), and a page rendered after this is rendered afresh."""
    for block in list(_blocks):
        block._rendered.clear()


@register.tag
def chrome(parser, token) -> ChromeNode:
    bits = token.split_contents()[1:]
    inputs = template.base.token_kwargs(bits, parser, support_legacy=False)
    if bits:
        raise template.TemplateSyntaxError(f"{{% chrome %}} takes name=value inputs, not {bits}")
    nodelist = parser.parse(("endchrome",))
    parser.delete_first_token()
    return ChromeNode(nodelist, inputs)
