"""MA-PPO's networks: decentralised actors and a centralised attention critic V_i(o).

* Actors: the project's :class:`~rllib_mamt.modules.actor.MAMTActorModule` MLP
  (pi_i(a_i | o_i), ReLU hidden layers as in the MAPPO code): a categorical
  policy for Discrete actions (:class:`MAPPOActorModule`) or the shared core's
  diagonal Gaussian with a state-independent log-std for Box actions
  (:class:`MAPPOGaussianActorModule`). Their feature
  normalisation is MAPPO's: a ``LayerNorm`` of the observation. Unlike the
  batch normalisation of MAAC's inputs, it normalises each row by itself, so
  the policy that sampled a batch and the one being optimised see the same
  inputs and the PPO ratio is exactly 1 before the first step.
* Critic: :class:`AttentionValueCritic`, MAAC's attention critic
  (:class:`~rllib_mamt.modules.attention_critic.AttentionCritic`) used as a
  state-value critic V_i(o_1..o_n), as the paper's MA-PPO ("the policy network
  also uses an attention mechanism similar to MAAC").
"""

from typing import List, Optional, Sequence

import torch
from torch import nn

from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical
from ray.rllib.core.rl_module.torch import TorchRLModule

from rllib_mamt.modules.actor import MAMTActorModule, flat_size
from rllib_mamt.modules.attention_critic import AttentionCritic
from rllib_mamt.modules.gaussian_actor import GaussianActorModule

# The MAPPO code's actors and critics use ReLU hidden layers of width 64.
MAPPO_ACTOR_NEGATIVE_SLOPE = 0.0


def build_feature_normalization(size: int, enabled: bool) -> nn.Module:
    """MAPPO's feature normalisation, ``LayerNorm(size)``, or the identity."""
    return nn.LayerNorm(size) if enabled else nn.Identity()


def feature_normalization_of(actor, size: int) -> nn.Module:
    """An actor's MAPPO feature normalisation, from its ``model_config``'s
    ``feature_normalization`` (default True), in place of MAAC's input
    normalisation."""
    return build_feature_normalization(
        size, bool(actor.model_config.get("feature_normalization", True))
    )


class MAPPOActorModule(MAMTActorModule):
    """Categorical policy pi_i(a_i | o_i) with a LayerNorm on the observation.

    ``model_config`` keys are :class:`MAMTActorModule`'s, with
    ``feature_normalization`` (bool) in place of ``input_normalization``.
    Only ``setup`` differs from :class:`MAMTActorModule`, so the forward pass
    is still the stackable one: the JointEnvRunner evaluates it batched with
    the other agents' actors, LayerNorm included
    (:mod:`rllib_mamt.stacked_normalization`).
    """

    STACKABLE_FORWARD = True

    def setup(self):
        super().setup()
        self.action_dist_cls = TorchCategorical

    def build_observation_normalization(self, size: int) -> nn.Module:
        return feature_normalization_of(self, size)

    def action_distribution(self, observations: torch.Tensor) -> TorchCategorical:
        """pi_i(. | o_i) for a batch of observations."""
        return TorchCategorical(logits=self.action_logits(observations))


class MAPPOGaussianActorModule(GaussianActorModule):
    """Diagonal Gaussian policy pi_i(a_i | o_i) over Box actions (mean from the
    MLP, learned state-independent log-std starting at 0, i.e. std 1) with
    MAPPO's LayerNorm on the observation; see
    :class:`~rllib_mamt.modules.gaussian_actor.GaussianActorModule`.

    ``model_config`` keys are :class:`MAPPOActorModule`'s. Like
    :class:`MAPPOActorModule`, it changes only ``setup`` and is stacked by
    the JointEnvRunner.
    """

    STACKABLE_FORWARD = True

    def build_observation_normalization(self, size: int) -> nn.Module:
        return feature_normalization_of(self, size)


class AttentionValueCritic(nn.Module):
    """V_i(o_1..o_n) for every agent i through MAAC's shared attention.

    It is MAAC's :class:`AttentionCritic` for agents that each have a single
    action: agent i's query comes from its observation encoding f_i(o_i), the
    keys and values from the other agents' encodings g_j(o_j, a_j) whose one-hot
    "action" is the constant 1 (so g_j encodes o_j alone: the constant input
    only adds to the layer's bias), and the head's single output is V_i. No
    action enters the critic.

    Args:
        observation_sizes: Flat observation size per agent.
        hidden_dim: Embedding width (MAAC's 128).
        num_heads: Attention heads (Table 6: 4).
        feature_normalization: Whether each o_j first passes through its own
            ``LayerNorm`` (MAPPO's feature normalisation).
    """

    def __init__(self, observation_sizes: Sequence[int], hidden_dim: int = 128,
                 num_heads: int = 4, feature_normalization: bool = True):
        super().__init__()
        self.num_agents = len(observation_sizes)
        self.feature_normalizations = nn.ModuleList(
            build_feature_normalization(size, feature_normalization)
            for size in observation_sizes
        )
        self.attention = AttentionCritic(
            observation_sizes, [1] * self.num_agents, hidden_dim, num_heads,
            input_normalization=False,
        )

    def forward(self, observations: Sequence[torch.Tensor],
                alive: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, n) V_i(o) from per-agent (B, |o_i|) observations; agents with
        alive = 0 are left out of the others' attention."""
        normalized = [
            normalization(obs.float())
            for normalization, obs in zip(self.feature_normalizations, observations)
        ]
        single_action = torch.zeros(
            normalized[0].shape[0], self.num_agents, dtype=torch.long,
            device=normalized[0].device,
        )
        values, _ = self.attention(normalized, single_action, alive)
        return torch.cat(values, dim=-1)


class MAPPOCentralModule(TorchRLModule):
    """The learner-only centralised critic of all agents.

    ``observation_space`` / ``action_space`` are ``gymnasium.spaces.Dict`` keyed
    by agent id. ``model_config`` keys: ``agent_ids`` (sorted),
    ``critic_hidden_dim``, ``critic_attention_heads`` and
    ``feature_normalization``. Its RLModuleSpec is ``learner_only=True``.
    """

    def setup(self):
        config = self.model_config
        self.agent_ids: List[str] = list(config["agent_ids"])
        self.critic = AttentionValueCritic(
            [flat_size(self.observation_space[agent]) for agent in self.agent_ids],
            hidden_dim=int(config.get("critic_hidden_dim", 128)),
            num_heads=int(config.get("critic_attention_heads", 4)),
            feature_normalization=bool(config.get("feature_normalization", True)),
        )

    def _forward(self, batch, **kwargs):
        return {}
