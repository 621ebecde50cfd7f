"""A user's own environment: RLlib's PettingZoo wrapper, episode ends, bad values,
Dict/Tuple observations, failing sub-environments and agents that leave early."""

import numpy as np
import pytest
from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
from ray.tune.registry import register_env

from rllib_mamt.config_validation import probe_agents
from tests.conftest import tiny_spread_config


def _speaker_listener(env_config=None):
    from mpe2 import simple_speaker_listener_v4

    return ParallelPettingZooEnv(simple_speaker_listener_v4.parallel_env(max_cycles=10))


def _assert_finite_losses(result, agents):
    learners = result["learners"]
    assert np.isfinite(learners["mamt_central"]["critic_loss"])
    assert all(np.isfinite(learners[agent]["actor_loss"]) for agent in agents)


def test_rllibs_parallel_pettingzoo_env_trains(ray_session):
    """RLlib's ParallelPettingZooEnv sets no per-agent ``observation_spaces``;
    MAMT reads spaces through MultiAgentEnv.get_observation_space like RLlib."""
    register_env("rllib_speaker_listener", _speaker_listener)
    config = tiny_spread_config().environment("rllib_speaker_listener")
    spaces = probe_agents(config)
    assert list(spaces) == ["listener_0", "speaker_0"]
    assert [s[0].shape for s in spaces.values()] == [(11,), (3,)]
    assert [s[1].n for s in spaces.values()] == [5, 3]
    algo = config.build_algo()
    try:
        result = algo.train()
        assert algo.config.agent_ids() == ["listener_0", "speaker_0"]
        assert algo.config.agent_observation_sizes() == {"listener_0": 11, "speaker_0": 3}
        _assert_finite_losses(result, algo.config.agent_ids())
        assert result["env_runners"]["num_episodes"] > 0
    finally:
        algo.stop()
