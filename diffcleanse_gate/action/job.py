"""Turn the Action's checked inputs into the same library job the command line runs."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import torch

from ..errors import UsageError
from ..jobs import ScanJob
from ..scan import ScanConfig, resolve_device
from .inputs import ActionInputs

REPORT_JSON = "report.json"
# ScanJob fields that carry a Hub source; a build without them scans local folders only.
HUB_FIELDS = ("revision", "token")


def report_path(inputs: ActionInputs) -> Path:
    """Where the JSON report of a run goes."""
    return inputs.report_dir / REPORT_JSON


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
    """Refuse a mode, push target or source that this build of the library cannot run, in one line."""
    if inputs.push != "none" and inputs.mode != "clean":
        raise UsageError(f"input 'push' is {inputs.push}, but only mode 'clean' publishes a model")
    if inputs.mode == "clean":
        raise UsageError("mode 'clean' is not wired into the Action yet: it needs jobs.CleanJob/run_clean_job "
                         "and Hub publishing (push, pr-url) joined in diffcleanse_gate.action")
    if inputs.mode == "sweep":
        raise UsageError("mode 'sweep' is not wired into the Action yet: it needs sweep.run_sweep joined in "
                         "diffcleanse_gate.action; scan repos as a matrix of mode scan meanwhile")
    hub_ready = all(name in {field.name for field in fields(ScanJob)} for name in HUB_FIELDS)
    if inputs.local_model is None and not hub_ready:
        raise UsageError(
            f"input 'model': {inputs.model!r} is not a folder in the workspace, and Hub ids need the Hub "
            "source (ScanJob.revision/token), which this build does not have"
        )
    if inputs.local_model is not None and inputs.revision:
        raise UsageError("input 'revision' applies to Hub ids only; the model is a folder in the workspace")


def scan_job(inputs: ActionInputs) -> ScanJob:
    """The scan job for the inputs: a workspace folder, or a Hub id with its revision and token."""
    check_mode(inputs)
    source: dict[str, object] = {"model": str(inputs.local_model or inputs.model)}
    if inputs.local_model is None:
        source.update(revision=inputs.revision, token=inputs.hf_token)
    return ScanJob(
        **source,
        config=scan_config(inputs),
        report_dir=inputs.report_dir,
        json_path=report_path(inputs),
    )
