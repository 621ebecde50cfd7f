"""All agents' decentralized actors evaluated in one batched pass per step.

Each agent i keeps its own actor pi_psi_i(a_i | o_i) (paper §3.2) and sees only
its own observation; what is shared is the arithmetic. Agents whose actors have
the same shape (observation size, hidden sizes, number of actions) form a group,
and the group's weights are stacked into ``(G, in, out)`` tensors so one batched
matrix product per layer (``torch.baddbmm``) computes every agent's logits for
every vectorised env at once, instead of one RLModule call per agent. An
actor's observation normalisation (MAAC's
:class:`~rllib_mamt.modules.actor.InputNormalization` with its running
statistics, as the actor's eval-mode forward uses them, or MAPPO's
``LayerNorm``) is applied with that agent's own statistics or affine
parameters, stacked into ``(G, 1, obs_size)`` tensors
(:mod:`rllib_mamt.stacked_normalization`) and re-read with the weights at
every refresh.

An actor is stacked when its class declares ``STACKABLE_FORWARD`` (see
:func:`~rllib_mamt.modules.actor.has_stackable_forward`), its network is a
plain LeakyReLU MLP and its normalisation is one of those kinds. Other actors
(a user's own actor class) are evaluated one agent at a time through their
RLModule forward pass.

Box action spaces (deterministic tanh actors,
:class:`~rllib_mamt.modules.deterministic_actor.DeterministicActorModule`)
give float action vectors: ``tanh`` of the network's outputs, plus Gaussian
exploration noise when exploring, clipped to [-1, 1] and mapped onto the Box's
bounds (see :meth:`StackedActors.actions`). Gaussian actors
(:class:`~rllib_mamt.modules.gaussian_actor.GaussianActorModule`, MA-PPO's)
give a ~ N(mean_i(o_i), std_i^2) when exploring and the mean otherwise,
unclipped: the EnvRunner clips only the copy it hands to the env. Their
stacked outputs are the mean and the stacked learned log-std, the layout of
their own forward pass.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from ray.rllib.core.columns import Columns

from rllib_mamt.modules.actor import flat_size, has_stackable_forward
from rllib_mamt.modules.deterministic_actor import box_scale
from rllib_mamt.modules.gaussian_actor import GaussianActorModule
from rllib_mamt.stacked_normalization import (
    StackedNormalization,
    normalization_signature,
    stack_normalizations,
)


def _plain_mlp_layers(actor) -> Optional[Tuple[List[nn.Linear], float]]:
    """The Linear layers and LeakyReLU slope of a stackable actor, else None."""
    if not has_stackable_forward(actor) or normalization_signature(
        actor.observation_normalization
    ) is None:
        return None
    layers = list(actor.policy_network)
    linears = layers[0::2]
    activations = layers[1::2]
    if not linears or not all(isinstance(layer, nn.Linear) for layer in linears):
        return None
    if len(activations) != len(linears) - 1 or not all(
        isinstance(layer, nn.LeakyReLU) for layer in activations
    ):
        return None
    slopes = {layer.negative_slope for layer in activations}
    if len(slopes) > 1:
        return None
    return linears, (slopes.pop() if slopes else 0.0)


class ActorGroup:
    """Agents whose actors share one shape, evaluated together.

    Attributes:
        agent_indices: Positions (in the sorted agent order) of this group's agents.
        observations: ``(G, num_envs, obs_size)`` float32 array the sampler fills
            with each agent's current observation before :meth:`logits`.
    """

    def __init__(self, agent_ids: Sequence[str], agent_indices: Sequence[int],
                 actors: Sequence, observation_size: int, num_envs: int,
                 stacked: bool):
        self.agent_ids = list(agent_ids)
        self.agent_indices = list(agent_indices)
        self.actors = list(actors)
        self.stacked = stacked
        self.observations = np.zeros(
            (len(self.agent_ids), num_envs, observation_size), np.float32
        )
        self._weights: List[torch.Tensor] = []
        self._biases: List[torch.Tensor] = []
        self._negative_slope = 0.0
        self._normalization: Optional[StackedNormalization] = None
        self._log_std: Optional[torch.Tensor] = None
        spaces = [actor.action_space for actor in self.actors]
        self.continuous = isinstance(spaces[0], gym.spaces.Box)
        self.gaussian = isinstance(self.actors[0], GaussianActorModule)
        if self.continuous:
            self.action_size = flat_size(spaces[0])
            scales = [box_scale(space) for space in spaces]
            self.action_center = torch.from_numpy(np.stack([c for c, _ in scales])[:, None])
            self.action_half_range = torch.from_numpy(
                np.stack([h for _, h in scales])[:, None]
            )
            self.action_low = torch.from_numpy(np.stack(
                [np.asarray(space.low, np.float32).reshape(-1) for space in spaces]
            )[:, None])
            self.action_high = torch.from_numpy(np.stack(
                [np.asarray(space.high, np.float32).reshape(-1) for space in spaces]
            )[:, None])

    def bounded_actions(self, logits: torch.Tensor, noise_std: float,
                        generator: Optional[torch.Generator]) -> torch.Tensor:
        """``(G, num_envs, action_size)`` Box actions from the actors' outputs:
        center + half_range * clip(tanh(logits) + noise_std * N(0, 1), -1, 1),
        clipped to [low, high] against rounding (no noise if noise_std is 0)."""
        squashed = torch.tanh(logits)
        if noise_std:
            noise = torch.randn(logits.shape, generator=generator, device="cpu")
            squashed = (squashed + noise_std * noise.to(logits.device)).clamp(-1.0, 1.0)
        device = logits.device
        actions = self.action_center.to(device) + self.action_half_range.to(device) * squashed
        return torch.maximum(torch.minimum(actions, self.action_high.to(device)),
                             self.action_low.to(device))

    def gaussian_actions(self, distribution_inputs: torch.Tensor, explore: bool,
                         generator: Optional[torch.Generator]) -> torch.Tensor:
        """``(G, num_envs, action_size)`` Gaussian actions from the actors'
        (mean, log-std) outputs: mean + exp(log_std) * N(0, 1) when exploring
        (drawn from ``generator``), else the mean; not clipped."""
        mean, log_std = distribution_inputs.chunk(2, dim=-1)
        if not explore:
            return mean
        noise = torch.randn(mean.shape, generator=generator, device="cpu")
        return mean + log_std.exp() * noise.to(mean.device)

    def refresh(self) -> None:
        """Re-stacks the actors' current weights and input statistics (after a
        weight sync)."""
        if not self.stacked:
            return
        per_actor = [_plain_mlp_layers(actor) for actor in self.actors]
        self._negative_slope = per_actor[0][1]
        depth = len(per_actor[0][0])
        with torch.no_grad():
            self._normalization = stack_normalizations(
                [actor.observation_normalization for actor in self.actors]
            )
            if self.gaussian:
                self._log_std = torch.stack(
                    [actor.log_std for actor in self.actors]
                ).unsqueeze(1)
            self._weights = [
                torch.stack([layers[k].weight.t() for layers, _ in per_actor]).contiguous()
                for k in range(depth)
            ]
            self._biases = [
                torch.stack([layers[k].bias for layers, _ in per_actor]).unsqueeze(1)
                for k in range(depth)
            ]

    def logits(self, device: torch.device, explore: bool) -> torch.Tensor:
        """``(G, num_envs, width)`` outputs of the actors' forward passes on
        :attr:`observations`: action logits, pre-tanh actions, or (Gaussian
        actors) the mean and log-std concatenated."""
        inputs = torch.from_numpy(self.observations).to(device)
        with torch.inference_mode():
            if self.stacked:
                hidden = inputs
                if self._normalization is not None:
                    hidden = self._normalization(hidden)
                last = len(self._weights) - 1
                for k, (weight, bias) in enumerate(zip(self._weights, self._biases)):
                    hidden = torch.baddbmm(bias, hidden, weight)
                    if k < last:
                        hidden = torch.nn.functional.leaky_relu(
                            hidden, self._negative_slope
                        )
                if self._log_std is not None:
                    hidden = torch.cat([hidden, self._log_std.expand_as(hidden)], -1)
                return hidden
            outputs = []
            for slot, actor in enumerate(self.actors):
                batch = {Columns.OBS: inputs[slot]}
                forward = actor.forward_exploration if explore else actor.forward_inference
                outputs.append(forward(batch)[Columns.ACTION_DIST_INPUTS])
            return torch.stack(outputs)


class StackedActors:
    """Every agent's actor from an EnvRunner's MultiRLModule, grouped by shape.

    Args:
        module: The EnvRunner's MultiRLModule (one actor module per agent).
        agent_ids: Agent ids in MAMT's sorted order (= module ids).
        observation_spaces: Observation space per agent id.
        num_envs: Number of vectorised envs stepped together.
        exploration_noise_std: Standard deviation of the Gaussian noise added
            to tanh-squashed Box actions when exploring (in units of the Box's
            half range); needed only if some actor has a Box action space.
    """

    def __init__(self, module, agent_ids: Sequence[str],
                 observation_spaces: Dict, num_envs: int,
                 exploration_noise_std: Optional[float] = None):
        self.agent_ids = list(agent_ids)
        self.exploration_noise_std = exploration_noise_std
        keyed: Dict[tuple, List[int]] = {}
        for index, agent in enumerate(self.agent_ids):
            actor = module[agent]
            mlp = _plain_mlp_layers(actor)
            if mlp is None:
                key = ("own forward", agent)
            else:
                key = ("stacked",) + tuple(
                    (layer.in_features, layer.out_features) for layer in mlp[0]
                ) + (mlp[1], normalization_signature(actor.observation_normalization),
                     type(actor))
            keyed.setdefault(key, []).append(index)
        self.groups: List[ActorGroup] = []
        for key, indices in keyed.items():
            agents = [self.agent_ids[i] for i in indices]
            self.groups.append(
                ActorGroup(
                    agents,
                    indices,
                    [module[a] for a in agents],
                    flat_size(observation_spaces[agents[0]]),
                    num_envs,
                    stacked=key[0] == "stacked",
                )
            )
        kinds = {group.continuous for group in self.groups}
        if len(kinds) > 1:
            raise ValueError(
                f"StackedActors: agents {self.agent_ids} mix Box and discrete action "
                "spaces; allowed: all Box or all discrete (one joint action column)."
            )
        self.continuous = kinds.pop()
        deterministic = any(group.continuous and not group.gaussian for group in self.groups)
        if deterministic and exploration_noise_std is None:
            raise ValueError(
                "StackedActors: 'exploration_noise_std' = None is invalid with "
                "deterministic Box actors; allowed: a float >= 0 (the config's "
                "exploration noise)."
            )
        self.action_width = max(
            (group.action_size for group in self.groups), default=0
        ) if self.continuous else 0
        self.refresh()

    def refresh(self) -> None:
        """Re-reads every actor's weights."""
        for group in self.groups:
            group.refresh()

    def observation_slot(self, agent_index: int) -> Tuple[ActorGroup, int]:
        """The group holding an agent and the agent's slot in it."""
        for group in self.groups:
            if agent_index in group.agent_indices:
                return group, group.agent_indices.index(agent_index)
        raise KeyError(agent_index)

    def actions(self, device: torch.device, explore: bool,
                generator: Optional[torch.Generator]) -> np.ndarray:
        """Actions for the current observations.

        Discrete: ``(num_agents, num_envs)`` int64 indices. Exploration samples
        a_i ~ Categorical(softmax(logits)) by the Gumbel-max trick; inference
        takes the arg-max (the deterministic policy).

        Box: ``(num_agents, num_envs, action_width)`` float32 vectors (shorter
        actions zero-padded). Deterministic actors: center + half_range *
        clip(tanh(mu_i(o_i)) + eps, -1, 1) with eps ~ N(0,
        exploration_noise_std^2) per dimension when exploring and eps = 0 in
        inference. Gaussian actors: a sample of N(mean_i(o_i), std_i^2) when
        exploring, the mean in inference, not clipped to the Box.
        """
        num_envs = self.groups[0].observations.shape[1]
        if self.continuous:
            actions = np.zeros((len(self.agent_ids), num_envs, self.action_width),
                               np.float32)
            noise_std = self.exploration_noise_std if explore else 0.0
            for group in self.groups:
                outputs = group.logits(device, explore)
                if group.gaussian:
                    chosen = group.gaussian_actions(outputs, explore, generator)
                else:
                    chosen = group.bounded_actions(outputs, noise_std, generator)
                actions[group.agent_indices, :, : group.action_size] = chosen.cpu().numpy()
            return actions
        actions = np.empty((len(self.agent_ids), num_envs), np.int64)
        for group in self.groups:
            logits = group.logits(device, explore)
            if explore:
                uniform = torch.rand(
                    logits.shape, generator=generator, device="cpu"
                ).to(logits.device)
                gumbel = -torch.log(-torch.log(uniform.clamp_min(1e-20)))
                logits = logits + gumbel
            actions[group.agent_indices] = logits.argmax(-1).cpu().numpy()
        return actions
