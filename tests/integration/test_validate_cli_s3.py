"""``amad validate --report-dir s3://...`` writes its reports to the bucket, not a local folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amad.storage.s3 import S3Store
from tests.unit.helpers import run_cli, small_contract_config


def test_validate_reports_go_to_s3(
    tmp_path: Path, s3_env: dict[str, str], s3_store: S3Store,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    cfg = small_contract_config(tmp_path)
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps(cfg.model_dump(mode="json")))
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(["synth", "--out", "in", "--batches", "1", "--rows", "30",
                            "--config", str(params)], capsys)  # fmt: skip
    assert code == 0
    batch = out.split()[0]
    target = f"s3://{s3_store.bucket}/validation"
    code, out, _ = run_cli(["validate", batch, "--report-dir", target, "--config", str(params)],
                           capsys)  # fmt: skip
    assert code == 0, out
    keys = s3_store.list("validation/")
    assert any(k.endswith("/report.json") for k in keys), keys
    assert f"[report: {target}/" in out
    assert not (tmp_path / "s3:").exists()  # the URI was not folded into a local path
