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
from tests.toy_envs import HeterogeneousMatchEnv


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


class _BoxActionEnv(HeterogeneousMatchEnv):
    """HeterogeneousMatchEnv with a continuous action for 'worker'."""

    def __init__(self):
        super().__init__()
        self._spaces["worker"] = (self._spaces["worker"][0], gym.spaces.Box(-1, 1, (2,)))


def test_box_actions_are_rejected_with_one_line():
    from rllib_mamt.envs import PettingZooMultiAgentEnv

    register_env("maddpg_box_actions", lambda config: PettingZooMultiAgentEnv(_BoxActionEnv()))
    with pytest.raises(ValueError, match=r"^MADDPG: agent 'worker' has action space Box"):
        MADDPGConfig().environment("maddpg_box_actions").validate()
