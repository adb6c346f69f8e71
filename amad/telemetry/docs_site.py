"""Data Docs as a site: an index of every validated batch (the history) and a page per batch.

Under ``<reports_dir>/site/`` (a folder or ``s3://bucket/prefix/site``, any ``Store``):

- ``index.html``: every batch, newest first (time, batch, entities and rows, accepted or
  quarantined, failed checks, a link to its page);
- ``batches/<sha256>.html``: the batch page: the verdict, each failed expectation with a
  plain-language sentence beside it ("12 rows have cpu above the contract's max 100; first:
  e1 at ..."), the warnings, and every expectation GX evaluated with its observed value;
- ``batches/<sha256>.json``: the summary the index is rebuilt from.

GX's result (``gx_result.json`` next to ``report.json``) stays the system of record; the pages
are rendered here from it and from the report's entries (``amad.telemetry.report``), not by
GX's site builder or page view: their templates load Bootstrap, jQuery, Font Awesome and Vega
from public CDNs (unstyled or broken offline) and quote the internal ``__amad_*`` helper
columns. These pages reference no other host: the one stylesheet is inlined in each page, so a
page opened alone (a presigned S3 URL) looks the same as one opened inside the site; links
between pages are relative. Helper columns are shown by what they mean (``HELPER_NAMES``).

``publish`` is called by ingest under the dataset lock; the index is rebuilt from the stored
summaries each time, sorted by (time, sha256), so a rebuild (``rebuild_index``) gives the
same bytes and a batch whose index write was lost appears on the next one.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amad.storage.store import Store, store_from_uri
from amad.telemetry import schema

log = logging.getLogger(__name__)

SITE = "site"  # under reports_dir
INDEX = "index.html"
BATCHES = "batches"

HELPER_NAMES = {
    schema.DT_S: "time step between rows (s)",
    schema.OFF_GRID_S: "distance from the cadence grid (s)",
    schema.TZ_AWARE: "timestamp carries a UTC offset",
    schema.NONFINITE: "count of +/-inf values in the row",
    schema.F32_OVERFLOW: "count of values beyond the float32 range in the row",
    schema.INGESTED: "row already in the dataset",
}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:12px 24px}header a{color:#9cc3ff}
main{padding:16px 24px;max-width:1200px}h1{font-size:20px;margin:0}h2{font-size:16px;margin:24px 0 8px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #dde1e7;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.num{text-align:right}code{font-size:12px}
.accepted{color:#176f2c;font-weight:600}.quarantined{color:#b3261e;font-weight:600}
.ok{color:#176f2c}.fail{color:#b3261e}.warn{color:#8a5a00}.plain{font-weight:600}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px}dt{color:#5b6472}
"""


# --------------------------------------------------------------------------- words


def plain(text: Any) -> str:
    """``text`` with every helper column named by what it means."""
    out = str(text)
    for helper, name in HELPER_NAMES.items():
        out = out.replace(helper, name)
    return out


def _num(value: Any) -> str:
    return (
        f"{value:g}"
        if isinstance(value, int | float) and not isinstance(value, bool)
        else str(value)
    )


def _first(entry: Mapping[str, Any]) -> str:
    rows = entry.get("first_rows") or []
    shown = []
    for r in rows:
        where = f"{r['entity']} at {r['timestamp']}" if "entity" in r else "a row"
        value = r.get("value")
        missing = value is None or str(value).lower() in ("nan", "none", "nat", "<na>")
        shown.append(where if missing else f"{where} (value {_num(value)})")
    return f"; first: {', '.join(shown)}" if shown else ""


_ROW_SENTENCES = {
    "timestamps_increasing": "{n} {have} a timestamp before the entity's previous row",
    "max_gap": "{n} {come} more than the contract's max gap {max} s after the entity's "
    "previous row",
    "cadence": "{n} {are} off the contract's cadence grid by more than {max} s",
    "not_already_ingested": "{n} {repeat}, or {fall} within a cadence step of, rows already "
    "in the dataset",
    "finite_values": "{n} {hold} +inf or -inf in a metric",
    "float32_range": "{n} {hold} values too large for float32",
    "null_tolerance": "{n} {have} no value for {column}",
    "timestamp_parseable": "{n} {have} a timestamp that does not parse",
    "entity_present": "{n} {name} no entity",
    "range": "{n} {have} {column} {side} {limit}",
}
_VERBS = {"have": "has", "come": "comes", "are": "is", "repeat": "repeats", "fall": "falls",
          "hold": "holds", "name": "names", "break": "breaks", "share": "shares"}  # fmt: skip


def _words(template: str, n: int, **values: Any) -> str:
    """``template`` with ``{n}`` as "1 row" / "12 rows" and its verbs agreeing."""
    verbs = {plural: plural if n != 1 else single for plural, single in _VERBS.items()}
    return template.format(n=f"{n} row" if n == 1 else f"{n} rows", **verbs, **values)


def sentence(entry: Mapping[str, Any]) -> str:
    """One plain-language sentence for a failed expectation from its report entry."""
    column = plain(entry.get("column") or "")
    bounds = entry.get("bounds") or {}
    check, n = str(entry.get("check")), entry.get("rows_affected")
    if entry.get("raised_exception"):
        return plain(f"{column or check} could not be evaluated: {entry.get('message')}.")
    if n is None:
        return plain(_aggregate_sentence(entry, column))
    template = _ROW_SENTENCES.get(check, "{n} {break} '{description}' on {column}")
    upper = "max_value" in bounds
    words = _words(
        template,
        int(n),
        column=column,
        max=_num(bounds.get("max_value")),
        side="above the contract's max" if upper else "below the contract's min",
        limit=_num(bounds.get("max_value" if upper else "min_value")),
        description=entry.get("description"),
    )
    return plain(f"{words}{_first(entry)}.")


def _aggregate_sentence(entry: Mapping[str, Any], column: str) -> str:
    check, observed, expected = entry.get("check"), entry.get("observed"), entry.get("description")
    if check == "unique_timestamps" and entry.get("unexpected_count") is not None:
        return (
            f"{entry['unexpected_count']} rows share their entity and timestamp with another row."
        )
    if check in ("drift_mean", "drift_std"):
        what = "mean" if check == "drift_mean" else "standard deviation"
        return f"The {what} of {column} is {_num(observed)}; the contract expects {expected}."
    if check == "flat_column":
        return f"{column} is constant over the batch (standard deviation {_num(observed)})."
    if check == "known_entity":
        return f"Entity ids outside the contract's list: {observed}."
    if check == "timezone_consistent":
        return "Some timestamps carry a UTC offset and others do not."
    if check == "row_count":
        return f"The batch has {_num(observed)} rows; the contract expects {expected}."
    if check == "dtype":
        return f"{column} does not hold {expected} (found {observed})."
    return str(entry.get("message") or f"{column}: expected {expected}; observed {observed}.")


# --------------------------------------------------------------------------- summaries


def batch_summary(
    report: Mapping[str, Any],
    gx: Mapping[str, Any] | None,
    *,
    sha: str,
    status: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What the index shows of one batch (stored as ``batches/<sha>.json``)."""
    stamp = ((gx or {}).get("meta") or {}).get("validation_time")
    when = datetime.fromisoformat(stamp) if stamp else (now or datetime.now(UTC))
    return {
        "sha256": sha,
        "batch": str(report.get("batch")),
        # microseconds: batches validated within one second still sort in order (shown in s)
        "validated_at": when.astimezone(UTC).isoformat(timespec="microseconds"),
        "status": status,
        "stage": report.get("stage", "gx"),
        "rows": int(report.get("rows") or 0),
        "entities": {str(k): int(v) for k, v in sorted((report.get("entities") or {}).items())},
        "failed_checks": list(report.get("failed_checks") or []),
        "warnings": sorted({w["check"] for w in report.get("warnings") or []}),
    }


# --------------------------------------------------------------------------- HTML


def _e(value: Any) -> str:
    return html.escape(plain(value), quote=True)


def _page(title: str, body: str, nav: str | None) -> str:
    link = f' &middot; <a href="{html.escape(nav)}">all batches</a>' if nav else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body><header><h1>"
        f"{_e(title)}</h1><small>Great Expectations validation, amad Data Docs{link}</small>"
        f"</header>\n<main>\n{body}\n</main></body></html>\n"
    )


def _table(head: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    cells = "".join(f"<th>{h}</th>" for h in head)
    body = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>\n{body}\n</tbody></table>"


def _entry_rows(entries: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    return [
        [
            _e(e.get("check")),
            _e(e.get("column") or "(table)"),
            f'<span class="plain">{_e(sentence(e))}</span>',
            _e(e.get("description") or ""),
            f"<code>{_e(e.get('expectation') or '')}</code>",
        ]
        for e in entries
    ]


def _entry_section(title: str, entries: list[Mapping[str, Any]]) -> str:
    if not entries:
        return ""
    head = ["check", "column", "what happened", "the contract expects", "GX expectation"]
    return f"<h2>{_e(title)} ({len(entries)})</h2>\n" + _table(head, _entry_rows(entries))


def _gx_rows(gx: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for r in gx.get("results") or []:
        cfg = r.get("expectation_config") or {}
        meta, kwargs = cfg.get("meta") or {}, cfg.get("kwargs") or {}
        shown = {k: _visible(v) for k, v in kwargs.items() if k not in ("batch_id", "column")}
        ok = bool(r.get("success"))
        rows.append([
            f'<span class="{"ok" if ok else "fail"}">{"passed" if ok else "failed"}</span>',
            _e(meta.get("check", "")),
            _e(meta.get("severity", "")),
            _e(kwargs.get("column") or "(table)"),
            f"<code>{_e(cfg.get('type', ''))}</code> <code>{_e(json.dumps(shown, default=str))}</code>",
            _e(json.dumps(_visible((r.get("result") or {}).get("observed_value")), default=str)),
        ])  # fmt: skip
    return rows


def _visible(value: Any) -> Any:
    """A list without the helper columns (the column set GX checked includes them)."""
    if isinstance(value, list):
        return [v for v in value if not (isinstance(v, str) and v in HELPER_NAMES)]
    return value


def render_batch_page(
    report: Mapping[str, Any],
    gx: Mapping[str, Any] | None,
    summary: Mapping[str, Any],
    *,
    index_href: str | None = None,
) -> str:
    """The batch page from its report (``ValidationReport.to_dict()``) and GX result dict."""
    status = str(summary["status"])
    entities = ", ".join(f"{k} ({v} rows)" for k, v in summary["entities"].items()) or "—"
    facts = {
        "status": f'<span class="{_e(status)}">{_e(status)}</span>',
        "validated at": _e(_shown_time(summary["validated_at"])),
        "rows": _e(summary["rows"]),
        "entities": _e(entities),
        "stage": _e("pre-parse checks" if summary["stage"] == "pre-parse" else "GX suite"),
        "sha256": f"<code>{_e(summary['sha256'])}</code>",
        "summary": _e(report.get("summary", "")),
    }
    stats = (gx or {}).get("statistics") or {}
    if stats:
        facts["expectations"] = _e(
            f"{stats.get('successful_expectations')} of {stats.get('evaluated_expectations')} passed"
        )
    parts = ["<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts.items()) + "</dl>"]
    parts.append(_entry_section("Failed checks", list(report.get("errors") or [])))
    parts.append(_entry_section("Warnings", list(report.get("warnings") or [])))
    parts.append(_entry_section("Not judged (explained above)", list(report.get("skipped") or [])))
    if gx:
        head = ["result", "check", "severity", "column", "GX expectation", "observed"]
        parts.append("<h2>Every expectation</h2>\n" + _table(head, _gx_rows(gx)))
    return _page(f"Validation of {summary['batch']}", "\n".join(p for p in parts if p), index_href)


def _instant(text: str) -> datetime:
    """A stored ``validated_at`` as an aware datetime (older summaries hold whole seconds)."""
    when = datetime.fromisoformat(str(text))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _shown_time(text: str) -> str:
    """A stored ``validated_at`` as shown on the pages: UTC, whole seconds."""
    return _instant(text).astimezone(UTC).isoformat(timespec="seconds")


def render_index(summaries: Iterable[Mapping[str, Any]]) -> str:
    """The history: every batch, newest first (ties by sha256, so the bytes are stable)."""
    ordered = sorted(summaries, key=lambda s: (_instant(s["validated_at"]), s["sha256"]),
                     reverse=True)  # fmt: skip
    rows = [
        [
            _e(_shown_time(s["validated_at"])),
            f'<a href="{BATCHES}/{_e(s["sha256"])}.html">{_e(s["batch"])}</a>',
            _e(", ".join(f"{k}: {v}" for k, v in s["entities"].items()) or "—"),
            f'<span class="num">{_e(s["rows"])}</span>',
            f'<span class="{_e(s["status"])}">{_e(s["status"])}</span>',
            _e(", ".join(s["failed_checks"]) or "—"),
            _e(", ".join(s["warnings"]) or "—"),
        ]
        for s in ordered
    ]
    counts = {k: sum(s["status"] == k for s in ordered) for k in ("accepted", "quarantined")}
    head = ["validated at (UTC)", "batch", "entities: rows", "rows", "status", "failed checks",
            "warnings"]  # fmt: skip
    body = (
        f"<p>{len(ordered)} batches: {counts['accepted']} accepted, "
        f"{counts['quarantined']} quarantined.</p>\n" + _table(head, rows)
    )
    return _page("Telemetry validation history", body, None)


# --------------------------------------------------------------------------- the store


def site_store(reports_dir: str) -> Store:
    """The store holding the site: ``<reports_dir>/site``."""
    return store_from_uri(f"{str(reports_dir).rstrip('/')}/{SITE}")


def page_location(reports_dir: str, sha: str) -> str:
    """Where a batch's page is: ``s3://.../site/batches/<sha>.html`` or an absolute path."""
    text = str(reports_dir).rstrip("/")
    if text.startswith("s3://"):
        return f"{site_store(text).uri}/{BATCHES}/{sha}.html"
    return str(Path(text.removeprefix("file://")).resolve() / SITE / BATCHES / f"{sha}.html")


def publish(
    reports_dir: str,
    report: Mapping[str, Any],
    gx: Mapping[str, Any] | None,
    summary: Mapping[str, Any],
) -> str:
    """Write a batch's summary (``batch_summary``) and page, rebuild the index; returns the
    page's location (``page_location``)."""
    store = site_store(reports_dir)
    sha = str(summary["sha256"])
    page = render_batch_page(report, gx, summary, index_href=f"../{INDEX}")
    store.put_bytes(f"{BATCHES}/{sha}.json", json.dumps(summary, sort_keys=True).encode())
    store.put_bytes(f"{BATCHES}/{sha}.html", page.encode())
    rebuild_index(store)
    return page_location(reports_dir, sha)


def rebuild_index(store: Store) -> bytes:
    """Render ``index.html`` from every stored summary and write it; returns its bytes."""
    keys = [k for k in store.list(f"{BATCHES}/") if k.endswith(".json")]
    summaries = [json.loads(store.get_bytes(k)[0]) for k in keys]
    data = render_index(summaries).encode()
    store.put_bytes(INDEX, data)
    log.debug("Data Docs index: %d batches at %s/%s", len(summaries), store.uri, INDEX)
    return data
