"""Shared builders for the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from amad.config import AmadConfig, build_config


def small_contract_config(root: Path) -> AmadConfig:
    """A 3-metric contract with its data, quarantine and reports folders under ``root``."""
    return build_config(
        {
            "contract": {
                "columns": [{"name": f"m{i}"} for i in range(3)],
                "data_dir": str(root / "data"),
                "quarantine_dir": str(root / "q"),
                "reports_dir": str(root / "reports"),
            },
            "windows": {"length": 20, "score_stride": 20, "train_stride": 5},
            "data": {"synthetic": {"n_channels": 3}},
        }
    )


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the real ``amad`` console entry point; (exit code, stdout, stderr)."""
    from amad.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err
