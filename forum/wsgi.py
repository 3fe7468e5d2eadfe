"""WSGI entry point, for serving pages from a WSGI server (see docs/operations.md)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "forum.settings")

application = get_wsgi_application()
