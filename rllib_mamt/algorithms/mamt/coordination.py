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


COORDINATION_NORMALIZATIONS = ("relative", "paper")
"""Readings of Eq. 5, chosen by ``coordination_normalization``."""


def coefficients_from_influence(
    influence: torch.Tensor,
    threshold: float,
    alive: Optional[torch.Tensor] = None,
    normalization: str = "paper",
) -> torch.Tensor:
    """C from the (B, n, n) :func:`counterfactual_influence`, thresholded at sigma.

    ``normalization="paper"`` is Eq. 5 as printed: the softmax over j != i of
    the influences (see :func:`coefficients_from_counterfactuals`).
    ``"relative"`` is :func:`relative_coefficients`.

    With a (B, n) ``alive`` mask the normalisation runs over the live agents
    only and every pair with a dead agent gets C_ij = 0 (an agent with no live
    other agent has a zero row).
    """
    if normalization == "relative":
        return relative_coefficients(influence, threshold, alive)
    if normalization != "paper":
        raise ValueError(
            f"coordination_normalization={normalization!r}: allowed {COORDINATION_NORMALIZATIONS}"
        )
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


def relative_coefficients(
    influence: torch.Tensor, threshold: float, alive: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Scale-aware Eq. 5: agent j's influence on Q_i measured in units of agent
    i's own.

    C_ij = min(1, |Q_i(a_\\j) - Q_i(a)| / E_batch|Q_i(a_\\i) - Q_i(a)|), zeroed
    below sigma, C_ii = 0. The denominator is the batch mean of agent i's own
    counterfactual influence (the diagonal of ``influence``, the size of its
    own advantage): C_ij = 1 says j's action moves i's value as much as i's own
    action does, C_ij = 0 that it does not move it at all.

    Eq. 5's softmax has no temperature and sums to one over j: for n = 2 it is
    1 whatever the critic says, for n = 8 a uniform row (1/7) falls below
    sigma = 0.2, and with influences of 0.01-0.08 (standardised rewards) every
    row is near uniform. This reading does not depend on the reward scale, n or
    the row sum, so it can say "nobody depends on j" (Spread-3-Sep) as well as
    "everybody does" (Spread-3-Ful), and sigma keeps its meaning for any n (a
    fifth of the agent's own influence for sigma = 0.2). An agent whose own
    action never moves its value (mean own influence 0) counts every agent
    with a non-zero influence on it as fully coupled.

    Dead agents (``alive`` < 0.5) are left out of the batch mean and get
    C_ij = 0 in every pair they are part of.
    """
    n = influence.shape[-1]
    own = influence.diagonal(dim1=-2, dim2=-1)  # (B, n)
    if alive is None:
        reference = own.mean(0)
    else:
        live = (alive >= 0.5).to(own.dtype)
        reference = (own * live).sum(0) / live.sum(0).clamp(min=1.0)
    ratio = influence / reference.clamp(min=torch.finfo(own.dtype).tiny).unsqueeze(-1)
    off_diagonal = 1.0 - torch.eye(n, dtype=influence.dtype, device=influence.device)
    c = ratio.clamp(max=1.0) * off_diagonal
    c = c * (c >= threshold)
    return c if alive is None else c * live_pairs(alive)


def live_pairs(alive: torch.Tensor) -> torch.Tensor:
    """(B, n, n) float mask, 1 where both agents i and j are alive."""
    live = (alive >= 0.5).to(torch.float32)
    return live.unsqueeze(-1) * live.unsqueeze(-2)


def counterfactual_influence(q_joint: torch.Tensor, q_without: torch.Tensor) -> torch.Tensor:
    """(B, n, n) |Q_i(a_\\j) - Q_i(a)|: how much agent j's action moves agent i's
    value, the quantity Eq. 5 normalises over j (a softmax) into C_hat_ij.

    Unlike Eq. 5's C, it is not normalised per row, so it also tells "nobody
    matters" (Spread-3-Sep) from "everybody matters" (Spread-3-Ful). The
    diagonal is agent i's own influence |Q_i(a_\\i) - Q_i(a)| when
    ``q_without`` carries the own marginal on its diagonal (as the attention
    critic's ``counterfactual_values`` does).
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
