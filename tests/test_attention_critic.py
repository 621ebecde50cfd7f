"""The attention critic: shapes, heterogeneous agents, and the exact baseline."""

import torch

from rllib_mamt.algorithms.mamt.losses import counterfactual_baseline
from rllib_mamt.modules.attention_critic import AttentionCritic
from tests.critic_helpers import marginalised_by_substitution

OBS_SIZES = [13, 13, 8]
ACTION_SIZES = [5, 3, 4]


def make_batch(batch=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    observations = [torch.randn(batch, size, generator=generator) for size in OBS_SIZES]
    actions = torch.stack(
        [torch.randint(0, n, (batch,), generator=generator) for n in ACTION_SIZES], -1
    )
    return observations, actions


def test_shapes_with_heterogeneous_agents():
    critic = AttentionCritic(OBS_SIZES, ACTION_SIZES, hidden_dim=16, num_heads=4)
    observations, actions = make_batch()
    q_values, logits = critic(observations, actions)
    assert [tuple(q.shape) for q in q_values] == [(6, 5), (6, 3), (6, 4)]
    assert tuple(logits.shape) == (6, 4, 3, 3)
    assert torch.all(logits.diagonal(dim1=-2, dim2=-1) == 0)


def test_all_action_head_equals_substituting_each_own_action():
    """The baseline of Eq. 10 computed from the head equals a brute-force sum."""
    torch.manual_seed(0)
    critic = AttentionCritic(OBS_SIZES, ACTION_SIZES, hidden_dim=16, num_heads=2)
    observations, actions = make_batch()
    q_values, _ = critic(observations, actions)
    for agent, n_actions in enumerate(ACTION_SIZES):
        probs = torch.softmax(torch.randn(6, n_actions), -1)
        brute_force = torch.zeros(6)
        for own_action in range(n_actions):
            substituted = actions.clone()
            substituted[:, agent] = own_action
            q_substituted, _ = critic(observations, substituted)
            brute_force += probs[:, own_action] * q_substituted[agent][:, own_action]
        assert torch.allclose(
            counterfactual_baseline(probs, q_values[agent]), brute_force, atol=1e-5
        )


def test_q_of_an_agent_depends_on_the_other_agents_actions():
    torch.manual_seed(1)
    critic = AttentionCritic(OBS_SIZES, ACTION_SIZES, hidden_dim=16, num_heads=4)
    observations, actions = make_batch()
    changed = actions.clone()
    changed[:, 1] = (changed[:, 1] + 1) % ACTION_SIZES[1]
    before, _ = critic(observations, actions)
    after, _ = critic(observations, changed)
    assert not torch.allclose(before[0], after[0])
    assert torch.allclose(before[1], after[1])


def test_input_normalization_records_only_the_training_forward():
    """Encoder inputs are batch-normalised (MAAC); only a differentiated train-mode
    forward records statistics; no-grad passes use the running ones."""
    torch.manual_seed(2)
    critic = AttentionCritic(OBS_SIZES, ACTION_SIZES, hidden_dim=16, num_heads=4,
                             input_normalization=True)
    observations, actions = make_batch(batch=32)
    observations = [100.0 * obs + 50.0 for obs in observations]
    critic.train()
    with torch.no_grad():
        critic(observations, actions)
    assert all(not m.running_mean.any() for m in critic.normalization_modules())
    critic(observations, actions)
    for module, obs in zip(critic.state_normalizations, observations):
        assert torch.allclose(module.running_mean, 0.1 * obs.mean(0), atol=1e-4)
    recorded = [m.running_var.clone() for m in critic.normalization_modules()]
    probs = torch.stack(
        [torch.nn.functional.pad(torch.softmax(torch.randn(32, n), -1), (0, 5 - n))
         for n in ACTION_SIZES], 1
    )
    critic.counterfactual_values(observations, actions, probs)  # tiled actions
    for module, before in zip(critic.normalization_modules(), recorded):
        assert torch.equal(module.running_var, before)

    target = AttentionCritic(OBS_SIZES, ACTION_SIZES, hidden_dim=16, num_heads=4,
                             input_normalization=True)
    target.copy_normalization_statistics_(critic)
    for mine, theirs in zip(target.normalization_modules(), critic.normalization_modules()):
        assert torch.equal(mine.running_var, theirs.running_var)


def test_counterfactuals_with_normalization_equal_brute_force_in_eval():
    """The tiled counterfactual rows are normalised like replayed ones (running
    statistics), so Eq. 5's values match substituting each action."""
    torch.manual_seed(3)
    critic = AttentionCritic(OBS_SIZES, ACTION_SIZES, hidden_dim=16, num_heads=4,
                             input_normalization=True)
    observations, actions = make_batch(batch=16)
    observations = [10.0 * obs + 3.0 for obs in observations]
    critic.train()
    critic(observations, actions)  # record some statistics
    critic.eval()
    probs = [torch.softmax(torch.randn(16, n), -1) for n in ACTION_SIZES]
    padded = torch.stack([torch.nn.functional.pad(p, (0, 5 - p.shape[1])) for p in probs], 1)
    q_joint, q_without = critic.counterfactual_values(observations, actions, padded)
    q_values, _ = critic(observations, actions)
    for i in range(3):
        taken = q_values[i].gather(-1, actions[:, i:i + 1]).squeeze(-1)
        assert torch.allclose(q_joint[:, i], taken, atol=1e-5)
    j = 1
    expected = marginalised_by_substitution(critic, observations, actions, probs, j)
    for i in (0, 2):
        assert torch.allclose(q_without[:, i, j], expected[:, i], atol=1e-4)


def test_masked_softmax_equals_softmax_over_the_kept_entries():
    """The attention's softmax: values and gradients of torch.softmax with the
    excluded entries at -inf, stable for large logits, 0 on fully excluded rows."""
    from rllib_mamt.modules.attention_critic import masked_softmax

    generator = torch.Generator().manual_seed(5)
    logits = (300.0 * torch.randn(3, 2, 4, 4, generator=generator, dtype=torch.float64))
    excluded = torch.eye(4, dtype=torch.bool) | (torch.rand(3, 1, 1, 4, generator=generator) < 0.3)
    excluded[0, :, 2, :] = True  # a row with nothing to attend
    direction = torch.randn(3, 2, 4, 4, generator=generator, dtype=torch.float64)
    ours = logits.clone().requires_grad_()
    weights = masked_softmax(ours, excluded)
    (weights * direction).sum().backward()
    reference = logits.clone().requires_grad_()
    nothing = excluded.all(-1, keepdim=True)
    expected = torch.softmax(
        reference.masked_fill(excluded & ~nothing, float("-inf")), -1
    ).masked_fill(nothing, 0.0)
    (expected * direction).sum().backward()
    assert torch.isfinite(weights).all()
    assert torch.allclose(weights, expected, atol=1e-12)
    assert torch.all(weights[0, :, 2] == 0)
    assert torch.allclose(ours.grad, reference.grad, atol=1e-12)
