import datetime
from unittest import mock

from django.utils import timezone
from django.utils.timesince import timesince
from hypothesis import given
from hypothesis import strategies as st

from forum.models import User
from forum.templatetags.kinship import ago, days_count


def test_ago_says_just_now_for_the_last_minute():
    assert ago(timezone.now() - datetime.timedelta(seconds=20)) == "just now"
    assert (
        ago(timezone.now() - datetime.timedelta(hours=3, minutes=5))
        == "3\xa0hours, 5\xa0minutes ago"
    )
    assert ago(None) == ""


@given(
    moment=st.datetimes(
        min_value=datetime.datetime(2020, 1, 1),
        max_value=datetime.datetime(2030, 1, 1),
        timezones=st.just(datetime.UTC),
    ),
    elapsed=st.timedeltas(
        min_value=datetime.timedelta(minutes=1), max_value=datetime.timedelta(days=900)
    ),
)
def test_ago_remembered_per_minute_reads_as_timesince_at_that_instant(moment, elapsed):
    # ago() computes each post's text once a minute: it must equal the exact one.
    now = moment + elapsed
    with mock.patch("forum.templatetags.kinship.timezone.now", return_value=now):
        assert ago(moment) == f"{timesince(moment, now)} ago"


def test_days_count_never_shows_the_date():
    member = User(handle="river", recovery_date=timezone.localdate() - datetime.timedelta(days=412))
    assert days_count(member) == "412 days"
    member.recovery_date = timezone.localdate() - datetime.timedelta(days=1)
    assert days_count(member) == "1 day"
    member.recovery_date = None
    assert days_count(member) == ""
