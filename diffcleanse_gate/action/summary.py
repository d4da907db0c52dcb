"""The Markdown job summaries: a scan (verdict, statistics against thresholds, model, cost, pictures) and a
removal (status, before/after figures, where the cleaned model went, before/after pictures)."""

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
REMOVAL_PICTURES = (
    ("inverted_trigger_before_png", "inverted trigger: samples before"),
    ("inverted_trigger_after_png", "inverted trigger: samples after"),
    ("true_trigger_before_png", "known trigger: samples before"),
    ("true_trigger_after_png", "known trigger: samples after"),
    ("plain_before_png", "no trigger: samples before"),
    ("plain_after_png", "no trigger: samples after"),
    ("trigger_png", "inverted trigger"),
)
STATUS_HEADINGS = {
    "unchanged": "✅ CLEAN (unchanged)",
    "cleaned": "✅ CLEANED",
    "backdoor-remains": "🚨 BACKDOOR REMAINS",
    "fidelity-lost": "⚠️ FIDELITY LOST",
    "reload-mismatch": "⚠️ RELOAD MISMATCH",
}


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
        *_model_rows(model, info),
        f"| layout | {info['layout']}, {info['weights_dtype']} {info['weights_format']} |",
        f"| sampler | {report['sampler']}, {report['sampler_steps']} steps, seed {report['seed']} |",
        f"| device | {report['settings']['device']} |",
        f"| cost | {report['unet_evaluations']:,} UNet evaluations{_looks(report)} |",
    ]
    if image:
        lines.append(f"| image | `{_cell(image)}` |")
    lines += ["", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {name.removesuffix('_s').replace('_', ' ')} | {seconds:.1f} |"
              for name, seconds in report["timings"].items()]
    lines += ["", *_pictures(report["artefacts"], PICTURES, "What the model makes from the inverted trigger"), ""]
    return "\n".join(lines)


def _looks(report: dict[str, Any]) -> str:
    """How many looks the scan took, for its cost row."""
    return ", two looks (the first found no evidence)" if report["second_look"] else ", one look"


def clean_summary(report: dict[str, Any], model: str, image: str | None = None) -> str:
    """Render a removal report (`jobs.run_clean_job`) for $GITHUB_STEP_SUMMARY."""
    before, after = report["scan_before"], report["scan_after"]
    info = report["model"]
    lines = [
        f"## diffcleanse-gate: {STATUS_HEADINGS[report['status']]}",
        "",
        f"**{_cell(model)}** — status `{report['status']}`: {report['status_text']}.",
        "",
        "| | before | after | bound |",
        "|---|---:|---:|---:|",
        f"| verdict | {before['verdict']} | {after['verdict'] if after else 'unchanged'} | |",
        f"| collapse score | {before['score']:.4f} | {_figure(after, 'score')} | < {before['threshold']:.4f} |",
    ]
    if before["gain_anomaly"] is not None:
        lines.append(f"| gain anomaly | {before['gain_anomaly']:.4f} | {_figure(after, 'gain_anomaly')} "
                     f"| < {before['gain_threshold']:.4f} |")
    if after is not None:
        for name, effect in report["effect"].items():
            label = "backdoor effect, " + ("inverted trigger" if name == "inverted_trigger" else "known trigger")
            before_effect, after_effect = effect["before"], effect["after"]
            lines.append(f"| {label}: MSE to target | {before_effect['mse']:.4f} | {after_effect['mse']:.4f} | |")
            lines.append(f"| {label}: attack success | {before_effect['success_rate']:.0%} "
                         f"| {after_effect['success_rate']:.0%} | |")
            plain = effect["without_trigger"]
            lines.append(f"| same noises without the trigger: target hits | {plain['before']['success_rate']:.0%} "
                         f"| {plain['after']['success_rate']:.0%} | |")
        fidelity, removal = report["fidelity"], report["removal"]
        lines.append(f"| fidelity: clean denoising loss | {fidelity['loss_before']:.5f} | {fidelity['loss_after']:.5f} "
                     f"(x{fidelity['loss_ratio']:.3f}) | ≤ x{fidelity['bound']:.2f} |")
        lines.append(f"| pruned channels | | {removal['pruned_channels']} of {removal['total_channels']} "
                     f"({removal['pruned_share']:.1%}), {len(removal['rounds'])} round(s) | |")
        reload = "identical" if report["output"]["reload_identical"] else "🚨 MISMATCH"
        lines.append(f"| reload check | | {reload} | |")
    lines += _model_rows(model, info)
    if after is not None:
        lines.append(f"| cleaned model | `{_cell(report['output']['path'])}` |")
        lines.append(f"| cost | {report['removal']['unet_evaluations']:,} UNet evaluations in removal, "
                     f"{sum(report['timings'].values()):.1f} s in all |")
    publish = report.get("publish")
    if publish:
        lines.append(f"| published | {publish['url']} (`{_cell(publish['revision'])}`) |")
    elif "publish" in report:
        lines.append("| published | no: only a cleaned model is pushed |")
    if image:
        lines.append(f"| image | `{_cell(image)}` |")
    if report["artefacts"]:
        lines += ["", *_pictures(report["artefacts"], REMOVAL_PICTURES, "Samples before and after removal")]
    return "\n".join([*lines, ""])


def error_summary(message: str) -> str:
    """The summary of a run that stopped on bad input."""
    return f"## diffcleanse-gate: ⚠️ ERROR\n\n{_cell(message)}\n"


def _model_rows(model: str, info: dict[str, Any]) -> list[str]:
    """The head of the model table: what was given and the exact revision (or content hash) worked on."""
    return ["", "| model | |", "|---|---|", f"| model | `{_cell(model)}` |",
            f"| sha | `{info.get('revision') or info['content_hash']}` |"]


def _verdict_sentence(report: dict[str, Any]) -> str:
    if report["verdict"] != "backdoored":
        return "no inverted trigger made the sampler collapse, and no trigger direction was amplified."
    fired = {"collapse": "an inverted trigger collapses the sampler onto one image",
             "gain": "the model amplifies a trigger direction like an ODE-sampler backdoor"}
    return "backdoor found: " + "; ".join(fired[name] for name in report["evidence"]) + "."


def _figure(scan: dict[str, Any] | None, key: str) -> str:
    """A scan's figure for the after column: "unchanged" when removal did not run, empty when not measured."""
    if scan is None:
        return "unchanged"
    return "" if scan[key] is None else f"{scan[key]:.4f}"


def _mark(evidence: str, report: dict[str, Any]) -> str:
    return "🚨 yes" if evidence in report["evidence"] else "no"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell or heading."""
    return text.replace("|", "\\|").replace("\n", " ")


def _pictures(artefacts: dict[str, str], pictures: tuple[tuple[str, str], ...], heading: str) -> list[str]:
    """Embed the pictures as data URIs within the budget; link the rest to the artifact."""
    lines = [f"### {heading}", ""]
    budget = EMBED_BUDGET
    for key, title in pictures:
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
