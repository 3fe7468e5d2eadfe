"""ASGI entry point: pages now, WebSocket chat joins through the same router."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "forum.settings")

# Initialise Django (apps, models) before anything imports them.
django_asgi_app = get_asgi_application()

application = django_asgi_app
