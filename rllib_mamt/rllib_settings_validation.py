"""Checks of RLlib's own settings that RLlib leaves to fail later, inside a trial.

``AlgorithmConfig.validate()`` accepts e.g. ``num_env_runners=-1`` or
``evaluation_interval="ten"``; the trial then dies with an unrelated traceback.
:func:`validate_rllib_settings` rejects them up front with one line naming the
key, the value and what is allowed. :func:`resolve_env_runner_cls` turns an
``env_runner_cls`` written as text (YAML, ``--config``) into the class, and
:func:`check_env_buildable` builds the configured env once.
"""

import difflib
import importlib
from numbers import Integral, Real
from typing import Any, Callable, Dict, Tuple

ENV_RUNNER_SHORT_NAMES = {
    "JointEnvRunner": "rllib_mamt.joint_env_runner.JointEnvRunner",
    "MultiAgentEnvRunner": "ray.rllib.env.multi_agent_env_runner.MultiAgentEnvRunner",
    "SingleAgentEnvRunner": "ray.rllib.env.single_agent_env_runner.SingleAgentEnvRunner",
}


def _fail(key: str, value, allowed: str) -> None:
    raise ValueError(f"'{key}' = {value!r} is invalid; allowed: {allowed}.")


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _int_at_least(low: int) -> Tuple[Callable[[Any], bool], str]:
    return (lambda v: _is_int(v) and v >= low), f"an integer >= {low}"


def _number_at_least(low: float) -> Tuple[Callable[[Any], bool], str]:
    return (lambda v: _is_number(v) and v >= low), f"a number >= {low}"


def _or(extra: Tuple, check: Tuple[Callable[[Any], bool], str]) -> Tuple[Callable[[Any], bool], str]:
    predicate, allowed = check
    return (lambda v: v in extra or predicate(v)), " or ".join([allowed] + [repr(e) for e in extra])


# Attribute of AlgorithmConfig -> (predicate, description of allowed values).
RLLIB_SETTING_CHECKS: Dict[str, Tuple[Callable[[Any], bool], str]] = {
    "num_env_runners": _int_at_least(0),
    "num_envs_per_env_runner": _int_at_least(1),
    "num_cpus_per_env_runner": _number_at_least(0),
    "num_gpus_per_env_runner": _number_at_least(0),
    "evaluation_num_env_runners": _int_at_least(0),
    "num_learners": _int_at_least(0),
    "num_cpus_per_learner": _or(("auto",), _number_at_least(0)),
    "num_gpus_per_learner": _number_at_least(0),
    "num_cpus_for_main_process": _number_at_least(0),
    "evaluation_interval": _or((None,), _int_at_least(0)),
    "evaluation_duration": _or(("auto",), _int_at_least(1)),
    "evaluation_duration_unit": ((lambda v: v in ("episodes", "timesteps")), "'episodes' or 'timesteps'"),
    "evaluation_parallel_to_training": ((lambda v: isinstance(v, bool)), "True or False"),
    "min_sample_timesteps_per_iteration": _int_at_least(0),
    "min_train_timesteps_per_iteration": _int_at_least(0),
    "min_time_s_per_iteration": _or((None,), _number_at_least(0)),
    "rollout_fragment_length": _or(("auto",), _int_at_least(1)),
    "metrics_num_episodes_for_smoothing": _int_at_least(1),
    "seed": ((lambda v: v is None or _is_int(v)), "an integer or None"),
    "env_config": ((lambda v: isinstance(v, dict)), "a mapping"),
}


def validate_rllib_settings(config) -> None:
    """Raises ``ValueError`` (one line) for the first RLlib setting out of range."""
    for key, (predicate, allowed) in RLLIB_SETTING_CHECKS.items():
        if hasattr(config, key) and not predicate(getattr(config, key)):
            _fail(key, getattr(config, key), allowed)


def resolve_env_runner_cls(value):
    """The EnvRunner class named by ``value`` (a class, a short name or a dotted path)."""
    from ray.rllib.env.env_runner import EnvRunner

    if value is None or isinstance(value, type):
        return value
    allowed = (f"one of {sorted(ENV_RUNNER_SHORT_NAMES)} or a dotted path to an EnvRunner "
               f"subclass, e.g. {ENV_RUNNER_SHORT_NAMES['MultiAgentEnvRunner']!r}")
    if not isinstance(value, str):
        _fail("env_runner_cls", value, allowed)
    path = ENV_RUNNER_SHORT_NAMES.get(value, value)
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        close = difflib.get_close_matches(value, ENV_RUNNER_SHORT_NAMES, n=1)
        _fail("env_runner_cls", value, (f"{close[0]!r} (did you mean it?) or " if close else "") + allowed)
    try:
        runner = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        _fail("env_runner_cls", value, f"{allowed} ({type(error).__name__}: {error})")
    if not (isinstance(runner, type) and issubclass(runner, EnvRunner)):
        _fail("env_runner_cls", value, allowed)
    return runner


def check_env_buildable(config, known_names=()) -> None:
    """Builds and closes one instance of the configured env.

    Raises:
        ValueError: If the env name is not registered with Tune (nor a Gymnasium
            id or a class path) or its constructor raises.
    """
    from ray.rllib.algorithms.algorithm import Algorithm
    from ray.rllib.env.env_context import EnvContext
    from ray.tune.registry import ENV_CREATOR, _global_registry

    env = config.env
    if env is None:
        return
    if isinstance(env, str) and not _global_registry.contains(ENV_CREATOR, env):
        import gymnasium as gym

        if env not in gym.envs.registry and "." not in env:
            close = difflib.get_close_matches(env, list(known_names), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"env {env!r} is not registered{hint}; registered here: {sorted(known_names)}; "
                "for your own env pass --import MODULE (a module that calls "
                "ray.tune.registry.register_env)"
            )
    try:
        _, creator = Algorithm._get_env_id_and_creator(env, config)
        instance = creator(EnvContext(config.env_config, worker_index=0))
    except Exception as error:  # any constructor error becomes the one-line message
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(f"env {env!r} could not be built with env_config "
                         f"{dict(config.env_config)}: {type(error).__name__}: {first}")
    close = getattr(instance, "close", None)
    if callable(close):
        close()
