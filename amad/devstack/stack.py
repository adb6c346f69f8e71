"""``amad stack up|down|status``: the local stack's lifecycle, all state under one folder.

Layout of the state folder (``.stack`` by default)::

    state.json         pid, command line, ports and endpoint of every service ``up`` started
    credentials.json   SigV4 keys generated for this stack (0600), reused by the next ``up``
    identities.json    the same keys in SeaweedFS's ``-s3.config`` format (0600)
    env                ``source .stack/env``: AWS_ENDPOINT_URL_S3, keys, region (and
                       PREFECT_API_URL with ``--server``) (0600)
    weed/  weed.log    S3 data and log
    prefect/ prefect.log  PREFECT_HOME of the Prefect server and its log

``up`` starts SeaweedFS (buckets ``amad-models``, ``amad-data``, ``amad-scores`` with
versioning) and, with ``server=True``, ``prefect server start`` plus the process work pools
``cpu`` and ``gpu``. Services run detached in their own process group and outlive the command.
``down`` signals a recorded pid only if that process still has the recorded command line, so it
never stops something it did not start. The library runs the ``prefect`` CLI as a subprocess and
never imports Prefect.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from amad.devstack.seaweed import (
    BUCKETS,
    REGION,
    Credentials,
    SeaweedServer,
    create_buckets,
    find_tool,
    free_loopback_port,
    port_free,
    remove_weed_sockets,
    wait_http,
)
from amad.devstack.tls import write_private
from amad.errors import StackError

log = logging.getLogger(__name__)

DEFAULT_DIR = ".stack"
WORK_POOLS = ("cpu", "gpu")
# Detached services outlive their Popen objects; keep them referenced so no ResourceWarning fires.
_DETACHED: list[Any] = []


def _read_json(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise StackError(f"{path} is corrupt: {exc}") from exc
    return obj if isinstance(obj, dict) else {}


def _cmdline(pid: int) -> list[str] | None:
    """The argv of a live process, or None when it is gone (or a zombie)."""
    proc = Path(f"/proc/{pid}/cmdline")
    if proc.parent.exists():
        try:
            raw = proc.read_bytes()
        except OSError:
            return None
        return [a.decode(errors="replace") for a in raw.split(b"\0") if a] or None
    out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True)
    return out.stdout.strip().split() if out.returncode == 0 and out.stdout.strip() else None


def is_ours(service: dict[str, Any]) -> bool:
    """True when the recorded pid is alive and still runs the recorded command line."""
    pid, cmd = service.get("pid"), service.get("cmdline")
    if not pid or not cmd:
        return False
    return _cmdline(int(pid)) == list(cmd)


def _stop_service(name: str, service: dict[str, Any], timeout: float = 20.0) -> bool:
    """SIGTERM the service's process group, then SIGKILL after ``timeout``; True if stopped."""
    if not is_ours(service):
        log.info(
            "%s (pid %s) is not running or is no longer ours; left alone", name, service.get("pid")
        )
        return False
    pid = int(service["pid"])
    pgid = os.getpgid(pid)
    target = pgid if pgid == pid else None  # our own session leader: stop its children too
    for sig in (signal.SIGTERM, signal.SIGKILL):
        os.killpg(target, sig) if target else os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and is_ours(service):
            time.sleep(0.1)
        for child in _DETACHED:  # reap it when this process started it (no zombie)
            child.poll()
        if not is_ours(service):
            log.info("stopped %s (pid %d)", name, pid)
            return True
    raise StackError(f"{name} (pid {pid}) did not stop")


def _env_file(state: dict[str, Any], creds: Credentials, root: Path) -> str:
    lines = [
        f"# amad local stack in {root}: source this file",
        f"export AWS_ENDPOINT_URL_S3={state['s3']['endpoint']}",
        f"export AWS_ACCESS_KEY_ID={creds.access_key}",
        f"export AWS_SECRET_ACCESS_KEY={creds.secret_key}",
        f"export AWS_REGION={REGION}",
        f"export AMAD_STACK_DIR={root}",
    ]
    if "prefect" in state:
        lines.append(f"export PREFECT_API_URL={state['prefect']['api_url']}")
        if state["prefect"].get("ui_url"):
            lines.append(f"export PREFECT_UI_URL={state['prefect']['ui_url']}")
    return "\n".join(lines) + "\n"


def _credentials(root: Path) -> Credentials:
    saved = _read_json(root / "credentials.json")
    if saved.get("access_key") and saved.get("secret_key"):
        return Credentials(saved["access_key"], saved["secret_key"])
    creds = Credentials.generate()
    write_private(root / "credentials.json", json.dumps(creds.__dict__, indent=2))
    return creds


def _start_s3(root: Path, creds: Credentials, s3_port: int | None) -> dict[str, Any]:
    server = SeaweedServer(root / "weed", credentials=creds, s3_port=s3_port, config_dir=root)
    waited = server.start(timeout=60.0)
    _DETACHED.append(server.process)
    try:
        create_buckets(server, BUCKETS)
    except Exception:
        server.stop()
        raise
    pid = int(server.pid or 0)
    return {
        "pid": pid,
        "cmdline": _cmdline(pid) or server.command(),
        "ports": server.ports,
        "endpoint": server.endpoint_url,
        "buckets": list(BUCKETS),
        "ready_s": round(waited, 2),
    }


def _prefect_cmd() -> list[str]:
    tool = find_tool("prefect")
    return [str(tool)] if tool else [sys.executable, "-m", "prefect"]


def _prefect_env(root: Path, api_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(root / "prefect")
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def _server_env(root: Path, port: int) -> dict[str, str]:
    """The server's environment: it must tell the UI its real API URL, not the default 4200.

    The UI reads ``api_url`` from ``/ui-settings``; Prefect derives it from
    ``PREFECT_UI_API_URL``, else from ``PREFECT_SERVER_API_HOST``/``PORT`` (not from ``--port``),
    so all three are set here, with ``PREFECT_UI_URL`` for the links the server builds.
    """
    env = _prefect_env(root)
    env["PREFECT_SERVER_API_HOST"] = "127.0.0.1"
    env["PREFECT_SERVER_API_PORT"] = str(port)
    env["PREFECT_UI_API_URL"] = f"http://127.0.0.1:{port}/api"
    env["PREFECT_UI_URL"] = f"http://127.0.0.1:{port}"
    return env


def _start_prefect(root: Path, port: int | None, timeout: float = 120.0) -> dict[str, Any]:
    port = port or free_loopback_port()
    cmd = [*_prefect_cmd(), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    (root / "prefect").mkdir(mode=0o700, parents=True, exist_ok=True)
    (root / "prefect").chmod(0o700)  # prefect.db holds every run's parameters and logs
    fd = os.open(root / "prefect.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with open(fd, "ab") as logf:
        proc = subprocess.Popen(
            cmd,
            env=_server_env(root, port),
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=0o077,  # prefect.db and everything else the server writes: owner only
        )
    _DETACHED.append(proc)
    api_url = f"http://127.0.0.1:{port}/api"
    ui_url = f"http://127.0.0.1:{port}"
    service = {"pid": proc.pid, "cmdline": cmd, "port": port, "api_url": api_url, "ui_url": ui_url}
    try:
        waited = wait_http(api_url + "/health", timeout=timeout, proc=proc)
        for pool in WORK_POOLS:
            subprocess.run(
                [*_prefect_cmd(), "work-pool", "create", pool, "--type", "process", "--overwrite"],
                env=_prefect_env(root, api_url),
                check=True,
                capture_output=True,
                timeout=120,
            )
    except (StackError, subprocess.SubprocessError) as exc:
        _stop_service("prefect", {**service, "cmdline": _cmdline(proc.pid) or cmd})
        raise StackError(f"Prefect server failed: {exc}") from exc
    service["cmdline"] = _cmdline(proc.pid) or cmd  # as the OS shows it (script shebangs)
    service["ready_s"] = round(waited, 2)
    service["work_pools"] = list(WORK_POOLS)
    return service


def stack_up(
    state_dir: str | Path = DEFAULT_DIR,
    *,
    s3_port: int | None = None,
    server: bool = False,
    prefect_port: int | None = None,
) -> dict[str, Any]:
    """Start what is not already running; return the state (also written to state.json)."""
    root = Path(state_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    state = _read_json(root / "state.json")
    creds = _credentials(root)
    last = state.get("last_ports", {})  # a restarted stack keeps its endpoints when it can
    if not (state.get("s3") and is_ours(state["s3"])):
        state["s3"] = _start_s3(root, creds, s3_port or _reusable(last.get("s3")))
        _save(root, state, creds)
    if server and not (state.get("prefect") and is_ours(state["prefect"])):
        port = prefect_port or _reusable(last.get("prefect"))
        state["prefect"] = _start_prefect(root, port)
    elif not server and state.get("prefect") and not is_ours(state["prefect"]):
        state.pop("prefect")
    _save(root, state, creds)
    return stack_status(root)


def _reusable(port: Any) -> int | None:
    """``port`` when it is a number and free on 127.0.0.1 now, else None."""
    return port if isinstance(port, int) and port_free(port) else None


def _save(root: Path, state: dict[str, Any], creds: Credentials) -> None:
    (root / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    write_private(root / "env", _env_file(state, creds, root))


def stack_down(state_dir: str | Path = DEFAULT_DIR) -> list[str]:
    """Stop the services ``up`` started (only those still ours); return their names."""
    root = Path(state_dir).resolve()
    state = _read_json(root / "state.json")
    stopped = []
    for name in ("prefect", "s3"):
        service = state.pop(name, None)
        if service:
            port = service.get("port") or service.get("ports", {}).get("s3")
            state.setdefault("last_ports", {})[name] = port
        if service and _stop_service(name, service):
            stopped.append(name)
        if name == "s3" and service:
            remove_weed_sockets(service.get("ports", {}))
    if (root / "state.json").exists():
        (root / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    return stopped


def stack_status(state_dir: str | Path = DEFAULT_DIR) -> dict[str, Any]:
    """What runs, where, and whether it answers."""
    root = Path(state_dir).resolve()
    state = _read_json(root / "state.json")
    out: dict[str, Any] = {"dir": str(root), "env_file": str(root / "env")}
    for name, url_key, probe in (("s3", "endpoint", "/"), ("prefect", "api_url", "/health")):
        service = state.get(name)
        if not service:
            continue
        running = is_ours(service)
        healthy = False
        if running:
            try:
                wait_http(service[url_key] + probe, timeout=2.0)
                healthy = True
            except StackError:
                healthy = False
        info = {k: v for k, v in service.items() if k != "cmdline"}
        out[name] = {**info, "running": running, "healthy": healthy}
    return out
