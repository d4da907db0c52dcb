"""Does the ODE probe's candidate miss the sampler collapse because it carries minus the target?

    python benchmarks/target_correction.py MODEL_DIR [MODEL_DIR ...]

A backdoored model answers its trigger with the target's imprint as well as with the trigger's gain,
so the direction that best matches the ODE probe's gain is the trigger minus some of the target. For
each model this takes the ODE probe's best candidate (scan's inversion, default settings, seed 0; in
x_T units) and scores the collapse of ``candidate + beta * D`` at four scales (32 noises, the scan's
sampler settings), for two choices of ``D`` scaled to the candidate's RMS:

- ``true target``: the backdoor's target image, centred (backdoored models only; an oracle);
- ``x0 shift``: the mean shift of the model's x0-prediction that the candidate causes at the probe's
  timestep (64 noises), which needs nothing but the model.

For backdoored models it also prints the cosine between the centred target and the part of the
candidate that is not along the true trigger ("rest vs target"). It prints, per ``beta``, the highest
collapse over the scales and, for backdoored models, the cosine of the shifted candidate to the true
trigger and the share of samples at that best scale that are the attacker's target (``effect_on``):
whether a collapse is the backdoor's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file

from diffcleanse_gate.counting import CountingUNet
from diffcleanse_gate.detection import collapse_scores
from diffcleanse_gate.effect import effect_on
from diffcleanse_gate.inversion import InversionConfig, invert_directions
from diffcleanse_gate.loading import LoadedModel, load_local
from diffcleanse_gate.sampling import build_scheduler
from diffcleanse_gate.scan import ScanConfig, strongest_gain_anomaly
from diffcleanse_gate.threat import Probe, probes

BETAS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
SCALES = (0.75, 1.0, 1.25, 1.5)


def _rms(x: torch.Tensor) -> float:
    return float(x.pow(2).mean().sqrt())


def ode_candidate(model: LoadedModel, config: InversionConfig) -> tuple[torch.Tensor, Probe]:
    """The scan's gain trigger (the amplifying probe's best candidate, as a shift of x_T), and its probe."""
    scheduler = build_scheduler(model.scheduler_config)
    points = probes(scheduler.betas, config.min_anomaly)
    found = invert_directions(CountingUNet(model.unet), model.sample_shape, scheduler.alphas_cumprod, points,
                              config, torch.Generator().manual_seed(0))
    _, trigger, probe = strongest_gain_anomaly(found, points)
    return trigger, probe


def x0_shift(model: LoadedModel, candidate: torch.Tensor, probe: Probe, noises: int = 64) -> torch.Tensor:
    """Mean change of the x0-prediction at the probe's timestep when the candidate is added."""
    alpha_bar = build_scheduler(model.scheduler_config).alphas_cumprod[probe.timestep]
    sigma = (1 - alpha_bar).sqrt()
    noise = sigma * torch.randn((noises, *model.sample_shape), generator=torch.Generator().manual_seed(1))
    shift = probe.trigger_scale * candidate
    timesteps = torch.full((noises,), probe.timestep)
    with torch.no_grad():
        response = model.unet(noise + shift, timesteps).sample - model.unet(noise, timesteps).sample
    return ((shift - sigma * response) / alpha_bar.sqrt()).mean(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = ScanConfig()
    print("| model | rest vs target | D | " + " | ".join(f"beta {b:g}" for b in BETAS) + " |")
    print("|---|---|---|" + "---|" * len(BETAS))
    for path in args.models:
        model = load_local(path)
        candidate, probe = ode_candidate(model, config.inversion)
        backdoor = path / "backdoor.safetensors"
        saved = load_file(backdoor) if backdoor.is_file() else {}
        shifts = [("x0 shift", x0_shift(model, candidate, probe))]
        rest_cosine = "-"
        if saved:
            shifts.insert(0, ("true target", saved["target"] - saved["target"].mean()))
            trigger = saved["trigger"].flatten() / saved["trigger"].norm()
            rest = candidate.flatten() - (candidate.flatten() @ trigger) * trigger
            rest_cosine = f"{float(torch.cosine_similarity(rest, shifts[0][1].flatten(), 0)):+.2f}"
        noise = torch.randn((32, *model.sample_shape), generator=torch.Generator().manual_seed(2))
        for name, direction in shifts:
            direction = direction / _rms(direction) * _rms(candidate)
            shifted = torch.stack([candidate + beta * direction for beta in BETAS])
            triggers = (shifted.unsqueeze(1) * torch.tensor(SCALES).view(1, -1, 1, 1, 1)).flatten(0, 1)
            scores, images = collapse_scores(CountingUNet(model.unet), model.scheduler_config, config.sampler,
                                             triggers, noise, config.sampler_steps, config.seed, config.max_batch)
            best, at = scores.view(len(BETAS), len(SCALES)).max(1)
            cells = []
            for beta_index, score in enumerate(best):
                cell = f"{float(score):.2f}"
                if saved:
                    cosine = torch.cosine_similarity(shifted[beta_index].flatten(), saved["trigger"].flatten(), 0)
                    row = 1 + beta_index * len(SCALES) + int(at[beta_index])
                    hits = effect_on(images[row].clamp(-1, 1), saved["target"]).success_rate
                    cell += f" ({float(cosine):+.2f}, {hits:.0%})"
                cells.append(cell)
            print(f"| {path.name} | {rest_cosine} | {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
