"""The decentralized actor pi_psi_i(a_i | o_i) of each agent (paper §3.2).

Each agent's actor is its own RLlib ``RLModule`` that sees only that agent's
observation, so it runs unchanged on EnvRunners, on learners and (as target and
m-update-old copies) inside the learner-only central module.
"""

from typing import Sequence

import gymnasium as gym
import torch
from torch import nn

from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.torch import TorchRLModule

DEFAULT_ACTOR_HIDDEN_SIZES = (128, 128)


def build_policy_network(
    observation_size: int, num_actions: int, hidden_sizes: Sequence[int]
) -> nn.Sequential:
    """MLP from a flat observation to action logits (LeakyReLU, as MAAC's actor)."""
    layers = []
    previous = observation_size
    for size in hidden_sizes:
        layers += [nn.Linear(previous, size), nn.LeakyReLU()]
        previous = size
    layers.append(nn.Linear(previous, num_actions))
    return nn.Sequential(*layers)


def flatten_observations(observations: torch.Tensor) -> torch.Tensor:
    """(B, ...) observations as a (B, obs_size) float tensor."""
    return observations.reshape(observations.shape[0], -1).float()


def pad_logits(logits: torch.Tensor, num_actions: int) -> torch.Tensor:
    """Pads (..., A_i) logits to (..., num_actions) with a very negative value,
    so padded actions get probability 0 (agents may have different |A_i|)."""
    missing = num_actions - logits.shape[-1]
    if missing == 0:
        return logits
    return torch.nn.functional.pad(logits, (0, missing), value=-1e9)


def flat_size(space: gym.Space) -> int:
    """Number of floats in a flattened observation of ``space``."""
    return int(gym.spaces.utils.flatdim(space))


def require_discrete(agent_id, space: gym.Space) -> int:
    """Returns the number of actions of a Discrete space, or raises a clear error."""
    if not isinstance(space, gym.spaces.Discrete):
        raise ValueError(
            f"Agent '{agent_id}' has action space {space}; MAMT (discrete "
            "counterfactual baseline, Eq. 10) supports only gymnasium.spaces."
            "Discrete action spaces for now."
        )
    return int(space.n)


class MAMTActorModule(TorchRLModule):
    """Categorical policy over one agent's discrete actions from its own observation.

    ``model_config`` keys:
        actor_hidden_sizes: Hidden layer sizes (default (128, 128), MAAC's actor).
    """

    def setup(self):
        hidden_sizes = self.model_config.get(
            "actor_hidden_sizes", DEFAULT_ACTOR_HIDDEN_SIZES
        )
        num_actions = require_discrete("this module", self.action_space)
        self.policy_network = build_policy_network(
            flat_size(self.observation_space), num_actions, hidden_sizes
        )

    def action_logits(self, observations: torch.Tensor) -> torch.Tensor:
        """Logits of pi_i(. | o_i) for a batch of observations."""
        return self.policy_network(flatten_observations(observations))

    def _forward(self, batch, **kwargs):
        return {Columns.ACTION_DIST_INPUTS: self.action_logits(batch[Columns.OBS])}
