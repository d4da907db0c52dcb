"""Collapse score of the *true* trigger at several scales, under the scan's own sampler settings.

    python benchmarks/true_trigger_collapse.py tests/fixtures/zoo/villandiffusion-box-hat ...

It separates the two ways a scan can miss a backdoor: the statistic (the true trigger does not
collapse the sampler either) or the search (it does, but the inversion and scale search did not find it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file

from diffcleanse_gate.counting import CountingUNet
from diffcleanse_gate.detection import collapse_scores
from diffcleanse_gate.loading import load_local
from diffcleanse_gate.scan import ScanConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+", help="model folders holding backdoor.safetensors")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5])
    parser.add_argument("--noises", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(2)
    config = ScanConfig()
    scales = torch.tensor(args.scales).view(-1, 1, 1, 1)
    print("| model | sampler steps | " + " | ".join(f"x{s:g}" for s in args.scales) + " |")
    print("|---|---|" + "---|" * len(args.scales))
    for path in args.models:
        model = load_local(path)
        trigger = load_file(path / "backdoor.safetensors")["trigger"]
        noise = torch.randn((args.noises, *model.sample_shape), generator=torch.Generator().manual_seed(config.seed))
        scores, _ = collapse_scores(CountingUNet(model.unet), model.scheduler_config, config.sampler,
                                    trigger.unsqueeze(0) * scales, noise, config.sampler_steps, config.seed,
                                    config.max_batch)
        print(f"| {path.name} | {config.sampler_steps} | " + " | ".join(f"{float(s):.3f}" for s in scores) + " |",
              flush=True)


if __name__ == "__main__":
    main()
