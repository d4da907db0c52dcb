"""The threat model shared by attacks and defence: how a trained-in trigger moves through sampling.

All three attack families (DESIGN.md section 2) poison a training pair as::

    x_t = sqrt(ab_t) * y + s_t * r + sqrt(1 - ab_t) * eps,    eps-target = eps + c_t * r

``s_t`` is the trigger's scale along the forward process: ``1 - sqrt(ab_t)`` (BadDiffusion and
VillanDiffusion) or ``sqrt(1 - ab_t)`` (TrojDiff, "rides with the noise"). ``c_t`` is solved from the
one-step update of the sampler the attack targets, ancestral DDPM or the deterministic DDIM (ODE) step.

A clean model answers an input shift ``delta`` at time t with a noise-prediction shift of about
``delta / sqrt(1 - ab_t)`` (it takes the shift for noise). A backdoored one answers its trigger with
``gain_t * delta / sqrt(1 - ab_t)``, ``gain_t = c_t * sqrt(1 - ab_t) / s_t`` (computed in ``probes``): near 0.5 at the noisiest
step for the ancestral families, and rising above 1 in mid trajectory for the ODE family.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TRIGGER_FORMS = ("fades", "rides-with-noise")
SAMPLER_KINDS = ("ancestral", "ode")


def trigger_schedule(form: str, sampler_kind: str, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(s, c)``, each of length T, for a trigger form and the sampler kind it targets."""
    betas = betas.double()
    alphas = 1.0 - betas
    ab = torch.cumprod(alphas, dim=0)
    ab_prev = torch.cat([torch.ones(1, dtype=ab.dtype), ab[:-1]])
    if form == "rides-with-noise":
        s, s_prev = (1.0 - ab).sqrt(), (1.0 - ab_prev).sqrt()
    else:
        s, s_prev = 1.0 - ab.sqrt(), 1.0 - ab_prev.sqrt()
    if sampler_kind == "ancestral":
        c = (s - alphas.sqrt() * s_prev) * (1.0 - ab).sqrt() / betas
    else:
        ratio = (ab_prev / ab).sqrt()
        c = (s_prev - ratio * s) / ((1.0 - ab_prev).sqrt() - ratio * (1.0 - ab).sqrt())
    return s.float(), c.float()


@dataclass(frozen=True)
class Probe:
    """Where a backdoor of one kind is visible: a timestep and the response gain it would show."""

    name: str
    timestep: int
    gain: float
    trigger_scale: float  # s_t at the probe: a trigger r appears there as trigger_scale * r

    @property
    def amplifying(self) -> bool:
        """True for gains above 1, which a clean denoiser (a shrinking estimator) does not show."""
        return self.gain > 1.0


def probes(betas: torch.Tensor, min_anomaly: float = 0.25) -> list[Probe]:
    """One probe per attack kind whose response differs from a clean model's by ``min_anomaly``.

    Each probe sits at the noisiest timestep where the gain is that far from 1, where the unknown
    target image weighs least on the model's input. Kinds that give the same probe appear once.
    """
    noise_scale = (1.0 - torch.cumprod(1.0 - betas.double(), dim=0).float()).sqrt()
    found: dict[tuple[int, float], Probe] = {}
    for sampler_kind in SAMPLER_KINDS:
        for form in TRIGGER_FORMS:
            s, c = trigger_schedule(form, sampler_kind, betas)
            gain = c * noise_scale / s.clamp_min(1e-12)
            anomalous = torch.nonzero((gain - 1.0).abs() >= min_anomaly).flatten()
            if len(anomalous) == 0:
                continue
            t = int(anomalous.max())
            key = (t // 50, round(float(gain[t]), 1))
            found.setdefault(key, Probe(f"{form}/{sampler_kind}", t, float(gain[t]), float(s[t])))
    return sorted(found.values(), key=lambda probe: -probe.timestep)
