"""benchmarks/spread3_scripted.py: the scripted Spread-3 reference beside Fig. 8."""

import os
import sys
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))

import spread3_scripted  # noqa: E402

WORLD = SimpleNamespace(damping=0.25, dt=0.1)
AGENT = SimpleNamespace(accel=None, mass=1.0)


def test_at_rest_it_heads_for_the_target_and_near_it_at_speed_it_brakes():
    at_rest = spread3_scripted.stopping_action(np.zeros(2), np.zeros(2), np.array([1.0, 0.0]),
                                               WORLD, AGENT)
    assert at_rest == 2  # +x
    braking = spread3_scripted.stopping_action(np.zeros(2), np.array([0.0, 1.0]),
                                               np.array([0.0, 0.1]), WORLD, AGENT)
    assert braking == 3  # moving +y at speed 1 just short of the target: -y


def test_agents_sharing_a_reward_split_their_landmarks_the_short_way():
    positions = np.array([[1.0, 0.0], [5.0, 5.0], [-1.0, 0.0]])
    landmarks = np.array([[-1.1, 0.0], [0.0, 9.0], [1.1, 0.0]])
    assert spread3_scripted.assignment(positions, landmarks, [0, 2]) == {0: 2, 1: 1, 2: 0}
    assert spread3_scripted.assignment(positions, landmarks, []) == {0: 0, 1: 1, 2: 2}


def test_the_scripted_agents_do_far_better_than_standing_still():
    """Each Sep agent's return is minus its distance to its landmark summed over
    25 steps; going there must beat the no-op policy's for every agent."""
    scripted = spread3_scripted.play("sep", 5, 0)["agent_return_mean"]
    moves = spread3_scripted.MOVES
    spread3_scripted.MOVES = moves[:1]  # only the no-op
    try:
        still = spread3_scripted.play("sep", 5, 0)["agent_return_mean"]
    finally:
        spread3_scripted.MOVES = moves
    assert all(scripted[agent] > 0.5 * still[agent] for agent in scripted)
