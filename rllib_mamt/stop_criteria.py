"""Checks of Tune stop criteria against the keys an RLlib training result has.

Tune only warns once about a stop key that never appears in a result and then
trains until the other criteria hold, so a typo such as ``training_iterations``
silently runs the whole budget. :func:`validate_stop` rejects such keys before
Ray starts. Nested keys are written with ``/`` (``env_runners/episode_return_mean``)
or as nested mappings.
"""

import difflib
from numbers import Real
from typing import Dict

from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    EPISODE_LEN_MAX,
    EPISODE_LEN_MEAN,
    EPISODE_LEN_MIN,
    EPISODE_RETURN_MAX,
    EPISODE_RETURN_MEAN,
    EPISODE_RETURN_MIN,
    EVALUATION_RESULTS,
    LEARNER_RESULTS,
    NUM_AGENT_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_TRAINED_LIFETIME,
    NUM_EPISODES_LIFETIME,
)
from ray.tune.utils import flatten_dict

# Keys Tune adds to every result.
TUNE_RESULT_KEYS = (
    "training_iteration", "iterations_since_restore", "time_total_s",
    "time_since_restore", "time_this_iter_s",
)
# Top-level keys of an RLlib (new API stack) / MAMT training result.
ALGORITHM_RESULT_KEYS = (NUM_ENV_STEPS_SAMPLED_LIFETIME, "replay_buffer_size")
EPISODE_METRICS = (
    EPISODE_RETURN_MEAN, EPISODE_RETURN_MAX, EPISODE_RETURN_MIN, EPISODE_LEN_MEAN,
    EPISODE_LEN_MAX, EPISODE_LEN_MIN, NUM_EPISODES_LIFETIME, NUM_ENV_STEPS_SAMPLED_LIFETIME,
)
ALLOWED_STOP_KEYS = (
    TUNE_RESULT_KEYS
    + ALGORITHM_RESULT_KEYS
    + tuple(f"{ENV_RUNNER_RESULTS}/{m}" for m in EPISODE_METRICS)
    + tuple(f"{EVALUATION_RESULTS}/{ENV_RUNNER_RESULTS}/{m}" for m in EPISODE_METRICS)
    + (f"{LEARNER_RESULTS}/__all_modules__/{NUM_ENV_STEPS_TRAINED_LIFETIME}",)
)
# Per-agent / per-module keys: any id may follow these prefixes.
ALLOWED_STOP_PREFIXES = tuple(
    f"{prefix}{ENV_RUNNER_RESULTS}/{per_id}/"
    for prefix in ("", f"{EVALUATION_RESULTS}/")
    for per_id in ("agent_episode_returns_mean", "module_episode_returns_mean",
                   NUM_AGENT_STEPS_SAMPLED_LIFETIME)
) + (f"{LEARNER_RESULTS}/",)
# RLlib's old API stack names, which the new stack no longer reports.
OLD_STACK_NAMES = {
    "timesteps_total": NUM_ENV_STEPS_SAMPLED_LIFETIME,
    "episode_reward_mean": f"{ENV_RUNNER_RESULTS}/{EPISODE_RETURN_MEAN}",
    "episodes_total": f"{ENV_RUNNER_RESULTS}/{NUM_EPISODES_LIFETIME}",
}


def validate_stop(stop: Dict) -> Dict[str, float]:
    """Flattened (``/``-joined) stop criteria, checked.

    Raises:
        ValueError: One line, for an unknown key (with the closest allowed key
            when there is one) or a value that is not a number.
    """
    flat = flatten_dict(stop, delimiter="/")
    for key, value in flat.items():
        if key not in ALLOWED_STOP_KEYS and not key.startswith(ALLOWED_STOP_PREFIXES):
            suggestion = OLD_STACK_NAMES.get(key) or next(
                iter(difflib.get_close_matches(key, ALLOWED_STOP_KEYS, n=1)), None
            )
            hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
            raise ValueError(
                f"unknown stop key {key!r}{hint}; allowed: {', '.join(ALLOWED_STOP_KEYS[:6])}, "
                f"env_runners/episode_return_mean and the other result keys listed in the README"
            )
        if isinstance(value, bool) or not isinstance(value, Real):
            raise ValueError(f"stop {key!r} = {value!r} is invalid; allowed: a number")
    return flat
