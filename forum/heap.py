"""Keeps what a serving process loads at start out of the garbage collector's way.

A full collection walks every object the process holds: some 135,000 once Django, the apps,
the URLs and the templates are loaded, about 50 ms on the benchmark machine, during which a
worker answers nobody (bench/README.md). What is loaded by the end of the first request
lives as long as the process, so it is set aside (``gc.freeze``) and full collections walk
only what later requests leave behind.
"""

import gc

from django.core.signals import request_finished

UID = "forum.heap.freeze"


def _freeze(**kwargs) -> None:
    request_finished.disconnect(dispatch_uid=UID)
    gc.freeze()


def freeze_after_first_request() -> None:
    """For the server entry points (forum.wsgi, forum.asgi): freeze once, after the first
    response, when the URLs and that page's templates are loaded."""
    request_finished.connect(_freeze, dispatch_uid=UID, weak=False)
