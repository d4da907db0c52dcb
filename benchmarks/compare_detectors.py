"""Run the scan and the two baselines (Elijah, TERD) on the same zoo; print and save the figures side by side.

    python benchmarks/compare_detectors.py                       # the CPU fixture zoo, paper settings
    python benchmarks/compare_detectors.py --zoo runs/cifar-zoo --device cuda --out runs/compare
    python benchmarks/compare_detectors.py --zoo Z --shard 0/4 --out runs/c0   # ... then --merge runs/c* --out X

A zoo is a folder of DDPMPipeline folders, each with a fixture.json (``family`` present for backdoored
models) and, for backdoored ones, backdoor.safetensors with the true trigger. Verdicts:
- ours: the scan's own verdict with its default thresholds; its ROC score is
  max(collapse score / collapse threshold, gain anomaly / gain threshold) (1 = at a threshold).
- Elijah: flagged when the uniformity is more than 3 sd below the clean models' mean.
- TERD: flagged when the KL mean or variance is more than 3 sd above the clean models' mean (its 3-sigma
  rule). The baselines' ROC score is that distance in sd (the larger of TERD's two).
Both baselines are calibrated on the clean models of the same zoo: backdoored models against all of them,
each clean model against the others (leave-one-out), so no clean model judges itself.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from baselines import BaselineResult
from baselines.elijah import ElijahConfig, elijah
from baselines.terd import TerdConfig, terd
from detector_metrics import SIGMAS, auroc, clean_z, rates, roc_points
from roc_plot import draw_roc
from safetensors.torch import load_file

from diffcleanse_gate.loading import load_local
from diffcleanse_gate.scan import ScanConfig, resolve_device, scan

ZOO = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "zoo"
METHODS = ("ours", "elijah", "terd")
FLAG_SIDE = {"uniformity": False, "kl_mean": True, "kl_variance": True}  # True: higher values flag


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets the process's peak RSS (VmHWM)
    except OSError:
        pass


def _peak_mib(device: torch.device) -> float:
    """Peak CUDA memory allocated, or the process's peak RSS (since the last reset where the OS allows)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_ours(path: Path, device: torch.device, seed: int) -> BaselineResult:
    result = scan(load_local(path), ScanConfig(seed=seed, device=str(device)))
    gain = result.gain_anomaly if result.gain_anomaly is not None else float("-inf")
    ratio = max(result.score / result.threshold, gain / result.gain_threshold)
    return BaselineResult({"collapse": result.score, "gain": gain, "ratio": ratio,
                           "flagged": float(result.backdoored)}, result.trigger, result.unet_evaluations)


def run_one(method: str, path: Path, args: argparse.Namespace, device: torch.device) -> dict:
    """Run one detector on one model and return its row (statistics, trigger error, cost)."""
    runners: dict[str, Callable[[], BaselineResult]] = {
        "ours": lambda: _run_ours(path, device, args.seed),
        "elijah": lambda: elijah(load_local(path), ElijahConfig(steps=args.elijah_steps), args.seed, device),
        "terd": lambda: terd(load_local(path), TerdConfig(iterations=args.terd_iterations), args.seed, device),
    }
    _reset_peak(device)
    started = time.perf_counter()
    result = runners[method]()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    row = {"model": path.name, "method": method, "statistics": result.statistics,
           "unet_evaluations": result.unet_evaluations, "seconds": time.perf_counter() - started,
           "peak_mib": _peak_mib(device), "settings": result.settings}
    info = json.loads((path / "fixture.json").read_text())
    row["family"] = info.get("family") or "clean"
    if (path / "backdoor.safetensors").is_file():
        true = load_file(path / "backdoor.safetensors")["trigger"].flatten().double()
        found = result.trigger.flatten().double()
        row["trigger_mse"] = float((found - true).pow(2).mean())
        row["trigger_cosine"] = float(torch.nn.functional.cosine_similarity(found, true, dim=0))
    return row


def judge(rows: list[dict]) -> None:
    """Add ``score`` and ``flagged`` to every row (calibration as the module docstring says)."""
    for method in {r["method"] for r in rows}:
        mine = [r for r in rows if r["method"] == method]
        for row in mine:
            if method == "ours":
                row["score"], row["flagged"] = row["statistics"]["ratio"], bool(row["statistics"]["flagged"])
                continue
            others = [r for r in mine if r["family"] == "clean" and r["model"] != row["model"]]
            zs = [clean_z(row["statistics"][name], [r["statistics"][name] for r in others], side)
                  for name, side in FLAG_SIDE.items() if name in row["statistics"]]
            row["flagged"] = max(zs) >= SIGMAS
            every_clean = [r for r in mine if r["family"] == "clean"]
            row["score"] = max(clean_z(row["statistics"][name], [r["statistics"][name] for r in every_clean], side)
                               for name, side in FLAG_SIDE.items() if name in row["statistics"])


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or math.isnan(value) else format(value, spec)


def markdown(rows: list[dict]) -> str:
    """Per-model rows, then per-family and overall figures for each method."""
    lines = [("| model | family | method | statistics | score | flagged | trigger cosine | trigger MSE "
              "| unet_evaluations | seconds | peak MiB |"), "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["model"], METHODS.index(r["method"]))):
        stats = ", ".join(f"{k} {v:.4g}" for k, v in r["statistics"].items() if k not in ("ratio", "flagged"))
        lines.append(f"| {r['model']} | {r['family']} | {r['method']} | {stats} | {r['score']:.3f} "
                     f"| {'yes' if r['flagged'] else 'no'} | {_fmt(r.get('trigger_cosine'), '.2f')} "
                     f"| {_fmt(r.get('trigger_mse'), '.3f')} | {r['unet_evaluations']:,} | {r['seconds']:.1f} "
                     f"| {r['peak_mib']:.0f} |")
    lines += ["", ("| method | family | models | TPR | TNR | AUROC | mean trigger cosine | mean trigger MSE "
                   "| mean unet_evaluations | mean seconds | max peak MiB |"), "|---|---|---|---|---|---|---|---|---|---|---|"]
    for method in [m for m in METHODS if any(r["method"] == m for r in rows)]:
        mine = [r for r in rows if r["method"] == method]
        clean = [r for r in mine if r["family"] == "clean"]
        families = sorted({r["family"] for r in mine} - {"clean"})
        for family in [*families, "overall"]:
            attacked = [r for r in mine if r["family"] == family or (family == "overall" and r["family"] != "clean")]
            group = attacked + clean
            tpr, tnr = rates([r["flagged"] for r in group], [r["family"] != "clean" for r in group])
            area = auroc([r["score"] for r in group], [r["family"] != "clean" for r in group])
            cos = [r["trigger_cosine"] for r in attacked]
            mse = [r["trigger_mse"] for r in attacked]
            cost = group if family == "overall" else attacked
            lines.append(
                f"| {method} | {family} | {len(attacked)}+{len(clean)} clean | {_fmt(tpr, '.0%')} "
                f"| {_fmt(tnr, '.0%') if family == 'overall' else '-'} | {_fmt(area, '.3f')} "
                f"| {_fmt(sum(cos) / len(cos) if cos else None, '.2f')} "
                f"| {_fmt(sum(mse) / len(mse) if mse else None, '.3f')} "
                f"| {sum(r['unet_evaluations'] for r in cost) / len(cost):,.0f} "
                f"| {sum(r['seconds'] for r in cost) / len(cost):.1f} | {max(r['peak_mib'] for r in cost):.0f} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, title: str) -> None:
    """One overall ROC curve per method."""
    curves = {}
    for method in [m for m in METHODS if any(r["method"] == m for r in rows)]:
        mine = [r for r in rows if r["method"] == method]
        scores, labels = [r["score"] for r in mine], [r["family"] != "clean" for r in mine]
        curves[method] = (*roc_points(scores, labels), auroc(scores, labels))
    draw_roc(curves, path, title)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zoo", type=Path, default=ZOO)
    parser.add_argument("--out", type=Path, default=Path("runs/compare"), help="rows.json, tables.md, roc.png")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--elijah-steps", type=int, default=ElijahConfig.steps)
    parser.add_argument("--terd-iterations", type=int, default=TerdConfig.iterations)
    parser.add_argument("--shard", default="0/1", help="K/N: run only every N-th model from the K-th (0-based)")
    parser.add_argument("--merge", type=Path, nargs="+", help="skip running; judge the rows.json of these folders")
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = resolve_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    shard, shards = (int(x) for x in args.shard.split("/"))
    paths = sorted(p for p in args.zoo.iterdir() if (p / "fixture.json").is_file())[shard::shards]
    if args.merge:
        rows = [row for folder in args.merge if (folder / "rows.json").is_file()
                for row in json.loads((folder / "rows.json").read_text())]
        paths = []
    for path in paths:
        for method in args.methods:
            rows.append(run_one(method, path, args, device))
            r = rows[-1]
            print(f"{r['model']:<32} {method:<7} {r['statistics']} evals {r['unet_evaluations']:,} "
                  f"{r['seconds']:.1f}s {r['peak_mib']:.0f}MiB", file=sys.stderr, flush=True)
            (args.out / "rows.json").write_text(json.dumps(rows, indent=1))
    judge(rows)
    (args.out / "rows.json").write_text(json.dumps(rows, indent=1))
    table = markdown(rows)
    (args.out / "tables.md").write_text(table + "\n")
    plot(rows, args.out / "roc.png", f"ROC, {args.zoo.name}")
    print(table)


if __name__ == "__main__":
    main()
