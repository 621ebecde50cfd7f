"""Coordination coefficients (Eq. 5) and the non-stationarity estimate (Eq. 6)."""

import torch
from torch.nn import functional as F

from rllib_mamt.algorithms.mamt.coordination import (
    coefficients_from_counterfactuals,
    coefficients_from_influence,
    counterfactual_influence,
    fixed_coefficients,
    non_stationarity,
    random_coefficients,
)
from rllib_mamt.modules.attention_critic import AttentionCritic
from tests.critic_helpers import marginalised_by_substitution

OBS_SIZES = [6, 4, 5]
ACTION_SIZES = [5, 3, 4]
MAX_ACTIONS = 5


def batch_and_policies(batch=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    observations = [torch.randn(batch, s, generator=generator) for s in OBS_SIZES]
    actions = torch.stack(
        [torch.randint(0, k, (batch,), generator=generator) for k in ACTION_SIZES], -1
    )
    probs = [torch.softmax(torch.randn(batch, k, generator=generator), -1) for k in ACTION_SIZES]
    padded = torch.stack([F.pad(p, (0, MAX_ACTIONS - p.shape[1])) for p in probs], 1)
    return observations, actions, probs, padded


def test_batched_counterfactuals_equal_brute_force_marginalisation():
    torch.manual_seed(0)
    critic = AttentionCritic(OBS_SIZES, ACTION_SIZES, hidden_dim=16, num_heads=4)
    observations, actions, probs, padded = batch_and_policies()
    q_joint, q_without = critic.counterfactual_values(observations, actions, padded)
    q_values, _ = critic(observations, actions)
    for i in range(3):
        taken = q_values[i].gather(-1, actions[:, i : i + 1]).squeeze(-1)
        assert torch.allclose(q_joint[:, i], taken)
    for j in range(3):
        expected = marginalised_by_substitution(critic, observations, actions, probs, j)
        for i in range(3):
            if i != j:
                assert torch.allclose(q_without[:, i, j], expected[:, i], atol=1e-5)
    for i in range(3):
        own_marginal = (probs[i] * q_values[i]).sum(-1)
        assert torch.allclose(q_without[:, i, i], own_marginal, atol=1e-5)


def hand_built_critic(ignored_agent, hidden=16):
    """An attention critic with hand-set weights: uniform attention, and
    Q_i = 1 + 5 * sum of the other agents' action indices, except that
    ``ignored_agent``'s action enters no Q_i at all."""
    critic = AttentionCritic(OBS_SIZES, ACTION_SIZES, hidden_dim=hidden, num_heads=4)
    with torch.no_grad():
        for param in critic.parameters():
            param.zero_()
        for k, encoder in enumerate(critic.state_action_encoders):
            encoder[0].bias.fill_(1.0)
            if k != ignored_agent:
                encoder[0].weight[0, OBS_SIZES[k]:] = 10.0 * torch.arange(ACTION_SIZES[k])
        critic.value_projection[0].weight.copy_(torch.eye(hidden))
        for head in critic.q_heads:
            head[0].weight[0, hidden] = 1.0
            head[2].weight[:, 0] = 1.0
    return critic


def policies_avoiding_replayed_actions(actions):
    """pi_j puts all its mass on an action other than the replayed a_j."""
    return torch.stack(
        [
            F.pad(F.one_hot((actions[:, j] + 1) % k, k).float(), (0, MAX_ACTIONS - k))
            for j, k in enumerate(ACTION_SIZES)
        ],
        1,
    )


def test_agent_that_no_critic_depends_on_gets_zero_coefficients():
    critic = hand_built_critic(ignored_agent=1)
    observations, actions, _, _ = batch_and_policies(batch=64)
    padded = policies_avoiding_replayed_actions(actions)
    with torch.no_grad():
        q_joint, q_without = critic.counterfactual_values(observations, actions, padded)
    assert torch.allclose(q_without[:, 0, 1], q_joint[:, 0], atol=1e-4)
    assert torch.allclose(q_without[:, 2, 1], q_joint[:, 2], atol=1e-4)
    c = coefficients_from_counterfactuals(q_joint, q_without, threshold=0.2)
    assert torch.all(c[:, 0, 1] == 0) and torch.all(c[:, 2, 1] == 0)
    assert torch.all(c[:, 0, 2] > 0.5) and torch.all(c[:, 2, 0] > 0.5)
    assert torch.all(c.diagonal(dim1=-2, dim2=-1) == 0)
    influence = counterfactual_influence(q_joint, q_without)
    assert influence[:, 0, 1].max() < 1e-3 and influence[:, 2, 1].max() < 1e-3
    assert influence[:, 0, 2].min() > 1e-2


def test_influence_is_not_normalised_per_row():
    """C rows sum to one, so 'no agent matters' and 'every agent matters' give
    the same C; the raw influence keeps them apart."""
    q_joint = torch.zeros(1, 3)
    weak = torch.full((1, 3, 3), 0.01)
    strong = torch.full((1, 3, 3), 5.0)
    assert torch.allclose(
        coefficients_from_counterfactuals(q_joint, weak, 0.0),
        coefficients_from_counterfactuals(q_joint, strong, 0.0),
    )
    assert torch.allclose(counterfactual_influence(q_joint, weak), weak)
    assert torch.allclose(counterfactual_influence(q_joint, strong), strong)


def test_without_threshold_rows_sum_to_one():
    critic = hand_built_critic(ignored_agent=1)
    observations, actions, _, padded = batch_and_policies(batch=32)
    with torch.no_grad():
        c = coefficients_from_counterfactuals(
            *critic.counterfactual_values(observations, actions, padded), threshold=0.0
        )
    assert torch.allclose(c.sum(-1), torch.ones(32, 3), atol=1e-6)
    assert torch.all(c.diagonal(dim1=-2, dim2=-1) == 0)


def test_threshold_zeroes_small_coefficients_only():
    q_joint = torch.zeros(1, 3)
    q_without = torch.tensor([[[0.0, 0.0, 3.0], [1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]])
    c = coefficients_from_counterfactuals(q_joint, q_without, threshold=0.2)
    softmax_row_0 = torch.softmax(torch.tensor([0.0, 3.0]), -1)
    assert c[0, 0, 1] == 0.0 and torch.isclose(c[0, 0, 2], softmax_row_0[1])
    assert torch.allclose(c[0, 1], torch.tensor([0.5, 0.0, 0.5]))


def test_ablation_coefficients():
    fixed = fixed_coefficients(4, 5)
    assert torch.allclose(fixed.sum(-1), torch.ones(4, 5))
    assert torch.all(fixed[:, 0, 1:] == 0.25)
    generator = torch.Generator().manual_seed(0)
    random = random_coefficients(4, 5, generator)
    assert torch.allclose(random.sum(-1), torch.ones(4, 5))
    assert torch.all(random.diagonal(dim1=-2, dim2=-1) == 0)
    assert not torch.allclose(random[0], random[1])


def test_non_stationarity_is_zero_for_perfect_opponent_models_and_is_projected():
    generator = torch.Generator().manual_seed(2)
    policy = torch.log_softmax(torch.randn(8, 3, 5, generator=generator), -1)
    perfect = policy.unsqueeze(1).expand(8, 3, 3, 5)
    c = fixed_coefficients(8, 3)
    assert torch.allclose(non_stationarity(c, perfect, policy, (0.0, 10.0)), torch.zeros(8, 3), atol=1e-6)
    wrong = torch.log_softmax(torch.randn(8, 3, 3, 5, generator=generator) * 4, -1)
    d = non_stationarity(c, wrong, policy, (0.0, 10.0))
    assert torch.all(d > 0)
    assert torch.all(non_stationarity(c, wrong, policy, (0.0, 0.05)) <= 0.05)
    assert torch.allclose(non_stationarity(2 * c, wrong, policy, (0.0, 100.0)), 2 * d, atol=1e-5)


def graph_critic(dependencies, coupling, own_effect=1.0, num_actions=4, obs_size=3):
    """An attention critic with hand-set weights whose Q_i depends on agent j's
    action exactly where ``dependencies[i][j]`` is true (a ground-truth graph):
    Q_i(o, a) = own_effect * a_i + coupling * mean_{k != i} [j = k dependent] * a_k.

    Attention is uniform (zero keys and queries); agent k's state-action
    embedding carries its action index in dimension k only, and Q_i's head
    reads dimension j of the attended vector for every j it depends on.
    """
    n = len(dependencies)
    hidden = 4 * ((n + 3) // 4)
    critic = AttentionCritic([obs_size] * n, [num_actions] * n, hidden_dim=hidden, num_heads=4)
    with torch.no_grad():
        for param in critic.parameters():
            param.zero_()
        for k, encoder in enumerate(critic.state_action_encoders):
            encoder[0].weight[k, obs_size:] = torch.arange(num_actions, dtype=torch.float32)
        critic.value_projection[0].weight.copy_(torch.eye(hidden))
        for i, head in enumerate(critic.q_heads):
            for j in range(n):
                if j != i and dependencies[i][j]:
                    head[0].weight[0, hidden + j] = coupling * (n - 1)
            head[2].weight[:, 0] = 1.0
            head[2].bias.copy_(own_effect * torch.arange(num_actions, dtype=torch.float32))
    return critic


def graph_coefficients(dependencies, coupling, normalization, own_effect=1.0, seed=0):
    n = len(dependencies)
    critic = graph_critic(dependencies, coupling, own_effect)
    generator = torch.Generator().manual_seed(seed)
    observations = [torch.randn(256, 3, generator=generator) for _ in range(n)]
    actions = torch.randint(0, 4, (256, n), generator=generator)
    probs = torch.full((256, n, 4), 0.25)
    with torch.no_grad():
        q_joint, q_without = critic.counterfactual_values(observations, actions, probs)
    influence = counterfactual_influence(q_joint, q_without)
    return coefficients_from_influence(influence, 0.2, normalization=normalization)


SPREAD3_GRAPHS = {
    "sep": [[0, 0, 0], [0, 0, 0], [0, 0, 0]],
    "mix": [[0, 0, 1], [0, 0, 0], [1, 0, 0]],
    "ful": [[0, 1, 1], [1, 0, 1], [1, 1, 0]],
}


def test_relative_coefficients_recover_the_spread3_graphs():
    """Appendix D's Spread-3 variants as hand-built critics: C is the graph.
    Where Q_i depends on a_j as strongly as on a_i, C_ij = min(1, |a_j - 1.5|
    / E|a_i - 1.5|) row by row, 0.75 on average; elsewhere exactly 0."""
    for name, graph in SPREAD3_GRAPHS.items():
        c = graph_coefficients(graph, coupling=1.0, normalization="relative").mean(0)
        expected = 0.75 * torch.tensor(graph, dtype=torch.float32)
        assert torch.allclose(c, expected, atol=0.06), (name, c)
        assert torch.all(c[expected == 0] == 0), (name, c)


def test_with_two_agents_eq5_and_both_ablations_give_the_same_c():
    """n = 2: one partner each, so Eq. 5's softmax over j != i, MAMT-Fixed's
    1/(n-1) and MAMT-Random's softmax of one draw are all C_ij = 1 for j != i,
    whatever the influences; on 2-agent Spread the three differ in no C."""
    influence = torch.rand(64, 2, 2, generator=torch.Generator().manual_seed(1)) * 10
    learned = coefficients_from_influence(influence, threshold=0.2, normalization="paper")
    fixed = fixed_coefficients(64, 2)
    random = random_coefficients(64, 2, torch.Generator().manual_seed(2))
    off_diagonal = 1 - torch.eye(2)
    for c in (learned, fixed, random):
        assert torch.equal(c, off_diagonal.expand(64, 2, 2))


def test_paper_softmax_cannot_say_nobody_depends_on_anybody():
    """Eq. 5's rows sum to one: Spread-3-Sep gets the same C as -Ful."""
    sep = graph_coefficients(SPREAD3_GRAPHS["sep"], 1.0, "paper").mean(0)
    ful = graph_coefficients(SPREAD3_GRAPHS["ful"], 1.0, "paper").mean(0)
    assert torch.allclose(sep, ful, atol=0.05) and sep.sum(-1).min() > 0.9


def test_relative_coefficients_do_not_depend_on_the_value_scale_or_n():
    """Two agents that ignore each other, and eight agents in pairs, with
    influences 100x apart: the relative C is the graph every time; Eq. 5 says
    C = 1 for the independent pair and C = 0 for the pairs at the small scale
    (a near-uniform row 1/7 < sigma = 0.2)."""
    pair = [[0, 0], [0, 0]]
    pairs = [[int(j == i ^ 1) for j in range(8)] for i in range(8)]
    for scale in (0.01, 1.0):
        c_pair = graph_coefficients(pair, scale, "relative", own_effect=scale).mean(0)
        assert torch.allclose(c_pair, torch.zeros(2, 2), atol=1e-5)
        c_pairs = graph_coefficients(pairs, scale, "relative", own_effect=scale).mean(0)
        graph = torch.tensor(pairs, dtype=torch.float32)
        assert torch.allclose(c_pairs, 0.75 * graph, atol=0.06)
        assert torch.all(c_pairs[graph == 0] == 0)
    paper_pair = graph_coefficients(pair, 0.01, "paper", own_effect=0.01).mean(0)
    assert torch.allclose(paper_pair, 1 - torch.eye(2))
    paper_pairs = graph_coefficients(pairs, 0.01, "paper", own_effect=0.01).mean(0)
    assert torch.all(paper_pairs == 0)


def test_relative_coefficients_weigh_weak_links_below_strong_ones():
    """Q_0 depends on a_1 strongly and a_2 weakly (a fifth of the strength is
    cut by sigma = 0.2 only below it): C_01 > C_02 > 0."""
    influence = torch.tensor([[[1.0, 2.0, 0.3], [0.0, 1.0, 0.0], [0.0, 0.1, 1.0]]])
    c = coefficients_from_influence(influence, 0.2, normalization="relative")[0]
    assert c[0, 1] == 1.0 and torch.isclose(c[0, 2], torch.tensor(0.3))
    assert c[2, 1] == 0.0 and torch.all(c.diagonal() == 0)
