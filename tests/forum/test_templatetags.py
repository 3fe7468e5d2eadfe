import datetime

from django.utils import timezone

from forum.models import User
from forum.templatetags.kinship import ago, days_count


def test_ago_says_just_now_for_the_last_minute():
    assert ago(timezone.now() - datetime.timedelta(seconds=20)) == "just now"
    assert (
        ago(timezone.now() - datetime.timedelta(hours=3, minutes=5))
        == "3\xa0hours, 5\xa0minutes ago"
    )
    assert ago(None) == ""


def test_days_count_never_shows_the_date():
    member = User(handle="river", recovery_date=timezone.localdate() - datetime.timedelta(days=412))
    assert days_count(member) == "412 days"
    member.recovery_date = timezone.localdate() - datetime.timedelta(days=1)
    assert days_count(member) == "1 day"
    member.recovery_date = None
    assert days_count(member) == ""
