"""The scan report as a SARIF 2.1.0 log for GitHub code scanning: stable rule ids, results located in the repo."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..report.files import write_text_atomic
from .anchor import Anchor

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://arxiv.org/abs/2407.21316"


@dataclass(frozen=True)
class Rule:
    """One kind of finding; its id never changes, so code scanning can track alerts across runs."""

    id: str
    name: str
    evidence: str  # the report's evidence item that raises it
    short: str
    full: str


RULES = (
    Rule("DCG001", "backdoor-collapse", "collapse",
         "Trained-in backdoor: an inverted trigger collapses the sampler onto one image",
         "Sampling from noise plus the inverted trigger turns every noise into the same image; the collapse "
         "score reached the threshold calibrated on clean models."),
    Rule("DCG002", "backdoor-gain-anomaly", "gain",
         "Trained-in backdoor: the model amplifies a trigger direction as an ODE-sampler backdoor does",
         "Along the inverted direction the model's response gain matches the amplification of an "
         "ODE-sampler backdoor, which a clean denoiser cannot show; the gain anomaly reached its threshold."),
)


def sarif_log(report: dict[str, Any], model: str, anchor: Anchor) -> dict[str, Any]:
    """A SARIF log with one run: a result per statistic that fired, none for a clean model."""
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "diffcleanse-gate",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [_rule(rule) for rule in RULES],
            }},
            "automationDetails": {"id": f"diffcleanse-gate/{model}/"},
            "results": [_result(index, rule, report, model, anchor)
                        for index, rule in enumerate(RULES) if rule.evidence in report["evidence"]],
            "properties": _statistics(report),
        }],
    }


def write_sarif(report: dict[str, Any], model: str, anchor: Anchor, path: Path) -> None:
    """Write the SARIF log atomically."""
    write_text_atomic(path, json.dumps(sarif_log(report, model, anchor), indent=2) + "\n")


def _rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.short},
        "fullDescription": {"text": rule.full},
        "help": {"text": "Do not ship the model. Run `diffcleanse clean` (or the Action with mode: clean) to "
                         "prune the backdoor, or restore a revision that scans clean."},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["security", "backdoor", "diffusion-model"], "security-severity": "9.0",
                       "precision": "high", "problem.severity": "error"},
    }


def _result(index: int, rule: Rule, report: dict[str, Any], model: str, anchor: Anchor) -> dict[str, Any]:
    statistic = ("collapse score", report["score"], report["threshold"]) if rule.evidence == "collapse" else \
        ("gain anomaly", report["gain_anomaly"], report["gain_threshold"])
    return {
        "ruleId": rule.id,
        "ruleIndex": index,
        "level": "error",
        "message": {"text": f"Backdoor found in {model}: {statistic[0]} {statistic[1]:.4f} reached the "
                            f"threshold {statistic[2]:.4f} (sampler {report['sampler']}, seed {report['seed']})."},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": anchor.path, "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": anchor.line},
        }}],
        "partialFingerprints": {"diffcleanseModel/v1": f"{model}:{rule.id}"},
        "properties": _statistics(report),
    }


def _statistics(report: dict[str, Any]) -> dict[str, Any]:
    model = report["model"]
    return {
        "verdict": report["verdict"],
        "score": report["score"],
        "threshold": report["threshold"],
        "gainAnomaly": report["gain_anomaly"],
        "gainThreshold": report["gain_threshold"],
        "modelSha": model.get("revision") or model["content_hash"],
    }
