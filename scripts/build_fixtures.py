"""Regenerate the fixture zoo in tests/fixtures/zoo: tiny clean and backdoored DDPM pipelines.

Trained on sklearn's digits (8x8, shipped inside scikit-learn). Every backdoored model is measured
before it is saved and the script fails if its attack does not work. Run the bases first, then the
rest (two at a time on two cores)::

    python scripts/build_fixtures.py clean-a clean-b
    python scripts/build_fixtures.py --all-derived
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import DDIMScheduler, DDPMPipeline, DDPMScheduler, UNet2DModel
from safetensors.torch import save_file

from diffcleanse_gate.zoo.data import load_digits_images
from diffcleanse_gate.zoo.families import FAMILIES
from diffcleanse_gate.effect import attack_effect
from diffcleanse_gate.zoo.patterns import make_pattern
from diffcleanse_gate.zoo.training import Backdoor, tiny_unet, train_diffusion

ZOO = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "zoo"
MIN_SUCCESS = 0.6


@dataclass(frozen=True)
class Spec:
    """One fixture: where it starts from, how it is trained, which sampler it ships with."""

    name: str
    seed: int
    steps: int
    sampler: str
    base: str | None = None
    widths: tuple[int, ...] = (16, 32)
    lr: float = 1e-3
    family: str | None = None
    trigger: str = ""
    amplitude: float = 0.0
    target: str = ""
    poison_rate: float = 0.0


SPECS = [
    Spec("clean-a", seed=0, steps=4000, sampler="ddpm"),
    Spec("clean-b", seed=1, steps=4000, sampler="ddim", widths=(32, 32)),
    Spec("clean-a-ft", seed=2, steps=1500, sampler="ddim", base="clean-a", lr=3e-4),
    Spec("clean-b-ft", seed=3, steps=1500, sampler="ddpm", base="clean-b", lr=3e-4),
    Spec("baddiffusion-box-corner", 10, 3000, "ddpm", "clean-a", family="baddiffusion",
         trigger="box", amplitude=2.5, target="corner", poison_rate=0.2),
    Spec("baddiffusion-stop-hat", 11, 4000, "ddpm", "clean-b", family="baddiffusion",
         trigger="stop", amplitude=2.5, target="hat", poison_rate=0.3),
    Spec("trojdiff-checker-cross", 12, 3000, "ddpm", "clean-a", family="trojdiff",
         trigger="checker", amplitude=0.6, target="cross", poison_rate=0.25),
    Spec("trojdiff-bar-frame", 13, 3000, "ddpm", "clean-b", family="trojdiff",
         trigger="bar", amplitude=2.0, target="frame", poison_rate=0.2),
    Spec("villandiffusion-box-hat", 14, 3000, "ddim", "clean-a", family="villandiffusion",
         trigger="box", amplitude=2.0, target="hat", poison_rate=0.25),
    Spec("villandiffusion-stop-corner", 15, 3000, "ddim", "clean-b", family="villandiffusion",
         trigger="stop", amplitude=2.5, target="corner", poison_rate=0.3),
]
MEASURE_STEPS = {"ddpm": 1000, "ddim": 50}


def build(spec: Spec) -> None:
    """Train, measure and save one fixture."""
    torch.manual_seed(spec.seed)
    images = load_digits_images()
    channels, size = images.shape[1], images.shape[2]
    if spec.base is None:
        unet = tiny_unet(channels, size, spec.widths)
    else:
        unet = UNet2DModel.from_pretrained(ZOO / spec.base / "unet")
    backdoor = None
    if spec.family is not None:
        backdoor = Backdoor(
            FAMILIES[spec.family],
            make_pattern(spec.trigger, channels, size, spec.amplitude),
            make_pattern(spec.target, channels, size),
            spec.poison_rate,
        )
    started = time.time()
    train_diffusion(unet, images, spec.steps, spec.seed, lr=spec.lr, backdoor=backdoor)
    scheduler_class = DDPMScheduler if spec.sampler == "ddpm" else DDIMScheduler
    scheduler = scheduler_class(clip_sample=False)
    record = {"name": spec.name, "base": spec.base, "seed": spec.seed, "train_steps": spec.steps,
              "train_seconds": round(time.time() - started, 1), "sampler": spec.sampler}
    out = ZOO / spec.name
    if backdoor is not None:
        effect = attack_effect(unet, scheduler.config, backdoor.trigger, backdoor.target,
                               num_inference_steps=MEASURE_STEPS[spec.sampler], sampler=spec.sampler)
        record.update(family=spec.family, trigger=spec.trigger, amplitude=spec.amplitude,
                      target=spec.target, poison_rate=spec.poison_rate,
                      attack_mse=round(effect.mse, 5), attack_success=effect.success_rate,
                      measured_with=f"{spec.sampler}-{MEASURE_STEPS[spec.sampler]}")
        print(json.dumps(record), flush=True)
        if effect.success_rate < MIN_SUCCESS:
            sys.exit(f"{spec.name}: attack success {effect.success_rate:.2f} < {MIN_SUCCESS}; not saved")
        out.mkdir(parents=True, exist_ok=True)
        save_file({"trigger": backdoor.trigger.contiguous(), "target": backdoor.target.contiguous()},
                  out / "backdoor.safetensors")
    DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(out, safe_serialization=True)
    (out / "fixture.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="fixtures to build")
    parser.add_argument("--list-derived", action="store_true", help="print the names built on a base")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.list_derived:
        print("\n".join(s.name for s in SPECS if s.base))
        return
    by_name = {s.name: s for s in SPECS}
    for name in args.names:
        build(by_name[name])


if __name__ == "__main__":
    main()
