"""Rover-Tower against its specification (DESIGN.md §5)."""

import numpy as np
import pytest

from rllib_mamt.envs import rover_tower as rt
from rllib_mamt.envs.rover_tower import RoverTowerEnv


def noop_actions(env, **overrides):
    actions = {agent: 0 for agent in env.possible_agents}
    actions.update(overrides)
    return actions


def test_observations_encode_the_random_pairing():
    env = RoverTowerEnv()
    observations, _ = env.reset(seed=7)
    assert sorted(env.tower_to_rover.tolist()) == [0, 1, 2, 3]
    for t in range(4):
        r = env.tower_to_rover[t]
        tower_obs, rover_obs = observations[f"tower_{t}"], observations[f"rover_{r}"]
        assert tower_obs.shape == (8,) and rover_obs.shape == (13,)
        assert np.argmax(tower_obs[:4]) == r and tower_obs[:4].sum() == 1
        assert np.argmax(rover_obs[:4]) == t and rover_obs[:4].sum() == 1
        np.testing.assert_allclose(tower_obs[4:6], env.rover_positions[r], rtol=1e-6)
        np.testing.assert_allclose(tower_obs[6:8], env.landmark_positions[env.goal_landmark[t]], rtol=1e-6)
        np.testing.assert_allclose(rover_obs[9:11], env.rover_positions[r], rtol=1e-6)
        assert np.all(rover_obs[4:9] == 0) and np.all(rover_obs[11:13] == 0)  # no message, at rest


def test_pairing_and_goals_vary_with_the_seed_and_repeat_with_it():
    first, second, other = RoverTowerEnv(), RoverTowerEnv(), RoverTowerEnv()
    first.reset(seed=1), second.reset(seed=1), other.reset(seed=2)
    assert np.array_equal(first.tower_to_rover, second.tower_to_rover)
    np.testing.assert_array_equal(first.landmark_positions, second.landmark_positions)
    assert not np.array_equal(first.landmark_positions, other.landmark_positions)
    assert first.landmark_positions.shape == (6, 2)
    assert np.all(np.abs(first.rover_positions) <= 1) and np.all(np.abs(first.landmark_positions) <= 1)


def test_tower_message_reaches_its_rover_in_the_same_step():
    env = RoverTowerEnv()
    env.reset(seed=3)
    tower = 2
    rover = env.tower_to_rover[tower]
    observations, *_ = env.step(noop_actions(env, **{f"tower_{tower}": 3}))
    message = observations[f"rover_{rover}"][4:9]
    assert message.tolist() == [0, 0, 0, 1, 0]
    for other_rover in range(4):
        if other_rover != rover:
            assert observations[f"rover_{other_rover}"][4:9].tolist() != [0, 0, 0, 1, 0]


def test_physics_constants_and_one_step_from_rest():
    assert (rt.DT, rt.DAMPING, rt.MAX_SPEED, rt.FORCE) == (0.1, 0.25, 1.0, 2.25)
    assert (rt.ROVER_SIZE, rt.LANDMARK_SIZE) == (0.075, 0.04)
    env = RoverTowerEnv()
    env.reset(seed=0)
    start = env.rover_positions.copy()
    env.step(noop_actions(env, rover_0=1, rover_1=4))  # +x and -y
    np.testing.assert_allclose(env.rover_velocities[0], [0.225, 0.0])
    np.testing.assert_allclose(env.rover_velocities[1], [0.0, -0.225])
    np.testing.assert_allclose(env.rover_positions[0], start[0] + [0.0225, 0.0])
    np.testing.assert_allclose(env.rover_positions[2], start[2])
    env.step(noop_actions(env, rover_0=1))
    np.testing.assert_allclose(env.rover_velocities[0], [0.75 * 0.225 + 0.225, 0.0])


def test_terminal_speed_under_one_force_and_the_speed_cap():
    env = RoverTowerEnv(max_cycles=100)
    env.reset(seed=0)
    for _ in range(80):
        env.step(noop_actions(env, rover_0=3))
    # v <- 0.75 v + 0.225 converges to 0.9, below the cap.
    assert np.linalg.norm(env.rover_velocities[0]) == pytest.approx(0.9, abs=1e-6)
    env.rover_velocities[1] = [3.0, 4.0]
    env.step(noop_actions(env))
    np.testing.assert_allclose(env.rover_velocities[1], [0.6, 0.8])  # 0.75*(3,4) capped to norm 1


def test_pair_reward_is_negative_squared_distance_plus_bonus_for_both_members():
    env = RoverTowerEnv()
    env.reset(seed=5)
    tower = 1
    rover = env.tower_to_rover[tower]
    goal = env.landmark_positions[env.goal_landmark[tower]]
    offset = np.sqrt(0.1) / np.sqrt(2)  # squared distance 0.1 < 0.1725 after the step
    env.rover_positions[rover] = goal + [offset, offset]
    env.rover_velocities[:] = 0
    _, rewards, *_ = env.step(noop_actions(env))
    assert rewards[f"tower_{tower}"] == pytest.approx(-0.1 + 10.0)
    assert rewards[f"rover_{rover}"] == rewards[f"tower_{tower}"]
    env.rover_positions[rover] = goal + [0.3, 0.3]  # squared distance 0.18 >= 0.1725
    _, rewards, *_ = env.step(noop_actions(env))
    assert rewards[f"tower_{tower}"] == pytest.approx(-0.18)
    other = (tower + 1) % 4
    other_goal = env.landmark_positions[env.goal_landmark[other]]
    squared = ((env.rover_positions[env.tower_to_rover[other]] - other_goal) ** 2).sum()
    expected = -squared + (10.0 if squared < 0.1725 else 0.0)
    assert rewards[f"tower_{other}"] == pytest.approx(expected)


def test_episode_is_truncated_at_max_cycles_never_terminated():
    env = RoverTowerEnv(max_cycles=4)
    env.reset(seed=0)
    for step in range(4):
        _, _, terminations, truncations, _ = env.step(noop_actions(env))
        assert not any(terminations.values())
        assert all(truncations.values()) == (step == 3)
    assert env.agents == []


def test_render_returns_an_rgb_image():
    env = RoverTowerEnv(render_mode="rgb_array")
    env.reset(seed=0)
    image = env.render()
    assert image.dtype == np.uint8 and image.shape == (256, 256, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 2  # something was drawn


def test_bad_arguments_name_the_key():
    with pytest.raises(ValueError, match="'n_landmarks'"):
        RoverTowerEnv(n_landmarks=0)
    with pytest.raises(ValueError, match="'render_mode'"):
        RoverTowerEnv(render_mode="human")
