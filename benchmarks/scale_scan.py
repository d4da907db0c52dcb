"""Cost at real scale: scan and clean a randomly initialised model of google/ddpm-cifar10-32's architecture.

    python benchmarks/scale_scan.py --out runs/scale                      # on a GPU: the figures of record
    python benchmarks/scale_scan.py --out /tmp/scale --iterations 2 --repair-steps 2 --device cpu   # CPU check

The UNet is built from ``ddpm_cifar10_config.json`` (35,746,307 parameters, the Hub model's exact
config) with seed 0 and saved as a DDPMPipeline folder (DDPM scheduler, clip_sample off). Three timings, each
written to ``scale.json`` as soon as it is measured (a time limit cutting the run short keeps the rest):
1. ``diffcleanse scan`` as a user runs it (a fresh Python process: interpreter start, imports, model load,
   scan), wall clock, and the child process's peak RSS (``--no-cli`` leaves it out);
2. the same scan in this process (load + scan), with peak CUDA memory where there is a GPU;
3. one removal round forced on the scanned model (the model is clean, so ``clean`` alone would stop after
   the scan): saliency, pruning, repair, re-scan and fidelity, with its UNet evaluations.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

from diffcleanse_gate.inversion import InversionConfig
from diffcleanse_gate.jobs import ScanJob, run_scan_job
from diffcleanse_gate.removal.remove import RemovalConfig, remove_backdoor
from diffcleanse_gate.scan import ScanConfig, resolve_device

CONFIG = Path(__file__).resolve().parent / "ddpm_cifar10_config.json"


def build_model(folder: Path, config: Path) -> int:
    """Save a seed-0 random model of the given UNet config as a pipeline; return its parameter count."""
    torch.manual_seed(0)
    unet = UNet2DModel.from_config(json.loads(config.read_text()))
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(clip_sample=False)).save_pretrained(folder, safe_serialization=True)
    return sum(p.numel() for p in unet.parameters())


def _reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**30


def _cli_scan(folder: Path, device: torch.device, iterations: int, out: Path) -> dict:
    """Time ``diffcleanse scan`` in a fresh process, as a user runs it."""
    command = [sys.executable, "-m", "diffcleanse_gate", "scan", str(folder), "--device", device.type, "--quiet",
               "--iterations", str(iterations), "--json", str(out / "cli-scan.json")]
    started = time.perf_counter()
    exit_code = subprocess.run(command, check=False).returncode
    return {"command": " ".join(command[1:]), "exit_code": exit_code, "wall_s": time.perf_counter() - started,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/scale"))
    parser.add_argument("--config", type=Path, default=CONFIG, help="UNet2DModel config (default: ddpm-cifar10's)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--iterations", type=int, default=InversionConfig.steps)
    parser.add_argument("--repair-steps", type=int, default=RemovalConfig.repair_steps)
    parser.add_argument("--cli", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the scan as a fresh `diffcleanse scan` process")
    args = parser.parse_args()
    device = resolve_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    folder = args.out / "ddpm-cifar10-random"
    figures: dict = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                     "config": str(args.config), "parameters": build_model(folder, args.config), "iterations": args.iterations}
    report = args.out / "scale.json"
    if args.cli:
        figures["cli_scan"] = _cli_scan(folder, device, args.iterations, args.out)
        report.write_text(json.dumps(figures, indent=2))

    config = ScanConfig(device=device.type, inversion=InversionConfig(steps=args.iterations))
    _reset(device)
    started = time.perf_counter()
    outcome = run_scan_job(ScanJob(model=str(folder), config=config))
    figures["scan"] = {"load_and_scan_s": time.perf_counter() - started, "timings": outcome.result.timings,
                       "verdict": outcome.result.verdict, "unet_evaluations": outcome.result.unet_evaluations,
                       "peak_cuda_gib": _peak_gib(device)}
    report.write_text(json.dumps(figures, indent=2))

    _reset(device)
    started = time.perf_counter()
    removal = remove_backdoor(outcome.model, outcome.result, config,
                              RemovalConfig(rounds=1, repair_steps=args.repair_steps))
    figures["removal_one_round"] = {"seconds": time.perf_counter() - started, "timings": removal.timings,
                                    "unet_evaluations": removal.unet_evaluations,
                                    "pruned_channels": f"{removal.pruned_channels}/{removal.total_channels}",
                                    "repair_steps": args.repair_steps, "peak_cuda_gib": _peak_gib(device)}
    report.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
