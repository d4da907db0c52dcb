"""How far apart two models' pictures are: removal's ``sample_drift``, between any models of one shape.

    python benchmarks/sample_drift.py MODEL_DIR OTHER_DIR [OTHER_DIR ...] [--seed 0]

For each OTHER_DIR, the mean per-pixel squared difference in [0, 1] units between MODEL_DIR's and its
DDIM-50 samples from the same 64 noises (``removal.fidelity``'s ``ddim_pictures`` and ``picture_drift``,
as the removal report measures a cleaned model against its original), with MODEL_DIR's scheduler. Beside them, the
same figure between MODEL_DIR's own samples from different noises: what unrelated pictures differ by.
It puts a cleaned model's drift between a fine-tune's (small) and a different picture's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from diffcleanse_gate.loading import load_local
from diffcleanse_gate.removal.fidelity import ddim_pictures, picture_drift


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("others", type=Path, nargs="+")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_local(args.model)
    noise = torch.randn((64, *model.sample_shape), generator=torch.Generator().manual_seed(args.seed))
    own = ddim_pictures(model.unet, model.scheduler_config, noise)
    print(f"| {args.model.name}, samples from different noises | {picture_drift(own, own.roll(1, 0)):.4f} |")
    for other in args.others:
        drift = picture_drift(own, ddim_pictures(load_local(other).unet, model.scheduler_config, noise))
        print(f"| {args.model.name} / {other.name} | {drift:.4f} |", flush=True)


if __name__ == "__main__":
    main()
