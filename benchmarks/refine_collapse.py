"""Refine the scan's trigger by descending the sampler's dispersion directly (a tried, rejected idea).

    python benchmarks/refine_collapse.py --iterations 60 tests/fixtures/zoo/villandiffusion-box-hat ...

Each model is scanned with the default settings; from the trigger it reports, Adam (lr 0.05) takes
``--iterations`` steps on the variance across 8 noises of samples from ``noise + trigger`` (the scan's
sampler and steps, gradients through them, pixels clamped to [-1.5, 1.5]), the trigger kept within
1.5 times its starting norm. Both triggers are then scored with the collapse score (guards included)
on 64 other noises. Results and why this was not adopted: benchmarks/RESULTS.md, "What did not work".
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from diffcleanse_gate.counting import CountingUNet
from diffcleanse_gate.detection import collapse_scores
from diffcleanse_gate.loading import load_local
from diffcleanse_gate.sampling import build_scheduler, run_sampler
from diffcleanse_gate.scan import ScanConfig, scan


def refine(unet: CountingUNet, scheduler_config: Mapping[str, Any], shape: tuple[int, ...], start: torch.Tensor,
           config: ScanConfig, iterations: int, seed: int) -> torch.Tensor:
    """``start`` moved by Adam to lower the dispersion of the samples it starts."""
    radius = 1.5 * float(start.norm())
    trigger = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([trigger], lr=0.05)
    generator = torch.Generator().manual_seed(seed)
    for step in range(iterations):
        noise = torch.randn((8, *shape), generator=generator)
        scheduler = build_scheduler(scheduler_config, config.sampler)
        images = run_sampler(unet, scheduler, (noise + trigger) * scheduler.init_noise_sigma, config.sampler_steps,
                             torch.Generator().manual_seed(step))
        loss = images.clamp(-1.5, 1.5).var(0).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            trigger.mul_(min(1.0, radius / float(trigger.norm())))
    return trigger.detach()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--iterations", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(2)
    config = ScanConfig()
    print("| model | scan verdict | reported trigger: collapse | refined: collapse | cosine to true (reported -> refined) | refine seconds |")
    print("|---|---|---|---|---|---|")
    for path in args.models:
        model = load_local(path)
        result = scan(model, config)
        unet = CountingUNet(model.unet.requires_grad_(False))
        started = time.perf_counter()
        refined = refine(unet, model.scheduler_config, model.sample_shape, result.trigger, config, args.iterations, 3)
        took = time.perf_counter() - started
        noise = torch.randn((64, *model.sample_shape), generator=torch.Generator().manual_seed(11))
        scores, _ = collapse_scores(unet, model.scheduler_config, config.sampler, torch.stack([result.trigger, refined]), noise,
                                    config.sampler_steps, 1, config.max_batch)
        cosine = "-"
        if (path / "backdoor.safetensors").is_file():
            true = load_file(path / "backdoor.safetensors")["trigger"].flatten()
            before, after = (float(torch.cosine_similarity(t.flatten(), true, 0)) for t in (result.trigger, refined))
            cosine = f"{before:.2f} -> {after:.2f}"
        print(f"| {path.name} | {result.verdict} | {float(scores[0]):.3f} | {float(scores[1]):.3f} | {cosine} | {took:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
