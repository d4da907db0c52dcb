"""Console output with rich: progress bars for long stages and the verdict panel."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ..progress import ProgressCallback


@contextmanager
def rich_progress(console: Console) -> Iterator[ProgressCallback]:
    """Yield a progress callback that drives one rich bar per stage."""
    columns = (TextColumn("{task.description:<30}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
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
    if report["second_look"]:
        table.add_row("second look", "held ancestral probes and the target-carrying search: the first look found "
                                     "no evidence")
    table.add_row("cost", f"{report['unet_evaluations']:,} UNet evaluations, {report['timings']['total_s']:.1f} s")
    for name, path in report["artefacts"].items():
        table.add_row(name, path)
    console.print(table)


def render_clean(report: dict[str, Any], console: Console) -> None:
    """Print how removal ended, the before/after figures, and where the cleaned model went."""
    style = "bold green" if report["clean"] else "bold red"
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column()
    model = report["model"]
    table.add_row("model", model.get("repo_id") or model["path"])
    table.add_row("status", f"[{style}]{report['status'].upper()}[/]: {report['status_text']}")
    table.add_row("verdict", f"{report['verdict_before']} -> {report['verdict_after']}")
    before, after = report["scan_before"], report["scan_after"]
    if after is not None:
        table.add_row("collapse score", f"{before['score']:.4f} -> {after['score']:.4f} "
                      f"(threshold {after['threshold']:.4f})")
        if before["gain_anomaly"] is not None and after["gain_anomaly"] is not None:
            table.add_row("gain anomaly", f"{before['gain_anomaly']:.4f} -> {after['gain_anomaly']:.4f} "
                          f"(threshold {after['gain_threshold']:.4f})")
        for name, effect in report["effect"].items():
            table.add_row(name.replace("_", " "),
                          f"MSE to target {effect['before']['mse']:.4f} -> {effect['after']['mse']:.4f}, "
                          f"attack success {effect['before']['success_rate']:.0%} -> "
                          f"{effect['after']['success_rate']:.0%} (without the trigger "
                          f"{effect['without_trigger']['before']['success_rate']:.0%} -> "
                          f"{effect['without_trigger']['after']['success_rate']:.0%})")
        fidelity = report["fidelity"]
        table.add_row("fidelity", f"clean denoising loss x{fidelity['loss_ratio']:.3f} (bound x{fidelity['bound']}), "
                      f"sample drift {fidelity['sample_drift']:.4f}")
        removal = report["removal"]
        table.add_row("pruned", f"{removal['pruned_channels']} of {removal['total_channels']} channels in "
                      f"{len(removal['rounds'])} round(s)")
        table.add_row("output", f"{report['output']['path']} (reloads identically: "
                      f"{str(report['output']['reload_identical']).lower()})")
        table.add_row("removal cost", f"{removal['unet_evaluations']:,} UNet evaluations, "
                      f"{sum(report['timings'].values()):.1f} s")
    if report.get("publish"):
        table.add_row("published", report["publish"]["url"])
    for name, path in report["artefacts"].items():
        table.add_row(name, path)
    console.print(table)
