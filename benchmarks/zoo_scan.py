"""Scan every model of the fixture zoo and print verdicts, scores, confusion counts and cost.

    python benchmarks/zoo_scan.py            # figures go to stdout; copy them into RESULTS.md
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from diffcleanse_gate.loading import load_local
from diffcleanse_gate.scan import ScanConfig, scan

ZOO = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "zoo"


def main() -> None:
    torch.set_num_threads(1)
    counts = {"tp": 0, "fn": 0, "tn": 0, "fp": 0}
    print("| model | family | verdict | collapse score | gain anomaly | evidence | trigger cosine "
          "| unet_evaluations | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in sorted(p for p in ZOO.iterdir() if (p / "fixture.json").is_file()):
        family = json.loads((path / "fixture.json").read_text()).get("family")
        started = time.perf_counter()
        result = scan(load_local(path), ScanConfig())
        seconds = time.perf_counter() - started
        cosine = "-"
        if family:
            true_trigger = load_file(path / "backdoor.safetensors")["trigger"]
            cos = torch.nn.functional.cosine_similarity(result.trigger.flatten(), true_trigger.flatten(), dim=0)
            cosine = f"{float(cos):.2f}"
        key = ("tp" if result.backdoored else "fn") if family else ("fp" if result.backdoored else "tn")
        counts[key] += 1
        print(f"| {path.name} | {family or 'clean'} | {result.verdict} | {result.score:.3f} "
              f"| {result.gain_anomaly:.3f} | {', '.join(result.evidence) or '-'} | {cosine} "
              f"| {result.unet_evaluations:,} | {seconds:.1f} |", flush=True)
    print(f"\nTP {counts['tp']}  FN {counts['fn']}  TN {counts['tn']}  FP {counts['fp']}")


if __name__ == "__main__":
    main()
