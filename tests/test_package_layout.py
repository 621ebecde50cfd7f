"""The package layout: one sub-package per algorithm beside a shared core,
public imports unchanged, and checkpoints written before the move still load."""

import importlib
import pickle

import pytest

import rllib_mamt
from rllib_mamt.joint_off_policy import JointOffPolicyAlgorithm
from rllib_mamt.legacy_module_paths import LEGACY_MODULE_PATHS

ALGORITHM_PACKAGES = {
    "MAMT": "mamt", "MAMD": "mamt", "MAAC": "mamt",
    "MADDPG": "maddpg", "MAPPO": "mappo", "LOLA": "lola", "MAMT_PPO": "mamt_ppo",
}


@pytest.mark.parametrize("name", sorted(ALGORITHM_PACKAGES))
def test_each_algorithm_lives_in_its_own_sub_package(name):
    algorithm = rllib_mamt.ALGORITHMS[name]
    package = f"rllib_mamt.algorithms.{ALGORITHM_PACKAGES[name]}"
    assert algorithm.__module__.startswith(package + ".")
    assert algorithm in vars(importlib.import_module(package)).values()
    config = algorithm.get_default_config()
    assert type(config).__module__.startswith(package + ".")


def test_public_imports_are_unchanged():
    from rllib_mamt import (  # noqa: F401
        LOLA, MAAC, MADDPG, MAMD, MAMT, MAPPO, JointEnvRunner, LOLAConfig,
        MADDPGConfig, MAMTConfig, MAPPOConfig,
    )

    assert set(rllib_mamt.__all__) >= {"MAMT", "MAMTConfig", "MADDPG", "LOLA", "MAPPO"}


def test_off_policy_algorithms_share_one_training_loop():
    for name in ("MAMT", "MADDPG", "LOLA"):
        algorithm = rllib_mamt.ALGORITHMS[name]
        assert issubclass(algorithm, JointOffPolicyAlgorithm)
        assert algorithm.sample_into_buffer is JointOffPolicyAlgorithm.sample_into_buffer


# What checkpoints written before the move pickle by path (checked on a real
# checkpoint of the previous layout): algorithm, config, learner, central
# module, the policy-mapping function.
OLD_PICKLED_NAMES = [
    ("rllib_mamt.mamt", "MAMT"),
    ("rllib_mamt.mamt", "MAAC"),
    ("rllib_mamt.mamt_config", "MAMTConfig"),
    ("rllib_mamt.mamt_config", "map_agent_to_own_module"),
    ("rllib_mamt.mamt_learner", "MAMTTorchLearner"),
    ("rllib_mamt.modules.central", "MAMTCentralModule"),
]


@pytest.mark.parametrize("module, name", OLD_PICKLED_NAMES)
def test_pickles_of_the_old_layout_load_the_moved_objects(module, name):
    old_pickle = f"c{module}\n{name}\n.".encode()
    moved = [importlib.import_module(source) for source in LEGACY_MODULE_PATHS[module]]
    expected = next(getattr(m, name) for m in moved if hasattr(m, name))
    assert pickle.loads(old_pickle) is expected


def test_every_config_reads_agents_and_spaces_through_one_base():
    from rllib_mamt.joint_config import JointAlgorithmConfig, JointOffPolicyConfig

    for name in ALGORITHM_PACKAGES:
        config = rllib_mamt.ALGORITHMS[name].get_default_config()
        assert isinstance(config, JointAlgorithmConfig)
        assert type(config).agent_ids is JointAlgorithmConfig.agent_ids
        assert isinstance(config, JointOffPolicyConfig) == (name not in ("MAPPO", "MAMT_PPO"))
