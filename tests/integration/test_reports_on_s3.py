"""Quarantine, reports and the Data Docs site on a real S3 server (SeaweedFS on 127.0.0.1).

One good and one bad synthetic batch are ingested with ``contract.quarantine_dir`` and
``contract.reports_dir`` on ``s3://<bucket>/...``: the rejected bytes come back byte-identical,
the quarantine is create-only, the reports and the site are in the bucket, and the presigned
link of a batch page opens over HTTP.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amad.config import ColumnSpec, ContractConfig, SyntheticConfig
from amad.series.synthetic import generate, to_frame
from amad.storage.links import browser_link
from amad.storage.s3 import S3Store
from amad.telemetry.corruptions import to_csv_bytes
from amad.telemetry.ingest import ingest
from amad.telemetry.quarantine import quarantine
from amad.telemetry.report import read_report

pytestmark = pytest.mark.slow

CFG = ContractConfig(columns=[ColumnSpec(name=f"m{i}") for i in range(3)])


def batch(b: int, n: int = 60) -> pd.DataFrame:
    return to_frame(
        generate(SyntheticConfig(n_channels=3), n_steps=n, seed=b, start_step=b * n),
        entity="e1",
        start=pd.Timestamp("2024-05-01T00:00:00Z") + pd.Timedelta(minutes=b * n),
        cadence_s=60,
        columns=CFG.columns,
    )


def test_quarantine_reports_and_site_land_in_the_bucket(
    tmp_path: Path, s3_env: dict[str, str], s3_bucket: str, s3_store: S3Store
) -> None:
    good = to_csv_bytes(batch(0))
    broken = batch(1)
    broken.loc[7, "m2"] = np.inf
    bad = to_csv_bytes(broken)
    for name, data in [("good.csv", good), ("bad.csv", bad)]:
        (tmp_path / name).write_bytes(data)
    q, reports = f"s3://{s3_bucket}/quarantine", f"s3://{s3_bucket}/validation"

    report = ingest([tmp_path / "good.csv", tmp_path / "bad.csv"], CFG, tmp_path / "data", q,
                    reports_dir=reports)  # fmt: skip

    ok, rejected = report.outcomes
    assert (ok.status, rejected.status) == ("accepted", "quarantined")
    assert rejected.quarantine_dir == f"{q}/{rejected.sha256}"
    held, _ = s3_store.get_bytes(f"quarantine/{rejected.sha256}/original/bad.csv")
    assert hashlib.sha256(held).hexdigest() == rejected.sha256 == hashlib.sha256(bad).hexdigest()
    saved = json.loads(s3_store.get_bytes(f"quarantine/{rejected.sha256}/report.json")[0])
    assert "finite_values" in saved["failed_checks"]
    assert not (tmp_path / "s3:").exists() and not Path("s3:").exists()

    for o in (ok, rejected):
        assert o.report_dir == f"{reports}/{o.sha256}"
        assert read_report(o.report_dir)["success"] is (o.status == "accepted")
        assert s3_store.exists(f"validation/{o.sha256}/gx_result.json")
        assert o.data_docs == f"{reports}/site/batches/{o.sha256}.html"
    index = s3_store.get_bytes("validation/site/index.html")[0].decode()
    assert index.index(rejected.sha256) < index.index(ok.sha256)  # newest first

    link = browser_link(rejected.data_docs)
    assert link is not None and link.startswith(s3_env["AWS_ENDPOINT_URL"])
    with urllib.request.urlopen(link, timeout=10) as response:
        assert response.status == 200
        page = response.read().decode()
    assert f"Validation of {rejected.source}" in page and "+inf or -inf" in page


def test_an_s3_quarantine_entry_is_never_overwritten(
    s3_env: dict[str, str], s3_bucket: str, s3_store: S3Store
) -> None:
    q = f"s3://{s3_bucket}/q"
    first = quarantine(b"first", "x y.csv", "ab" * 32, {"report.json": b"{}"}, q)
    again = quarantine(b"second", "x y.csv", "ab" * 32, {"report.json": b'{"n": 2}'}, q)
    assert first == again == f"{q}/{'ab' * 32}"
    assert s3_store.list("q/") == [f"q/{'ab' * 32}/original/x_y.csv", f"q/{'ab' * 32}/report.json"]
    assert s3_store.get_bytes(f"q/{'ab' * 32}/original/x_y.csv")[0] == b"first"
    assert s3_store.get_bytes(f"q/{'ab' * 32}/report.json")[0] == b"{}"
    # an interrupted entry (reports without the original) is completed, not rewritten
    s3_store.put_bytes(f"q/{'cd' * 32}/report.json", b"old")
    quarantine(b"bytes", "b.csv", "cd" * 32, {"report.json": b"new"}, q)
    assert s3_store.get_bytes(f"q/{'cd' * 32}/report.json")[0] == b"old"
    assert s3_store.get_bytes(f"q/{'cd' * 32}/original/b.csv")[0] == b"bytes"
