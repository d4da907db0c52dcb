"""The machine-readable scan report."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import __version__
from ..loading import ModelInfo
from ..scan import ScanResult
from .files import write_text_atomic


def scan_report(result: ScanResult, model: ModelInfo, artefacts: dict[str, str], load_seconds: float) -> dict[str, Any]:
    """Everything a later step needs to act on a scan, as JSON-ready values."""
    timings = {"load_s": load_seconds, **result.timings}
    timings["total_s"] = sum(timings.values())
    return {
        "tool": {"name": "diffcleanse-gate", "version": __version__},
        "verdict": result.verdict,
        "score": result.score,
        "threshold": result.threshold,
        "gain_anomaly": result.gain_anomaly,
        "gain_threshold": result.gain_threshold,
        "evidence": result.evidence,
        "probes": [asdict(probe) for probe in result.probes],
        "second_look": result.second_look,
        "model": asdict(model),
        "sampler": result.sampler,
        "sampler_steps": result.config.sampler_steps,
        "seed": result.config.seed,
        "unet_evaluations": result.unet_evaluations,
        "timings": {name: round(value, 3) for name, value in timings.items()},
        "trigger": {"rms": float(result.trigger.pow(2).mean().sqrt()), "shape": list(result.trigger.shape)},
        "settings": result.config.to_dict(),
        "artefacts": artefacts,
    }


def write_json(report: dict[str, Any], path: Path) -> None:
    """Write the report as indented JSON, atomically."""
    write_text_atomic(path, json.dumps(report, indent=2) + "\n")
