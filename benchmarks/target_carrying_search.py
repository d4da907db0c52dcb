"""The trial of the scan's target-carrying search: directions whose answer carries one image, orthogonal to the shift.

    python benchmarks/target_carrying_search.py MODEL_DIR [MODEL_DIR ...] [--radii 0.2 0.35 0.5] [--restarts 2] [--steps 100] [--learning-rate 0.05] [--seed 0] [--random] [--centred] [--every 10]

An ODE-sampler backdoor answers its trigger with the target it was trained to make, at every timestep
of the ODE probe, weighted by ``sqrt(ab_t)`` (``true_trigger_response.py``: cosine 0.6-0.9 to minus the
centred target from t = 300 to 950). When the trigger overlaps its target, the part of that image along
the trigger lowers the gain along it below 1 and the gain probe cannot see it; the part orthogonal to
the trigger stays. Here, per candidate direction ``r`` and timestep, the answer's part orthogonal to the
shift (per unit shift) is fitted by one shared image ``v`` weighted by ``sqrt(ab_t)``, and the search
maximises the energy that fit explains, averaged over the probe's timesteps (the scan's own energy,
``inversion._CarryingBatch``; here 100 Adam steps, 16 noises per step shared out over the timesteps,
64 held-out noises for the printed figure; with a ``backdoor.safetensors``, each candidate's cosine to
the true trigger and that of the image its answer carries to the centred target). With
``--collapse`` every candidate also goes through the scan's scale search and the best is verified on
64 fresh noises, as searched and without its per-channel mean: could the collapse score judge these
candidates? Alone, no (RESULTS.md); the scan takes the search up with an energy floor ("The
target-carrying search") and sizes its candidates without their mean ("The target-carrying candidates
without their colour cast"). With ``--every N`` it also prints, per radius, how many starts are within
cosine 0.3 of the true trigger (less its mean) every N steps: when a start finds it ("How the
target-carrying search climbs").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file

from diffcleanse_gate.counting import CountingUNet
from diffcleanse_gate.detection import collapse_scores
from diffcleanse_gate.inversion import (
    InversionConfig,
    _CarryingBatch,
    _without_channel_mean,
)
from diffcleanse_gate.loading import LoadedModel, load_local
from diffcleanse_gate.sampling import build_scheduler
from diffcleanse_gate.scan import ScanConfig
from diffcleanse_gate.threat import carrying_probe


def searched(direction: torch.Tensor, centred: bool) -> torch.Tensor:
    """The direction as the search sees it: without its per-channel mean with ``centred``."""
    return _without_channel_mean(direction) if centred else direction


def near_trigger(direction: torch.Tensor, trigger: torch.Tensor) -> torch.Tensor:
    """Which directions, less their per-channel mean, are within cosine 0.3 of the trigger less its mean."""
    centred = _without_channel_mean(trigger).flatten().unsqueeze(0)
    return torch.cosine_similarity(_without_channel_mean(direction).flatten(1), centred, 1) > 0.3


def verify_collapse(model: LoadedModel, direction: torch.Tensor) -> str:
    """The scan's scale search over the candidates (unit RMS at x_T, the scan's sizes), the best verified on fresh noises."""
    config = ScanConfig()
    unet = CountingUNet(model.unet)
    unit = direction / direction.flatten(1).pow(2).mean(1).sqrt().view(-1, 1, 1, 1)
    sizes = torch.tensor(config.trigger_scales).view(1, -1, 1, 1, 1)
    candidates = (unit.unsqueeze(1) * sizes).flatten(0, 1)
    generator = torch.Generator().manual_seed(1)
    noise = torch.randn((config.search_noises, *model.sample_shape), generator=generator)
    scores, _ = collapse_scores(unet, model.scheduler_config, None, candidates, noise, config.sampler_steps, 0,
                                config.max_batch)
    best = int(scores.argmax())
    fresh = torch.randn((config.verify_noises, *model.sample_shape), generator=generator)
    verified, _ = collapse_scores(unet, model.scheduler_config, None, candidates[best : best + 1], fresh,
                                  config.sampler_steps, 1, config.max_batch)
    return f"{float(verified[0]):.3f} (candidate {best // sizes.numel()}, size {config.trigger_scales[best % sizes.numel()]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--radii", type=float, nargs="+", default=[0.2, 0.35, 0.5])
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=0.05, help="Adam's step (the scan's: "
                        "InversionConfig.carrying_learning_rate)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random starts and noises")
    parser.add_argument("--every", type=int, default=0, help="every N steps, count the starts near the true trigger")
    parser.add_argument("--random", action="store_true", help="score the random starts, no search (a clean reference)")
    parser.add_argument("--collapse", action="store_true", help="size every candidate for collapse and verify the best")
    parser.add_argument("--centred", action="store_true", help="search without the per-channel mean (the scan keeps it)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    extra = " verified collapse, as searched; without the mean |" if args.collapse else ""
    print(f"| model | best explained energy | per candidate (radius: energy / cosine to true trigger / cosine of the"
          f" carried image to the centred target) |{extra}")
    print("|---|---|---|" + ("---|" if args.collapse else ""))
    for path in args.models:
        model = load_local(path)
        model.unet.requires_grad_(False)
        scheduler = build_scheduler(model.scheduler_config)
        config = InversionConfig(carrying_radii=tuple(args.radii), carrying_restarts=args.restarts)
        batch = _CarryingBatch(CountingUNet(model.unet), scheduler.alphas_cumprod, carrying_probe(scheduler.betas), config)
        generator = torch.Generator().manual_seed(args.seed)
        radii = batch.radii
        direction = torch.randn((len(radii), *model.sample_shape), generator=generator).requires_grad_(True)
        optimizer = torch.optim.Adam([direction], lr=args.learning_rate)
        backdoor = path / "backdoor.safetensors"
        true = load_file(backdoor) if backdoor.is_file() else None
        found_by_step = []
        for step in range(0 if args.random else args.steps):
            noise = torch.randn((16, *model.sample_shape), generator=generator)
            loss = -batch.energy(searched(direction, args.centred), noise, spread=True).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if args.every and true is not None and (step + 1) % args.every == 0:
                found_by_step.append(near_trigger(direction.detach(), true["trigger"]))
        with torch.no_grad():
            held_out = torch.randn((64, *model.sample_shape), generator=generator)
            found = searched(direction.detach(), args.centred)
            energy, image = batch.carried(found, held_out)
        cells = []
        for index in range(len(radii)):
            cell = f"{float(radii[index]):g}: {float(energy[index]):.3f}"
            if true is not None:
                trigger, target = true["trigger"].flatten(), true["target"].flatten()
                cell += f" / {float(torch.cosine_similarity(found[index].flatten(), trigger, 0)):+.2f}"
                cell += f" / {float(torch.cosine_similarity(image[index], target - target.mean(), 0)):+.2f}"
            cells.append(cell)
        verified = (f" | {verify_collapse(model, found)}; without the mean {verify_collapse(model, searched(found, True))}"
                    if args.collapse else "")
        print(f"| {path.name} | {float(energy.max()):.3f} | {', '.join(cells)}{verified} |", flush=True)
        for radius in radii.unique() if found_by_step else []:
            counts = [int(near[radii == radius].sum()) for near in found_by_step]
            print(f"  radius {float(radius):g}, starts within cosine 0.3 of the trigger every {args.every} steps:"
                  f" {counts} of {int((radii == radius).sum())}", flush=True)


if __name__ == "__main__":
    main()
