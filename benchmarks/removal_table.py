"""Print a Markdown table from the JSON reports of ``diffcleanse clean --true-trigger ... --json``.

    python benchmarks/removal_table.py runs/removal/*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(path: Path) -> str:
    """One table row for one removal report."""
    report = json.loads(path.read_text())
    seconds = sum(v for k, v in report.get("timings", {}).items() if k.endswith("_s"))
    first = report["scan_before"]
    if not report["changed"]:
        return (f"| {path.stem} | {report['status']} | {report['verdict_after']} | - | - | - | - "
                f"| {first['unet_evaluations']:,} | {seconds:.1f} |")
    true = report["effect"].get("true_trigger")
    fidelity, removal = report["fidelity"], report["removal"]
    effect = "- | -" if true is None else (
        f"{true['before']['mse']:.4f} -> {true['after']['mse']:.4f} | "
        f"{true['before']['success_rate']:.0%} -> {true['after']['success_rate']:.0%}")
    return (f"| {path.stem} | {report['status']} | {report['verdict_after']} | {effect} "
            f"| {fidelity['loss_ratio']:.3f} | {fidelity['sample_drift']:.4f} "
            f"| {removal['unet_evaluations'] + first['unet_evaluations']:,} | {seconds:.1f} |")


def main(paths: list[str]) -> None:
    print("| model | status | verdict after | true trigger MSE before -> after | attack success before -> after "
          "| loss ratio | sample drift | unet_evaluations | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in paths:
        print(row(Path(name)))


if __name__ == "__main__":
    main(sys.argv[1:])
