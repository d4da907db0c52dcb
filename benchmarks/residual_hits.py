"""Target hits with the trigger at several scales, zero included: is a residue the trigger's or the model's?

    python benchmarks/residual_hits.py MODEL_DIR [MODEL_DIR ...] --backdoor tests/fixtures/zoo/NAME/backdoor.safetensors

Samples ``--samples`` images from ``noise + scale * trigger`` (the same noises for every scale) with
each model's own scheduler at ``--steps`` steps and prints the share within MSE 0.01 of the target
(``diffcleanse_gate.effect``). Equal shares at scale 0 and 1 mean the trigger adds nothing: the model
makes the target from plain noise as often.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file

from diffcleanse_gate.effect import attack_effect
from diffcleanse_gate.loading import load_local


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--backdoor", type=Path, required=True, help="safetensors with 'trigger' and 'target'")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    known = load_file(args.backdoor)
    print("| model | " + " | ".join(f"hits at trigger x{scale:g}" for scale in args.scales) + " |")
    print("|---|" + "---|" * len(args.scales))
    for path in args.models:
        model = load_local(path)
        hits = [attack_effect(model.unet, model.scheduler_config, known["trigger"] * scale, known["target"],
                              args.samples, args.steps, seed=args.seed).success_rate for scale in args.scales]
        print(f"| {path} | " + " | ".join(f"{hit:.1%} ({round(hit * args.samples)}/{args.samples})"
                                           for hit in hits) + " |", flush=True)


if __name__ == "__main__":
    main()
