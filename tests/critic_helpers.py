"""Brute-force reference values of the attention critic for the tests."""

import torch


def marginalised_by_substitution(critic, observations, actions, probs, j):
    """Q_i(a_\\j) of Eq. 5 for every agent i, (B, n): agent j's replayed action
    replaced by each of its actions and weighted by pi_j, one critic call each."""
    n = actions.shape[1]
    expected = torch.zeros(actions.shape[0], n)
    for alternative in range(probs[j].shape[1]):
        replaced = actions.clone()
        replaced[:, j] = alternative
        q_replaced, _ = critic(observations, replaced)
        for i in range(n):
            own = q_replaced[i].gather(-1, actions[:, i : i + 1]).squeeze(-1)
            expected[:, i] += probs[j][:, alternative] * own
    return expected
