"""MADDPG: training, exact checkpoints, the critic target, the straight-through
Gumbel-softmax and the config checks."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.tune.registry import TRAINABLE_CLASS, _global_registry, register_env

import rllib_mamt
from rllib_mamt import MADDPGConfig
from rllib_mamt.algorithms.maddpg.losses import (
    sample_gumbel,
    straight_through_gumbel_softmax,
)
from rllib_mamt.algorithms.maddpg.maddpg_learner import critic_targets
from rllib_mamt.algorithms.maddpg.modules import MADDPGCentralModule
from rllib_mamt.modules.actor import MAMTActorModule
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID
from tests.state_helpers import flatten_state, numeric_differences
from tests.toy_envs import BoxActionEnv


def tiny_spread_maddpg(**training):
    """A MADDPGConfig on Spread sized to finish an iteration in well under a second."""
    settings = dict(
        train_batch_size_per_learner=32,
        num_steps_sampled_before_learning_starts=50,
        env_steps_per_update=50,
        num_updates_per_round=2,
        replay_buffer_capacity=5000,
        actor_hidden_sizes=[32],
        critic_hidden_sizes=[32],
    )
    settings.update(training)
    return (
        MADDPGConfig()
        .environment("spread")
        .env_runners(num_env_runners=0)
        .training(**settings)
        .reporting(min_sample_timesteps_per_iteration=100)
        .debugging(seed=0)
    )


def test_registered_by_name_and_exported():
    assert _global_registry.get(TRAINABLE_CLASS, "MADDPG") is rllib_mamt.MADDPG
    assert isinstance(rllib_mamt.MADDPG.get_default_config(), rllib_mamt.MADDPGConfig)


def test_defaults_follow_table_5():
    config = MADDPGConfig()
    assert (config.actor_lr, config.critic_lr, config.adam_epsilon) == (1e-3, 1e-3, 1e-7)
    assert (config.gamma, config.train_batch_size_per_learner) == (0.99, 1024)
    assert (config.env_steps_per_update, config.num_updates_per_round) == (100, 4)
    assert config.replay_buffer_capacity == 1_000_000
    assert (config.actor_logit_regularization, config.actor_grad_clip) == (1e-3, 0.5)
    assert config.critic_grad_clip is None  # 10 * n_agents


def test_trains_two_iterations_and_restores_exactly(ray_session, tmp_path):
    algo = tiny_spread_maddpg().build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        assert result["training_iteration"] == 2
        learners = result["learners"]
        for agent in algo.config.agent_ids():
            assert np.isfinite(learners[agent]["critic_loss"])
            assert np.isfinite(learners[agent]["actor_loss"])
        central = algo.learner_group._learner.module[CENTRAL_MODULE_ID]
        assert int(central.num_updates) == 8  # 4 rounds of 2 updates
        # The reference code's ReLU actors, sampled on the runner's batched path.
        runner_actor = algo.env_runner.module["agent_0"]
        assert runner_actor.policy_network[1].negative_slope == 0.0
        assert all(group.stacked for group in algo.env_runner._actors.groups)
        algo.save(str(tmp_path))
        buffer_rows = len(algo.joint_replay_buffer)
        saved_weight = algo.learner_group.get_state()["learner"]["rl_module"]["agent_0"][
            "policy_network.0.weight"
        ].copy()
        algo.update_from_buffer()
        uninterrupted = algo.learner_group.get_state()
    finally:
        algo.stop()

    restored = Algorithm.from_checkpoint(str(tmp_path))
    try:
        assert len(restored.joint_replay_buffer) == buffer_rows == 200
        restored_weight = restored.learner_group.get_state()["learner"]["rl_module"][
            "agent_0"]["policy_network.0.weight"]
        np.testing.assert_array_equal(restored_weight, saved_weight)
        restored.update_from_buffer()
        resumed = restored.learner_group.get_state()
        learned = ("rl_module", "optimizer", "maddpg_sampling_generator")
        differing, compared = numeric_differences(
            {k: uninterrupted["learner"][k] for k in learned},
            {k: resumed["learner"][k] for k in learned},
        )
        assert compared > 50  # modules, targets, optimiser moments, generator
        assert differing == []
        flat = flatten_state(resumed)
        assert any("target_critics" in name for name in flat)
        assert any("target_actors" in name for name in flat)
        assert restored.train()["training_iteration"] == 3
    finally:
        restored.stop()


def _numpy_mlp(state, prefix, inputs, layers):
    """Hand evaluation of a ReLU MLP from its state dict (Linear at even indices)."""
    hidden = inputs
    for position, index in enumerate(layers):
        weight = state[f"{prefix}{index}.weight"].numpy()
        bias = state[f"{prefix}{index}.bias"].numpy()
        hidden = hidden @ weight.T + bias
        if position < len(layers) - 1:
            hidden = np.maximum(hidden, 0.0)
    return hidden


@pytest.mark.parametrize("agent_b_leaves", [False, True])
def test_critic_target_matches_a_hand_computation(agent_b_leaves):
    torch.manual_seed(3)
    spaces = {
        "a": (gym.spaces.Box(-1, 1, (2,)), gym.spaces.Discrete(3)),
        "b": (gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(2)),
    }
    actors = [
        MAMTActorModule(
            observation_space=obs, action_space=act,
            model_config={"actor_hidden_sizes": [4], "actor_negative_slope": 0.0,
                          "input_normalization": False},
        )
        for obs, act in spaces.values()
    ]
    central = MADDPGCentralModule(
        observation_space=gym.spaces.Dict({k: v[0] for k, v in spaces.items()}),
        action_space=gym.spaces.Dict({k: v[1] for k, v in spaces.items()}),
        model_config={"agent_ids": ["a", "b"], "actor_hidden_sizes": [4],
                      "critic_hidden_sizes": [5], "input_normalization": False},
    )
    with torch.no_grad():  # targets must differ from the online networks
        for parameter in central.target_critics.parameters():
            parameter.add_(torch.randn_like(parameter))
    batch = 6
    next_obs = [torch.randn(batch, 2), torch.randn(batch, 3)]
    rewards = torch.randn(batch, 2)
    not_terminated = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    gamma = 0.9
    # With agent b gone at o' of rows 3-5: its a' is the no-op 0 and its own
    # target does not bootstrap there.
    next_alive = torch.tensor([[1.0, 1.0]] * 3 + [[1.0, 0.0]] * 3) if agent_b_leaves else None

    one_hots = []
    for k, size in enumerate((3, 2)):
        logits = _numpy_mlp(central.target_actors[k].state_dict(), "", next_obs[k].numpy(),
                            [0, 2])
        one_hots.append(np.eye(size)[logits.argmax(-1)])
        online = actors[k].action_logits(next_obs[k]).detach().numpy()
        if k == 0:  # the test tells target actors from online ones
            assert (online.argmax(-1) != logits.argmax(-1)).any()
    if agent_b_leaves:
        assert (one_hots[1][3:] != np.eye(2)[0]).any()  # the mask changes something
        one_hots[1][3:] = np.eye(2)[0]
    critic_input = np.concatenate([o.numpy() for o in next_obs] + one_hots, axis=1)
    for i in range(2):
        next_q = _numpy_mlp(central.target_critics[i].state_dict(), "network.",
                            critic_input, [0, 2])[:, 0]
        bootstrap = not_terminated.numpy().copy()
        if agent_b_leaves and i == 1:
            bootstrap[3:] = 0.0
        expected = rewards[:, i].numpy() + gamma * bootstrap * next_q
        computed = critic_targets(central, actors, next_obs, rewards, not_terminated,
                                  next_alive, gamma, i)
        np.testing.assert_allclose(computed.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_straight_through_gumbel_softmax_is_one_hot_with_a_soft_gradient():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 5, requires_grad=True)
    noise = sample_gumbel(logits.shape, generator, "cpu")
    weights = torch.randn(8, 5)

    action = straight_through_gumbel_softmax(logits, noise, temperature=0.7)
    expected_one_hot = torch.nn.functional.one_hot((logits + noise).argmax(-1), 5).float()
    assert torch.equal(action.detach(), expected_one_hot)
    (action * weights).sum().backward()
    straight_through_gradient = logits.grad.clone()

    logits.grad = None
    soft = torch.softmax((logits + noise) / 0.7, dim=-1)
    (soft * weights).sum().backward()
    assert straight_through_gradient.abs().sum() > 0
    torch.testing.assert_close(straight_through_gradient, logits.grad)


def test_gumbel_noise_has_the_gumbel_moments():
    noise = sample_gumbel((200_000,), torch.Generator().manual_seed(1), "cpu")
    assert abs(noise.mean().item() - 0.5772) < 0.01  # Euler-Mascheroni constant
    assert abs(noise.std().item() - np.pi / np.sqrt(6)) < 0.01


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"tau": 0.0}, "tau"),
        ({"tau": 1.5}, "tau"),
        ({"actor_lr": -1e-3}, "actor_lr"),
        ({"critic_hidden_sizes": [64, 0]}, "critic_hidden_sizes"),
        ({"gumbel_temperature": 0}, "gumbel_temperature"),
        ({"exploration_noise_std": -0.1}, "exploration_noise_std"),
        ({"exploration_noise_std": "0.1"}, "exploration_noise_std"),
        ({"input_normalization": "yes"}, "input_normalization"),
        ({"num_updates_per_round": 2.5}, "num_updates_per_round"),
    ],
)
def test_bad_values_are_rejected_naming_the_key(settings, key):
    config = MADDPGConfig().environment("spread").training(**settings)
    with pytest.raises(ValueError) as error:
        config.validate()
    message = str(error.value)
    assert message.startswith(f"MADDPGConfig: '{key}' = {settings[key]!r} is invalid; allowed:")
    assert "\n" not in message


def test_agents_leaving_early_with_input_normalization_train(ray_session):
    """Alive masks and batch-normalised inputs: losses stay finite and each
    target critic normalises with its online critic's running statistics."""
    from rllib_mamt.envs import PettingZooMultiAgentEnv
    from tests.toy_envs import EarlyExitEnv

    register_env("maddpg_early_exit", lambda cfg: PettingZooMultiAgentEnv(EarlyExitEnv(3, 10)))
    algo = tiny_spread_maddpg(input_normalization=True).environment(
        "maddpg_early_exit").build_algo()
    try:
        result = algo.train()
        for agent in algo.config.agent_ids():
            assert np.isfinite(result["learners"][agent]["critic_loss"])
            assert np.isfinite(result["learners"][agent]["actor_loss"])
        central = algo.learner_group._learner.module[CENTRAL_MODULE_ID]
        for critic, target in zip(central.critics, central.target_critics):
            assert critic.input_normalization.running_var.ne(1.0).any()  # updated
            torch.testing.assert_close(target.input_normalization.running_mean,
                                       critic.input_normalization.running_mean)
    finally:
        algo.stop()


def test_mixed_box_and_discrete_actions_are_rejected_with_one_line():
    from rllib_mamt.envs import PettingZooMultiAgentEnv

    register_env("maddpg_box_actions", lambda config: PettingZooMultiAgentEnv(BoxActionEnv()))
    with pytest.raises(ValueError) as error:
        MADDPGConfig().environment("maddpg_box_actions").validate()
    assert str(error.value).startswith(
        "MADDPG: agents ['worker'] have Box actions and ['scout'] do not; allowed:")
    assert "\n" not in str(error.value)


def test_unbounded_box_actions_are_rejected_with_one_line():
    from rllib_mamt.envs import PettingZooMultiAgentEnv

    register_env("maddpg_unbounded_box",
                 lambda config: PettingZooMultiAgentEnv(BoxActionEnv(unbounded=True)))
    with pytest.raises(ValueError, match=r"^MADDPG: agent 'scout' has action space Box\(-inf, "
                       r"inf, \(2,\), float32\); allowed: gymnasium.spaces.Discrete, or a "
                       r"float gymnasium.spaces.Box with finite low and high[^\n]*$"):
        MADDPGConfig().environment("maddpg_unbounded_box").validate()


# Continuous (Box) actions: deterministic tanh actors, Gaussian exploration.

CONTINUOUS_MULTIWALKER = {"action_mode": "continuous", "max_cycles": 50}
OBSERVATION_SPACE = gym.spaces.Box(-1, 1, (3,), np.float32)
# a and b share a stacked group (same shapes, different bounds); c has a
# shorter action, so its row is zero-padded.
ACTION_SPACES = {
    "a": gym.spaces.Box(np.array([0.0, -3.0], np.float32), np.array([2.0, 1.0], np.float32)),
    "b": gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
    "c": gym.spaces.Box(-0.5, 0.5, (1,), np.float32),
}


def _deterministic_actors(output_scale=1.0):
    from rllib_mamt.modules.deterministic_actor import DeterministicActorModule

    torch.manual_seed(0)
    actors = {
        agent: DeterministicActorModule(
            observation_space=OBSERVATION_SPACE, action_space=space,
            model_config={"actor_hidden_sizes": [8], "actor_negative_slope": 0.0,
                          "input_normalization": False},
        )
        for agent, space in ACTION_SPACES.items()
    }
    with torch.no_grad():
        for actor in actors.values():
            actor.policy_network[-1].weight.mul_(output_scale)
    return actors


def _stacked(actors, num_envs, noise_std):
    from rllib_mamt.stacked_actors import StackedActors

    stacked = StackedActors(actors, list(actors), {a: OBSERVATION_SPACE for a in actors},
                            num_envs, exploration_noise_std=noise_std)
    rng = np.random.default_rng(2)
    for group in stacked.groups:
        group.observations[:] = rng.uniform(-1, 1, group.observations.shape)
    return stacked


def _observations_of(stacked, agent_index):
    group, slot = stacked.observation_slot(agent_index)
    return torch.from_numpy(group.observations[slot])


def test_box_actions_respect_each_agents_bounds():
    # Saturated actors and large noise push every action to its bounds.
    stacked = _stacked(_deterministic_actors(output_scale=1e4), num_envs=500, noise_std=2.0)
    assert len(stacked.groups) == 2 and all(group.stacked for group in stacked.groups)
    for explore in (False, True):
        actions = stacked.actions(torch.device("cpu"), explore, torch.Generator().manual_seed(0))
        assert actions.shape == (3, 500, 2) and actions.dtype == np.float32
        for index, space in enumerate(ACTION_SPACES.values()):
            size = space.shape[0]
            assert (actions[index, :, :size] >= space.low).all()
            assert (actions[index, :, :size] <= space.high).all()
            assert (actions[index, :, size:] == 0).all()
        if explore:  # both ends of every bound are reached
            for index, space in enumerate(ACTION_SPACES.values()):
                size = space.shape[0]
                np.testing.assert_allclose(actions[index, :, :size].min(0), space.low)
                np.testing.assert_allclose(actions[index, :, :size].max(0), space.high)


def test_exploration_noise_is_gaussian_when_exploring_and_absent_otherwise():
    actors = _deterministic_actors()
    draws, noise_std = 20_000, 0.05
    stacked = _stacked(actors, draws, noise_std)
    generator = torch.Generator().manual_seed(4)
    greedy = stacked.actions(torch.device("cpu"), False, generator)
    np.testing.assert_array_equal(greedy, stacked.actions(torch.device("cpu"), False, generator))
    explored = stacked.actions(torch.device("cpu"), True, generator)
    for index, (agent, space) in enumerate(ACTION_SPACES.items()):
        size = space.shape[0]
        own = actors[agent].bounded_actions(_observations_of(stacked, index)).detach().numpy()
        np.testing.assert_allclose(greedy[index, :, :size], own, atol=1e-6)
        # The noise is N(0, sigma^2) in tanh space: divided by the half range.
        half_range = (space.high - space.low) / 2
        noise = (explored[index, :, :size] - greedy[index, :, :size]) / half_range
        assert abs(noise.mean()) < 0.002
        np.testing.assert_allclose(noise.std(0), noise_std, rtol=0.03)
    silent = _stacked(actors, draws, 0.0).actions(torch.device("cpu"), True, generator)
    np.testing.assert_array_equal(silent, greedy)


def test_box_actors_need_a_noise_scale():
    from rllib_mamt.stacked_actors import StackedActors

    actors = _deterministic_actors()
    with pytest.raises(ValueError, match=r"^StackedActors: 'exploration_noise_std' = None"):
        StackedActors(actors, list(actors), {a: OBSERVATION_SPACE for a in actors}, 4)


def test_replayed_box_actions_reach_the_critic_in_tanh_space():
    central = MADDPGCentralModule(
        observation_space=gym.spaces.Dict({a: OBSERVATION_SPACE for a in ACTION_SPACES}),
        action_space=gym.spaces.Dict(ACTION_SPACES),
        model_config={"agent_ids": list(ACTION_SPACES), "actor_hidden_sizes": [8],
                      "critic_hidden_sizes": [5], "input_normalization": False},
    )
    squashed = torch.rand(7, 3, 2) * 2 - 1
    stored = torch.zeros(7, 3, 2)
    stored[:, 0] = torch.tensor([1.0, -1.0]) + torch.tensor([1.0, 2.0]) * squashed[:, 0]
    stored[:, 1] = squashed[:, 1]
    stored[:, 2, :1] = 0.5 * squashed[:, 2, :1]
    replayed = central.replayed_actions(stored)
    assert [r.shape for r in replayed] == [(7, 2), (7, 2), (7, 1)]
    for k, size in enumerate((2, 2, 1)):
        torch.testing.assert_close(replayed[k], squashed[:, k, :size])
    outputs = torch.randn(7, 2)
    torch.testing.assert_close(central.policy_actions(outputs), torch.tanh(outputs))


def tiny_multiwalker_maddpg(**training):
    """tiny_spread_maddpg on Multi-Walker with continuous torques, 50-step episodes."""
    return tiny_spread_maddpg(**training).environment(
        "multiwalker", env_config=CONTINUOUS_MULTIWALKER)


def test_continuous_multiwalker_trains_and_restores_exactly(ray_session, tmp_path):
    from rllib_mamt.joint_replay_buffer import ACTIONS, obs_key
    from rllib_mamt.modules.deterministic_actor import DeterministicActorModule

    algo = tiny_multiwalker_maddpg().build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        assert result["training_iteration"] == 2
        agents = algo.config.agent_ids()
        for agent in agents:
            assert np.isfinite(result["learners"][agent]["critic_loss"])
            assert np.isfinite(result["learners"][agent]["actor_loss"])
        runner = algo.env_runner
        assert all(isinstance(runner.module[a], DeterministicActorModule) for a in agents)
        assert all(group.stacked for group in runner._actors.groups)
        stored = algo.joint_replay_buffer.sample(500)[ACTIONS]
        assert stored.dtype == np.float32 and stored.shape == (500, 3, 4)
        assert np.abs(stored).max() <= 1.0 and np.unique(stored).size > 1000
        # Evaluation (explore=False) takes each actor's own noise-free action;
        # exploring adds noise to it.
        for explore in (False, True):
            rows = runner.sample(num_timesteps=20, explore=explore, force_reset=True)[0].rows
            for k, agent in enumerate(agents):
                greedy = runner.module[agent].bounded_actions(
                    torch.from_numpy(rows[obs_key(k)])).detach().numpy()
                gap = np.abs(rows[ACTIONS][:, k] - greedy).max()
                assert (gap < 1e-6) if not explore else (gap > 0.05)
        algo.save(str(tmp_path))
        buffer_rows = len(algo.joint_replay_buffer)
        saved_actions = algo.joint_replay_buffer.get_state()["columns"][ACTIONS].copy()
        algo.update_from_buffer()
        uninterrupted = algo.learner_group.get_state()
    finally:
        algo.stop()

    restored = Algorithm.from_checkpoint(str(tmp_path))
    try:
        assert len(restored.joint_replay_buffer) == buffer_rows == 200
        restored_actions = restored.joint_replay_buffer.get_state()["columns"][ACTIONS]
        np.testing.assert_array_equal(restored_actions, saved_actions)  # float, exact
        restored.update_from_buffer()
        resumed = restored.learner_group.get_state()
        learned = ("rl_module", "optimizer", "maddpg_sampling_generator")
        differing, compared = numeric_differences(
            {k: uninterrupted["learner"][k] for k in learned},
            {k: resumed["learner"][k] for k in learned},
        )
        assert compared > 50
        assert differing == []
        assert restored.train()["training_iteration"] == 3
    finally:
        restored.stop()


def test_box_actions_need_the_joint_env_runner():
    from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner

    config = tiny_multiwalker_maddpg().env_runners(env_runner_cls=MultiAgentEnvRunner)
    with pytest.raises(ValueError, match=r"^MADDPGConfig: 'env_runner_cls' = .*MultiAgentEnvRunner"
                       r".* is invalid; allowed: JointEnvRunner[^\n]*$"):
        config.validate()


@pytest.mark.parametrize("mode", ["learned", "equal", "none"])  # MAMT, MAMD, MAAC
def test_mamt_maac_and_mamd_reject_box_actions_with_one_line(mode):
    from rllib_mamt import MAMTConfig

    config = MAMTConfig().environment("multiwalker", env_config=CONTINUOUS_MULTIWALKER)
    with pytest.raises(ValueError) as error:
        config.training(trust_region_mode=mode).validate()
    message = str(error.value)
    assert message.startswith("Agent 'walker_0' has action space Box(-1.0, 1.0, (4,), float32)")
    assert "Discrete" in message and "\n" not in message


@pytest.mark.parametrize("agent_b_leaves", [False, True])
def test_continuous_critic_target_matches_a_hand_computation(agent_b_leaves):
    """y_i = r_i + gamma * (1 - d) * Q'_i(o', tanh(mu'_1(o'_1)), ...), with the
    zero vector as a departed agent's action."""
    from rllib_mamt.modules.deterministic_actor import DeterministicActorModule

    torch.manual_seed(5)
    spaces = {"a": (gym.spaces.Box(-1, 1, (2,)), ACTION_SPACES["a"]),
              "b": (gym.spaces.Box(-1, 1, (3,)), ACTION_SPACES["c"])}
    actors = [
        DeterministicActorModule(
            observation_space=obs, action_space=act,
            model_config={"actor_hidden_sizes": [4], "actor_negative_slope": 0.0,
                          "input_normalization": False})
        for obs, act in spaces.values()
    ]
    central = MADDPGCentralModule(
        observation_space=gym.spaces.Dict({k: v[0] for k, v in spaces.items()}),
        action_space=gym.spaces.Dict({k: v[1] for k, v in spaces.items()}),
        model_config={"agent_ids": ["a", "b"], "actor_hidden_sizes": [4],
                      "critic_hidden_sizes": [5], "input_normalization": False},
    )
    with torch.no_grad():
        for parameter in central.target_critics.parameters():
            parameter.add_(torch.randn_like(parameter))
    batch, gamma = 6, 0.9
    next_obs = [torch.randn(batch, 2), torch.randn(batch, 3)]
    rewards = torch.randn(batch, 2)
    not_terminated = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    next_alive = torch.tensor([[1.0, 1.0]] * 3 + [[1.0, 0.0]] * 3) if agent_b_leaves else None
    next_actions = [
        np.tanh(_numpy_mlp(central.target_actors[k].state_dict(), "", next_obs[k].numpy(),
                           [0, 2]))
        for k in range(2)
    ]
    if agent_b_leaves:
        next_actions[1][3:] = 0.0
    critic_input = np.concatenate([o.numpy() for o in next_obs] + next_actions, axis=1)
    for i in range(2):
        next_q = _numpy_mlp(central.target_critics[i].state_dict(), "network.",
                            critic_input, [0, 2])[:, 0]
        bootstrap = not_terminated.numpy().copy()
        if agent_b_leaves and i == 1:
            bootstrap[3:] = 0.0
        expected = rewards[:, i].numpy() + gamma * bootstrap * next_q
        computed = critic_targets(central, actors, next_obs, rewards, not_terminated,
                                  next_alive, gamma, i)
        np.testing.assert_allclose(computed.numpy(), expected, rtol=1e-5, atol=1e-6)
