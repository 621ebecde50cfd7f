"""PNG figures from training results, in the style of the paper's Figs. 2-5.

    python -m rllib_mamt.plotting RESULTS_DIR [--out FIGURE_DIR]

RESULTS_DIR is a Tune trial directory (it holds ``result.json``, one JSON
result per line) or any directory above trial directories (a Tune experiment,
or several experiments): trials are grouped by algorithm, trust-region mode
and every config value that differs between trials except the seed (so a grid
search gives one group per grid point and repeated seeds share a group), and
curves show the mean over a group's trials with a band of one standard
deviation. Figures written:

- ``learning_curves.png``: episode return (training, and deterministic
  evaluation when present) against sampled env steps (Fig. 2);
- ``kl_per_agent.png``: each agent's KL to its old policy and the
  non-stationarity D_ns,i over training (Fig. 3);
- ``trust_regions.png``: each agent's delta_i over training (Fig. 4);
- ``coordination.png``: heat map of the mean coordination coefficients
  C_ij over the last half of training, and their standard deviation (Fig. 5).
"""

import argparse
import json
import os
from collections import defaultdict
from typing import Dict, List, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

CENTRAL = "mamt_central"
STEPS = "num_env_steps_sampled_lifetime"


def find_result_files(root: str) -> List[str]:
    """Every ``result.json`` at or below ``root``."""
    found = []
    for directory, _, files in os.walk(root):
        if "result.json" in files:
            found.append(os.path.join(directory, "result.json"))
    return sorted(found)


def read_results(path: str) -> List[dict]:
    """The results of one trial, one dict per training iteration."""
    rows = []
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def trial_label(rows: List[dict], path: str, varying=()) -> str:
    """'MAMT (learned) key=value' label from a trial's config and directory."""
    config = rows[0].get("config", {}) if rows else {}
    mode = config.get("trust_region_mode")
    algorithm = os.path.basename(os.path.dirname(path)).split("_")[0]
    label = f"{algorithm} ({mode})" if mode else algorithm
    settings = " ".join(f"{key}={config.get(key)}" for key in varying)
    return f"{label} {settings}".strip()


def varying_config_keys(trials: List[List[dict]]) -> List[str]:
    """Config keys whose value differs between trials (the seed excepted)."""
    configs = [rows[0].get("config", {}) for rows in trials if rows]
    keys = set().union(*configs) if configs else set()
    return sorted(
        key for key in keys - {"seed", "trust_region_mode"}
        if len({json.dumps(c.get(key), sort_keys=True, default=str) for c in configs}) > 1
    )


def nested(row: dict, *keys, default=None):
    """row[k1][k2]... or ``default`` when any level is missing."""
    for key in keys:
        if not isinstance(row, dict) or key not in row:
            return default
        row = row[key]
    return row


def agent_ids(rows: List[dict]) -> List[str]:
    """Agent ids found under ``learners`` (every module but the central one)."""
    learners = next((r["learners"] for r in reversed(rows) if r.get("learners")), {})
    return sorted(k for k, v in learners.items() if k != CENTRAL and isinstance(v, dict)
                  and k != "__all_modules__")


def series(rows: List[dict], *keys):
    """(steps, values) of one metric across a trial, skipping missing entries."""
    steps, values = [], []
    for row in rows:
        value = nested(row, *keys)
        if isinstance(value, (int, float)) and np.isfinite(value):
            steps.append(row.get(STEPS, row.get("training_iteration", 0)))
            values.append(value)
    return np.asarray(steps, float), np.asarray(values, float)


def mean_and_spread(trials: List[tuple], points: int = 100):
    """Interpolates trials onto a common step grid: (grid, mean, std)."""
    trials = [(s, v) for s, v in trials if len(s) > 0]
    if not trials:
        return None
    end = min(s[-1] for s, _ in trials)
    start = max(s[0] for s, _ in trials)
    grid = np.linspace(start, end, points) if end > start else np.asarray([start])
    curves = np.stack([np.interp(grid, s, v) for s, v in trials])
    return grid, curves.mean(0), curves.std(0)


def plot_band(axis, trials, label):
    summary = mean_and_spread(trials)
    if summary is None:
        return False
    grid, mean, std = summary
    axis.plot(grid, mean, label=label)
    axis.fill_between(grid, mean - std, mean + std, alpha=0.25)
    return True


def learning_curves(groups: Dict[str, List[List[dict]]], out: str) -> Optional[str]:
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    drawn = [False, False]
    for label, trials in sorted(groups.items()):
        drawn[0] |= plot_band(axes[0], [series(r, "env_runners", "episode_return_mean") for r in trials], label)
        drawn[1] |= plot_band(axes[1], [series(r, "evaluation", "env_runners", "episode_return_mean") for r in trials], label)
    if not drawn[0]:
        plt.close(figure)
        return None
    for axis, title, has_lines in zip(
        axes, ("training episode return", "deterministic evaluation return"), drawn
    ):
        axis.set_title(title)
        axis.set_xlabel("env steps")
        if has_lines:
            axis.legend(fontsize=8)
        else:
            axis.text(0.5, 0.5, "no evaluation results", ha="center", transform=axis.transAxes)
    return save(figure, out, "learning_curves.png")


def per_agent_figure(groups, metrics, titles, out, name) -> Optional[str]:
    """One panel per metric; one line per agent (mean over each group's trials)."""
    figure, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    drawn = False
    for label, trials in sorted(groups.items()):
        for agent in agent_ids(trials[0]):
            for axis, metric in zip(axes[0], metrics):
                drawn |= plot_band(axis, [series(r, "learners", agent, metric) for r in trials],
                                   f"{label} {agent}" if len(groups) > 1 else agent)
    if not drawn:
        plt.close(figure)
        return None
    for axis, title in zip(axes[0], titles):
        axis.set_title(title)
        axis.set_xlabel("env steps")
        axis.legend(fontsize=7)
    return save(figure, out, name)


def coordination_matrix(rows: List[dict]):
    """(mean, std) over the last half of training of each C_ij, or None."""
    agents = agent_ids(rows)
    recent = rows[len(rows) // 2:]
    samples = []
    for row in recent:
        matrix = np.zeros((len(agents), len(agents)))
        found = False
        for i, agent in enumerate(agents):
            for j, other in enumerate(agents):
                value = nested(row, "learners", agent, "coordination", other)
                if isinstance(value, (int, float)):
                    matrix[i, j] = value
                    found = True
        if found:
            samples.append(matrix)
    if not samples:
        return None
    samples = np.stack(samples)
    return agents, samples.mean(0), samples.std(0)


def coordination_heat_maps(groups, out) -> Optional[str]:
    matrices = []
    for label, trials in sorted(groups.items()):
        found = [coordination_matrix(rows) for rows in trials]
        found = [f for f in found if f is not None]
        if found:
            agents = found[0][0]
            matrices.append((label, agents, np.mean([f[1] for f in found], 0),
                             np.mean([f[2] for f in found], 0)))
    if not matrices:
        return None
    figure, axes = plt.subplots(len(matrices), 2, figsize=(10, 4.5 * len(matrices)), squeeze=False)
    for row_axes, (label, agents, mean, std) in zip(axes, matrices):
        for axis, values, title in zip(row_axes, (mean, std), ("mean C_ij", "std C_ij")):
            image = axis.imshow(values, cmap="viridis")
            axis.set_xticks(range(len(agents)), agents, rotation=45, fontsize=7)
            axis.set_yticks(range(len(agents)), agents, fontsize=7)
            axis.set_title(f"{label}: {title}")
            figure.colorbar(image, ax=axis)
    return save(figure, out, "coordination.png")


def save(figure, out, name) -> str:
    figure.tight_layout()
    path = os.path.join(out, name)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_results(results_dir: str, out: str) -> List[str]:
    """Writes every figure that the results support; returns their paths."""
    files = find_result_files(results_dir)
    if not files:
        raise FileNotFoundError(f"No result.json found at or below {results_dir!r}.")
    trials = [(path, read_results(path)) for path in files]
    trials = [(path, rows) for path, rows in trials if rows]
    varying = varying_config_keys([rows for _, rows in trials])
    groups = defaultdict(list)
    for path, rows in trials:
        groups[trial_label(rows, path, varying)].append(rows)
    os.makedirs(out, exist_ok=True)
    written = [
        learning_curves(groups, out),
        per_agent_figure(groups, ["kl_to_old_policy", "non_stationarity"],
                         ["KL(pi_i || pi_i_old)", "D_ns,i"], out, "kl_per_agent.png"),
        per_agent_figure(groups, ["trust_region_delta"], ["trust region delta_i"], out,
                         "trust_regions.png"),
        coordination_heat_maps(groups, out),
    ]
    return [path for path in written if path]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rllib_mamt.plotting", description=__doc__.splitlines()[0]
    )
    parser.add_argument("results_dir", help="Tune trial or experiment directory")
    parser.add_argument("--out", default=None, help="figure directory (default: RESULTS_DIR/figures)")
    args = parser.parse_args(argv)
    out = args.out or os.path.join(args.results_dir, "figures")
    try:
        paths = plot_results(args.results_dir, out)
    except FileNotFoundError as error:
        parser.exit(2, f"plotting: error: {error}\n")
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
