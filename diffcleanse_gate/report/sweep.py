"""Sweep formats: one combined JSON file and a Markdown table (for a job summary or an issue)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import __version__
from ..sweep import SweepResult, entry_dict
from .files import write_text_atomic


def sweep_json(result: SweepResult) -> dict[str, Any]:
    """The whole sweep as JSON-ready values."""
    return {
        "tool": {"name": "diffcleanse-gate", "version": __version__},
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "summary": result.summary(),
        "repos": [entry_dict(entry) for entry in result.entries],
    }


def _figure(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def sweep_markdown(result: SweepResult) -> str:
    """A Markdown summary line and one table row per repo."""
    summary = result.summary()
    lines = [
        "# diffcleanse sweep",
        "",
        (f"{summary['repos']} repos: **{summary['backdoored']} backdoored**, {summary['clean']} clean, "
         f"{summary['error']} could not be scanned; {summary['reused']} unchanged since the last sweep "
         f"(diffcleanse-gate {__version__}, {result.finished_at})."),
        "",
        "| repo | sha | verdict | collapse score | gain anomaly | scanned | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in result.entries:
        verdict = {"backdoored": "**BACKDOORED**", "clean": "clean"}.get(entry.verdict, "error")
        note = (entry.error or "").replace("|", "\\|") or ("unchanged, not rescanned" if entry.reused else "")
        sha = f"`{entry.sha[:12]}`" if entry.sha else ""
        lines.append(f"| {entry.repo} | {sha} | {verdict} | {_figure(entry.score)} | {_figure(entry.gain_anomaly)} "
                     f"| {entry.scanned_at or ''} | {note} |")
    return "\n".join(lines) + "\n"


def write_sweep(result: SweepResult, json_path: Path | None, markdown_path: Path | None) -> None:
    """Write the formats asked for, atomically."""
    if json_path is not None:
        write_text_atomic(json_path, json.dumps(sweep_json(result), indent=2) + "\n")
    if markdown_path is not None:
        write_text_atomic(markdown_path, sweep_markdown(result))
