"""Artifact rendering: comparison table, validation summary, scores PNG; artifacts reach the API."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows import reports


def test_comparison_table_puts_the_primary_metric_first_with_deltas() -> None:
    text = reports.comparison_markdown(
        {"vus_pr": 0.40, "auc_roc": 0.80},
        {"vus_pr": 0.55, "auc_roc": 0.78},
        {"promote": True, "reasons": ["vus_pr +0.15 > margin 0.01"]},
        primary_metric="vus_pr",
    )
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[1].startswith("| **vus_pr** | 0.4000 | 0.5500 | 0.1500 |")
    assert "| auc_roc | 0.8000 | 0.7800 | -0.0200 |" in text
    assert "PROMOTE challenger" in text and "- vus_pr +0.15 > margin 0.01" in text


def test_comparison_without_a_champion_shows_dashes() -> None:
    text = reports.comparison_markdown(
        None,
        {"vus_pr": 0.5},
        {"promote": False, "reason": "worse than PCA"},
        primary_metric="vus_pr",
    )
    assert "| **vus_pr** | — | 0.5000 | — |" in text
    assert "KEEP champion" in text and "- worse than PCA" in text


def test_validation_summary_links_the_data_docs() -> None:
    text = reports.validation_markdown(
        [
            {
                "batch": "b1.csv",
                "status": "accepted",
                "rows": 100,
                "data_docs": "https://docs.example/b1/index.html?X-Amz-Signature=ab",
                "data_docs_uri": "s3://amad-data/reports/b1/index.html",
            },
            {"batch": "b2.csv", "status": "quarantined", "rows": 5, "failed": ["cadence"]},
            {
                "batch": "b3.csv",
                "status": "accepted",
                "rows": 7,
                "data_docs": None,
                "data_docs_uri": "/srv/reports/b3/index.html",
            },
            {"batch": "b4.csv", "status": "accepted", "rows": 8, "data_docs": "file:///d/b4.html"},
        ]
    )
    link = "[Data Docs](https://docs.example/b1/index.html?X-Amz-Signature=ab)"
    assert f"| b1.csv | accepted | 100 | — | — | {link} |" in text
    assert "| b2.csv | quarantined | 5 | cadence | — | — |" in text
    assert "| b3.csv | accepted | 7 | — | — | `/srv/reports/b3/index.html` |" in text
    assert "| b4.csv | accepted | 8 | — | — | `/d/b4.html` |" in text  # never a file:// link
    assert "file://" not in text


def test_scores_png_is_a_png() -> None:
    rng = np.random.default_rng(0)
    labels = np.zeros(300, dtype=np.int8)
    labels[100:120] = 1
    png = reports.render_scores_png(rng.random(300), labels, 0.9, title="t")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 1000
    image = Image.open(io.BytesIO(png))
    assert image.size == (720, 224) and image.mode == "P"  # 9 x 2.8 in at 80 dpi, a palette
    colours = {rgb for _, rgb in image.convert("RGB").getcolors(maxcolors=64) or []}
    assert any(r > 200 and g < 220 and b < 220 for r, g, b in colours)  # the red label band


@pytest.mark.usefixtures("prefect_harness")
def test_artifacts_are_created_in_the_run() -> None:
    png = reports.render_scores_png(np.linspace(0, 1, 50), None, None, title="t")

    @flow
    def make_artifacts() -> None:
        reports.report_comparison("| a |\n|---|\n| 1 |\n", key="cmp-test")
        reports.report_scores_plot(png, location="/tmp/x.png", key="png-test")

    state = make_artifacts(return_state=True)
    assert state.is_completed()
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["cmp-test", "png-test"]))
        )
    by_key = {a.key: a for a in found}
    assert set(by_key) == {"cmp-test", "png-test"}
    assert by_key["png-test"].data.startswith("![scores vs labels](data:image/png;base64,")
    assert by_key["cmp-test"].flow_run_id == state.state_details.flow_run_id


def test_pipeline_summary_shows_data_decisions_and_where_champions_live(
    s3_env: dict[str, str],
) -> None:
    """``s3_env``: SeaweedFS's endpoint and keys sign the champions' links (no request sent)."""
    summary = {
        "data_version": "abc123",
        "accepted": 2,
        "quarantined": 1,
        "batches": [
            {"batch": "b0.csv", "status": "accepted"},
            {"batch": "bad.csv", "status": "quarantined"},
        ],
        "entities": {
            "e2": {
                "promoted": False,
                "champion": "v-old",
                "reason": "gain within noise",
                "numbers": {
                    "challenger": 0.41,
                    "champion": 0.4,
                    "gain_ci_low": -0.02,
                    "gain_ci_high": 0.03,
                },
            },
            "e1": {"promoted": True, "champion": "v-new", "reason": "first model", "numbers": {}},
        },
        "failed": {"e3": "TrainingError: loss | nan"},
        "unchanged": ["e4"],
    }
    md = reports.pipeline_markdown(
        summary, registry="s3://amad-models/models/amad", metric="vus_pr"
    )
    assert "`abc123`: 2 batch(es) accepted, 1 quarantined (bad.csv)" in md
    rows = [ln for ln in md.splitlines() if ln.startswith("| e") and not ln.startswith("| entity")]
    assert [r.split(" | ")[0] for r in rows] == ["| e1", "| e2", "| e3"]
    assert "**promoted**" in rows[0]
    assert "0.4100 | 0.4000 | [-0.0200, 0.0300] | gain within noise" in rows[1]
    assert "**failed**" in rows[2] and "loss / nan" in rows[2]  # a pipe cannot break the table
    assert "`s3://amad-models/models/amad`" in md and "vus_pr" in md
    e1 = next(ln for ln in md.splitlines() if ln.startswith("- e1: "))
    endpoint = s3_env["AWS_ENDPOINT_URL_S3"]
    assert f"[version v-new]({endpoint}/amad-models/models/amad/entities/e1/versions/v-new/" in e1
    assert f"[champion pointer]({endpoint}/amad-models/models/amad/entities/e1/champion.json?" in e1
    assert "- e3: unchanged (this run failed)" in md
    assert "Not retrained (their data did not change): e4." in md
    assert "| bad.csv | quarantined |" in md  # the batches, each with its Data Docs
