"""``MADDPGConfig``: MADDPG's settings, their defaults (paper Table 5) and checks.

Table 5 of the paper lists MADDPG's settings; where it is silent (network
widths, tau, input and reward normalisation) the defaults are those of the
reference code the paper used (shariqiqbal2810/maddpg-pytorch).
"""

from typing import List, Optional

from typing_extensions import Self

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override

from rllib_mamt.algorithms.maddpg.modules import (
    MADDPG_ACTOR_NEGATIVE_SLOPE,
    MADDPGCentralModule,
)
from rllib_mamt.central_module_spec import add_central_module
from rllib_mamt.joint_config import JointOffPolicyConfig
from rllib_mamt.modules.actor import MAMTActorModule
from rllib_mamt.modules.deterministic_actor import DeterministicActorModule

TRAINING_KEYS = (
    "actor_lr", "critic_lr", "adam_epsilon", "tau", "actor_hidden_sizes",
    "critic_hidden_sizes", "input_normalization", "standardize_rewards",
    "actor_logit_regularization", "actor_grad_clip", "critic_grad_clip",
    "gumbel_temperature", "exploration_noise_std", "replay_buffer_capacity", "env_steps_per_update",
    "num_updates_per_round", "num_steps_sampled_before_learning_starts",
    "learner_torch_threads",
)


class MADDPGConfig(JointOffPolicyConfig):
    """Configuration of MADDPG (Lowe et al., 2017) with discrete actions
    (straight-through Gumbel-softmax) or continuous Box actions (deterministic
    tanh actors with Gaussian exploration noise).

    Example:
        >>> from rllib_mamt import MADDPGConfig
        >>> config = MADDPGConfig().environment("spread").training(tau=0.01)
        >>> algo = config.build_algo()  # doctest: +SKIP
        >>> algo.train()  # doctest: +SKIP
    """

    def __init__(self, algo_class=None):
        from rllib_mamt.algorithms.maddpg.maddpg import MADDPG

        super().__init__(algo_class=algo_class or MADDPG)
        # RLlib settings with Table 5 values.
        self.train_batch_size_per_learner = 1024
        self.min_sample_timesteps_per_iteration = 1000
        # MADDPG settings; each is documented in `training()`.
        self.actor_lr = 1e-3
        self.critic_lr = 1e-3
        self.adam_epsilon = 1e-7
        self.tau = 0.01
        self.actor_hidden_sizes = (64, 64)
        self.critic_hidden_sizes = (64, 64)
        self.input_normalization = "auto"
        self.standardize_rewards = True
        self.actor_logit_regularization = 1e-3
        self.actor_grad_clip = 0.5
        self.critic_grad_clip = None
        self.gumbel_temperature = 1.0
        self.exploration_noise_std = 0.1
        self.replay_buffer_capacity = 1_000_000
        self.env_steps_per_update = 100
        self.num_updates_per_round = 4
        self.num_steps_sampled_before_learning_starts = None
        self.learner_torch_threads = None

    @override(AlgorithmConfig)
    def training(
        self,
        *,
        actor_lr: Optional[float] = NotProvided,
        critic_lr: Optional[float] = NotProvided,
        adam_epsilon: Optional[float] = NotProvided,
        tau: Optional[float] = NotProvided,
        actor_hidden_sizes: Optional[List[int]] = NotProvided,
        critic_hidden_sizes: Optional[List[int]] = NotProvided,
        input_normalization: Optional[bool] = NotProvided,
        standardize_rewards: Optional[bool] = NotProvided,
        actor_logit_regularization: Optional[float] = NotProvided,
        actor_grad_clip: Optional[float] = NotProvided,
        critic_grad_clip: Optional[float] = NotProvided,
        gumbel_temperature: Optional[float] = NotProvided,
        exploration_noise_std: Optional[float] = NotProvided,
        replay_buffer_capacity: Optional[int] = NotProvided,
        env_steps_per_update: Optional[int] = NotProvided,
        num_updates_per_round: Optional[int] = NotProvided,
        num_steps_sampled_before_learning_starts: Optional[int] = NotProvided,
        learner_torch_threads: Optional[int] = NotProvided,
        **kwargs,
    ) -> Self:
        """Sets MADDPG's training settings (defaults: paper Table 5, else the
        reference code maddpg-pytorch).

        Args:
            actor_lr: Adam learning rate of every actor mu_i (Table 5: 1e-3).
            critic_lr: Adam learning rate of every critic Q_i (Table 5: 1e-3).
            adam_epsilon: Adam epsilon of all optimisers (Table 5: 1e-7; Adam
                momentum 0.9 is beta_1).
            tau: Soft-update rate of the target actors and critics (0.01, the
                reference code's default; Table 5 gives none).
            actor_hidden_sizes: Hidden layer sizes of each actor ((64, 64), the
                reference code's; ReLU hidden layers).
            critic_hidden_sizes: Hidden layer sizes of each centralised critic
                ((64, 64), the reference code's; ReLU hidden layers).
            input_normalization: "auto" (default), True or False. True
                normalises each actor's observation and each critic's input
                (o_1..o_n, a_1..a_n) with ``BatchNorm1d(affine=False)``, as the
                reference code's ``norm_in`` (which also has BatchNorm's affine
                weights, initialised to the identity). "auto" is True when an
                observation space declares values beyond ±100 (as MAMTConfig).
            standardize_rewards: Standardise each agent's sampled rewards by
                the mean and std of its rewards in the buffer (True, the
                reference buffer's ``norm_rews`` default).
            actor_logit_regularization: L2 penalty on the actor's logits,
                coefficient * mean(logits^2) ("policy regularization
                coefficient", 0.001).
            actor_grad_clip: Max gradient norm of each actor ("policy clip
                grad", 0.5).
            critic_grad_clip: Max gradient norm of each critic; None means
                10 * n_agents ("critic clip grad").
            gumbel_temperature: Temperature of the straight-through
                Gumbel-softmax through which the actor's own action reaches its
                critic in the actor update (1.0, the reference code's).
            exploration_noise_std: Box actions only: standard deviation sigma
                of the Gaussian noise added per action dimension while
                exploring, in tanh space, a = clip(tanh(mu_i(o_i)) + N(0,
                sigma^2), -1, 1), then mapped onto the Box's bounds (so sigma
                is in units of the Box's half range); evaluation
                (explore=False) adds none. Default 0.1: Table 5 gives no
                value; the reference code adds Ornstein-Uhlenbeck noise
                (theta 0.15, sigma 0.2, times a scale annealed linearly from
                0.3 to 0 over 25,000 episodes), whose stationary standard
                deviation at the start, 0.3 * 0.2 / sqrt(1 - 0.85^2) = 0.114,
                this constant Gaussian noise matches. >= 0 (0: no noise).
            replay_buffer_capacity: Joint transitions kept ("buffer size",
                1,000,000).
            env_steps_per_update: Joint env steps sampled between update rounds
                ("steps per update", 100).
            num_updates_per_round: Updates per round ("num epochs per step",
                4). In each update every agent takes a critic and an actor step
                on its own minibatch of `train_batch_size_per_learner` rows
                ("batch size", 1024), then all targets are soft-updated.
            num_steps_sampled_before_learning_starts: Buffer size before the
                first update; None means one train batch.
            learner_torch_threads: Torch intra-op threads of each learner
                process; None uses the CPUs the learner was given (see
                MAMTConfig.training).

        Table 5's "critic regularization (L2, 1.0)" has no counterpart here:
        in the paper's Table 3 that coefficient weights MAAC's attention-logit
        penalty, and MADDPG's MLP critics have no attention logits (the
        reference code has no critic regularisation). "lr decay 0.0" means a
        constant learning rate.
        """
        super().training(**kwargs)
        given = dict(locals())
        for name in TRAINING_KEYS:
            if given[name] is not NotProvided:
                setattr(self, name, given[name])
        return self

    def validate_algorithm_settings(self) -> None:
        from rllib_mamt.algorithms.maddpg.validation import validate_maddpg_settings

        validate_maddpg_settings(self)

    def probe_agents(self):
        from rllib_mamt.algorithms.maddpg.validation import (
            require_maddpg_action_space,
            require_maddpg_action_kinds,
        )
        from rllib_mamt.config_validation import probe_joint_agents

        spaces = probe_joint_agents(self, "MADDPG", require_maddpg_action_space)
        require_maddpg_action_kinds(self, {agent: act for agent, (_, act) in spaces.items()})
        return spaces

    def validate_agents(self) -> None:
        self.require_batch_for_normalization()

    def resolved_critic_grad_clip(self) -> float:
        """The critic's max gradient norm: ``critic_grad_clip`` or 10 * n_agents."""
        if self.critic_grad_clip is not None:
            return float(self.critic_grad_clip)
        return 10.0 * len(self.policies)

    @override(AlgorithmConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(
            module_class=(
                DeterministicActorModule if self.has_box_actions() else MAMTActorModule
            ),
            model_config={
                "actor_hidden_sizes": list(self.actor_hidden_sizes),
                "actor_negative_slope": MADDPG_ACTOR_NEGATIVE_SLOPE,
                "input_normalization": self.resolved_input_normalization(),
            },
        )

    @override(AlgorithmConfig)
    def get_default_learner_class(self):
        from rllib_mamt.algorithms.maddpg.maddpg_learner import MADDPGTorchLearner

        return MADDPGTorchLearner

    @override(AlgorithmConfig)
    def get_multi_rl_module_spec(self, *, env=None, spaces=None, inference_only=False, **kwargs) -> MultiRLModuleSpec:
        spec = super().get_multi_rl_module_spec(
            env=env, spaces=spaces, inference_only=inference_only, **kwargs
        )
        if inference_only:
            return spec
        return add_central_module(spec, MADDPGCentralModule, {
            "actor_hidden_sizes": list(self.actor_hidden_sizes),
            "critic_hidden_sizes": list(self.critic_hidden_sizes),
            "input_normalization": self.resolved_input_normalization(),
        })
