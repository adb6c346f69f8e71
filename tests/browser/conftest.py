"""One real ``amad stack up --server`` (SeaweedFS and a Prefect server on free ports) for every
browser test of the session: it takes a minute or two to start on a loaded machine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from amad.devstack.stack import stack_down, stack_up
from tests.browser.chromium import CHROMIUM


@pytest.fixture(scope="session")
def ui_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The stack's status (``prefect.ui_url``, ``s3.endpoint``, ``env_file``); stopped after."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt chromium)")
    root = tmp_path_factory.mktemp("ui-stack")
    try:
        yield stack_up(root, server=True)
    finally:
        stack_down(root)
