"""MADDPG (Lowe et al., 2017) as an RLlib ``Algorithm``.

MADDPG runs the shared off-policy loop
(:class:`rllib_mamt.joint_off_policy.JointOffPolicyAlgorithm`) unchanged: a ``training_step`` samples
``env_steps_per_update`` joint env steps from the JointEnvRunners into the
joint replay buffer, then, once the buffer holds enough rows, runs
``num_updates_per_round`` learner updates and pushes the new actor weights to
the EnvRunners; the buffer is saved with every checkpoint. It differs only in
its learner (:mod:`rllib_mamt.algorithms.maddpg.maddpg_learner`) and in how
many rows one update takes: each agent updates on its own minibatch, as in
the reference code (maddpg-pytorch), so an update takes n_agents minibatches.
"""

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TIMERS,
)

from rllib_mamt.algorithms.maddpg.maddpg_config import MADDPGConfig
from rllib_mamt.joint_off_policy import JointOffPolicyAlgorithm
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID


class MADDPG(JointOffPolicyAlgorithm):
    """Multi-Agent Deep Deterministic Policy Gradient with discrete actions
    (straight-through Gumbel-softmax) or Box actions (deterministic tanh actors
    with Gaussian exploration noise), centralised critics Q_i(o, a) and
    soft-updated target networks; see :class:`MADDPGConfig` for the settings."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> MADDPGConfig:
        return MADDPGConfig(cls)

    @override(JointOffPolicyAlgorithm)
    def update_from_buffer(self) -> None:
        """Runs one round of learner updates, each on n_agents fresh minibatches."""
        config = self.config
        num_agents = len(config.agent_ids())
        per_update = num_agents * config.train_batch_size_per_learner
        rows = self.joint_replay_buffer.sample(
            config.num_updates_per_round * num_agents * config.total_train_batch_size,
            standardize_rewards=config.standardize_rewards,
        )
        batch = MultiAgentBatch(
            {CENTRAL_MODULE_ID: SampleBatch(rows)},
            env_steps=len(rows["actions"]),
        )
        with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
            learner_results = self.learner_group.update(
                batch=batch,
                minibatch_size=per_update,
                num_epochs=1,
                timesteps={
                    NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                        (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0
                    )
                },
            )
        self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self.env_runner_group.sync_weights(
                from_worker_or_learner_group=self.learner_group,
                policies=config.agent_ids(),
                inference_only=True,
            )
