"""``MAPPOConfig``: MA-PPO's settings, their defaults (paper Table 6) and checks.

Table 6 of the paper lists MA-PPO's settings; where it is silent (clip range,
epochs, minibatches, entropy bonus, network widths) the defaults are those of
the MAPPO code the paper used (Yu et al., 2021), with MAAC's critic width.
Settings shared with RLlib's PPO keep PPO's names (``lambda_``,
``clip_param``, ``entropy_coeff``, ``num_epochs``, ``minibatch_size``).
"""

from typing import List, Optional

from typing_extensions import Self

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override

from rllib_mamt.algorithms.mappo.modules import (
    MAPPO_ACTOR_NEGATIVE_SLOPE,
    MAPPOActorModule,
    MAPPOCentralModule,
    MAPPOGaussianActorModule,
)
from rllib_mamt.central_module_spec import add_central_module
from rllib_mamt.joint_config import JointAlgorithmConfig

TRAINING_KEYS = (
    "lambda_", "clip_param", "entropy_coeff", "actor_lr", "critic_lr", "adam_epsilon",
    "actor_grad_clip", "critic_grad_clip", "huber_delta", "actor_hidden_sizes",
    "critic_hidden_dim", "critic_attention_heads", "feature_normalization",
    "normalize_rewards", "standardize_advantages", "learner_torch_threads",
)


class MAPPOConfig(JointAlgorithmConfig):
    """Configuration of MA-PPO: PPO with decentralised actors and a centralised
    attention critic (the paper's MA-PPO baseline).

    Actions: all agents Discrete (categorical actors) or all float Boxes with
    finite bounds (diagonal Gaussian actors with a learned state-independent
    log-std, initial std 1; the stored and learned action is the unclipped
    sample, the env gets it clipped to the Box; evaluation takes the mean).
    Only the JointEnvRunner samples MA-PPO.

    Example:
        >>> from rllib_mamt import MAPPOConfig
        >>> config = MAPPOConfig().environment("spread").training(clip_param=0.1)
        >>> algo = config.build_algo()  # doctest: +SKIP
        >>> algo.train()  # doctest: +SKIP
    """

    def __init__(self, algo_class=None):
        from rllib_mamt.algorithms.mappo.mappo import MAPPO

        super().__init__(algo_class=algo_class or MAPPO)
        # RLlib settings with Table 6 values (else the MAPPO code's).
        self.train_batch_size_per_learner = 4096
        self.num_epochs = 15
        self.minibatch_size = None  # one minibatch: the whole batch
        self.shuffle_batch_per_epoch = True
        # MA-PPO settings; each is documented in `training()`.
        self.lambda_ = 0.95
        self.clip_param = 0.2
        self.entropy_coeff = 0.01
        self.actor_lr = 1e-3
        self.critic_lr = 1e-3
        self.adam_epsilon = 1e-7
        self.actor_grad_clip = 10.0
        self.critic_grad_clip = 10.0
        self.huber_delta = 10.0
        self.actor_hidden_sizes = (64, 64)
        self.critic_hidden_dim = 128
        self.critic_attention_heads = 4
        self.feature_normalization = True
        self.normalize_rewards = True
        self.standardize_advantages = True
        self.learner_torch_threads = None

    @override(AlgorithmConfig)
    def training(
        self,
        *,
        lambda_: Optional[float] = NotProvided,
        clip_param: Optional[float] = NotProvided,
        entropy_coeff: Optional[float] = NotProvided,
        actor_lr: Optional[float] = NotProvided,
        critic_lr: Optional[float] = NotProvided,
        adam_epsilon: Optional[float] = NotProvided,
        actor_grad_clip: Optional[float] = NotProvided,
        critic_grad_clip: Optional[float] = NotProvided,
        huber_delta: Optional[float] = NotProvided,
        actor_hidden_sizes: Optional[List[int]] = NotProvided,
        critic_hidden_dim: Optional[int] = NotProvided,
        critic_attention_heads: Optional[int] = NotProvided,
        feature_normalization: Optional[bool] = NotProvided,
        normalize_rewards: Optional[bool] = NotProvided,
        standardize_advantages: Optional[bool] = NotProvided,
        learner_torch_threads: Optional[int] = NotProvided,
        **kwargs,
    ) -> Self:
        """Sets MA-PPO's training settings (defaults: paper Table 6, else the
        MAPPO code's).

        RLlib's own keys keep their meaning: ``train_batch_size_per_learner``
        (Table 6 "batch size", 4096 env steps per iteration, each with all
        agents' transitions), ``num_epochs`` (15, MAPPO's ``ppo_epoch``),
        ``minibatch_size`` (None: the whole batch, MAPPO's ``num_mini_batch``
        = 1), ``shuffle_batch_per_epoch`` and ``gamma`` (0.99).

        Args:
            lambda_: GAE lambda (Table 6: 0.95).
            clip_param: PPO clip range epsilon of every agent (0.2, MAPPO's).
            entropy_coeff: Weight of each actor's entropy bonus (0.01, MAPPO's).
            actor_lr: Adam learning rate of every actor (Table 6: 1e-3).
            critic_lr: Adam learning rate of the critic (Table 6: 1e-3).
            adam_epsilon: Adam epsilon (Table 6: 1e-7; momentum 0.9 = beta_1).
            actor_grad_clip: Max gradient norm of each actor ("policy clip
                grad", 10); None: no clipping.
            critic_grad_clip: Max gradient norm of the critic ("critic clip
                grad", 10); None: no clipping.
            huber_delta: Delta of the critic's Huber loss (Table 6: 10).
            actor_hidden_sizes: Hidden layer sizes of each actor ((64, 64),
                MAPPO's; ReLU).
            critic_hidden_dim: Embedding width of the attention critic (128,
                MAAC's).
            critic_attention_heads: Attention heads of the critic (Table 6: 4);
                must divide ``critic_hidden_dim``.
            feature_normalization: LayerNorm on every actor's and critic
                encoder's observation input (Table 6 "use feature
                normalization": True; MAPPO's ``feature_norm``).
            normalize_rewards: Divide each agent's rewards by the running std
                of its discounted return, as common PPO code does (Table 6 "use
                reward normalization": True; see
                :mod:`rllib_mamt.algorithms.mappo.reward_normalization`).
            standardize_advantages: Standardise each agent's advantages over
                the train batch (MAPPO's default).
            learner_torch_threads: Torch intra-op threads of the learner; None
                uses the CPUs the learner was given.

        Table 6's "policy/critic regularization coefficient 0.0" and "lr decay
        0.0" mean no weight penalty and a constant learning rate.
        """
        super().training(**kwargs)
        given = dict(locals())
        for name in TRAINING_KEYS:
            if given[name] is not NotProvided:
                setattr(self, name, given[name])
        return self

    def validate_algorithm_settings(self) -> None:
        from rllib_mamt.algorithms.mappo.validation import validate_mappo_settings

        validate_mappo_settings(self)

    def probe_agents(self):
        from rllib_mamt.algorithms.mappo.validation import require_mappo_action_space
        from rllib_mamt.config_validation import probe_joint_agents, require_one_action_kind

        spaces = probe_joint_agents(self, "MAPPO", require_mappo_action_space)
        require_one_action_kind("MAPPO", {agent: act for agent, (_, act) in spaces.items()})
        return spaces

    def env_steps_per_sample(self) -> int:
        """One ``sample()`` of every EnvRunner together yields (at least) one
        train batch of env steps."""
        return self.total_train_batch_size

    @override(AlgorithmConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(
            module_class=(
                MAPPOGaussianActorModule if self.has_box_actions() else MAPPOActorModule
            ),
            model_config={
                "actor_hidden_sizes": list(self.actor_hidden_sizes),
                "actor_negative_slope": MAPPO_ACTOR_NEGATIVE_SLOPE,
                "feature_normalization": bool(self.feature_normalization),
            },
        )

    @override(AlgorithmConfig)
    def get_default_learner_class(self):
        from rllib_mamt.algorithms.mappo.mappo_learner import MAPPOTorchLearner

        return MAPPOTorchLearner

    @override(AlgorithmConfig)
    def get_multi_rl_module_spec(self, *, env=None, spaces=None, inference_only=False,
                                 **kwargs) -> MultiRLModuleSpec:
        spec = super().get_multi_rl_module_spec(
            env=env, spaces=spaces, inference_only=inference_only, **kwargs
        )
        if inference_only:
            return spec
        return add_central_module(spec, MAPPOCentralModule, {
            "critic_hidden_dim": self.critic_hidden_dim,
            "critic_attention_heads": self.critic_attention_heads,
            "feature_normalization": bool(self.feature_normalization),
        })
