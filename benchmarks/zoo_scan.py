"""Scan every counted model of a zoo and print verdicts, scores, confusion counts and cost.

    python benchmarks/zoo_scan.py                                   # the fixture zoo, default settings
    python benchmarks/zoo_scan.py --zoo runs/holdout --iterations 120 --batch-size 16 [--seed 1] [--first-look-only]

Models whose ``fixture.json`` says ``"counted": false`` (an attack that did not implant) are left out.
Figures go to stdout; copy them into RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file
from zoo_models import counted_models

from diffcleanse_gate.inversion import InversionConfig
from diffcleanse_gate.loading import load_local
from diffcleanse_gate.scan import ScanConfig, scan

ZOO = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "zoo"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zoo", type=Path, default=ZOO)
    parser.add_argument("--iterations", type=int, default=InversionConfig.steps, help="trigger-inversion steps")
    parser.add_argument("--batch-size", type=int, default=InversionConfig.batch_size,
                        help="trigger-inversion noises per step")
    parser.add_argument("--seed", type=int, default=ScanConfig.seed)
    parser.add_argument("--first-look-only", action="store_true",
                        help="no second look with the held ancestral probes (ScanConfig.second_look off)")
    args = parser.parse_args()
    config = ScanConfig(seed=args.seed, second_look=not args.first_look_only,
                        inversion=replace(InversionConfig(), steps=args.iterations, batch_size=args.batch_size))
    torch.set_num_threads(1)
    counts = {"tp": 0, "fn": 0, "tn": 0, "fp": 0}
    print("| model | family | verdict | collapse score | gain anomaly | evidence | second look | trigger probe "
          "| trigger cosine | unet_evaluations | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for path, fixture in counted_models(args.zoo):
        family = fixture.get("family")
        started = time.perf_counter()
        result = scan(load_local(path), config)
        seconds = time.perf_counter() - started
        cosine = "-"
        if family:
            true_trigger = load_file(path / "backdoor.safetensors")["trigger"]
            cos = torch.nn.functional.cosine_similarity(result.trigger.flatten(), true_trigger.flatten(), dim=0)
            cosine = f"{float(cos):.2f}"
        key = ("tp" if result.backdoored else "fn") if family else ("fp" if result.backdoored else "tn")
        counts[key] += 1
        print(f"| {path.name} | {family or 'clean'} | {result.verdict} | {result.score:.3f} "
              f"| {result.gain_anomaly:.3f} | {', '.join(result.evidence) or '-'} | {'yes' if result.second_look else 'no'} "
              f"| {result.trigger_probe.name} | {cosine} "
              f"| {result.unet_evaluations:,} | {seconds:.1f} |", flush=True)
    print(f"\nTP {counts['tp']}  FN {counts['fn']}  TN {counts['tn']}  FP {counts['fp']}")


if __name__ == "__main__":
    main()
