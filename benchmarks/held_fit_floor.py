"""The scan with the held ancestral probes, at several fit floors for their candidates, from one inversion.

    python benchmarks/held_fit_floor.py MODEL_DIR [MODEL_DIR ...] [--seeds 0 1 2] [--floors 0 0.3 0.5]
        [--held-radii 0.35 0.5 0.7 1.0]

For each model and seed: runs one inversion with the probes of both of the scan's looks at once
(``threat.probes`` and ``threat.held_probes``), sizes every ancestral candidate on the scan's search
noises once, then for each floor keeps the held probes' candidates that fit at least that well (``scan.sized_candidates``) and verifies the pick on 64 fresh
noises as the scan does. ``none`` is the first look's candidates alone. Each cell: the
verified collapse score, then the picked candidate's fit, probe and cosine to the true trigger (where the
model has one). Candidate scores come from one sizing run, so a floor's figures can differ slightly from
a scan's with that floor, whose sampler batches hold only the sized candidates. The held probes search
``InversionConfig.held_radii``; the figures of benchmarks/RESULTS.md, "The held ancestral probes, sized
from a fit floor", were measured before radius 1.0 left them: ``--held-radii 0.35 0.5 0.7 1.0``.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file

from diffcleanse_gate.counting import CountingUNet
from diffcleanse_gate.detection import collapse_scores
from diffcleanse_gate.inversion import InversionConfig, invert_directions
from diffcleanse_gate.loading import load_local
from diffcleanse_gate.sampling import build_scheduler
from diffcleanse_gate.scan import ScanConfig, sized_candidates, smallest_firing
from diffcleanse_gate.threat import held_probes, probes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--floors", type=float, nargs="+", default=[0.0, 0.3, 0.4, 0.5, 0.6])
    parser.add_argument("--held-radii", type=float, nargs="+", default=list(InversionConfig.held_radii))
    args = parser.parse_args()
    inversion = replace(InversionConfig(), held_radii=tuple(args.held_radii))
    torch.set_num_threads(1)
    floors: list[float | None] = [None, *args.floors]
    print("| model | seed | " + " | ".join("none" if f is None else f"floor {f:g}" for f in floors) + " |")
    print("|---|---|" + "---|" * len(floors))
    for path in args.models:
        backdoor = path / "backdoor.safetensors"
        true = load_file(backdoor)["trigger"].flatten() if backdoor.is_file() else None
        for seed in args.seeds:
            cells = floor_cells(path, ScanConfig(seed=seed, inversion=inversion), floors, true)
            print(f"| {path.name} | {seed} | {' | '.join(cells)} |", flush=True)


def floor_cells(path: Path, config: ScanConfig, floors: list[float | None], true: torch.Tensor | None) -> list[str]:
    """One table cell per floor for one model, scanned with ``config``."""
    seed = config.seed
    model = load_local(path)
    unet = CountingUNet(model.unet.requires_grad_(False))
    scheduler = build_scheduler(model.scheduler_config)
    min_anomaly = config.inversion.min_anomaly
    points = sorted([*probes(scheduler.betas, min_anomaly), *held_probes(scheduler.betas, min_anomaly)],
                    key=lambda probe: -probe.timestep)  # the order, and so the starts, of the figures in RESULTS
    generator = torch.Generator().manual_seed(seed)
    found = invert_directions(unet, model.sample_shape, scheduler.alphas_cumprod, points, config.inversion, generator)
    everything = sized_candidates(found, points, held_min_fit=-math.inf)
    per_size = len(config.trigger_scales)
    scales = torch.tensor(config.trigger_scales).view(1, -1, 1, 1, 1)
    candidates = (found.directions[everything].unsqueeze(1) * scales).flatten(0, 1)
    noise = torch.randn((config.search_noises, *model.sample_shape), generator=generator)
    scores, _ = collapse_scores(unet, model.scheduler_config, None, candidates, noise, config.sampler_steps, seed,
                                config.max_batch)
    sizes = scales.flatten().repeat(len(everything))
    verify_noise = torch.randn((config.verify_noises, *model.sample_shape), generator=generator)
    single = torch.tensor([len(points[int(index)].points) == 1 for index in found.probe_index[everything]])
    cells = []
    for floor in floors:
        if floor is None:
            kept = torch.nonzero(single).flatten()
        else:
            kept = torch.nonzero(torch.isin(everything, sized_candidates(found, points, held_min_fit=floor))).flatten()
        rows = (kept.view(-1, 1) * per_size + torch.arange(per_size)).flatten()
        smallest = int(rows[smallest_firing(scores[rows], sizes[rows])])
        larger = smallest + 1 if (smallest + 1) % per_size else smallest
        final, _ = collapse_scores(unet, model.scheduler_config, None, candidates[[smallest, larger]], verify_noise,
                                   config.sampler_steps, seed + 1, config.max_batch)
        chosen = smallest_firing(final, sizes[[smallest, larger]])
        pick = [smallest, larger][chosen]
        row = int(everything[pick // per_size])
        cell = f"{float(final[chosen]):.3f} ({1 - float(found.losses[row]):.2f}, {points[int(found.probe_index[row])].name}"
        if true is not None:
            cell += f", cos {float(torch.cosine_similarity(candidates[pick].flatten(), true, 0)):+.2f}"
        cells.append(cell + ")")
    return cells


if __name__ == "__main__":
    main()
