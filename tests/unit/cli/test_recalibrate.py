"""``amad registry recalibrate``: the README's exit codes (the recalibration itself is tested in
tests/unit/detector/test_recalibrate.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from amad.cli import cli, main


def _exit(args: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(args)
    return int(info.value.code or 0)


def test_recalibrate_exit_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    store = ["--store", str(tmp_path / "reg"), "--model", "m", "--set", "contract.data_dir=data"]
    assert _exit(["registry", "recalibrate", *store]) == 4  # no accepted data: DataError
    assert "--entity" in capsys.readouterr().err
    runner = CliRunner()
    out = runner.invoke(cli, ["synth", "--out", "in", "--batches", "1", "--rows", "60",
                              "--entities", "e1"], catch_exceptions=False)  # fmt: skip
    assert out.exit_code == 0, out.output
    ingest = ["ingest", "in", "--no-dvc", "--set", "contract.data_dir=data"]
    assert runner.invoke(cli, ingest, catch_exceptions=False).exit_code == 0
    (tmp_path / "reg").mkdir()
    assert _exit(["registry", "recalibrate", *store, "--data-version", "nope"]) == 4
    assert _exit(["registry", "recalibrate", *store]) == 6  # no champion: ArtifactError
    assert "no champion" in capsys.readouterr().err
