"""Can a backdoor's target be found as a fixed point: shift the noise by an image, take what comes back?

    python benchmarks/fixed_point_target.py MODEL_DIR [MODEL_DIR ...] [--rounds 5]

Starts from the x0-prediction shift of the ODE probe's best candidate (``target_correction.py``) and
repeats: sample from the noise shifted by the current image (centred, unit per-pixel RMS, at scales
0.5, 1 and 1.5; the scan's sampler settings, 32 noises), keep the scale whose samples agree most
with their per-pixel median (share within the attack-success distance of it), and make that median
the next image. Prints, per round, that share and, for backdoored models, the cosine of the median
to the true target and the share of samples that are the target.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file
from target_correction import ode_candidate, x0_shift

from diffcleanse_gate.counting import CountingUNet
from diffcleanse_gate.detection import sample_from
from diffcleanse_gate.effect import SUCCESS_MSE, effect_on
from diffcleanse_gate.loading import load_local
from diffcleanse_gate.scan import ScanConfig

SCALES = (0.5, 1.0, 1.5)


def _unit(image: torch.Tensor) -> torch.Tensor:
    centred = image - image.mean()
    return centred / centred.pow(2).mean().sqrt()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = ScanConfig()
    print("| model | " + " | ".join(f"round {r + 1}" for r in range(args.rounds)) + " |")
    print("|---|" + "---|" * args.rounds)
    for path in args.models:
        model = load_local(path)
        backdoor = path / "backdoor.safetensors"
        target = load_file(backdoor)["target"] if backdoor.is_file() else None
        candidate, probe = ode_candidate(model, config.inversion)
        image = x0_shift(model, candidate, probe)
        noise = torch.randn((32, *model.sample_shape), generator=torch.Generator().manual_seed(2))
        cells = []
        for _ in range(args.rounds):
            shifts = torch.stack([_unit(image) * scale for scale in SCALES])
            samples = sample_from(CountingUNet(model.unet), model.scheduler_config, config.sampler, shifts, noise,
                                  config.sampler_steps, config.seed, config.max_batch).clamp(-1, 1)
            median = samples.median(1).values
            distance = ((samples - median.unsqueeze(1)) / 2).pow(2).flatten(2).mean(2)
            share = (distance < SUCCESS_MSE).float().mean(1)
            best = int(share.argmax())
            cell = f"{float(share[best]):.2f}"
            if target is not None:
                cosine = torch.cosine_similarity(_unit(median[best]).flatten(), _unit(target).flatten(), 0)
                cell += f" ({float(cosine):+.2f}, {effect_on(samples[best], target).success_rate:.0%})"
            cells.append(cell)
            image = median[best]
        print(f"| {path.name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
