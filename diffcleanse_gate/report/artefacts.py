"""Write a scan's pictures into a report folder and say where they went."""

from __future__ import annotations

from pathlib import Path

import torch

from ..scan import ScanResult
from .images import grid, save_png, save_trigger


def write_artefacts(result: ScanResult, folder: Path) -> dict[str, str]:
    """Write the trigger (PNG, .npy) and the triggered and plain sample grids; return their paths."""
    paths = {
        "trigger_png": folder / "trigger.png",
        "trigger_npy": folder / "trigger.npy",
        "triggered_samples_png": folder / "samples_with_trigger.png",
        "clean_samples_png": folder / "samples_without_trigger.png",
    }
    save_trigger(result.trigger, paths["trigger_png"], paths["trigger_npy"])
    save_png(grid(result.triggered_samples[:64]), paths["triggered_samples_png"])
    save_png(grid(result.clean_samples[:64]), paths["clean_samples_png"])
    return {name: str(path) for name, path in paths.items()}


def write_grids(folder: Path, images: dict[str, torch.Tensor]) -> dict[str, str]:
    """Write each ``[N, C, H, W]`` batch (in [-1, 1]) as ``<name>.png``; return ``{name_png: path}``."""
    paths = {}
    for name, batch in images.items():
        path = folder / f"{name}.png"
        save_png(grid(batch[:64]), path)
        paths[f"{name}_png"] = str(path)
    return paths
