"""The `diffcleanse` command line: parse arguments, call the library, print, choose the exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import torch
from huggingface_hub.utils import disable_progress_bars
from rich.console import Console

from . import __version__
from .errors import DiffCleanseError, UsageError
from .inversion import InversionConfig
from .jobs import PUSH_MODES, CleanJob, ScanJob, run_clean_job, run_scan_job
from .removal.remove import RemovalConfig
from .report.console import render_clean, render_scan, rich_progress
from .report.sweep import sweep_markdown, write_sweep
from .sampling import SAMPLERS
from .scan import ScanConfig, resolve_device
from .sweep import SweepEntry, SweepState, read_repo_list, run_sweep, search_repos

EXIT_CLEAN, EXIT_BACKDOOR, EXIT_ERROR = 0, 1, 2
Outcome = TypeVar("Outcome")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _ratio(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {value}")
    return value


def _add_scan_settings(cmd: argparse.ArgumentParser) -> None:
    """The scan settings every command that scans takes (scan, sweep)."""
    cmd.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--threshold", type=float, help="collapse score at or above which a model is backdoored")
    cmd.add_argument("--gain-threshold", type=float,
                     help="gain anomaly at or above which a model is backdoored")
    cmd.add_argument("--sampler", choices=sorted(SAMPLERS), help="default: the model's own scheduler")
    cmd.add_argument("--sampler-steps", type=_positive_int, default=ScanConfig.sampler_steps)
    cmd.add_argument("--iterations", type=_positive_int, default=InversionConfig.steps,
                     help="trigger-inversion steps (the main budget knob)")
    cmd.add_argument("--batch-size", type=_positive_int, default=InversionConfig.batch_size,
                     help="noises per candidate per inversion step")
    cmd.add_argument("--no-second-look", dest="second_look", action="store_false",
                     help="one look only: no second search (held ancestral probes, target-carrying search) where "
                          "the first finds nothing (faster on clean models, misses colour and small-trigger backdoors)")


def _add_hub_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--token", help="Hugging Face token (default: HF_TOKEN or the stored login); never printed")


def _add_model_options(cmd: argparse.ArgumentParser) -> None:
    """The model to work on and how to load it (scan, clean)."""
    cmd.add_argument("model", help="a diffusers pipeline or UNet2DModel folder, or ORG/NAME[@REVISION] on the Hub")
    cmd.add_argument("--resolution", type=_positive_int, help="image size to work at (default: the UNet's)")
    cmd.add_argument("--allow-pickle", action="store_true",
                     help="load pickle-only weights (with torch.load(weights_only=True))")
    cmd.add_argument("--quiet", action="store_true", help="no progress bars")
    cmd.add_argument("--revision", help="Hub models: branch, tag or commit sha (or write ORG/NAME@REVISION)")
    cmd.add_argument("--subfolder", help="the model's folder inside the repo or local folder")
    _add_hub_options(cmd)


def _model_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The job fields that ``_add_model_options`` and the report options set."""
    return {"model": args.model, "allow_pickle": args.allow_pickle, "resolution": args.resolution,
            "report_dir": args.report_dir, "json_path": args.json, "revision": args.revision,
            "subfolder": args.subfolder, "token": args.token}


def _run_with_progress(args: argparse.Namespace, run: Callable[..., Outcome], job: Any) -> Outcome:
    """Run a job with rich progress bars on stderr, or silently with ``--quiet``."""
    if args.quiet:
        disable_progress_bars()
        return run(job)
    with rich_progress(Console(stderr=True)) as progress:
        return run(job, progress)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffcleanse", description="Find trained-in backdoors in diffusion models.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    scan_cmd = commands.add_parser("scan", help="scan a diffusers model folder for a backdoor")
    scan_cmd.add_argument("--json", type=Path, help="write the machine-readable report here")
    scan_cmd.add_argument("--report-dir", type=Path, help="write trigger and sample images here")
    _add_scan_settings(scan_cmd)
    _add_model_options(scan_cmd)
    clean_cmd = commands.add_parser("clean", help="scan a model and, if it is backdoored, prune the backdoor out")
    clean_cmd.add_argument("--out", type=Path, required=True,
                           help="new folder for the cleaned model (same layout as the input, safetensors only)")
    clean_cmd.add_argument("--json", type=Path, help="write the removal report here (also written into --out)")
    clean_cmd.add_argument("--report-dir", type=Path, help="write before/after image grids here")
    _add_scan_settings(clean_cmd)
    clean_cmd.add_argument("--prune-ratio", type=_ratio, default=RemovalConfig.prune_ratio,
                           help="share of all prunable channels removed per round")
    clean_cmd.add_argument("--rounds", type=_positive_int, default=RemovalConfig.rounds,
                           help="prune-repair-rescan rounds at most (stops when the re-scan is clean)")
    clean_cmd.add_argument("--repair-steps", type=_non_negative_int, default=RemovalConfig.repair_steps,
                           help="fine-tuning steps after each pruning round")
    clean_cmd.add_argument("--repair-data", type=Path,
                           help="folder of clean images to repair with (default: the model's own samples)")
    clean_cmd.add_argument("--true-trigger", type=Path,
                           help="safetensors file with the known 'trigger' (and 'target') to measure removal with")
    clean_cmd.add_argument("--effect-steps", type=_positive_int, default=CleanJob.effect_steps,
                           help="sampler steps when measuring the backdoor effect before and after")
    clean_cmd.add_argument("--push", nargs="?", const="pr", default="none", choices=PUSH_MODES,
                           help="publish the cleaned model to its Hub repo: pr (default when given), branch, main")
    clean_cmd.add_argument("--branch", help="with --push branch: the branch to commit to (created if missing)")
    _add_model_options(clean_cmd)
    sweep_cmd = commands.add_parser("sweep", help="scan many Hub repos, skipping shas already scanned")
    sweep_cmd.add_argument("repos", nargs="*", help="ORG/NAME[@REVISION] repos (besides --list, --author, --search)")
    sweep_cmd.add_argument("--list", type=Path, dest="list_file", help="a file of repos, one ORG/NAME[@REVISION] a line")
    sweep_cmd.add_argument("--author", help="every model of this user or organisation (list_models)")
    sweep_cmd.add_argument("--search", help="every model whose id contains this text (list_models)")
    sweep_cmd.add_argument("--limit", type=_positive_int, help="at most this many repos from --author/--search")
    sweep_cmd.add_argument("--state", type=Path, default=Path("diffcleanse-sweep-state.json"),
                           help="state file: repo, sha, verdict, score, time (unchanged shas are not rescanned)")
    sweep_cmd.add_argument("--json", type=Path, default=Path("diffcleanse-sweep.json"), help="combined JSON report")
    sweep_cmd.add_argument("--markdown", type=Path, default=Path("diffcleanse-sweep.md"), help="Markdown table")
    _add_scan_settings(sweep_cmd)
    sweep_cmd.add_argument("--allow-pickle", action="store_true",
                           help="load pickle-only weights (with torch.load(weights_only=True))")
    sweep_cmd.add_argument("--quiet", action="store_true", help="no per-repo lines")
    _add_hub_options(sweep_cmd)
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
        second_look=args.second_look,
        inversion=replace(InversionConfig(), steps=args.iterations, batch_size=args.batch_size),
    )
    if args.threshold is not None:
        config = replace(config, threshold=args.threshold)
    if args.gain_threshold is not None:
        config = replace(config, gain_threshold=args.gain_threshold)
    return config


def _run_scan(args: argparse.Namespace, console: Console) -> int:
    outcome = _run_with_progress(args, run_scan_job, ScanJob(config=_scan_config(args), **_model_fields(args)))
    render_scan(outcome.report, console)
    return EXIT_BACKDOOR if outcome.result.backdoored else EXIT_CLEAN


def _run_clean(args: argparse.Namespace, console: Console) -> int:
    if args.branch and args.push == "none":
        raise UsageError("--branch names where --push commits; add --push")
    job = CleanJob(
        out=args.out,
        config=_scan_config(args),
        removal=replace(RemovalConfig(), prune_ratio=args.prune_ratio, rounds=args.rounds,
                        repair_steps=args.repair_steps, repair_data=args.repair_data),
        true_trigger=args.true_trigger,
        effect_steps=args.effect_steps,
        push="branch" if args.branch and args.push == "pr" else args.push,
        branch=args.branch,
        **_model_fields(args),
    )
    outcome = _run_with_progress(args, run_clean_job, job)
    render_clean(outcome.report, console)
    return EXIT_CLEAN if outcome.clean else EXIT_BACKDOOR


def _run_sweep(args: argparse.Namespace, console: Console) -> int:
    targets = list(args.repos)
    if args.list_file:
        targets += read_repo_list(args.list_file)
    if args.author or args.search:
        targets += search_repos(args.author, args.search, args.token, args.limit)
    if not targets:
        raise UsageError("nothing to sweep: name repos, or pass --list, --author or --search")
    config, state = _scan_config(args), SweepState(args.state)
    disable_progress_bars()

    def report_entry(entry: SweepEntry) -> None:
        if not args.quiet:
            what = entry.error if entry.verdict == "error" else f"{entry.verdict.upper()} score {entry.score:.4f}"
            what += " (unchanged sha, not rescanned)" if entry.reused else ""
            Console(stderr=True).print(f"{entry.repo}: {what}", markup=False, highlight=False)

    result = run_sweep(targets, config, state, token=args.token, allow_pickle=args.allow_pickle,
                       on_entry=report_entry)
    write_sweep(result, args.json, args.markdown)
    console.print(sweep_markdown(result), markup=False, highlight=False)
    return EXIT_BACKDOOR if result.backdoored else EXIT_CLEAN


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `diffcleanse` command; returns the exit code."""
    args = _parser().parse_args(argv)
    console = Console()
    torch.set_num_threads(min(torch.get_num_threads(), 4))
    try:
        if args.command == "sweep":
            return _run_sweep(args, console)
        if args.command == "clean":
            return _run_clean(args, console)
        return _run_scan(args, console)
    except DiffCleanseError as error:
        print(f"diffcleanse: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("diffcleanse: interrupted", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
