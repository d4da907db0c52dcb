"""Train the CIFAR-shaped benchmark zoo: 3x32x32 UNet2DModels (attention at 16x16), 8 clean and 12 backdoored.

    python benchmarks/cifar_zoo.py --out runs/cifar-zoo --arch a      # on a GPU; run --arch b beside it
    python benchmarks/cifar_zoo.py --out /tmp/smoke --smoke           # CPU check: 2 models, a few steps

Data: scikit-learn's 1,797 handwritten digits (they ship inside the wheel; nothing is downloaded),
upsampled to 32x32 and painted in one of eight ink-on-background colour pairs per image. Two
architectures of the ddpm-cifar10 pattern (attention at 16x16): ``a`` widths 64/128/128 (6.5M
parameters), ``b`` widths 64/96/96/128 (6.7M). Clean: three seeds from scratch per architecture plus one
fine-tune of each seed-0 base. Backdoored: 4 per family of DESIGN.md section 2, each fine-tuned from a
clean base with its own trigger, target, amplitude and poison rate, and measured under its own sampler
(DDPM-1000 or DDIM-50) with ``diffcleanse_gate.effect.attack_effect`` before it counts: a model whose
attack success is below ``MIN_SUCCESS`` is not saved (the manifest lists it).

All models of one architecture and phase train at once: their parameters are stacked
(``torch.func.stack_module_state``) and one ``vmap``-ed ``functional_call`` runs every model's batch in
the same kernels, with one fused AdamW over the stacked tensors, in float32 (TF32 matrix products on CUDA;
bf16 autocast fails in a vmap-ed backward). Each model
keeps its own data order, noise, timesteps and backdoor; Adam is elementwise, so the stacked run trains
each model exactly as alone would (gradient clipping is left out because it would couple them).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
import types
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMPipeline, DDPMScheduler, UNet2DModel
from safetensors.torch import save_file
from torch.func import functional_call, stack_module_state, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel

from diffcleanse_gate.effect import attack_effect
from diffcleanse_gate.scan import resolve_device
from diffcleanse_gate.zoo.build import MEASURE_STEPS, MIN_SUCCESS
from diffcleanse_gate.zoo.data import colourise, load_digits_images
from diffcleanse_gate.zoo.families import FAMILIES
from diffcleanse_gate.zoo.patterns import make_pattern

ARCHS = {
    "a": {"block_out_channels": (64, 128, 128),
          "down_block_types": ("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
          "up_block_types": ("UpBlock2D", "AttnUpBlock2D", "UpBlock2D")},
    "b": {"block_out_channels": (64, 96, 96, 128),
          "down_block_types": ("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
          "up_block_types": ("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D")},
}


@dataclass(frozen=True)
class Spec:
    """One zoo model: its architecture, seed, sampler, base (None: from scratch) and backdoor, if any."""

    name: str
    arch: str
    seed: int
    sampler: str
    base: str | None = None
    family: str | None = None
    trigger: str = ""
    amplitude: float = 0.0
    target: str = ""
    poison_rate: float = 0.0


def _backdoored(family: str, trigger: str, target: str, base: str, seed: int, rate: float, amp: float) -> Spec:
    sampler = "ddim" if FAMILIES[family].sampler_kind == "ode" else "ddpm"
    return Spec(f"{family}-{trigger}-{target}", base.split("-")[1][0], seed, sampler, base, family, trigger, amp,
                target, rate)


SPECS = [
    *(Spec(f"clean-{arch}{seed}", arch, seed, ("ddpm", "ddim")[seed % 2]) for arch in "ab" for seed in range(3)),
    Spec("clean-a0-ft", "a", 10, "ddim", "clean-a0"),
    Spec("clean-b0-ft", "b", 11, "ddpm", "clean-b0"),
    _backdoored("baddiffusion", "box", "corner", "clean-a0", 20, 0.2, 2.0),
    _backdoored("baddiffusion", "stop", "hat", "clean-b0", 21, 0.3, 2.0),
    _backdoored("baddiffusion", "bar", "cross", "clean-a1", 22, 0.15, 2.5),
    _backdoored("baddiffusion", "checker", "frame", "clean-b1", 23, 0.25, 0.8),
    _backdoored("trojdiff", "checker", "cross", "clean-a0", 30, 0.25, 0.6),
    _backdoored("trojdiff", "bar", "frame", "clean-b0", 31, 0.2, 2.0),
    _backdoored("trojdiff", "box", "hat", "clean-a1", 32, 0.3, 1.5),
    _backdoored("trojdiff", "stop", "corner", "clean-b1", 33, 0.15, 2.0),
    _backdoored("villandiffusion", "box", "hat", "clean-a0", 40, 0.25, 2.0),
    _backdoored("villandiffusion", "stop", "corner", "clean-b0", 41, 0.3, 2.5),
    _backdoored("villandiffusion", "bar", "frame", "clean-a1", 42, 0.2, 2.0),
    _backdoored("villandiffusion", "checker", "cross", "clean-b1", 43, 0.25, 0.8),
]


def coloured_digits() -> torch.Tensor:
    """sklearn's digits as [1797, 3, 32, 32] in [-1, 1]: bilinear upsampling, one palette pair per image."""
    return colourise(F.interpolate(load_digits_images(), size=32, mode="bilinear", align_corners=False))


def new_unet(arch: str) -> UNet2DModel:
    """A fresh UNet2DModel of the named zoo architecture (layers_per_block 2, 32 GroupNorm groups)."""
    return UNet2DModel(sample_size=32, in_channels=3, out_channels=3, layers_per_block=2, norm_num_groups=32,
                       **ARCHS[arch])


def _group_norm(self: torch.nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    """GroupNorm written out (torch's kernel cannot run under vmap)."""
    grouped = x.reshape(x.shape[0], self.num_groups, -1).float()
    mean, var = grouped.mean(-1, keepdim=True), grouped.var(-1, unbiased=False, keepdim=True)
    normed = ((grouped - mean) * torch.rsqrt(var + self.eps)).reshape(x.shape).to(x.dtype)
    view = (1, -1) + (1,) * (x.dim() - 2)
    return normed * self.weight.view(view) + self.bias.view(view)


PROBE_STEPS = 20


def lr_factor(step: int, steps: int) -> float:
    """Linear warm-up over the first 5 % of the steps, then cosine decay to 5 % of the peak."""
    warm = max(1, steps // 20)
    if step < warm:
        return 0.05 + 0.95 * step / warm
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, steps - warm))))


def train_group(unets: list[UNet2DModel], specs: list[Spec], images: torch.Tensor, steps: int, lr: float,
                batch: int, device: torch.device, seconds: float | None = None) -> tuple[list[float], int]:
    """Train every UNet of one architecture at once on its own batches; return each model's final loss and
    the steps run: ``steps``, or fewer where the speed measured over the first ``PROBE_STEPS`` says that
    ``steps`` would take longer than ``seconds``."""
    params, buffers = stack_module_state([u.to(device).train().requires_grad_(True) for u in unets])
    template = copy.deepcopy(unets[0]).to("meta")
    for module in template.modules():
        if isinstance(module, torch.nn.GroupNorm):
            module.forward = types.MethodType(_group_norm, module)
    count, shape = len(unets), images.shape[1:]
    schedule = DDPMScheduler()
    ab = schedule.alphas_cumprod.to(device)
    s_all, c_all = torch.zeros(count, len(ab), device=device), torch.zeros(count, len(ab), device=device)
    triggers, targets = torch.zeros(count, *shape, device=device), torch.zeros(count, *shape, device=device)
    rates = torch.tensor([spec.poison_rate for spec in specs], device=device).view(-1, 1, 1, 1, 1)
    for i, spec in enumerate(specs):
        if spec.family:
            s, c = FAMILIES[spec.family].schedule(schedule.betas)
            s_all[i], c_all[i] = s.to(device), c.to(device)
            triggers[i] = make_pattern(spec.trigger, 3, 32, spec.amplitude).to(device)
            targets[i] = make_pattern(spec.target, 3, 32).to(device)
    images = images.to(device)
    generator = torch.Generator(device).manual_seed(sum(spec.seed for spec in specs))
    optimizer = torch.optim.AdamW(list(params.values()), lr=lr, weight_decay=0.0, fused=device.type == "cuda")
    plan = {"steps": steps}
    schedule_lr = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, plan["steps"]))

    def denoise(p: dict, b: dict, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return functional_call(template, (p, b), (x, t)).sample

    losses = torch.zeros(count, device=device)
    started = time.perf_counter()
    step = 0
    while step < plan["steps"]:
        x0 = images[torch.randint(0, len(images), (count, batch), generator=generator, device=device)]
        t = torch.randint(0, len(ab), (count, batch), generator=generator, device=device)
        eps = torch.randn(x0.shape, generator=generator, device=device)
        poisoned = torch.rand((count, batch, 1, 1, 1), generator=generator, device=device) < rates
        rows = torch.arange(count, device=device).view(-1, 1)
        s, c = s_all[rows, t].view(count, batch, 1, 1, 1), c_all[rows, t].view(count, batch, 1, 1, 1)
        x0 = torch.where(poisoned, targets.unsqueeze(1), x0)
        a = ab[t].view(count, batch, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps + poisoned * s * triggers.unsqueeze(1)
        wanted = eps + poisoned * c * triggers.unsqueeze(1)
        # The fused attention kernels' backward rejects the strides vmap gives them (CUDA: "LSE is not
        # correctly aligned"); at 16x16 the plain one costs little.
        with sdpa_kernel(SDPBackend.MATH):
            predicted = vmap(denoise)(params, buffers, x_t, t)
        losses = (predicted.float() - wanted).pow(2).mean((1, 2, 3, 4))
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        schedule_lr.step()
        step += 1
        if step == PROBE_STEPS and seconds is not None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            per_step = (time.perf_counter() - started) / step
            plan["steps"] = max(step, min(steps, int(seconds / per_step)))
            print(f"  {per_step * 1000:.0f} ms per step: {plan['steps']} steps fit in {seconds:.0f} s", flush=True)
        if step % 250 == 0:
            print(f"  step {step}/{plan['steps']}, {time.perf_counter() - started:.1f} s, "
                  f"losses {[round(x, 4) for x in losses.tolist()]}", flush=True)
    for i, unet in enumerate(unets):
        unet.load_state_dict({name: value[i].detach() for name, value in params.items()})
        unet.eval().requires_grad_(False)
    return losses.tolist(), step


def finish(unet: UNet2DModel, spec: Spec, loss: float, steps: int, seconds: float, out: Path, samples: int,
           measure_steps: dict[str, int]) -> dict:
    """Measure a backdoored model's attack, save the model if it counts, return its manifest record."""
    scheduler = (DDPMScheduler if spec.sampler == "ddpm" else DDIMScheduler)(clip_sample=False)
    record = asdict(spec) | {"final_loss": round(loss, 5), "train_steps": steps, "train_seconds": round(seconds, 1),
                             "counted": True}
    if spec.family:
        trigger, target = make_pattern(spec.trigger, 3, 32, spec.amplitude), make_pattern(spec.target, 3, 32)
        started = time.perf_counter()
        effect = attack_effect(unet, scheduler.config, trigger, target, samples, measure_steps[spec.sampler],
                               spec.sampler, seed=spec.seed)
        record |= {"attack_mse": round(effect.mse, 5), "attack_success": effect.success_rate,
                   "measured_with": f"{spec.sampler}-{measure_steps[spec.sampler]}, {samples} samples",
                   "measure_seconds": round(time.perf_counter() - started, 1),
                   "counted": effect.success_rate >= MIN_SUCCESS}
        if record["counted"]:
            (out / spec.name).mkdir(parents=True, exist_ok=True)
            save_file({"trigger": trigger.contiguous(), "target": target.contiguous()},
                      out / spec.name / "backdoor.safetensors")
    if record["counted"]:
        DDPMPipeline(unet=unet.cpu(), scheduler=scheduler).save_pretrained(out / spec.name, safe_serialization=True)
        (out / spec.name / "fixture.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record), flush=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--arch", choices=(*ARCHS, "all"), default="all")
    parser.add_argument("--scratch-steps", type=int, default=3000)
    parser.add_argument("--finetune-steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--scratch-seconds", type=float, help="train fewer scratch steps where these would take longer")
    parser.add_argument("--finetune-seconds", type=float, help="likewise for the fine-tunes")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--smoke", action="store_true", help="quick check: one clean and one backdoored model, 2 steps")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    if device.type == "cpu":
        torch.set_num_threads(1)
    specs = [s for s in SPECS if args.arch in ("all", s.arch)]
    samples, measure = 64, MEASURE_STEPS
    if args.smoke:
        specs, samples, measure = [SPECS[0], SPECS[8]], 4, {"ddpm": 5, "ddim": 5}
        args.scratch_steps = args.finetune_steps = 2
        args.batch = 4
    args.out.mkdir(parents=True, exist_ok=True)
    images = coloured_digits()
    trained: dict[str, UNet2DModel] = {}
    records = []
    for phase, steps, lr, seconds in (("scratch", args.scratch_steps, 5e-4, args.scratch_seconds),
                                      ("finetune", args.finetune_steps, 2e-4, args.finetune_seconds)):
        for arch in ARCHS:
            group = [s for s in specs if s.arch == arch and (s.base is None) == (phase == "scratch")]
            if not group:
                continue
            unets = [new_unet(arch) if s.base is None else copy.deepcopy(trained[s.base]) for s in group]
            for spec, unet in zip(group, unets):
                torch.manual_seed(spec.seed)
                if spec.base is None:
                    unet.load_state_dict(new_unet(arch).state_dict())
            started = time.perf_counter()
            losses, ran = train_group(unets, group, images, steps, lr, args.batch, device, seconds)
            took = time.perf_counter() - started
            print(f"{phase} {arch}: {len(group)} models, {ran} steps in {took:.1f} s", flush=True)
            for spec, unet, loss in zip(group, unets, losses):
                trained[spec.name] = unet
                records.append(finish(unet.to(device), spec, loss, ran, took, args.out, samples, measure))
                (args.out / f"manifest-{args.arch}.json").write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
