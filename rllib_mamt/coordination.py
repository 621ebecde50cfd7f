"""Coordination coefficients (Eq. 5) and the non-stationarity estimate D_ns (Eq. 6).

Pure tensor functions on top of the attention critic and the opponent models;
nothing here receives gradients (the paper computes C and D_ns "in advance"
and uses them as the TRD-Net's graph and regression target).
"""

from typing import Optional

import torch
from torch.nn import functional as F

from rllib_mamt.modules.actor import pad_logits


def coefficients_from_counterfactuals(
    q_joint: torch.Tensor, q_without: torch.Tensor, threshold: float
) -> torch.Tensor:
    """Eq. 5 from counterfactual values.

    Args:
        q_joint: (B, n) Q_i(o, a) at the replayed joint action.
        q_without: (B, n, n) Q_i(a_\\j): agent j's action marginalised under pi_j.
        threshold: sigma; entries of C_hat below it are set to 0.

    Returns:
        (B, n, n) C with C_ij = 1[C_hat_ij >= sigma] * C_hat_ij, where
        C_hat_i. = softmax over j != i of |Q_i(a_\\j) - Q_i(a)| and C_ii = 0.
    """
    return coefficients_from_influence(counterfactual_influence(q_joint, q_without), threshold)


def coefficients_from_influence(
    influence: torch.Tensor, threshold: float, alive: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Eq. 5 from the (B, n, n) :func:`counterfactual_influence`: the softmax over
    j != i, thresholded at sigma (see :func:`coefficients_from_counterfactuals`).

    With a (B, n) ``alive`` mask the softmax runs over the live j != i only and
    every pair with a dead agent gets C_ij = 0 (an agent with no live other
    agent has a zero row).
    """
    n = influence.shape[-1]
    excluded = torch.eye(n, dtype=torch.bool, device=influence.device)
    if alive is not None:
        excluded = excluded | (alive < 0.5).unsqueeze(-2)
    nothing = excluded.all(-1, keepdim=True)
    c_hat = torch.softmax(
        influence.masked_fill(excluded & ~nothing, float("-inf")), dim=-1
    ).masked_fill(nothing, 0.0)
    c = c_hat * (c_hat >= threshold)
    return c if alive is None else c * live_pairs(alive)


def live_pairs(alive: torch.Tensor) -> torch.Tensor:
    """(B, n, n) float mask, 1 where both agents i and j are alive."""
    live = (alive >= 0.5).to(torch.float32)
    return live.unsqueeze(-1) * live.unsqueeze(-2)


def counterfactual_influence(q_joint: torch.Tensor, q_without: torch.Tensor) -> torch.Tensor:
    """(B, n, n) |Q_i(a_\\j) - Q_i(a)|: how much agent j's action moves agent i's
    value, the quantity Eq. 5 normalises over j (a softmax) into C_hat_ij.

    Unlike C, it is not normalised per row, so it also tells "nobody matters"
    (Spread-3-Sep) from "everybody matters" (Spread-3-Ful); the diagonal is 0.
    """
    return (q_without - q_joint.unsqueeze(-1)).abs()


def fixed_coefficients(batch_size: int, n: int, device=None) -> torch.Tensor:
    """MAMT-Fixed ablation (Table 10): C_ij = 1 / (n - 1) for every j != i."""
    c = torch.full((batch_size, n, n), 1.0 / (n - 1), device=device)
    return c * (1 - torch.eye(n, device=device))


def random_coefficients(batch_size: int, n: int, generator: torch.Generator, device=None) -> torch.Tensor:
    """MAMT-Random ablation (Table 10): C_i. = softmax over j != i of U(0, 1) draws."""
    draws = torch.rand(batch_size, n, n, generator=generator, device=device)
    eye = torch.eye(n, dtype=torch.bool, device=device)
    return torch.softmax(draws.masked_fill(eye, float("-inf")), dim=-1)


def categorical_kl(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) over the last axis from log-probabilities (0 * log 0 = 0)."""
    return (log_p.exp() * (log_p - log_q)).nan_to_num(0.0).sum(-1)


def non_stationarity(
    coefficients: torch.Tensor,
    predicted_log_probs: torch.Tensor,
    policy_log_probs: torch.Tensor,
    projection_range: tuple,
    scale: float = 1.0,
) -> torch.Tensor:
    """Eq. 6: D_ns,i = Pi_ns( sum_{j != i} C_ij KL[h_i^j(o_i) || pi_j(o_j)] ).

    Args:
        coefficients: (B, n, n) C.
        predicted_log_probs: (B, n_i, n_j, A) log h_phi_i^j(. | o_i).
        policy_log_probs: (B, n_j, A) log pi_j(. | o_j).
        projection_range: (low, high) of the projection Pi_ns (a clamp).
        scale: Constant factor on the sum (1/n for the MAMT-WS ablation).

    Returns:
        (B, n) D_ns,i.
    """
    divergence = categorical_kl(predicted_log_probs, policy_log_probs.unsqueeze(1))
    weighted = scale * (coefficients * divergence).sum(-1)
    return weighted.clamp(projection_range[0], projection_range[1])


def padded_log_probs(logits: list, num_actions: int) -> torch.Tensor:
    """Stacks per-agent logits of different sizes into (B, n, A) log-probabilities."""
    return torch.stack(
        [F.log_softmax(pad_logits(x, num_actions), dim=-1) for x in logits], dim=1
    )
