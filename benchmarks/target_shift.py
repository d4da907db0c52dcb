"""Is a backdoor's target a fixed point of the sampler: does shifting the noise by it make it?

    python benchmarks/target_shift.py MODEL_DIR ... [--targets-from MODEL_DIR ...]

For each model, the starting noise of the scan's sampler (10 steps, 32 noises) is shifted by an image
(centred, unit per-pixel RMS, at scales 0.5 to 3) and the samples are scored: collapse (the scan's
statistic, with its guards) and the share of samples within the attack-success distance of that
image ("hits"). The images: the model's own target (backdoored models), the targets of the models
given with ``--targets-from`` (those of the model's shape), and for 8x8 grey models the first ten
sklearn digits, the clean data such models learn.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from sklearn.datasets import load_digits

from diffcleanse_gate.counting import CountingUNet
from diffcleanse_gate.detection import collapse_scores
from diffcleanse_gate.effect import effect_on
from diffcleanse_gate.loading import load_local
from diffcleanse_gate.scan import ScanConfig

SCALES = (0.5, 1.0, 1.5, 2.0, 3.0)


def _target(path: Path) -> torch.Tensor | None:
    backdoor = path / "backdoor.safetensors"
    return load_file(backdoor)["target"] if backdoor.is_file() else None


def _target_name(path: Path) -> str:
    return json.loads((path / "fixture.json").read_text()).get("target", "?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--targets-from", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = ScanConfig()
    digits = torch.tensor(load_digits().images[:10], dtype=torch.float32).unsqueeze(1) / 8 - 1
    print("| model | shifted by | best collapse (scale) | most hits at scale <= 2 (scale) | hits at scale 3 |")
    print("|---|---|---|---|---|")
    for path in args.models:
        model = load_local(path)
        images = [("own target", _target(path))]
        images += [(f"target of {other.name} ({_target_name(other)})", _target(other))
                   for other in args.targets_from if other != path]
        if model.sample_shape == tuple(digits.shape[1:]):
            images += [(f"digit {index}", digit) for index, digit in enumerate(digits)]
        noise = torch.randn((32, *model.sample_shape), generator=torch.Generator().manual_seed(2))
        for name, image in images:
            if image is None or tuple(image.shape) != model.sample_shape:
                continue
            centred = image - image.mean()
            shifts = torch.stack([centred / centred.pow(2).mean().sqrt() * scale for scale in SCALES])
            scores, samples = collapse_scores(CountingUNet(model.unet), model.scheduler_config, config.sampler, shifts,
                                              noise, config.sampler_steps, config.seed, config.max_batch)
            hits = torch.tensor([effect_on(samples[1 + i].clamp(-1, 1), image).success_rate for i in range(len(SCALES))])
            best, most = int(scores.argmax()), int(hits[:-1].argmax())
            own = f" ({_target_name(path)})" if name == "own target" else ""
            print(f"| {path.name} | {name}{own} | {float(scores[best]):.2f} (x{SCALES[best]:g}) "
                  f"| {float(hits[most]):.0%} (x{SCALES[most]:g}) | {float(hits[-1]):.0%} |", flush=True)


if __name__ == "__main__":
    main()
