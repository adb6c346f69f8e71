"""Loaders: real SMD/MSL files, the generic layout on temp files, typed errors, dispatch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amad.config import DataConfig, SyntheticConfig
from amad.errors import ConfigError, DataError, DatasetNotFoundError
from amad.series.data import data_fingerprint, make_series
from amad.series.loaders import (
    list_entities,
    load_generic,
    load_series,
    load_smd,
    load_telemanom,
)

# --- real data -------------------------------------------------------------------------------


def test_smd_machine_shapes_and_labels(datasets_root: Path) -> None:
    s = load_smd(datasets_root / "SMD", "machine-1-2")
    assert s.train.shape == (23694, 38) and s.test.shape == (23694, 38)
    assert s.train.dtype == np.float32 and s.labels is not None and s.labels.dtype == np.int8
    assert s.labels.shape == (23694,)
    assert s.labels.mean() == pytest.approx(0.0229, abs=5e-4)  # README: 2.29 %
    assert (s.name, s.entity) == ("smd", "machine-1-2")


def test_msl_channel_ranges_are_inclusive(datasets_root: Path) -> None:
    s = load_telemanom(datasets_root / "MSL", "C-1", spacecraft="MSL")
    assert s.train.shape[1] == 55 and s.test.shape == (2264, 55)
    assert s.labels is not None
    # labeled_anomalies.csv: C-1 -> [[550, 750], [2100, 2210]], both ends included
    assert s.labels.sum() == (750 - 550 + 1) + (2210 - 2100 + 1)
    assert s.labels[550] == s.labels[750] == s.labels[2100] == s.labels[2210] == 1
    assert s.labels[549] == s.labels[751] == s.labels[2099] == s.labels[2211] == 0
    assert s.test.dtype == np.float32  # float64 on disk


def test_msl_total_anomaly_points_match_readme(datasets_root: Path) -> None:
    cfg = DataConfig(source="msl", root=str(datasets_root / "MSL"))
    channels = list_entities(cfg)
    assert len(channels) == 27 and "C-1" in channels and "T-13" in channels
    root = datasets_root / "MSL"
    labels = [load_telemanom(root, c).labels for c in channels]
    assert sum(int(lab.sum()) for lab in labels if lab is not None) == 7766  # README: 7,766


def test_dispatch_through_env_root(datasets_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMAD_DATASETS", str(datasets_root))
    smd = load_series(DataConfig(source="smd", entity="machine-2-3"))
    assert smd.entity == "machine-2-3" and smd.n_channels == 38
    assert "machine-1-2" in list_entities(DataConfig(source="smd"))
    msl = load_series(DataConfig(source="telemanom", spacecraft="MSL", entity="D-14"))
    assert msl.n_channels == 55 and msl.name == "msl"


def test_missing_entity_lists_alternatives(datasets_root: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"machine-1-1.*machine-1-2"):
        load_smd(datasets_root / "SMD", "machine-1-1")  # not in this copy
    with pytest.raises(DatasetNotFoundError, match=r"available: C-1, C-2"):
        load_telemanom(datasets_root / "MSL", "P-1", spacecraft="MSL")  # a SMAP channel
    with pytest.raises(DatasetNotFoundError, match="machine-1-2"):
        load_series(DataConfig(source="smd", root=str(datasets_root / "SMD")))  # no entity


def test_smap_filter_finds_nothing_in_msl_copy(datasets_root: Path) -> None:
    # The label file lists SMAP rows too, but their arrays are not shipped here.
    assert (
        list_entities(
            DataConfig(source="telemanom", spacecraft="SMAP", root=str(datasets_root / "MSL"))
        )
        == []
    )


# --- generic layout --------------------------------------------------------------------------


def _write(path: Path, arr: np.ndarray, header: list[str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, arr)
    else:
        pd.DataFrame(arr, columns=header).to_csv(path, index=False, header=header is not None)


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
@pytest.mark.parametrize("with_labels", [True, False])
def test_generic_layout(tmp_path: Path, suffix: str, with_labels: bool) -> None:
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(50, 3)), rng.normal(size=(40, 3))
    labels = (rng.random(40) < 0.2).astype(int)
    header = ["a", "b", "c"] if suffix == ".csv" else None
    _write(tmp_path / "train" / f"pump{suffix}", train, header)
    _write(tmp_path / "test" / f"pump{suffix}", test, header)
    if with_labels:
        _write(
            tmp_path / "labels" / f"pump{suffix}", labels[:, None], ["label"] if header else None
        )
    s = load_generic(tmp_path, "pump")
    np.testing.assert_allclose(s.train, train.astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(s.test, test.astype(np.float32), rtol=1e-6)
    if with_labels:
        assert s.labels is not None and np.array_equal(s.labels, labels)
    else:
        assert s.labels is None
    cfg = DataConfig(source="generic", root=str(tmp_path), entity="pump")
    assert list_entities(cfg) == ["pump"]
    assert load_series(cfg).fingerprint() == s.fingerprint()


def test_generic_csv_without_header(tmp_path: Path) -> None:
    _write(tmp_path / "train" / "x.csv", np.arange(20.0).reshape(10, 2))
    _write(tmp_path / "test" / "x.csv", np.arange(8.0).reshape(4, 2))
    s = load_generic(tmp_path, "x")
    assert s.train.shape == (10, 2) and s.train[0, 1] == 1.0


def test_generic_missing_entity_lists_alternatives(tmp_path: Path) -> None:
    _write(tmp_path / "train" / "a.npy", np.ones((5, 2)))
    _write(tmp_path / "test" / "a.npy", np.ones((5, 2)))
    with pytest.raises(DatasetNotFoundError, match=r"'b' not found; available: a"):
        load_generic(tmp_path, "b")
    with pytest.raises(DatasetNotFoundError, match="root"):
        load_generic(tmp_path / "nowhere", "a")


@pytest.mark.parametrize(
    ("train", "test", "labels", "message"),
    [
        (np.array([[1.0, np.nan]]), np.ones((3, 2)), None, "NaN/inf"),
        (np.ones((3, 2)), np.array([[np.inf, 0.0]]), None, "NaN/inf"),
        (np.ones((3, 2)), np.ones((3, 3)), None, "2 channels but test has 3"),
        (np.ones((3, 2)), np.ones((3, 2)), np.zeros(4), "4 labels for 3 test steps"),
        (np.ones((3, 2)), np.ones((3, 2)), np.array([0, 2, 1]), "0/1"),
        (np.ones((0, 2)), np.ones((3, 2)), None, "empty"),
        (np.ones((3, 2, 2)), np.ones((3, 2)), None, "shape"),
    ],
)
def test_bad_arrays_raise_data_error(
    train: np.ndarray, test: np.ndarray, labels: np.ndarray | None, message: str
) -> None:
    with pytest.raises(DataError, match=message):
        make_series("t", "e", train, test, labels)


def test_generic_files_with_nan_and_text_are_rejected(tmp_path: Path) -> None:
    _write(tmp_path / "train" / "n.csv", np.array([[1.0, 2.0], [np.nan, 1.0]]), ["a", "b"])
    _write(tmp_path / "test" / "n.csv", np.ones((2, 2)), ["a", "b"])
    with pytest.raises(DataError, match="NaN"):
        load_generic(tmp_path, "n")
    (tmp_path / "train" / "n.csv").write_text("a,b\n1,2\n3,oops\n")
    with pytest.raises(DataError, match="oops"):
        load_generic(tmp_path, "n")


def test_telemanom_layout_on_temp_files(tmp_path: Path) -> None:
    _write(tmp_path / "train" / "A-1.npy", np.zeros((30, 4)))
    _write(tmp_path / "test" / "A-1.npy", np.zeros((20, 4)))
    _write(tmp_path / "train" / "B-1.npy", np.zeros((30, 4)))
    _write(tmp_path / "test" / "B-1.npy", np.zeros((20, 4)))
    (tmp_path / "labeled_anomalies.csv").write_text(
        "chan_id,spacecraft,anomaly_sequences,class,num_values\n"
        'A-1,SMAP,"[[0, 0], [18, 19]]",[point],20\n'
        'B-1,MSL,"[[5, 25]]",[point],20\n'
    )
    s = load_telemanom(tmp_path, "A-1", spacecraft="SMAP")
    assert s.labels is not None and s.labels.tolist() == [1] + [0] * 17 + [1, 1]
    assert s.name == "smap"
    with pytest.raises(DataError, match=r"\[5, 25\] outside"):
        load_telemanom(tmp_path, "B-1", spacecraft="MSL")
    with pytest.raises(DatasetNotFoundError, match="available: A-1"):
        load_telemanom(tmp_path, "B-1", spacecraft="SMAP")


def test_missing_root_and_unsupported_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMAD_DATASETS", raising=False)
    with pytest.raises(DatasetNotFoundError, match="AMAD_DATASETS"):
        load_series(DataConfig(source="smd", entity="machine-1-2"))
    with pytest.raises(ConfigError, match="parquet"):
        load_series(DataConfig(source="parquet"))


# --- synthetic dispatch and fingerprint -------------------------------------------------------


def test_synthetic_source_is_the_default() -> None:
    cfg = DataConfig(synthetic=SyntheticConfig(train_steps=400, test_steps=300, n_channels=3))
    s = load_series(cfg)
    assert s.train.shape == (400, 3) and s.test.shape == (300, 3)
    assert s.labels is not None and s.labels.sum() > 0
    assert load_series(cfg.model_copy(update={"entity": "pump-7"})).entity == "pump-7"


def test_fingerprint_sees_dtype_shape_and_values() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    fp = data_fingerprint(a)
    assert len(fp) == 64 and fp == data_fingerprint(a.copy())
    assert fp != data_fingerprint(a.reshape(3, 2))
    assert fp != data_fingerprint(a.astype(np.float64))
    b = a.copy()
    b[1, 2] += 1
    assert fp != data_fingerprint(b)
    assert data_fingerprint(a, None) != data_fingerprint(a)


# --- score channels: what a dataset declares, what score.channels asks -------------------------


def test_telemanom_declares_column_zero_as_the_scored_telemetry(datasets_root: Path) -> None:
    s = load_telemanom(datasets_root / "MSL", "C-1", spacecraft="MSL")
    assert s.score_channels == (0,)
    assert s.channel_names is not None and len(s.channel_names) == s.n_channels == 55
    assert s.channel_names[:2] == ("telemetry", "command_1")
    assert load_smd(datasets_root / "SMD", "machine-1-2").score_channels is None  # all


def test_resolve_score_channels_by_index_and_name() -> None:
    from amad.series.data import resolve_score_channels

    rng = np.random.default_rng(0)
    plain = make_series("g", "e", rng.normal(size=(50, 3)), rng.normal(size=(40, 3)))
    named = make_series("g", "e", plain.train, plain.test, channel_names=("a", "b", "c"),
                        score_channels=(0,))  # fmt: skip
    assert resolve_score_channels(plain) is None
    assert resolve_score_channels(named) == (0,)  # the declaration
    assert resolve_score_channels(named, [2, "b", 2]) == (2, 1)  # an explicit choice overrides
    assert resolve_score_channels(plain, [1]) == (1,)
    with pytest.raises(ConfigError, match="no channel named"):
        resolve_score_channels(plain, ["a"])
    with pytest.raises(ConfigError, match="not within"):
        resolve_score_channels(named, [3])
    with pytest.raises(DataError, match="score channels"):
        make_series("g", "e", plain.train, plain.test, score_channels=(5,))
    with pytest.raises(DataError, match="channel names"):
        make_series("g", "e", plain.train, plain.test, channel_names=("a",))
