"""MAMT-PPO: registration, training and exact checkpoints, the per-agent KL
penalty by hand, the learned delta on the budget, the decomposition mechanism
through the real learner code in a controlled world, and the config checks."""

import copy
import math
import types

import numpy as np
import pytest
import torch
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical
from ray.rllib.algorithms.algorithm import Algorithm
from ray.tune.registry import TRAINABLE_CLASS, _global_registry

import rllib_mamt
from rllib_mamt import MAMTPPOConfig
from rllib_mamt.algorithms.mamt_ppo.losses import kl_penalties, kl_to_sampling_policy
from rllib_mamt.algorithms.mamt_ppo.mamt_ppo_learner import (
    MAMTPPOTorchLearner,
    old_policy_key,
)
from rllib_mamt.algorithms.mappo.losses import clipped_surrogate_loss
from rllib_mamt.algorithms.mappo.mappo_learner import ADVANTAGES, OLD_LOG_PROBS
from rllib_mamt.algorithms.mamt.coordination import coefficients_from_influence
from rllib_mamt.algorithms.mamt.delta_allocation import project_log_deltas_
from rllib_mamt.joint_replay_buffer import obs_key
from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID
from rllib_mamt.algorithms.mamt.trust_region_learning import DELTA_OPTIMIZER, TRD_OPTIMIZER, make_delta_optimizer
from tests.state_helpers import numeric_differences
from tests.test_delta_allocation import _Central, _coupled_and_independent, _Metrics


def tiny_spread_mamt_ppo(**training):
    """A MAMTPPOConfig on Spread sized to finish an iteration in about a second."""
    settings = dict(
        train_batch_size_per_learner=100,
        minibatch_size=50,
        num_epochs=2,
        actor_hidden_sizes=[16],
        critic_hidden_dim=16,
        trd_hidden_dim=16,
        coordination_batch_size=20,
        delta_lr=0.05,
    )
    settings.update(training)
    return (
        MAMTPPOConfig()
        .environment("spread")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=2)
        .training(**settings)
        .debugging(seed=0)
    )


def test_registered_by_name_and_exported():
    assert _global_registry.get(TRAINABLE_CLASS, "MAMT_PPO") is rllib_mamt.MAMTPPO
    assert rllib_mamt.ALGORITHMS["MAMT_PPO"] is rllib_mamt.MAMTPPO
    config = rllib_mamt.MAMTPPO.get_default_config()
    assert isinstance(config, rllib_mamt.MAMTPPOConfig)
    assert isinstance(config, rllib_mamt.MAPPOConfig)
    assert config.clip_param is None and config.trust_region_mode == "learned"


def _hand_kl_penalties(learner, batch):
    """D_j / delta_j from numpy: KL[pi_old || pi] of the actors on the rows,
    averaged over rows, divided by delta_j."""
    data = batch.policy_batches[CENTRAL_MODULE_ID]
    deltas = learner._central().trust_region_deltas().detach().numpy()
    penalties = []
    for k, agent in enumerate(learner.agent_ids):
        with torch.no_grad():
            logits = learner._actor(agent).action_logits(torch.as_tensor(data[obs_key(k)]))
        p = np.exp(logits.numpy().astype(np.float64))
        p /= p.sum(-1, keepdims=True)
        p_old = np.exp(np.asarray(data[old_policy_key(k)], np.float64))
        kl = (p_old * (np.log(p_old) - np.log(p))).sum(-1).mean()
        penalties.append(kl / deltas[k])
    return np.array(penalties)


def _check_kl_penalties_by_hand(learner, batch):
    """The learner's per-agent KL penalties on a batch, after agent 0's actor
    moved away from the policy that sampled it, against numpy (this takes a
    TRD-Net step: run it last)."""
    targets = learner.with_ppo_targets(batch)
    data = targets.policy_batches[CENTRAL_MODULE_ID]
    with torch.no_grad():
        for parameter in learner._actor(learner.agent_ids[0]).parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    tensors = {key: torch.as_tensor(np.asarray(value)) for key, value in data.items()}
    distributions = [
        torch.distributions.Categorical(
            logits=learner._actor(agent).action_logits(tensors[obs_key(k)]))
        for k, agent in enumerate(learner.agent_ids)
    ]
    penalties, auxiliary = learner.trust_region_terms(tensors, distributions, None)
    expected = _hand_kl_penalties(learner, targets)
    assert expected[0] > 1e-4 and expected[1] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(penalties.detach().numpy(), expected, rtol=1e-4, atol=1e-8)
    assert torch.isfinite(auxiliary)


def test_trains_two_iterations_keeps_delta_on_budget_and_restores_exactly(ray_session,
                                                                         tmp_path):
    algo = tiny_spread_mamt_ppo().build_algo()
    try:
        learner = algo.learner_group._learner
        initial = learner._central().trust_region_deltas().detach().clone()
        for _ in range(2):
            result = algo.train()
        assert result["training_iteration"] == 2
        for agent in algo.config.agent_ids():
            for key in ("policy_loss", "value_loss", "kl_to_sampling_policy",
                        "delta_value_slope", "delta_drift_slope", "q_value_loss"):
                assert np.isfinite(result["learners"][agent][key]), key
        deltas = learner._central().trust_region_deltas().detach()
        assert float(deltas.sum()) == pytest.approx(2.0, rel=1e-4)  # budget n = 2
        assert float((deltas - initial).abs().max()) > 1e-3, deltas  # delta moved
        algo.save(str(tmp_path))
        saved = algo.learner_group.get_state()
        batch = algo.sample_train_batch()

        update = dict(minibatch_size=50, num_epochs=2, shuffle_batch_per_epoch=False)
        algo.learner_group.update(batch=batch, **update)
        uninterrupted = algo.learner_group.get_state()
    finally:
        algo.stop()

    learned = ("rl_module", "optimizer", "mamt_ppo_sampling_generator")
    restored = Algorithm.from_checkpoint(str(tmp_path))
    try:
        differing, compared = numeric_differences(
            {k: saved["learner"][k] for k in learned},
            {k: restored.learner_group.get_state()["learner"][k] for k in learned},
        )
        assert compared > 40 and differing == []
        restored.learner_group.update(batch=batch, **update)
        differing, compared = numeric_differences(
            {k: uninterrupted["learner"][k] for k in learned},
            {k: restored.learner_group.get_state()["learner"][k] for k in learned},
        )
        assert compared > 40 and differing == []
        assert restored.train()["training_iteration"] == 3
        _check_kl_penalties_by_hand(restored.learner_group._learner, batch)
    finally:
        restored.stop()


def test_kl_penalty_matches_a_hand_computation():
    old = [torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1]])),
           torch.log(torch.tensor([[0.2, 0.3, 0.5], [1 / 3, 1 / 3, 1 / 3]]))]
    new = [torch.log(torch.tensor([[0.4, 0.6], [0.8, 0.2]])),
           torch.log(torch.tensor([[0.2, 0.3, 0.5], [0.5, 0.25, 0.25]]))]
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    kl_0 = [0.5 * math.log(0.5 / 0.4) + 0.5 * math.log(0.5 / 0.6),
            0.9 * math.log(0.9 / 0.8) + 0.1 * math.log(0.1 / 0.2)]
    divergences = kl_to_sampling_policy(old, new, mask)
    np.testing.assert_allclose(divergences.numpy(), [sum(kl_0) / 2, 0.0], atol=1e-7)
    deltas = torch.tensor([0.5, 2.0], requires_grad=True)
    penalties = kl_penalties(divergences, deltas)
    np.testing.assert_allclose(penalties.numpy(), [sum(kl_0) / 2 / 0.5, 0.0], atol=1e-7)
    assert not penalties.requires_grad  # delta's gradient is the hypergradient only


def test_no_clip_param_gives_ppos_unclipped_kl_penalty_surrogate():
    learner = types.SimpleNamespace(
        config=types.SimpleNamespace(clip_param=None), agent_ids=["a", "b"],
        _device=torch.device("cpu"),
    )
    clips = MAMTPPOTorchLearner.clip_ranges(learner)
    assert torch.isinf(clips).all()
    ratio = torch.tensor([[1.5, 0.2]])
    advantages = torch.tensor([[2.0, -1.0]])
    loss = clipped_surrogate_loss(ratio.log(), torch.zeros(1, 2), advantages, clips)
    np.testing.assert_allclose(loss.numpy(), [-3.0, 0.2], rtol=1e-6)  # -rho * A, unclipped
    learner.config.clip_param = 0.2
    torch.testing.assert_close(MAMTPPOTorchLearner.clip_ranges(learner),
                               torch.tensor([0.2, 0.2]))


# A controlled world (tests/test_delta_allocation.py's, with PPO actors): four
# agents whose linear softmax policies take the MAMT-PPO step, SGD on
# -E[rho A] + KL[pi_old || pi] / delta_j, with pi_old the sampling policy of a
# batch used for EPOCHS steps. The best action changes every SWITCH steps so
# the policies keep moving. Agents 0-2 depend on each other, agent 3 on
# nobody and nobody on it. D_ns is MAMT-WS's (consecutive policies), so the
# drift slope of agent j is ~ (sum_i C_ij / n) |grad D_j|^2 / delta_j: second
# order in the distance to pi_old, against the first-order value slope, so it
# grows over an iteration's steps. With the log-space delta step (up to
# session 9) and 25 steps per batch, agent 3's delta ended 3.5-5.9x the
# coupled agents' mean (seeds 0-2, 1000 steps); that step drives delta toward
# a corner. With the mirror-descent step (the default), which settles where
# delta is proportional to the net slopes, agent 3 has the largest delta in
# seeds 0-2 at 1.52-1.92x the coupled mean, against 1.02-1.26x (and never the
# largest) without coupling: the margin asserted below is 1.4x.
N, A, OBS, ROWS = 4, 5, 3, 128
EPOCHS, SWITCH, ACTOR_LR, ADVANTAGE = 25, 100, 1.0, 0.05


class _LinearActor(torch.nn.Linear):
    def action_logits(self, observations):
        return self(observations)

    def action_distribution(self, observations):
        return TorchCategorical(logits=self.action_logits(observations))


class _PPOWorld(MAMTPPOTorchLearner):
    """MAMT-PPO's learner code (``_decomposition_losses``, the slopes, TRD-Net,
    delta step and projection) on the synthetic world of the comment above."""

    def __init__(self, influence, seed, refresh_before_every_step=False):
        torch.manual_seed(seed)
        self.config = types.SimpleNamespace(
            trust_region_mode="weighted_sum", trust_region_update="hypergradient",
            coordination_batch_size=ROWS // 2, coordination_threshold=0.2,
            non_stationarity_range=(0.0, 10.0), trd_updates_per_delta_update=2,
            trust_region_budget=None, trust_region_bounds=(0.01, 100.0),
            trust_region_budget_constraint="equality", trust_region_step="mirror_descent",
            clip_param=None, entropy_coeff=0.0,
        )
        self.agent_ids = [f"agent_{i}" for i in range(N)]
        self.metrics = _Metrics()
        self._device = torch.device("cpu")
        self._sampling_generator = torch.Generator().manual_seed(seed)
        self.central = _Central(1.0)
        self.actors = {agent: _LinearActor(OBS, A) for agent in self.agent_ids}
        self.trd_optimizer = torch.optim.Adam(self.central.trd_net.parameters(), lr=1e-3)
        self.delta_optimizer = make_delta_optimizer(
            [self.central.log_trust_region_deltas], "hypergradient", 1e-7)
        for group in self.delta_optimizer.param_groups:
            group["lr"] = 1e-2
        self.coefficients = coefficients_from_influence(
            influence.expand(ROWS // 2, N, N), 0.2, normalization="relative")
        self.refresh_before_every_step = refresh_before_every_step
        self.updates = 0
        self.delta_gradients = []

    def _actor(self, agent_id):
        return self.actors[agent_id]

    def _coordination_coefficients(self, central, observations, actions, policy_probs,
                                   alive=None):
        return self.coefficients, None

    def _step_one_optimizer(self, module_id, name, loss):
        self.trd_optimizer.zero_grad()
        loss.backward()
        self.trd_optimizer.step()

    def sample(self):
        """A new batch from the current policies (they become pi_old)."""
        best = (self.updates // SWITCH) % A
        self.observations = [torch.randn(ROWS, OBS) for _ in range(N)]
        with torch.no_grad():
            self.old_log_probs = [
                torch.log_softmax(self.actors[a](o), -1)
                for a, o in zip(self.agent_ids, self.observations)
            ]
            self.actions = torch.stack([
                torch.multinomial(lp.exp(), 1, generator=self._sampling_generator).squeeze(-1)
                for lp in self.old_log_probs], -1)
        per_action = ADVANTAGE * (torch.nn.functional.one_hot(torch.tensor(best), A).float()
                                  - 1.0 / A)
        self._at_sampling_policy = True
        self.data = {
            OLD_LOG_PROBS: torch.stack([lp.gather(-1, self.actions[:, k:k + 1]).squeeze(-1)
                                        for k, lp in enumerate(self.old_log_probs)], -1),
            ADVANTAGES: per_action[self.actions],
        }

    def step(self):
        """One PPO minibatch step of every actor, the TRD-Net and delta."""
        if self.updates % EPOCHS == 0 or self.refresh_before_every_step:
            self.sample()
        distributions = [torch.distributions.Categorical(logits=self.actors[a](o))
                         for a, o in zip(self.agent_ids, self.observations)]
        log_probs = torch.stack([d.log_prob(self.actions[:, k])
                                 for k, d in enumerate(distributions)], -1)
        surrogate = clipped_surrogate_loss(log_probs, self.data[OLD_LOG_PROBS],
                                           self.data[ADVANTAGES], self.clip_ranges())
        divergences = kl_to_sampling_policy(self.old_log_probs,
                                            [d.logits for d in distributions])
        actor_loss = (surrogate + kl_penalties(divergences, self.deltas())).sum()
        losses = self._decomposition_losses(
            self.central, self.observations, self.actions, self.old_log_probs, None,
            self.data)
        for actor in self.actors.values():
            actor.zero_grad()
        self.trd_optimizer.zero_grad()
        self.delta_optimizer.zero_grad()
        (actor_loss + losses[TRD_OPTIMIZER] + losses.get(DELTA_OPTIMIZER, 0.0)).backward()
        with torch.no_grad():
            for actor in self.actors.values():
                for param in actor.parameters():
                    param.add_(-ACTOR_LR * param.grad)
        self._at_sampling_policy = False
        self.delta_gradients.append(self.central.log_trust_region_deltas.grad)
        self.trd_optimizer.step()
        self.delta_optimizer.step()
        project_log_deltas_(self.central.log_trust_region_deltas, 0.01, 100.0, float(N),
                            "equality")
        self.updates += 1

    def deltas(self):
        return self.central.log_trust_region_deltas.detach().exp()


def test_agent_nobody_depends_on_gets_the_loosest_region_under_ppo_slopes():
    world = _PPOWorld(_coupled_and_independent(), seed=0)
    for _ in range(1000):
        world.step()
    deltas = world.deltas()
    assert float(deltas.sum()) == pytest.approx(N, rel=1e-4), deltas
    assert int(deltas.argmax()) == 3, deltas
    assert deltas[3] >= 1.4 * deltas[:3].mean(), deltas


def test_without_coupling_no_agent_is_singled_out():
    """The control: the same world with nobody depending on anybody. The
    value slopes alone spread delta (max/min up to 2.1 over seeds 0-2), but
    agent 3 is not set apart."""
    world = _PPOWorld(torch.zeros(N, N).fill_diagonal_(3.0), seed=0)
    for _ in range(1000):
        world.step()
    deltas = world.deltas()
    assert float(deltas.sum()) == pytest.approx(N, rel=1e-4), deltas
    assert not deltas[3] >= 1.4 * deltas[:3].mean(), deltas


def test_no_delta_step_where_the_policy_is_the_sampling_policy():
    """At pi = pi_old grad KL = 0: the slopes are rounding noise (~1e-10),
    which the scale-free delta optimiser would turn into full steps (delta
    drifts to 0.87-1.09 in 20 such steps without the skip); no delta step
    is taken there, later steps of the iteration take one."""
    world = _PPOWorld(_coupled_and_independent(), seed=0, refresh_before_every_step=True)
    for _ in range(5):
        world.step()
    assert all(gradient is None for gradient in world.delta_gradients)
    assert torch.equal(world.deltas(), torch.ones(N))
    world = _PPOWorld(_coupled_and_independent(), seed=0)
    for _ in range(3):
        world.step()
    assert world.delta_gradients[0] is None
    assert all(float(g.abs().max()) > 1e-6 for g in world.delta_gradients[1:])


class _RecordingPPOWorld(_PPOWorld):
    """Records what ``_decomposition_losses`` hands MAMT's shared code."""

    def _trust_region_decomposition_losses(self, central, observations, actions, log_probs,
                                           old_log_probs, alive=None, actor_terms=None):
        self.recorded = (observations, actions, old_log_probs, actor_terms)
        self.actors_then = {agent: copy.deepcopy(actor) for agent, actor in self.actors.items()}
        return super()._trust_region_decomposition_losses(
            central, observations, actions, log_probs, old_log_probs, alive, actor_terms)


def test_slope_terms_are_computed_on_the_coordination_rows():
    """L_j^PG = -mean(rho A) and D_j = KL[pi_old || pi] on the random rows whose
    C and D_ns the shared code computes: each row's own old policy, taken
    action and advantage (a row mix-up would not show in the deltas)."""
    world = _RecordingPPOWorld(_coupled_and_independent(), seed=0)
    for _ in range(3):
        world.step()
    observations, actions, old_log_probs, actor_terms = world.recorded
    rows = ROWS // 2
    original = (observations[0][:rows, None] == world.observations[0][None]).all(-1)
    index = original.float().argmax(-1)
    assert original.sum(-1).eq(1).all() and not torch.equal(index, torch.arange(rows))
    policy_gradient_losses, divergences, _, log_probs = actor_terms
    for k, agent in enumerate(world.agent_ids):
        with torch.no_grad():
            now = torch.log_softmax(world.actors_then[agent](world.observations[k][index]), -1)
        old = world.old_log_probs[k][index]
        torch.testing.assert_close(old_log_probs[k], old)
        torch.testing.assert_close(log_probs[k].detach(), now)
        taken = world.actions[index, k]
        assert torch.equal(actions[:rows, k], taken)
        ratio = (now.gather(-1, taken[:, None]) - old.gather(-1, taken[:, None])).exp()
        advantage = world.data[ADVANTAGES][index, k]
        torch.testing.assert_close(policy_gradient_losses[k].detach(),
                                   -(ratio.squeeze(-1) * advantage).mean())
        kl = (old.exp() * (old - now)).sum(-1).mean()
        assert float(kl) > 1e-6
        torch.testing.assert_close(divergences[k].detach(), kl)


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"trust_region_mode": "weighted_sum"}, "trust_region_mode"),
        ({"trust_region_mode": "equal"}, "trust_region_mode"),
        ({"trust_region_update": "literal"}, "trust_region_update"),
        ({"trust_region_bounds": (0.0, 1.0)}, "trust_region_bounds"),
        ({"trust_region_budget": -1.0}, "trust_region_budget"),
        ({"trust_region_budget": 0.01}, "trust_region_budget"),
        ({"trust_region_bounds": (0.01, 1.0)}, "trust_region_bounds"),
        ({"trust_region_budget_constraint": "sometimes"}, "trust_region_budget_constraint"),
        ({"coordination_threshold": 1.5}, "coordination_threshold"),
        ({"delta_lr": 0.0}, "delta_lr"),
        ({"trd_updates_per_delta_update": 0}, "trd_updates_per_delta_update"),
        ({"non_stationarity_range": (2.0, 1.0)}, "non_stationarity_range"),
        ({"critic_regularization_coefficient": -1.0}, "critic_regularization_coefficient"),
        ({"clip_param": 0.0}, "clip_param"),
        ({"lambda_": 1.5}, "lambda_"),
    ],
)
def test_bad_values_are_rejected_naming_the_key(settings, key):
    config = MAMTPPOConfig().environment("spread").training(**settings)
    with pytest.raises(ValueError) as error:
        config.validate()
    message = str(error.value)
    assert message.startswith(
        f"MAMTPPOConfig: '{key}' = {settings[key]!r} is invalid; allowed:"), message
    assert "\n" not in message
