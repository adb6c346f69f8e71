"""The parent ``pipeline`` run's summary artifact, seen in the UI of a real ``amad stack up
--server`` by headless Chromium.

A tiny pipeline (``tests/flows/helpers.py``: one entity, one epoch, registry in the stack's
``amad-models`` bucket, validation reports and quarantine in ``amad-data``) runs in a subprocess against the session's stack (``conftest.ui_stack``),
the way a person's shell would after ``source .stack/env``. Then Chromium checks that the runs
page lists the ``pipeline`` run; that the run's ``pipeline-summary`` artifact page renders the
summary table, with a presigned champion link and a Data Docs link per batch that resolve
(the page served as HTML), and takes a screenshot of it
(copied to ``$AMAD_SCREENSHOT_DIR/ui-pipeline-summary.png`` when set: the README's ``docs/``
image); and that the scores plot's embedded PNG survives the UI's markdown.

Skips with a reason where ``/usr/bin/chromium`` (Debian's ``chromium`` package) is absent.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.browser.chromium import chromium, needs_chromium

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = "ui-pipeline-summary.png"

pytestmark = [pytest.mark.slow, needs_chromium]

# Runs in the subprocess: a workspace with two good batches, the pipeline, then the ids of its
# summary artifact and of the scores plot (a subflow's) from the Prefect client. Prints one JSON
# line last.
PIPELINE_RUN = """
import json, sys
from pathlib import Path
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from flows.pipeline import pipeline
from tests.flows.helpers import PARAMS, make_workspace

overrides, batches = make_workspace(Path(sys.argv[1]))
overrides.update({"publish.store": "s3", "publish.bucket": "amad-models",
                  "contract.reports_dir": "s3://amad-data/validation",
                  "contract.quarantine_dir": "s3://amad-data/quarantine"})
state = pipeline([str(b) for b in batches[:2]], config_path=PARAMS, overrides=overrides,
                 return_state=True)
run_id = state.state_details.flow_run_id
with get_client(sync_client=True) as client:
    found = client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["pipeline-summary"])))
    plots = client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["scores-vs-labels"])))
ids = [str(a.id) for a in found if a.flow_run_id == run_id]
print(json.dumps({"state": state.name, "run_id": str(run_id), "artifacts": ids,
                  "plots": [str(a.id) for a in plots]}))
"""


def _stack_env(env_file: Path) -> dict[str, str]:
    """The ``export K=V`` lines of the stack's env file."""
    pairs = (ln.removeprefix("export ").split("=", 1) for ln in env_file.read_text().splitlines()
             if ln.startswith("export ") and "=" in ln)  # fmt: skip
    return dict(pairs)


def _run_pipeline(status: dict[str, Any], tmp_path: Path) -> tuple[dict[str, Any], str]:
    """The tiny pipeline against the stack, in a process of its own; (its JSON line, output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_"))}
    env.update(_stack_env(Path(status["env_file"])))  # S3 endpoint, keys, PREFECT_API_URL
    env.update(PREFECT_HOME=str(tmp_path / "client-home"), PYTHONPATH=str(REPO),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_EXTRA_LOGGERS="amad")  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", PIPELINE_RUN, str(work / "ws")],
        cwd=work,  # runs/ (windows, bundles) lands here
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), output


def test_the_pipeline_summary_renders_in_the_ui(ui_stack: dict[str, Any], tmp_path: Path) -> None:
    ui, s3 = ui_stack["prefect"]["ui_url"], ui_stack["s3"]["endpoint"]
    result, output = _run_pipeline(ui_stack, tmp_path)
    assert result["state"] == "Completed" and len(result["artifacts"]) == 1, result
    runs = chromium(f"{ui}/runs", tmp_path / "chrome", ["--dump-dom"])
    assert "Something went wrong" not in runs and "pipeline" in runs

    shot = tmp_path / SCREENSHOT
    dom = chromium(f"{ui}/artifacts/artifact/{result['artifacts'][0]}", tmp_path / "chrome",
                   ["--dump-dom", f"--screenshot={shot}", "--window-size=1400,1000"])  # fmt: skip
    assert "unit-1" in dom and "promoted" in dom, dom[-3000:]  # the summary table, rendered
    assert "Data version" in dom and "file://" not in dom
    links = [html.unescape(u) for u in re.findall(r'href="([^"]+)"', dom)]
    pointer = next(u for u in links if u.startswith(s3) and "/champion.json?" in u)
    with urllib.request.urlopen(pointer, timeout=10) as resp:
        assert json.loads(resp.read())["version"]  # the champion pointer itself, presigned
    docs = [u for u in links if u.startswith(s3) and "/validation/site/batches/" in u]
    assert len(docs) == 2, links  # one Data Docs page per batch, on the stack's S3
    with urllib.request.urlopen(docs[0], timeout=10) as resp:
        assert resp.headers.get_content_type() == "text/html" and b"b0.csv" in resp.read()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("AMAD_SCREENSHOT_DIR"):
        out = Path(os.environ["AMAD_SCREENSHOT_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, out / SCREENSHOT)

    plot = chromium(f"{ui}/artifacts/artifact/{result['plots'][0]}", tmp_path / "chrome",
                    ["--dump-dom"])  # fmt: skip
    assert 'src="data:image/png;base64,' in plot  # the embedded PNG survives the UI's markdown
    assert "Timeouts in worker threads" not in output  # routed to DEBUG by flows.limits
