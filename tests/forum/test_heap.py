"""forum.heap: what a serving process loaded by its first response is frozen, once."""

import gc
import importlib
from unittest import mock

import pytest
from django.core.signals import request_finished

from forum import heap


@pytest.fixture
def thawed():
    yield
    request_finished.disconnect(dispatch_uid=heap.UID)
    gc.unfreeze()


@pytest.mark.django_db
def test_the_heap_is_frozen_after_the_first_response_only(client, thawed):
    heap.freeze_after_first_request()
    with mock.patch.object(gc, "freeze", wraps=gc.freeze) as freeze:
        assert client.get("/accounts/login/").status_code == 200
        assert freeze.call_count == 1
        client.get("/accounts/login/")
        assert freeze.call_count == 1
    assert gc.get_freeze_count() > 0


@pytest.mark.parametrize("entry_point", ["forum.wsgi", "forum.asgi"])
def test_the_server_entry_points_ask_for_it(entry_point):
    module = importlib.import_module(entry_point)
    with mock.patch.object(heap, "freeze_after_first_request") as ask:
        importlib.reload(module)
    ask.assert_called_once_with()
