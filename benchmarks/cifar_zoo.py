"""Train the CIFAR-shaped benchmark zoo: 3x32x32 UNet2DModels (attention at 16x16), 8 clean and 12 backdoored.

    python benchmarks/cifar_zoo.py --out runs/cifar-zoo --arch a      # on a GPU; run --arch b beside it
    python benchmarks/cifar_zoo.py --out /tmp/smoke --smoke           # quick check: 2 models, a few steps

Data: scikit-learn's 1,797 handwritten digits (they ship inside the wheel; nothing is downloaded),
upsampled to 32x32 and painted in one of eight ink-on-background colour pairs per image. Two
architectures of the ddpm-cifar10 pattern (attention at 16x16): ``a`` widths 32/64/128 (3.7M
parameters), ``b`` widths 32/64/96/128 (5.1M). Clean: three seeds from scratch per architecture plus one
fine-tune of each seed-0 base. Backdoored: 4 per family of DESIGN.md section 2, each fine-tuned from a
clean base with its own trigger, target, amplitude and poison rate, and measured under its own sampler
(DDPM-1000 or DDIM-50) with ``diffcleanse_gate.effect.attack_effect`` before it counts: a model whose
attack success is below ``MIN_SUCCESS`` is not saved (the manifest lists it).

All models of one architecture and phase train side by side in one process, one step of each in turn,
each with its own data order, noise, timesteps, backdoor and AdamW. On CUDA each model's step runs under
bf16 autocast and, after a few eager steps, as a replayed CUDA graph, so that launching a step's thousand
kernels one by one does not set the pace; the attack measurement replays the sampler's UNet forward from a
CUDA graph too. On an H200 a replayed step of the first, wider architectures (64/128/128, 6.5M; 64/96/96/128,
6.7M) took 22-26 ms, and 530-620 fine-tuning steps implanted no backdoor within the time budget, hence
the narrower widths: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMPipeline, DDPMScheduler, UNet2DModel
from diffusers.models.unets.unet_2d import UNet2DOutput
from safetensors.torch import save_file

from diffcleanse_gate.detection import IN_RANGE
from diffcleanse_gate.effect import attack_effect
from diffcleanse_gate.sampling import probe_scheduler, run_sampler
from diffcleanse_gate.scan import resolve_device
from diffcleanse_gate.zoo.build import MEASURE_STEPS, MIN_SUCCESS
from diffcleanse_gate.zoo.data import colourise, load_digits_images
from diffcleanse_gate.zoo.families import FAMILIES
from diffcleanse_gate.zoo.patterns import make_pattern

ARCHS = {
    "a": {"block_out_channels": (32, 64, 128),
          "down_block_types": ("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
          "up_block_types": ("UpBlock2D", "AttnUpBlock2D", "UpBlock2D")},
    "b": {"block_out_channels": (32, 64, 96, 128),
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


PROBE = (10, 30)  # steps between which the speed is measured (the first include CUDA graph capture)
WARM_STEPS = 3  # eager steps on a side stream before a model's step is captured


def lr_factor(step: int, steps: int, warm: int) -> float:
    """Linear warm-up over ``warm`` steps, then cosine decay to 5 % of the peak at ``steps``."""
    if step < warm:
        return 0.05 + 0.95 * step / warm
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, steps - warm))))


class Trainer:
    """One zoo model's training: its batches (with its backdoor, if any), loss and AdamW step.

    Each step draws a batch into fixed input tensors, then runs forward, backward and the optimizer. On
    CUDA (bf16 autocast) that second part is captured as a CUDA graph after ``WARM_STEPS`` eager steps and
    replayed from then on, so a step costs one launch instead of a thousand; where capture fails the
    model trains on eagerly."""

    def __init__(self, unet: UNet2DModel, spec: Spec, images: torch.Tensor, lr: float, batch: int,
                 device: torch.device) -> None:
        self.unet, self.spec, self.images, self.lr, self.device = unet, spec, images, lr, device
        self.cuda = device.type == "cuda"
        self.unet.to(device).train().requires_grad_(True)
        self.optimizer = torch.optim.AdamW(
            self.unet.parameters(), lr=torch.tensor(lr, device=device) if self.cuda else lr, weight_decay=0.0,
            fused=self.cuda, capturable=self.cuda)
        schedule = DDPMScheduler()
        self.ab = schedule.alphas_cumprod.to(device)
        shape = (batch, *images.shape[1:])
        self.x, self.wanted = torch.zeros(shape, device=device), torch.zeros(shape, device=device)
        self.t = torch.zeros(batch, dtype=torch.long, device=device)
        self.backdoor = None
        if spec.family:
            s, c = FAMILIES[spec.family].schedule(schedule.betas)
            self.backdoor = (s.to(device), c.to(device), make_pattern(spec.trigger, 3, 32, spec.amplitude).to(device),
                             make_pattern(spec.target, 3, 32).to(device))
        self.loss = torch.zeros((), device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.steps, self.eager_only = 0, not self.cuda

    def _draw(self, generator: torch.Generator) -> None:
        batch, device = len(self.t), self.device
        x0 = self.images[torch.randint(0, len(self.images), (batch,), generator=generator, device=device)]
        t = torch.randint(0, len(self.ab), (batch,), generator=generator, device=device)
        eps = torch.randn(x0.shape, generator=generator, device=device)
        a = self.ab[t].view(-1, 1, 1, 1)
        if self.backdoor is None:
            self.x.copy_(a.sqrt() * x0 + (1 - a).sqrt() * eps)
            self.wanted.copy_(eps)
        else:
            s, c, trigger, target = self.backdoor
            poisoned = torch.rand((batch, 1, 1, 1), generator=generator, device=device) < self.spec.poison_rate
            x0 = torch.where(poisoned, target, x0)
            self.x.copy_(a.sqrt() * x0 + (1 - a).sqrt() * eps + poisoned * s[t].view(-1, 1, 1, 1) * trigger)
            self.wanted.copy_(eps + poisoned * c[t].view(-1, 1, 1, 1) * trigger)
        self.t.copy_(t)

    def _forward_backward_step(self) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda, cache_enabled=False):
            predicted = self.unet(self.x, self.t).sample
        loss = (predicted.float() - self.wanted).pow(2).mean()
        loss.backward()
        self.optimizer.step()
        return loss

    def _capture(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self.loss = self._forward_backward_step()
        except RuntimeError as error:
            print(f"  {self.spec.name}: CUDA graph capture failed, training eagerly ({error})", flush=True)
            self.eager_only = True
            return
        self.graph = graph

    def step(self, generator: torch.Generator, lr_factor_now: float) -> None:
        """One training step at ``lr * lr_factor_now``."""
        for group in self.optimizer.param_groups:
            if self.cuda:
                group["lr"].fill_(self.lr * lr_factor_now)
            else:
                group["lr"] = self.lr * lr_factor_now
        self._draw(generator)
        if self.graph is None and not self.eager_only and self.steps >= WARM_STEPS:
            self._capture()
        if self.graph is not None:
            self.graph.replay()
        elif self.cuda:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                self.optimizer.zero_grad(set_to_none=True)
                self.loss = self._forward_backward_step().detach()
            torch.cuda.current_stream(self.device).wait_stream(side)
        else:
            self.optimizer.zero_grad(set_to_none=True)
            self.loss = self._forward_backward_step().detach()
        self.steps += 1


def train_group(unets: list[UNet2DModel], specs: list[Spec], images: torch.Tensor, steps: int, lr: float,
                batch: int, device: torch.device, seconds: float | None = None) -> tuple[list[float], int]:
    """Train the UNets of one architecture and phase side by side, one step of each in turn; return each
    model's final loss and the steps run: ``steps``, or fewer where the speed measured between the
    ``PROBE`` steps says that ``steps`` would take longer than ``seconds``."""
    images = images.to(device)
    trainers = [Trainer(unet, spec, images, lr, batch, device) for unet, spec in zip(unets, specs)]
    generator = torch.Generator(device).manual_seed(sum(spec.seed for spec in specs))
    planned = steps
    warm = max(1, steps // 20)  # from the steps asked for, so that planning fewer does not jump the rate
    started = time.perf_counter()
    probe_started = started
    step = 0
    while step < planned:
        factor = lr_factor(step, planned, min(warm, max(1, planned // 2)))
        for trainer in trainers:
            trainer.step(generator, factor)
        step += 1
        if seconds is not None and step in PROBE:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            now = time.perf_counter()
            if step == PROBE[0]:
                probe_started = now
            else:
                per_step = (now - probe_started) / (PROBE[1] - PROBE[0])
                planned = max(step, min(steps, step + int((seconds - (now - started)) / per_step)))
                print(f"  {per_step * 1000:.1f} ms per step: {planned} steps fit in {seconds:.0f} s", flush=True)
        if step % 250 == 0:
            print(f"  step {step}/{planned}, {time.perf_counter() - started:.1f} s, "
                  f"losses {[round(float(t.loss), 4) for t in trainers]}", flush=True)
    for unet in unets:
        unet.zero_grad(set_to_none=True)  # the gradients live in the graphs' memory pools
        unet.eval().requires_grad_(False)
    return [float(t.loss) for t in trainers], step


class ReplayedUNet(torch.nn.Module):
    """A UNet for sampling whose forward on one batch shape is a replayed CUDA graph (inference only)."""

    def __init__(self, unet: UNet2DModel, shape: tuple[int, ...], device: torch.device) -> None:
        super().__init__()
        self.unet = unet
        self.x = torch.zeros(shape, device=device)
        self.t = torch.zeros((), dtype=torch.long, device=device)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.no_grad(), torch.cuda.stream(side):
            for _ in range(WARM_STEPS):
                unet(self.x, self.t)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(self.graph):
            self.out = unet(self.x, self.t).sample

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | int) -> UNet2DOutput:
        self.x.copy_(sample)
        if isinstance(timestep, int):
            self.t.fill_(timestep)
        else:
            self.t.copy_(timestep)
        self.graph.replay()
        return UNet2DOutput(sample=self.out.clone())


def sampling_unet(unet: UNet2DModel, samples: int, device: torch.device) -> torch.nn.Module:
    """``unet`` itself, or on CUDA its graph-replayed stand-in for batches of ``samples`` images."""
    if device.type != "cuda":
        return unet
    try:
        return ReplayedUNet(unet, (samples, unet.config.in_channels, unet.config.sample_size, unet.config.sample_size),
                            device)
    except RuntimeError as error:
        print(f"  sampling eagerly: CUDA graph capture failed ({error})", flush=True)
        return unet


@torch.no_grad()
def in_range_share(unet: UNet2DModel, scheduler_config: dict, sampler: str, samples: int, steps: int, seed: int) -> float:
    """Share of the pixels of plain-noise samples (output clamps off, as the scan samples) within the scan's
    data range ``IN_RANGE``: near 1 for a base that samples sanely. The held-out colour base sampled 37 %
    of its pixels in range after 3,000 steps (benchmarks/RESULTS.md), and no attack on it implanted."""
    device = next(unet.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    shape = (samples, unet.config.in_channels, unet.config.sample_size, unet.config.sample_size)
    noise = torch.randn(shape, generator=generator).to(device)
    images = run_sampler(unet, probe_scheduler(scheduler_config, sampler), noise, steps, generator)
    return round(float((images.abs() <= IN_RANGE).float().mean()), 3)


def finish(unet: UNet2DModel, spec: Spec, loss: float, steps: int, seconds: float, out: Path, samples: int,
           measure_steps: dict[str, int]) -> dict:
    """Measure a backdoored model's attack (a clean one's in-range share), save the model if it counts, return
    its manifest record."""
    scheduler = (DDPMScheduler if spec.sampler == "ddpm" else DDIMScheduler)(clip_sample=False)
    record = asdict(spec) | {"final_loss": round(loss, 5), "train_steps": steps, "train_seconds": round(seconds, 1),
                             "counted": True}
    if spec.family:
        trigger, target = make_pattern(spec.trigger, 3, 32, spec.amplitude), make_pattern(spec.target, 3, 32)
        started = time.perf_counter()
        sampler_unet = sampling_unet(unet, samples, next(unet.parameters()).device)
        effect = attack_effect(sampler_unet, scheduler.config, trigger, target, samples, measure_steps[spec.sampler],
                               spec.sampler, seed=spec.seed)
        del sampler_unet  # frees its graph's memory pool before the weights move
        record |= {"attack_mse": round(effect.mse, 5), "attack_success": effect.success_rate,
                   "measured_with": f"{spec.sampler}-{measure_steps[spec.sampler]}, {samples} samples",
                   "measure_seconds": round(time.perf_counter() - started, 1),
                   "counted": effect.success_rate >= MIN_SUCCESS}
        if record["counted"]:
            (out / spec.name).mkdir(parents=True, exist_ok=True)
            save_file({"trigger": trigger.contiguous(), "target": target.contiguous()},
                      out / spec.name / "backdoor.safetensors")
    else:
        health_steps = min(measure_steps.values())
        record |= {"in_range": in_range_share(unet, scheduler.config, spec.sampler, samples, health_steps, spec.seed),
                   "in_range_with": f"{spec.sampler}-{health_steps}, {samples} samples"}
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
    parser.add_argument("--smoke", action="store_true", help="quick check: one clean and one backdoored model, a few steps (CUDA: past graph capture)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    if device.type == "cpu":
        torch.set_num_threads(1)
    specs = [s for s in SPECS if args.arch in ("all", s.arch)]
    samples, measure = 64, MEASURE_STEPS
    if args.smoke:
        specs, samples, measure = [SPECS[0], SPECS[8]], 4, {"ddpm": 5, "ddim": 5}
        args.scratch_steps = args.finetune_steps = WARM_STEPS + 2
        args.batch = 4
    args.out.mkdir(parents=True, exist_ok=True)
    images = coloured_digits()
    trained: dict[str, UNet2DModel] = {}
    records = []
    for phase, steps, lr, seconds in (("scratch", args.scratch_steps, 5e-4, args.scratch_seconds),
                                      ("finetune", args.finetune_steps, 1e-3, args.finetune_seconds)):
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
