"""Console output with rich: progress bars for long stages and the verdict panel."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..progress import ProgressCallback


@contextmanager
def rich_progress(console: Console) -> Iterator[ProgressCallback]:
    """Yield a progress callback that drives one rich bar per stage."""
    columns = (TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        tasks: dict[str, Any] = {}

        def update(stage: str, completed: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=completed, total=total)

        yield update


def render_scan(report: dict[str, Any], console: Console) -> None:
    """Print the verdict, score against threshold, what was scanned and what it cost."""
    backdoored = report["verdict"] == "backdoored"
    style = "bold red" if backdoored else "bold green"
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column()
    model = report["model"]
    table.add_row("model", model.get("repo_id") or model["path"])
    table.add_row("revision", model.get("revision") or model["content_hash"])
    table.add_row("verdict", f"[{style}]{report['verdict'].upper()}[/]")
    table.add_row("collapse score", f"{report['score']:.4f} (threshold {report['threshold']:.4f})")
    if report["gain_anomaly"] is not None:
        table.add_row("gain anomaly", f"{report['gain_anomaly']:.4f} (threshold {report['gain_threshold']:.4f})")
    if report["evidence"]:
        table.add_row("evidence", ", ".join(report["evidence"]))
    table.add_row("sampler", f"{report['sampler']}, {report['sampler_steps']} steps, seed {report['seed']}")
    table.add_row("cost", f"{report['unet_evaluations']:,} UNet evaluations, {report['timings']['total_s']:.1f} s")
    for name, path in report["artefacts"].items():
        table.add_row(name, path)
    console.print(table)
