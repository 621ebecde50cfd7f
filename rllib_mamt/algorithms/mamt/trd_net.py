"""The trust-region decomposition network (TRD-Net) of Fig. 1 and Eq. 7.

Input layer: each agent encodes (o_i, a_i) with its own encoder and its trust
region with a shared encoder of log delta_i (delta spans 0.01 to 100, so its
logarithm is the well-scaled input), and merges both into an embedding h_i^0.
GNN layers: dense, batched message passing over the weighted graph given by
the coordination coefficients, h^(l+1)_i = act(W_s h^l_i + sum_j A_ij W_m h^l_j)
with A = (C + C^T) / 2 (the paper's graph is undirected, Eq. 5's C is not).
Prediction layer: the KL-encoder maps [h_i^0, h_i^L] (the agent's own
embedding and the one carrying its neighbours' messages) to KL_hat_i >= 0.
"""

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class TrustRegionDecompositionNet(nn.Module):
    """Predicts each agent's share KL_hat_i of the joint policy divergence.

    Args:
        observation_sizes: Flat observation size of each agent.
        action_sizes: Number of actions of each agent.
        hidden_dim: Width of every embedding.
        num_layers: Number of message-passing layers (any number >= 0).
    """

    def __init__(self, observation_sizes: Sequence[int], action_sizes: Sequence[int],
                 hidden_dim: int = 64, num_layers: int = 2):
        super().__init__()
        self.action_sizes = list(action_sizes)
        self.input_encoders = nn.ModuleList(
            nn.Sequential(nn.Linear(size + actions, hidden_dim), nn.LeakyReLU())
            for size, actions in zip(observation_sizes, action_sizes)
        )
        self.delta_encoder = nn.Sequential(nn.Linear(1, hidden_dim), nn.LeakyReLU())
        self.input_layer = nn.Sequential(nn.Linear(2 * hidden_dim, hidden_dim), nn.LeakyReLU())
        self.self_transforms = nn.ModuleList(nn.Linear(hidden_dim, hidden_dim) for _ in range(num_layers))
        self.message_transforms = nn.ModuleList(
            nn.Linear(hidden_dim, hidden_dim, bias=False) for _ in range(num_layers)
        )
        self.kl_encoder = nn.Sequential(
            nn.Linear(2 * hidden_dim, hidden_dim), nn.LeakyReLU(), nn.Linear(hidden_dim, 1)
        )

    def forward(self, observations: Sequence[torch.Tensor], actions: torch.Tensor,
                log_deltas: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
        """KL_hat_i for every sample and agent.

        Args:
            observations: One (B, obs_i) tensor per agent.
            actions: (B, n) joint actions.
            log_deltas: (n,) log delta_i (shared by the batch) or (B, n).
            coefficients: (B, n, n) coordination coefficients C.

        Returns:
            (B, n) non-negative predictions KL_hat_i.
        """
        batch = actions.shape[0]
        agent_embeddings = torch.stack(
            [
                encoder(torch.cat([obs, F.one_hot(actions[:, k], size).float()], -1))
                for k, (encoder, obs, size) in enumerate(
                    zip(self.input_encoders, observations, self.action_sizes)
                )
            ],
            dim=1,
        )
        delta_inputs = log_deltas.expand(batch, -1).unsqueeze(-1)
        initial = self.input_layer(
            torch.cat([agent_embeddings, self.delta_encoder(delta_inputs)], -1)
        )
        adjacency = 0.5 * (coefficients + coefficients.transpose(-1, -2))
        hidden = initial
        for self_transform, message_transform in zip(self.self_transforms, self.message_transforms):
            hidden = F.leaky_relu(self_transform(hidden) + adjacency @ message_transform(hidden))
        return F.softplus(self.kl_encoder(torch.cat([initial, hidden], -1))).squeeze(-1)
