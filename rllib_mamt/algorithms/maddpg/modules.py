"""MADDPG's learner-only module: the centralised critics and all target networks.

The actors are the project's per-agent :class:`~rllib_mamt.modules.actor.MAMTActorModule`
(an MLP from o_i to action logits) with ReLU hidden layers, so EnvRunners run
them through the JointEnvRunner's batched path unchanged.
"""

from typing import List, Sequence

import torch
from torch import nn

from ray.rllib.core.rl_module.torch import TorchRLModule

from rllib_mamt.modules.actor import (
    build_input_normalization,
    build_policy_network,
    flat_size,
    require_discrete,
)

# The reference code's actors and critics use ReLU hidden layers.
MADDPG_ACTOR_NEGATIVE_SLOPE = 0.0
DEFAULT_HIDDEN_SIZES = (64, 64)


class CentralizedCritic(nn.Module):
    """Q_i(o_1..o_n, a_1..a_n): an MLP on all observations and one-hot actions.

    Args:
        input_size: sum_j |o_j| + sum_j |A_j|.
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
        (one-hot or straight-through) actions."""
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
        self.action_sizes = [
            require_discrete(agent, self.action_space[agent]) for agent in self.agent_ids
        ]
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

    @torch.no_grad()
    def copy_normalization_statistics_(self) -> None:
        """Gives each target critic its online critic's input statistics."""
        for target, critic in zip(self.target_critics, self.critics):
            target.input_normalization.load_state_dict(
                critic.input_normalization.state_dict()
            )

    def _forward(self, batch, **kwargs):
        return {}
