"""A restored run continues exactly where the saved one stopped."""

import pytest
from ray.rllib.algorithms.algorithm import Algorithm

from rllib_mamt.central_module_spec import CENTRAL_MODULE_ID
from tests.conftest import tiny_spread_config
from tests.state_helpers import flatten_state, numeric_differences


@pytest.mark.parametrize("mode", ["equal", "learned"])
def test_restored_run_makes_the_same_next_update(ray_session, tmp_path, mode):
    algo = tiny_spread_config(mode, mirror_descent_lag=3).build_algo()
    try:
        for _ in range(2):
            algo.train()
        algo.save(str(tmp_path))
        buffer_rows = len(algo.joint_replay_buffer)
        algo.update_from_buffer()
        uninterrupted = algo.learner_group.get_state()
    finally:
        algo.stop()

    restored = Algorithm.from_checkpoint(str(tmp_path))
    try:
        assert len(restored.joint_replay_buffer) == buffer_rows
        restored.update_from_buffer()
        resumed = restored.learner_group.get_state()
        learned = ("rl_module", "optimizer", "mamt_sampling_generator")
        differing, compared = numeric_differences(
            {k: uninterrupted["learner"][k] for k in learned},
            {k: resumed["learner"][k] for k in learned},
        )
        assert compared > 100  # modules, optimiser moments, counters, generator
        assert differing == []
        flat = flatten_state(resumed)
        assert any("optimizer" in name for name in flat)
        assert any("old_actors" in name for name in flat)
        assert any(name.endswith(f"{CENTRAL_MODULE_ID}/num_updates") for name in flat)
        if mode == "learned":
            for part in ("log_trust_region_deltas", "trd_net", "opponent_models"):
                assert any(part in name for name in flat), part
            for optimizer in ("trd_net", "opponent_models", "trust_regions"):
                assert any(optimizer in name for name in flat if "optimizer" in name)
        result = restored.train()
        assert result["training_iteration"] == 3
    finally:
        restored.stop()


def test_restored_run_samples_the_episodes_of_the_uninterrupted_run(ray_session, tmp_path):
    """Saved between episodes (each iteration here is 4 whole episodes), a
    restored run starts the same episodes, draws the same actions and so
    reaches the same returns and weights as the run that went on."""
    config = tiny_spread_config("learned").reporting(metrics_num_episodes_for_smoothing=4)
    algo = config.build_algo()
    try:
        for _ in range(2):
            algo.train()
        algo.save(str(tmp_path))
        uninterrupted = [algo.train()["env_runners"]["episode_return_mean"] for _ in range(2)]
        uninterrupted_state = algo.learner_group.get_state()
    finally:
        algo.stop()

    restored = Algorithm.from_checkpoint(str(tmp_path))
    try:
        resumed = [restored.train()["env_runners"]["episode_return_mean"] for _ in range(2)]
        resumed_state = restored.learner_group.get_state()
    finally:
        restored.stop()
    assert resumed == uninterrupted
    differing, compared = numeric_differences(uninterrupted_state["learner"]["rl_module"],
                                              resumed_state["learner"]["rl_module"])
    assert compared > 10 and differing == []
