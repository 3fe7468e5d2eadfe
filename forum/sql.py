"""Helpers for the few reads written in SQL by hand: the member loaded on every signed-in
request (forum.backends), the thread page's per-viewer facts and a chat write's room
(forum.selectors). Built through the ORM, each cost more in Python than in the database
(bench/README.md, "Pages" and "Chat"); names still come from the models, and values are
always parameters."""

import functools
import json

from django.db import connection
from django.db.models import Model


def names(model: type[Model], *fields: str) -> tuple[str, ...]:
    """The model's table, then the column of each field."""
    meta = model._meta
    return (meta.db_table, *(meta.get_field(field).column for field in fields))


def columns(model: type[Model], alias: str) -> str:
    """Every concrete column of ``model`` under ``alias``, in the order ``load`` reads them."""
    return ", ".join(f"{alias}.{field.column}" for field in model._meta.concrete_fields)


def load(model: type[Model], values: tuple | list) -> Model:
    """An instance of ``model`` from its ``columns``' values, converted as the ORM converts
    them (SQLite returns dates as text and booleans as integers)."""
    attnames, converters = _reading(model)
    values = list(values)
    for index, field_converters in converters:
        for convert, expression in field_converters:
            values[index] = convert(values[index], expression, connection)
    return model.from_db(connection.alias, attnames, values)


def value(model: type[Model], field: str, raw):
    """One column of ``model`` read beside others (a subquery's answer), converted as the
    ORM converts that field (a JSON field arrives as text from either database)."""
    for convert, expression in _converters(model, field):
        raw = convert(raw, expression, connection)
    return raw


@functools.cache
def _converters(model: type[Model], name: str) -> list:
    field = model._meta.get_field(name)
    expression = field.get_col(model._meta.db_table)
    found = connection.ops.get_db_converters(expression) + field.get_db_converters(connection)
    return [(convert, expression) for convert in found]


@functools.cache
def _reading(model: type[Model]) -> tuple[list[str], list[tuple[int, list]]]:
    """Each concrete field's attribute name and, for the fields that have any, its
    converters with the expression they are called with (worked out once per model)."""
    fields = model._meta.concrete_fields
    converters = [
        (index, found)
        for index, field in enumerate(fields)
        if (found := _converters(model, field.name))
    ]
    return [field.attname for field in fields], converters


def id_list(column: str, rest: str) -> str:
    """A column holding the list of ids ``SELECT column rest`` finds (read back with
    ``ids``): an array in PostgreSQL, JSON text in SQLite."""
    if connection.vendor == "postgresql":
        return f"ARRAY(SELECT {column} {rest})"
    return f"(SELECT json_group_array({column}) {rest})"


def text_list(expression: str, rest: str) -> str:
    """A column joining, with commas, the texts ``SELECT expression rest`` finds (in no
    set order), or NULL when it finds none."""
    join = "string_agg" if connection.vendor == "postgresql" else "group_concat"
    return f"(SELECT {join}({expression}, ',') {rest})"


def ids(value: list | str) -> frozenset[int]:
    """The ids of an ``id_list`` column."""
    return frozenset(json.loads(value) if isinstance(value, str) else value)
