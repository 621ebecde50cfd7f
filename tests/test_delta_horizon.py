"""benchmarks/delta_horizon.py: the K-step slopes are paired finite differences."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))

import delta_horizon  # noqa: E402
from tests.conftest import tiny_spread_config  # noqa: E402


@pytest.fixture(scope="module")
def trained(ray_session):
    algo = tiny_spread_config("learned").build_algo()
    for _ in range(2):
        algo.train()
    yield algo
    algo.stop()


def learner_parameters(algo):
    learner = algo.learner_group._learner
    return {name: tensor.clone() for module_id in learner.module.keys()
            for name, tensor in learner.module[module_id].state_dict().items()}


def test_shifting_one_agents_delta_moves_only_its_own_first_step(trained):
    before = learner_parameters(trained)
    result = delta_horizon.horizon_slopes(trained, [1, 2], epsilon=0.2, evaluation_rows=64)
    for agent, rows in result["agents"].items():
        first = rows["1"]
        # the first step of every other agent saw the same batch, actions and
        # policies, so only agent j's value moved: the runs are paired
        assert first["total_value_slope"] == pytest.approx(first["own_value_slope"], abs=1e-12)
        assert first["own_value_slope"] != 0.0
    after = learner_parameters(trained)
    assert all((before[name] == after[name]).all() for name in before)  # state restored


def test_bad_horizons_and_agents_are_named(trained):
    with pytest.raises(ValueError, match="horizons"):
        delta_horizon.horizon_slopes(trained, [0], epsilon=0.2, evaluation_rows=64)
    with pytest.raises(ValueError, match="agents \\['rover_9'\\]"):
        delta_horizon.horizon_slopes(trained, [1], epsilon=0.2, evaluation_rows=64,
                                     agents=["rover_9"])
