"""Turn the Action's checked inputs into the same library job the command line runs, one per mode."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..errors import UsageError
from ..hub.refs import parse_hub_ref
from ..jobs import CleanJob, ScanJob
from ..scan import ScanConfig, resolve_device
from ..sweep import read_repo_list
from .inputs import ActionInputs

REPORT_JSON = "report.json"
CLEANED_FOLDER = "cleaned"  # mode clean: the cleaned model, inside report-dir
SWEEP_JSON, SWEEP_MARKDOWN = "sweep.json", "sweep.md"


@dataclass(frozen=True)
class SweepJob:
    """What `run_sweep` is called with, and where its combined JSON and Markdown go."""

    targets: list[str]
    config: ScanConfig
    state: Path | None
    json_path: Path
    markdown_path: Path
    token: str | None = field(default=None, repr=False)


def report_path(inputs: ActionInputs) -> Path:
    """Where the JSON report of a run goes (the combined report in mode sweep)."""
    return inputs.report_dir / (SWEEP_JSON if inputs.mode == "sweep" else REPORT_JSON)


def scan_config(inputs: ActionInputs) -> ScanConfig:
    """The scan settings the inputs ask for (library defaults where an input is empty)."""
    if inputs.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("input 'device' is cuda, but no CUDA device is visible (run the image with --gpus all)")
    config = ScanConfig(seed=inputs.seed, sampler=inputs.sampler, device=str(resolve_device(inputs.device)))
    if inputs.threshold is not None:
        config = replace(config, threshold=inputs.threshold)
    if inputs.gain_threshold is not None:
        config = replace(config, gain_threshold=inputs.gain_threshold)
    return config


def check_mode(inputs: ActionInputs) -> None:
    """Refuse inputs that do not fit the mode, in one line naming the input."""
    if inputs.push != "none" and inputs.mode != "clean":
        raise UsageError(f"input 'push' is {inputs.push}, but only mode 'clean' publishes a model")
    if inputs.branch and inputs.push != "branch":
        raise UsageError("input 'branch' names where push: branch commits; set push to branch")
    if inputs.push == "branch" and not inputs.branch:
        raise UsageError("push: branch needs input 'branch', the Hub branch to commit to (not main)")
    if inputs.mode == "sweep":
        if inputs.revision:
            raise UsageError("input 'revision' does not apply to mode 'sweep'; write ORG/NAME@REVISION in the list")
        if inputs.sarif:
            raise UsageError("input 'sarif' applies to modes scan and clean; mode 'sweep' writes JSON and Markdown")
    elif inputs.sweep_state:
        raise UsageError(f"input 'sweep-state' applies to mode 'sweep' only, not {inputs.mode!r}")
    if inputs.local_model is not None and inputs.revision:
        raise UsageError("input 'revision' applies to Hub ids only; the model is a folder in the workspace")


def _source(inputs: ActionInputs) -> dict[str, object]:
    """The job's model: a workspace folder, or a Hub id with its revision and token."""
    if inputs.local_model is not None:
        return {"model": str(inputs.local_model)}
    return {"model": inputs.model, "revision": inputs.revision, "token": inputs.hf_token}


def scan_job(inputs: ActionInputs) -> ScanJob:
    """The scan job for the inputs (mode scan)."""
    check_mode(inputs)
    return ScanJob(**_source(inputs), config=scan_config(inputs), report_dir=inputs.report_dir,
                   json_path=report_path(inputs))


def clean_job(inputs: ActionInputs) -> CleanJob:
    """The clean job for the inputs (mode clean): the cleaned model goes to report-dir/cleaned."""
    check_mode(inputs)
    return CleanJob(**_source(inputs), out=inputs.report_dir / CLEANED_FOLDER, config=scan_config(inputs),
                    report_dir=inputs.report_dir, json_path=report_path(inputs), push=inputs.push,
                    branch=inputs.branch)


def sweep_job(inputs: ActionInputs) -> SweepJob:
    """The sweep job for the inputs (mode sweep): the repos `model` names, the state file, the reports."""
    check_mode(inputs)
    return SweepJob(targets=sweep_targets(inputs), config=scan_config(inputs), state=inputs.sweep_state,
                    json_path=report_path(inputs), markdown_path=inputs.report_dir / SWEEP_MARKDOWN,
                    token=inputs.hf_token)


def build_job(inputs: ActionInputs) -> ScanJob | CleanJob | SweepJob:
    """The job the inputs' mode runs."""
    return {"scan": scan_job, "clean": clean_job, "sweep": sweep_job}[inputs.mode](inputs)


def sweep_targets(inputs: ActionInputs) -> list[str]:
    """The repos of `model` in mode sweep: items separated by newlines or commas, each ORG/NAME[@REVISION]
    or a list file in the workspace (one repo a line); a file that exists wins over a repo id."""
    targets: list[str] = []
    for item in re.split(r"[\n,]", inputs.model):
        item = item.split("#", 1)[0].strip()
        if not item:
            continue
        path = (inputs.workspace / item).resolve()
        if path.is_relative_to(inputs.workspace) and path.is_file():
            targets += read_repo_list(path)
        elif parse_hub_ref(item) is not None:
            targets.append(item)
        else:
            raise UsageError(f"input 'model': {item!r} is neither a Hub repo (ORG/NAME[@REVISION]) nor a list file "
                             "in the workspace")
    if not targets:
        raise UsageError("input 'model': nothing to sweep (no repos in the list)")
    return targets
