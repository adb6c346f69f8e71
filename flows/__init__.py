"""Prefect 3 flows that keep the AMAD detector trained, checked and published.

Flows are thin: each task wraps one library call from ``amad`` worth retrying, caching or
observing, and tasks pass URIs, version ids and small dicts. The ``amad`` library never imports
this package. Importing it routes the ``amad`` logger into Prefect run logs (see ``runtime``).
"""

from __future__ import annotations

import os

# Prefect reads this once, when it configures logging on import: set it before prefect loads.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "amad")
# The library also logs outside flow runs (ingest from the CLI, the stack, tests of the library in
# the same process): those lines belong on the console only, not in a warning about a missing run.
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
