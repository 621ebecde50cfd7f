"""benchmarks/coordination_probe.py: C toward each row's partner on Rover-Tower."""

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))

import coordination_probe  # noqa: E402

AGENTS = ["rover_0", "rover_1", "tower_0", "tower_1"]


class BrokenAlgorithm:
    """An off-policy algorithm whose learner is gone: every measurement fails."""

    joint_replay_buffer = None

    @property
    def learner_group(self):
        raise RuntimeError("learner gone")


def rows_with_pairings(pairings):
    """Observations (one-hot of the partner first) and a C that is 1 toward the
    row's partner and 0 elsewhere, for rows whose rover k is paired with tower
    ``pairing[k]``."""
    rows = len(pairings)
    observations = [torch.zeros(rows, 5) for _ in AGENTS]
    coefficients = torch.zeros(rows, 4, 4)
    for row, pairing in enumerate(pairings):
        for rover, tower in enumerate(pairing):
            observations[rover][row, tower] = 1.0
            observations[2 + tower][row, rover] = 1.0
            coefficients[row, rover, 2 + tower] = 1.0
            coefficients[row, 2 + tower, rover] = 1.0
    return coefficients, observations


def test_the_partner_is_read_per_row_where_the_mean_matrix_shows_nothing():
    coefficients, observations = rows_with_pairings([(0, 1), (1, 0)])
    mean = coefficients.mean(0)
    assert mean[0, 2] == mean[0, 3] == 0.5  # the mean over rows cannot tell the pairs
    contrast = coordination_probe.rover_tower_partner_contrast(AGENTS, coefficients, observations)
    assert contrast == {agent: pytest.approx((1.0, 0.0)) for agent in AGENTS}


def test_other_agent_names_give_no_contrast():
    coefficients, observations = rows_with_pairings([(0, 1)])
    names = ["agent_0", "agent_1", "agent_2", "agent_3"]
    assert coordination_probe.rover_tower_partner_contrast(names, coefficients, observations) == {}


def test_algorithms_without_a_replay_buffer_or_counterfactual_critic_give_none():
    class Learner:
        _coordination_coefficients = None

    class LearnerGroup:
        _learner = Learner()

    class OnPolicy:  # MAMT-PPO: counterfactual critic, no replay buffer
        learner_group = LearnerGroup()

    class OffPolicy:  # MADDPG: replay buffer, no counterfactual critic
        joint_replay_buffer = None
        learner_group = type("Group", (), {"_learner": object()})()

    assert coordination_probe.coordination_summary(OnPolicy()) is None
    assert coordination_probe.coordination_summary(OffPolicy()) is None


def test_the_fixed_and_random_ablations_record_their_c_without_an_influence(monkeypatch):
    coefficients, observations = rows_with_pairings([(0, 1), (1, 0)])
    fixed = torch.full_like(coefficients, 1.0 / 3.0)
    monkeypatch.setattr(coordination_probe, "coordination_rows",
                        lambda algo, rows, seed: (fixed, None, observations))

    class Algorithm:  # MAMT-Fixed: the learner returns no influence beside its C
        joint_replay_buffer = None
        learner_group = type("Group", (), {"_learner": type(
            "Learner", (), {"agent_ids": AGENTS, "_coordination_coefficients": None})()})()

    summary = coordination_probe.coordination_summary(Algorithm(), rows=2)
    assert summary["influence"] is None
    assert summary["coefficients"] == [[pytest.approx(1.0 / 3.0)] * 4] * 4
    assert summary["partner_contrast"]["rover_0"] == pytest.approx((1.0 / 3.0, 1.0 / 3.0))


def test_a_failed_final_measurement_still_lets_the_summary_be_written(capsys):
    import paper_budget

    assert paper_budget.measure_final_coordination(BrokenAlgorithm()) == {
        "error": "RuntimeError('learner gone')"}
    assert "final_coordination not measured" in capsys.readouterr().out


def test_the_partner_history_is_only_recorded_on_rover_tower_with_a_counterfactual_critic():
    class Learner:
        agent_ids = ["agent_0", "agent_1"]
        _coordination_coefficients = None

    class Spread:
        joint_replay_buffer = None
        learner_group = type("Group", (), {"_learner": Learner()})()

    class OnPolicy:  # MAMT-PPO: no replay buffer
        learner_group = type("Group", (), {"_learner": Learner()})()

    assert coordination_probe.partner_contrast_record(Spread(), 400) is None
    assert coordination_probe.partner_contrast_record(OnPolicy(), 400) is None
    assert coordination_probe.rover_tower_pairs(AGENTS) == ([0, 1], [2, 3])
    assert coordination_probe.rover_tower_pairs(["rover_0", "tower_0", "agent_0"]) is None


def test_a_failed_history_measurement_lets_training_go_on(capsys):
    import paper_budget

    assert paper_budget.measure_partner_contrast(BrokenAlgorithm(), 400) is None
    assert "coordination_history not measured at 400 episodes" in capsys.readouterr().out
