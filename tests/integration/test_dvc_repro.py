"""``dvc repro`` twice in a copy of this checkout writes the same ``dvc.lock``.

The copy gets the checkout's files (tracked and untracked, nothing git ignores), a tiny model
in its ``params.yaml``, and a dataset rebuilt the README's way (``amad synth`` then
``amad ingest``, which records it with ``dvc add``). The second, forced repro reruns every stage;
every out's md5 (the bundle, the window set, the scores, the tracked metrics and plot table)
must be what the first wrote: nothing a stage declares carries a clock, a host or a commit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TINY = {
    "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 16},
    "train": {"epochs": 2, "max_windows_per_epoch": 64, "device": "cpu"},
}


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{argv}: {done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def _copy_checkout(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _outs(lock: dict[str, object]) -> dict[str, str]:
    stages = lock["stages"]
    assert isinstance(stages, dict)
    return {o["path"]: o["md5"] for s in stages.values() for o in s["outs"]}


@pytest.mark.skipif(shutil.which("git") is None or not (BIN / "dvc").exists(),
                    reason="needs git and dvc in the project's environment")  # fmt: skip
def test_repro_twice_writes_the_same_lock(tmp_path: Path) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    repo = tmp_path / "repo"
    _copy_checkout(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in TINY.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env |= {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    _run(["git", "init", "-q"], repo, env)
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-q", "-m", "copy"], repo, env)
    _run(["amad", "synth", "--out", "batches", "--batches", "2", "--rows", "720",
          "--entities", "e1", "--anomalies", "--seed", "0"], repo, env)  # fmt: skip
    _run(["amad", "ingest", "batches/"], repo, env)

    _run(["dvc", "repro"], repo, env)
    first = yaml.safe_load((repo / "dvc.lock").read_text())
    assert (repo / "runs/pipeline/provenance.json").is_file()  # timings: beside, not inside
    _run(["dvc", "repro", "--force"], repo, env)
    second = yaml.safe_load((repo / "dvc.lock").read_text())

    assert _outs(second) == _outs(first)
    assert second == first
    shown = _run(["dvc", "metrics", "show", "--json"], repo, env)
    assert "metrics/evaluate.json" in shown and "metrics/train.json" in shown
    _run(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], repo, env)
    assert (tmp_path / "plots" / "index.html").is_file()
