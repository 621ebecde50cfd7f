"""`import rllib_mamt` registers algorithms and environments with Tune by name."""

import pytest
from ray import tune
from ray.tune.registry import ENV_CREATOR, TRAINABLE_CLASS, _global_registry

import rllib_mamt


@pytest.mark.parametrize("name", ["MAMT", "MAMD", "MAAC"])
def test_algorithms_are_registered(name):
    assert _global_registry.contains(TRAINABLE_CLASS, name)
    assert _global_registry.get(TRAINABLE_CLASS, name) is rllib_mamt.ALGORITHMS[name]


def test_spread_env_is_registered():
    assert _global_registry.contains(ENV_CREATOR, "spread")


def test_tuner_runs_mamd_by_name(ray_session, tmp_path):
    from tests.conftest import tiny_spread_config

    param_space = tiny_spread_config("equal").to_dict()
    tuner = tune.Tuner(
        "MAMD",
        param_space=param_space,
        run_config=tune.RunConfig(
            stop={"training_iteration": 1}, storage_path=str(tmp_path), verbose=0
        ),
    )
    results = tuner.fit()
    assert not results.errors
    result = results.get_best_result(metric="env_runners/episode_return_mean", mode="max")
    assert result.metrics["training_iteration"] == 1
    assert "agent_0" in result.metrics["learners"]
