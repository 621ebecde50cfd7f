"""Learned δ must follow who depends on whom (issue 10), through the real code.

A synthetic 4-agent world drives the real TRD-Net loss, δ loss, δ optimiser and
projection of :class:`TrustRegionLearning`: each agent's policy is a real
network taking real mirror-descent steps (SGD on policy gradient +
D_q(π‖π_old)/δ_j, π_old refreshed every m steps), so an agent's policy drift
grows with its δ_j. The best action changes every ``SWITCH`` updates, so the
policies keep moving. C comes from the project's ``coefficients_from_influence``
(the default ``"relative"`` reading of Eq. 5; each agent's own influence, the
diagonal, is 3.0) and D_ns from the MAMT-WS branch (π_old → π), as in the
review's check.
"""

import math
import types

import pytest
import torch
from torch.nn import functional as F

from rllib_mamt.algorithms.mamt.coordination import coefficients_from_influence
from rllib_mamt.algorithms.mamt.delta_allocation import (
    SharedScaleAdam,
    log_delta_gradient,
    project_log_deltas_,
)
from rllib_mamt.algorithms.mamt.losses import tsallis_relative_entropy
from rllib_mamt.algorithms.mamt.trd_net import TrustRegionDecompositionNet
from rllib_mamt.algorithms.mamt.trust_region_learning import (
    DELTA_OPTIMIZER,
    TRD_OPTIMIZER,
    TrustRegionLearning,
    make_delta_optimizer,
)

N, A, OBS, ROWS = 4, 5, 3, 32
ACTOR_LR, LAG, SWITCH, ADVANTAGE = 1.0, 50, 100, 0.02
OWN_INFLUENCE = 3.0


class _Metrics:
    def log_value(self, *args, **kwargs):
        pass

    def log_dict(self, *args, **kwargs):
        pass


class _Central(torch.nn.Module):
    def __init__(self, initial_delta):
        super().__init__()
        self.trd_net = TrustRegionDecompositionNet([OBS] * N, [A] * N, 32, 2)
        self.log_trust_region_deltas = torch.nn.Parameter(
            torch.full((N,), math.log(initial_delta))
        )
        self.opponent_models = None
        self.max_actions = A


class _World(TrustRegionLearning):
    """The learner-side trust-region code in a synthetic world (see module doc)."""

    def __init__(self, influence, update, seed, initial_delta=1.0, constraint="equality",
                 step="mirror_descent"):
        torch.manual_seed(seed)
        self.config = types.SimpleNamespace(
            trust_region_mode="weighted_sum", trust_region_update=update,
            coordination_batch_size=ROWS, coordination_threshold=0.2,
            non_stationarity_range=(0.0, 10.0), trd_updates_per_delta_update=2,
            trust_region_budget_penalty=1.0, trust_region_budget=None,
            trust_region_bounds=(0.01, 100.0), trust_region_budget_constraint=constraint,
            trust_region_step=step,
        )
        self.agent_ids = [f"agent_{i}" for i in range(N)]
        self.metrics = _Metrics()
        self._sampling_generator = torch.Generator().manual_seed(seed)
        self.central = _Central(initial_delta)
        self.actors = [torch.nn.Linear(OBS, A) for _ in range(N)]
        self.old_actors = [torch.nn.Linear(OBS, A) for _ in range(N)]
        self._refresh_old_actors()
        self.trd_optimizer = torch.optim.Adam(self.central.trd_net.parameters(), lr=1e-3)
        self.delta_optimizer = make_delta_optimizer(
            [self.central.log_trust_region_deltas], update, 1e-7
        )
        for group in self.delta_optimizer.param_groups:
            group["lr"] = 1e-3
        self.coefficients = coefficients_from_influence(
            influence.expand(ROWS, N, N), 0.2, normalization="relative"
        )
        self.updates = 0

    def _refresh_old_actors(self):
        for old, actor in zip(self.old_actors, self.actors):
            old.load_state_dict(actor.state_dict())

    def _coordination_coefficients(self, central, observations, actions, policy_probs,
                                   alive=None):
        return self.coefficients, None

    def _step_one_optimizer(self, module_id, name, loss):
        self.trd_optimizer.zero_grad()
        loss.backward()
        self.trd_optimizer.step()

    def step(self):
        """One learner update: actor losses, trust-region losses, one backward
        pass, every optimiser steps, δ is projected."""
        hypergradient = self.config.trust_region_update == "hypergradient"
        observations = [torch.randn(ROWS, OBS) for _ in range(N)]
        actions = torch.randint(0, A, (ROWS, N))
        best = (self.updates // SWITCH) % A
        advantage = ADVANTAGE * (F.one_hot(torch.tensor(best), A).float() - 1.0 / A)
        deltas = self.central.log_trust_region_deltas.exp()
        if hypergradient:
            deltas = deltas.detach()
        log_probs, old_log_probs, actor_terms = [], [], ([], [], [], [])
        actor_losses = []
        for k, (actor, old) in enumerate(zip(self.actors, self.old_actors)):
            log_p = F.log_softmax(actor(observations[k]), -1)
            with torch.no_grad():
                log_old = F.log_softmax(old(observations[k]), -1)
            policy_gradient = -(log_p.exp() * advantage).sum(-1).mean()
            divergence = tsallis_relative_entropy(log_p.exp(), log_old.exp(), 0.2).mean()
            actor_losses.append(policy_gradient + divergence / deltas[k])
            log_probs.append(log_p)
            old_log_probs.append(log_old)
            actor_terms[0].append(policy_gradient)
            actor_terms[1].append(divergence)
            actor_terms[2].append(list(actor.parameters()))
            actor_terms[3].append(log_p[:ROWS])
        losses = self._trust_region_decomposition_losses(
            self.central, observations, actions, log_probs, old_log_probs, None,
            actor_terms if hypergradient else None,
        )
        for actor in self.actors:
            actor.zero_grad()
        self.trd_optimizer.zero_grad()
        self.delta_optimizer.zero_grad()
        (sum(actor_losses) + losses[TRD_OPTIMIZER] + losses[DELTA_OPTIMIZER]).backward()
        with torch.no_grad():
            for actor in self.actors:
                for param in actor.parameters():
                    param.add_(-ACTOR_LR * param.grad)
        self.trd_optimizer.step()
        self.delta_optimizer.step()
        self._project_trust_regions(self.central)
        self.updates += 1
        if self.updates % LAG == 0:
            self._refresh_old_actors()

    def deltas(self):
        return self.central.log_trust_region_deltas.detach().exp()


def _coupled_and_independent():
    """Agents 0-2 mutually coupled (influence 3.0), agent 3 independent."""
    influence = torch.zeros(N, N)
    influence[:3, :3] = 3.0
    return influence.fill_diagonal_(OWN_INFLUENCE)


def _run(influence, update, seed, updates, initial_delta=1.0, constraint="equality",
         step="mirror_descent"):
    world = _World(influence, update, seed, initial_delta, constraint, step)
    for _ in range(updates):
        world.step()
    return world.deltas()


def test_independent_agent_gets_the_loose_region():
    for constraint in ("equality", "upper_bound"):
        deltas = _run(_coupled_and_independent(), "hypergradient", 0, 1800, constraint=constraint)
        assert deltas[3] >= 3.0 * deltas[:3].mean(), (constraint, deltas)
        assert float(deltas.sum()) <= N + 1e-4, (constraint, deltas)


def test_literal_update_does_not_decompose():
    """The pre-issue-10 reading (kept as "literal") fails the same check."""
    deltas = _run(_coupled_and_independent(), "literal", 0, 1800)
    assert not deltas[3] >= 3.0 * deltas[:3].mean(), deltas


def test_without_coupling_every_delta_grows_to_the_budget():
    """Under the upper-bound reading δ starts at half the budget and grows onto
    it (under "equality" it is on the budget from the first step)."""
    no_coupling = torch.zeros(N, N).fill_diagonal_(OWN_INFLUENCE)
    deltas = _run(no_coupling, "hypergradient", 0, 1500, initial_delta=0.5,
                  constraint="upper_bound")
    assert float(deltas.sum()) == pytest.approx(N, rel=0.03), deltas
    assert float(deltas.max() / deltas.min()) < 1.1, deltas


def test_equal_coupling_keeps_deltas_equal_and_equality_keeps_the_joint_region():
    """Everybody depends on everybody and the policies keep moving: every agent
    pays the same drift cost, which outweighs its value slope. With Σδ ≤ budget
    all δ shrink alike (to ~0.6; the collapse seen on Spread-3-Mix); on the
    budget simplex they stay at the even split. The spread left is the
    sampling noise of the slopes: max/min 1.05-1.11 over seeds 0-3 with the
    log-space step, 1.1-1.26 over seeds 0-1 and 800-2,400 updates with the
    mirror-descent step (its gradient is divided by δ), against >= 3x in the
    coupled case."""
    influence = torch.full((N, N), 3.0).fill_diagonal_(OWN_INFLUENCE)
    bounded = _run(influence, "hypergradient", 0, 800, constraint="upper_bound")
    assert float(bounded.sum()) < 0.8 * N, bounded
    assert float(bounded.max() / bounded.min()) < 1.2, bounded
    simplex = _run(influence, "hypergradient", 0, 800, constraint="equality")
    assert float(simplex.sum()) == pytest.approx(N, rel=1e-4), simplex
    assert float(simplex.max() / simplex.min()) < 1.35, simplex


def test_equality_projection_scales_up_onto_the_budget():
    log_deltas = torch.log(torch.tensor([0.01, 0.2, 0.4, 0.4]))
    project_log_deltas_(log_deltas, 0.01, 5.0, 4.0, "equality")
    deltas = log_deltas.exp()
    assert float(deltas.sum()) == pytest.approx(4.0, rel=1e-4)
    assert float(deltas[2] / deltas[1]) == pytest.approx(2.0, rel=1e-3)
    unchanged = torch.log(torch.tensor([0.01, 0.2, 0.4, 0.4]))
    project_log_deltas_(unchanged, 0.01, 5.0, 4.0, "upper_bound")
    assert float(unchanged.exp().sum()) == pytest.approx(1.01, rel=1e-4)


def test_projection_scales_onto_the_budget_within_the_bounds():
    log_deltas = torch.log(torch.tensor([0.011, 3.0, 3.0, 6.0]))
    project_log_deltas_(log_deltas, 0.01, 5.0, 4.0)
    deltas = log_deltas.exp()
    assert float(deltas.sum()) == pytest.approx(4.0, rel=1e-4)
    assert float(deltas.min()) >= 0.01 - 1e-6 and float(deltas.max()) <= 5.0 + 1e-5
    assert float(deltas[1] / deltas[3]) == pytest.approx(3.0 / 5.0, rel=1e-3)


def test_shared_scale_adam_keeps_gradient_ratios():
    """Same-sign gradients 100x apart give steps 100x apart (per-coordinate
    Adam would give equal steps: the review's 1.3x ratio)."""
    param = torch.nn.Parameter(torch.zeros(3))
    optimizer = SharedScaleAdam([param], lr=1e-2)
    for _ in range(50):
        optimizer.zero_grad()
        (torch.tensor([-1e-4, -1e-3, -1e-2]) * param).sum().backward()
        optimizer.step()
    moved = param.detach()
    assert float(moved[2] / moved[0]) == pytest.approx(100.0, rel=1e-3)


def test_batched_per_agent_gradients_equal_one_backward_per_loss():
    """One vmapped backward gives each loss's per-agent gradients exactly as a
    separate torch.autograd.grad per loss would (an unused parameter gives 0)."""
    from rllib_mamt.algorithms.mamt.delta_allocation import per_agent_gradient_sets

    generator = torch.Generator().manual_seed(2)
    networks = [torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.LeakyReLU(),
                                    torch.nn.Linear(6, 4)) for _ in range(3)]
    unused = torch.nn.Parameter(torch.ones(2))
    parameters = [list(net.parameters()) for net in networks]
    parameters[1].append(unused)
    inputs = torch.randn(5, 3, generator=generator)
    log_probs = [F.log_softmax(net(inputs), -1) for net in networks]
    losses = [
        sum((lp[:, 0] * torch.randn(5, generator=generator)).mean() for lp in log_probs),
        sum(tsallis_relative_entropy(lp.exp(), torch.full((5, 4), 0.25), 0.2).mean()
            for lp in log_probs),
        sum((lp.exp() * lp).sum(-1).pow(2).mean() for lp in log_probs),
    ]
    batched = per_agent_gradient_sets(losses, parameters)
    for loss, per_agent in zip(losses, batched):
        for group, flat in zip(parameters, per_agent):
            grads = torch.autograd.grad(loss, group, retain_graph=True, allow_unused=True)
            expected = torch.cat([torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1)
                                  for p, g in zip(group, grads)])
            assert flat.shape == expected.shape
            assert torch.allclose(flat, expected, rtol=1e-5, atol=1e-7)
    assert torch.all(batched[0][1][-2:] == 0)


def _allocate(net_slopes, start, step, updates=6000, noise=1.0, seed=0, bounds=(0.01, 100.0)):
    """δ after ``updates`` steps of the real δ step (gradient, shared-scale Adam,
    projection onto Σδ = n) when every agent's net slope (value − drift per
    unit log δ) is constant: ``net_slopes`` plus N(0, noise²) sampling noise.
    F(δ) = Σ_j s_j log δ_j on the budget has a known maximiser: δ_j ∝ s_j."""
    generator = torch.Generator().manual_seed(seed)
    slopes = torch.tensor(net_slopes, dtype=torch.float32)
    n = len(net_slopes)
    log_deltas = torch.nn.Parameter(torch.tensor(start, dtype=torch.float32).log())
    project_log_deltas_(log_deltas.data, *bounds, float(n), "equality")
    optimizer = SharedScaleAdam([log_deltas], lr=1e-3)
    for _ in range(updates):
        value = slopes + noise * torch.randn(n, generator=generator)
        optimizer.zero_grad()
        log_deltas.grad = log_delta_gradient(
            value, torch.zeros(n), log_deltas.detach().exp(), bounds, step
        )
        optimizer.step()
        project_log_deltas_(log_deltas.data, *bounds, float(n), "equality")
    return log_deltas.detach().exp()


def test_equal_slopes_bring_delta_back_to_the_even_split():
    """Symmetric agents: the budget's optimum is the even split. The log-space
    step (up to session 8) has no pull back: it stays where it started."""
    start = [0.4, 1.6]
    deltas = _allocate([1.0, 1.0], start, "mirror_descent")
    assert float(deltas.max() / deltas.min()) < 1.1, deltas
    stuck = _allocate([1.0, 1.0], start, "log_space")
    assert float(stuck.max() / stuck.min()) > 2.0, stuck


def test_unequal_slopes_share_the_budget_in_proportion():
    """8 agents with net slopes 1,1,1,1,2,2,3,5 on a budget of 8: δ_j = s_j / 2.
    The log-space step hands the whole budget to the steepest agent."""
    slopes = [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 5.0]
    deltas = _allocate(slopes, [1.0] * 8, "mirror_descent", updates=10000)
    expected = torch.tensor(slopes) / 2.0
    assert torch.allclose(deltas, expected, rtol=0.1), deltas
    cornered = _allocate(slopes, [1.0] * 8, "log_space", updates=10000)
    assert float(cornered[-1]) > 7.0 and float(cornered[:4].max()) < 0.05, cornered


def test_agent_whose_loosening_costs_more_than_it_gains_gets_the_lower_bound():
    deltas = _allocate([-1.0, 1.0, 3.0, 1.0], [1.0] * 4, "mirror_descent", updates=10000)
    assert float(deltas[0]) == pytest.approx(0.01, rel=1e-3), deltas
    assert float(deltas[2]) > 2.0 * float(deltas[1]) and float(deltas[2]) > 2.0 * float(deltas[3])
    assert float(deltas[1] / deltas[3]) == pytest.approx(1.0, abs=0.1), deltas


def test_gradient_that_pushes_a_bound_delta_further_out_is_dropped():
    deltas = torch.tensor([0.01, 1.0, 100.0])
    gradient = log_delta_gradient(torch.tensor([-1.0, 2.0, 3.0]), torch.zeros(3), deltas,
                                  (0.01, 100.0), "mirror_descent")
    assert gradient.tolist() == pytest.approx([0.0, -2.0, 0.0])
    inward = log_delta_gradient(torch.tensor([2.0, 2.0, -3.0]), torch.zeros(3), deltas,
                                (0.01, 100.0), "mirror_descent")
    assert inward.tolist() == pytest.approx([-200.0, -2.0, 0.03])
