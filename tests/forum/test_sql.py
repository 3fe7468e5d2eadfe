"""forum.sql: rows read by hand become the instances the ORM would have made."""

import pytest
from django.db import connection

from forum import sql
from forum.models import ChatRoom, SupportGroup
from tests.conftest import make_group


@pytest.mark.django_db
def test_load_converts_each_column_as_the_orm_does():
    group = make_group("converted")
    room = ChatRoom.objects.create(group=group, name="General", slug="general", is_default=True)

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {sql.columns(ChatRoom, 'r')} FROM forum_chatroom r")  # noqa: S608 (column names from the model)
        loaded = sql.load(ChatRoom, cursor.fetchone())
    expected = ChatRoom.objects.get(pk=room.pk)
    for field in ChatRoom._meta.concrete_fields:
        assert getattr(loaded, field.attname) == getattr(expected, field.attname), field.name
    assert loaded.is_default is True  # SQLite's 1, converted
    assert loaded.created_at.tzinfo is not None  # SQLite's text, parsed
    assert not loaded._state.adding  # saved rows: a save updates, never inserts
    loaded.name = "Renamed"
    loaded.save(update_fields=["name"])
    assert ChatRoom.objects.get(pk=room.pk).name == "Renamed"


def test_columns_follow_the_model():
    assert sql.columns(SupportGroup, "g").split(", ")[:2] == ["g.id", "g.name"]
    assert len(sql.columns(ChatRoom, "r").split(", ")) == len(ChatRoom._meta.concrete_fields)


@pytest.mark.django_db
def test_text_list_joins_each_row_s_text_or_gives_null():
    for slug in ("north", "south", "east"):
        make_group(slug)
    found = sql.text_list("g.slug || ':' || g.id", "FROM forum_supportgroup g")
    nothing = sql.text_list("g.slug", "FROM forum_supportgroup g WHERE g.id < 0")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {found}, {nothing}")
        joined, empty = cursor.fetchone()
    expected = {f"{g.slug}:{g.pk}" for g in SupportGroup.objects.all()}
    assert set(joined.split(",")) == expected and len(expected) == 3
    assert empty is None
