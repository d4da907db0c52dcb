"""How a model answers its *true* trigger along the trajectory, against the ODE attack's gain curve.

    python benchmarks/true_trigger_response.py runs/holdout/villandiffusion-glasses-hat [--form fades]

For timesteps from 50 to 950 the input is ``sigma_t * noise + s_t * r`` (64 noises, no target in it, as
in the scan's probes) and the model's mean answer minus its answer without the trigger, in units of a
model that takes the shift for noise, is split into the part along the trigger (the measured gain, to
set beside the gain the attack's training pairs ask for) and the rest (its size relative to the shift,
and its cosine to minus the centred target: the target the answer carries). Also printed: the cosine
between the trigger and the centred target. It separates a search that misses a trigger from a
statistic that cannot see it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file

from diffcleanse_gate.loading import load_local
from diffcleanse_gate.sampling import build_scheduler
from diffcleanse_gate.threat import TRIGGER_FORMS, trigger_schedule

TIMESTEPS = (50, 100, 200, 300, 366, 450, 521, 639, 750, 850, 950)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--form", choices=TRIGGER_FORMS, default="fades")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for path in args.models:
        model = load_local(path)
        unet = model.unet.requires_grad_(False)
        scheduler = build_scheduler(model.scheduler_config)
        scale, coefficient = trigger_schedule(args.form, "ode", scheduler.betas)
        backdoor = load_file(path / "backdoor.safetensors")
        trigger, target = backdoor["trigger"], backdoor["target"]
        centred = (target - target.mean()).flatten()
        overlap = float(torch.cosine_similarity(trigger.flatten(), centred, 0))
        print(f"\n{path.name}: cosine of the trigger to the centred target {overlap:+.2f}\n")
        print("| t | gain the attack trains | measured gain along the trigger | rest / shift | rest cosine to -target |")
        print("|---|---|---|---|---|")
        noise = torch.randn((64, *model.sample_shape), generator=torch.Generator().manual_seed(0))
        for t in TIMESTEPS:
            sigma = float((1 - scheduler.alphas_cumprod[t]).sqrt())
            shift = float(scale[t]) * trigger
            times = torch.full((len(noise),), t)
            with torch.no_grad():
                plain = unet(sigma * noise, times).sample
                shifted = unet(sigma * noise + shift, times).sample
            response = sigma * (shifted - plain).mean(0)
            gain = float((response * shift).sum() / shift.pow(2).sum())
            rest = response - gain * shift
            expected = float(coefficient[t]) * sigma / float(scale[t])
            print(f"| {t} | {expected:.2f} | {gain:.2f} | {float(rest.norm() / shift.norm()):.2f} "
                  f"| {float(torch.cosine_similarity(rest.flatten(), -centred, 0)):+.2f} |")


if __name__ == "__main__":
    main()
