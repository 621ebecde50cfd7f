"""Shared fixtures: one local Ray instance for the whole test session.

CI machines have 2 cores; Ray is told 4 logical CPUs so that a test with two
learner actors plus EnvRunners can be scheduled (oversubscribed, but it runs).
"""

import os

import pytest
import ray

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture(scope="session")
def ray_session():
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def tiny_spread_config(mode="equal", **training):
    """A MAMTConfig on Spread sized to finish an iteration in about a second."""
    from rllib_mamt import MAMTConfig

    settings = dict(
        trust_region_mode=mode,
        train_batch_size_per_learner=32,
        num_steps_sampled_before_learning_starts=50,
        env_steps_per_update=50,
        num_updates_per_round=2,
        replay_buffer_capacity=5000,
        actor_hidden_sizes=[32],
        critic_hidden_dim=32,
    )
    settings.update(training)
    return (
        MAMTConfig()
        .environment("spread")
        .env_runners(num_env_runners=0)
        .training(**settings)
        .reporting(min_sample_timesteps_per_iteration=100)
        .debugging(seed=0)
    )
