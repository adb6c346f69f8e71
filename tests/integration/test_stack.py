"""``amad stack up|down|status`` with the real SeaweedFS binary (and once with a Prefect server)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from amad.cli import cli
from amad.devstack.seaweed import BUCKETS, find_weed
from amad.devstack.stack import is_ours, stack_down, stack_status, stack_up
from amad.errors import StorageAuthError
from amad.storage.s3 import S3Store

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _needs_weed() -> None:
    try:
        find_weed()
    except Exception as exc:
        pytest.skip(str(exc))


def _env(root: Path) -> dict[str, str]:
    out = {}
    for line in (root / "env").read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            out[key] = value
    return out


def test_up_status_down(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    try:
        status = stack_up(root)
        s3 = status["s3"]
        assert s3["running"] and s3["healthy"] and s3["endpoint"].startswith("http://127.0.0.1:")
        for name in ("env", "credentials.json", "identities.json"):
            assert stat.S_IMODE((root / name).stat().st_mode) == 0o600
        env = _env(root)
        good = S3Store(
            BUCKETS[0],
            endpoint_url=env["AWS_ENDPOINT_URL_S3"],
            access_key=env["AWS_ACCESS_KEY_ID"],
            secret_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        for bucket in BUCKETS:
            assert S3Store(
                bucket, endpoint_url=good.endpoint_url, client=good.client
            ).versioning_enabled()
        bad = S3Store(
            BUCKETS[0],
            endpoint_url=env["AWS_ENDPOINT_URL_S3"],
            access_key=env["AWS_ACCESS_KEY_ID"],
            secret_key="not-the-secret",
        )
        with pytest.raises(StorageAuthError):
            bad.list()
        assert stack_up(root)["s3"]["pid"] == s3["pid"]  # idempotent: nothing new started
        result = CliRunner().invoke(cli, ["stack", "status", "--dir", str(root), "--json"])
        assert result.exit_code == 0 and json.loads(result.output)["s3"]["healthy"] is True
        good.put_bytes("kept.txt", b"survives a restart")
    finally:
        stopped = stack_down(root)
    assert stopped == ["s3"]
    assert "s3" not in stack_status(root)
    assert stack_down(root) == []
    try:  # up again: same endpoint, same keys, same data
        again = stack_up(root)["s3"]
        assert again["endpoint"] == s3["endpoint"] and _env(root) == env
        assert good.get_bytes("kept.txt")[0] == b"survives a restart"
    finally:
        assert stack_down(root) == ["s3"]


def test_down_leaves_a_foreign_process_alone(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        root = tmp_path / "stack"
        root.mkdir()
        forged = {"pid": other.pid, "cmdline": ["/usr/bin/weed", "mini"], "endpoint": "x"}
        (root / "state.json").write_text(json.dumps({"s3": forged}))
        assert not is_ours(forged)
        assert stack_down(root) == []
        assert other.poll() is None  # still running
    finally:
        other.kill()
        other.wait()


def test_up_with_prefect_server_and_work_pools(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    try:
        status = stack_up(root, server=True)
        prefect = status["prefect"]
        assert prefect["healthy"] and prefect["work_pools"] == ["cpu", "gpu"]
        assert _env(root)["PREFECT_API_URL"] == prefect["api_url"]
        assert (root / "prefect").is_dir()  # PREFECT_HOME inside the state folder
        # the server's database and log are the owner's only (issue 13: prefect.db was 0644)
        assert (root / "prefect").stat().st_mode & 0o077 == 0
        assert (root / "prefect.log").stat().st_mode & 0o077 == 0
        db = list((root / "prefect").glob("*.db"))
        assert db and all(f.stat().st_mode & 0o077 == 0 for f in db), db
        # The UI calls the API at the URL /ui-settings gives it: the server's own free port,
        # never the default 4200 (issue 11: an empty UI on every port but 4200).
        ui = prefect["ui_url"]
        with urllib.request.urlopen(f"{ui}/ui-settings", timeout=10) as resp:
            settings = json.loads(resp.read())
        assert settings["api_url"] == prefect["api_url"] == f"{ui}/api"
        assert f":{prefect['port']}/" in settings["api_url"]
        assert _env(root)["PREFECT_UI_URL"] == ui
    finally:
        stopped = stack_down(root)
    assert sorted(stopped) == ["prefect", "s3"]
    assert not is_ours(prefect)
