"""Helpers for the few reads written in SQL by hand: the member loaded on every signed-in
request (forum.backends) and the thread page's per-viewer facts (forum.selectors). Built
through the ORM, each cost more in Python than in the database (bench/README.md, "Pages");
names still come from the models, and values are always parameters."""

from django.db.models import Model


def names(model: type[Model], *fields: str) -> tuple[str, ...]:
    """The model's table, then the column of each field."""
    meta = model._meta
    return (meta.db_table, *(meta.get_field(field).column for field in fields))
