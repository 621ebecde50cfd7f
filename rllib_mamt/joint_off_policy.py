"""The off-policy loop of MAMT, MADDPG and LOLA as one RLlib ``Algorithm`` base.

One ``training_step`` = one round of the paper's Algorithm 2: sample
``env_steps_per_update`` joint env steps from the (parallel) EnvRunners into the
joint replay buffer, then, once the buffer holds enough rows,
``num_updates_per_round`` learner updates on freshly sampled minibatches, then
push the new actor weights to the EnvRunners. RLlib repeats training steps until
an iteration has sampled ``min_sample_timesteps_per_iteration`` env steps. The
buffer is part of every checkpoint, and so are the local EnvRunner's episode
numbers and generators (``JointEnvRunner``): a run restored between episodes
continues exactly as the uninterrupted run.
"""

from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    TIMERS,
)

from rllib_mamt.joint_replay_buffer import JointReplayBuffer
from rllib_mamt.learner_updates import update_learners_and_sync_actors
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID

REPLAY_BUFFER_STATE = "mamt_joint_replay_buffer"


class JointOffPolicyAlgorithm(Algorithm):
    """Off-policy training loop on joint transitions (Algorithm 2, lines 3-21),
    shared by MAMT, MADDPG and LOLA: they differ only in their config, modules
    and learner."""

    @override(Algorithm)
    def setup(self, config: AlgorithmConfig) -> None:
        super().setup(config)
        agents = self.config.agent_ids()
        self.joint_replay_buffer = JointReplayBuffer(
            capacity=self.config.replay_buffer_capacity,
            agent_ids=agents,
            observation_sizes=self.config.agent_observation_sizes(),
            seed=self.config.seed,
            action_spaces=self.config.agent_action_spaces(),
        )

    @override(Algorithm)
    def training_step(self) -> None:
        self.sample_into_buffer()
        if len(self.joint_replay_buffer) >= self.config.first_update_buffer_size():
            self.update_from_buffer()

    def sample_into_buffer(self) -> int:
        """Samples one round of joint env steps into the joint replay buffer."""
        with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
            episodes, env_runner_results = synchronous_parallel_sample(
                worker_set=self.env_runner_group,
                max_env_steps=self.config.env_steps_per_update,
                sample_timeout_s=self.config.sample_timeout_s,
                _uses_new_env_runners=True,
                _return_metrics=True,
            )
        self.metrics.aggregate(env_runner_results, key=ENV_RUNNER_RESULTS)
        added = self.joint_replay_buffer.add_episodes(episodes)
        self.metrics.log_value("replay_buffer_size", len(self.joint_replay_buffer), window=1)
        return added

    def minibatches_per_update(self) -> int:
        """Fresh minibatches of ``train_batch_size_per_learner`` rows one
        learner update takes (MADDPG: one per agent)."""
        return 1

    def update_from_buffer(self) -> None:
        """Runs one round of learner updates on batches drawn from the buffer."""
        config = self.config
        minibatches = self.minibatches_per_update()
        per_learner = minibatches * config.train_batch_size_per_learner
        rows = self.joint_replay_buffer.sample(
            config.num_updates_per_round * minibatches * config.total_train_batch_size,
            standardize_rewards=config.standardize_rewards,
        )
        batch = MultiAgentBatch(
            {CENTRAL_MODULE_ID: SampleBatch(rows)},
            env_steps=len(rows["actions"]),
        )
        update_learners_and_sync_actors(self, batch, minibatch_size=per_learner, num_epochs=1)

    @override(Algorithm)
    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        state[REPLAY_BUFFER_STATE] = self.joint_replay_buffer.get_state()
        return state

    @override(Algorithm)
    def set_state(self, state) -> None:
        super().set_state(state)
        if REPLAY_BUFFER_STATE in state:
            self.joint_replay_buffer.set_state(state[REPLAY_BUFFER_STATE])
