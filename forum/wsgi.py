"""WSGI entry point, for serving pages from a WSGI server (see docs/operations.md)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "forum.settings")

application = get_wsgi_application()

from . import heap  # noqa: E402 (once Django is set up)

heap.freeze_after_first_request()
