"""The jobs the shells run: each joins a source, the scan (or removal) and the formats into one call.

The command line and the GitHub Action's entrypoint both build a job from their inputs and call it, so
they cannot drift apart.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .effect import AttackEffect, effect_on, triggered_samples
from .errors import UsageError
from .hub.card import card_section
from .hub.publish import publish_cleaned
from .hub.source import load_source
from .loading import LoadedModel
from .progress import ProgressCallback, no_progress
from .removal.export import check_output_folder, reloads_identically, save_cleaned
from .removal.known import KnownBackdoor, read_known_backdoor
from .removal.remove import Removal, RemovalConfig, remove_backdoor
from .removal.repair_data import folder_images
from .report.artefacts import write_artefacts, write_grids
from .report.json_report import scan_report, write_json
from .report.removal_report import clean_report, removal_status
from .scan import ScanConfig, ScanResult, scan

REPORT_NAME = "diffcleanse_report.json"  # written into every cleaned model folder
PUSH_MODES = ("none", "pr", "branch", "main")


@dataclass(frozen=True)
class ScanJob:
    """What to scan, how, and where the report and images go."""

    model: str
    config: ScanConfig
    allow_pickle: bool = False
    resolution: int | None = None
    report_dir: Path | None = None
    json_path: Path | None = None
    revision: str | None = None  # Hub models: ORG/NAME plus a branch, tag or sha (or ORG/NAME@REV)
    subfolder: str | None = None
    token: str | None = field(default=None, repr=False)  # never printed; None means HF_TOKEN or none


@dataclass
class ScanOutcome:
    """A finished scan: the loaded model, the result and the JSON-ready report."""

    model: LoadedModel
    result: ScanResult
    report: dict[str, Any]


def run_scan_job(job: ScanJob, progress: ProgressCallback = no_progress) -> ScanOutcome:
    """Load the model, scan it, write the images and JSON report asked for, return all of it."""
    started = time.perf_counter()
    model = load_source(job.model, revision=job.revision, subfolder=job.subfolder, token=job.token,
                        allow_pickle=job.allow_pickle, resolution=job.resolution)
    load_seconds = time.perf_counter() - started
    result = scan(model, job.config, progress)
    artefacts = write_artefacts(result, job.report_dir) if job.report_dir else {}
    report = scan_report(result, model.info, artefacts, load_seconds)
    if job.json_path:
        write_json(report, job.json_path)
    return ScanOutcome(model, result, report)


@dataclass(frozen=True)
class CleanJob:
    """What to clean, how, where the cleaned model goes, and what to measure it with."""

    model: str
    out: Path
    config: ScanConfig
    removal: RemovalConfig = field(default_factory=RemovalConfig)
    true_trigger: Path | None = None  # safetensors with "trigger" (and "target"): a known backdoor to measure
    effect_samples: int = 64
    effect_steps: int = 50
    push: str = "none"  # none, pr, branch or main: publish a cleaned Hub model back to its repo
    branch: str | None = None
    allow_pickle: bool = False
    resolution: int | None = None
    report_dir: Path | None = None
    json_path: Path | None = None
    revision: str | None = None
    subfolder: str | None = None
    token: str | None = field(default=None, repr=False)


@dataclass
class CleanOutcome:
    """A finished clean: the input, its first scan, the removal (None when the input was clean), the report."""

    model: LoadedModel
    first: ScanResult
    removal: Removal | None
    report: dict[str, Any]

    @property
    def clean(self) -> bool:
        """True when the output (or the unchanged input) is clean and fit to use."""
        return bool(self.report["clean"])


def _effects(job: CleanJob, model: LoadedModel, first: ScanResult, cleaned: torch.nn.Module,
             known: KnownBackdoor | None, progress: ProgressCallback,
             ) -> tuple[dict[str, tuple[AttackEffect, ...]], dict[str, torch.Tensor]]:
    """Backdoor effect before and after, with the inverted trigger and, when known, the true one.

    Each comes with the same comparison for samples from the same noises without the trigger: a model
    trained on the target image can make it from plain noise too, and only the excess is the trigger's.
    """
    sample = partial(triggered_samples, scheduler_config=model.scheduler_config, num_samples=job.effect_samples,
                     num_inference_steps=job.effect_steps, sampler=job.config.sampler, seed=job.config.seed)
    triggers = {"plain": (torch.zeros_like(first.trigger), None), "inverted_trigger": (first.trigger, None)}
    if known is not None:
        triggers["true_trigger"] = (known.trigger, known.target)
    images: dict[str, torch.Tensor] = {}
    effects: dict[str, tuple[AttackEffect, ...]] = {}
    for done, (name, (trigger, target)) in enumerate(triggers.items()):
        before, after = sample(model.unet, trigger=trigger), sample(cleaned, trigger=trigger)
        images[f"{name}_before"], images[f"{name}_after"] = before, after
        progress("effect before/after", done + 1, len(triggers))
        if name != "plain":
            # With no known target, the target is what the original model makes from the trigger, on average.
            reference = before.mean(0) if target is None else target
            effects[name] = tuple(effect_on(batch, reference) for batch in
                                  (before, after, images["plain_before"], images["plain_after"]))
    return effects, images


def _card_figures(report: dict[str, Any]) -> dict[str, Any]:
    """The before/after figures a published model card shows."""
    before, after = report["scan_before"], report["scan_after"]
    figures: dict[str, Any] = {
        "verdict": {"before": before["verdict"], "after": after["verdict"]},
        "collapse score": {"before": before["score"], "after": after["score"]},
        "gain anomaly": {"before": before["gain_anomaly"], "after": after["gain_anomaly"]},
    }
    for name, effect in report["effect"].items():
        label = name.replace("_", " ")
        figures[f"{label} MSE to target"] = {"before": effect["before"]["mse"], "after": effect["after"]["mse"]}
        figures[f"{label} attack success"] = {"before": effect["before"]["success_rate"],
                                              "after": effect["after"]["success_rate"]}
        plain = effect["without_trigger"]
        figures[f"{label} target hits without it"] = {"before": plain["before"]["success_rate"],
                                                      "after": plain["after"]["success_rate"]}
    fidelity = report["fidelity"]
    figures["clean denoising loss"] = {"before": fidelity["loss_before"], "after": fidelity["loss_after"]}
    figures["pruned channels"] = f"{report['removal']['pruned_channels']} of {report['removal']['total_channels']}"
    return figures


def _publish(job: CleanJob, model: LoadedModel, report: dict[str, Any]) -> dict[str, Any]:
    """Push the cleaned folder to the scanned repo, pinned to the scanned sha; return where it went."""
    removal = report["removal"]
    section = card_section(
        found=f"a trained-in backdoor ({', '.join(report['scan_before']['evidence'])} evidence, collapse score "
              f"{report['scan_before']['score']:.3f}, gain anomaly {report['scan_before']['gain_anomaly']:.3f})",
        removed=f"{removal['pruned_channels']} of {removal['total_channels']} channels pruned (zeroed) by backdoor "
                f"saliency, then {job.removal.repair_steps * len(removal['rounds'])} repair steps against the "
                "original model as teacher; the re-scan says clean",
        figures=_card_figures(report),
        scanned_sha=model.info.revision,
    )
    published = publish_cleaned(
        job.out, model.info.repo_id, model.info.revision, mode=job.push, branch=job.branch, token=job.token,
        card_section=section, path_in_repo=job.subfolder or "",
        commit_message=f"Remove backdoor (diffcleanse-gate {__version__}, scanned {model.info.revision[:12]})",
    )
    return asdict(published)


def run_clean_job(job: CleanJob, progress: ProgressCallback = no_progress) -> CleanOutcome:
    """Scan; if backdoored, remove the backdoor, write the cleaned model and check it reloads; report all of it.

    With ``push`` set, a cleaned Hub model is published to its repo (a pull request by default), pinned to
    the scanned sha; a model that is not clean after removal is never published.
    """
    check_output_folder(job.out)
    if job.push not in PUSH_MODES:
        raise UsageError(f"push must be one of {', '.join(PUSH_MODES)}, got {job.push!r}")
    started = time.perf_counter()
    model = load_source(job.model, revision=job.revision, subfolder=job.subfolder, token=job.token,
                        allow_pickle=job.allow_pickle, resolution=job.resolution)
    if job.push != "none" and model.info.repo_id is None:
        raise UsageError(f"{job.model}: pushing needs a Hub model (ORG/NAME), not a local folder")
    known = read_known_backdoor(job.true_trigger, model.sample_shape) if job.true_trigger else None
    repair_images = None
    if job.removal.repair_data is not None:  # refuse unusable data before the long scan
        repair_images = folder_images(job.removal.repair_data, model.sample_shape)
    timings = {"load_s": time.perf_counter() - started}
    first = scan(model, job.config, progress)
    timings["scan_s"] = sum(first.timings.values())
    scan_before = scan_report(first, model.info, {}, timings["load_s"])
    if not first.backdoored:
        report = clean_report(model=model.info, scan_before=scan_before, status="unchanged", config=job.removal,
                              timings=timings)
        if job.json_path:
            write_json(report, job.json_path)
        return CleanOutcome(model, first, None, report)

    removal = remove_backdoor(model, first, job.config, job.removal, progress, repair_images)
    timings.update(removal.timings)
    started = time.perf_counter()
    save_cleaned(removal.unet, model, job.out)
    identical = reloads_identically(removal.unet, job.out, job.config.seed)
    timings["save_s"] = time.perf_counter() - started
    started = time.perf_counter()
    effects, images = _effects(job, model, first, removal.unet, known, progress)
    timings["effect_s"] = time.perf_counter() - started
    artefacts = {}
    if job.report_dir:
        artefacts = write_artefacts(first, job.report_dir) | write_grids(job.report_dir, images)
    final = removal.final_scan
    status = removal_status(removal, identical)
    report = clean_report(
        model=model.info, scan_before=scan_before, status=status, removal=removal,
        scan_after=scan_report(final, model.info, {}, 0.0), config=job.removal, effects=effects,
        effect_settings={"samples": job.effect_samples, "steps": job.effect_steps, "sampler": final.sampler,
                         "seed": job.config.seed, "true_trigger": str(job.true_trigger) if job.true_trigger else None},
        output={"path": str(job.out), "layout": model.info.layout, "format": "safetensors",
                "reload_identical": identical, "report": str(job.out / REPORT_NAME)},
        artefacts=artefacts, timings=timings,
    )
    write_json(report, job.out / REPORT_NAME)
    if job.push != "none":
        report["publish"] = _publish(job, model, report) if status == "cleaned" else None
    if job.json_path:
        write_json(report, job.json_path)
    return CleanOutcome(model, first, removal, report)
