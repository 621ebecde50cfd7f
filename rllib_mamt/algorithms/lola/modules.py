"""LOLA(+DQN)'s learner-only module: each agent's joint-action Q-network
Q_i(o_0, o_1) -> R^{A_0 x A_1} (the "DQN") and its target copy.

The policies are the project's per-agent
:class:`~rllib_mamt.modules.actor.MAMTActorModule` (softmax over an MLP's
logits), so EnvRunners sample them on the JointEnvRunner's batched path.
"""

from typing import List, Sequence

import torch
from torch import nn

from ray.rllib.core.rl_module.torch import TorchRLModule

from rllib_mamt.modules.actor import build_input_normalization, flat_size, require_discrete

DEFAULT_HIDDEN_SIZES = (64, 64)


class JointActionQNetwork(nn.Module):
    """Q_i(o_0, o_1, a_0, a_1) for every joint action at once, as DQN's output
    layer has one unit per action: an MLP (ReLU hidden layers) from the
    concatenated observations to A_0 * A_1 values.

    Args:
        observation_size: sum_j |o_j|.
        action_sizes: (A_0, A_1).
        hidden_sizes: Hidden layer widths.
        input_normalization: Whether the concatenated observations pass
            through :class:`~rllib_mamt.modules.actor.InputNormalization` first.
    """

    def __init__(self, observation_size: int, action_sizes: Sequence[int],
                 hidden_sizes: Sequence[int], input_normalization: bool):
        super().__init__()
        self.action_sizes = tuple(int(a) for a in action_sizes)
        self.input_normalization = build_input_normalization(
            observation_size, input_normalization
        )
        layers, previous = [], observation_size
        for size in hidden_sizes:
            layers += [nn.Linear(previous, size), nn.ReLU()]
            previous = size
        layers.append(nn.Linear(previous, self.action_sizes[0] * self.action_sizes[1]))
        self.network = nn.Sequential(*layers)

    def forward(self, observations: List[torch.Tensor]) -> torch.Tensor:
        """(B, A_0, A_1) Q-values from the two agents' (B, |o_j|) observations."""
        inputs = self.input_normalization(torch.cat(list(observations), dim=-1))
        return self.network(inputs).reshape(-1, *self.action_sizes)


class LOLACentralModule(TorchRLModule):
    """Both agents' Q-networks Q_i and target Q-networks Q'_i.

    ``observation_space`` / ``action_space`` are ``gymnasium.spaces.Dict`` keyed
    by agent id. ``model_config`` keys:
        agent_ids: The two agent ids in the order of every tensor (sorted).
        q_hidden_sizes: Hidden widths of each Q-network (default (64, 64)).
        input_normalization: Whether Q-networks normalise their input; a
            target Q-network uses its online network's running statistics,
            copied at every soft update.

    Its RLModuleSpec is ``learner_only=True``; the target networks and the
    update counter are part of every checkpoint.
    """

    def setup(self):
        config = self.model_config
        self.agent_ids = list(config["agent_ids"])
        observation_size = sum(flat_size(self.observation_space[a]) for a in self.agent_ids)
        self.action_sizes = [
            require_discrete(agent, self.action_space[agent]) for agent in self.agent_ids
        ]
        hidden = config.get("q_hidden_sizes", DEFAULT_HIDDEN_SIZES)
        normalize = bool(config.get("input_normalization", False))

        def make_q_networks():
            return nn.ModuleList(
                JointActionQNetwork(observation_size, self.action_sizes, hidden, normalize)
                for _ in self.agent_ids
            )

        self.q_networks = make_q_networks()
        self.target_q_networks = make_q_networks()
        self.target_q_networks.load_state_dict(self.q_networks.state_dict())
        self.target_q_networks.requires_grad_(False)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self.eval()  # the learner switches to train mode for its update only

    @torch.no_grad()
    def copy_normalization_statistics_(self) -> None:
        """Gives each target Q-network its online network's input statistics."""
        for target, online in zip(self.target_q_networks, self.q_networks):
            target.input_normalization.load_state_dict(online.input_normalization.state_dict())

    def _forward(self, batch, **kwargs):
        return {}
