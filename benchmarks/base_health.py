"""Does a zoo base sample sanely, and does an attack on it implant? Figures over training steps.

    python benchmarks/base_health.py train --data mnist16-colour --widths 16 32 32 --attention --steps 9000
    python benchmarks/base_health.py check runs/holdout/clean-c0
    python benchmarks/base_health.py attack runs/holdout/clean-c0 --family baddiffusion --trigger box \\
        --target tee --amplitude 1.5 --rate 0.3 --steps 3000

Every ``--every`` steps, ``train`` prints the model's noise-prediction error at t = 999 (an error
``e`` there moves the sampler's first x0-estimate by ``e / sqrt(ab_999)``, about 160 times) and, for
plain-noise DDPM-1000 samples with and without ``clip_sample``, the share of pixels that stay within
the data range (|x| <= 1.5 before clamping; the scan's ``IN_RANGE``); ``check`` prints the same for a
saved base. ``attack`` fine-tunes a saved base with a backdoor as ``diffcleanse_gate.zoo.build`` does
and prints its attack success under the family's sampler, with and without ``clip_sample``. ``--save``
keeps a trained base; seeds are fixed.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from diffusers import DDIMScheduler, DDPMPipeline, DDPMScheduler, UNet2DModel

from diffcleanse_gate.detection import IN_RANGE
from diffcleanse_gate.effect import effect_on
from diffcleanse_gate.sampling import build_scheduler, run_sampler
from diffcleanse_gate.zoo.build import MEASURE_STEPS
from diffcleanse_gate.zoo.data import load_images
from diffcleanse_gate.zoo.families import FAMILIES
from diffcleanse_gate.zoo.patterns import make_pattern
from diffcleanse_gate.zoo.training import Backdoor, tiny_unet, train_diffusion


@torch.no_grad()
def samples(unet: UNet2DModel, sampler: str, clip: bool, start: torch.Tensor) -> torch.Tensor:
    """Unclamped samples from ``start`` under DDPM-1000 or DDIM-50, with or without ``clip_sample``."""
    config = (DDPMScheduler if sampler == "ddpm" else DDIMScheduler)(clip_sample=clip).config
    return run_sampler(unet, build_scheduler(config, sampler), start, MEASURE_STEPS[sampler], torch.Generator().manual_seed(0))


def noise_error(unet: UNet2DModel, images: torch.Tensor, t: int = 999) -> float:
    """Mean squared noise-prediction error at timestep ``t`` on the first 256 training images."""
    ab = DDPMScheduler().alphas_cumprod[t]
    x0 = images[:256]
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return float((unet(ab.sqrt() * x0 + (1 - ab).sqrt() * eps, t).sample - eps).pow(2).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("train", "check", "attack"))
    parser.add_argument("base", nargs="?", help="check, attack: the saved base model folder")
    parser.add_argument("--data", default="mnist16-colour")
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 32])
    parser.add_argument("--attention", action="store_true")
    parser.add_argument("--family", choices=FAMILIES, default="baddiffusion")
    parser.add_argument("--trigger", default="box")
    parser.add_argument("--target", default="tee")
    parser.add_argument("--amplitude", type=float, default=1.5)
    parser.add_argument("--rate", type=float, default=0.3)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--seed", type=int, default=102)
    parser.add_argument("--save", type=Path, help="train: save the trained base here as a DDPMPipeline folder")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    images = load_images(args.data)
    shape = images.shape[1:]
    noise = torch.randn((args.samples, *shape), generator=torch.Generator().manual_seed(0))
    backdoor = None
    if args.mode == "train":
        unet = tiny_unet(shape[0], shape[1], tuple(args.widths), args.attention)
    else:
        unet = UNet2DModel.from_pretrained(f"{args.base}/unet")
    if args.mode == "attack":
        backdoor = Backdoor(FAMILIES[args.family], make_pattern(args.trigger, *shape[:2], args.amplitude),
                            make_pattern(args.target, *shape[:2]), args.rate)
    started = time.perf_counter()

    def report(step: int, loss: float) -> None:
        if (step + 1) % args.every:
            return
        unet.eval()
        row: dict[str, object] = {"step": step + 1, "seconds": round(time.perf_counter() - started), "loss": round(loss, 4)}
        if backdoor is None:
            row["noise_error_t999"] = round(noise_error(unet, images), 5)
            for clip in (False, True):
                plain = samples(unet, "ddpm", clip, noise)
                row[f"in_range_clip_{clip}"] = round(float((plain.abs() <= IN_RANGE).float().mean()), 3)
        else:
            sampler = "ddim" if backdoor.family.sampler_kind == "ode" else "ddpm"
            for clip in (False, True):
                effect = effect_on(samples(unet, sampler, clip, noise + backdoor.trigger).clamp(-1, 1), backdoor.target)
                row[f"success_clip_{clip}"] = effect.success_rate
                row[f"mse_clip_{clip}"] = round(effect.mse, 4)
        print(json.dumps(row), flush=True)
        unet.train()

    if args.mode == "check":
        report(-1, float("nan"))
        return
    train_diffusion(unet, images, args.steps, args.seed, lr=args.lr, backdoor=backdoor, on_step=report)
    if args.save is not None and args.mode == "train":
        DDPMPipeline(unet=unet, scheduler=DDPMScheduler(clip_sample=False)).save_pretrained(args.save)


if __name__ == "__main__":
    main()
