"""Draw ROC curves into a PNG with Pillow (matplotlib is not a dependency)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]


def draw_roc(curves: dict[str, tuple[np.ndarray, np.ndarray, float]], path: Path, title: str) -> None:
    """Plot ``{label: (fpr, tpr, auroc)}`` on one square chart and save it as ``path``."""
    size, margin = 480, 56
    image = Image.new("RGB", (size + 2 * margin, size + 2 * margin), "white")
    draw = ImageDraw.Draw(image)

    def at(x: float, y: float) -> tuple[float, float]:
        return margin + x * size, margin + (1 - y) * size

    draw.rectangle([at(0, 1), at(1, 0)], outline="black")
    draw.line([at(0, 0), at(1, 1)], fill=(190, 190, 190))
    for tick in np.linspace(0, 1, 6):
        draw.text((at(tick, 0)[0] - 8, margin + size + 6), f"{tick:.1f}", fill="black")
        draw.text((margin - 30, at(0, tick)[1] - 6), f"{tick:.1f}", fill="black")
    draw.text((margin + size / 2 - 60, margin + size + 24), "false positive rate", fill="black")
    draw.text((6, margin - 20), "true positive rate", fill="black")
    draw.text((margin, 8), title, fill="black")
    for index, (label, (fpr, tpr, area)) in enumerate(curves.items()):
        colour = COLOURS[index % len(COLOURS)]
        steps = [at(float(x), float(y)) for x, y in zip(fpr, tpr)]
        draw.line(steps, fill=colour, width=3 - index % 2)
        draw.text((margin + size - 190, margin + size - 20 * (len(curves) - index) - 6),
                  f"{label} (AUROC {area:.3f})", fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
