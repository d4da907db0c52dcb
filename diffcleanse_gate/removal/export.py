"""Write a cleaned model in the input's diffusers layout, safetensors only, and check that it reloads.

The cleaned UNet keeps its architecture (pruned channels are zeroed, not removed), so stock
``UNet2DModel.from_pretrained`` / ``DDPMPipeline.from_pretrained`` load it with no custom code. The
folder appears whole or not at all: it is written under a temporary name and renamed at the end.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import torch
from diffusers import UNet2DModel

from ..errors import UsageError
from ..loading import LoadedModel, load_local

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
FLOAT_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def stored_dtype(model: LoadedModel) -> torch.dtype:
    """The dtype the input stored its weights in (float32 when unknown or mixed)."""
    return FLOAT_DTYPES.get(model.info.weights_dtype, torch.float32)


@torch.no_grad()
def round_to_stored_dtype(unet: UNet2DModel, dtype: torch.dtype) -> None:
    """Round the weights in memory to what saving in ``dtype`` will keep, so memory and disk agree."""
    for parameter in unet.parameters():
        parameter.copy_(parameter.to(dtype).to(parameter.dtype))


def _copy_components(source: Path, target: Path) -> None:
    """Copy a pipeline's other components and files; the UNet is written afresh, pickles never."""
    for item in source.iterdir():
        if item.name == "unet" or item.name.startswith("."):
            continue
        if item.is_dir():
            shutil.copytree(item, target / item.name, ignore=shutil.ignore_patterns(*[f"*{s}" for s in PICKLE_SUFFIXES]))
        elif item.suffix not in PICKLE_SUFFIXES:
            shutil.copy2(item, target / item.name)


def check_output_folder(folder: Path) -> None:
    """Refuse an output folder that holds anything already (it is never overwritten)."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(f"output folder {folder}: exists and is not empty; choose a new one")


def save_cleaned(unet: UNet2DModel, source: LoadedModel, folder: Path) -> None:
    """Write ``unet`` to ``folder`` in the same layout as ``source`` (pipeline or bare UNet folder)."""
    check_output_folder(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        dtype = stored_dtype(source)
        unet_dir = partial
        if source.info.layout == "pipeline":
            _copy_components(Path(source.info.path), partial)
            unet_dir = partial / "unet"
        if dtype == torch.float32:
            unet.save_pretrained(unet_dir, safe_serialization=True)
        else:
            unet.to(dtype).save_pretrained(unet_dir, safe_serialization=True)
            unet.float()
        if folder.exists():
            folder.rmdir()
        partial.rename(folder)
    except BaseException:
        unet.float()
        shutil.rmtree(partial, ignore_errors=True)
        raise


@torch.no_grad()
def reloads_identically(unet: UNet2DModel, folder: Path, seed: int = 0) -> bool:
    """Reload ``folder`` with stock diffusers and check its outputs equal ``unet``'s, bit for bit (on the CPU)."""
    reloaded = load_local(folder)
    reference = unet if next(unet.parameters()).device.type == "cpu" else copy.deepcopy(unet).cpu()
    sample = torch.randn((4, *reloaded.sample_shape), generator=torch.Generator().manual_seed(seed))
    timesteps = torch.tensor([0, 250, 500, 999])
    return torch.equal(reloaded.unet(sample, timesteps).sample, reference(sample, timesteps).sample)
