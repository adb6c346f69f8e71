"""Prefect artifacts a run leaves behind: what a person reads in the UI after a run.

- ``report_comparison``: markdown table of champion vs challenger metrics and the decision.
- ``report_validation``: one row per ingested batch (accepted or quarantined, failed checks,
  warnings) with a link to each batch's Great Expectations Data Docs.
- ``pipeline_markdown``: the parent ``pipeline`` run's summary: what was accepted and
  quarantined, each entity's decision with its numbers, its champion and where it lives.
- ``report_scores_plot``: a PNG of per-step scores against labels and the threshold, embedded in
  a markdown artifact (and as an image artifact when the PNG has an http(s) or s3:// location).

Every link is one a browser opens (``link_markdown``): an ``s3://`` location becomes a
presigned URL (``amad.storage.links.browser_link``), an http(s) URL stays; a local path (or
``file://``, which a page served over http may not open) is shown as inline code, never linked.

Rendering is pure (``*_markdown``, ``render_scores_png``; presigning is local, no request) so
it is tested without Prefect.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from prefect.artifacts import create_image_artifact, create_markdown_artifact

from amad.storage.links import browser_link
from amad.storage.versions import VERSION_FILE


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return "—" if value is None else str(value)


def code_markdown(location: str | Path | None) -> str:
    """``location`` as inline code (``file://`` dropped, safe inside a table cell); ``—`` if none."""
    if location is None or str(location) == "":
        return "—"
    text = str(location).removeprefix("file://").replace("`", "'").replace("|", "\\|")
    return f"`{text}`"


def link_markdown(location: str | Path | None, label: str) -> str:
    """``[label](url)`` for a location a browser resolves (``s3://`` presigned, http(s) as is);
    the location as inline code otherwise (a local path, ``file://``); ``—`` for none."""
    url = browser_link(location)
    return f"[{label}]({url})" if url else code_markdown(location)


def comparison_markdown(
    champion: Mapping[str, Any] | None,
    challenger: Mapping[str, Any],
    decision: Mapping[str, Any],
    *,
    primary_metric: str,
) -> str:
    """Champion vs challenger, metric by metric, then the decision and its reasons."""
    names = sorted(set(challenger) | set(champion or {}))
    names.sort(key=lambda n: n != primary_metric)  # primary metric first, rest alphabetical
    lines = [
        "| metric | champion | challenger | delta |",
        "|---|---|---|---|",
    ]
    for name in names:
        a = (champion or {}).get(name)
        b = challenger.get(name)
        numeric = isinstance(a, int | float) and isinstance(b, int | float)
        delta = _fmt(float(b) - float(a)) if numeric else "—"  # type: ignore[arg-type]
        label = f"**{name}**" if name == primary_metric else name
        lines.append(f"| {label} | {_fmt(a)} | {_fmt(b)} | {delta} |")
    verdict = "PROMOTE challenger" if decision.get("promote") else "KEEP champion"
    reasons = decision.get("reasons") or [decision.get("reason", "")]
    lines += ["", f"**Decision: {verdict}**", ""]
    lines += [f"- {r}" for r in reasons if r]
    return "\n".join(lines) + "\n"


def pipeline_markdown(summary: Mapping[str, Any], *, registry: str, metric: str) -> str:
    """The parent run's summary: data in, one row per entity (outcome, ``metric`` of challenger
    and champion, the gain's interval, reason), each entity's champion and where its records
    live, and the batches with their Data Docs.

    ``registry`` is the model's location (``s3://bucket/prefix/models/NAME`` or a local path);
    a champion on S3 links to its presigned version record and pointer, a local one is named in
    inline code (see ``link_markdown``)."""
    batches = summary.get("batches") or []
    quarantined = [b["batch"] for b in batches if b.get("status") == "quarantined"]
    lines = [
        f"**Data version** `{summary.get('data_version')}`: {summary.get('accepted', 0)} batch(es) "
        f"accepted, {summary.get('quarantined', 0)} quarantined"
        + (f" ({', '.join(quarantined)})" if quarantined else "") + ".",
        "",
        f"| entity | outcome | challenger {metric} | champion {metric} | gain interval | reason |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip
    entities = sorted((summary.get("entities") or {}).items())
    for entity, rec in entities:
        n = rec.get("numbers") or {}
        low, high = n.get("gain_ci_low"), n.get("gain_ci_high")
        interval = f"[{_fmt(low)}, {_fmt(high)}]" if low is not None else "—"
        outcome = "**promoted**" if rec.get("promoted") else "kept"
        reason = str(rec.get("reason") or "").replace("|", "/")
        lines.append(f"| {entity} | {outcome} | {_fmt(n.get('challenger'))} | "
                     f"{_fmt(n.get('champion'))} | {interval} | {reason} |")  # fmt: skip
    for entity, why in sorted((summary.get("failed") or {}).items()):
        lines.append(f"| {entity} | **failed** | — | — | — | {why.replace('|', '/')} |")
    if summary.get("unchanged"):
        lines += [
            "",
            f"Not retrained (their data did not change): {', '.join(summary['unchanged'])}.",
        ]
    lines += ["", "**Champions**", ""]
    lines += [_champion_line(registry, e, rec.get("champion")) for e, rec in entities]
    lines += [f"- {e}: unchanged (this run failed)" for e in sorted(summary.get("failed") or {})]
    lines += ["", f"Registry: {code_markdown(registry)} (one champion per entity under "
              "`entities/<entity>/`)."]  # fmt: skip
    if batches:
        lines += ["", "**Batches**", "", validation_markdown(batches).rstrip("\n")]
    return "\n".join(lines) + "\n"


def _champion_line(registry: str, entity: str, version: str | None) -> str:
    """``- entity: <version record> · <champion pointer>``, each a link where the store has one."""
    if not version:
        return f"- {entity}: no champion yet"
    base = f"{registry.rstrip('/')}/entities/{entity}"
    record = link_markdown(f"{base}/versions/{version}/{VERSION_FILE}", f"version {version}")
    pointer = link_markdown(f"{base}/champion.json", "champion pointer")
    if record.startswith("`"):  # a local store: the version and its folder, not two long paths
        return f"- {entity}: version `{version}` in {code_markdown(base)}"
    return f"- {entity}: {record} · {pointer}"


def validation_markdown(batches: Sequence[Mapping[str, Any]]) -> str:
    """One row per batch: status, failed checks, warnings, its Data Docs: a link when the row's
    ``data_docs`` is one a browser opens, else its location (``data_docs_uri``) as inline code."""
    lines = [
        "| batch | status | rows | failed checks | warnings | report |",
        "|---|---|---|---|---|---|",
    ]
    for b in batches:
        failed = ", ".join(b.get("failed", [])) or "—"
        warned = ", ".join(b.get("warnings", [])) or "—"
        docs = b.get("data_docs")
        opens = isinstance(docs, str) and docs.startswith(("http://", "https://", "s3://"))
        link = link_markdown(docs if opens else b.get("data_docs_uri") or docs, "Data Docs")
        lines.append(
            f"| {b.get('batch', '?')} | {b.get('status', '?')} | {_fmt(b.get('rows'))} "
            f"| {failed} | {warned} | {link} |"
        )
    return "\n".join(lines) + "\n"


def render_scores_png(
    scores: np.ndarray, labels: np.ndarray | None, threshold: float | None, *, title: str
) -> bytes:
    """PNG bytes: per-step scores, shaded labelled anomalies, the alert threshold.

    Drawn on a bare ``Figure`` (no pyplot state, so safe on a thread pool) and saved with a
    32-colour palette: the plot has a handful of colours, and the palette PNG is about a
    quarter of the RGBA one (every entity's plot is embedded in an artifact on the API).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    fig = Figure(figsize=(9, 2.8), dpi=80)
    ax = fig.add_subplot()
    steps = np.arange(len(scores))
    ax.plot(steps, scores, lw=0.7, color="tab:blue", label="score")
    if labels is not None and labels.any():  # full height, whatever the scores' range
        ax.fill_between(steps, 0, 1, where=labels.astype(bool), transform=ax.get_xaxis_transform(),
                        color="tab:red", alpha=0.2, step="mid", label="labelled anomaly")  # fmt: skip
    if threshold is not None and math.isfinite(threshold):
        ax.axhline(threshold, color="black", ls="--", lw=0.8, label="threshold")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("step")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")
    buf = io.BytesIO()
    rgb.quantize(colors=32, method=Image.Quantize.MEDIANCUT).save(buf, format="png", optimize=True)
    return buf.getvalue()


def report_comparison(markdown: str, *, key: str = "champion-vs-challenger") -> None:
    create_markdown_artifact(markdown, key=key, description="Champion vs challenger metrics")


def report_validation(markdown: str, *, key: str = "telemetry-validation") -> None:
    create_markdown_artifact(markdown, key=key, description="Telemetry validation summary")


def scores_plot_markdown(png: bytes, location: str) -> str:
    """The PNG embedded (renders whatever the store), then where it lives: a link a browser
    opens for an s3:// or http(s) location, else the path as inline code."""
    encoded = base64.b64encode(png).decode("ascii")
    return (
        f"![scores vs labels](data:image/png;base64,{encoded})\n\n"
        f"PNG: {link_markdown(location, 'download')}\n"
    )


def report_scores_plot(png: bytes, *, location: str, key: str = "scores-vs-labels") -> None:
    """A markdown artifact with the PNG (``scores_plot_markdown``), and an image artifact when
    the PNG has a URL a browser opens."""
    create_markdown_artifact(
        scores_plot_markdown(png, location), key=key, description="Scores against labels"
    )
    url = browser_link(location)
    if url:
        create_image_artifact(image_url=url, key=f"{key}-image")


def write_png(png: bytes, path: Path) -> Path:
    """Write the PNG next to a run's other outputs; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path
