"""MAMT's JointEnvRunner: batched actors, joint rows, RLlib interoperation."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core.columns import Columns
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
from ray.tune.registry import register_env

from rllib_mamt.envs.pettingzoo_adapter import PettingZooMultiAgentEnv
from rllib_mamt.envs.registry import make_rllib_env
from rllib_mamt.joint_env_runner import JointEnvRunner, episode_seed
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


def spread_seeded_every_episode(env_config):
    """Spread whose every reset takes the joint sampler's episode seed
    (``episode_seed``; RLlib's runner seeds only the first reset, which
    starts the episode count)."""
    env = make_rllib_env("spread", env_config)
    plain_reset, episodes, first_seed = env.reset, [0], [None]

    def reset(*, seed=None, options=None):
        if seed is not None:
            first_seed[0], episodes[0] = seed, 0
        seed = episode_seed(first_seed[0], 0, episodes[0])
        episodes[0] += 1
        return plain_reset(seed=seed, options=options)

    env.reset = reset
    return env


def test_deterministic_rows_equal_those_of_rllibs_own_env_runner(ray_session):
    """Same weights, same episode seeds, greedy actions: the joint sampler and
    RLlib's MultiAgentEnvRunner (through the buffer's episode conversion) must
    produce the same joint transitions, across two episode boundaries (Spread:
    25 steps)."""
    register_env("spread_seeded_every_episode", spread_seeded_every_episode)
    joint = tiny_spread_config().build_algo()
    rllib = (tiny_spread_config().environment("spread_seeded_every_episode")
             .env_runners(env_runner_cls=MultiAgentEnvRunner).build_algo())
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


def _mappo_actors(gaussian: bool, num_agents: int = 3):
    """MAPPO actors (LayerNorm on the observation) whose LayerNorm affine
    parameters and log-stds differ per agent, so a mix-up between agents or
    a missing affine shows in the outputs."""
    from rllib_mamt.algorithms.mappo.modules import (
        MAPPOActorModule,
        MAPPOGaussianActorModule,
    )

    observation_space = gym.spaces.Box(-1, 1, (7,), np.float32)
    if gaussian:
        actor_class, action_space = MAPPOGaussianActorModule, gym.spaces.Box(
            -1, 1, (2,), np.float32)
    else:
        actor_class, action_space = MAPPOActorModule, gym.spaces.Discrete(5)
    torch.manual_seed(0)
    actors = {
        f"agent_{k}": actor_class(
            observation_space=observation_space, action_space=action_space,
            model_config={"actor_hidden_sizes": [16, 8], "feature_normalization": True,
                          "actor_negative_slope": 0.0},
        )
        for k in range(num_agents)
    }
    for actor in actors.values():
        _perturb_mappo_actor(actor)
    return actors, {agent: observation_space for agent in actors}


def _perturb_mappo_actor(actor) -> None:
    """Random LayerNorm weight and bias (and log-std) in place."""
    with torch.no_grad():
        actor.observation_normalization.weight.uniform_(0.2, 3.0)
        actor.observation_normalization.bias.normal_()
        if hasattr(actor, "log_std"):
            actor.log_std.uniform_(-1.0, 0.5)


def _per_agent_reference(actors, spaces, num_envs):
    """The same actors evaluated one RLModule forward per agent: the sampler's
    path for actors it does not stack."""
    reference = StackedActors(actors, list(actors), spaces, num_envs,
                              exploration_noise_std=0.0)
    for group in reference.groups:
        group.stacked = False
    return reference


def _fill_observations(stacked, seed):
    rng = np.random.default_rng(seed)
    for group in stacked.groups:
        # Offset and scaled rows: the LayerNorm has something to undo.
        group.observations[:] = rng.normal(2.0, 5.0, group.observations.shape)


@pytest.mark.parametrize("gaussian", [False, True], ids=["categorical", "gaussian"])
def test_mappo_actors_are_stacked_and_match_their_own_forward(gaussian):
    actors, spaces = _mappo_actors(gaussian)
    num_envs = 9
    stacked = StackedActors(actors, list(actors), spaces, num_envs, exploration_noise_std=0.0)
    assert len(stacked.groups) == 1 and stacked.groups[0].stacked
    reference = _per_agent_reference(actors, spaces, num_envs)
    _fill_observations(stacked, seed=1)
    _fill_observations(reference, seed=1)
    group = stacked.groups[0]
    for explore in (False, True):
        outputs = group.logits(torch.device("cpu"), explore)
        for slot, agent in enumerate(group.agent_ids):
            batch = {Columns.OBS: torch.from_numpy(group.observations[slot])}
            forward = (actors[agent].forward_exploration if explore
                       else actors[agent].forward_inference)
            own = forward(batch)[Columns.ACTION_DIST_INPUTS].detach()
            torch.testing.assert_close(outputs[slot], own, rtol=1e-6, atol=1e-6)
    # Same generator seed, same draws in the same order: the same actions as
    # the per-agent forward path, greedy and exploring.
    for explore in (False, True):
        actions = stacked.actions(torch.device("cpu"), explore,
                                  torch.Generator().manual_seed(5))
        expected = reference.actions(torch.device("cpu"), explore,
                                     torch.Generator().manual_seed(5))
        if gaussian:
            np.testing.assert_allclose(actions, expected, rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_array_equal(actions, expected)


def test_stacked_gaussian_mappo_samples_follow_mean_and_learned_std():
    actors, spaces = _mappo_actors(gaussian=True, num_agents=2)
    draws = 20_000
    stacked = StackedActors(actors, list(actors), spaces, draws, exploration_noise_std=0.0)
    observation = np.linspace(-3, 4, 7, dtype=np.float32)
    for group in stacked.groups:
        group.observations[:] = observation
    samples = stacked.actions(torch.device("cpu"), True, torch.Generator().manual_seed(2))
    greedy = stacked.actions(torch.device("cpu"), False, torch.Generator().manual_seed(2))
    for index, actor in enumerate(actors.values()):
        mean = actor.action_logits(torch.from_numpy(observation[None])).detach().numpy()[0]
        std = actor.log_std.detach().exp().numpy()
        np.testing.assert_allclose(greedy[index], np.tile(mean, (draws, 1)), rtol=1e-5,
                                   atol=1e-6)
        standard_errors = std / np.sqrt(draws)
        assert (np.abs(samples[index].mean(0) - mean) < 4 * standard_errors).all()
        np.testing.assert_allclose(samples[index].std(0), std, rtol=0.03)


def test_refresh_rereads_the_mappo_layer_norms_and_log_stds():
    actors, spaces = _mappo_actors(gaussian=True)
    stacked = StackedActors(actors, list(actors), spaces, 4, exploration_noise_std=0.0)
    _fill_observations(stacked, seed=3)
    group = stacked.groups[0]
    assert group.stacked
    before = group.logits(torch.device("cpu"), False)
    for actor in actors.values():
        _perturb_mappo_actor(actor)
    stacked.refresh()
    after = group.logits(torch.device("cpu"), False)
    assert not torch.allclose(before, after)
    for slot, agent in enumerate(group.agent_ids):
        own = actors[agent].forward_inference(
            {Columns.OBS: torch.from_numpy(group.observations[slot])}
        )[Columns.ACTION_DIST_INPUTS].detach()
        torch.testing.assert_close(after[slot], own, rtol=1e-6, atol=1e-6)


def test_an_actor_subclass_that_does_not_declare_a_stackable_forward_keeps_its_own():
    from rllib_mamt.algorithms.mappo.modules import MAPPOActorModule

    class ShiftedLogitsActor(MAPPOActorModule):
        def _forward(self, batch, **kwargs):
            logits = super()._forward(batch)[Columns.ACTION_DIST_INPUTS]
            return {Columns.ACTION_DIST_INPUTS: logits + torch.arange(5.0)}

    actors, spaces = _mappo_actors(gaussian=False, num_agents=2)
    own_class = {agent: ShiftedLogitsActor(observation_space=actor.observation_space,
                                           action_space=actor.action_space,
                                           model_config=actor.model_config)
                 for agent, actor in actors.items()}
    stacked = StackedActors(own_class, list(own_class), spaces, 3)
    assert len(stacked.groups) == 2 and not any(g.stacked for g in stacked.groups)
    _fill_observations(stacked, seed=4)
    for group in stacked.groups:
        observations = torch.from_numpy(group.observations[0])
        expected = own_class[group.agent_ids[0]].action_logits(observations) + torch.arange(5.0)
        torch.testing.assert_close(group.logits(torch.device("cpu"), False)[0],
                                   expected.detach())


def test_layer_norms_group_only_when_one_batched_call_can_apply_them():
    """LayerNorms with different eps cannot share one batched layer_norm call
    (separate stacked groups); one over two axes is not a per-row
    normalisation of the flat observation (its actor keeps its own forward)."""
    actors, spaces = _mappo_actors(gaussian=False, num_agents=3)
    actors["agent_1"].observation_normalization.eps = 1e-3
    stacked = StackedActors(actors, list(actors), spaces, 2)
    assert sorted(group.agent_ids for group in stacked.groups) == [
        ["agent_0", "agent_2"], ["agent_1"]]
    assert all(group.stacked for group in stacked.groups)
    _fill_observations(stacked, seed=6)
    for group in stacked.groups:
        outputs = group.logits(torch.device("cpu"), False)
        for slot, agent in enumerate(group.agent_ids):
            own = actors[agent].action_logits(torch.from_numpy(group.observations[slot]))
            torch.testing.assert_close(outputs[slot], own.detach(), rtol=1e-6, atol=1e-6)
    actors["agent_1"].observation_normalization = torch.nn.LayerNorm((1, 7))
    stacked = StackedActors(actors, list(actors), spaces, 2)
    assert [(group.agent_ids, group.stacked) for group in stacked.groups] == [
        (["agent_0", "agent_2"], True), (["agent_1"], False)]
