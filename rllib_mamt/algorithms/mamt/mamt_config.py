"""``MAMTConfig``: every MAMT setting, its default (paper Table 3) and its checks.

Modes of one algorithm (``trust_region_mode``):
    ``"learned"`` MAMT: delta_i learned through the TRD-Net (Eq. 5-8, Alg. 2).
    ``"fixed_coef"``, ``"random_coef"``, ``"weighted_sum"``: the Table 10
                  ablations MAMT-Fixed, MAMT-Random and MAMT-WS.
    ``"none"``    MAAC: no trust region (Iqbal & Sha, 2019).
    ``"equal"``   MAMD: delta_i = delta / n for every agent (Eq. 4, Algorithm 3).
    ``"manual"``  delta_i given per agent; agents left out are unconstrained
                  (MAMD-OP of Appendix D).
"""

import math
from typing import Dict, List, Optional

from typing_extensions import Self

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override

from rllib_mamt.modules.actor import MAMTActorModule
from rllib_mamt.algorithms.mamt.central_module import MAMTCentralModule
from rllib_mamt.algorithms.mamt.decomposition_defaults import (
    TRUST_REGION_DECOMPOSITION_DEFAULTS,
    joint_trust_region_budget,
)
from rllib_mamt.central_module_spec import add_central_module
from rllib_mamt.joint_config import JointOffPolicyConfig
from rllib_mamt.algorithms.mamt.trust_region_learning import LEARNED_TRUST_REGION_MODES

TRUST_REGION_MODES = ("learned", "none", "equal", "manual") + tuple(
    m for m in LEARNED_TRUST_REGION_MODES if m != "learned"
)


class MAMTConfig(JointOffPolicyConfig):
    """Configuration of MAMT and its modes (MAAC, MAMD, MAMD-OP).

    Example:
        >>> from rllib_mamt import MAMTConfig
        >>> config = (MAMTConfig().environment("spread")
        ...           .training(trust_region_mode="equal"))
        >>> algo = config.build_algo()  # doctest: +SKIP
        >>> algo.train()  # doctest: +SKIP
    """

    def __init__(self, algo_class=None):
        from rllib_mamt.algorithms.mamt.mamt import MAMT

        super().__init__(algo_class=algo_class or MAMT)
        # RLlib settings with Table 3 values.
        self.train_batch_size_per_learner = 1024
        self.min_sample_timesteps_per_iteration = 1000
        # MAMT settings; each is documented in `training()`.
        self.actor_lr = 1e-3
        self.critic_lr = 1e-3
        self.adam_epsilon = 1e-7
        self.tau = 0.001
        self.reward_scale = 100.0
        self.standardize_rewards = True
        self.actor_logit_regularization = 1e-3
        self.critic_regularization_coefficient = 1.0
        self.actor_grad_clip = 0.5
        self.critic_grad_clip = None
        self.actor_hidden_sizes = (128, 128)
        self.critic_hidden_dim = 128
        self.critic_attention_heads = 4
        self.input_normalization = "auto"
        self.replay_buffer_capacity = 1_000_000
        self.env_steps_per_update = 100
        self.num_updates_per_round = 4
        self.num_steps_sampled_before_learning_starts = None
        for key, value in TRUST_REGION_DECOMPOSITION_DEFAULTS.items():
            setattr(self, key, value)
        self.trust_region_deltas = None
        self.mirror_descent_lag = 100
        self.tsallis_q = 0.2
        self.trust_region_budget_penalty = 1.0
        self.learner_torch_threads = None
        self.critic_weight_decay = 1e-3
        self.critic_target_entropy = "maac"
        self.mirror_descent_entropy = True
        self.update_order = "critic_first"
        self.learner_precision = "float32"

    @override(AlgorithmConfig)
    def training(
        self,
        *,
        actor_lr: Optional[float] = NotProvided,
        critic_lr: Optional[float] = NotProvided,
        adam_epsilon: Optional[float] = NotProvided,
        tau: Optional[float] = NotProvided,
        reward_scale: Optional[float] = NotProvided,
        standardize_rewards: Optional[bool] = NotProvided,
        actor_logit_regularization: Optional[float] = NotProvided,
        critic_regularization_coefficient: Optional[float] = NotProvided,
        actor_grad_clip: Optional[float] = NotProvided,
        critic_grad_clip: Optional[float] = NotProvided,
        actor_hidden_sizes: Optional[List[int]] = NotProvided,
        critic_hidden_dim: Optional[int] = NotProvided,
        critic_attention_heads: Optional[int] = NotProvided,
        input_normalization: Optional[bool] = NotProvided,
        replay_buffer_capacity: Optional[int] = NotProvided,
        env_steps_per_update: Optional[int] = NotProvided,
        num_updates_per_round: Optional[int] = NotProvided,
        num_steps_sampled_before_learning_starts: Optional[int] = NotProvided,
        trust_region_mode: Optional[str] = NotProvided,
        trust_region_budget: Optional[float] = NotProvided,
        trust_region_bounds: Optional[tuple] = NotProvided,
        trust_region_deltas: Optional[Dict[str, float]] = NotProvided,
        mirror_descent_lag: Optional[int] = NotProvided,
        tsallis_q: Optional[float] = NotProvided,
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
        trust_region_budget_penalty: Optional[float] = NotProvided,
        trust_region_budget_constraint: Optional[str] = NotProvided,
        learner_torch_threads: Optional[int] = NotProvided,
        critic_weight_decay: Optional[float] = NotProvided,
        critic_target_entropy: Optional[str] = NotProvided,
        mirror_descent_entropy: Optional[bool] = NotProvided,
        update_order: Optional[str] = NotProvided,
        trust_region_update: Optional[str] = NotProvided,
        trust_region_step: Optional[str] = NotProvided,
        learner_precision: Optional[str] = NotProvided,
        **kwargs,
    ) -> Self:
        """Sets MAMT's training settings (defaults: paper, Table 3).

        Args:
            actor_lr: Adam learning rate of every actor pi_psi_i (1e-3).
            critic_lr: Adam learning rate of the attention critic Q_zeta (1e-3).
            adam_epsilon: Adam epsilon of all optimisers (1e-7).
            tau: Soft-update rate of target critic and target actors (MAAC: 0.001).
            reward_scale: "Soft reward scale" (100); the entropy temperature of
                Eq. 9/10 is alpha = 1 / reward_scale.
            standardize_rewards: Standardise each agent's sampled rewards by the
                mean and std of all rewards in the buffer (MAAC's default).
            actor_logit_regularization: L2 penalty on actor logits ("policy
                regularization coefficient", 0.001).
            critic_regularization_coefficient: Weight of MAAC's attention-logit
                penalty 1e-3 * mean(logits^2) in the critic loss (1.0).
            actor_grad_clip: Max gradient norm per actor ("policy clip grad", 0.5).
            critic_grad_clip: Max critic gradient norm; None means 10 * n_agents.
            actor_hidden_sizes: Hidden layer sizes of each actor ((128, 128)).
            critic_hidden_dim: Embedding width of the attention critic (128).
            critic_attention_heads: Attention heads of the critic (4).
            input_normalization: "auto" (default), True or False. True is
                MAAC's input normalisation (Iqbal & Sha, 2019, on which the
                paper builds): ``BatchNorm1d(affine=False)``
                on each actor's flat observation and on the input of every
                critic encoder (o_i and (o_i, a_i)). Differentiated learner
                passes use batch statistics; EnvRunners and all no-grad
                evaluations use the running statistics, which travel with the
                actor weights and are checkpointed. Unscaled observations
                (e.g. 0-255 pixels) then train as scaled ones do; False feeds
                raw observations to the networks. "auto" is True when some
                agent's observation space declares values beyond ±100 and
                False otherwise: on Spread, MAAC with normalisation learned
                markedly slower (-52 vs -44 at 60k steps, BENCHMARKS.md).
                True needs train_batch_size_per_learner >= 2.
            replay_buffer_capacity: Joint transitions kept (1,000,000).
            env_steps_per_update: Joint env steps sampled between update rounds
                ("steps per update", 100).
            num_updates_per_round: Gradient updates per round ("num epochs per
                step", 4); each uses `train_batch_size_per_learner` rows (1024).
            num_steps_sampled_before_learning_starts: Buffer size before the
                first update; None means one full train batch.
            trust_region_mode: "learned" (MAMT, default), "none" (MAAC), "equal"
                (MAMD), "manual" (MAMD-OP), or the Table 10 ablations
                "fixed_coef" (C = 1/(n-1)), "random_coef" (C = softmax(U(0,1)))
                and "weighted_sum" (MAMT-WS: D_ns from consecutive policies).
            trust_region_budget: Joint trust region delta of Eq. 1-2; None means
                n_agents (so delta_i = 1 in "equal" mode). The paper gives no value; the
                authors' code runs MAMD with delta_i = 10 (DESIGN.md §3).
            trust_region_budget_constraint: How learned delta_i meet the budget
                sum_i delta_i <= delta of §3.2 in the "hypergradient" reading.
                "equality" (default): after every step delta is scaled onto
                sum_i delta_i = budget, so the joint trust region is
                redistributed between agents, never shrunk as a whole.
                "upper_bound": scaled only when the sum exceeds the budget, so
                every delta_i may shrink toward delta_min together (on
                Spread-3-Mix all three did within 50k steps, see BENCHMARKS.md).
            trust_region_bounds: (delta_min, delta_max) each delta_i must stay in
                ("trust-region clip", 0.01 to 100).
            trust_region_deltas: For "manual": {agent_id: delta_i}; agents not
                listed have no trust-region constraint.
            mirror_descent_lag: m, the number of updates between refreshes of the
                old actor pi_psi_old ("num of iteration delay in mirror descent", 100).
            tsallis_q: q of the Tsallis logarithm in the mirror-descent term (0.2;
                q = 1 is the ordinary KL divergence).
            coordination_threshold: sigma of Eq. 5: coefficients below it are
                zeroed (Table 3 "delta in coordination coefficient", 0.2).
            coordination_normalization: How Eq. 5 turns counterfactual
                influences |Q_i(a_\\j) - Q_i(a)| into C. "relative" (default):
                C_ij = min(1, influence_ij / batch mean of agent i's own
                influence), so C does not depend on the reward scale or n and
                can be ~0 for every j (rllib_mamt.algorithms.mamt.coordination.relative_coefficients).
                "paper": Eq. 5 as printed, a softmax over j != i (rows sum
                to one: C = 1 for n = 2; a uniform row 1/(n-1) < sigma is 0).
            coordination_batch_size: Rows of each batch on which C, D_ns (Eq. 5-6)
                and the TRD-Net / delta losses (Eq. 7-8) are computed (128; None:
                the whole batch). Eq. 5 costs O(n^2 |A| H^2) per row.
            non_stationarity_range: (low, high) of the projection Pi_ns of Eq. 6
                (0 to 10; the paper gives no range).
            opponent_model_lr: Adam learning rate of the opponent models (1e-3).
            opponent_model_logit_regularization: L2 penalty on their logits (0.001).
            opponent_model_grad_clip: Their max gradient norm (0.5).
            trd_lr: Adam learning rate beta of the TRD-Net parameters theta (1e-3).
            trd_grad_clip: Max TRD-Net gradient norm; None means 10 * n_agents.
            trd_hidden_dim: Embedding width of the TRD-Net (64).
            trd_message_passing_layers: Message-passing (GNN) layers (2).
            trd_updates_per_delta_update: theta steps per delta step, the
                two-timescale update of Eq. 8 (2).
            delta_lr: Adam learning rate alpha of log delta_i (1e-3; the paper
                uses equal rates and more theta steps).
            trust_region_budget_penalty: Weight of ReLU(sum_i delta_i - delta) in
                Eq. 8 (1.0).
            learner_torch_threads: Torch intra-op threads of each learner
                process; None (default) uses the CPUs the learner was given
                (``num_cpus_per_learner``; for the local learner in the driver
                ``max(num_cpus_per_learner, num_cpus_for_main_process)``, 1 by
                default). Not a paper setting: torch's default of one thread per
                core made the driver's learner 8-25x slower on a busy machine.
            critic_weight_decay: L2 weight decay of the critic's Adam optimiser
                (MAAC and the authors' code: 1e-3).
            critic_target_entropy: The entropy term of the critic target y_i
                (Eq. 9). "maac" (default, MAAC's attention_sac): y_i = r_i +
                gamma (1 - d) E_{a'~pi_bar}[Q_bar_i(o', a')] - alpha
                E_{a'_i~pi_bar_i}[log pi_bar_i(a'_i|o'_i)], the target policy's
                own log-probability, outside the discount. "paper": Eq. 9 as
                printed (with the terminal mask): y_i = r_i + gamma (1 - d)
                E_{a'~pi_bar}[Q_bar_i(o', a') - alpha log pi_i(a'_i|o'_i)], the
                current policy's log-probability (a cross-entropy) inside it.
                Both take agent i's own next action in exact expectation.
            mirror_descent_entropy: Whether the mirror-descent actors of MAMD
                and MAMT keep MAAC's entropy term alpha log pi_i next to the
                trust-region term D_q(pi_i || pi_old)/delta_i (default True).
                False: Eq. 10 as printed, which has none. MAAC ("none") always
                keeps it.
            update_order: "critic_first" (default, MAAC): the critic takes its
                step, then the actor and trust-region losses are built with the
                updated critic. "simultaneous": every loss of an update is built
                from the pre-step parameters and all optimisers step together.
            trust_region_update: How learned delta_i and the TRD-Net follow
                F(delta) of §3.2 / Eq. 8 (see rllib_mamt.algorithms.mamt.trust_region_learning).
                "hypergradient" (default): one-step hypergradients of each
                agent's mirror-descent step give dV_j/d delta_j and, through C,
                d sum_i D_ns,i / d delta_j; the TRD-Net is fitted on rows with
                perturbed delta; delta is stepped by a shared-scale Adam and
                projected exactly onto the budget. "literal": the reading used
                before issue 10 (constant delta input, D_q/delta^2 as the value
                gradient, per-coordinate Adam, ReLU budget term).
            trust_region_step: The geometry of the "hypergradient" reading's
                step of log delta along F(delta) of Eq. 8
                (rllib_mamt.algorithms.mamt.delta_allocation.log_delta_gradient).
                "mirror_descent" (default): log delta_j moves along
                dF/d delta_j, the exponentiated-gradient step on the budget
                simplex, whose fixed point is delta_j proportional to agent j's
                net slope (value minus drift) and the even split between
                agents with equal slopes. "log_space": log delta_j moves along
                dF/d log delta_j (the default up to session 8); with the budget
                projection, equal slopes leave delta random-walking and unequal
                ones drive it to a corner of trust_region_bounds. With
                trust_region_update="literal" only the default is accepted (that
                reading does not use this key).
            learner_precision: Arithmetic of the learner's forward passes
                (rllib_mamt.learner_precision). "float32" (default): fp32
                throughout. "bfloat16": forward passes under torch.autocast
                with bf16 on the learner's device (CPU or CUDA), losses,
                gradients and optimiser state in fp32 (mixed precision; bf16
                needs no loss scaling). Not a paper setting: faster where the
                CPU/GPU has bf16 matrix units, at ~3 significant digits per
                product (speed and learning A/B: BENCHMARKS.md).
        """
        super().training(**kwargs)
        given = dict(locals())
        for name in (
            "actor_lr", "critic_lr", "adam_epsilon", "tau", "reward_scale",
            "standardize_rewards", "actor_logit_regularization",
            "critic_regularization_coefficient", "actor_grad_clip",
            "critic_grad_clip", "actor_hidden_sizes", "critic_hidden_dim",
            "critic_attention_heads", "input_normalization", "replay_buffer_capacity",
            "env_steps_per_update", "num_updates_per_round",
            "num_steps_sampled_before_learning_starts", "trust_region_mode",
            "trust_region_budget", "trust_region_bounds", "trust_region_deltas",
            "mirror_descent_lag", "tsallis_q", "coordination_threshold",
            "coordination_normalization",
            "coordination_batch_size", "non_stationarity_range",
            "opponent_model_lr", "opponent_model_logit_regularization",
            "opponent_model_grad_clip", "trd_lr", "trd_grad_clip",
            "trd_hidden_dim", "trd_message_passing_layers",
            "trd_updates_per_delta_update", "delta_lr",
            "trust_region_budget_penalty", "learner_torch_threads",
            "critic_weight_decay", "critic_target_entropy", "mirror_descent_entropy",
            "update_order", "trust_region_update", "trust_region_step",
            "trust_region_budget_constraint",
            "learner_precision",
        ):
            if given[name] is not NotProvided:
                setattr(self, name, given[name])
        return self

    def validate_algorithm_settings(self) -> None:
        from rllib_mamt.config_validation import validate_mamt_settings

        validate_mamt_settings(self)

    def probe_agents(self):
        from rllib_mamt.config_validation import probe_agents

        return probe_agents(self)

    def validate_agents(self) -> None:
        from rllib_mamt.config_validation import validate_learnable_deltas

        self.require_batch_for_normalization()
        validate_learnable_deltas(self)

    def resolved_trust_region_deltas(self) -> List[float]:
        """delta_i per agent for the configured mode (``inf`` = unconstrained)."""
        agents = self.agent_ids()
        n = len(agents)
        budget = joint_trust_region_budget(self.trust_region_budget, n)
        if self.trust_region_mode == "none":
            return [math.inf] * n
        if self.trust_region_mode == "equal":
            return [budget / n] * n
        if self.learns_trust_regions():
            low, high = self.trust_region_bounds
            return [min(max(budget / n, low), high)] * n
        deltas = self.trust_region_deltas or {}
        return [float(deltas.get(agent, math.inf)) for agent in agents]

    def learns_trust_regions(self) -> bool:
        """Whether delta_i is learned (MAMT and its Table 10 ablations)."""
        return self.trust_region_mode in LEARNED_TRUST_REGION_MODES

    @override(AlgorithmConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(
            module_class=MAMTActorModule,
            model_config={
                "actor_hidden_sizes": list(self.actor_hidden_sizes),
                "input_normalization": self.resolved_input_normalization(),
            },
        )

    @override(AlgorithmConfig)
    def get_default_learner_class(self):
        from rllib_mamt.algorithms.mamt.mamt_learner import MAMTTorchLearner

        return MAMTTorchLearner

    @override(AlgorithmConfig)
    def get_multi_rl_module_spec(self, *, env=None, spaces=None, inference_only=False, **kwargs) -> MultiRLModuleSpec:
        spec = super().get_multi_rl_module_spec(
            env=env, spaces=spaces, inference_only=inference_only, **kwargs
        )
        if inference_only:
            return spec
        return add_central_module(spec, MAMTCentralModule, {
            "actor_hidden_sizes": list(self.actor_hidden_sizes),
            "critic_hidden_dim": self.critic_hidden_dim,
            "critic_attention_heads": self.critic_attention_heads,
            "input_normalization": self.resolved_input_normalization(),
            "initial_trust_region_deltas": self.resolved_trust_region_deltas(),
            "learn_trust_regions": self.learns_trust_regions(),
            "use_opponent_models": self.trust_region_mode != "weighted_sum",
            "trd_hidden_dim": self.trd_hidden_dim,
            "trd_message_passing_layers": self.trd_message_passing_layers,
        })
