"""End-to-end training on Spread for every trust-region mode, and env checks."""

import math

import numpy as np
import pytest
import torch
from ray.tune.registry import register_env

from rllib_mamt import MAMTConfig
from rllib_mamt.envs.pettingzoo_adapter import PettingZooMultiAgentEnv
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID
from tests.conftest import tiny_spread_config
from tests.toy_envs import HeterogeneousMatchEnv, TurnTakingEnv

AGENT_METRICS = (
    "actor_loss", "entropy", "kl_to_old_policy", "tsallis_divergence_to_old_policy",
    "trust_region_delta",
)

MODES = {
    "none": ({}, [math.inf, math.inf]),
    "equal": ({"trust_region_budget": 1.0}, [0.5, 0.5]),
    "manual": ({"trust_region_deltas": {"agent_0": 0.25}}, [0.25, math.inf]),
}


def central_module(algo):
    return algo.learner_group._learner.module[CENTRAL_MODULE_ID]


LEARNED_MODES = ["learned", "fixed_coef", "random_coef", "weighted_sum"]


@pytest.mark.parametrize("mode", sorted(MODES))
def test_each_mode_trains_and_reports_metrics(ray_session, mode):
    settings, deltas = MODES[mode]
    algo = tiny_spread_config(mode, **settings).build_algo()
    try:
        before = {k: v.copy() for k, v in algo.get_module("agent_0").get_state().items()}
        for _ in range(2):
            result = algo.train()
        learners = result["learners"]
        for index, agent in enumerate(["agent_0", "agent_1"]):
            for name in AGENT_METRICS:
                assert name in learners[agent], (agent, name)
            assert learners[agent]["trust_region_delta"] == pytest.approx(deltas[index])
            assert np.isfinite(learners[agent]["actor_loss"])
            assert 0 < learners[agent]["entropy"] <= math.log(5) + 1e-6
        assert np.isfinite(learners[CENTRAL_MODULE_ID]["critic_loss"])
        assert np.isfinite(result["env_runners"]["episode_return_mean"])
        assert int(central_module(algo).num_updates) > 0
        after = algo.get_module("agent_0").get_state()
        assert any(not np.allclose(before[k], after[k]) for k in before)
    finally:
        algo.stop()


@pytest.mark.parametrize("mode", LEARNED_MODES)
def test_learned_trust_region_modes_train_and_report(ray_session, mode):
    algo = tiny_spread_config(mode, trust_region_budget=1.0).build_algo()
    try:
        central = central_module(algo)
        initial_deltas = central.trust_region_deltas().detach().clone()
        assert torch.allclose(initial_deltas, torch.tensor([0.5, 0.5]))
        for _ in range(2):
            result = algo.train()
        learners = result["learners"]
        for name in ("trd_loss", "delta_loss", "trust_region_sum", "non_stationarity_total"):
            assert np.isfinite(learners[CENTRAL_MODULE_ID][name]), name
        assert ("opponent_model_loss" in learners[CENTRAL_MODULE_ID]) == (mode != "weighted_sum")
        for agent, other in (("agent_0", "agent_1"), ("agent_1", "agent_0")):
            assert learners[agent]["coordination"][other] >= 0
            if mode in ("learned", "weighted_sum"):
                assert learners[agent]["counterfactual_influence"][other] >= 0
            else:
                assert "counterfactual_influence" not in learners[agent]
            assert learners[agent]["non_stationarity"] >= 0
            assert learners[agent]["predicted_kl"] >= 0
        deltas = central.trust_region_deltas().detach()
        assert not torch.allclose(deltas, initial_deltas)  # delta is learned
        assert float(deltas.sum()) <= 1.0 + 1e-5
    finally:
        algo.stop()


def test_delta_respects_bounds_and_budget_under_a_large_learning_rate(ray_session):
    algo = tiny_spread_config(
        "learned", trust_region_budget=1.0, trust_region_bounds=(0.05, 0.8),
        delta_lr=0.5, num_updates_per_round=4,
    ).build_algo()
    try:
        central = central_module(algo)
        seen = [central.trust_region_deltas().detach().clone()]
        for _ in range(4):
            algo.train()
            seen.append(central.trust_region_deltas().detach().clone())
        seen = torch.stack(seen)
        assert torch.all(seen >= 0.05 - 1e-6) and torch.all(seen <= 0.8 + 1e-6)
        assert torch.all(seen.sum(-1) <= 1.0 + 1e-5)
        # It did move (both pushed onto delta_max and scaled back onto the
        # budget can land on the equal split again, so not necessarily at the end).
        assert any(not torch.allclose(seen[0], later) for later in seen[1:])
    finally:
        algo.stop()


def test_old_policy_divergence_is_zero_until_first_step(ray_session):
    """pi_old starts equal to pi, and with m = 1 is refreshed after every update."""
    algo = tiny_spread_config("equal", mirror_descent_lag=1, num_updates_per_round=1).build_algo()
    try:
        algo.sample_into_buffer()
        algo.update_from_buffer()
        metrics = algo.metrics.peek(("learners", "agent_0"))
        assert metrics["tsallis_divergence_to_old_policy"] == pytest.approx(0.0, abs=1e-6)
        assert metrics["kl_to_old_policy"] == pytest.approx(0.0, abs=1e-7)
        algo.update_from_buffer()
        metrics = algo.metrics.peek(("learners", "agent_0"))
        assert metrics["kl_to_old_policy"] == pytest.approx(0.0, abs=1e-7)
    finally:
        algo.stop()


def test_old_policy_lags_m_updates(ray_session):
    algo = tiny_spread_config("equal", mirror_descent_lag=1000, num_updates_per_round=4).build_algo()
    try:
        algo.sample_into_buffer()
        for _ in range(3):
            algo.update_from_buffer()
        metrics = algo.metrics.peek(("learners", "agent_0"))
        assert metrics["kl_to_old_policy"] > 0.0
    finally:
        algo.stop()


def test_parallel_env_runners_and_deterministic_evaluation(ray_session):
    config = (
        tiny_spread_config("equal")
        .env_runners(num_env_runners=2)
        .evaluation(evaluation_interval=1, evaluation_duration=10)
    )
    algo = config.build_algo()
    try:
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled"] >= 100
        assert len(algo.joint_replay_buffer) >= 100
        evaluation = result["evaluation"]["env_runners"]
        assert evaluation["num_episodes"] >= 10
        assert np.isfinite(evaluation["episode_return_mean"])
        assert algo.evaluation_config.explore is False
    finally:
        algo.stop()


def test_heterogeneous_observation_and_action_spaces_train(ray_session):
    register_env("heterogeneous_match", lambda cfg: PettingZooMultiAgentEnv(HeterogeneousMatchEnv()))
    config = tiny_spread_config("equal").environment("heterogeneous_match")
    algo = config.build_algo()
    try:
        result = algo.train()
        assert set(result["learners"]) >= {"scout", "worker", CENTRAL_MODULE_ID}
        assert algo.get_module("worker").action_space.n == 4
        assert algo.get_module("scout").observation_space.shape == (3,)
    finally:
        algo.stop()


def test_env_where_an_agent_skips_steps_is_rejected_at_build_time(ray_session):
    register_env("turn_taking", lambda cfg: PettingZooMultiAgentEnv(TurnTakingEnv()))
    config = MAMTConfig().environment("turn_taking")
    with pytest.raises(ValueError, match=r"agents \['worker'\] did not act at every step"):
        config.build_algo()
