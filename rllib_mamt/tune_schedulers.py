"""Tune's asynchronous successive halving (ASHA) whose cuts survive ``Tuner.restore``.

Tune checkpoints its trials but not ``AsyncHyperBandScheduler``'s rung
records: a restored search starts with empty rungs, so a trial that was past a
rung when the search stopped is recorded at its first result after the restore,
with its value at that later point, and every later trial is compared with that
instead of with the value at the rung. (Measured on the Spread search of issue
14: trials at 4,200 episodes, return -81, were cut against trials recorded at
12,000 episodes, -79-80, which had scored -123 at 4,200 episodes.)
:class:`ResumableAsyncHyperBandScheduler` refills the records when a trial is
added, from the trial's own ``result.json`` in its storage: for every rung the
trial had passed, its metric at the first result at or past the rung.
"""

import json
from typing import Dict, List, Optional, Tuple

from ray.air.constants import EXPR_RESULT_FILE
from ray.tune.schedulers import AsyncHyperBandScheduler


def nested_value(result: Dict, key: str) -> Optional[float]:
    """``result[a][b]`` for the flattened key ``"a/b"`` (or ``result[key]``), else None."""
    if key in result:
        return result[key]
    value = result
    for part in key.split("/"):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def metric_history(trial, time_attr: str, metric: str) -> List[Tuple[float, float]]:
    """(time_attr, metric) of every result the trial has written, by time_attr."""
    storage = getattr(trial, "storage", None)
    if storage is None:
        return []
    try:
        path = f"{storage.trial_fs_path}/{EXPR_RESULT_FILE}"
    except RuntimeError:  # a new trial: its directory is not named yet
        return []
    try:
        with storage.storage_filesystem.open_input_stream(path) as stream:
            text = stream.read().decode()
    except (FileNotFoundError, OSError):
        return []
    return history_from_results(text, time_attr, metric)


def history_from_results(text: str, time_attr: str, metric: str) -> List[Tuple[float, float]]:
    """(time_attr, metric) of every result in the text of a ``result.json``, by time_attr."""
    history = []
    for line in text.splitlines():
        try:
            result = json.loads(line)
        except json.JSONDecodeError:  # a line still being written
            continue
        time, value = nested_value(result, time_attr), nested_value(result, metric)
        if isinstance(time, (int, float)) and isinstance(value, (int, float)):
            history.append((float(time), float(value)))
    return sorted(history)


class ResumableAsyncHyperBandScheduler(AsyncHyperBandScheduler):
    """``AsyncHyperBandScheduler`` that, for every trial added (new or
    restored), records the rungs the trial's stored results already passed,
    with its metric at each rung; the decisions taken before a restore are
    kept (a trial that passed a rung is not judged there again). Same
    arguments as Tune's ASHA; the trials' storage must be readable from the
    driver (a local path or any filesystem Tune's storage supports)."""

    # Tune's ASHA keeps the rung records in private attributes; checked once at
    # construction, so a Ray version that renamed them fails before any trial runs.
    ASHA_INTERNALS = ("_time_attr", "_metric", "_metric_op", "_trial_info", "_brackets")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        missing = [name for name in self.ASHA_INTERNALS if not hasattr(self, name)]
        if not missing and not all(hasattr(bracket, "_rungs") for bracket in self._brackets):
            missing = ["_brackets[i]._rungs"]
        if missing:
            raise RuntimeError(f"ResumableAsyncHyperBandScheduler needs Tune's ASHA attributes "
                               f"{missing}, which this Ray version does not have; allowed: the "
                               "Ray version in setup.py")

    def on_trial_add(self, tune_controller, trial) -> None:
        super().on_trial_add(tune_controller, trial)
        history = metric_history(trial, self._time_attr, self._metric)
        bracket = self._trial_info[trial.trial_id]
        for milestone, recorded in bracket._rungs:
            if trial.trial_id in recorded:
                continue
            value = next((v for t, v in history if t >= milestone), None)
            if value is not None:
                recorded[trial.trial_id] = self._metric_op * value
