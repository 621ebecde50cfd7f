"""Pure tensor functions behind MAMT's losses (paper Eq. 9 and Eq. 10).

Kept free of RLlib so each can be unit-tested against a brute-force version.
"""

from typing import Optional, Sequence

import torch


def tsallis_log(x: torch.Tensor, q: float) -> torch.Tensor:
    """Tsallis q-logarithm ln_q(x) = (x^(1-q) - 1) / (1 - q); ln_1 = ln."""
    if q == 1.0:
        return torch.log(x)
    return (x.pow(1.0 - q) - 1.0) / (1.0 - q)


def tsallis_relative_entropy(
    probs: torch.Tensor, reference_probs: torch.Tensor, q: float
) -> torch.Tensor:
    """D_q(pi || pi_old) = -sum_a pi(a) ln_q(pi_old(a) / pi(a)), per row.

    The mirror-descent proximity term of Eq. 10 with MDPO's Tsallis-q logarithm
    (Table 3: q = 0.2). It is zero iff pi = pi_old, non-negative for q > 0, and
    equals KL(pi || pi_old) at q = 1. Computed exactly over the discrete
    actions rather than from one sampled action.
    """
    tiny = torch.finfo(probs.dtype).tiny
    ratio = reference_probs.clamp_min(tiny) / probs.clamp_min(tiny)
    return -(probs * tsallis_log(ratio, q)).sum(dim=-1)


ATTENTION_LOGIT_PENALTY_SCALE = 1e-3  # MAAC's fixed factor.


def attention_logit_penalty(scaled_logits: torch.Tensor, head_dim: int) -> torch.Tensor:
    """MAAC's regulariser of the critic's attention logits.

    1e-3 * sum over agents i and heads h of the mean, over the batch and the
    other agents j != i, of the raw logit (q_i . k_j)^2, i.e. before the
    division by sqrt(head_dim) (MAAC's AttentionCritic with regularize=True,
    summed over agents in its critic loss).

    Args:
        scaled_logits: (B, heads, n, n) logits q_i . k_j / sqrt(head_dim) with
            zeros on the diagonal (as ``AttentionCritic.attend`` returns them).
        head_dim: Width of one attention head.
    """
    n = scaled_logits.shape[-1]
    raw_squared = scaled_logits.pow(2) * head_dim
    per_agent_and_head = raw_squared.sum(-1).mean(0) / (n - 1)
    return ATTENTION_LOGIT_PENALTY_SCALE * per_agent_and_head.sum()


def critic_targets(
    rewards: torch.Tensor,
    bootstrap: torch.Tensor,
    next_target_probs: Sequence[torch.Tensor],
    next_q: Sequence[torch.Tensor],
    next_log_probs: Optional[Sequence[torch.Tensor]],
    *,
    alpha: float,
    gamma: float,
    entropy_term: str,
    next_alive: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """The soft critic targets y_i of every agent, (B, n).

    Args:
        rewards: (B, n) r_i.
        bootstrap: (B, n) 1 - d per agent (0 where agent i's episode ended).
        next_target_probs: Per agent (B, A_i) pi_bar_i(. | o'_i) (target actor).
        next_q: Per agent (B, A_i) Q_bar_i(o', a'_i, a'_-i) for each own a'_i.
        next_log_probs: Per agent (B, A_i) log pi_i(. | o'_i) (current actor);
            only ``"paper"`` reads it.
        alpha: Entropy temperature 1 / reward_scale.
        gamma: Discount.
        entropy_term: ``"maac"``: y_i = r_i + gamma (1 - d) E_pi_bar[Q_bar_i]
            - alpha E_pi_bar[log pi_bar_i] (MAAC: the target policy's own
            log-probability, outside the discount); ``"paper"``: y_i = r_i +
            gamma (1 - d) E_pi_bar[Q_bar_i - alpha log pi_i] (Eq. 9 as printed).
        next_alive: Optional (B, n) mask; an agent gone at o' has no entropy term.
    """
    if entropy_term == "maac":
        values = torch.stack([(p * q).sum(-1) for p, q in zip(next_target_probs, next_q)], -1)
        tiny = torch.finfo(rewards.dtype).tiny
        target_log_probs = torch.stack(
            [(p * p.clamp_min(tiny).log()).sum(-1) for p in next_target_probs], -1
        )
        if next_alive is not None:
            target_log_probs = target_log_probs * next_alive
        return rewards + gamma * bootstrap * values - alpha * target_log_probs
    if entropy_term == "paper":
        soft_values = torch.stack(
            [(p * (q - alpha * lp)).sum(-1)
             for p, q, lp in zip(next_target_probs, next_q, next_log_probs)],
            -1,
        )
        return rewards + gamma * bootstrap * soft_values
    raise ValueError(f"critic_target_entropy = {entropy_term!r}; allowed: 'maac' | 'paper'")


def counterfactual_baseline(probs: torch.Tensor, q_values: torch.Tensor) -> torch.Tensor:
    """b_i(o, a_-i) = sum_a' pi_i(a'|o_i) Q_i(o, a', a_-i), exact for discrete a_i."""
    return (probs * q_values).sum(dim=-1)


def entropy(probs: torch.Tensor, log_probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy of each row of a categorical distribution."""
    return -(probs * log_probs).sum(dim=-1)
