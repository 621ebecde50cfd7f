"""MADDPG's learner-only module: the centralised critics and all target networks.

The actors are the project's per-agent :class:`~rllib_mamt.modules.actor.MAMTActorModule`
(an MLP from o_i to action logits; discrete actions) or
:class:`~rllib_mamt.modules.deterministic_actor.DeterministicActorModule`
(the same MLP, tanh-squashed onto a Box's bounds; continuous actions) with
ReLU hidden layers, so EnvRunners run them through the JointEnvRunner's
batched path unchanged. The critics see discrete actions as one-hot vectors
and Box actions as tanh-space vectors in [-1, 1] (replayed actions are mapped
back from the Box's bounds).
"""

from typing import List, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ray.rllib.core.rl_module.torch import TorchRLModule

from rllib_mamt.algorithms.maddpg.losses import one_hot_argmax
from rllib_mamt.modules.actor import (
    build_input_normalization,
    build_policy_network,
    flat_size,
)
from rllib_mamt.modules.deterministic_actor import box_scale

# The reference code's actors and critics use ReLU hidden layers.
MADDPG_ACTOR_NEGATIVE_SLOPE = 0.0
DEFAULT_HIDDEN_SIZES = (64, 64)


class CentralizedCritic(nn.Module):
    """Q_i(o_1..o_n, a_1..a_n): an MLP on all observations and actions
    (one-hot for discrete actions, tanh-space vectors for Box actions).

    Args:
        input_size: sum_j |o_j| + sum_j |A_j| (|A_j|: number of discrete
            actions, or the Box's flat size).
        hidden_sizes: Hidden layer widths (ReLU).
        input_normalization: Whether the concatenated input passes through
            :class:`~rllib_mamt.modules.actor.InputNormalization` first.
    """

    def __init__(self, input_size: int, hidden_sizes: Sequence[int],
                 input_normalization: bool):
        super().__init__()
        self.input_normalization = build_input_normalization(input_size, input_normalization)
        layers, previous = [], input_size
        for size in hidden_sizes:
            layers += [nn.Linear(previous, size), nn.ReLU()]
            previous = size
        layers.append(nn.Linear(previous, 1))
        self.network = nn.Sequential(*layers)

    def forward(self, observations: List[torch.Tensor],
                actions: List[torch.Tensor]) -> torch.Tensor:
        """(B,) Q-values from per-agent (B, |o_j|) observations and (B, |A_j|)
        actions (one-hot or straight-through; or tanh-space Box vectors)."""
        inputs = torch.cat(list(observations) + list(actions), dim=-1)
        return self.network(self.input_normalization(inputs)).squeeze(-1)


class MADDPGCentralModule(TorchRLModule):
    """Every agent's critic Q_i, target critic Q'_i and target actor mu'_i.

    ``observation_space`` / ``action_space`` are ``gymnasium.spaces.Dict`` keyed
    by agent id. ``model_config`` keys:
        agent_ids: Agent ids in the order of every tensor (sorted).
        actor_hidden_sizes: Must match the actors' (for the target copies).
        critic_hidden_sizes: Hidden widths of each critic (default (64, 64)).
        input_normalization: Whether critics normalise their input (as
            MAMT's central module: the target critic uses the online critic's
            running statistics, copied at every soft update; the target actors
            are plain MLPs applied to the online actor's normalised o').

    Its RLModuleSpec is ``learner_only=True``; the target networks and the
    update counter are part of every checkpoint.
    """

    def setup(self):
        config = self.model_config
        self.agent_ids = list(config["agent_ids"])
        observation_sizes = [flat_size(self.observation_space[a]) for a in self.agent_ids]
        spaces = [self.action_space[agent] for agent in self.agent_ids]
        self.continuous = isinstance(spaces[0], gym.spaces.Box)
        self.action_sizes = [
            flat_size(space) if self.continuous else int(space.n) for space in spaces
        ]
        if self.continuous:
            width = max(self.action_sizes)
            centers = np.zeros((len(spaces), width), np.float32)
            half_ranges = np.ones((len(spaces), width), np.float32)
            for k, space in enumerate(spaces):
                centers[k, : self.action_sizes[k]], half_ranges[k, : self.action_sizes[k]] = (
                    box_scale(space)
                )
            self.register_buffer("action_centers", torch.from_numpy(centers),
                                 persistent=False)
            self.register_buffer("action_half_ranges", torch.from_numpy(half_ranges),
                                 persistent=False)
        critic_input = sum(observation_sizes) + sum(self.action_sizes)
        critic_hidden = config.get("critic_hidden_sizes", DEFAULT_HIDDEN_SIZES)
        actor_hidden = config.get("actor_hidden_sizes", DEFAULT_HIDDEN_SIZES)
        normalize = bool(config.get("input_normalization", False))

        def make_critics():
            return nn.ModuleList(
                CentralizedCritic(critic_input, critic_hidden, normalize)
                for _ in self.agent_ids
            )

        self.critics = make_critics()
        self.target_critics = make_critics()
        self.target_critics.load_state_dict(self.critics.state_dict())
        self.target_actors = nn.ModuleList(
            build_policy_network(size, actions, actor_hidden, MADDPG_ACTOR_NEGATIVE_SLOPE)
            for size, actions in zip(observation_sizes, self.action_sizes)
        )
        for frozen in (self.target_critics, self.target_actors):
            frozen.requires_grad_(False)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self.eval()  # the learner switches to train mode for its update only

    def policy_actions(self, outputs: torch.Tensor) -> torch.Tensor:
        """A deterministic policy's action as the critics see it, from its
        network outputs: the one-hot arg-max (discrete) or tanh (Box)."""
        return torch.tanh(outputs) if self.continuous else one_hot_argmax(outputs)

    def replayed_actions(self, actions: torch.Tensor) -> List[torch.Tensor]:
        """Per agent, the buffer's actions as the critics see them: one-hot
        vectors of (B, n) indices, or (B, n, width) Box actions mapped from
        the Box's bounds to [-1, 1] (unpadded)."""
        if not self.continuous:
            return [
                F.one_hot(actions[:, j].long(), size).float()
                for j, size in enumerate(self.action_sizes)
            ]
        squashed = (actions.float() - self.action_centers) / self.action_half_ranges.clamp_min(
            torch.finfo(torch.float32).tiny
        )
        return [squashed[:, j, :size] for j, size in enumerate(self.action_sizes)]

    @torch.no_grad()
    def copy_normalization_statistics_(self) -> None:
        """Gives each target critic its online critic's input statistics."""
        for target, critic in zip(self.target_critics, self.critics):
            target.input_normalization.load_state_dict(
                critic.input_normalization.state_dict()
            )

    def _forward(self, batch, **kwargs):
        return {}
