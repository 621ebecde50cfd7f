"""The paper's environments: PettingZoo API and seeding, registration, env_config errors."""

import warnings

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from rllib_mamt.envs.registry import ENV_FACTORIES, make_rllib_env

warnings.filterwarnings("ignore", category=UserWarning)

SHORT = {
    "spread": {"max_cycles": 10},
    "spread3_sep": {"max_cycles": 10},
    "spread3_mix": {"max_cycles": 10},
    "spread3_ful": {"max_cycles": 10},
    "rover_tower": {"max_cycles": 10},
    "pursuit": {"max_cycles": 10},
    "multiwalker": {"max_cycles": 10},
}
EXPECTED = {
    "spread": (2, (12,), 5),
    "spread3_sep": (3, (18,), 5),
    "spread3_mix": (3, (18,), 5),
    "spread3_ful": (3, (18,), 5),
    "rover_tower": (8, (13,), 5),
    "pursuit": (8, (147,), 5),
    "multiwalker": (3, (31,), 16),
}


def test_every_paper_environment_is_registered():
    assert set(ENV_FACTORIES) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pettingzoo_parallel_api(name):
    parallel_api_test(ENV_FACTORIES[name](SHORT[name]), num_cycles=30)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pettingzoo_seeding(name):
    parallel_seed_test(lambda: ENV_FACTORIES[name](SHORT[name]), num_cycles=20)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rllib_view_has_sorted_agents_and_paper_spaces(name):
    env = make_rllib_env(name, SHORT[name])
    agents, obs_shape, actions = EXPECTED[name]
    assert env.possible_agents == sorted(env.possible_agents)
    assert len(env.possible_agents) == agents
    first = env.possible_agents[0]
    assert env.observation_spaces[first].shape == obs_shape
    assert env.action_spaces[first].n == actions


@pytest.mark.parametrize(
    "name, env_config, key",
    [
        ("spread", {"n_agents": 1}, "n_agents"),
        ("spread", {"n_agents": "2"}, "n_agents"),
        ("spread", {"variant": "openai"}, "variant"),
        ("rover_tower", {"n_pairs": 0}, "n_pairs"),
        ("rover_tower", {"max_cycles": 2.5}, "max_cycles"),
        ("rover_tower", {"landmarks": 6}, "landmarks"),
        ("spread3_mix", {"n_agents": 3}, "n_agents"),
        ("pursuit", {"n_pursuers": 1}, "n_pursuers"),
        ("pursuit", {"shared_reward": 1}, "shared_reward"),
        ("multiwalker", {"action_mode": "discrete8"}, "action_mode"),
    ],
)
def test_bad_env_config_names_the_key(name, env_config, key):
    with pytest.raises(ValueError) as error:
        make_rllib_env(name, env_config)
    assert key in str(error.value) and name.split("_")[0] in str(error.value)


def test_spread3_dependency_graphs():
    graphs = {v: make_rllib_env(f"spread3_{v}").dependency_graph for v in ("sep", "mix", "ful")}
    assert graphs["sep"].sum() == 0
    assert graphs["mix"].tolist() == [[0, 0, 1], [0, 0, 0], [1, 0, 0]]
    assert graphs["ful"].tolist() == [[0, 1, 1], [1, 0, 1], [1, 1, 0]]
    for graph in graphs.values():
        assert np.array_equal(graph, graph.T) and np.all(np.diag(graph) == 0)


def run_with_agent_0_moving(name, action_for_agent_0, seed=3, steps=5):
    """Rewards after ``steps`` steps where only agent_0's action differs."""
    env = ENV_FACTORIES[name]({"max_cycles": 25})
    env.reset(seed=seed)
    for _ in range(steps):
        _, rewards, _, _, _ = env.step(
            {"agent_0": action_for_agent_0, "agent_1": 0, "agent_2": 0}
        )
    return rewards


@pytest.mark.parametrize("variant", ["sep", "mix", "ful"])
def test_spread3_reward_dependencies_follow_the_graph(variant):
    still = run_with_agent_0_moving(f"spread3_{variant}", 0)
    moved = run_with_agent_0_moving(f"spread3_{variant}", 1)
    graph = ENV_FACTORIES[f"spread3_{variant}"]().dependency_graph
    assert still["agent_0"] != moved["agent_0"]
    for other in (1, 2):
        affected = still[f"agent_{other}"] != moved[f"agent_{other}"]
        assert affected == bool(graph[0, other]), (variant, other)
    if variant == "mix":
        assert moved["agent_0"] == moved["agent_2"]


def test_multiwalker_discrete16_adds_clipped_torque_increments():
    env = ENV_FACTORIES["multiwalker"]({"max_cycles": 20})
    env.reset(seed=0)
    all_up = 15  # every bit set: +0.2 on each joint
    for step in range(1, 7):
        env.step({agent: all_up for agent in env.agents})
        expected = min(1.0, 0.2 * step)
        assert np.allclose(env._torques["walker_0"], expected)
    env.step({agent: 0 for agent in env.agents})  # all bits clear: -0.2
    assert np.allclose(env._torques["walker_0"], 0.8)
    env.reset(seed=1)
    assert np.allclose(env._torques["walker_0"], 0.0)


def test_pursuit_observation_is_the_flattened_grid():
    env = ENV_FACTORIES["pursuit"]({"max_cycles": 5})
    observations, _ = env.reset(seed=0)
    raw = env.env.observation_space("pursuer_0")
    assert raw.shape == (7, 7, 3)
    assert observations["pursuer_0"].shape == (147,)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_one_mamd_iteration_on_each_environment(ray_session, name):
    from tests.conftest import tiny_spread_config

    config = tiny_spread_config("equal").environment(name, env_config=SHORT[name])
    algo = config.build_algo()
    try:
        result = algo.train()
        agents = algo.config.agent_ids()
        assert len(agents) == EXPECTED[name][0]
        assert np.isfinite(result["learners"]["mamt_central"]["critic_loss"])
        assert all(np.isfinite(result["learners"][a]["actor_loss"]) for a in agents)
        assert result["env_runners"]["num_episodes"] > 0
    finally:
        algo.stop()


def spread_after_one_step(variant, positions, velocities, actions):
    """Positions and rewards of 2-agent Spread after one step from a hand-placed state."""
    env = ENV_FACTORIES["spread"]({"variant": variant})
    env.reset(seed=0)
    world = env.unwrapped.world
    for agent, position, velocity in zip(world.agents, positions, velocities):
        agent.state.p_pos = np.array(position, dtype=np.float64)
        agent.state.p_vel = np.array(velocity, dtype=np.float64)
    for index, landmark in enumerate(world.landmarks):
        landmark.state.p_pos = np.array([0.5 * index, 0.9])
    _, rewards, _, _, _ = env.step(dict(zip(env.agents, actions)))
    after = np.array([agent.state.p_pos for agent in world.agents])
    landmarks = np.array([landmark.state.p_pos for landmark in world.landmarks])
    coverage = -np.linalg.norm(after[:, None] - landmarks[None], axis=-1).min(axis=0).sum()
    return after, rewards, coverage


def test_spread_paper_variant_passes_the_pettingzoo_api():
    parallel_api_test(ENV_FACTORIES["spread"]({"variant": "paper", "max_cycles": 10}), num_cycles=30)
    parallel_seed_test(lambda: ENV_FACTORIES["spread"]({"variant": "paper", "max_cycles": 10}))


@pytest.mark.parametrize("variant, self_penalty", [("mpe2", 0.0), ("paper", -1.0)])
def test_spread_self_collision_penalty_only_in_the_paper_variant(variant, self_penalty):
    apart = [(-0.8, -0.5), (0.8, -0.5)]
    after, rewards, coverage = spread_after_one_step(variant, apart, [(0, 0), (0, 0)], [0, 0])
    assert np.allclose(after, apart)
    for reward in rewards.values():
        assert reward == pytest.approx(coverage + self_penalty)


def test_spread_paper_variant_counts_a_real_collision_on_top_of_the_self_collision():
    approaching = [(-0.2, 0.0), (0.2, 0.0)]
    after, rewards, coverage = spread_after_one_step(
        "paper", approaching, [(2.0, 0), (-2.0, 0)], [0, 0])
    assert np.linalg.norm(after[0] - after[1]) < 0.3
    for reward in rewards.values():
        assert reward == pytest.approx(coverage - 2.0)


@pytest.mark.parametrize("variant, moved", [("mpe2", 0.0), ("paper", 0.05)])
def test_spread_paper_variant_moves_an_agent_in_the_step_of_its_action(variant, moved):
    start = [(-0.8, -0.5), (0.8, -0.5)]
    after, _, _ = spread_after_one_step(variant, start, [(0, 0), (0, 0)], [2, 0])
    assert after[0, 0] - start[0][0] == pytest.approx(moved)
    assert np.allclose(after[1], start[1])
