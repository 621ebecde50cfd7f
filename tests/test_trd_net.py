"""TRD-Net (Fig. 1, Eq. 7) and opponent models (Eq. 6) learn what they should."""

import torch

from rllib_mamt.algorithms.mamt.coordination import fixed_coefficients
from rllib_mamt.algorithms.mamt.opponent_models import OpponentModels
from rllib_mamt.algorithms.mamt.trd_net import TrustRegionDecompositionNet

OBS_SIZES = [4, 4, 6]
ACTION_SIZES = [5, 5, 3]


def fixed_batch(batch=128, seed=0):
    generator = torch.Generator().manual_seed(seed)
    observations = [torch.randn(batch, s, generator=generator) for s in OBS_SIZES]
    actions = torch.stack(
        [torch.randint(0, k, (batch,), generator=generator) for k in ACTION_SIZES], -1
    )
    return observations, actions


def test_trd_net_fits_a_synthetic_non_stationarity_target():
    torch.manual_seed(0)
    observations, actions = fixed_batch()
    log_deltas = torch.log(torch.tensor([0.1, 1.0, 10.0]))
    coefficients = fixed_coefficients(128, 3)
    coefficients[:, 0, 2] = 0.0
    # D_ns,i: a smooth function of delta, own and neighbour observations.
    target = (
        torch.stack([obs[:, 0].abs() for obs in observations], -1) * log_deltas.exp().sqrt()
        + (coefficients @ torch.stack([obs[:, 1].pow(2) for obs in observations], -1).unsqueeze(-1)).squeeze(-1)
    )
    net = TrustRegionDecompositionNet(OBS_SIZES, ACTION_SIZES, hidden_dim=32, num_layers=2)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)

    def eq7_loss():
        predicted = net(observations, actions, log_deltas, coefficients)
        return (predicted.sum(-1) - target.sum(-1)).pow(2).mean()

    initial = eq7_loss().item()
    for _ in range(400):
        optimizer.zero_grad()
        loss = eq7_loss()
        loss.backward()
        optimizer.step()
    assert eq7_loss().item() < 0.05 * initial


def test_messages_flow_only_along_coordination_edges():
    torch.manual_seed(0)
    observations, actions = fixed_batch(batch=4)
    net = TrustRegionDecompositionNet(OBS_SIZES, ACTION_SIZES, hidden_dim=16, num_layers=1)
    log_deltas = torch.zeros(3)
    coefficients = torch.zeros(4, 3, 3)
    coefficients[:, 0, 1] = coefficients[:, 1, 0] = 1.0  # agents 0-1 linked, 2 alone
    changed = [obs.clone() for obs in observations]
    changed[2] += 5.0
    before = net(observations, actions, log_deltas, coefficients)
    after = net(changed, actions, log_deltas, coefficients)
    assert torch.allclose(before[:, :2], after[:, :2])
    assert not torch.allclose(before[:, 2], after[:, 2])
    changed_neighbour = [obs.clone() for obs in observations]
    changed_neighbour[1] += 5.0
    assert not torch.allclose(before[:, 0], net(changed_neighbour, actions, log_deltas, coefficients)[:, 0])


def test_prediction_depends_on_delta_and_is_non_negative():
    torch.manual_seed(0)
    observations, actions = fixed_batch(batch=8)
    net = TrustRegionDecompositionNet(OBS_SIZES, ACTION_SIZES, hidden_dim=16)
    coefficients = fixed_coefficients(8, 3)
    low = net(observations, actions, torch.log(torch.full((3,), 0.01)), coefficients)
    high = net(observations, actions, torch.log(torch.full((3,), 100.0)), coefficients)
    assert torch.all(low >= 0) and torch.all(high >= 0)
    assert not torch.allclose(low, high)


def test_opponent_model_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    observations, _ = fixed_batch(batch=256)
    # Other agents' actions are a deterministic function of agent 0's observation.
    actions = torch.stack(
        [
            (observations[0][:, 0] > 0).long() * 2,
            (observations[0][:, 1] > 0).long() + 3,
            (observations[0][:, 2] > 0).long(),
        ],
        -1,
    )
    models = OpponentModels(OBS_SIZES, ACTION_SIZES, hidden_sizes=[64])
    optimizer = torch.optim.Adam(models.parameters(), lr=3e-3)
    initial = models.cross_entropy(models(observations), actions).item()
    for _ in range(200):
        optimizer.zero_grad()
        loss = models.cross_entropy(models(observations), actions)
        loss.backward()
        optimizer.step()
    final = models.cross_entropy(models(observations), actions).item()
    assert final < 0.5 * initial
    logits = models(observations)
    predicted_agent_2 = logits[:, 0, 2].argmax(-1)
    assert (predicted_agent_2 < ACTION_SIZES[2]).all()  # padded actions never predicted
    accuracy = (predicted_agent_2 == actions[:, 2]).float().mean()
    assert accuracy > 0.9
