"""MAMT's JointEnvRunner: batched actors, joint rows, RLlib interoperation."""

import numpy as np
import pytest
import torch
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
from ray.tune.registry import register_env

from rllib_mamt.envs.pettingzoo_adapter import PettingZooMultiAgentEnv
from rllib_mamt.joint_env_runner import JointEnvRunner
from rllib_mamt.joint_replay_buffer import (
    ACTIONS,
    REWARDS,
    TERMINATEDS,
    AgentsNotSynchronousError,
    JointReplayBuffer,
    next_obs_key,
    obs_key,
)
from rllib_mamt.joint_transitions import JointTransitions
from rllib_mamt.stacked_actors import StackedActors
from tests.conftest import tiny_spread_config
from tests.toy_envs import HeterogeneousMatchEnv, LateDropoutEnv


def _rows_of(episodes, agents, sizes):
    buffer = JointReplayBuffer(10_000, agents, sizes)
    buffer.add_episodes(episodes)
    return buffer.get_state()["columns"]


def test_joint_env_runner_is_the_default_and_returns_joint_rows(ray_session):
    algo = tiny_spread_config().build_algo()
    try:
        assert isinstance(algo.env_runner, JointEnvRunner)
        samples = algo.env_runner.sample(num_timesteps=60, explore=True)
        assert len(samples) == 1 and isinstance(samples[0], JointTransitions)
        assert samples[0].env_steps() == 60 and samples[0].agent_steps() == 120
        rows = samples[0].rows
        assert rows[ACTIONS].shape == (60, 2) and rows[obs_key(1)].shape == (60, 12)
        assert ((rows[ACTIONS] >= 0) & (rows[ACTIONS] < 5)).all()
    finally:
        algo.stop()


def test_deterministic_rows_equal_those_of_rllibs_own_env_runner(ray_session):
    """Same weights, same env seed, greedy actions: the joint sampler and RLlib's
    MultiAgentEnvRunner (through the buffer's episode conversion) must produce
    the same joint transitions, across two episode boundaries (Spread: 25 steps)."""
    joint = tiny_spread_config().build_algo()
    rllib = tiny_spread_config().env_runners(env_runner_cls=MultiAgentEnvRunner).build_algo()
    try:
        assert type(rllib.env_runner) is MultiAgentEnvRunner
        rllib.env_runner.module.set_state(joint.env_runner.module.get_state())
        agents, sizes = ["agent_0", "agent_1"], {"agent_0": 12, "agent_1": 12}
        expected = _rows_of(
            rllib.env_runner.sample(num_timesteps=60, explore=False), agents, sizes
        )
        actual = _rows_of(
            joint.env_runner.sample(num_timesteps=60, explore=False), agents, sizes
        )
        for key in (obs_key(0), obs_key(1), next_obs_key(0), next_obs_key(1),
                    ACTIONS, REWARDS, TERMINATEDS):
            np.testing.assert_allclose(actual[key], expected[key], rtol=1e-5, atol=1e-6,
                                       err_msg=key)
        # The rows really span episode boundaries: a reset observation differs
        # from the previous row's next observation.
        jumps = np.abs(actual[obs_key(0)][1:] - actual[next_obs_key(0)][:-1]).max(axis=1)
        assert (jumps > 1e-6).sum() == 2
    finally:
        joint.stop()
        rllib.stop()


def test_stacked_logits_equal_each_actors_own_forward(ray_session):
    register_env("heterogeneous_match", lambda cfg: PettingZooMultiAgentEnv(HeterogeneousMatchEnv()))
    algo = tiny_spread_config().environment("heterogeneous_match").build_algo()
    try:
        runner = algo.env_runner
        module = runner.module
        spaces = {a: module[a].observation_space for a in ("scout", "worker")}
        actors = StackedActors(module, ["scout", "worker"], spaces, num_envs=6)
        assert len(actors.groups) == 2  # different shapes cannot share a group
        generator = torch.Generator().manual_seed(0)
        for group in actors.groups:
            group.observations[:] = np.random.default_rng(1).uniform(
                -1, 1, group.observations.shape
            )
            logits = group.logits(torch.device("cpu"), explore=False)
            for slot, agent in enumerate(group.agent_ids):
                own = module[agent].action_logits(torch.from_numpy(group.observations[slot]))
                torch.testing.assert_close(logits[slot], own.detach())
        actions = actors.actions(torch.device("cpu"), False, generator)
        assert actions.shape == (2, 6)
        assert actions[1].max() < 4 and actions[0].max() < 3
    finally:
        algo.stop()


def test_exploration_samples_the_softmax_policy(ray_session):
    algo = tiny_spread_config().build_algo()
    try:
        module = algo.env_runner.module
        agents = ["agent_0", "agent_1"]
        spaces = {a: module[a].observation_space for a in agents}
        draws = 40_000
        actors = StackedActors(module, agents, spaces, num_envs=draws)
        observation = np.linspace(-1, 1, 12, dtype=np.float32)
        actors.groups[0].observations[:] = observation
        actions = actors.actions(torch.device("cpu"), True, torch.Generator().manual_seed(3))
        for index, agent in enumerate(agents):
            logits = module[agent].action_logits(torch.from_numpy(observation[None]))
            probabilities = torch.softmax(logits, -1).detach().numpy()[0]
            frequencies = np.bincount(actions[index], minlength=5) / draws
            np.testing.assert_allclose(frequencies, probabilities, atol=0.015)
    finally:
        algo.stop()


def test_vectorised_envs_metrics_and_weight_sync(ray_session):
    config = (
        tiny_spread_config("equal")
        .env_runners(num_envs_per_env_runner=4)
        .evaluation(evaluation_interval=1, evaluation_duration=6)
    )
    algo = config.build_algo()
    try:
        for _ in range(3):
            result = algo.train()
        runners = result["env_runners"]
        assert runners["num_env_steps_sampled_lifetime"] == len(algo.joint_replay_buffer)
        assert runners["num_episodes_lifetime"] >= 1
        assert np.isfinite(runners["episode_return_mean"])
        assert runners["episode_len_mean"] == 25
        assert set(runners["agent_episode_returns_mean"]) == {"agent_0", "agent_1"}
        evaluation = result["evaluation"]["env_runners"]
        assert evaluation["num_episodes"] == 6
        # The sampler acts with the learner's latest actor weights.
        actors = algo.env_runner._stacked_actors()
        learner = algo.learner_group._learner
        observations = torch.from_numpy(
            np.random.default_rng(0).uniform(-1, 1, (4, 12)).astype(np.float32)
        )
        group = actors.groups[0]
        group.observations[:] = observations.numpy()
        logits = group.logits(torch.device("cpu"), explore=False)
        for slot, agent in enumerate(group.agent_ids):
            trained = learner.module[agent].action_logits(observations).detach()
            torch.testing.assert_close(logits[slot], trained)
    finally:
        algo.stop()


def test_an_agent_missing_mid_episode_is_a_clear_error(ray_session):
    register_env("late_dropout", lambda cfg: PettingZooMultiAgentEnv(LateDropoutEnv()))
    algo = tiny_spread_config().environment("late_dropout").build_algo()
    try:
        with pytest.raises(AgentsNotSynchronousError, match="'worker' has no observation"):
            algo.env_runner.sample(num_timesteps=10)
    finally:
        algo.stop()


class _EpisodeEndCallback(RLlibCallback):
    def on_episode_end(self, **kwargs):
        pass


def test_settings_the_joint_sampler_cannot_honour_are_rejected():
    with pytest.raises(ValueError, match="'callbacks_class'.*MultiAgentEnvRunner"):
        tiny_spread_config().callbacks(_EpisodeEndCallback).validate()
    with pytest.raises(ValueError, match="'callbacks_on_episode_start'"):
        tiny_spread_config().callbacks(on_episode_start=lambda **kw: None).validate()
    with pytest.raises(ValueError, match="'env_to_module_connector'"):
        tiny_spread_config().env_runners(env_to_module_connector=lambda env: []).validate()
    # RLlib's own EnvRunner runs callbacks, so that combination is accepted.
    (
        tiny_spread_config()
        .env_runners(env_runner_cls=MultiAgentEnvRunner)
        .callbacks(_EpisodeEndCallback)
        .validate()
    )
