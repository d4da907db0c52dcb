"""The machine-readable report of `diffcleanse clean`: what was found, what was removed, before and after."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .. import __version__
from ..effect import AttackEffect
from ..loading import ModelInfo
from ..removal.remove import Removal, RemovalConfig

STATUSES = {
    "unchanged": "the input is clean; nothing was changed or written",
    "cleaned": "the backdoor was removed; the cleaned model is clean by re-scan and within the fidelity bound",
    "backdoor-remains": "removal did not bring the backdoor below the threshold; the output is NOT clean",
    "fidelity-lost": "the re-scan is clean but clean generation degraded past the fidelity bound",
    "reload-mismatch": "the written model does not reload to the same outputs; do not publish it",
}


def removal_status(removal: Removal, reload_identical: bool) -> str:
    """One word for how removal ended (keys of ``STATUSES``)."""
    if not removal.clean:
        return "backdoor-remains"
    if not reload_identical:
        return "reload-mismatch"
    if not removal.fidelity.within_bound:
        return "fidelity-lost"
    return "cleaned"


def _effect(before: AttackEffect, after: AttackEffect, plain_before: AttackEffect,
            plain_after: AttackEffect) -> dict[str, Any]:
    return {"before": asdict(before), "after": asdict(after), "mse_ratio": after.mse / max(before.mse, 1e-12),
            "without_trigger": {"before": asdict(plain_before), "after": asdict(plain_after)}}


def clean_report(
    *,
    model: ModelInfo,
    scan_before: dict[str, Any],
    status: str,
    removal: Removal | None = None,
    scan_after: dict[str, Any] | None = None,
    config: RemovalConfig,
    effects: dict[str, tuple[AttackEffect, ...]] | None = None,
    effect_settings: dict[str, Any] | None = None,
    output: dict[str, Any] | None = None,
    artefacts: dict[str, str] | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Everything a later step needs to act on a removal, as JSON-ready values."""
    report: dict[str, Any] = {
        "tool": {"name": "diffcleanse-gate", "version": __version__},
        "status": status,
        "status_text": STATUSES[status],
        "clean": status in ("cleaned", "unchanged"),
        "changed": removal is not None,
        "model": asdict(model),
        "verdict_before": scan_before["verdict"],
        "verdict_after": (scan_after or scan_before)["verdict"],
        "scan_before": scan_before,
        "scan_after": scan_after,
        "settings": config.to_dict(),
        "artefacts": artefacts or {},
        "timings": {name: round(value, 3) for name, value in (timings or {}).items()},
    }
    if removal is not None:
        report["removal"] = {
            "rounds": [
                {"pruned_channels": r.pruned_channels, "final_repair_loss": r.final_repair_loss,
                 "verdict": r.scan.verdict, "score": r.scan.score, "gain_anomaly": r.scan.gain_anomaly,
                 "seconds": round(r.seconds, 3)}
                for r in removal.rounds
            ],
            "pruned_channels": removal.pruned_channels,
            "total_channels": removal.total_channels,
            "pruned_share": removal.pruned_channels / removal.total_channels,
            "zeroed_parameters": removal.zeroed_parameters,
            "repair_data": removal.data_source,
            "unet_evaluations": removal.unet_evaluations,
        }
        report["fidelity"] = removal.fidelity.to_dict()
        report["effect"] = {name: _effect(*four) for name, four in (effects or {}).items()}
        report["effect_settings"] = effect_settings or {}
        report["output"] = output or {}
    return report
