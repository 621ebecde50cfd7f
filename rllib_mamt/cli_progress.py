"""One short progress line per training iteration (a Tune callback).

Tune's status table lists ~150 columns of buffer sizes and call counts but not
the return. :class:`IterationLines` prints, per trial and iteration::

    MAMT_spread_3f2a1_00000 iter 3 | steps 3000 | return -88.12 | eval -70.40 | 12.3 s

The evaluation return is shown only in iterations that ran an evaluation (RLlib
carries the last value over in between; that shows as ``-``).
"""

import math

from ray.tune import Callback
from ray.tune.utils import flatten_dict

EVAL_STEPS_KEY = "evaluation/env_runners/num_env_steps_sampled_lifetime"


def _number(value, digits=2) -> str:
    if isinstance(value, (int, float)) and math.isfinite(value):
        return f"{value:.{digits}f}"
    return "-"


class IterationLines(Callback):
    """Prints trial starts (with their directory) and one line per result."""

    def __init__(self, print_fn=print):
        self._print = print_fn
        self._last_eval_steps = {}

    def on_trial_start(self, iteration, trials, trial, **info):
        self._print(f"{trial} started: {trial.path}", flush=True)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        flat = flatten_dict(result, delimiter="/")
        eval_steps = flat.get(EVAL_STEPS_KEY)
        fresh_eval = eval_steps is not None and eval_steps != self._last_eval_steps.get(trial.trial_id)
        self._last_eval_steps[trial.trial_id] = eval_steps
        evaluation = flat.get("evaluation/env_runners/episode_return_mean") if fresh_eval else None
        self._print(
            f"{trial} iter {flat.get('training_iteration')}"
            f" | steps {_number(flat.get('num_env_steps_sampled_lifetime'), 0)}"
            f" | return {_number(flat.get('env_runners/episode_return_mean'))}"
            f" | eval {_number(evaluation)}"
            f" | {_number(flat.get('time_total_s'), 1)} s",
            flush=True,
        )

    def on_trial_error(self, iteration, trials, trial, **info):
        self._print(f"{trial} failed; its error is in {trial.path}/error.txt", flush=True)
