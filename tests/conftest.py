"""Shared test fixtures: free loopback ports, per-test temp dirs, GPU skipping, datasets root."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

# Reusable S3 fixtures (s3_server, s3_env, s3_bucket, s3_store, private_s3_server,
# moto_endpoint, moto_store): see tests/s3server.py.
pytest_plugins = ("tests.s3server",)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def datasets_root() -> Path:
    """The shared real datasets (SMD, MSL); tests using them skip when absent."""
    root = Path(os.environ.get("AMAD_DATASETS", SHARED_DATASETS))
    if not (root / "SMD").is_dir() or not (root / "MSL").is_dir():
        pytest.skip(f"real datasets not found under {root}")
    return root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
