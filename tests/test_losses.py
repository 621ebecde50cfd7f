"""Unit tests of the pure loss functions (Eq. 9/10 building blocks)."""

import math

import pytest
import torch

from rllib_mamt.algorithms.mamt.losses import (
    counterfactual_baseline,
    entropy,
    tsallis_log,
    tsallis_relative_entropy,
)
from rllib_mamt.target_networks import soft_update_


def random_probs(rows=64, actions=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(rows, actions, generator=generator) * 2, -1)


@pytest.mark.parametrize("q", [0.0, 0.2, 0.5, 1.0, 1.5])
def test_divergence_is_zero_when_policy_equals_old_policy(q):
    probs = random_probs()
    assert torch.allclose(
        tsallis_relative_entropy(probs, probs, q), torch.zeros(64), atol=1e-6
    )


@pytest.mark.parametrize("q", [0.2, 0.5, 1.5])
def test_divergence_is_positive_for_different_policies(q):
    divergence = tsallis_relative_entropy(random_probs(seed=1), random_probs(seed=2), q)
    assert (divergence > 0).all()


def test_q_one_is_the_ordinary_kl_divergence():
    p, r = random_probs(seed=3), random_probs(seed=4)
    kl = (p * (p.log() - r.log())).sum(-1)
    assert torch.allclose(tsallis_relative_entropy(p, r, 1.0), kl, atol=1e-6)
    near_one = tsallis_relative_entropy(p, r, 0.999)
    assert torch.allclose(near_one, kl, rtol=1e-2)


def test_tsallis_log_matches_its_definition():
    x = torch.tensor([0.1, 0.5, 2.0])
    assert torch.allclose(tsallis_log(x, 0.2), (x**0.8 - 1) / 0.8)
    assert torch.allclose(tsallis_log(x, 1.0), x.log())


def test_counterfactual_baseline_is_the_expected_q_value():
    probs = random_probs(rows=3, actions=4)
    q_values = torch.randn(3, 4)
    expected = torch.stack(
        [sum(probs[b, a] * q_values[b, a] for a in range(4)) for b in range(3)]
    )
    assert torch.allclose(counterfactual_baseline(probs, q_values), expected)


def test_entropy_of_uniform_distribution_is_log_n():
    probs = torch.full((2, 5), 0.2)
    assert torch.allclose(entropy(probs, probs.log()), torch.full((2,), math.log(5)))


def test_soft_update_moves_target_by_tau():
    target = [torch.zeros(3), torch.ones(2)]
    source = [torch.ones(3), torch.full((2,), 3.0)]
    soft_update_(target, source, 0.1)
    assert torch.allclose(target[0], torch.full((3,), 0.1))
    assert torch.allclose(target[1], torch.full((2,), 1.2))
    soft_update_(target, source, 1.0)
    assert torch.allclose(target[1], source[1])
