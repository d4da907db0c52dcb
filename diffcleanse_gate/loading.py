"""Load a diffusers model from a local folder: a pipeline folder or a bare UNet2DModel folder."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import UNet2DModel

from .errors import (
    CorruptedWeightsError,
    ModelNotFoundError,
    NotADiffusersModelError,
    UnsafeWeightsError,
    UnsupportedModelError,
)

SAFE_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors")
PICKLE_WEIGHTS = ("diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.bin")
# A bare UNet folder has no sampler of its own: it is scanned with unclipped ancestral DDPM sampling
# over the 1000 linear betas that UNet2DModel checkpoints are trained with.
DEFAULT_SCHEDULER_CONFIG: dict[str, Any] = {"_class_name": "DDPMScheduler", "clip_sample": False}


@dataclass
class ModelInfo:
    """What was loaded: where from, which layout, its content hash and revision, and its dtype."""

    path: str
    layout: str  # "pipeline" or "unet"
    content_hash: str
    weights_dtype: str
    weights_format: str  # "safetensors" or "pickle"
    repo_id: str | None = None
    revision: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadedModel:
    """A UNet ready to run, the scheduler config it ships with, and where it came from."""

    unet: UNet2DModel
    scheduler_config: dict[str, Any]
    info: ModelInfo

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """The (channels, height, width) of one image the UNet denoises."""
        size = self.unet.config.sample_size
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        return (self.unet.config.in_channels, height, width)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptedWeightsError(f"cannot read {path}: {error}") from error


def _content_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(folder)).encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _unet_folder(root: Path) -> tuple[Path, str, Path | None]:
    """Find the UNet folder, the layout name and the scheduler folder (if any) under ``root``."""
    if (root / "model_index.json").is_file():
        index = _read_json(root / "model_index.json")
        if "unet" not in index or not (root / "unet").is_dir():
            raise NotADiffusersModelError(f"{root}: pipeline has no unet/ component")
        scheduler = root / "scheduler"
        return root / "unet", "pipeline", scheduler if scheduler.is_dir() else None
    config = root / "config.json"
    if config.is_file() and _read_json(config).get("_class_name") == "UNet2DModel":
        return root, "unet", None
    raise NotADiffusersModelError(
        f"{root}: not a diffusers model (expected model_index.json with unet/, or a UNet2DModel config.json)"
    )


SAFETENSORS_DTYPES = {"F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64"}


def _stored_dtype(weights: Path) -> str:
    """The floating-point dtype a safetensors file stores, read from its JSON header."""
    try:
        with weights.open("rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            if not 0 < length <= 100_000_000:
                raise ValueError(f"implausible header length {length}")
            header = json.loads(handle.read(length))
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise CorruptedWeightsError(f"{weights}: not a readable safetensors file: {error}") from error
    dtypes = {entry["dtype"] for key, entry in header.items() if key != "__metadata__"}
    floating = sorted(SAFETENSORS_DTYPES[d] for d in dtypes if d in SAFETENSORS_DTYPES)
    return floating[0] if len(floating) == 1 else "+".join(floating) or "unknown"


def _weights_format(unet_dir: Path, allow_pickle: bool) -> tuple[str, str | None]:
    """Return the weights format and diffusers variant, refusing pickle unless allowed."""
    for name in SAFE_WEIGHTS:
        if (unet_dir / name).is_file():
            return "safetensors", ("fp16" if ".fp16." in name else None)
    for name in PICKLE_WEIGHTS:
        if (unet_dir / name).is_file():
            if not allow_pickle:
                raise UnsafeWeightsError(
                    f"{unet_dir / name}: weights only in pickle form; refusing to load them "
                    "(pass --allow-pickle to load with torch.load(weights_only=True))"
                )
            return "pickle", ("fp16" if ".fp16." in name else None)
    raise NotADiffusersModelError(f"{unet_dir}: no diffusion_pytorch_model weights file")


def _probe(unet: UNet2DModel, shape: tuple[int, int, int]) -> None:
    """Run one tiny forward pass so that an unusable image size fails here, clearly."""
    channels, height, width = shape
    factor = 2 ** (len(unet.config.block_out_channels) - 1)
    if height % factor or width % factor:
        raise UnsupportedModelError(
            f"image size {height}x{width} is not divisible by {factor}, which this UNet's "
            f"{len(unet.config.block_out_channels)} resolution levels need"
        )
    try:
        with torch.no_grad():
            out = unet(torch.zeros(1, channels, height, width), torch.tensor(999)).sample
    except RuntimeError as error:
        raise UnsupportedModelError(f"the UNet cannot denoise {height}x{width} images: {error}") from error
    if out.shape != (1, channels, height, width):
        raise UnsupportedModelError(f"the UNet maps {height}x{width} images to shape {tuple(out.shape[1:])}")


def load_local(
    path: str | Path,
    allow_pickle: bool = False,
    resolution: int | None = None,
) -> LoadedModel:
    """Load a local diffusers folder as float32 on the CPU, checking everything a scan relies on."""
    root = Path(path)
    if not root.exists():
        raise ModelNotFoundError(f"{root}: no such file or directory")
    if not root.is_dir():
        raise NotADiffusersModelError(f"{root}: not a folder")
    unet_dir, layout, scheduler_dir = _unet_folder(root)
    weights_format, variant = _weights_format(unet_dir, allow_pickle)
    weights_file = unet_dir / f"diffusion_pytorch_model{'.' + variant if variant else ''}.safetensors"
    weights_dtype = _stored_dtype(weights_file) if weights_format == "safetensors" else "unknown"
    config = _read_json(unet_dir / "config.json")
    if config.get("_class_name", "UNet2DModel") != "UNet2DModel":
        raise UnsupportedModelError(f"{unet_dir}: {config['_class_name']} is not supported (UNet2DModel only)")
    try:
        unet = UNet2DModel.from_pretrained(
            unet_dir,
            use_safetensors=weights_format == "safetensors",
            variant=variant,
            low_cpu_mem_usage=False,
        )
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CorruptedWeightsError(f"{unet_dir}: cannot load weights: {first_line}") from error
    unet = unet.float().eval().requires_grad_(False)
    scheduler_config = dict(DEFAULT_SCHEDULER_CONFIG)
    if scheduler_dir is not None:
        scheduler_config = _read_json(scheduler_dir / "scheduler_config.json")
    prediction = scheduler_config.get("prediction_type", "epsilon")
    if prediction != "epsilon":
        raise UnsupportedModelError(
            f"{root}: the scheduler's prediction_type is {prediction!r}; only noise-predicting "
            "(epsilon) models can be scanned"
        )
    info = ModelInfo(str(root), layout, _content_hash(root), weights_dtype, weights_format)
    loaded = LoadedModel(unet, scheduler_config, info)
    if resolution is not None:
        unet.register_to_config(sample_size=resolution)
    _probe(unet, loaded.sample_shape)
    return loaded
