"""``{% session_counts session %}``: a live session's attendance, as its leaders see it.

Counts only (forum.attendance.session_counts), never names; everyone else sees nothing.
"""

from django import template

from moderation import permissions

from .. import attendance
from ..models import LiveSession

register = template.Library()


@register.inclusion_tag("partials/session_attendance_counts.html", takes_context=True)
def session_counts(context, session: LiveSession) -> dict:
    user = context.get("user")
    if user is None or not permissions.can_facilitate(user, session):
        return {"counts": None}
    return {"counts": attendance.session_counts(session), "session": session}
