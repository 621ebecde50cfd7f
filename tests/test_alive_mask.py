"""Agents that leave an episode early: alive masks in the joint buffer, the
sampler, the attention critic, the masked losses and Eq. 5/6."""

import numpy as np
import pytest
import torch
from ray.tune.registry import register_env

from rllib_mamt.algorithms.mamt.coordination import coefficients_from_influence
from rllib_mamt.joint_replay_buffer import (
    ACTIONS,
    ALIVE,
    NEXT_ALIVE,
    REWARDS,
    TERMINATEDS,
    JointReplayBuffer,
    next_obs_key,
    obs_key,
)
from rllib_mamt.modules.attention_critic import AttentionCritic
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID
from tests.conftest import tiny_spread_config

LEAVER = 0  # 'leaver' sorts first


def _register_early_exit():
    from rllib_mamt.envs.pettingzoo_adapter import PettingZooMultiAgentEnv
    from tests.toy_envs import EarlyExitEnv

    register_env("early_exit", lambda cfg: PettingZooMultiAgentEnv(EarlyExitEnv(3, 10)))


def test_an_agent_leaving_at_step_3_of_10_trains(ray_session):
    _register_early_exit()
    algo = tiny_spread_config("learned").environment("early_exit").build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        agents = algo.config.agent_ids()
        learners = result["learners"]
        assert np.isfinite(learners[CENTRAL_MODULE_ID]["critic_loss"])
        assert np.isfinite(learners[CENTRAL_MODULE_ID]["trd_loss"])
        assert all(np.isfinite(learners[a]["actor_loss"]) for a in agents)
        columns = algo.joint_replay_buffer.get_state()["columns"]
        alive, next_alive = columns[ALIVE], columns[NEXT_ALIVE]
        # Episodes of 10 steps start at rows 0, 10, 20, ...: the leaver acts
        # at steps 1-3 (rows 0-2, its final observation is o' of row 2).
        step = np.arange(len(alive)) % 10
        np.testing.assert_array_equal(alive[:, LEAVER], step < 3)
        np.testing.assert_array_equal(next_alive[:, LEAVER], step < 2)
        np.testing.assert_array_equal(alive[:, 1:], 1)
        np.testing.assert_array_equal(next_alive[:, 1:], 1)  # truncated: bootstrap
        assert not columns[TERMINATEDS].any()
        dead = step >= 3
        assert not columns[obs_key(LEAVER)][dead].any()
        assert not columns[next_obs_key(LEAVER)][dead].any()
        assert columns[next_obs_key(LEAVER)][step == 2, 0] == pytest.approx(0.3)
        assert not columns[ACTIONS][dead, LEAVER].any()
        assert not columns[REWARDS][dead, LEAVER].any()
    finally:
        algo.stop()


def test_buffer_state_without_alive_masks_loads_as_all_alive():
    buffer = JointReplayBuffer(10, ["a", "b"], {"a": 2, "b": 2})
    rows = {
        obs_key(0): np.ones((3, 2), np.float32), next_obs_key(0): np.ones((3, 2), np.float32),
        obs_key(1): np.ones((3, 2), np.float32), next_obs_key(1): np.ones((3, 2), np.float32),
        ACTIONS: np.zeros((3, 2), np.int64), REWARDS: np.zeros((3, 2), np.float32),
        TERMINATEDS: np.zeros(3, np.float32),
        ALIVE: np.array([[1, 1], [0, 1], [0, 1]], np.float32),
        NEXT_ALIVE: np.array([[0, 1], [0, 1], [0, 1]], np.float32),
    }
    buffer.add(rows)
    state = buffer.get_state()
    np.testing.assert_array_equal(state["columns"][ALIVE], rows[ALIVE])
    restored = JointReplayBuffer(10, ["a", "b"], {"a": 2, "b": 2})
    restored.set_state(state)
    np.testing.assert_array_equal(restored.get_state()["columns"][NEXT_ALIVE], rows[NEXT_ALIVE])
    old_state = dict(state, columns={
        k: v for k, v in state["columns"].items() if k not in (ALIVE, NEXT_ALIVE)
    })
    restored.set_state(old_state)
    np.testing.assert_array_equal(restored.get_state()["columns"][ALIVE], 1)
    np.testing.assert_array_equal(restored.get_state()["columns"][NEXT_ALIVE], 1)


def _critic_inputs(rows=16, n=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    observations = [torch.randn(rows, 4, generator=generator) for _ in range(n)]
    actions = torch.randint(0, 3, (rows, n), generator=generator)
    alive = torch.ones(rows, n)
    alive[::2, 2] = 0  # agent 2 dead on even rows
    alive[::4, 1] = 0  # ... and agent 1 too on every fourth row: agent 0 alone
    return observations, actions, alive


def test_attention_of_alive_agents_ignores_dead_agents():
    torch.manual_seed(0)
    critic = AttentionCritic([4, 4, 4], [3, 3, 3], hidden_dim=16, num_heads=2)
    observations, actions, alive = _critic_inputs()
    q_values, logits = critic(observations, actions, alive)
    changed = [obs.clone() for obs in observations]
    changed_actions = actions.clone()
    dead2 = alive[:, 2] == 0
    changed[2][dead2] = 100.0 * torch.randn(int(dead2.sum()), 4)
    changed_actions[dead2, 2] = 2 - changed_actions[dead2, 2]
    q_changed, logits_changed = critic(changed, changed_actions, alive)
    for i in (0, 1):
        live = alive[:, i] == 1
        torch.testing.assert_close(q_changed[i][live], q_values[i][live])
    torch.testing.assert_close(logits_changed, logits)
    # Agent 0 with every other agent dead attends to nothing, without NaN.
    alone = (alive[:, 1] == 0) & (alive[:, 2] == 0)
    assert alone.any() and all(torch.isfinite(q).all() for q in q_values)
    # Without the mask the dead agent's input does move the others' Q.
    assert not torch.allclose(critic(changed, changed_actions)[0][0], critic(observations, actions)[0][0])


def test_counterfactual_values_and_coefficients_ignore_dead_agents():
    torch.manual_seed(1)
    critic = AttentionCritic([4, 4, 4], [3, 3, 3], hidden_dim=16, num_heads=2)
    observations, actions, alive = _critic_inputs(seed=1)
    probs = torch.softmax(torch.randn(16, 3, 3), -1)
    q_joint, q_without = critic.counterfactual_values(observations, actions, probs, alive)
    q_values, _ = critic(observations, actions, alive)
    for i in range(3):
        torch.testing.assert_close(q_joint[:, i], q_values[i].gather(-1, actions[:, i:i + 1]).squeeze(-1))
        torch.testing.assert_close(q_without[:, i, i], (probs[:, i] * q_values[i]).sum(-1))
    changed = [obs.clone() for obs in observations]
    dead2 = alive[:, 2] == 0
    changed[2][dead2] = 50.0
    _, q_without_changed = critic.counterfactual_values(changed, actions, probs, alive)
    live01 = (alive[:, 0] == 1) & (alive[:, 1] == 1)
    torch.testing.assert_close(q_without_changed[live01, 0, 1], q_without[live01, 0, 1])
    influence = (q_without - q_joint.unsqueeze(-1)).abs()
    coefficients = coefficients_from_influence(influence, 0.0, alive)
    assert (coefficients[dead2][:, :, 2] == 0).all() and (coefficients[dead2][:, 2] == 0).all()
    live_rows = alive.sum(-1) == 3
    torch.testing.assert_close(coefficients[live_rows].sum(-1), torch.ones(int(live_rows.sum()), 3))
    alone = alive.sum(-1) == 1
    assert (coefficients[alone] == 0).all()


def test_masked_losses_ignore_dead_rows(ray_session):
    """Changing the leaver's observations and rewards on rows where it is dead
    changes neither the critic loss nor the leaver's actor loss."""
    _register_early_exit()
    algo = tiny_spread_config("learned").environment("early_exit").build_algo()
    try:
        algo.sample_into_buffer()
        learner = algo.learner_group._learner
        batch = algo.joint_replay_buffer.sample(64)
        dead = (batch[ALIVE][:, LEAVER] == 0) & (batch[NEXT_ALIVE][:, LEAVER] == 0)
        assert 0 < dead.sum() < 64

        def losses(columns):
            learner._sampling_generator.manual_seed(5)
            data = {key: torch.from_numpy(value) for key, value in columns.items()}
            result = learner.compute_losses(fwd_out={}, batch={CENTRAL_MODULE_ID: data})
            learner._losses_by_optimizer = {}
            return {key: float(loss) for key, loss in result.items()}

        base = losses(batch)
        changed = {key: value.copy() for key, value in batch.items()}
        rng = np.random.default_rng(0)
        changed[obs_key(LEAVER)][dead] = rng.normal(0, 10, changed[obs_key(LEAVER)][dead].shape)
        changed[next_obs_key(LEAVER)][dead] = 7.0
        changed[REWARDS][dead, LEAVER] = 1000.0
        after = losses(changed)
        assert after[CENTRAL_MODULE_ID] == pytest.approx(base[CENTRAL_MODULE_ID], rel=1e-5)
        assert after["leaver"] == pytest.approx(base["leaver"], rel=1e-5)
        # The same change on rows where the leaver is alive does count.
        live = batch[ALIVE][:, LEAVER] == 1
        changed[REWARDS][live, LEAVER] = 1000.0
        assert losses(changed)[CENTRAL_MODULE_ID] != pytest.approx(base[CENTRAL_MODULE_ID])
    finally:
        algo.stop()
