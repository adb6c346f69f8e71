"""Drills on the local S3 server (issue 13, item 1): only SigV4-signed S3 and mutual-TLS gRPC get
in; files private."""

from __future__ import annotations

import socket
import ssl
import stat
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from amad.devstack.seaweed import WEED_COMPONENTS, SeaweedServer


def status_of(method: str, url: str, data: bytes | None = None) -> int:
    """The HTTP status of an unauthenticated request (no SigV4, no JWT)."""
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.slow
def test_filer_and_unsigned_s3_requests_are_refused(
    s3_server: SeaweedServer, s3_bucket: str
) -> None:
    store = s3_server.store(s3_bucket)
    store.put_bytes("models/m/champion.json", b'{"version": "good"}')
    filer = f"http://127.0.0.1:{s3_server.ports['filer']}/buckets/{s3_bucket}/models/m"
    s3 = f"{s3_server.endpoint_url}/{s3_bucket}/models/m"
    attempts = [
        ("GET", f"{filer}/champion.json", None),
        ("GET", f"{filer}/", None),
        ("PUT", f"{filer}/champion.json", b'{"version": "forged"}'),
        ("POST", f"{filer}/planted.json", b"{}"),
        ("DELETE", f"{filer}/champion.json", None),
        ("GET", f"{s3}/champion.json", None),
        ("PUT", f"{s3}/champion.json", b'{"version": "forged"}'),
    ]
    for method, url, data in attempts:
        assert status_of(method, url, data) in (401, 403), (method, url)
    assert store.get_bytes("models/m/champion.json")[0] == b'{"version": "good"}'
    assert not store.exists("models/m/planted.json")


@pytest.mark.slow
def test_server_state_is_private_to_its_owner(s3_server: SeaweedServer) -> None:
    for folder in (s3_server.config_dir, s3_server.data_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    tls = [s3_server.config_dir / name for name in ("grpc-ca.crt", "grpc.crt", "grpc.key")]
    for secret in (s3_server.identities_path, s3_server.security_path, *tls):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    # weed runs with umask 077, but chmods a few volume files (.vif) to 0644 itself: those are
    # still out of reach, since no other user may enter the 0700 data folder above them
    writable = [p for p in Path(s3_server.data_dir).rglob("*")
                if not p.is_symlink() and stat.S_IMODE(p.stat().st_mode) & 0o022]  # fmt: skip
    assert writable == []


def weed_client(server: SeaweedServer, cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run a ``weed`` gRPC client in ``cwd``: it reads ``./security.toml`` (and its certificates)
    only if that folder holds one."""
    return subprocess.run(
        [str(server.binary), *args], cwd=cwd, capture_output=True, timeout=60, check=False
    )


@pytest.mark.slow
def test_grpc_ports_refuse_clients_without_the_stack_certificate(
    s3_server: SeaweedServer, s3_bucket: str, tmp_path: Path
) -> None:
    store = s3_server.store(s3_bucket)
    store.put_bytes("models/m/champion.json", b'{"version": "good"}')
    filer = f"http://127.0.0.1:{s3_server.ports['filer']}/buckets/{s3_bucket}/models/m"
    upload = tmp_path / "upload"
    upload.mkdir()
    (upload / "champion.json").write_text('{"version": "forged"}')
    (upload / "owner.json").write_text('{"by": "owner"}')
    outsider = tmp_path / "outsider"  # no security.toml: what any other local process has
    outsider.mkdir()

    # the owner's client (the stack's certificate) gets through: the path is real
    owner = weed_client(
        s3_server, s3_server.config_dir, "filer.copy", str(upload / "owner.json"), f"{filer}/"
    )
    assert owner.returncode == 0, owner.stdout + owner.stderr
    assert store.get_bytes("models/m/owner.json")[0] == b'{"by": "owner"}'

    attempt = weed_client(
        s3_server, outsider, "filer.copy", str(upload / "champion.json"), f"{filer}/"
    )
    assert attempt.returncode != 0
    assert b"rpc error" in attempt.stdout + attempt.stderr
    assert store.get_bytes("models/m/champion.json")[0] == b'{"version": "good"}'


@pytest.mark.slow
def test_every_grpc_port_demands_a_client_certificate(s3_server: SeaweedServer) -> None:
    context = ssl.create_default_context(cafile=str(s3_server.config_dir / "grpc-ca.crt"))
    context.check_hostname = False
    context.set_alpn_protocols(["h2"])
    grpc_ports = {name: port for name, port in s3_server.ports.items() if name.endswith(".grpc")}
    assert len(grpc_ports) == len(WEED_COMPONENTS)
    for name, port in grpc_ports.items():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            # plaintext gRPC (HTTP/2 preface) is not spoken at all
            raw.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            raw.settimeout(10)
            try:
                reply = raw.recv(64)
            except OSError:
                reply = b""
            assert not reply.startswith(b"\x00"), name  # no HTTP/2 SETTINGS frame back
        with pytest.raises(OSError):  # TLS without a client certificate (SSLError is an OSError)
            tls_without_client_cert(context, port, name)


def tls_without_client_cert(context: ssl.SSLContext, port: int, name: str) -> None:
    """Speak TLS to ``port`` without a client certificate; raise when the server refuses."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        if not tls.recv(64):  # TLS 1.3 reports the refusal on the first read
            raise ConnectionError(f"{name}: closed without a client certificate")
