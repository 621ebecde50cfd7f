"""Pure tensor functions of LOLA(+DQN): the joint-action value, the TD target
and LOLA's lookahead gradient (Foerster et al., 2018a).

They take plain tensors and callables, so the learner applies them to learned
Q-matrices and the tests apply them to exact matrix-game payoffs.
"""

from typing import Callable, List, Sequence, Tuple

import torch

# ``value_of(agent_index, (params_0, params_1)) -> scalar V_agent``: an agent's
# value as a differentiable function of both agents' policy parameters.
ValueFunction = Callable[[int, Tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]]], torch.Tensor]


def joint_action_values(probs_0: torch.Tensor, q_matrix: torch.Tensor,
                        probs_1: torch.Tensor) -> torch.Tensor:
    """(B,) pi_0(.|o)^T Q(o) pi_1(.|o) from (B, A_0) and (B, A_1) action
    probabilities and a (B, A_0, A_1) Q-matrix (or payoff matrix)."""
    return torch.einsum("ba,bac,bc->b", probs_0, q_matrix, probs_1)


def expected_td_targets(rewards: torch.Tensor, bootstrap: torch.Tensor,
                        next_probs_0: torch.Tensor, next_target_q: torch.Tensor,
                        next_probs_1: torch.Tensor, gamma: float) -> torch.Tensor:
    """(B,) y = r + gamma * bootstrap * pi_0(o')^T Q'(o') pi_1(o').

    ``next_target_q`` is the target network's (B, A_0, A_1) matrix at o';
    ``bootstrap`` is 1 - d (times the agent's alive mask at o')."""
    next_value = joint_action_values(next_probs_0, next_target_q, next_probs_1)
    return rewards + gamma * bootstrap * next_value


def lola_gradients(value_of: ValueFunction,
                   parameters: Tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]],
                   lookahead_lr: float) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
    """Each agent's LOLA gradient, the ascent direction of its own value after
    the other agent's anticipated naive step, differentiated through that step.

    For agent i and opponent j:
        delta_j = lookahead_lr * grad_{theta_j} V_j(theta_i, theta_j)
        g_i     = grad_{theta_i} [ V_i(theta_i, theta_j + delta_j) ]
    where delta_j is kept in the autograd graph, so g_i contains the
    second-order (shaping) term (d delta_j / d theta_i)^T grad_{theta_j} V_i.
    With ``lookahead_lr = 0`` both are the naive gradients grad_{theta_i} V_i.
    Both agents' gradients are taken at the same (theta_0, theta_1)
    (simultaneous updates).

    Args:
        value_of: ``value_of(i, (params_0, params_1))``: V_i as a scalar tensor.
        parameters: The two agents' parameter lists (tensors requiring grad).
        lookahead_lr: eta, the step size of the anticipated opponent step.

    Returns:
        ``(gradients of agent 0, gradients of agent 1)``, one tensor per
        parameter (ascent directions; negate them for a minimising optimiser).
    """
    gradients = []
    for i in (0, 1):
        j = 1 - i
        looked_ahead = list(parameters)
        if lookahead_lr:
            opponent_gradient = torch.autograd.grad(
                value_of(j, parameters), list(parameters[j]), create_graph=True,
                allow_unused=True,
            )
            looked_ahead[j] = [
                p if g is None else p + lookahead_lr * g
                for p, g in zip(parameters[j], opponent_gradient)
            ]
        own = torch.autograd.grad(
            value_of(i, tuple(looked_ahead)), list(parameters[i]), allow_unused=True
        )
        gradients.append([
            torch.zeros_like(p) if g is None else g for p, g in zip(parameters[i], own)
        ])
    return gradients[0], gradients[1]

