"""amad.files: atomic writes leave the old file or the new one, never a half or a temp file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from amad.files import atomic_write, atomic_write_with, strict_json, write_json


def test_atomic_write_replaces_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "a.txt"
    atomic_write(path, "one")
    atomic_write(path, b"two", fsync=True)
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["a.txt"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    atomic_write(path, b"old")

    def broken(fh: object) -> None:
        fh.write(b"partial")  # type: ignore[attr-defined]
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_with(path, broken)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_strict_json_writes_nonfinite_as_null_and_numpy_as_numbers(tmp_path: Path) -> None:
    obj = {
        "b": math.nan,
        "a": [np.float32(1.5), np.int64(3), -math.inf],
        "c": {"d": np.bool_(True)},
    }
    text = strict_json(obj)
    assert text.endswith("\n") and text.index('"a"') < text.index('"b"')
    assert json.loads(text) == {"a": [1.5, 3, None], "b": None, "c": {"d": True}}
    path = write_json(tmp_path / "x.json", obj)
    assert json.loads(path.read_text()) == json.loads(text)
