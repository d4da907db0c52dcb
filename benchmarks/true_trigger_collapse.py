"""Collapse score of the *true* trigger at several scales, under the scan's own sampler settings.

    python benchmarks/true_trigger_collapse.py tests/fixtures/zoo/villandiffusion-box-hat ...
    python benchmarks/true_trigger_collapse.py --found tests/fixtures/zoo/clean-a ...   # also the scan's trigger

It separates the two ways a scan can miss a backdoor: the statistic (the true trigger does not
collapse the sampler either) or the search (it does, but the inversion and scale search did not find
it). With ``--found`` each model is also scanned with the default settings and the trigger it reports
is scored at the same scales (with its cosine to the true trigger, where there is one): whether a
finer scale search alone would have found the backdoor, and what it would do to clean models. With
``--steps`` the sampler runs each of the given step counts instead of the scan's (one row per count):
whether a trigger fires only on a longer trajectory than the scan samples.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file

from diffcleanse_gate.counting import CountingUNet
from diffcleanse_gate.detection import collapse_scores
from diffcleanse_gate.loading import load_local
from diffcleanse_gate.scan import ScanConfig, scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+", help="model folders (with backdoor.safetensors unless --found)")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5])
    parser.add_argument("--noises", type=int, default=32)
    parser.add_argument("--found", action="store_true", help="also score the trigger a default scan reports")
    parser.add_argument("--steps", type=int, nargs="+", help="sampler steps (default: the scan's)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    config = ScanConfig()
    scales = torch.tensor(args.scales).view(-1, 1, 1, 1)
    print("| model | trigger | cosine to true | sampler steps | " + " | ".join(f"x{s:g}" for s in args.scales) + " |")
    print("|---|---|---|---|" + "---|" * len(args.scales))
    for path in args.models:
        model = load_local(path)
        backdoor = path / "backdoor.safetensors"
        true = load_file(backdoor)["trigger"] if backdoor.is_file() else None
        triggers = [] if true is None else [("true", true)]
        if args.found:
            result = scan(model, config)
            triggers.append((f"found ({result.verdict}, collapse {result.score:.3f})", result.trigger))
        noise = torch.randn((args.noises, *model.sample_shape), generator=torch.Generator().manual_seed(config.seed))
        for name, trigger in triggers:
            cosine = "-" if true is None else f"{float(torch.cosine_similarity(trigger.flatten(), true.flatten(), 0)):.2f}"
            for steps in args.steps or [config.sampler_steps]:
                scores, _ = collapse_scores(CountingUNet(model.unet), model.scheduler_config, config.sampler,
                                            trigger.unsqueeze(0) * scales, noise, steps, config.seed, config.max_batch)
                print(f"| {path.name} | {name} | {cosine} | {steps} | " + " | ".join(f"{float(s):.3f}" for s in scores)
                      + " |", flush=True)


if __name__ == "__main__":
    main()
