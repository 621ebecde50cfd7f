"""The learner sets torch's intra-op threads from the CPUs it was given."""

import pytest
import torch

from rllib_mamt.torch_threads import learner_cpus
from tests.conftest import tiny_spread_config


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_cpus_follow_rllibs_resource_rules():
    config = tiny_spread_config()
    assert learner_cpus(config) == 1
    config.resources(num_cpus_for_main_process=3)
    assert learner_cpus(config) == 3
    config.learners(num_learners=2, num_cpus_per_learner=2)
    assert learner_cpus(config) == 2
    config.learners(num_learners=1, num_cpus_per_learner="auto", num_gpus_per_learner=1)
    assert learner_cpus(config) == 1


@pytest.mark.parametrize("override, expected", [(None, 1), (2, 2)])
def test_local_learner_sets_the_driver_threads(ray_session, restore_threads, override, expected):
    torch.set_num_threads(3)
    algo = tiny_spread_config(learner_torch_threads=override).build_algo()
    try:
        assert torch.get_num_threads() == expected
    finally:
        algo.stop()


@pytest.mark.parametrize("value", [0, 1.5, "two", True])
def test_bad_thread_count_is_named(value):
    with pytest.raises(ValueError, match="'learner_torch_threads'"):
        tiny_spread_config(learner_torch_threads=value).validate()
