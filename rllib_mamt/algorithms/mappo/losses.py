"""Pure tensor functions of MA-PPO's update (reusable by PPO-style learners).

* :func:`generalized_advantages`: GAE(lambda) over joint rows laid out as
  contiguous per-sub-env trajectories (see :mod:`rllib_mamt.algorithms.mappo.trajectories`);
* :func:`clipped_surrogate_loss`: PPO's clipped objective with one clip range
  per agent (a tensor, so a learner can give each agent its own trust region);
* :func:`huber_value_loss`: the critic's Huber loss (MAPPO's value loss).
"""

from typing import Optional, Union

import numpy as np
import torch
from torch.nn import functional as F


def generalized_advantages(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    bootstrap: np.ndarray,
    continues: np.ndarray,
    gamma: float,
    lambda_: float,
) -> np.ndarray:
    """GAE(lambda) advantages of every agent on joint rows (Schulman et al., 2016).

    delta_t = r_t + gamma * bootstrap_t * V(o'_t) - V(o_t) and
    A_t = delta_t + gamma * lambda * continues_t * A_(t+1), computed backwards.
    Because every row carries its own V(o'_t), a trajectory cut at a
    truncation or at the end of a sample bootstraps from V(o') of its last row
    (bootstrap = 1, continues = 0), and a terminated step does not
    (bootstrap = 0).

    Args:
        rewards: (N, n) rewards of n agents, rows in trajectory order.
        values: (N, n) V_i(o_t).
        next_values: (N, n) V_i(o'_t).
        bootstrap: (N, n) 1 where V_i(o'_t) counts (not terminated, agent i
            still in the episode at o'), else 0.
        continues: (N,) 1 where row t + 1 is the next step of row t's episode.
        gamma: Discount.
        lambda_: GAE lambda.

    Returns:
        (N, n) float32 advantages; the value targets are advantages + values.
    """
    deltas = rewards + gamma * bootstrap * next_values - values
    decay = gamma * lambda_ * np.asarray(continues, np.float64)
    advantages = np.zeros(deltas.shape, np.float64)
    running = np.zeros(deltas.shape[1:], np.float64)
    for t in range(len(deltas) - 1, -1, -1):
        running = deltas[t] + decay[t] * running
        advantages[t] = running
    return advantages.astype(np.float32)


def clipped_surrogate_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    clip: Union[float, torch.Tensor],
    mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Per-agent PPO clipped-surrogate loss (Schulman et al., 2017, Eq. 7).

    L_i = -mean_b min(rho * A, clip(rho, 1 - eps_i, 1 + eps_i) * A),
    rho = exp(log pi_i(a|o) - log pi_i_old(a|o)).

    Args:
        log_probs: (B, n) log-probabilities of the taken actions now.
        old_log_probs: (B, n) the same under the sampling policy.
        advantages: (B, n) advantage estimates.
        clip: eps, a float or an (n,) tensor with one clip range per agent.
        mask: Optional (B, n) weights (alive masks): rows with 0 do not count.

    Returns:
        (n,) losses, one per agent.
    """
    ratio = torch.exp(log_probs - old_log_probs)
    clip = torch.as_tensor(clip, dtype=ratio.dtype, device=ratio.device)
    clipped = torch.minimum(torch.maximum(ratio, 1.0 - clip), 1.0 + clip)
    surrogate = torch.minimum(ratio * advantages, clipped * advantages)
    return -masked_column_mean(surrogate, mask)


def huber_value_loss(
    values: torch.Tensor, targets: torch.Tensor, delta: float,
    mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """(n,) per-agent mean Huber loss of the values against their targets
    (quadratic within ``delta``, linear beyond; MAPPO's value loss)."""
    loss = F.huber_loss(values, targets, reduction="none", delta=delta)
    return masked_column_mean(loss, mask)


def masked_column_mean(values: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """(n,) mean over the rows of a (B, n) tensor, counting rows where ``mask``
    is 1 (all rows without a mask); a column with no row counted is 0."""
    if mask is None:
        return values.mean(0)
    return (values * mask).sum(0) / mask.sum(0).clamp_min(1.0)


def standardize_columns(values: np.ndarray, mask: Optional[np.ndarray]) -> np.ndarray:
    """(N, n) values standardised per column over the rows ``mask`` counts
    (all without a mask): (x - mean) / (std + 1e-8), MAPPO's advantage
    normalisation done per agent."""
    weights = np.ones_like(values) if mask is None else mask
    count = np.maximum(weights.sum(0), 1.0)
    mean = (values * weights).sum(0) / count
    std = np.sqrt((((values - mean) ** 2) * weights).sum(0) / count)
    return ((values - mean) / (std + 1e-8)).astype(np.float32)
