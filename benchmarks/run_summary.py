"""The per-run summary JSON of the paper-budget runs (format ``rllib_mamt.run_summary/1``).

One finished (row, env, seed) run is one small JSON file, committed; the
report (``table10_report.py``) reads nothing else. Keys:

- ``format``: ``"rllib_mamt.run_summary/1"``.
- ``row``: the table row, e.g. ``"MAMT-Fixed"``; ``algorithm``: the registered
  algorithm name it trains (``"MAMT"``); ``training``: the settings passed to
  ``config.training()`` on top of that algorithm's defaults.
- ``env``, ``env_config``, ``n_agents``, ``seed``.
- ``return_unit``: ``"sum over agents of the episode return"`` (RLlib's
  ``episode_return_mean``; DESIGN.md gives the paper's unit for Spread).
- ``curve``: the training return against episodes, in bins of
  ``bin_episodes`` episodes: ``episodes`` (episodes trained at each bin's end),
  ``env_steps`` (env steps then) and ``return_mean`` (mean training return of
  the bin's episodes).
- ``last_1000_episodes_return``: the paper's metric (Table 10), the mean
  training return over the last ``last_episodes`` (1,000) episodes, computed
  from the unbinned curve.
- ``eval``: ``{"episodes": 10, "return_mean": ...}``, the deterministic
  (``explore=False``) evaluation after training.
- ``episodes``, ``env_steps``, ``training_iterations``, ``process_seconds``
  (wall seconds of the training process, summed over resumed sessions).
- ``decomposition`` (optional; rows that learn a trust-region decomposition):
  the per-agent learner metrics behind the paper's Figs. 3-5, one row every
  few training iterations, each ``{"num_env_steps_sampled_lifetime": steps,
  "episodes": episodes, "learners": {agent: {"trust_region_delta": delta_i,
  "non_stationarity": D_ns,i, "kl_to_old_policy": ..., "predicted_kl": ...,
  "coordination": {other: C_ij}}}}`` (whichever of these the learner logged),
  the layout of RLlib's result dict, so ``rllib_mamt.plotting`` draws them.
- ``final_coordination`` (optional; rows with the attention critic's
  counterfactuals): the finished critic's mean C_ij and influence on replayed
  rows and, on Rover-Tower, each agent's C toward its row's partner
  (``coordination_probe.coordination_summary``).
- ``coordination_history`` (optional; those rows on Rover-Tower): at every
  checkpoint, ``{"episodes": episodes, "rows": rows, "partner_contrast":
  {agent: [C toward the row's partner, C toward the others of its kind]}}``
  (``coordination_probe.partner_contrast_record``), the paper's Fig. 5 read
  per row over training.
"""

import json
import math
from typing import Dict, List, Optional, Sequence, Tuple

FORMAT = "rllib_mamt.run_summary/1"
REQUIRED_KEYS = ("format", "row", "algorithm", "env", "seed", "n_agents", "curve",
                 "last_1000_episodes_return", "eval", "episodes", "return_unit")
RETURN_UNIT = "sum over agents of the episode return"
STEPS = "num_env_steps_sampled_lifetime"
#: Per-agent learner metrics kept in ``decomposition`` (Figs. 3-4 of the paper).
DECOMPOSITION_METRICS = ("trust_region_delta", "non_stationarity", "kl_to_old_policy",
                         "predicted_kl", "delta_value_slope", "delta_drift_slope")


def last_episodes_mean(curve: Sequence[Tuple[int, int, int, float]], last_episodes: int) -> float:
    """Mean training return over the last ``last_episodes`` episodes of an unbinned curve.

    Args:
        curve: One row per training iteration, in order:
            ``(finished, covered, env_steps, mean)``: episodes finished in the
            iteration, how many of the last of them ``mean`` averages (RLlib's
            smoothing window; fewer than ``finished`` only when an iteration
            finishes more episodes than the window, e.g. the first, which
            fills the buffer), env steps so far, and that mean return.
        last_episodes: Window length in episodes (the paper: 1,000). The
            window is counted in finished episodes; each iteration inside it
            weighs by the episodes its mean covers (an iteration straddling
            the window's start by the share inside it).
    """
    remaining, weighted, weights = last_episodes, 0.0, 0
    for finished, covered, _, mean in reversed(curve):
        if remaining <= 0:
            break
        used = min(covered, remaining)
        weighted += used * mean
        weights += used
        remaining -= finished
    if weights == 0:
        raise ValueError("last_episodes_mean: the curve has no finished episode")
    return weighted / weights


def binned_curve(curve: Sequence[Tuple[int, int, int, float]], bin_episodes: int) -> Dict[str, List]:
    """Bins an unbinned curve (rows as :func:`last_episodes_mean`) by finished episodes.

    A bin closes at the first iteration whose cumulative episode count reaches
    the next multiple of ``bin_episodes``; its mean weighs every iteration by
    the episodes its mean covers. The last, partial bin is kept.
    """
    binned = {"bin_episodes": bin_episodes, "episodes": [], "env_steps": [], "return_mean": []}
    total, weighted, weights, boundary = 0, 0.0, 0, bin_episodes
    for index, (finished, covered, env_steps, mean) in enumerate(curve):
        total += finished
        weighted += covered * mean if covered else 0.0
        weights += covered
        if weights and (total >= boundary or index == len(curve) - 1):
            binned["episodes"].append(total)
            binned["env_steps"].append(env_steps)
            binned["return_mean"].append(weighted / weights)
            weighted, weights = 0.0, 0
            boundary = (total // bin_episodes + 1) * bin_episodes
    return binned


def decomposition_row(result: dict) -> Optional[dict]:
    """The per-agent trust-region metrics of one training result, or None.

    Args:
        result: An ``Algorithm.train()`` result; its ``learners`` hold one dict
            per agent module (MAMT logs ``trust_region_delta``, the Eq. 6
            ``non_stationarity`` and the Eq. 5 ``coordination`` with each other
            agent there).
    """
    learners = {}
    for agent, values in (result.get("learners") or {}).items():
        if not isinstance(values, dict):
            continue
        kept = {metric: float(values[metric]) for metric in DECOMPOSITION_METRICS
                if isinstance(values.get(metric), (int, float))}
        if isinstance(values.get("coordination"), dict):
            kept["coordination"] = {other: float(c) for other, c in values["coordination"].items()}
        if kept:
            learners[agent] = kept
    if not learners:
        return None
    return {STEPS: int(result[STEPS]),
            "episodes": int(result["env_runners"]["num_episodes_lifetime"]),
            "learners": learners}


def validate(summary: dict, source: str = "summary") -> dict:
    """Returns ``summary`` or raises ``ValueError`` naming the first bad key."""
    missing = [key for key in REQUIRED_KEYS if key not in summary]
    if missing:
        raise ValueError(f"{source}: missing key(s) {missing}; required: {list(REQUIRED_KEYS)}")
    if summary["format"] != FORMAT:
        raise ValueError(f"{source}: key 'format' is {summary['format']!r}; allowed: {FORMAT!r}")
    metric = summary["last_1000_episodes_return"]
    if not isinstance(metric, (int, float)) or not math.isfinite(metric):
        raise ValueError(f"{source}: key 'last_1000_episodes_return' is {metric!r}; "
                         "allowed: a finite number")
    decomposition = summary.get("decomposition", [])
    if not isinstance(decomposition, list) or not all(
            isinstance(row, dict) and STEPS in row and "learners" in row for row in decomposition):
        raise ValueError(f"{source}: key 'decomposition' is not a list of rows with "
                         f"'{STEPS}' and 'learners'; allowed: rows of decomposition_row()")
    history = summary.get("coordination_history", [])
    if not isinstance(history, list) or not all(
            isinstance(entry, dict) and isinstance(entry.get("episodes"), int)
            and isinstance(entry.get("partner_contrast"), dict)
            and all(isinstance(pair, list) and len(pair) == 2
                    for pair in entry["partner_contrast"].values())
            for entry in history):
        raise ValueError(f"{source}: key 'coordination_history' is not a list of entries with "
                         "'episodes' and 'partner_contrast' {agent: [partner, others]}; "
                         "allowed: entries of coordination_probe.partner_contrast_record()")
    return summary


def load(path: str) -> dict:
    """Reads and validates one run summary file."""
    with open(path) as handle:
        return validate(json.load(handle), path)
