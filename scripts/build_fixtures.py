"""Regenerate the fixture zoo in tests/fixtures/zoo: tiny clean and backdoored DDPM pipelines.

Trained on sklearn's digits (8x8, shipped inside scikit-learn). Every backdoored model is measured
before it is saved and the script fails if its attack does not work. Run the bases first, then the
rest (two at a time on two cores)::

    python scripts/build_fixtures.py clean-a clean-b
    python scripts/build_fixtures.py $(python scripts/build_fixtures.py --list-derived)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from diffcleanse_gate.zoo.build import MIN_SUCCESS, Spec, build

ZOO = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "zoo"

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
        record = build(by_name[name], ZOO)
        print(json.dumps(record), flush=True)
        if not record["counted"]:
            sys.exit(f"{name}: attack success {record['attack_success']:.2f} < {MIN_SUCCESS}; not saved")


if __name__ == "__main__":
    main()
