"""Reusable S3 fixtures (a pytest plugin listed in ``tests/conftest.py``'s ``pytest_plugins``).

Real server (SeaweedFS ``weed mini`` on 127.0.0.1, free ports, temp dir, SigV4 enforced):

- ``s3_server`` (session): the running ``amad.devstack.seaweed.SeaweedServer``; use ``.endpoint_url``,
  ``.credentials`` (access/secret key), ``.aws_env()`` (env vars for boto3/DVC/s3fs) and
  ``.store(bucket)`` (an ``S3Store``). Started once per session, stopped at the end.
- ``s3_env`` (function): ``s3_server.aws_env()`` set in ``os.environ`` for one test; yields it.
- ``s3_bucket`` (function): a fresh, versioned bucket name on ``s3_server``.
- ``s3_store`` (function): an ``S3Store`` on ``s3_bucket``.
- ``private_s3_server`` (module): a server of the module's own that tests may stop/kill and
  restart (``.stop(kill=True)``, ``.start()``, same ports and data).

Fast in-process fake (accepts any credentials, not a reliability oracle):

- ``moto_endpoint`` (session): endpoint URL of a ``moto`` ``ThreadedMotoServer``.
- ``moto_store`` (function): an ``S3Store`` on a fresh bucket there.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from amad.devstack.seaweed import REGION, Credentials, SeaweedServer, find_weed, free_loopback_port
from amad.errors import StackError
from amad.storage.s3 import S3Store


def start_seaweed(root: Path) -> SeaweedServer:
    """Start a SeaweedFS server with fresh SigV4 credentials under ``root``; skip if no binary."""
    try:
        find_weed()
    except StackError as exc:
        pytest.skip(str(exc))
    server = SeaweedServer(root / "data", credentials=Credentials.generate(), config_dir=root)
    server.start(timeout=60.0)
    return server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    server = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def private_s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    server = start_seaweed(tmp_path_factory.mktemp("seaweed-private"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = s3_server.aws_env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def new_bucket(server: SeaweedServer, prefix: str = "t") -> str:
    """Create a fresh versioned bucket on ``server`` and return its name."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    server.store(name).ensure_bucket(versioning=True)
    return name


@pytest.fixture
def s3_bucket(s3_server: SeaweedServer) -> str:
    return new_bucket(s3_server)


@pytest.fixture
def s3_store(s3_server: SeaweedServer, s3_bucket: str) -> S3Store:
    return s3_server.store(s3_bucket)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_loopback_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto_store(moto_endpoint: str) -> S3Store:
    store = S3Store(
        f"m-{uuid.uuid4().hex[:12]}",
        endpoint_url=moto_endpoint,
        access_key="testing",
        secret_key="testing",
        region=REGION,
    )
    store.ensure_bucket(versioning=True)
    return store
