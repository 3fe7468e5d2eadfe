"""Settings for bench/pages.py: the production settings, plus a bare "hello" view.

Everything else comes from the environment exactly as in production (DJANGO_DEBUG off).
The hello route exists only here, never in forum.urls.
"""

from forum.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
