"""MAAC's input normalisation (BatchNorm1d(affine=False) on actor and critic inputs)."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.tune.registry import register_env

from rllib_mamt import MAMTConfig
from rllib_mamt.envs import PettingZooMultiAgentEnv
from rllib_mamt.modules.actor import InputNormalization, flat_size
from rllib_mamt.modules.attention_critic import AttentionCritic
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID
from rllib_mamt.stacked_actors import StackedActors
from tests.conftest import tiny_spread_config
from tests.state_helpers import flatten_state
from tests.toy_envs import HeterogeneousMatchEnv

AGENTS = ["agent_0", "agent_1"]


class UnscaledMatchEnv(HeterogeneousMatchEnv):
    """HeterogeneousMatchEnv with unscaled observations: one-hot floats scaled
    to 255, or (``image=True``) uint8 4x4x3 images with pixels 0 or 255."""

    def __init__(self, image=False, max_cycles=5):
        super().__init__(max_cycles)
        self.image = image
        for agent, (_, action_space) in self._spaces.items():
            observation_space = (
                gym.spaces.Box(0, 255, (4, 4, 3), np.uint8)
                if image
                else gym.spaces.Box(0.0, 255.0, (4,), np.float32)
            )
            self._spaces[agent] = (observation_space, action_space)

    def _observe(self):
        if self.image:
            return {
                a: (self._rng.random((4, 4, 3)) < 0.5).astype(np.uint8) * 255
                for a in self.agents
            }
        return {
            a: np.eye(4, dtype=np.float32)[self._rng.integers(4)] * 255.0 for a in self.agents
        }


def _normalization_state(state, module_id):
    """{name: array} of the running-statistics buffers of one module's state."""
    return {
        name: np.asarray(value)
        for name, value in flatten_state(state["learner"]["rl_module"][module_id]).items()
        if "normalization" in name
    }


def _runner_view(runner):
    """Running statistics of the runner's actors, and its stacked logits next to
    each actor's eval-mode forward for observations the statistics matter for."""
    agents = runner._agent_ids
    actors = runner._stacked_actors()
    rng = np.random.default_rng(0)
    stacked, own = {}, {}
    for group in actors.groups:
        group.observations[:] = rng.normal(3.0, 5.0, group.observations.shape)
        logits = group.logits(torch.device("cpu"), explore=False)
        for slot, agent in enumerate(group.agent_ids):
            stacked[agent] = logits[slot].numpy()
            batch = {"obs": torch.from_numpy(group.observations[slot])}
            own[agent] = runner.module[agent].forward_inference(batch)[
                "action_dist_inputs"
            ].numpy()
    statistics = {
        agent: {
            name: buffer.numpy().copy()
            for name, buffer in runner.module[agent].observation_normalization.named_buffers()
        }
        for agent in agents
    }
    return statistics, stacked, own


def test_running_statistics_reach_the_env_runners(ray_session):
    algo = (tiny_spread_config("none", input_normalization=True)
            .env_runners(num_env_runners=1).build_algo())
    try:
        algo.train()
        state = algo.learner_group.get_state()
        num_updates = int(
            flatten_state(state["learner"]["rl_module"][CENTRAL_MODULE_ID])["num_updates"]
        )
        assert num_updates > 0
        (statistics, stacked, own), = algo.env_runner_group.foreach_env_runner(
            _runner_view, local_env_runner=False
        )
    finally:
        algo.stop()
    for agent in AGENTS:
        learner_side = _normalization_state(state, agent)
        assert set(learner_side) == {
            f"observation_normalization.{name}" for name in ("running_mean", "running_var")
        }
        assert np.abs(learner_side["observation_normalization.running_mean"]).max() > 1e-3
        for name, value in statistics[agent].items():
            np.testing.assert_array_equal(value, learner_side[f"observation_normalization.{name}"])
        np.testing.assert_allclose(stacked[agent], own[agent], rtol=1e-5, atol=1e-5)
    central = _normalization_state(state, CENTRAL_MODULE_ID)
    online = {k: v for k, v in central.items() if k.startswith("critic.")}
    assert len(online) == 2 * 2 * len(AGENTS)  # state and state-action input per agent
    for name, value in online.items():
        np.testing.assert_array_equal(central["target_" + name], value)


def test_running_statistics_survive_a_checkpoint_round_trip(ray_session, tmp_path):
    algo = tiny_spread_config("equal", input_normalization=True).build_algo()
    try:
        algo.train()
        algo.save(str(tmp_path))
        saved = algo.learner_group.get_state()
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(str(tmp_path))
    try:
        resumed = restored.learner_group.get_state()
        for module_id in AGENTS + [CENTRAL_MODULE_ID]:
            before = _normalization_state(saved, module_id)
            after = _normalization_state(resumed, module_id)
            assert before and set(before) == set(after)
            assert any(np.abs(v).max() > 1e-3 for k, v in before.items() if "mean" in k)
            for name, value in before.items():
                np.testing.assert_array_equal(after[name], value)
        runner_module = restored.env_runner.module
        for agent in AGENTS:
            np.testing.assert_array_equal(
                runner_module[agent].observation_normalization.running_var.numpy(),
                _normalization_state(saved, agent)["observation_normalization.running_var"],
            )
    finally:
        restored.stop()


@pytest.mark.parametrize("image", [False, True], ids=["box_0_255", "uint8_image"])
def test_unscaled_observations_train_with_finite_losses(ray_session, image):
    """Without normalisation this crashed with 'probability tensor contains nan'."""
    register_env(
        "unscaled_match", lambda cfg: PettingZooMultiAgentEnv(UnscaledMatchEnv(**cfg))
    )
    config = tiny_spread_config(  # default (128-wide) networks, as in the report
        "learned", coordination_batch_size=16, actor_hidden_sizes=[128, 128],
        critic_hidden_dim=128,
    ).environment("unscaled_match", env_config={"image": image})
    algo = config.build_algo()
    try:
        for _ in range(3):
            result = algo.train()
        learners = result["learners"]
        losses = [learners[CENTRAL_MODULE_ID]["critic_loss"]] + [
            learners[agent]["actor_loss"] for agent in ("scout", "worker")
        ]
        assert all(math.isfinite(loss) for loss in losses), losses
        running_var = algo.env_runner.module["scout"].observation_normalization.running_var
        assert float(running_var.mean()) > 100.0  # it did see the unscaled inputs
    finally:
        algo.stop()


def test_normalization_uses_batch_statistics_only_for_differentiated_train_passes():
    normalization = InputNormalization(3)
    normalization.train()
    inputs = torch.randn(64, 3) * 10.0 + 5.0
    with torch.no_grad():
        untouched = normalization(inputs)
    torch.testing.assert_close(untouched, inputs / math.sqrt(1.0 + normalization.eps))
    assert torch.equal(normalization.running_mean, torch.zeros(3))
    normalized = normalization(inputs)
    torch.testing.assert_close(normalized.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(normalization.running_mean, 0.1 * inputs.mean(0))
    recorded = normalization.running_mean.clone()
    normalization.eval()
    single_row = normalization(inputs[:1])  # one row per env on an EnvRunner
    expected = (inputs[:1] - normalization.running_mean) / torch.sqrt(
        normalization.running_var + normalization.eps
    )
    torch.testing.assert_close(single_row, expected)
    assert torch.equal(normalization.running_mean, recorded)
    assert set(normalization.state_dict()) == {"running_mean", "running_var"}


def test_disabled_normalization_leaves_the_networks_unchanged(ray_session):
    algo = tiny_spread_config("none", input_normalization=False).build_algo()
    try:
        learner = algo.learner_group._learner
        actor = learner.module["agent_0"]
        central = learner.module[CENTRAL_MODULE_ID]
        names = [*actor.state_dict(), *central.state_dict()]
        assert not [name for name in names if "normalization" in name or "running" in name]
        observations = torch.randn(8, flat_size(actor.observation_space)) * 100.0
        actor.train()
        torch.testing.assert_close(
            actor.action_logits(observations),
            actor.policy_network(observations),
            rtol=0,
            atol=0,
        )
        spaces = {a: actor.observation_space for a in AGENTS}
        stacked = StackedActors(algo.env_runner.module, AGENTS, spaces, num_envs=8)
        group, slot = stacked.observation_slot(0)
        group.observations[slot] = observations.numpy()
        own = algo.env_runner.module["agent_0"].forward_inference({"obs": observations})
        torch.testing.assert_close(
            group.logits(torch.device("cpu"), explore=False)[slot],
            own["action_dist_inputs"],
        )
    finally:
        algo.stop()
    critic = AttentionCritic([4, 4], [3, 3], hidden_dim=8, num_heads=2)
    assert not list(critic.buffers()) or all(
        "mask" in name for name, _ in critic.named_buffers()
    )


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"input_normalization": "yes"}, "input_normalization"),
        ({"input_normalization": 1}, "input_normalization"),
        ({"train_batch_size_per_learner": 1, "input_normalization": True},
         "train_batch_size_per_learner"),
    ],
)
def test_bad_input_normalization_settings_are_rejected(settings, key):
    config = MAMTConfig().environment("spread").training(**settings)
    with pytest.raises(ValueError, match=f"'{key}' = .* is invalid; allowed: "):
        config.validate()


def test_one_row_batches_are_fine_without_input_normalization():
    MAMTConfig().environment("spread").training(
        input_normalization=False, train_batch_size_per_learner=1
    ).validate()


def test_auto_normalises_only_spaces_that_declare_large_values():
    from rllib_mamt.input_scale import declares_large_values

    assert declares_large_values(gym.spaces.Box(0, 255, (4, 4, 3), np.uint8))
    assert declares_large_values(gym.spaces.Dict({"pixels": gym.spaces.Box(0.0, 255.0, (2,))}))
    assert not declares_large_values(gym.spaces.Box(-np.inf, np.inf, (4,)))
    assert not declares_large_values(gym.spaces.Box(0.0, 30.0, (4,)))
    assert not declares_large_values(gym.spaces.Discrete(300))  # flattened one-hot
    spread = tiny_spread_config()
    spread.validate()
    assert spread.input_normalization == "auto"
    assert spread.resolved_input_normalization() is False
    register_env("unscaled_auto", lambda cfg: PettingZooMultiAgentEnv(UnscaledMatchEnv()))
    unscaled = tiny_spread_config().environment("unscaled_auto")
    unscaled.validate()
    assert unscaled.resolved_input_normalization() is True
    assert tiny_spread_config(input_normalization=True).resolved_input_normalization() is True
