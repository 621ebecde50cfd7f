"""Opponent models h_phi_i^j: agent i's prediction of agent j's action from o_i (Eq. 6).

One network per agent i maps o_i to logits over every agent's actions (padded
to the largest action space); the slot of j predicts pi_j. They are trained
with cross-entropy on the replayed actions (Table 3: "modeling policy loss
CrossEntropyLoss", L2 logit regularisation 0.001, clip 0.5).
"""

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from rllib_mamt.modules.actor import build_policy_network


class OpponentModels(nn.Module):
    """All n * (n - 1) opponent models, as n networks with an output slot per agent.

    Args:
        observation_sizes: Flat observation size of each agent.
        action_sizes: Number of actions of each agent.
        hidden_sizes: Hidden layers of each network (the actor's architecture).
    """

    def __init__(self, observation_sizes: Sequence[int], action_sizes: Sequence[int], hidden_sizes):
        super().__init__()
        self.num_agents = len(observation_sizes)
        self.max_actions = max(action_sizes)
        self.networks = nn.ModuleList(
            build_policy_network(size, self.num_agents * self.max_actions, hidden_sizes)
            for size in observation_sizes
        )
        valid = torch.zeros(self.num_agents, self.max_actions, dtype=torch.bool)
        for j, size in enumerate(action_sizes):
            valid[j, :size] = True
        self.register_buffer("valid_actions", valid, persistent=False)

    def forward(self, observations: Sequence[torch.Tensor]) -> torch.Tensor:
        """(B, n_i, n_j, A_max) logits of h_phi_i^j(. | o_i); padded actions at -1e9."""
        logits = torch.stack(
            [
                net(obs).reshape(obs.shape[0], self.num_agents, self.max_actions)
                for net, obs in zip(self.networks, observations)
            ],
            dim=1,
        )
        return logits.masked_fill(~self.valid_actions, -1e9)

    def cross_entropy(self, logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of predicting each other agent's replayed action.

        Args:
            logits: Output of :meth:`forward`, (B, n, n, A).
            actions: (B, n) replayed joint actions.
        """
        batch, n = actions.shape
        targets = actions.unsqueeze(1).expand(batch, n, n)
        losses = F.cross_entropy(
            logits.reshape(-1, self.max_actions), targets.reshape(-1), reduction="none"
        ).reshape(batch, n, n)
        off_diagonal = 1.0 - torch.eye(n, device=actions.device)
        return (losses * off_diagonal).sum() / (batch * n * (n - 1))
