"""Pure tensor functions of MAMT-PPO's update.

* :func:`kl_to_sampling_policy`: each agent's D_j = E_o KL[pi_j_old(.|o) || pi_j(.|o)],
  the divergence of PPO's KL-penalty objective (Schulman et al., 2017, §4) and
  the D of the one-step hypergradients (:mod:`rllib_mamt.algorithms.mamt.delta_allocation`);
* :func:`kl_penalties`: D_j / delta_j, the penalty with beta_j = 1 / delta_j;
* :func:`q_critic_loss`: the attention Q critic regressed on the lambda-returns.
"""

from typing import List, Optional, Sequence

import torch

from rllib_mamt.algorithms.mappo.losses import huber_value_loss, masked_column_mean
from rllib_mamt.algorithms.mamt.coordination import categorical_kl
from rllib_mamt.algorithms.mamt.losses import attention_logit_penalty


def kl_to_sampling_policy(old_log_probs: Sequence[torch.Tensor],
                          log_probs: Sequence[torch.Tensor],
                          mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(n,) D_j = mean over rows of KL[pi_j_old(.|o_j) || pi_j(.|o_j)], exact
    over each agent's actions.

    Args:
        old_log_probs: Per agent (B, |A_j|) log pi_j_old(.|o_j) of the policy
            that sampled the batch.
        log_probs: Per agent (B, |A_j|) log pi_j(.|o_j) now (with its graph).
        mask: Optional (B, n) alive mask: rows with 0 do not count.
    """
    divergences = torch.stack(
        [categorical_kl(old, new) for old, new in zip(old_log_probs, log_probs)], dim=-1
    )
    return masked_column_mean(divergences, mask)


def kl_penalties(divergences: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """(n,) D_j / delta_j: PPO's KL penalty beta_j D_j with beta_j = 1 / delta_j,
    delta detached (delta's own gradient is the hypergradient, not D_j / delta_j^2)."""
    return divergences / deltas.detach()


def q_critic_loss(q_critic, observations: List[torch.Tensor], actions: torch.Tensor,
                  targets: torch.Tensor, huber_delta: float, regularization: float,
                  alive: Optional[torch.Tensor] = None):
    """(loss, (n,) per-agent Huber losses) of Q_i(o, a) on the taken joint
    actions against the lambda-return targets, averaged over agents, plus
    ``regularization`` times MAAC's attention-logit penalty.

    The lambda-return G_t = A_t + V(o_t) (GAE's value target) estimates the
    return after the taken joint action a_t, i.e. Q^pi(o_t, a_t): the
    on-policy TD(lambda) target of COMA's counterfactual critic (Foerster et
    al., 2018), with no target network."""
    q_values, attention_logits = q_critic(observations, actions, alive)
    taken = torch.stack(
        [q.gather(-1, actions[:, k : k + 1]).squeeze(-1) for k, q in enumerate(q_values)],
        dim=-1,
    )
    per_agent = huber_value_loss(taken, targets, huber_delta, alive)
    penalty = regularization * attention_logit_penalty(attention_logits, q_critic.head_dim)
    return per_agent.mean() + penalty, per_agent
