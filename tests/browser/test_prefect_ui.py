"""The Prefect UI of a real ``amad stack up --server``, loaded by headless Chromium.

Skips with a reason where ``/usr/bin/chromium`` (Debian's ``chromium`` package) is absent. The
page is rendered with ``--dump-dom`` after a virtual-time budget, so the UI has fetched its
``/ui-settings`` and called the API at the URL it was given; a wrong port renders Prefect's
"Oops. Something went wrong." page.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from amad.devstack.stack import stack_down, stack_up

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt chromium)"),
]


def chromium(url: str, profile: Path, action: list[str]) -> str:
    """Headless Chromium on ``url`` with ``action`` (``--dump-dom``, ``--screenshot=...``) after
    a virtual-time budget; its stdout (the DOM for ``--dump-dom``)."""
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


def test_ui_of_a_stack_on_a_free_port_renders(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    try:
        prefect = stack_up(root, server=True)["prefect"]
        assert prefect["port"] != 4200
        dom = chromium(f"{prefect['ui_url']}/runs", tmp_path / "chrome", ["--dump-dom"])
    finally:
        stack_down(root)
    assert "Something went wrong" not in dom
    assert "Runs" in dom
