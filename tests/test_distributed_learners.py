"""Two CPU learners hold identical parameters after several updates."""

import numpy as np
import pytest

from tests.conftest import tiny_spread_config
from tests.state_helpers import numeric_differences


@pytest.mark.parametrize("mode", ["equal", "learned"])
def test_two_learners_stay_identical(ray_session, mode):
    config = tiny_spread_config(mode, num_updates_per_round=3).learners(num_learners=2)
    algo = config.build_algo()
    try:
        initial = algo.learner_group.foreach_learner(lambda l: l.module.get_state())
        initial = [r.get() for r in initial][0]
        for _ in range(2):
            algo.train()
        states = [r.get() for r in algo.learner_group.foreach_learner(lambda l: l.module.get_state())]
        assert len(states) == 2
        differing, compared = numeric_differences(states[0], states[1])
        assert compared > 20
        assert differing == []
        moved, _ = numeric_differences(initial, states[0])
        assert any("critic" in name for name in moved)
        assert any(name.startswith("agent_0/") for name in moved)
        assert int(np.asarray(states[0]["mamt_central"]["num_updates"])) == 12
        # Each learner samples actions from its own stream, derived from the run's seed.
        streams = [r.get() for r in algo.learner_group.foreach_learner(
            lambda l: l._sampling_generator.initial_seed())]
        assert len(set(streams)) == 2
    finally:
        algo.stop()
