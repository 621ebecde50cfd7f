"""A deterministic actor mu_i(o_i) for one agent's continuous (Box) actions.

The network is the project's actor MLP (:class:`MAMTActorModule`, its input
normalisation included) with one output per action dimension; the action is
``tanh`` of that output, mapped affinely from [-1, 1] onto the Box's bounds.
As in the MADDPG reference code (maddpg-pytorch), the last layer's weights
start uniform in [-3e-3, 3e-3] so that tanh does not saturate at the start.
Exploration noise is added by the sampler
(:class:`rllib_mamt.stacked_actors.StackedActors`), not by this module.
"""

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ray.rllib.core.columns import Columns

from rllib_mamt.modules.actor import MAMTActorModule, flat_size

# The reference code's initial range of the output layer's weights.
OUTPUT_WEIGHT_INIT_RANGE = 3e-3


def require_bounded_box(agent_id, space: gym.Space) -> int:
    """The flat action size of a Box with finite bounds and a float dtype, or
    a one-line error naming the agent and its space."""
    if not (
        isinstance(space, gym.spaces.Box)
        and np.issubdtype(space.dtype, np.floating)
        and np.isfinite(space.low).all()
        and np.isfinite(space.high).all()
    ):
        raise ValueError(
            f"Agent '{agent_id}' has action space {space}; allowed for a "
            "deterministic tanh actor: a float gymnasium.spaces.Box with finite "
            "low and high."
        )
    return flat_size(space)


def box_scale(space: gym.spaces.Box):
    """(center, half_range) float32 flat arrays: action = center + half_range * u
    for u in [-1, 1]."""
    low = np.asarray(space.low, np.float32).reshape(-1)
    high = np.asarray(space.high, np.float32).reshape(-1)
    return (high + low) / 2.0, (high - low) / 2.0


class DeterministicActorModule(MAMTActorModule):
    """Deterministic tanh policy over one agent's Box actions.

    ``model_config`` keys are :class:`MAMTActorModule`'s. The forward pass
    returns the pre-tanh outputs under ``Columns.ACTION_DIST_INPUTS`` (the
    sampler squashes, adds noise and scales them);
    :meth:`squashed_actions` gives tanh of them in [-1, 1] (what the
    critics see) and :meth:`bounded_actions` the actions in the Box's units.
    """

    STACKABLE_FORWARD = True

    def setup(self):
        action_size = require_bounded_box("this module", self.action_space)
        self.build_networks(action_size)
        nn.init.uniform_(
            self.policy_network[-1].weight, -OUTPUT_WEIGHT_INIT_RANGE, OUTPUT_WEIGHT_INIT_RANGE
        )
        center, half_range = box_scale(self.action_space)
        self.register_buffer("action_center", torch.from_numpy(center), persistent=False)
        self.register_buffer("action_half_range", torch.from_numpy(half_range),
                             persistent=False)
        self.eval()

    def squashed_actions(self, observations: torch.Tensor) -> torch.Tensor:
        """tanh(mu_i(o_i)) in [-1, 1]^d, the actions as the critics see them."""
        return torch.tanh(self.action_logits(observations))

    def bounded_actions(self, observations: torch.Tensor) -> torch.Tensor:
        """The noise-free actions in the Box's own units (within its bounds)."""
        return self.action_center + self.action_half_range * self.squashed_actions(
            observations
        )

    def _forward(self, batch, **kwargs):
        return {Columns.ACTION_DIST_INPUTS: self.action_logits(batch[Columns.OBS])}
