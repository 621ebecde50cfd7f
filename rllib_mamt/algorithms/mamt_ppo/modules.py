"""MAMT-PPO's learner-only central module: MA-PPO's state-value critic plus
MAMT's trust-region decomposition networks.

* ``critic``: MA-PPO's :class:`~rllib_mamt.algorithms.mappo.modules.AttentionValueCritic`
  V_i(o), for GAE;
* ``q_critic``: MAAC's attention Q critic Q_i(o, a), whose counterfactuals give
  the coordination coefficients C (Eq. 5), behind MA-PPO's LayerNorm feature
  normalisation (:class:`FeatureNormalizedQCritic`);
* ``opponent_models`` (h_i^j of Eq. 6), ``trd_net`` (KL̂ of Eq. 7) and
  ``log_trust_region_deltas`` (log delta_i), MAMT's classes and parameter.
"""

import math
from typing import Optional, Sequence

import torch
from torch import nn

from rllib_mamt.algorithms.mappo.modules import MAPPOCentralModule, build_feature_normalization
from rllib_mamt.modules.actor import flat_size, require_discrete
from rllib_mamt.modules.attention_critic import AttentionCritic
from rllib_mamt.algorithms.mamt.opponent_models import OpponentModels
from rllib_mamt.algorithms.mamt.trd_net import TrustRegionDecompositionNet


class FeatureNormalizedQCritic(nn.Module):
    """MAAC's :class:`AttentionCritic` Q_i(o, a) on LayerNorm-ed observations.

    The same feature normalisation as MA-PPO's actors and value critic (each
    row normalised by itself), so Q and its counterfactuals Q_i(a_\\j) (Eq. 5)
    do not depend on the batch they are evaluated on.
    """

    def __init__(self, observation_sizes: Sequence[int], action_sizes: Sequence[int],
                 hidden_dim: int, num_heads: int, feature_normalization: bool):
        super().__init__()
        self.feature_normalizations = nn.ModuleList(
            build_feature_normalization(size, feature_normalization)
            for size in observation_sizes
        )
        self.attention = AttentionCritic(observation_sizes, action_sizes, hidden_dim,
                                         num_heads, input_normalization=False)
        self.head_dim = self.attention.head_dim

    def _normalized(self, observations):
        return [norm(obs.float()) for norm, obs in zip(self.feature_normalizations, observations)]

    def forward(self, observations, actions: torch.Tensor, alive: Optional[torch.Tensor] = None):
        """(per-agent (B, |A_i|) Q-values, (B, heads, n, n) attention logits)."""
        return self.attention(self._normalized(observations), actions, alive)

    def counterfactual_values(self, observations, actions, policy_probs, alive=None):
        """Q_i(o, a) and Q_i(a_\\j) of Eq. 5 (see ``AttentionCritic.counterfactual_values``)."""
        return self.attention.counterfactual_values(
            self._normalized(observations), actions, policy_probs, alive
        )


class MAMTPPOCentralModule(MAPPOCentralModule):
    """MA-PPO's central module plus the Q critic, opponent models, TRD-Net and
    log delta of MAMT's (see module doc).

    ``model_config`` keys: :class:`MAPPOCentralModule`'s, ``actor_hidden_sizes``
    (the opponent models' architecture), ``trd_hidden_dim``,
    ``trd_message_passing_layers`` and ``initial_trust_region_deltas``.
    """

    def setup(self):
        super().setup()
        config = self.model_config
        observation_sizes = [flat_size(self.observation_space[a]) for a in self.agent_ids]
        self.action_sizes = [require_discrete(a, self.action_space[a]) for a in self.agent_ids]
        self.max_actions = max(self.action_sizes)
        self.q_critic = FeatureNormalizedQCritic(
            observation_sizes, self.action_sizes,
            hidden_dim=int(config.get("critic_hidden_dim", 128)),
            num_heads=int(config.get("critic_attention_heads", 4)),
            feature_normalization=bool(config.get("feature_normalization", True)),
        )
        self.opponent_models = OpponentModels(
            observation_sizes, self.action_sizes, list(config["actor_hidden_sizes"])
        )
        self.trd_net = TrustRegionDecompositionNet(
            observation_sizes, self.action_sizes,
            hidden_dim=int(config.get("trd_hidden_dim", 64)),
            num_layers=int(config.get("trd_message_passing_layers", 2)),
        )
        deltas = config["initial_trust_region_deltas"]
        self.log_trust_region_deltas = nn.Parameter(
            torch.tensor([math.log(d) for d in deltas], dtype=torch.float32)
        )

    def trust_region_deltas(self) -> torch.Tensor:
        """delta_i of every agent."""
        return torch.exp(self.log_trust_region_deltas)
