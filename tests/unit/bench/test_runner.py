"""``amad bench`` end to end on small synthetic data, its failure handling, and one real SMD machine.

``test_vus_pr_recomputed_independently`` re-derives VUS-PR from the dumped ``.npy`` files with a
plain loop transcription of the definition (no code shared with ``amad.evaluation.vus``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from amad.bench.runner import BenchSpec, data_config, run_bench
from amad.cli.bench import bench
from amad.series.loaders import load_series

SMALL = ["--set", "data.synthetic.train_steps=1500", "--set", "data.synthetic.test_steps=1200",
         "--set", "data.synthetic.n_channels=4"]  # fmt: skip
TINY_AMAD = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=1",
             "--set", "model.d_ff=16", "--set", "train.epochs=1",
             "--set", "train.max_windows_per_epoch=32", "--set", "windows.length=32",
             "--set", "windows.score_stride=16", "--set", "train.min_steps=0"]  # fmt: skip


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    args = ["--dataset", "synthetic", "--entities", "seed-0,seed-1,bogus",
            "--detectors", "random,pca,at", "--out", str(out), "--max-buffer", "20",
            *SMALL, *TINY_AMAD]  # fmt: skip
    result = CliRunner().invoke(bench, args)
    assert result.exit_code == 0, result.output
    return out


def test_outputs_are_complete(synthetic_run: Path) -> None:
    doc = json.loads((synthetic_run / "results.json").read_text())
    assert doc["entities_requested"] == ["seed-0", "seed-1", "bogus"]
    assert set(doc["means"]) == {"random", "pca", "at"}
    assert all(row["n_entities"] == 2 for row in doc["means"].values())
    assert doc["versions"]["numpy"] and doc["spec"]["seed"] == 0
    pair = doc["entities"]["seed-0"]["at"]
    assert pair["status"] == "ok" and pair["config"]["model"]["mask"] == "gaussian"
    assert pair["fit_s"] > 0 and pair["n_test"] == 1200
    for key in ("vus_pr", "vus_roc", "auc_roc", "affiliation_f1", "legacy_point_adjusted_f1"):
        assert 0.0 <= pair["metrics"][key] <= 1.0
    scores = np.load(synthetic_run / "scores" / "at" / "seed-0.npy")
    assert scores.shape == (1200,) and scores.dtype == np.float64
    val = np.load(synthetic_run / pair["val_scores_file"])  # the threshold is recomputable
    assert len(val) == pair["n_val"]
    assert pair["threshold"] == pytest.approx(
        np.percentile(val, 100.0 - doc["anomaly_ratio_percent"])
    )
    md = (synthetic_run / "results.md").read_text()
    assert "| pca | 2 |" in md and "## Failures" in md
    assert len(list((synthetic_run / "plots").glob("*.png"))) == 6


def test_failed_entity_is_reported_and_skipped(synthetic_run: Path) -> None:
    doc = json.loads((synthetic_run / "results.json").read_text())
    bogus = doc["entities"]["bogus"]
    assert {r["status"] for r in bogus.values()} == {"failed"}
    assert "seed-N" in bogus["pca"]["error"]
    assert doc["entities"]["seed-1"]["pca"]["status"] == "ok"


def _vus_pr_reference(labels: np.ndarray, scores: np.ndarray, max_buffer: int) -> float:
    """VUS-PR by direct transcription: loops over buffers and thresholds (slow, obvious)."""
    n = len(labels)
    idx = np.flatnonzero(labels)
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    segs = [(int(r[0]), int(r[-1])) for r in runs]
    desc = np.sort(scores)[::-1]
    thresholds = [desc[i] for i in np.linspace(0, n - 1, 250).astype(int)]
    total = 0.0
    for w in range(max_buffer + 1):
        half = w // 2
        soft = labels.astype(float)
        for s, e in segs:
            for d in range(1, half + 1):
                for pos in (s - d, e + d):
                    if 0 <= pos < n:
                        soft[pos] += math.sqrt(1 - d / w)
        soft = np.minimum(soft, 1.0)
        zones: list[list[int]] = []
        for s, e in segs:
            lo, hi = max(s - half, 0), min(e + half, n - 1)
            if zones and zones[-1][1] >= lo:  # widened segments touch: merge
                zones[-1][1] = hi
            else:
                zones.append([lo, hi])
        prev_tpr, ap = 0.0, 0.0
        for t in thresholds:
            pred = scores >= t
            buffer_hits = float(np.sum(soft[~labels.astype(bool)] * pred[~labels.astype(bool)]))
            tp = float(np.sum(pred & labels.astype(bool))) + buffer_hits
            p_new = labels.sum() + buffer_hits / 2
            exist = sum(pred[lo : hi + 1].any() for lo, hi in zones) / len(zones)
            tpr = min(tp / p_new, 1.0) * exist
            ap += (tpr - prev_tpr) * tp / pred.sum()
            prev_tpr = tpr
        total += ap
    return total / (max_buffer + 1)


def test_vus_pr_recomputed_independently(synthetic_run: Path) -> None:
    doc = json.loads((synthetic_run / "results.json").read_text())
    spec = BenchSpec(dataset="synthetic", out=synthetic_run, overrides={
        "data.synthetic.train_steps": 1500, "data.synthetic.test_steps": 1200,
        "data.synthetic.n_channels": 4})  # fmt: skip
    for entity in ("seed-0", "seed-1"):
        labels = np.asarray(load_series(data_config(spec, entity)).labels)
        for name in ("pca", "at"):
            pair = doc["entities"][entity][name]
            scores = np.load(synthetic_run / pair["scores_file"])
            ref = _vus_pr_reference(labels, scores, max_buffer=20)
            assert pair["metrics"]["vus_pr"] == pytest.approx(ref, abs=1e-9)


def test_resume_skips_finished_pairs(synthetic_run: Path) -> None:
    before = json.loads((synthetic_run / "results.json").read_text())
    spec = BenchSpec(
        dataset="synthetic", out=synthetic_run, entities=("seed-0",), detectors=("random", "pca"),
        resume=True, max_buffer=20, overrides={"data.synthetic.train_steps": 1500,
        "data.synthetic.test_steps": 1200, "data.synthetic.n_channels": 4},
    )  # fmt: skip
    doc = run_bench(spec)
    assert doc["entities"]["seed-0"]["pca"]["fit_s"] == before["entities"]["seed-0"]["pca"]["fit_s"]


def test_one_real_smd_machine(datasets_root: Path, tmp_path: Path) -> None:
    spec = BenchSpec(
        dataset="smd", root=str(datasets_root / "SMD"), entities=("machine-1-2",),
        detectors=("random", "pca"), out=tmp_path,
    )  # fmt: skip
    doc = run_bench(spec)
    row = doc["entities"]["machine-1-2"]
    assert row["pca"]["status"] == "ok" and row["pca"]["n_test"] == 23694
    assert row["pca"]["metrics"]["auc_roc"] > row["random"]["metrics"]["auc_roc"]
    assert row["pca"]["metrics"]["vus_pr"] > row["random"]["metrics"]["vus_pr"]
    assert abs(row["random"]["metrics"]["auc_roc"] - 0.5) < 0.05
    assert doc["anomaly_ratio_percent"] == 0.5


def test_detector_aliases_expand_once() -> None:
    from amad.cli.bench import _detectors

    names = _detectors("pca, baselines,at")
    assert names[:4] == ("pca", "random", "iforest", "ae") and names[-1] == "at"
    assert names[4:7] == ("ar", "kmeans", "kmeans-znorm")
    assert len(names) == len(set(names)) == 8
    assert "amad-maxmin" in _detectors("ablations")
    assert {"ar-smooth", "kmeans-smooth", "pca-smooth"} <= set(_detectors("smoothed"))


def test_generic_folder_with_an_anomaly_free_entity(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for sub in ("train", "test", "labels"):
        (tmp_path / "data" / sub).mkdir(parents=True)
    for entity, n_anom in (("quiet", 0), ("busy", 30)):
        np.save(tmp_path / "data" / "train" / f"{entity}.npy", rng.standard_normal((600, 3)))
        test = rng.standard_normal((400, 3))
        labels = np.zeros(400, dtype=np.int8)
        labels[100 : 100 + n_anom] = 1
        test[labels == 1] += 4.0
        np.save(tmp_path / "data" / "test" / f"{entity}.npy", test)
        np.save(tmp_path / "data" / "labels" / f"{entity}.npy", labels)
    spec = BenchSpec(dataset="generic", root=str(tmp_path / "data"), detectors=("pca",),
                     out=tmp_path / "out", max_buffer=10)  # fmt: skip
    run_bench(spec)
    text = (tmp_path / "out" / "results.json").read_text()
    assert "NaN" not in text  # undefined metrics are JSON null
    doc = json.loads(text)
    assert doc["entities"]["quiet"]["pca"]["metrics"]["vus_pr"] is None
    assert doc["means"]["pca"]["vus_pr"] == doc["entities"]["busy"]["pca"]["metrics"]["vus_pr"]
    assert doc["means"]["pca"]["auc_roc"] > 0.9


def test_bad_names_fail_before_any_work(tmp_path: Path) -> None:
    from amad.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown detector"):
        run_bench(BenchSpec(dataset="synthetic", detectors=("pca", "nope"), out=tmp_path))
    with pytest.raises(ConfigError, match=r"model\.bogus"):
        run_bench(BenchSpec(dataset="synthetic", detectors=("amad",), out=tmp_path,
                            overrides={"model.bogus": 1}))  # fmt: skip
    assert not (tmp_path / "results.json").exists()


def _tiny_overrides() -> dict[str, object]:
    pairs = [a.split("=", 1) for a in (*SMALL, *TINY_AMAD) if a != "--set"]
    return {k: json.loads(v) if v[0].isdigit() else v for k, v in pairs}


def test_score_only_variants_reuse_the_trained_model(tmp_path: Path) -> None:
    overrides = _tiny_overrides()
    shared = run_bench(BenchSpec(
        dataset="synthetic", entities=("seed-0",), out=tmp_path / "shared", overrides=overrides,
        detectors=("amad", "amad-score-reconstruction", "amad-no-smooth", "amad-mixup"),
    ))["entities"]["seed-0"]  # fmt: skip
    alone = run_bench(BenchSpec(
        dataset="synthetic", entities=("seed-0",), out=tmp_path / "alone", overrides=overrides,
        detectors=("amad-score-reconstruction",),
    ))["entities"]["seed-0"]  # fmt: skip
    assert shared["amad-score-reconstruction"]["info"]["model_shared_with"] == "amad"
    assert shared["amad-no-smooth"]["info"]["model_shared_with"] == "amad"
    assert "model_shared_with" not in shared["amad-mixup"]["info"]  # a different model
    assert "model_shared_with" not in alone["amad-score-reconstruction"]["info"]
    reused = np.load(tmp_path / "shared" / "scores" / "amad-score-reconstruction" / "seed-0.npy")
    trained = np.load(tmp_path / "alone" / "scores" / "amad-score-reconstruction" / "seed-0.npy")
    np.testing.assert_allclose(reused, trained, rtol=1e-6)
    assert shared["amad-score-reconstruction"]["metrics"] == pytest.approx(
        alone["amad-score-reconstruction"]["metrics"], rel=1e-6, nan_ok=True
    )
    smoothed = np.load(tmp_path / "shared" / "scores" / "amad" / "seed-0.npy")
    raw = np.load(tmp_path / "shared" / "scores" / "amad-no-smooth" / "seed-0.npy")
    assert np.abs(np.diff(smoothed)).mean() < np.abs(np.diff(raw)).mean()


def test_spread_variants_reuse_one_model_in_either_order(tmp_path: Path) -> None:
    """model.spread never enters training: a model trained without the term (``amad``, the cpu
    profile) is rescored with it (its statistics calibrated on the same validation windows) and
    gives the scores of a model trained with it, and the other way round."""
    overrides = _tiny_overrides()
    shared = run_bench(BenchSpec(
        dataset="synthetic", entities=("seed-0",), out=tmp_path / "shared", overrides=overrides,
        detectors=("amad", "amad-spread", "amad-spread-1"),
    ))["entities"]["seed-0"]  # fmt: skip
    alone = run_bench(BenchSpec(
        dataset="synthetic", entities=("seed-0",), out=tmp_path / "alone", overrides=overrides,
        detectors=("amad-spread", "amad"),  # trained with the term, then rescored without it
    ))["entities"]["seed-0"]  # fmt: skip
    assert "model_shared_with" not in shared["amad"]["info"]
    assert shared["amad-spread"]["info"]["model_shared_with"] == "amad"
    assert shared["amad-spread-1"]["info"]["model_shared_with"] == "amad"
    assert alone["amad"]["info"]["model_shared_with"] == "amad-spread"
    names = ("amad", "amad-spread", "amad-spread-1")
    scores = {n: np.load(tmp_path / "shared" / "scores" / n / "seed-0.npy") for n in names}
    for name in ("amad", "amad-spread"):
        alone_scores = np.load(tmp_path / "alone" / "scores" / name / "seed-0.npy")
        np.testing.assert_allclose(scores[name], alone_scores, rtol=1e-6)
        assert shared[name]["threshold"] == pytest.approx(alone[name]["threshold"], rel=1e-6)
    # the term adds a positive amount that grows with its weight
    assert (scores["amad-spread"] > scores["amad"]).mean() > 0.99
    assert (scores["amad-spread-1"] > scores["amad-spread"]).mean() > 0.99


def _telemanom_folder(root: Path) -> Path:
    """A two-channel-file telemanom layout: column 0 telemetry, columns 1-2 command flags.

    The labelled anomaly (test steps 200..219) is in the telemetry; steps 500..519 carry a
    burst on a command flag that is not an anomaly."""
    rng = np.random.default_rng(0)
    for sub in ("train", "test"):
        (root / sub).mkdir(parents=True)
    rows = []
    for chan in ("A-1", "A-2"):

        def part(n: int) -> np.ndarray:
            tele = np.sin(np.arange(n) / 7.0) + 0.1 * rng.standard_normal(n)
            flags = (rng.random((n, 2)) < 0.05).astype(float)
            return np.column_stack([tele, flags])

        train, test = part(1500), part(800)
        test[200:220, 0] += 2.0 * rng.standard_normal(20)  # a noise burst in the telemetry
        test[500:520, 1:] = 5.0
        np.save(root / "train" / f"{chan}.npy", train)
        np.save(root / "test" / f"{chan}.npy", test)
        rows.append({"chan_id": chan, "spacecraft": "MSL", "anomaly_sequences": "[[200, 219]]",
                     "num_values": 800})  # fmt: skip
    pd.DataFrame(rows).to_csv(root / "labeled_anomalies.csv", index=False)
    return root


def test_declared_score_channels_reach_every_baseline(tmp_path: Path) -> None:
    from amad.bench.detectors import ARDetector
    from amad.bench.runner import prepare

    root = _telemanom_folder(tmp_path / "msl")
    spec = BenchSpec(dataset="msl", root=str(root), detectors=("ar", "ar-smooth", "iforest"),
                     out=tmp_path / "out", max_buffer=10)  # fmt: skip
    doc = run_bench(spec)
    for entity in ("A-1", "A-2"):
        row = doc["entities"][entity]
        assert row["ar"]["score_channels"] == row["ar-smooth"]["score_channels"] == [0]
        assert row["ar"]["score_channels_applied"] and row["ar-smooth"]["score_channels_applied"]
        assert row["iforest"]["score_channels_applied"] is False  # no per-channel score
        assert row["ar"]["metrics"]["auc_roc"] > 0.95  # the command burst is not scored
    data = prepare(load_series(data_config(spec, "A-1")), spec.val_fraction)
    by_hand = ARDetector()
    by_hand.score_channels = np.array([0])
    by_hand.fit(data.fit, val=data.val)
    saved = np.load(tmp_path / "out" / "scores" / "ar" / "A-1.npy")
    np.testing.assert_allclose(saved, by_hand.score(data.test), rtol=1e-6)
    # an explicit score.channels overrides the declaration, for every detector alike
    over = BenchSpec(dataset="msl", root=str(root), detectors=("ar",), entities=("A-1",),
                     out=tmp_path / "over", max_buffer=10,
                     overrides={"score.channels": ["command_1", 2]})  # fmt: skip
    pair = run_bench(over)["entities"]["A-1"]["ar"]
    assert pair["score_channels"] == [1, 2]
    assert pair["metrics"]["auc_roc"] < doc["entities"]["A-1"]["ar"]["metrics"]["auc_roc"]


def test_a_root_without_entities_of_the_spacecraft_is_an_error_not_an_empty_table(
    tmp_path: Path,
) -> None:
    root = _telemanom_folder(tmp_path / "smap")
    meta = root / "labeled_anomalies.csv"
    pd.read_csv(meta).assign(spacecraft="SMAP").to_csv(meta, index=False)  # not the default MSL
    from amad.errors import DatasetNotFoundError, exit_code_for

    spec = BenchSpec(dataset="telemanom", root=str(root), detectors=("random",), out=tmp_path / "o")
    with pytest.raises(DatasetNotFoundError, match="no entities of spacecraft 'MSL'") as err:
        run_bench(spec)
    assert exit_code_for(err.value) == 4
    assert not (tmp_path / "o" / "results.md").exists()
