"""Ray/RLlib notices a user cannot act on are not printed; others still are."""

import logging

import pytest

import rllib_mamt  # noqa: F401  (importing silences the notices)
from rllib_mamt.ray_notices import GPUTIL_NOTICE
from tests.conftest import tiny_spread_config


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def ray_warnings():
    handler = Collect()
    loggers = [logging.getLogger(name) for name in (
        "ray.rllib.algorithms.algorithm_config", "ray._common.deprecation",
        "ray.tune.utils.util",
    )]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler.messages
    for logger in loggers:
        logger.removeHandler(handler)


def test_rllib_module_config_notice_is_silenced(ray_warnings):
    from ray.rllib.core.rl_module.rl_module import RLModuleConfig

    RLModuleConfig()
    assert not [m for m in ray_warnings if "RLModuleConfig" in m]


def test_new_api_stack_notice_is_silenced_and_flags_are_explicit(ray_warnings):
    config = tiny_spread_config()
    config.validate()
    assert config.enable_rl_module_and_learner
    assert config.enable_env_runner_and_connector_v2
    assert not [m for m in ray_warnings if "new API stack" in m]


def test_only_the_gputil_hint_is_filtered(ray_warnings):
    logger = logging.getLogger("ray.tune.utils.util")
    logger.warning(GPUTIL_NOTICE)
    logger.warning("Install psutil to monitor system performance.")
    assert ray_warnings == ["Install psutil to monitor system performance."]
