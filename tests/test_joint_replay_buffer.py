"""The joint replay buffer keeps each environment step's agents together."""

import gymnasium as gym
import numpy as np
import pytest

from rllib_mamt.envs.registry import make_rllib_env
from rllib_mamt.joint_replay_buffer import (
    ACTIONS,
    REWARDS,
    TERMINATEDS,
    AgentsNotSynchronousError,
    JointReplayBuffer,
    action_column_layout,
    next_obs_key,
    obs_key,
)

AGENTS = ["a", "b"]


def synthetic_rows(start, count):
    """Rows whose every column encodes the global step index."""
    steps = np.arange(start, start + count, dtype=np.float32)
    return {
        obs_key(0): np.stack([steps, steps], 1),
        next_obs_key(0): np.stack([steps + 1, steps + 1], 1),
        obs_key(1): steps[:, None] * 10,
        next_obs_key(1): (steps[:, None] + 1) * 10,
        ACTIONS: np.stack([steps % 5, (steps + 1) % 3], 1).astype(np.int64),
        REWARDS: np.stack([steps, -steps], 1),
        TERMINATEDS: np.zeros(count, np.float32),
    }


def make_buffer(capacity=50, seed=0):
    return JointReplayBuffer(capacity, AGENTS, {"a": 2, "b": 1}, seed=seed)


def test_sampled_rows_stay_aligned_across_agents_and_columns():
    buffer = make_buffer()
    buffer.add(synthetic_rows(0, 30))
    buffer.add(synthetic_rows(30, 40))  # wraps around the ring
    assert len(buffer) == 50
    batch = buffer.sample(200)
    step = batch[obs_key(0)][:, 0]
    assert step.min() >= 20  # the 20 oldest rows were overwritten
    np.testing.assert_array_equal(batch[obs_key(1)][:, 0], step * 10)
    np.testing.assert_array_equal(batch[next_obs_key(0)][:, 1], step + 1)
    np.testing.assert_array_equal(batch[ACTIONS][:, 0], step % 5)
    np.testing.assert_array_equal(batch[ACTIONS][:, 1], (step + 1) % 3)
    np.testing.assert_array_equal(batch[REWARDS][:, 1], -step)


def test_reward_statistics_track_exactly_the_rows_stored():
    buffer = make_buffer(capacity=25)
    for start in range(0, 100, 7):
        buffer.add(synthetic_rows(start, 7))
    stored = np.arange(105 - 25, 105, dtype=np.float64)
    mean, std = buffer.reward_statistics()
    np.testing.assert_allclose(mean, [stored.mean(), -stored.mean()], rtol=1e-5)
    np.testing.assert_allclose(std, [stored.std(), stored.std()], rtol=1e-4)
    standardized = buffer.sample(64, standardize_rewards=True)[REWARDS]
    assert np.abs(standardized).max() < 2.0


def test_state_round_trip_continues_the_same_sample_sequence():
    buffer = make_buffer(seed=3)
    buffer.add(synthetic_rows(0, 45))
    restored = make_buffer(seed=99)
    restored.set_state(buffer.get_state())
    for _ in range(3):
        a, b = buffer.sample(16), restored.sample(16)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    buffer.add(synthetic_rows(45, 10))
    restored.add(synthetic_rows(45, 10))
    np.testing.assert_array_equal(buffer.sample(8)[ACTIONS], restored.sample(8)[ACTIONS])


@pytest.mark.parametrize("runner", ["JointEnvRunner", "MultiAgentEnvRunner"])
def test_real_episodes_become_aligned_joint_rows(ray_session, runner):
    """Spread observations contain the other agent's relative position, which
    must be the negative of the other agent's view in the same row; with MAMT's
    joint sampler and with RLlib's episodes converted by the buffer."""
    from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner

    from rllib_mamt.joint_env_runner import JointEnvRunner
    from tests.conftest import tiny_spread_config

    runner_class = {"JointEnvRunner": JointEnvRunner,
                    "MultiAgentEnvRunner": MultiAgentEnvRunner}[runner]
    algo = tiny_spread_config().env_runners(env_runner_cls=runner_class).build_algo()
    try:
        episodes = algo.env_runner.sample(num_timesteps=60, random_actions=True)
        assert type(algo.env_runner) is runner_class
        buffer = JointReplayBuffer(500, ["agent_0", "agent_1"], {"agent_0": 12, "agent_1": 12})
        assert buffer.add_episodes(episodes) == sum(len(e) for e in episodes)
        batch = buffer.sample(200)
        np.testing.assert_allclose(batch[obs_key(0)][:, 8:10], -batch[obs_key(1)][:, 8:10], atol=1e-5)
        np.testing.assert_allclose(
            batch[obs_key(0)][:, 2:4] + batch[obs_key(0)][:, 8:10], batch[obs_key(1)][:, 2:4], atol=1e-5
        )
        np.testing.assert_allclose(
            batch[next_obs_key(0)][:, 8:10], -batch[next_obs_key(1)][:, 8:10], atol=1e-5
        )
        # Spread rewards are shared: both agents' rewards are equal in every row.
        np.testing.assert_allclose(batch[REWARDS][:, 0], batch[REWARDS][:, 1])
        # Time-limit ends are truncations, never terminal states.
        assert batch[TERMINATEDS].sum() == 0
    finally:
        algo.stop()


class _OneAgentMissing:
    """Stand-in episode in which agent 'b' acted in fewer steps than 'a'."""

    class _AgentEpisode:
        def __init__(self, length):
            self.length = length

        def __len__(self):
            return self.length

    def __init__(self):
        self.agent_episodes = {"a": self._AgentEpisode(5), "b": self._AgentEpisode(3)}

    def __len__(self):
        return 5


def test_an_agent_skipping_steps_is_rejected_with_a_clear_error():
    with pytest.raises(AgentsNotSynchronousError, match="'b' acted in 3 of 5"):
        make_buffer().add_episodes([_OneAgentMissing()])


def test_spread_env_lists_agents_sorted():
    env = make_rllib_env("spread", {"n_agents": 3})
    assert env.possible_agents == ["agent_0", "agent_1", "agent_2"]


BOX_SPACES = {
    "a": gym.spaces.Box(-1.0, 1.0, (3,), np.float32),
    "b": gym.spaces.Box(np.array([0.0, -5.0], np.float32), np.array([2.0, 5.0], np.float32)),
}


def box_rows(start, count, rng):
    """Synthetic rows with float action vectors (b's 2-vector zero-padded to 3)."""
    rows = synthetic_rows(start, count)
    actions = np.zeros((count, 2, 3), np.float32)
    actions[:, 0] = rng.uniform(-1, 1, (count, 3)).astype(np.float32)
    actions[:, 1, :2] = rng.uniform([0, -5], [2, 5], (count, 2)).astype(np.float32)
    actions[:, :, 0] += np.arange(start, start + count, dtype=np.float32)[:, None] * 1e-3
    rows[ACTIONS] = actions
    return rows


def test_box_actions_get_a_float_vector_column():
    dtype, shape = action_column_layout(BOX_SPACES, AGENTS)
    assert (dtype, shape) == (np.float32, (2, 3))
    discrete = {"a": gym.spaces.Discrete(5), "b": gym.spaces.Discrete(3)}
    assert action_column_layout(discrete, AGENTS) == (np.int64, (2,))
    wide = {**BOX_SPACES, "a": gym.spaces.Box(-1.0, 1.0, (3,), np.float64)}
    assert action_column_layout(wide, AGENTS)[0] == np.float64
    with pytest.raises(ValueError, match=r"^JointReplayBuffer: 'action_spaces' = .*allowed"):
        action_column_layout({"a": BOX_SPACES["a"], "b": discrete["b"]}, AGENTS)


def test_float_actions_round_trip_exactly_through_sampling_and_state():
    rng = np.random.default_rng(0)
    buffer = JointReplayBuffer(50, AGENTS, {"a": 2, "b": 1}, seed=1, action_spaces=BOX_SPACES)
    rows = box_rows(0, 40, rng)
    buffer.add(rows)
    batch = buffer.sample(100)
    step = batch[obs_key(0)][:, 0].astype(np.int64)
    assert batch[ACTIONS].dtype == np.float32
    np.testing.assert_array_equal(batch[ACTIONS], rows[ACTIONS][step])  # bit-exact
    assert (batch[ACTIONS][:, 1, 2] == 0).all()  # b's padding
    restored = JointReplayBuffer(50, AGENTS, {"a": 2, "b": 1}, seed=7,
                                 action_spaces=BOX_SPACES)
    restored.set_state(buffer.get_state())
    more = box_rows(40, 20, rng)  # wraps the ring in both buffers
    buffer.add(more)
    restored.add(more)
    np.testing.assert_array_equal(buffer.sample(64)[ACTIONS], restored.sample(64)[ACTIONS])


def test_actions_that_do_not_fit_the_column_are_rejected():
    buffer = JointReplayBuffer(50, AGENTS, {"a": 2, "b": 1}, action_spaces=BOX_SPACES)
    rows = box_rows(0, 4, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"^JointReplayBuffer: 'actions' of shape \(2,\)"):
        buffer.add({**rows, ACTIONS: np.zeros((4, 2), np.int64)})
    with pytest.raises(ValueError, match=r"dtype float64 are invalid"):
        buffer.add({**rows, ACTIONS: rows[ACTIONS].astype(np.float64)})
    assert len(buffer) == 0
