"""The Markdown job summary of a scan: verdict, statistics against thresholds, model, cost and pictures."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

# GitHub keeps at most 1 MiB of summary per step; pictures beyond this budget are linked, not embedded.
EMBED_BUDGET = 600 * 1024
PICTURES = (
    ("trigger_png", "inverted trigger"),
    ("triggered_samples_png", "samples from noise + trigger"),
    ("clean_samples_png", "samples from noise alone"),
)


def scan_summary(report: dict[str, Any], model: str, image: str | None = None) -> str:
    """Render a scan report for $GITHUB_STEP_SUMMARY."""
    backdoored = report["verdict"] == "backdoored"
    info = report["model"]
    lines = [
        f"## diffcleanse-gate: {'🚨 BACKDOORED' if backdoored else '✅ CLEAN'}",
        "",
        f"**{_cell(model)}** — {_verdict_sentence(report)}",
        "",
        "| statistic | value | threshold | fired |",
        "|---|---:|---:|:---:|",
        f"| collapse score | {report['score']:.4f} | {report['threshold']:.4f} | {_mark('collapse', report)} |",
    ]
    if report["gain_anomaly"] is not None:
        lines.append(f"| gain anomaly | {report['gain_anomaly']:.4f} | {report['gain_threshold']:.4f} "
                     f"| {_mark('gain', report)} |")
    lines += [
        "",
        "| model | |",
        "|---|---|",
        f"| model | `{_cell(model)}` |",
        f"| sha | `{info.get('revision') or info['content_hash']}` |",
        f"| layout | {info['layout']}, {info['weights_dtype']} {info['weights_format']} |",
        f"| sampler | {report['sampler']}, {report['sampler_steps']} steps, seed {report['seed']} |",
        f"| device | {report['settings']['device']} |",
        f"| cost | {report['unet_evaluations']:,} UNet evaluations |",
    ]
    if image:
        lines.append(f"| image | `{_cell(image)}` |")
    lines += ["", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {name.removesuffix('_s').replace('_', ' ')} | {seconds:.1f} |"
              for name, seconds in report["timings"].items()]
    lines += ["", *_pictures(report["artefacts"]), ""]
    return "\n".join(lines)


def error_summary(message: str) -> str:
    """The summary of a run that stopped on bad input."""
    return f"## diffcleanse-gate: ⚠️ ERROR\n\n{_cell(message)}\n"


def _verdict_sentence(report: dict[str, Any]) -> str:
    if report["verdict"] != "backdoored":
        return "no inverted trigger made the sampler collapse, and no trigger direction was amplified."
    fired = {"collapse": "an inverted trigger collapses the sampler onto one image",
             "gain": "the model amplifies a trigger direction like an ODE-sampler backdoor"}
    return "backdoor found: " + "; ".join(fired[name] for name in report["evidence"]) + "."


def _mark(evidence: str, report: dict[str, Any]) -> str:
    return "🚨 yes" if evidence in report["evidence"] else "no"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell or heading."""
    return text.replace("|", "\\|").replace("\n", " ")


def _pictures(artefacts: dict[str, str]) -> list[str]:
    """Embed the trigger and sample grids as data URIs within the budget; link the rest to the artifact."""
    lines = ["### What the model makes from the inverted trigger", ""]
    budget = EMBED_BUDGET
    for key, title in PICTURES:
        path = Path(artefacts[key]) if key in artefacts else None
        if path is None or not path.is_file():
            continue
        data = path.read_bytes()
        encoded = base64.b64encode(data).decode()
        if len(encoded) <= budget:
            budget -= len(encoded)
            lines.append(f'<img alt="{title}" title="{title}" width="256" src="data:image/png;base64,{encoded}">')
        else:
            lines.append(f"- {title}: `{path.name}` (in the report artifact)")
    lines += ["", f"Report folder: `{_report_folder(artefacts)}`{_run_link()}"]
    return lines


def _report_folder(artefacts: dict[str, str]) -> str:
    return str(Path(next(iter(artefacts.values()))).parent) if artefacts else "(none)"


def _run_link() -> str:
    """A link to the run's page (where uploaded artifacts are listed), when the runner says where it is."""
    server, repo, run = (os.environ.get(name) for name in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if not (server and repo and run):
        return ""
    return f" — upload it with `actions/upload-artifact`; artifacts are listed on [this run]({server}/{repo}/actions/runs/{run})."
