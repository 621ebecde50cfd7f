"""``LOLAConfig``: LOLA(+DQN)'s settings, their defaults (paper Table 7) and checks.

Table 7 of the paper lists LOLA(+DQN)'s settings; where it is silent (network
widths, tau, the lookahead step size eta) the defaults are stated per key in
:meth:`LOLAConfig.training`.
"""

from typing import List, Optional

from typing_extensions import Self

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override

from rllib_mamt.algorithms.lola.modules import LOLACentralModule
from rllib_mamt.central_module_spec import add_central_module
from rllib_mamt.joint_config import JointOffPolicyConfig
from rllib_mamt.modules.actor import MAMTActorModule
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID

# ReLU hidden layers in the policies, as in the Q-networks.
LOLA_ACTOR_NEGATIVE_SLOPE = 0.0

TRAINING_KEYS = (
    "policy_lr", "q_lr", "adam_epsilon", "lookahead_lr", "tau", "actor_hidden_sizes",
    "q_hidden_sizes", "input_normalization", "standardize_rewards", "grad_clip",
    "replay_buffer_capacity", "env_steps_per_update", "num_updates_per_round",
    "num_steps_sampled_before_learning_starts", "learner_torch_threads",
)


class LOLAConfig(JointOffPolicyConfig):
    """Configuration of LOLA(+DQN) (Foerster et al., 2018a; paper Table 7) for
    two agents with discrete actions.

    Example:
        >>> from rllib_mamt import LOLAConfig
        >>> config = LOLAConfig().environment("spread").training(lookahead_lr=0.01)
        >>> algo = config.build_algo()  # doctest: +SKIP
        >>> algo.train()  # doctest: +SKIP
    """

    def __init__(self, algo_class=None):
        from rllib_mamt.algorithms.lola.lola import LOLA

        super().__init__(algo_class=algo_class or LOLA)
        # RLlib settings with Table 7 values.
        self.train_batch_size_per_learner = 1024
        self.min_sample_timesteps_per_iteration = 1000
        # LOLA settings; each is documented in `training()`.
        self.policy_lr = 1e-3
        self.q_lr = 1e-3
        self.adam_epsilon = 1e-7
        self.lookahead_lr = 1e-3
        self.tau = 0.01
        self.actor_hidden_sizes = (64, 64)
        self.q_hidden_sizes = (64, 64)
        self.input_normalization = "auto"
        self.standardize_rewards = False
        self.grad_clip = None
        self.replay_buffer_capacity = 1_000_000
        self.env_steps_per_update = 100
        self.num_updates_per_round = 4
        self.num_steps_sampled_before_learning_starts = None
        self.learner_torch_threads = None

    @override(AlgorithmConfig)
    def training(
        self,
        *,
        policy_lr: Optional[float] = NotProvided,
        q_lr: Optional[float] = NotProvided,
        adam_epsilon: Optional[float] = NotProvided,
        lookahead_lr: Optional[float] = NotProvided,
        tau: Optional[float] = NotProvided,
        actor_hidden_sizes: Optional[List[int]] = NotProvided,
        q_hidden_sizes: Optional[List[int]] = NotProvided,
        input_normalization: Optional[bool] = NotProvided,
        standardize_rewards: Optional[bool] = NotProvided,
        grad_clip: Optional[float] = NotProvided,
        replay_buffer_capacity: Optional[int] = NotProvided,
        env_steps_per_update: Optional[int] = NotProvided,
        num_updates_per_round: Optional[int] = NotProvided,
        num_steps_sampled_before_learning_starts: Optional[int] = NotProvided,
        learner_torch_threads: Optional[int] = NotProvided,
        **kwargs,
    ) -> Self:
        """Sets LOLA(+DQN)'s training settings (defaults: paper Table 7 where it
        gives one; see :mod:`rllib_mamt.algorithms.lola` for the algorithm).

        Args:
            policy_lr: Adam learning rate of each policy pi_i ("adam lr", 1e-3).
            q_lr: Adam learning rate of each Q-network Q_i ("adam lr", 1e-3).
            adam_epsilon: Adam epsilon of all optimisers ("adam eps", 1e-7;
                "adam mom" 0.9 is beta_1).
            lookahead_lr: eta, the step size of the opponent's anticipated
                naive gradient step that LOLA differentiates through (1e-3:
                Table 7 gives none; LOLA's exact-gradient experiments use the
                same step size for the anticipated and the actual step, so this
                is Table 7's lr). 0 turns LOLA into naive simultaneous
                policy-gradient learners on the same Q-networks.
            tau: Soft-update rate of the target Q-networks (0.01, as the
                project's MAAC and MADDPG; Table 7 gives none).
            actor_hidden_sizes: Hidden layer sizes of each policy ((64, 64);
                ReLU hidden layers; Table 7 gives none).
            q_hidden_sizes: Hidden layer sizes of each joint-action Q-network
                ((64, 64); ReLU hidden layers).
            input_normalization: "auto" (default), True or False. True
                normalises each policy's observation and each Q-network's input
                with ``BatchNorm1d(affine=False)``; "auto" is True when an
                observation space declares values beyond ±100 (as MAMTConfig).
            standardize_rewards: Standardise each agent's sampled rewards by
                the mean and std of its rewards in the buffer (False; Table 7
                lists no reward scaling).
            grad_clip: Max gradient norm of each Q-network and each policy;
                None means 10 * n_agents = 20 ("clip grad").
            replay_buffer_capacity: Joint transitions kept ("buffer size",
                1,000,000).
            env_steps_per_update: Joint env steps sampled between update rounds
                ("steps per update", 100).
            num_updates_per_round: Updates per round ("num epochs per step",
                4); each update is a TD step of both Q-networks and one LOLA
                step of both policies on one minibatch of
                ``train_batch_size_per_learner`` rows ("batch size", 1024,
                shuffled transitions).
            num_steps_sampled_before_learning_starts: Buffer size before the
                first update; None means one train batch.
            learner_torch_threads: Torch intra-op threads of each learner
                process; None uses the CPUs the learner was given (see
                MAMTConfig.training).

        Table 7's "regularization (L2, 1.0)" has no counterpart here: it
        repeats Tables 4 and 5's critic regularisation, which in MAAC weights
        the attention-logit penalty, and LOLA's MLP Q-networks have no
        attention logits. "lr decay 0.0" means a constant learning rate.
        """
        super().training(**kwargs)
        given = dict(locals())
        for name in TRAINING_KEYS:
            if given[name] is not NotProvided:
                setattr(self, name, given[name])
        return self

    def validate_algorithm_settings(self) -> None:
        from rllib_mamt.algorithms.lola.validation import validate_lola_settings

        validate_lola_settings(self)

    def probe_agents(self):
        from rllib_mamt.algorithms.lola.validation import (
            require_lola_action_space,
            require_two_agents,
        )
        from rllib_mamt.config_validation import probe_joint_agents

        spaces = probe_joint_agents(self, "LOLA", require_lola_action_space)
        require_two_agents(self.env, list(spaces))
        return spaces

    def validate_agents(self) -> None:
        from rllib_mamt.algorithms.lola.validation import require_two_agents

        if self.policies and set(self.policies) != {"default_policy"}:
            require_two_agents(self.env, [m for m in self.policies if m != CENTRAL_MODULE_ID])
        self.require_batch_for_normalization()

    def resolved_grad_clip(self) -> float:
        """The max gradient norm: ``grad_clip`` or 10 * n_agents."""
        if self.grad_clip is not None:
            return float(self.grad_clip)
        return 10.0 * len(self.agent_ids())

    @override(AlgorithmConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(
            module_class=MAMTActorModule,
            model_config={
                "actor_hidden_sizes": list(self.actor_hidden_sizes),
                "actor_negative_slope": LOLA_ACTOR_NEGATIVE_SLOPE,
                "input_normalization": self.resolved_input_normalization(),
            },
        )

    @override(AlgorithmConfig)
    def get_default_learner_class(self):
        from rllib_mamt.algorithms.lola.lola_learner import LOLATorchLearner

        return LOLATorchLearner

    @override(AlgorithmConfig)
    def get_multi_rl_module_spec(self, *, env=None, spaces=None, inference_only=False, **kwargs) -> MultiRLModuleSpec:
        spec = super().get_multi_rl_module_spec(
            env=env, spaces=spaces, inference_only=inference_only, **kwargs
        )
        if inference_only:
            return spec
        return add_central_module(spec, LOLACentralModule, {
            "q_hidden_sizes": list(self.q_hidden_sizes),
            "input_normalization": self.resolved_input_normalization(),
        })
