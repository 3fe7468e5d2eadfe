"""Parallel test workers (pytest-xdist, `make test`) share one Redis: each worker gets a
database of its own (the tests clear the cache) and a channel-layer prefix of its own
(Redis pub/sub channels are not per database). Loaded early (pyproject's addopts), before
Django reads its settings; a run without workers changes nothing."""

import os
import re

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker and os.environ.get("REDIS_URL"):
    _number = int(_worker.removeprefix("gw"))
    _url = os.environ["REDIS_URL"]
    os.environ["REDIS_URL"] = re.sub(r"(/\d*)?$", f"/{_number + 1}", _url, count=1)
    os.environ["KINSHIP_CHANNEL_PREFIX"] = f"kinship:test{_number}"
