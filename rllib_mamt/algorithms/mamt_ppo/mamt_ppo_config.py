"""``MAMTPPOConfig``: MA-PPO's settings plus MAMT's trust-region decomposition keys.

PPO settings are :class:`~rllib_mamt.algorithms.mappo.MAPPOConfig`'s (Table 6
defaults) except ``clip_param``, None by default: the trust region of each
agent is the KL penalty D_j / delta_j (see
:mod:`rllib_mamt.algorithms.mamt_ppo.mamt_ppo_learner`). The decomposition
keys keep MAMTConfig's names, meanings, defaults (Table 3) and checks
(:func:`rllib_mamt.config_validation.validate_trust_region_decomposition`),
except ``delta_lr`` (see :meth:`MAMTPPOConfig.training`).
"""

from typing import List, Optional

from typing_extensions import Self

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.utils.annotations import override

from rllib_mamt.algorithms.mamt.decomposition_defaults import (
    TRUST_REGION_DECOMPOSITION_DEFAULTS,
    joint_trust_region_budget,
)
from rllib_mamt.algorithms.mamt_ppo.modules import MAMTPPOCentralModule
from rllib_mamt.algorithms.mappo.mappo_config import MAPPOConfig
from rllib_mamt.central_module_spec import add_central_module

MAMT_PPO_TRUST_REGION_MODES = ("learned", "fixed_coef", "random_coef")
"""MAMT's learned modes a PPO backbone supports. MAMT-WS ("weighted_sum")
measures D_ns between consecutive policies pi_old -> pi; in PPO the old policy
is the sampling policy, equal to pi at the start of every iteration, so that
reading has no counterpart here."""

MAMT_PPO_TRUST_REGION_UPDATES = ("hypergradient",)

DECOMPOSITION_KEYS = (
    "trust_region_mode", "trust_region_update", "trust_region_step", "trust_region_budget",
    "trust_region_bounds", "trust_region_budget_constraint", "coordination_threshold",
    "coordination_normalization", "coordination_batch_size", "non_stationarity_range",
    "opponent_model_lr", "opponent_model_logit_regularization", "opponent_model_grad_clip",
    "trd_lr", "trd_grad_clip", "trd_hidden_dim", "trd_message_passing_layers",
    "trd_updates_per_delta_update", "delta_lr", "critic_regularization_coefficient",
)


class MAMTPPOConfig(MAPPOConfig):
    """Configuration of MAMT-PPO: MA-PPO whose per-agent trust regions delta_i
    are MAMT's learned decomposition of a joint budget (Table 10's backbone
    ablation), discrete actions.

    Example:
        >>> from rllib_mamt import MAMTPPOConfig
        >>> config = MAMTPPOConfig().environment("spread").training(delta_lr=0.02)
        >>> algo = config.build_algo()  # doctest: +SKIP
        >>> algo.train()  # doctest: +SKIP
    """

    def __init__(self, algo_class=None):
        from rllib_mamt.algorithms.mamt_ppo.mamt_ppo import MAMTPPO

        super().__init__(algo_class=algo_class or MAMTPPO)
        self.clip_param = None
        for key, value in TRUST_REGION_DECOMPOSITION_DEFAULTS.items():
            setattr(self, key, value)
        # 15 delta steps per 4096 env steps: 1e-2 moves log delta as fast per env
        # step as MAMT's 1e-3 with 4 updates per 100 env steps.
        self.delta_lr = 1e-2
        self.critic_regularization_coefficient = 1.0

    @override(MAPPOConfig)
    def training(
        self,
        *,
        trust_region_mode: Optional[str] = NotProvided,
        trust_region_update: Optional[str] = NotProvided,
        trust_region_step: Optional[str] = NotProvided,
        trust_region_budget: Optional[float] = NotProvided,
        trust_region_bounds: Optional[tuple] = NotProvided,
        trust_region_budget_constraint: Optional[str] = NotProvided,
        coordination_threshold: Optional[float] = NotProvided,
        coordination_normalization: Optional[str] = NotProvided,
        coordination_batch_size: Optional[int] = NotProvided,
        non_stationarity_range: Optional[tuple] = NotProvided,
        opponent_model_lr: Optional[float] = NotProvided,
        opponent_model_logit_regularization: Optional[float] = NotProvided,
        opponent_model_grad_clip: Optional[float] = NotProvided,
        trd_lr: Optional[float] = NotProvided,
        trd_grad_clip: Optional[float] = NotProvided,
        trd_hidden_dim: Optional[int] = NotProvided,
        trd_message_passing_layers: Optional[int] = NotProvided,
        trd_updates_per_delta_update: Optional[int] = NotProvided,
        delta_lr: Optional[float] = NotProvided,
        critic_regularization_coefficient: Optional[float] = NotProvided,
        **kwargs,
    ) -> Self:
        """Sets MAMT-PPO's settings: MA-PPO's (see ``MAPPOConfig.training``)
        and MAMT's trust-region decomposition (see ``MAMTConfig.training`` for
        each key's meaning; defaults Table 3).

        Args:
            clip_param (MA-PPO's key, default here None): None is PPO's
                KL-penalty objective without clipping (Schulman et al., 2017,
                §4); a number adds the clipped surrogate with that range for
                every agent on top of the per-agent KL penalty.
            trust_region_mode: "learned" (MAMT-PPO, default), "fixed_coef" or
                "random_coef" (C of the Table 10 ablations).
            trust_region_update: "hypergradient" only (the one-step
                hypergradients of rllib_mamt.algorithms.mamt.trust_region_learning; the
                "literal" reading needs mirror-descent's D_q / delta^2).
            trust_region_step: "mirror_descent" (default) or "log_space", the
                geometry of the log delta step (MAMTConfig.training).
            trust_region_budget: Joint budget sum_i delta_i; None: n_agents,
                so delta_i starts at 1 = PPO's initial KL coefficient beta.
            trust_region_bounds: (delta_min, delta_max) (0.01, 100).
            trust_region_budget_constraint: "equality" (default) or "upper_bound".
            coordination_threshold: sigma of Eq. 5 (0.2).
            coordination_normalization: "relative" (default) or "paper".
            coordination_batch_size: Rows of each minibatch, drawn at random,
                on which C, D_ns and the TRD-Net / delta losses are computed (128).
            non_stationarity_range: Projection range of Eq. 6 ((0, 10)).
            opponent_model_lr, opponent_model_logit_regularization,
            opponent_model_grad_clip: The opponent models' Adam learning
                rate (1e-3), logit L2 penalty (1e-3) and max gradient norm (0.5).
            trd_lr, trd_grad_clip, trd_hidden_dim, trd_message_passing_layers,
            trd_updates_per_delta_update: The TRD-Net's learning rate (1e-3),
                max gradient norm (None: 10 n), width (64), layers (2) and
                steps per delta step (2).
            delta_lr: Step size of log delta (1e-2). MAMT's 1e-3 with 4
                updates per 100 env steps moves log delta by up to 4e-5 per
                env step; PPO takes num_epochs x minibatches = 15 updates per
                4096 env steps, so 1e-2 gives the same rate (3.7e-5).
            critic_regularization_coefficient: Weight of MAAC's
                attention-logit penalty in the Q critic's loss (1.0).
        """
        super().training(**kwargs)
        given = dict(locals())
        for name in DECOMPOSITION_KEYS:
            if given[name] is not NotProvided:
                setattr(self, name, given[name])
        return self

    @override(MAPPOConfig)
    def validate_algorithm_settings(self) -> None:
        from rllib_mamt.algorithms.mamt_ppo.validation import validate_mamt_ppo_settings

        validate_mamt_ppo_settings(self)

    @override(MAPPOConfig)
    def probe_agents(self):
        """Discrete actions only: Eq. 5's counterfactuals sum over each
        agent's actions."""
        from rllib_mamt.config_validation import probe_joint_agents
        from rllib_mamt.modules.actor import require_discrete

        return probe_joint_agents(self, "MAMT_PPO", require_discrete)

    @override(MAPPOConfig)
    def validate_agents(self) -> None:
        """MA-PPO's agent checks, then that learned delta_i can move
        (:func:`rllib_mamt.config_validation.validate_learnable_deltas`)."""
        from rllib_mamt.config_validation import validate_learnable_deltas

        super().validate_agents()
        validate_learnable_deltas(self)

    def resolved_trust_region_budget(self) -> float:
        """The joint budget: ``trust_region_budget`` or n_agents."""
        return joint_trust_region_budget(self.trust_region_budget, len(self.agent_ids()))

    def initial_trust_region_deltas(self) -> List[float]:
        """delta_i = budget / n for every agent, within the bounds."""
        n = len(self.agent_ids())
        low, high = self.trust_region_bounds
        return [min(max(self.resolved_trust_region_budget() / n, low), high)] * n

    @override(MAPPOConfig)
    def get_default_learner_class(self):
        from rllib_mamt.algorithms.mamt_ppo.mamt_ppo_learner import MAMTPPOTorchLearner

        return MAMTPPOTorchLearner

    @override(MAPPOConfig)
    def get_multi_rl_module_spec(self, *, env=None, spaces=None, inference_only=False,
                                 **kwargs) -> MultiRLModuleSpec:
        spec = super().get_multi_rl_module_spec(
            env=env, spaces=spaces, inference_only=inference_only, **kwargs
        )
        if inference_only:
            return spec
        return add_central_module(spec, MAMTPPOCentralModule, {
            "critic_hidden_dim": self.critic_hidden_dim,
            "critic_attention_heads": self.critic_attention_heads,
            "feature_normalization": bool(self.feature_normalization),
            "actor_hidden_sizes": list(self.actor_hidden_sizes),
            "trd_hidden_dim": self.trd_hidden_dim,
            "trd_message_passing_layers": self.trd_message_passing_layers,
            "initial_trust_region_deltas": self.initial_trust_region_deltas(),
        })
