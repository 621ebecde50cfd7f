"""The joint buffer stores observations in the narrowest lossless dtype."""

import numpy as np

from rllib_mamt.joint_replay_buffer import (
    ACTIONS,
    REWARDS,
    TERMINATEDS,
    JointReplayBuffer,
    next_obs_key,
    obs_key,
)
from rllib_mamt.lossless_storage import narrowest_lossless_dtype

AGENTS = ["a", "b"]
SIZE = 6


def rows(observations_a, observations_b):
    count = len(observations_a)
    return {
        obs_key(0): observations_a,
        next_obs_key(0): observations_a + 1,
        obs_key(1): observations_b,
        next_obs_key(1): observations_b,
        ACTIONS: np.zeros((count, 2), np.int64),
        REWARDS: np.zeros((count, 2), np.float32),
        TERMINATEDS: np.zeros(count, np.float32),
    }


def test_dtype_choice_is_exact():
    assert narrowest_lossless_dtype(np.array([0, 3, 255.0]), np.uint8) == np.uint8
    assert narrowest_lossless_dtype(np.array([0, 256.0]), np.uint8) == np.float16
    assert narrowest_lossless_dtype(np.array([-1.0, 0.5]), np.uint8) == np.float16
    assert narrowest_lossless_dtype(np.array([0.1]), np.uint8) == np.float32
    assert narrowest_lossless_dtype(np.array([3.0]), np.float16) == np.float16
    assert narrowest_lossless_dtype(np.array([np.nan]), np.uint8) == np.float32


def test_grid_counts_take_a_quarter_of_float32_and_read_back_exactly():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 4, (40, SIZE)).astype(np.float32)
    buffer = JointReplayBuffer(100, AGENTS, {"a": SIZE, "b": SIZE}, seed=0)
    buffer.add(rows(counts, counts * 2))
    other_columns = 8 * 2 + 4 * 2 + 4 + 2 * 4 * 2  # actions, rewards, d, alive masks
    float32_bytes = 4 * 4 * SIZE + other_columns
    assert buffer.bytes_per_row() == 4 * SIZE + other_columns
    assert buffer.bytes_per_row() < float32_bytes / 2
    batch = buffer.sample(500)
    assert batch[obs_key(0)].dtype == np.float32
    assert set(np.unique(batch[obs_key(0)])) <= {0.0, 1.0, 2.0, 3.0}


def test_a_column_widens_without_changing_rows_already_stored():
    buffer = JointReplayBuffer(10, AGENTS, {"a": SIZE, "b": SIZE}, seed=0)
    first = np.arange(4 * SIZE, dtype=np.float32).reshape(4, SIZE)
    second = first * 0.1 + 1000.0  # needs float32
    buffer.add(rows(first, first))
    buffer.add(rows(second, first))
    stored = buffer.get_state()["columns"]
    assert stored[obs_key(0)].dtype == np.float32
    assert stored[obs_key(1)].dtype == np.uint8
    np.testing.assert_array_equal(stored[obs_key(0)][:4], first)
    np.testing.assert_array_equal(stored[obs_key(0)][4:8], second)


def test_state_round_trip_keeps_dtypes_and_sampling_exact():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 9, (30, SIZE)).astype(np.float32)
    source = JointReplayBuffer(50, AGENTS, {"a": SIZE, "b": SIZE}, seed=3)
    source.add(rows(values, values * 0.5))  # b: halves, float16-exact
    restored = JointReplayBuffer(50, AGENTS, {"a": SIZE, "b": SIZE}, seed=99)
    restored.set_state(source.get_state())
    assert restored.bytes_per_row() == source.bytes_per_row()
    expected, got = source.sample(64), restored.sample(64)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])
