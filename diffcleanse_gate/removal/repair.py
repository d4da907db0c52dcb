"""Repair after pruning: fine-tune on clean inputs, with the original model as teacher when that is safe.

Loss ``||eps - eps_student||^2 + teacher_weight * ||eps_teacher - eps_student||^2`` (Diff-Cleanse, whose
teacher term keeps clean generation close to the original's). Distilling from the backdoored teacher can
also carry the backdoor back into the student; with a confirmed trigger a suppression term (the
student must answer the trigger the way a clean model would) holds it off, without one the caller turns
the teacher term off (measured in RESULTS.md). Pruned channels stay at zero after every update.
"""

from __future__ import annotations

import torch

from ..progress import ProgressCallback, no_progress
from .channels import ChannelMask
from .objectives import BackdoorObjective, CleanObjective


def repair(
    student: torch.nn.Module,
    teacher: torch.nn.Module,
    mask: ChannelMask,
    clean: CleanObjective,
    steps: int,
    batch: int,
    learning_rate: float,
    generator: torch.Generator,
    progress: ProgressCallback = no_progress,
    backdoor: BackdoorObjective | None = None,
    stage: str = "repair",
    teacher_weight: float = 1.0,
) -> list[float]:
    """Fine-tune ``student`` in place; return the loss of every step."""
    parameters = list(student.parameters())
    for parameter in parameters:
        parameter.requires_grad_(True)
    optimizer = torch.optim.Adam(parameters, lr=learning_rate)
    losses = []
    student.train()
    try:
        for step in range(steps):
            noisy, t, noise = clean.draw(batch, generator)
            with torch.enable_grad():
                predicted = student(noisy, t).sample
                loss = (predicted - noise).pow(2).mean()
                if teacher_weight:
                    with torch.no_grad():
                        taught = teacher(noisy, t).sample
                    loss = loss + teacher_weight * (predicted - taught).pow(2).mean()
                if backdoor is not None:
                    loss = loss + backdoor.suppression_loss(student, teacher, clean, batch // 2, generator)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            optimizer.step()
            mask.apply()
            losses.append(loss.item())
            progress(stage, step + 1, steps)
    finally:
        student.eval()
        for parameter in parameters:
            parameter.requires_grad_(False)
            parameter.grad = None
    return losses
