"""Run `clean` on every counted model of a zoo and print the before/after figures of each.

    python benchmarks/zoo_removal.py [NAME ...] [--zoo runs/holdout]   # default: the fixture zoo

Backdoored models are measured with their true trigger (the fixture's backdoor.safetensors) and with
the inverted one, and beside them the MSE to the target that the model's clean base (the model the
attack was fine-tuned from) reaches from the same trigger: what "after" can reach at most. Clean models
must come out unchanged.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from zoo_models import counted_models

from diffcleanse_gate.effect import attack_effect
from diffcleanse_gate.jobs import CleanJob, run_clean_job
from diffcleanse_gate.loading import load_local
from diffcleanse_gate.scan import ScanConfig

ZOO = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "zoo"


def clean_base_mse(path: Path, job: CleanJob) -> float:
    """MSE to the target that the model's clean base reaches from the same trigger: the ceiling for "after"."""
    base = load_local(path.parent / json.loads((path / "fixture.json").read_text())["base"])
    known = load_file(path / "backdoor.safetensors")
    return attack_effect(base.unet, base.scheduler_config, known["trigger"], known["target"], job.effect_samples,
                         job.effect_steps, seed=job.config.seed).mse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="only these models (default: every counted one)")
    parser.add_argument("--zoo", type=Path, default=ZOO)
    args = parser.parse_args()
    torch.set_num_threads(1)
    paths = [path for path, _ in counted_models(args.zoo) if not args.names or path.name in args.names]
    print("| model | status | verdict after | true trigger MSE before -> after (x) | clean base MSE "
          "| attack success before -> after | same noises, no trigger: target hits before -> after "
          "| inverted trigger success before -> after | loss ratio | sample drift | pruned | unet_evaluations "
          "| seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for path in paths:
            known = path / "backdoor.safetensors"
            job = CleanJob(model=str(path), out=Path(scratch) / path.name, config=ScanConfig(),
                           true_trigger=known if known.is_file() else None)
            started = time.perf_counter()
            report = run_clean_job(job).report
            seconds = time.perf_counter() - started
            if not report["changed"]:
                print(f"| {path.name} | {report['status']} | {report['verdict_after']} | - | - | - | - | - | - | - | - "
                      f"| {report['scan_before']['unet_evaluations']:,} | {seconds:.1f} |", flush=True)
                continue
            true, inverted = report["effect"]["true_trigger"], report["effect"]["inverted_trigger"]
            fidelity, removal = report["fidelity"], report["removal"]
            print(f"| {path.name} | {report['status']} | {report['verdict_after']} "
                  f"| {true['before']['mse']:.4f} -> {true['after']['mse']:.4f} ({true['mse_ratio']:.0f}x) "
                  f"| {clean_base_mse(path, job):.4f} "
                  f"| {true['before']['success_rate']:.0%} -> {true['after']['success_rate']:.0%} "
                  f"| {true['without_trigger']['before']['success_rate']:.0%} -> "
                  f"{true['without_trigger']['after']['success_rate']:.0%} "
                  f"| {inverted['before']['success_rate']:.0%} -> {inverted['after']['success_rate']:.0%} "
                  f"| {fidelity['loss_ratio']:.3f} | {fidelity['sample_drift']:.4f} "
                  f"| {removal['pruned_channels']}/{removal['total_channels']} in {len(removal['rounds'])} "
                  f"| {removal['unet_evaluations'] + report['scan_before']['unet_evaluations']:,} "
                  f"| {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
