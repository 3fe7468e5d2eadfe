"""{% cw_display post user as cw %}: how a post's content-warning categories read for
the viewer (forum.content_warnings.display_for), from objects already loaded."""

from django import template

from forum import content_warnings

register = template.Library()


@register.simple_tag
def cw_display(post, user) -> content_warnings.Display:
    return content_warnings.display_for(post, user)
