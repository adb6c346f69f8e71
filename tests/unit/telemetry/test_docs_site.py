"""The Data Docs site: an index of every batch (newest first), a page per batch with a
plain-language sentence beside each failure, no helper columns, nothing from another host."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amad.config import ColumnSpec, ContractConfig, SyntheticConfig
from amad.series.synthetic import generate, to_frame
from amad.storage.store import LocalStore
from amad.telemetry import docs_site
from amad.telemetry.corruptions import make_bad, to_csv_bytes
from amad.telemetry.expectations import validate_bytes
from amad.telemetry.ingest import ingest
from amad.telemetry.report import read_report
from amad.telemetry.schema import HELPER_COLUMNS, HELPER_PREFIX, Contract

CFG = ContractConfig(
    columns=[ColumnSpec(name="cpu", min=0.0, max=100.0), ColumnSpec(name="m1")],
    entities=["e1", "e2"],
)
CONTRACT = Contract(CFG)
T0 = pd.Timestamp("2024-03-01T00:00:00Z")
EXTERNAL = re.compile(r"https?://|[\"'(=]\s*//|@import", re.IGNORECASE)


def frame(b: int, n: int = 40) -> pd.DataFrame:
    series = generate(SyntheticConfig(n_channels=2), n_steps=n, seed=b, start_step=b * n)
    out = to_frame(series, entity="e1", start=T0 + pd.Timedelta(minutes=b * n), cadence_s=60,
                   columns=CFG.columns)  # fmt: skip
    out["cpu"] = 5.0 + 90.0 * out["cpu"].rank(pct=True)  # a percentage, within 0..100
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Three batches ingested one after another: good, 12 rows of cpu above 100, a gap."""
    root = tmp_path_factory.mktemp("site")
    bad = frame(1)
    bad.loc[5:16, "cpu"] = 250.0
    gap, _ = make_bad("gap", frame(2), CONTRACT)
    paths = []
    for name, data in [("good.csv", to_csv_bytes(frame(0))), ("hot.csv", to_csv_bytes(bad)),
                       ("gap.csv", gap)]:  # fmt: skip
        paths.append(root / "in" / name)
        paths[-1].parent.mkdir(exist_ok=True)
        paths[-1].write_bytes(data)
    outcomes = [
        ingest([p], CFG, root / "data", root / "q", reports_dir=root / "reports").outcomes[0]
        for p in paths
    ]
    return {"root": root, "outcomes": outcomes, "site": root / "reports" / docs_site.SITE}


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_index_lists_every_batch_newest_first_with_links(site: dict) -> None:  # type: ignore[type-arg]
    index = _text(site["site"] / docs_site.INDEX)
    outcomes = site["outcomes"]
    assert [o.status for o in outcomes] == ["accepted", "quarantined", "quarantined"]
    order = [index.index(f'href="batches/{o.sha256}.html"') for o in outcomes]
    assert order[2] < order[1] < order[0]  # gap.csv (last ingested) first
    assert "3 batches: 1 accepted, 2 quarantined." in index
    assert "e1: 40" in index and "max_gap" in index and "range" in index


def test_each_batch_has_its_page_and_the_outcome_points_at_it(site: dict) -> None:  # type: ignore[type-arg]
    for o in site["outcomes"]:
        page = site["site"] / docs_site.BATCHES / f"{o.sha256}.html"
        assert o.data_docs == str(page.resolve()) and page.is_file()
        assert o.summary()["data_docs"] == o.data_docs
        assert f"Validation of {o.source}" in _text(page)
        assert (Path(o.report_dir) / "data_docs.html").is_file()
        assert read_report(o.report_dir)["batch"] == o.source


def test_a_failed_expectation_has_a_plain_language_sentence(site: dict) -> None:  # type: ignore[type-arg]
    hot = site["outcomes"][1]
    page = _text(site["site"] / docs_site.BATCHES / f"{hot.sha256}.html")
    assert "12 rows have cpu above the contract&#x27;s max 100; first: e1 at 2024-03-01" in page
    gap = site["outcomes"][2]
    page = _text(site["site"] / docs_site.BATCHES / f"{gap.sha256}.html")
    assert "1 row comes more than the contract&#x27;s max gap" in page


def test_no_page_shows_a_helper_column_or_loads_from_another_host(site: dict) -> None:  # type: ignore[type-arg]
    files = [p for p in site["site"].rglob("*") if p.is_file()]
    files += [p for p in (site["root"] / "reports").glob("*/data_docs.html")]
    assert len(files) >= 3 * 2 + 1 + 3
    for path in files:
        text = _text(path)
        assert HELPER_PREFIX not in text, path
        if path.suffix == ".html":
            assert not EXTERNAL.search(text), (path, EXTERNAL.search(text))
    gap = site["outcomes"][2]
    page = _text(site["site"] / docs_site.BATCHES / f"{gap.sha256}.html")
    assert "time step between rows (s)" in page


def test_a_rebuild_gives_the_same_index_bytes(site: dict) -> None:  # type: ignore[type-arg]
    index = site["site"] / docs_site.INDEX
    before = index.read_bytes()
    index.unlink()
    assert docs_site.rebuild_index(LocalStore(site["site"])) == before
    assert index.read_bytes() == before


def test_every_helper_column_has_a_plain_name() -> None:
    assert set(HELPER_COLUMNS) == set(docs_site.HELPER_NAMES)
    assert all(not name.startswith(HELPER_PREFIX) for name in docs_site.HELPER_NAMES.values())


@pytest.mark.parametrize(
    "kind", ["gap", "wrong_cadence", "inf_values", "float32_overflow", "tz_mix", "out_of_order"]
)
def test_checks_on_helper_columns_read_plainly(kind: str) -> None:
    data, _suffix = make_bad(kind, frame(0), CONTRACT)
    report, _ = validate_bytes(data, CONTRACT, name=f"{kind}.csv")
    assert not report.success
    d, gx = report.to_dict(), report.gx_dict()
    summary = docs_site.batch_summary(d, gx, sha="0" * 64, status="quarantined")
    page = docs_site.render_batch_page(d, gx, summary)
    assert HELPER_PREFIX not in page and not EXTERNAL.search(page)
    for entry in report.errors:
        assert HELPER_PREFIX not in docs_site.sentence(entry)
        assert docs_site.sentence(entry) in page.replace("&#x27;", "'")


def test_index_order_is_by_time_then_sha_and_escapes_names() -> None:
    def summary(sha: str, when: str, batch: str) -> dict[str, object]:
        return {"sha256": sha, "batch": batch, "validated_at": when, "status": "accepted",
                "stage": "gx", "rows": 1, "entities": {}, "failed_checks": [], "warnings": []}  # fmt: skip

    rows = [summary("b" * 64, "2024-01-02T00:00:00+00:00", "<b>.csv"),
            summary("a" * 64, "2024-01-03T00:00:00+00:00", "a.csv"),
            summary("c" * 64, "2024-01-02T00:00:00+00:00", "c.csv")]  # fmt: skip
    html = docs_site.render_index(rows)
    assert html.index("a.csv") < html.index("c.csv") < html.index("&lt;b&gt;.csv")
    assert "<b>.csv" not in html
    assert docs_site.render_index(list(reversed(rows))) == html


def test_the_sentence_counts_rows_and_quotes_the_first() -> None:
    f = frame(0)
    f.loc[[3, 9], "cpu"] = [-5.0, np.nan]
    report, _ = validate_bytes(to_csv_bytes(f), CONTRACT, name="cold.csv")
    range_entry = next(e for e in report.errors if e["check"] == "range")
    assert range_entry["rows_affected"] == 1
    assert docs_site.sentence(range_entry) == (
        "1 row has cpu below the contract's min 0; first: e1 at 2024-03-01 00:03:00+00:00 "
        "(value -5)."
    )
    saved = json.loads(json.dumps(report.to_dict(), default=str))
    assert saved["errors"] == json.loads(json.dumps(report.errors, default=str))


def test_batches_validated_within_one_second_keep_their_order() -> None:
    def summary(sha: str, when: str) -> dict[str, object]:
        return {"sha256": sha, "batch": f"{sha[0]}.csv", "validated_at": when, "status": "accepted",
                "stage": "gx", "rows": 1, "entities": {}, "failed_checks": [], "warnings": []}  # fmt: skip

    rows = [
        summary("a" * 64, "2024-01-02T00:00:00.900000+00:00"),  # later, smaller sha
        summary("b" * 64, "2024-01-02T00:00:00.100000+00:00"),
        summary("c" * 64, "2024-01-01T23:59:59+00:00"),
    ]  # an older, whole-second summary
    html = docs_site.render_index(rows)
    assert html.index("a.csv") < html.index("b.csv") < html.index("c.csv")
    assert "2024-01-02T00:00:00+00:00" in html and ".900000" not in html  # shown in seconds
