"""Reading Tune trial results for the figures: clean rows, evaluation points, groups.

A trial's ``result.json`` holds one JSON result per line. Three things in it
would mislead a plot if taken literally, and are handled here:

- after a resume from a checkpoint the same ``training_iteration`` appears
  twice; the last row wins (:func:`read_results`);
- RLlib carries the last evaluation result into iterations where no
  evaluation ran; only rows of evaluation iterations are plotted
  (:func:`evaluation_ran`);
- non-JSON config values (functions, classes) are logged as their ``repr``,
  whose ``at 0x...`` address changes between Ray sessions; addresses are
  ignored when deciding which settings differ between trials
  (:func:`varying_config_keys`), so trials of identical settings from separate
  runs (and different seeds) are pooled into one group.
"""

import json
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

#: Config keys never used to split trials into groups: the seed (its trials are
#: pooled into mean +- std) and the mode, which every label names anyway.
POOLED_KEYS = frozenset({"seed", "trust_region_mode"})

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_OBJECT_REPR = re.compile(r"^<(?:function|class|bound method|built-in function) '?([\w.<>]+)'?.*>$")


class NoResultsError(FileNotFoundError):
    """A results directory that holds nothing to plot."""


@dataclass
class Group:
    """Trials that share every setting except the seed.

    ``parts`` are the label's pieces ("MAMT (learned)", "key=value", ...);
    ``legend`` is the subset that differs between the groups being drawn.
    """

    parts: Tuple[str, ...]
    trials: List[List[dict]] = field(default_factory=list)
    legend: str = ""

    @property
    def name(self) -> str:
        """The full label, every part."""
        return " ".join(self.parts)


def find_result_files(root: str) -> List[str]:
    """Every ``result.json`` at or below ``root``."""
    found = []
    for directory, _, files in os.walk(root):
        if "result.json" in files:
            found.append(os.path.join(directory, "result.json"))
    return sorted(found)


def read_results(path: str) -> List[dict]:
    """One trial's results, one dict per training iteration in iteration order.

    A ``training_iteration`` logged twice (a resume from a checkpoint replays
    the iterations after that checkpoint) keeps its last row.
    """
    rows = []
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    if not all("training_iteration" in row for row in rows):
        return rows
    latest = {row["training_iteration"]: row for row in rows}
    return [latest[iteration] for iteration in sorted(latest)]


def evaluation_ran(row: dict, interval) -> bool:
    """Whether evaluation ran in this iteration (rather than being carried over).

    RLlib evaluates when ``training_iteration % evaluation_interval == 0`` and
    otherwise repeats the previous evaluation result. Without a usable
    ``evaluation_interval`` in the config, the health counters that RLlib adds
    to ``evaluation`` only after a real evaluation (``num_healthy_workers``)
    mark evaluation iterations.
    """
    if isinstance(interval, int) and not isinstance(interval, bool) and interval > 0:
        return row.get("training_iteration", 0) % interval == 0
    return "num_healthy_workers" in (row.get("evaluation") or {})


def evaluation_rows(rows: List[dict]) -> List[dict]:
    """The rows of iterations in which evaluation actually ran.

    Results written without either signal (no ``evaluation_interval`` and no
    health counters, e.g. hand-made files) keep every row that has an
    evaluation result.
    """
    interval = (rows[0].get("config") or {}).get("evaluation_interval") if rows else None
    has_markers = any("num_healthy_workers" in (row.get("evaluation") or {}) for row in rows)
    if not isinstance(interval, int) and not has_markers:
        return [row for row in rows if row.get("evaluation")]
    return [row for row in rows if evaluation_ran(row, interval)]


def comparable_value(value) -> str:
    """A config value as text with object addresses removed."""
    return _ADDRESS.sub("", json.dumps(value, sort_keys=True, default=str))


def readable_value(value) -> str:
    """A config value for a label: ``<function f at 0x..>`` becomes ``f``."""
    if isinstance(value, str):
        match = _OBJECT_REPR.match(value)
        if match:
            return match.group(1).rsplit(".", 1)[-1]
        return value
    return json.dumps(value, default=str)


def varying_config_keys(trials: List[List[dict]]) -> List[str]:
    """Config keys whose value differs between trials, ignoring object addresses.

    The seed and the trust-region mode are excepted (see ``POOLED_KEYS``).
    """
    configs = [rows[0].get("config") or {} for rows in trials if rows]
    keys = set().union(*configs) if configs else set()
    return sorted(
        key for key in keys - POOLED_KEYS
        if len({comparable_value(config.get(key)) for config in configs}) > 1
    )


def trial_parts(rows: List[dict], path: str, varying) -> Tuple[str, ...]:
    """Label pieces of one trial: 'ALGO (mode)' then 'key=value' per varying key."""
    config = rows[0].get("config") or {}
    mode = config.get("trust_region_mode")
    algorithm = os.path.basename(os.path.dirname(path)).split("_")[0]
    head = f"{algorithm} ({mode})" if mode else algorithm
    return (head,) + tuple(f"{key}={readable_value(config.get(key))}" for key in varying)


def group_trials(root: str) -> List[Group]:
    """Reads every trial under ``root`` and groups them by setting (seeds pooled).

    Raises:
        NoResultsError: no ``result.json`` under ``root``, or all are empty.
    """
    files = find_result_files(root)
    if not files:
        raise NoResultsError(f"No result.json found at or below {root!r}.")
    trials = [(path, read_results(path)) for path in files]
    trials = [(path, rows) for path, rows in trials if rows]
    if not trials:
        raise NoResultsError(
            f"no results to plot under {root!r}: every result.json found ({len(files)}) is empty"
        )
    varying = varying_config_keys([rows for _, rows in trials])
    by_parts: Dict[Tuple[str, ...], Group] = {}
    for path, rows in trials:
        parts = trial_parts(rows, path, varying)
        by_parts.setdefault(parts, Group(parts)).trials.append(rows)
    groups = sorted(by_parts.values(), key=lambda group: group.parts)
    for group in groups:
        group.legend = " ".join(
            part for position, part in enumerate(group.parts)
            if len({other.parts[position] for other in groups}) > 1
        ) or group.name
    return groups


def common_label(groups: List[Group]) -> str:
    """The label pieces all groups share (for a figure title)."""
    shared = [
        part for position, part in enumerate(groups[0].parts)
        if all(group.parts[position] == part for group in groups)
    ]
    return " ".join(shared)
