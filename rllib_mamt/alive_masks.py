"""Losses over the rows where an agent is alive (agents may leave an episode early).

The joint replay buffer stores per-agent alive masks (``alive`` at o,
``next_alive`` at o'); an agent's own critic and actor losses average only over
the rows where it acted, as BenchMARL/SMAC-style code masks dead agents.
"""

from typing import Optional

import torch


def masked_mean(values: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Mean of ``values`` over the leading (batch) axis where ``mask`` is 1.

    Without a mask this is ``values.mean(0)``; rows with mask 0 contribute
    nothing (not even NaN gradients for finite values), and an all-zero mask
    gives 0.
    """
    if mask is None:
        return values.mean(0)
    mask = mask.to(values.dtype)
    while mask.dim() < values.dim():
        mask = mask.unsqueeze(-1)
    return (values * mask).sum(0) / mask.sum(0).clamp_min(1.0)


def alive_masks(data):
    """``(alive, next_alive)`` float (B, n) tensors of a joint batch, or
    ``(None, None)`` for a batch without them or in which every agent is alive
    at o and o' (the unmasked computations are the same and cheaper)."""
    from rllib_mamt.joint_replay_buffer import ALIVE, NEXT_ALIVE

    if ALIVE not in data:
        return None, None
    alive, next_alive = data[ALIVE].float(), data[NEXT_ALIVE].float()
    if bool(torch.minimum(alive.min(), next_alive.min()) >= 0.5):
        return None, None
    return alive, next_alive


def no_op_for_dead(actions: torch.Tensor, alive: Optional[torch.Tensor]) -> torch.Tensor:
    """(B, n) actions with the fixed no-op action 0 for dead agents."""
    if alive is None:
        return actions
    return actions.masked_fill(alive < 0.5, 0)
