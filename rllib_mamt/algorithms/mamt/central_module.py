"""The learner-only central module: everything MAMT trains besides the actors.

It holds the attention critic Q_zeta (Eq. 9), its soft-updated target
Q_zeta_bar, the target actors pi_psi_bar and the m-update-old actors
pi_psi_old of Algorithm 2 (lines 1-2), the update counter that times the
old-actor refresh, and the per-agent trust regions delta_i. Its RLModuleSpec is
``learner_only=True``, so EnvRunners never build it, and as one RLModule its
whole state (targets, old actors, delta, counter) is part of every checkpoint.
"""

import math

import torch
from torch import nn

from ray.rllib.core.rl_module.torch import TorchRLModule

from rllib_mamt.modules.actor import (
    DEFAULT_ACTOR_HIDDEN_SIZES,
    DEFAULT_INPUT_NORMALIZATION,
    build_policy_network,
    flat_size,
    require_discrete,
)
from rllib_mamt.modules.attention_critic import AttentionCritic
from rllib_mamt.algorithms.mamt.opponent_models import OpponentModels
from rllib_mamt.algorithms.mamt.trd_net import TrustRegionDecompositionNet



class MAMTCentralModule(TorchRLModule):
    """Critic, targets, old actors and trust regions of all agents.

    ``observation_space`` / ``action_space`` are ``gymnasium.spaces.Dict`` keyed
    by agent id. ``model_config`` keys:
        agent_ids: Agent ids in the order used by every tensor (sorted).
        actor_hidden_sizes: Must match the actors' (for the target/old copies).
        input_normalization: MAAC's ``BatchNorm1d(affine=False)`` on every
            critic encoder input (default True). The normalisation has no
            parameters, so soft updates have nothing of it to average; the
            statistics describe the replayed inputs, not a network's weights.
            Hence the target critic normalises with the online critic's
            running statistics (copied at every soft update), and the target
            and old actors are MLPs without a normalisation of their own that
            are applied to the online actor's normalised observations: the
            target actors to o' normalised with its running statistics, the
            old actors to the very batch-normalised o the online actor sees in
            the update, so the trust-region divergence D_q(pi || pi_old)
            compares the policies' parameters only (and is 0 right after a
            refresh).
        critic_hidden_dim: Embedding width of the attention critic (MAAC: 128).
        critic_attention_heads: Attention heads (Table 3: 4).
        initial_trust_region_deltas: delta_i per agent; ``inf`` = unconstrained.
        learn_trust_regions: Whether log delta is a trainable parameter; if so
            the TRD-Net (``trd_hidden_dim``, ``trd_message_passing_layers``) is
            built, and the opponent models unless ``use_opponent_models`` is False.
    """

    def setup(self):
        config = self.model_config
        self.agent_ids = list(config["agent_ids"])
        observation_sizes = [
            flat_size(self.observation_space[agent]) for agent in self.agent_ids
        ]
        self.action_sizes = [
            require_discrete(agent, self.action_space[agent]) for agent in self.agent_ids
        ]
        self.max_actions = max(self.action_sizes)
        actor_hidden_sizes = config.get("actor_hidden_sizes", DEFAULT_ACTOR_HIDDEN_SIZES)

        def make_critic():
            return AttentionCritic(
                observation_sizes,
                self.action_sizes,
                hidden_dim=config.get("critic_hidden_dim", 128),
                num_heads=config.get("critic_attention_heads", 4),
                input_normalization=config.get(
                    "input_normalization", DEFAULT_INPUT_NORMALIZATION
                ),
            )

        def make_actors():
            return nn.ModuleList(
                build_policy_network(size, actions, actor_hidden_sizes)
                for size, actions in zip(observation_sizes, self.action_sizes)
            )

        self.critic = make_critic()
        self.target_critic = make_critic()
        self.target_critic.load_state_dict(self.critic.state_dict())
        self.target_actors = make_actors()
        self.old_actors = make_actors()
        for frozen in (self.target_critic, self.target_actors, self.old_actors):
            frozen.requires_grad_(False)

        deltas = config.get("initial_trust_region_deltas") or [math.inf] * len(
            self.agent_ids
        )
        self.log_trust_region_deltas = nn.Parameter(
            torch.log(torch.tensor(deltas, dtype=torch.float32)),
            requires_grad=bool(config.get("learn_trust_regions", False)),
        )
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        self.trd_net = None
        self.opponent_models = None
        if config.get("learn_trust_regions", False):
            self.trd_net = TrustRegionDecompositionNet(
                observation_sizes,
                self.action_sizes,
                hidden_dim=config.get("trd_hidden_dim", 64),
                num_layers=config.get("trd_message_passing_layers", 2),
            )
            if config.get("use_opponent_models", True):
                self.opponent_models = OpponentModels(
                    observation_sizes, self.action_sizes, actor_hidden_sizes
                )
        self.eval()  # the learner switches to train mode for its update only

    def trust_region_deltas(self) -> torch.Tensor:
        """delta_i of every agent (``inf`` where the agent has no constraint)."""
        return torch.exp(self.log_trust_region_deltas)

    def _forward(self, batch, **kwargs):
        return {}
