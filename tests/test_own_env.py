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


def _joint_runner(env_name, **env_runner_settings):
    """A local JointEnvRunner for ``env_name`` without building the algorithm."""
    from rllib_mamt.joint_env_runner import JointEnvRunner

    config = tiny_spread_config().environment(env_name).env_runners(**env_runner_settings)
    config.validate()
    return JointEnvRunner(config=config)


def test_episode_end_rule():
    from rllib_mamt.episode_end import all_flags, episode_end

    agents = ["a", "b"]
    assert episode_end(agents, {"a": True, "b": False}, {"a": False, "b": True}) == (True, False)
    assert episode_end(agents, {"a": True, "b": True}, {"a": False, "b": False}) == (True, True)
    assert episode_end(agents, {"a": True, "b": True}, {"a": True, "b": True}) == (True, True)
    assert episode_end(agents, {"a": True, "b": False}, {"a": False, "b": False}) == (False, False)
    assert episode_end(agents, {"b": True, "__all__": False}, {"__all__": False},
                       terminated_before={"a"}) == (True, True)
    # A termination on the time-limit step is still a true terminal (never bootstrapped).
    assert episode_end(agents, {"__all__": True}, {"__all__": True}) == (True, True)
    assert episode_end(agents, {"a": True, "b": True, "__all__": True},
                       {"a": True, "b": True, "__all__": True}) == (True, True)
    assert episode_end(agents, {}, {"__all__": True}) == (True, False)
    assert all_flags(agents, {"a": True, "b": False}, {"a": False, "b": True}) == (False, True)
    assert all_flags(agents, {"a": True, "b": True}, {"a": False, "b": False}) == (True, False)


@pytest.mark.parametrize("wrapper", ["mamt", "rllib"])
@pytest.mark.parametrize(
    "scout_end, worker_end, terminal",
    [("terminated", "truncated", 0.0), ("terminated", "terminated", 1.0),
     ("truncated", "truncated", 0.0)],
)
def test_agents_ending_terminated_and_truncated_on_the_last_step(
    ray_session, wrapper, scout_end, worker_end, terminal
):
    """A legal end (every agent terminated or truncated) ends the episode under
    either wrapper's '__all__' convention; d = 1 only if no agent was truncated."""
    from rllib_mamt.envs.pettingzoo_adapter import PettingZooMultiAgentEnv
    from rllib_mamt.joint_replay_buffer import NEXT_ALIVE, TERMINATEDS, obs_key
    from tests.toy_envs import MixedEndEnv

    wrap = PettingZooMultiAgentEnv if wrapper == "mamt" else ParallelPettingZooEnv
    name = f"mixed_end_{wrapper}_{scout_end}_{worker_end}"
    register_env(name, lambda cfg: wrap(MixedEndEnv(5, scout_end, worker_end)))
    runner = _joint_runner(name)
    try:
        rows = runner.sample(num_timesteps=12, explore=True)[0].rows
        expected = np.zeros(12, np.float32)
        expected[[4, 9]] = terminal
        np.testing.assert_array_equal(rows[TERMINATEDS], expected)
        # Per agent: a terminated agent is not bootstrapped, a truncated one is.
        np.testing.assert_array_equal(
            rows[NEXT_ALIVE][[4, 9]],
            [[scout_end == "truncated", worker_end == "truncated"]] * 2,
        )
        metrics = runner.get_metrics()
        assert metrics["num_episodes"] == 2 and metrics["episode_len_mean"] == 5
        assert rows[obs_key(0)].shape == (12, 3)
    finally:
        runner.stop()


def test_mixed_end_through_rllibs_own_env_runner(ray_session):
    """RLlib's MultiAgentEnvRunner with MAMT's adapter: the mixed end is a
    truncation there too, so the buffer stores d = 0 on the last row."""
    from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner

    from rllib_mamt.envs.pettingzoo_adapter import PettingZooMultiAgentEnv
    from rllib_mamt.joint_replay_buffer import TERMINATEDS, JointReplayBuffer
    from tests.toy_envs import MixedEndEnv

    register_env("mixed_end_rllib_runner", lambda cfg: PettingZooMultiAgentEnv(MixedEndEnv(5)))
    config = (
        tiny_spread_config()
        .environment("mixed_end_rllib_runner")
        .env_runners(env_runner_cls=MultiAgentEnvRunner)
    )
    config.validate()
    runner = MultiAgentEnvRunner(config=config)
    try:
        buffer = JointReplayBuffer(100, ["scout", "worker"], {"scout": 3, "worker": 5})
        assert buffer.add_episodes(runner.sample(num_timesteps=12)) == 12
        assert not buffer.get_state()["columns"][TERMINATEDS].any()
    finally:
        runner.stop()


@pytest.mark.parametrize(
    "value, where, bad_step, message",
    [
        (np.nan, "obs", 3, "Env 1 returned a non-finite observation .* agent 'worker' at step 3 "),
        (np.inf, "obs", 0, "Env 1 returned a non-finite observation .* agent 'worker' at step 0 "),
        (-np.inf, "reward", 2, "Env 1 returned a non-finite reward -inf for agent 'worker' at step 2 "),
        (np.nan, "reward", 4, "Env 1 returned a non-finite reward nan for agent 'worker' at step 4 "),
    ],
)
def test_non_finite_env_values_are_named_at_the_env_boundary(
    ray_session, value, where, bad_step, message
):
    from rllib_mamt.envs.pettingzoo_adapter import PettingZooMultiAgentEnv
    from rllib_mamt.joint_env_runner import NonFiniteEnvValueError
    from tests.toy_envs import BadValueEnv

    name = f"bad_value_{where}_{bad_step}"
    register_env(name, lambda cfg: PettingZooMultiAgentEnv(BadValueEnv(value, where, bad_step)))
    runner = _joint_runner(name, num_envs_per_env_runner=2)
    try:
        with pytest.raises(NonFiniteEnvValueError, match=message):
            runner.sample(num_timesteps=12, explore=True)
    finally:
        runner.stop()


def test_large_finite_values_pass_the_check(ray_session):
    from rllib_mamt.envs.pettingzoo_adapter import PettingZooMultiAgentEnv
    from rllib_mamt.joint_replay_buffer import REWARDS, obs_key
    from rllib_mamt.joint_env_runner import episode_seed
    from tests.toy_envs import BadValueEnv

    register_env("large_values", lambda cfg: PettingZooMultiAgentEnv(
        BadValueEnv(1e30, "obs", 2, bad_seed=episode_seed(0, 0, 0))))
    runner = _joint_runner("large_values")
    try:
        rows = runner.sample(num_timesteps=5, explore=True)[0].rows
        assert rows[obs_key(1)].max() == np.float32(1e30)
        assert np.isfinite(rows[REWARDS]).all()
    finally:
        runner.stop()


def _register_structured():
    from rllib_mamt.envs.pettingzoo_adapter import PettingZooMultiAgentEnv
    from tests.toy_envs import StructuredObservationEnv

    register_env("structured_observations",
                 lambda cfg: PettingZooMultiAgentEnv(StructuredObservationEnv(5)))


def test_dict_and_tuple_observations_are_flattened_and_train(ray_session):
    """Dict/Tuple observations are flattened by gymnasium.spaces.flatten (Discrete
    parts one-hot) in the sampler, with flatdim sizes in the buffer and networks."""
    from rllib_mamt.joint_replay_buffer import obs_key

    _register_structured()
    algo = tiny_spread_config().environment("structured_observations").build_algo()
    try:
        assert algo.config.agent_observation_sizes() == {"scout": 5, "worker": 6}
        result = algo.train()
        _assert_finite_losses(result, ["scout", "worker"])
        columns = algo.joint_replay_buffer.get_state()["columns"]
        scout, worker = columns[obs_key(0)], columns[obs_key(1)]
        # Sorted Dict keys: 'flag' (one-hot of 3) before 'position' (2 floats).
        assert (scout[:, :3].sum(1) == 1).all() and set(np.unique(scout[:, :3])) == {0, 1}
        np.testing.assert_array_equal(worker[:, 5], 1)
        np.testing.assert_array_equal(worker[:, 4], scout[:, :3].argmax(1) % 2)
    finally:
        algo.stop()


def test_structured_observations_on_rllibs_runner_need_a_flattening_connector(ray_session):
    from ray.rllib.connectors.env_to_module import FlattenObservations
    from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner

    _register_structured()
    config = (
        tiny_spread_config()
        .environment("structured_observations")
        .env_runners(env_runner_cls=MultiAgentEnvRunner)
    )
    with pytest.raises(ValueError, match="'env_to_module_connector'.*FlattenObservations"):
        config.validate()
    config.env_runners(
        env_to_module_connector=lambda env, spaces=None, device=None: FlattenObservations(
            multi_agent=True
        )
    )
    algo = config.build_algo()
    try:
        _assert_finite_losses(algo.train(), ["scout", "worker"])
    finally:
        algo.stop()


def _register_failing():
    from rllib_mamt.envs.pettingzoo_adapter import PettingZooMultiAgentEnv
    from tests.toy_envs import FailingStepEnv

    register_env("failing_step", lambda cfg: PettingZooMultiAgentEnv(FailingStepEnv(3)))


def test_a_failing_sub_env_is_recreated_and_its_partial_episode_dropped(ray_session):
    """Sub-env 1 raises at step 3 of its first episode: with
    restart_failed_sub_environments it is recreated, its two earlier rows and
    the failed step are dropped, sub-env 0 is untouched and sampling goes on."""
    from rllib_mamt.joint_replay_buffer import TERMINATEDS, obs_key
    from tests.toy_envs import FailingStepEnv

    _register_failing()
    config = (
        tiny_spread_config()
        .environment("failing_step")
        .env_runners(num_envs_per_env_runner=2)
        .fault_tolerance(restart_failed_sub_environments=True)
    )
    config.validate()
    from rllib_mamt.joint_env_runner import JointEnvRunner

    runner = JointEnvRunner(config=config)
    try:
        first_env = runner.env.envs[1]
        rows = runner.sample(num_timesteps=20, explore=True)[0].rows
        assert len(rows[TERMINATEDS]) == 20 - 3
        assert not (rows[obs_key(1)][:, 0] == FailingStepEnv.MARKER).any()
        assert runner.env.envs[1] is not first_env
        metrics = runner.get_metrics()
        assert metrics["num_env_step_failures"] == 1
        assert metrics["num_env_steps_sampled"] == 17
        # Sub-env 0's two whole episodes are there; the recreated sub-env 1
        # finished one episode after its restart (5 steps of 7 left).
        assert metrics["num_episodes"] == 3
        rows = runner.sample(num_timesteps=10, explore=True)[0].rows
        assert len(rows[TERMINATEDS]) == 10
    finally:
        runner.stop()


def test_without_restarts_a_failing_env_raises(ray_session):
    _register_failing()
    runner = _joint_runner("failing_step", num_envs_per_env_runner=2)
    try:
        with pytest.raises(RuntimeError, match="simulated crash at step 3"):
            runner.sample(num_timesteps=20, explore=True)
    finally:
        runner.stop()
