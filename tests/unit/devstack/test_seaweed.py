"""SeaweedFS helpers that need no server: port plan, identities, private files, command line."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from amad.devstack.seaweed import (
    WEED_COMPONENTS,
    Credentials,
    SeaweedServer,
    allocate_weed_ports,
)
from amad.devstack.tls import write_private


def test_every_listener_gets_its_own_loopback_port() -> None:
    ports = allocate_weed_ports()
    assert set(ports) == {f"{c}{s}" for c in WEED_COMPONENTS for s in ("", ".grpc")}
    assert len(set(ports.values())) == len(ports)
    for comp in WEED_COMPONENTS:
        assert ports[f"{comp}.grpc"] == ports[comp] + 10000  # what weed's admin worker assumes


def test_requested_s3_port_is_kept(tmp_path: Path) -> None:
    from tests.conftest import free_port

    wanted = free_port()
    assert allocate_weed_ports(s3_port=wanted)["s3"] == wanted


def test_credentials_and_identities(tmp_path: Path) -> None:
    a, b = Credentials.generate(), Credentials.generate()
    assert a != b and a.access_key.startswith("AMAD") and len(a.secret_key) >= 30
    ident = json.loads(a.identities_json())["identities"][0]
    assert ident["credentials"] == [{"accessKey": a.access_key, "secretKey": a.secret_key}]
    path = tmp_path / "sub" / "secret.json"
    write_private(path, "x")
    write_private(path, "y")  # replaced, still private
    assert path.read_text() == "y" and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_command_binds_loopback_only(tmp_path: Path) -> None:
    server = SeaweedServer(tmp_path / "d", credentials=Credentials.generate(), binary="/bin/true")
    cmd = server.command()
    assert "-ip=127.0.0.1" in cmd and "-ip.bind=127.0.0.1" in cmd
    assert f"-s3.config={tmp_path / 'identities.json'}" in cmd
    for comp in WEED_COMPONENTS:
        assert f"-{comp}.port={server.ports[comp]}" in cmd
    assert server.endpoint_url == f"http://127.0.0.1:{server.ports['s3']}"
