"""The `diffcleanse` command line: parse arguments, call the library, print, choose the exit code."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch
from rich.console import Console

from . import __version__
from .errors import DiffCleanseError, UsageError
from .inversion import InversionConfig
from .jobs import ScanJob, run_scan_job
from .report.console import render_scan, rich_progress
from .sampling import SAMPLERS
from .scan import ScanConfig, resolve_device

EXIT_CLEAN, EXIT_BACKDOOR, EXIT_ERROR = 0, 1, 2


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffcleanse", description="Find trained-in backdoors in diffusion models.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    scan_cmd = commands.add_parser("scan", help="scan a diffusers model folder for a backdoor")
    scan_cmd.add_argument("model", help="a diffusers pipeline folder (model_index.json) or UNet2DModel folder")
    scan_cmd.add_argument("--json", type=Path, help="write the machine-readable report here")
    scan_cmd.add_argument("--report-dir", type=Path, help="write trigger and sample images here")
    scan_cmd.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    scan_cmd.add_argument("--seed", type=int, default=0)
    scan_cmd.add_argument("--threshold", type=float, help="collapse score at or above which a model is backdoored")
    scan_cmd.add_argument("--gain-threshold", type=float,
                          help="gain anomaly at or above which a model is backdoored")
    scan_cmd.add_argument("--sampler", choices=sorted(SAMPLERS), help="default: the model's own scheduler")
    scan_cmd.add_argument("--sampler-steps", type=_positive_int, default=ScanConfig.sampler_steps)
    scan_cmd.add_argument("--iterations", type=_positive_int, default=InversionConfig.steps,
                          help="trigger-inversion steps (the main budget knob)")
    scan_cmd.add_argument("--batch-size", type=_positive_int, default=InversionConfig.batch_size,
                          help="noises per candidate per inversion step")
    scan_cmd.add_argument("--resolution", type=_positive_int, help="image size to scan at (default: the UNet's)")
    scan_cmd.add_argument("--allow-pickle", action="store_true",
                          help="load pickle-only weights (with torch.load(weights_only=True))")
    scan_cmd.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _scan_config(args: argparse.Namespace) -> ScanConfig:
    for name, value in (("--threshold", args.threshold), ("--gain-threshold", args.gain_threshold)):
        if value is not None and not -1.0 <= value <= 1.0:
            raise UsageError(f"{name} must lie in [-1, 1], got {value}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but no CUDA device is available")
    config = ScanConfig(
        seed=args.seed,
        sampler=args.sampler,
        sampler_steps=args.sampler_steps,
        device=str(resolve_device(args.device)),
        inversion=replace(InversionConfig(), steps=args.iterations, batch_size=args.batch_size),
    )
    if args.threshold is not None:
        config = replace(config, threshold=args.threshold)
    if args.gain_threshold is not None:
        config = replace(config, gain_threshold=args.gain_threshold)
    return config


def _run_scan(args: argparse.Namespace, console: Console) -> int:
    job = ScanJob(
        model=args.model,
        config=_scan_config(args),
        allow_pickle=args.allow_pickle,
        resolution=args.resolution,
        report_dir=args.report_dir,
        json_path=args.json,
    )
    if args.quiet:
        outcome = run_scan_job(job)
    else:
        with rich_progress(Console(stderr=True)) as progress:
            outcome = run_scan_job(job, progress)
    render_scan(outcome.report, console)
    return EXIT_BACKDOOR if outcome.result.backdoored else EXIT_CLEAN


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `diffcleanse` command; returns the exit code."""
    args = _parser().parse_args(argv)
    console = Console()
    torch.set_num_threads(min(torch.get_num_threads(), 4))
    try:
        return _run_scan(args, console)
    except DiffCleanseError as error:
        print(f"diffcleanse: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("diffcleanse: interrupted", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
