"""Write a scan's pictures into a report folder and say where they went."""

from __future__ import annotations

from pathlib import Path

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
