"""Every candidate of the trigger inversion, radius by radius: its fit, its cosine to the true trigger, its collapse.

    python benchmarks/candidates_by_radius.py MODEL_DIR [MODEL_DIR ...] [--radii 0.5 0.75 1.0 1.5]
        [--amplifying-radii 0.2 0.35] [--steps 130] [--uncentred]

Runs the scan's inversion with the given radii (``--radii`` for the ancestral probe, ``--amplifying-radii``
for the ODE probe) and steps (defaults: the scan's), then scores every ancestral-probe candidate at the
scan's sizes through the model's sampler, on the scan's search noises, as the scan's scale search does
(``scan.sized_candidates``). Prints one line per probe and radius: per restart, ``1 - held-out mismatch``
(for the ODE probe: the gain anomaly), the cosine to the true trigger where the model has one, and for
the ancestral probe the best collapse score over the sizes. It shows which radii find a trigger, and
whether the best fit is the candidate that collapses the sampler.

``--uncentred`` searches and reports every candidate with its per-channel mean, as the scan did before
2026-11-29 (global colour shifts, which a colour model shrinks like a trigger, crowd the trigger out).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file

from diffcleanse_gate.counting import CountingUNet
from diffcleanse_gate.detection import collapse_scores
from diffcleanse_gate.inversion import InversionConfig, invert_directions
from diffcleanse_gate.loading import load_local
from diffcleanse_gate.sampling import build_scheduler
from diffcleanse_gate.scan import ScanConfig
from diffcleanse_gate.threat import held_probes, probes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--radii", type=float, nargs="+", default=list(InversionConfig.radii))
    parser.add_argument("--amplifying-radii", type=float, nargs="+", default=list(InversionConfig.amplifying_radii))
    parser.add_argument("--steps", type=int, default=InversionConfig.steps)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--uncentred", action="store_true", help="search directions with their per-channel mean")
    parser.add_argument("--held-ancestral", action="store_true",
                        help="add the second look's ancestral probes, held at three timesteps (threat.held_probes)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    inversion = InversionConfig(radii=tuple(args.radii), held_radii=tuple(args.radii),  # held ones too, as measured
                                amplifying_radii=tuple(args.amplifying_radii),
                                steps=args.steps, centred=not args.uncentred)
    config = ScanConfig(seed=args.seed, inversion=inversion)
    print("| model | probe | radius | per restart: 1 - mismatch / cosine to true trigger / best collapse |")
    print("|---|---|---|---|")
    for path in args.models:
        model = load_local(path)
        unet = CountingUNet(model.unet.requires_grad_(False))
        scheduler = build_scheduler(model.scheduler_config)
        points = probes(scheduler.betas, inversion.min_anomaly)
        if args.held_ancestral:  # in the order, and so with the starts, of the figures in RESULTS
            points = sorted(points + held_probes(scheduler.betas, inversion.min_anomaly), key=lambda probe: -probe.timestep)
        generator = torch.Generator().manual_seed(args.seed)
        found = invert_directions(unet, model.sample_shape, scheduler.alphas_cumprod, points, inversion, generator)
        backdoor = path / "backdoor.safetensors"
        true = load_file(backdoor)["trigger"].flatten() if backdoor.is_file() else None
        noise = torch.randn((config.search_noises, *model.sample_shape), generator=generator)
        scales = torch.tensor(config.trigger_scales).view(-1, 1, 1, 1)
        for index, probe in enumerate(points):
            for radius in inversion.radii_for(probe):
                rows = torch.nonzero((found.probe_index == index) & (found.radii == radius)).flatten().tolist()
                cells = []
                for row in rows:
                    cell = f"{1 - float(found.losses[row]):+.2f}"
                    if true is not None:
                        cell += f" / {float(torch.cosine_similarity(found.directions[row].flatten(), true, 0)):+.2f}"
                    if not probe.amplifying:
                        scores, _ = collapse_scores(unet, model.scheduler_config, None, found.directions[row] * scales,
                                                    noise, config.sampler_steps, args.seed, config.max_batch)
                        cell += f" / {float(scores.max()):.2f}"
                    cells.append(cell)
                print(f"| {path.name} | {probe.name} | {radius:g} | {', '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
