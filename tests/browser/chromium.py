"""Headless Chromium (Debian's ``chromium`` package) for the browser tests, and their skip mark."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt chromium)"
)


def chromium(url: str, profile: Path, action: list[str]) -> str:
    """Headless Chromium on ``url`` with ``action`` (``--dump-dom``, ``--screenshot=...``, or
    both) after a virtual-time budget, so the UI has fetched ``/ui-settings`` and called the API;
    returns its stdout (the DOM for ``--dump-dom``)."""
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",
        *action,
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
