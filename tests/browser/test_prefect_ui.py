"""The Prefect UI of a real ``amad stack up --server``, loaded by headless Chromium.

Skips with a reason where ``/usr/bin/chromium`` (Debian's ``chromium`` package) is absent. The
page is rendered with ``--dump-dom`` after a virtual-time budget, so the UI has fetched its
``/ui-settings`` and called the API at the URL it was given; a wrong port renders Prefect's
"Oops. Something went wrong." page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.chromium import chromium, needs_chromium

pytestmark = [pytest.mark.slow, needs_chromium]


def test_ui_of_a_stack_on_a_free_port_renders(ui_stack: dict[str, Any], tmp_path: Path) -> None:
    prefect = ui_stack["prefect"]
    assert prefect["port"] != 4200
    dom = chromium(f"{prefect['ui_url']}/runs", tmp_path / "chrome", ["--dump-dom"])
    assert "Something went wrong" not in dom
    assert "Runs" in dom
