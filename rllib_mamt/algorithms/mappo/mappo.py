"""MA-PPO (the paper's baseline: PPO with a MADDPG-style centralised critic) as
an RLlib ``Algorithm``.

One ``training_step`` = one PPO iteration: the JointEnvRunners sample about
``train_batch_size_per_learner`` joint env steps with the current actors
(each sub-env continues its episodes from the previous iteration); each
chunk's rows are laid out as per-sub-env trajectories, their rewards scaled
by the running std of discounted returns (``normalize_rewards``); the learner
computes old log-probs, values and GAE on the whole batch and runs
``num_epochs`` of minibatch PPO steps
(:mod:`rllib_mamt.algorithms.mappo.mappo_learner`); then the new actor
weights go to the EnvRunners. The reward statistics are saved with every
checkpoint.
"""

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    TIMERS,
)

from rllib_mamt.algorithms.mappo.mappo_config import MAPPOConfig
from rllib_mamt.algorithms.mappo.reward_normalization import ReturnScaler
from rllib_mamt.algorithms.mappo.trajectories import sort_by_sub_env, trajectory_rows
from rllib_mamt.joint_replay_buffer import ACTIONS
from rllib_mamt.learner_updates import update_learners_and_sync_actors
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID

RETURN_SCALER_STATE = "mappo_return_scaler"


class MAPPO(Algorithm):
    """Multi-agent PPO with decentralised actors pi_i(a_i | o_i) and a
    centralised attention critic V_i(o_1..o_n); see :class:`MAPPOConfig`."""

    @classmethod
    @override(Algorithm)
    def get_default_config(cls) -> MAPPOConfig:
        return MAPPOConfig(cls)

    @override(Algorithm)
    def setup(self, config: MAPPOConfig) -> None:
        super().setup(config)
        self.return_scaler = (
            ReturnScaler(len(self.config.agent_ids()), self.config.gamma)
            if self.config.normalize_rewards else None
        )

    @override(Algorithm)
    def training_step(self) -> None:
        batch = self.sample_train_batch()
        if batch is not None:
            self.update_from_batch(batch)

    def update_from_batch(self, batch: MultiAgentBatch) -> None:
        """One PPO iteration on ``batch`` (``num_epochs`` passes of minibatch
        steps), then the new actor weights to the EnvRunners."""
        update_learners_and_sync_actors(
            self, batch,
            minibatch_size=self.config.minibatch_size,
            num_epochs=self.config.num_epochs,
            shuffle_batch_per_epoch=self.config.shuffle_batch_per_epoch,
        )

    def sample_train_batch(self):
        """Samples one on-policy train batch as a ``MultiAgentBatch`` of joint
        rows in trajectory order (None if nothing was sampled)."""
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            chunks, env_runner_results = synchronous_parallel_sample(
                worker_set=self.env_runner_group,
                max_env_steps=self.config.total_train_batch_size,
                sample_timeout_s=self.config.sample_timeout_s,
                _uses_new_env_runners=True,
                _return_metrics=True,
            )
        self.metrics.aggregate(env_runner_results, key=ENV_RUNNER_RESULTS)
        rows = [sort_by_sub_env(chunk.rows) for chunk in chunks if len(chunk)]
        if not rows:
            return None
        if self.return_scaler is not None:
            rows = [self.return_scaler.scale(chunk, k) for k, chunk in enumerate(rows)]
        rows = trajectory_rows(rows)
        return MultiAgentBatch({CENTRAL_MODULE_ID: SampleBatch(rows)},
                               env_steps=len(rows[ACTIONS]))

    @override(Algorithm)
    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        if self.return_scaler is not None:
            state[RETURN_SCALER_STATE] = self.return_scaler.get_state()
        return state

    @override(Algorithm)
    def set_state(self, state) -> None:
        super().set_state(state)
        if self.return_scaler is not None and RETURN_SCALER_STATE in state:
            self.return_scaler.set_state(state[RETURN_SCALER_STATE])
