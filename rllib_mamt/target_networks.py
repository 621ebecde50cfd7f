"""Soft (Polyak) updates of target networks."""

from typing import Iterable

import torch


@torch.no_grad()
def soft_update_(
    targets: Iterable[torch.Tensor], sources: Iterable[torch.Tensor], tau: float
) -> None:
    """theta_bar <- tau * theta + (1 - tau) * theta_bar, in place (Alg. 2 line 19)."""
    for target, source in zip(targets, sources):
        target.lerp_(source, tau)
