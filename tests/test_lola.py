"""LOLA(+DQN): the lookahead gradient on exact matrix games, training with
exact checkpoints on 2-agent Spread, and the config checks."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from ray.tune.registry import TRAINABLE_CLASS, _global_registry, register_env

import rllib_mamt
from rllib_mamt import LOLAConfig
from rllib_mamt.algorithms.lola.losses import (
    expected_td_targets,
    joint_action_values,
    lola_gradients,
)
from rllib_mamt.envs import PettingZooMultiAgentEnv
from rllib_mamt.joint_replay_buffer import obs_key
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID
from tests.state_helpers import flatten_state, numeric_differences
from tests.toy_envs import HeterogeneousMatchEnv

MATCHING_PENNIES = torch.tensor([[1.0, -1.0], [-1.0, 1.0]], dtype=torch.float64)


def tiny_spread_lola(**training):
    """A LOLAConfig on 2-agent Spread sized to finish an iteration in well under a second."""
    settings = dict(
        train_batch_size_per_learner=32,
        num_steps_sampled_before_learning_starts=50,
        env_steps_per_update=50,
        num_updates_per_round=2,
        replay_buffer_capacity=5000,
        actor_hidden_sizes=[32],
        q_hidden_sizes=[32],
    )
    settings.update(training)
    return (
        LOLAConfig()
        .environment("spread")
        .env_runners(num_env_runners=0)
        .training(**settings)
        .reporting(min_sample_timesteps_per_iteration=100)
        .debugging(seed=0)
    )


def two_action_probs(logit: torch.Tensor) -> torch.Tensor:
    """(1, 2) probabilities (sigma(logit), 1 - sigma(logit)) of a scalar logit."""
    p = torch.sigmoid(logit)
    return torch.stack([p, 1 - p]).reshape(1, 2)


def matrix_game_value(payoffs):
    """``value_of`` of a one-state 2x2 game with scalar logits per agent."""

    def value_of(i, params):
        probs = [two_action_probs(p[0]) for p in params]
        return joint_action_values(probs[0], payoffs[i].unsqueeze(0), probs[1]).sum()

    return value_of


def test_registered_by_name_and_exported():
    assert _global_registry.get(TRAINABLE_CLASS, "LOLA") is rllib_mamt.LOLA
    assert isinstance(rllib_mamt.LOLA.get_default_config(), rllib_mamt.LOLAConfig)


def test_defaults_follow_table_7():
    config = LOLAConfig()
    assert (config.policy_lr, config.q_lr, config.adam_epsilon) == (1e-3, 1e-3, 1e-7)
    assert (config.gamma, config.train_batch_size_per_learner) == (0.99, 1024)
    assert (config.env_steps_per_update, config.num_updates_per_round) == (100, 4)
    assert config.replay_buffer_capacity == 1_000_000
    assert config.grad_clip is None  # 10 * n_agents


def _play(payoffs, lookahead_lr, steps=2000, lr=0.1):
    """Simultaneous gradient ascent of both agents on exact values; returns
    the (steps, 2) trajectory of P(action 0)."""
    logits = [torch.tensor([0.8], dtype=torch.float64, requires_grad=True),
              torch.tensor([-0.5], dtype=torch.float64, requires_grad=True)]
    value_of = matrix_game_value(payoffs)
    trajectory = []
    for _ in range(steps):
        gradients = lola_gradients(value_of, ([logits[0]], [logits[1]]), lookahead_lr)
        with torch.no_grad():
            for logit, gradient in zip(logits, gradients):
                logit += lr * gradient[0]
        trajectory.append([torch.sigmoid(t).item() for t in logits])
    return np.array(trajectory)


def test_matching_pennies_lola_reaches_nash_while_naive_learners_cycle():
    """LOLA paper (Foerster et al., 2018a, matching pennies): naive learners
    circle the mixed Nash equilibrium (0.5, 0.5); LOLA agents converge to it."""
    payoffs = (MATCHING_PENNIES, -MATCHING_PENNIES)
    naive = _play(payoffs, lookahead_lr=0.0)
    lola = _play(payoffs, lookahead_lr=1.0)
    naive_distance = np.abs(naive[-500:] - 0.5).max()
    lola_distance = np.abs(lola[-500:] - 0.5).max()
    assert naive_distance > 0.2
    assert lola_distance < 0.01


def _closed_form_lola_gradient(a, b, theta, eta):
    """Hand LOLA gradient of agent 0 in a 2x2 game with scalar logits.

    p = sigma(theta_0), q = sigma(theta_1), V_k = [p, 1-p] M_k [q, 1-q]^T.
    Returns (lola gradient, naive-at-lookahead part, second-order part)."""
    p = 1 / (1 + np.exp(-theta[0]))
    dp = p * (1 - p)

    def value_derivatives(m, q):
        # dV/dp and dV/dq of the bilinear value, and the cross term d2V/dp dq.
        d_dp = q * (m[0, 0] - m[1, 0]) + (1 - q) * (m[0, 1] - m[1, 1])
        d_dq = p * (m[0, 0] - m[0, 1]) + (1 - p) * (m[1, 0] - m[1, 1])
        return d_dp, d_dq, m[0, 0] - m[0, 1] - m[1, 0] + m[1, 1]

    q = 1 / (1 + np.exp(-theta[1]))
    dq = q * (1 - q)
    _, opponent_dq, opponent_cross = value_derivatives(b, q)
    # delta_1 = eta * dV_1/dtheta_1 and its derivative by theta_0.
    delta = eta * opponent_dq * dq
    d_delta_d_theta0 = eta * opponent_cross * dp * dq
    q_ahead = 1 / (1 + np.exp(-(theta[1] + delta)))
    own_dp, own_dq, _ = value_derivatives(a, q_ahead)
    naive_at_lookahead = own_dp * dp
    second_order = own_dq * q_ahead * (1 - q_ahead) * d_delta_d_theta0
    return naive_at_lookahead + second_order, naive_at_lookahead, second_order


def test_second_order_term_matches_hand_computation_and_finite_differences():
    """Agent 0's LOLA gradient in a general-sum 2x2 game against (1) the chain
    rule by hand, split into its naive and second-order (shaping) parts, and
    (2) central finite differences of V_0(theta_0, theta_1 + delta_1(theta_0))."""
    a = torch.tensor([[3.0, 0.0], [5.0, 1.0]], dtype=torch.float64)  # prisoner's dilemma
    b = a.T.clone()
    theta = (0.3, -0.7)
    eta = 0.8
    params = ([torch.tensor([theta[0]], dtype=torch.float64, requires_grad=True)],
              [torch.tensor([theta[1]], dtype=torch.float64, requires_grad=True)])
    value_of = matrix_game_value((a, b))
    lola_0, _ = lola_gradients(value_of, params, eta)
    expected, naive_part, second_order = _closed_form_lola_gradient(
        a.numpy(), b.numpy(), theta, eta
    )
    assert abs(second_order) > 1e-2  # the term under test is not negligible
    np.testing.assert_allclose(lola_0[0].item(), expected, rtol=1e-10)
    assert abs(lola_0[0].item() - naive_part) > 1e-2  # i.e. it is really included

    def looked_ahead_value(theta_0):
        t0 = torch.tensor([theta_0], dtype=torch.float64, requires_grad=True)
        t1 = torch.tensor([theta[1]], dtype=torch.float64, requires_grad=True)
        (step,) = torch.autograd.grad(value_of(1, ([t0], [t1])), [t1])
        return value_of(0, ([t0], [t1 + eta * step])).item()

    h = 1e-5
    finite_difference = (looked_ahead_value(theta[0] + h)
                         - looked_ahead_value(theta[0] - h)) / (2 * h)
    np.testing.assert_allclose(lola_0[0].item(), finite_difference, rtol=1e-6)


def test_zero_lookahead_is_the_naive_gradient():
    a = torch.tensor([[3.0, 0.0], [5.0, 1.0]], dtype=torch.float64)
    params = ([torch.tensor([0.3], dtype=torch.float64, requires_grad=True)],
              [torch.tensor([-0.7], dtype=torch.float64, requires_grad=True)])
    value_of = matrix_game_value((a, a.T.clone()))
    naive = lola_gradients(value_of, params, 0.0)
    for i in range(2):
        (direct,) = torch.autograd.grad(value_of(i, params), params[i])
        torch.testing.assert_close(naive[i][0], direct)


def test_expected_td_target_matches_a_hand_computation():
    rewards = torch.tensor([1.0, -2.0])
    bootstrap = torch.tensor([1.0, 0.0])
    probs_0 = torch.tensor([[0.2, 0.8], [0.5, 0.5]])
    probs_1 = torch.tensor([[0.6, 0.1, 0.3], [1.0, 0.0, 0.0]])
    next_q = torch.arange(12, dtype=torch.float32).reshape(2, 2, 3)
    by_hand_row_0 = sum(
        probs_0[0, i] * probs_1[0, j] * next_q[0, i, j] for i in range(2) for j in range(3)
    )
    targets = expected_td_targets(rewards, bootstrap, probs_0, next_q, probs_1, 0.9)
    torch.testing.assert_close(targets, torch.stack([1.0 + 0.9 * by_hand_row_0,
                                                     torch.tensor(-2.0)]))


def test_trains_two_iterations_and_restores_exactly(ray_session, tmp_path):
    algo = tiny_spread_lola().build_algo()
    try:
        assert algo.config.agent_ids() == ["agent_0", "agent_1"]
        for _ in range(2):
            result = algo.train()
        assert result["training_iteration"] == 2
        learners = result["learners"]
        for agent in algo.config.agent_ids():
            assert np.isfinite(learners[agent]["q_loss"])
            assert np.isfinite(learners[agent]["policy_value"])
        central = algo.learner_group._learner.module[CENTRAL_MODULE_ID]
        assert int(central.num_updates) == 8  # 4 rounds of 2 updates
        assert tuple(central.q_networks[0].network[-1].weight.shape) == (25, 32)  # 5 x 5
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
        learned = ("rl_module", "optimizer")
        differing, compared = numeric_differences(
            {k: uninterrupted["learner"][k] for k in learned},
            {k: resumed["learner"][k] for k in learned},
        )
        assert compared > 30  # modules, target Q-networks, optimiser moments
        assert differing == []
        assert any("target_q_networks" in name for name in flatten_state(resumed))
        assert restored.train()["training_iteration"] == 3
    finally:
        restored.stop()


def test_lookahead_changes_the_policy_update(ray_session):
    """The learner really applies the lookahead: runs are reproducible, and
    eta > 0 moves the policies differently from eta = 0."""
    weights = []
    for eta in (0.0, 0.0, 0.5):
        algo = tiny_spread_lola(lookahead_lr=eta).build_algo()
        try:
            algo.train()
            state = algo.learner_group.get_state()["learner"]["rl_module"]
            weights.append(state["agent_0"]["policy_network.0.weight"])
        finally:
            algo.stop()
    np.testing.assert_array_equal(weights[0], weights[1])
    assert not np.array_equal(weights[0], weights[2])


def test_three_agents_are_rejected_with_one_line():
    config = LOLAConfig().environment("spread", env_config={"n_agents": 3})
    with pytest.raises(ValueError) as error:
        config.validate()
    message = str(error.value)
    assert message.startswith(
        "LOLA: environment 'spread' has 3 agents ['agent_0', 'agent_1', 'agent_2']; "
        "allowed: exactly 2"
    )
    assert "\n" not in message


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"lookahead_lr": -0.1}, "lookahead_lr"),
        ({"tau": 0.0}, "tau"),
        ({"policy_lr": 0}, "policy_lr"),
        ({"q_hidden_sizes": [64, 0]}, "q_hidden_sizes"),
        ({"grad_clip": -1.0}, "grad_clip"),
        ({"input_normalization": "yes"}, "input_normalization"),
        ({"num_updates_per_round": 2.5}, "num_updates_per_round"),
    ],
)
def test_bad_values_are_rejected_naming_the_key(settings, key):
    config = LOLAConfig().environment("spread").training(**settings)
    with pytest.raises(ValueError) as error:
        config.validate()
    message = str(error.value)
    assert message.startswith(f"LOLAConfig: '{key}' = {settings[key]!r} is invalid; allowed:")
    assert "\n" not in message


class _BoxActionMatchEnv(HeterogeneousMatchEnv):
    """HeterogeneousMatchEnv with a continuous action for 'worker'."""

    def __init__(self):
        super().__init__()
        self._spaces["worker"] = (self._spaces["worker"][0], gym.spaces.Box(-1, 1, (2,)))


def test_box_actions_are_rejected_with_one_line():
    register_env("lola_box_actions", lambda config: PettingZooMultiAgentEnv(_BoxActionMatchEnv()))
    with pytest.raises(ValueError, match=r"^LOLA: agent 'worker' has action space Box"):
        LOLAConfig().environment("lola_box_actions").validate()


def test_agents_with_different_action_counts_train(ray_session):
    """A 3 x 4 joint-action Q-matrix: the TD step indexes (a_0, a_1) in the
    matrix's order, and the Q-network fits the env's reward of 1 for
    matching actions better than for the others."""
    register_env("lola_match", lambda config: PettingZooMultiAgentEnv(HeterogeneousMatchEnv()))
    algo = tiny_spread_lola(num_updates_per_round=20, q_lr=1e-2).environment(
        "lola_match").build_algo()
    try:
        for _ in range(3):
            algo.train()
        central = algo.learner_group._learner.module[CENTRAL_MODULE_ID]
        batch = algo.joint_replay_buffer.sample(256)
        observations = [torch.as_tensor(batch[obs_key(k)]) for k in range(2)]
        with torch.no_grad():
            q_matrix = central.q_networks[0](observations).mean(0)
        assert tuple(q_matrix.shape) == (3, 4)
        matching = torch.tensor([[float(w % 3 == s) for w in range(4)] for s in range(3)])
        assert q_matrix[matching > 0].mean() > q_matrix[matching == 0].mean() + 0.3
    finally:
        algo.stop()
