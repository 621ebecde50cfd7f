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
- ``eval``: ``{"episodes": 10, "return_mean": ..., "agent_return_mean":
  {agent: ...}}``, the deterministic (``explore=False``) evaluation after
  training and each agent's own part of it (``agent_return_mean`` is absent
  in summaries written before per-agent returns were recorded).
- ``agents`` (optional; runs trained since per-agent returns were recorded):
  each agent's own episode return (RLlib's ``agent_episode_returns_mean``;
  they sum to the return above): ``from_episodes`` (episodes trained before
  the record starts, 0 for a run recorded from its start), ``curve``
  ``{agent: binned curve as curve}`` and, when the record covers the last
  ``last_episodes`` episodes, ``last_1000_episodes_return`` ``{agent: mean}``.
- ``checkpoint_eval`` (optional; ``paper_budget.py`` on a finished run's
  final weights, or ``checkpoint_agent_returns.py`` on the last kept
  checkpoint of a run finished before that): each agent's return on 100
  episodes that are the same for every run (reset seeds from ``seed``), with argmax
  (``deterministic``) and with drawn actions (``stochastic``):
  ``{"checkpoint_episodes", "episodes", "seed", "deterministic":
  {"return_mean", "agent_return_mean": {agent: ...}}, "stochastic": {...}}``.
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
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

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


def first_episodes_bins(binned: Dict[str, List], episodes: float):
    """(bin ends, bin widths, means) of the bins of a binned curve
    (:func:`binned_curve`) that end within its first ``episodes``; a width is
    the episodes since the previous bin's end (the first bin's since 0)."""
    ends = np.asarray(binned["episodes"], dtype=float)
    widths = np.diff(np.concatenate([[0.0], ends]))
    inside = ends <= episodes
    return ends[inside], widths[inside], np.asarray(binned["return_mean"], dtype=float)[inside]


def first_episodes_mean(binned: Dict[str, List], episodes: float) -> float:
    """Mean return over a binned curve's first ``episodes``: its bins that end
    inside, each weighed by its width; NaN if no bin ends inside."""
    _, widths, means = first_episodes_bins(binned, episodes)
    return float(np.average(means, weights=widths)) if len(means) else float("nan")


def agent_returns(runners: dict) -> Dict[str, float]:
    """Each agent's mean episode return in an ``env_runners`` result (RLlib's
    ``agent_episode_returns_mean``, over the same smoothing window as
    ``episode_return_mean``); agents without a finite mean are left out."""
    means = runners.get("agent_episode_returns_mean")
    if not isinstance(means, dict):
        return {}
    return {str(agent): float(mean) for agent, mean in means.items()
            if isinstance(mean, (int, float)) and math.isfinite(mean)}


def per_agent_curves(agent_curve: Sequence[Tuple[int, int, int, Dict[str, float]]]
                     ) -> Dict[str, List[Tuple[int, int, int, float]]]:
    """Splits an unbinned per-agent curve into one curve per agent.

    Args:
        agent_curve: One row per training iteration, as in
            :func:`last_episodes_mean` but with ``{agent: mean}`` (from
            :func:`agent_returns`) in place of the mean. An iteration without
            an agent's mean covers none of that agent's episodes, so the
            episode counting stays aligned with the total curve.
    """
    agents = sorted({agent for row in agent_curve for agent in row[3]})
    return {agent: [(finished, covered if agent in means else 0, env_steps,
                     means.get(agent, 0.0))
                    for finished, covered, env_steps, means in agent_curve]
            for agent in agents}


def agent_summary(agent_curve, from_episodes: int, bin_episodes: int, last_episodes: int) -> dict:
    """The summary's ``agents`` entry: each agent's own return over training.

    Args:
        agent_curve: The unbinned per-agent curve (:func:`per_agent_curves`).
        from_episodes: Episodes trained before its first row (runs resumed
            from a checkpoint written before per-agent returns were recorded).
        bin_episodes: Bin width of the binned curves (their ``episodes`` count
            from the run's start, as the total curve's).
        last_episodes: The paper's window (1,000). Each agent's mean over it is
            given only when the curve covers that many episodes.
    """
    curves = per_agent_curves(agent_curve)
    entry = {"from_episodes": int(from_episodes), "curve": {}}
    for agent, curve in curves.items():
        binned = binned_curve(curve, bin_episodes)
        binned["episodes"] = [from_episodes + episodes for episodes in binned["episodes"]]
        entry["curve"][agent] = binned
    covered = sum(row[0] for row in agent_curve)
    if covered >= last_episodes and curves:
        entry["last_1000_episodes_return"] = {
            agent: last_episodes_mean(curve, last_episodes) for agent, curve in curves.items()}
    return entry


def agents_from_start(summary: dict) -> bool:
    """Whether the summary's per-agent record (``agents``) starts at episode 0
    and holds curves."""
    agents = summary.get("agents") or {}
    return agents.get("from_episodes") == 0 and bool(agents.get("curve"))


def checkpoint_eval(checkpoint: str, episodes: int, seed: int) -> dict:
    """The summary's ``checkpoint_eval`` entry: the checkpoint's actors played
    for ``episodes`` episodes from reset seed ``seed`` (the same episodes for
    every run), with argmax (``deterministic``) and drawn (``stochastic``)
    actions, and how many episodes the checkpoint had trained."""
    from rllib_mamt.checkpoint_evaluation import agent_episode_returns, mean_returns

    with open(os.path.join(checkpoint, "progress.json")) as handle:
        trained = int(json.load(handle)["episodes"])
    return {"checkpoint_episodes": trained, "episodes": episodes, "seed": seed,
            **{mode: mean_returns(agent_episode_returns(checkpoint, episodes, seed, explore))
               for mode, explore in (("deterministic", False), ("stochastic", True))}}


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
    agents = summary.get("agents", {})
    if not isinstance(agents, dict) or not isinstance(agents.get("curve", {}), dict) or not all(
            isinstance(value, (int, float)) and math.isfinite(value)
            for value in agents.get("last_1000_episodes_return", {}).values()):
        raise ValueError(f"{source}: key 'agents' is not {{'from_episodes', 'curve': "
                         "{agent: binned curve}, 'last_1000_episodes_return': {agent: finite "
                         "number}}; allowed: the output of agent_summary()")
    measured = summary.get("checkpoint_eval", {})
    if not isinstance(measured, dict) or not all(
            isinstance(measured.get(mode), dict)
            and isinstance(measured[mode].get("agent_return_mean"), dict)
            for mode in ("deterministic", "stochastic") if measured):
        raise ValueError(f"{source}: key 'checkpoint_eval' has no 'deterministic' and "
                         "'stochastic' {'return_mean', 'agent_return_mean'}; allowed: the "
                         "output of checkpoint_agent_returns.checkpoint_eval()")
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
