"""Links in the artifacts a person opens from the Prefect UI: each one resolves in a browser.

An ``s3://`` location (registry records, the scores PNG, Data Docs) becomes a presigned URL that
a plain HTTP GET fetches from SeaweedFS; a local location is shown as inline code, and no
artifact ever carries a ``file://`` link (a page served over http may not open one).
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from typing import Any

from amad.storage.s3 import S3Store
from flows import reports

LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")
PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 32


def _summary(batches: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "data_version": "abc123",
        "accepted": 1,
        "quarantined": 1,
        "entities": {
            "machine-1": {
                "promoted": True,
                "champion": "v0002-aaaa",
                "reason": "gain 0.1 > margin",
                "numbers": {"challenger": 0.5, "champion": 0.4},
            },
            "machine-2": {"promoted": False, "champion": "v0001-bbbb", "reason": "no gain"},
        },
        "failed": {},
        "batches": batches,
    }


def _links(text: str) -> dict[str, str]:
    return {label: url for label, url in LINK.findall(text)}


def test_a_local_registry_is_named_in_inline_code_and_never_linked(tmp_path: Path) -> None:
    docs = tmp_path / "reports" / "b1" / "index.html"
    batches = [
        {"batch": "b1.csv", "status": "accepted", "rows": 3, "data_docs": None,
         "data_docs_uri": str(docs)},
        {"batch": "b2.csv", "status": "quarantined", "rows": 2, "failed": ["cadence"],
         "data_docs": docs.as_uri()},
    ]  # fmt: skip
    registry = str(tmp_path / "registry" / "models" / "amad")
    text = reports.pipeline_markdown(_summary(batches), registry=registry, metric="vus_pr")
    assert "file://" not in text and _links(text) == {}
    assert f"- machine-1: version `v0002-aaaa` in `{registry}/entities/machine-1`" in text
    assert f"`{docs}`" in text  # the batch's Data Docs location, as text
    assert "| machine-1 | **promoted** |" in text and "| machine-2 | kept |" in text
    plot = reports.scores_plot_markdown(PNG, str(tmp_path / "scores.png"))
    assert plot.startswith("![scores vs labels](data:image/png;base64,")
    assert f"PNG: `{tmp_path / 'scores.png'}`" in plot


def test_an_s3_registry_links_presigned_records_that_resolve(
    s3_env: dict[str, str], s3_store: S3Store
) -> None:
    base = "models/amad/entities"
    objects = {
        f"{base}/machine-1/versions/v0002-aaaa/version.json": b'{"version": "v0002-aaaa"}',
        f"{base}/machine-1/champion.json": b'{"champion": "v0002-aaaa"}',
        f"{base}/machine-2/versions/v0001-bbbb/version.json": b'{"version": "v0001-bbbb"}',
        f"{base}/machine-2/champion.json": b'{"champion": "v0001-bbbb"}',
        "reports/b1/index.html": b"<h1>b1</h1>",
        "plots/scores.png": PNG,
    }
    for key, data in objects.items():
        s3_store.put_bytes(key, data)
    bucket = f"s3://{s3_store.bucket}"
    batches = [{"batch": "b1.csv", "status": "accepted", "rows": 3, "data_docs": None,
                "data_docs_uri": f"{bucket}/reports/b1/index.html"}]  # fmt: skip
    text = reports.pipeline_markdown(
        _summary(batches), registry=f"{bucket}/models/amad", metric="vus_pr"
    )
    text += reports.scores_plot_markdown(PNG, f"{bucket}/plots/scores.png")
    assert "file://" not in text
    urls = LINK.findall(text)
    labels = [label for label, _ in urls]
    assert labels.count("champion pointer") == 2 and "version v0002-aaaa" in labels
    assert {"Data Docs", "download"} <= set(labels)
    fetched = set()
    for _, url in urls:
        assert url.startswith(s3_env["AWS_ENDPOINT_URL_S3"]) and "X-Amz-Signature=" in url
        with urllib.request.urlopen(url, timeout=10) as resp:
            fetched.add(resp.read())
    assert fetched == set(objects.values())
