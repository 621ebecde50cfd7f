"""PNG figures from training results, in the style of the paper's Figs. 2-5.

    python -m rllib_mamt.plotting RESULTS_DIR [--out FIGURE_DIR]

RESULTS_DIR is a Tune trial directory (it holds ``result.json``, one JSON
result per line) or any directory above trial directories (a Tune experiment,
or several experiments): trials are grouped by algorithm, trust-region mode
and every config value that differs between trials except the seed (so a grid
search gives one group per grid point, and repeated seeds, also from separate
runs, share a group; see ``rllib_mamt.plot_runs``). Curves show the mean over
a group's trials with a band of one standard deviation when it has several.
Figures written:

- ``learning_curves.png``: episode return (training, and deterministic
  evaluation at the iterations where it ran) against sampled env steps (Fig. 2);
- ``kl_per_agent.png``: each agent's KL to its old policy and the
  non-stationarity D_ns,i over training (Fig. 3);
- ``trust_regions.png``: each agent's delta_i over training (Fig. 4);
- ``coordination.png``: heat maps of the coordination coefficients C_ij averaged
  over the last half of training, annotated, with the std over seeds (Fig. 5).

With one group, the per-agent figures draw one line per agent; with several,
one panel per agent and one line per group. Legends sit outside the axes.
"""

import argparse
import math
import os
import textwrap
from typing import List, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

from rllib_mamt.plot_runs import (  # noqa: E402
    Group, NoResultsError, common_label, evaluation_rows, group_trials, read_results,
)

__all__ = ["plot_results", "read_results", "coordination_matrix", "mean_and_spread", "main"]

CENTRAL = "mamt_central"
STEPS = "num_env_steps_sampled_lifetime"
#: Heat maps with at most this many agents get a number in every cell.
ANNOTATE_MAX_AGENTS = 10
#: Panels per row in the per-agent and heat-map grids.
PANELS_PER_ROW = 4


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


def colours(count: int):
    """``count`` distinct colours: tab10, tab20, then evenly spaced on turbo."""
    if count <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(count)]
    if count <= 20:
        return [plt.get_cmap("tab20")(i) for i in range(count)]
    return [plt.get_cmap("turbo")(x) for x in np.linspace(0.05, 0.95, count)]


def plot_band(axis, trials, label, colour, markers=False, points=100) -> bool:
    """Mean line (and a +-1 std band when there are several trials); False if no data."""
    summary = mean_and_spread(trials, points)
    if summary is None:
        return False
    grid, mean, std = summary
    axis.plot(grid, mean, label=label, color=colour, linewidth=1.3,
              marker="o" if markers else None, markersize=3)
    if sum(len(s) > 0 for s, _ in trials) > 1:
        axis.fill_between(grid, mean - std, mean + std, color=colour, alpha=0.15, linewidth=0)
    return True


def style_time_axis(axis, ylabel: Optional[str], xlabel: bool = True):
    """Env-step x axis in engineering units (1k, 1M), a grid, and the y label."""
    axis.xaxis.set_major_formatter(EngFormatter())
    axis.grid(alpha=0.3)
    if xlabel:
        axis.set_xlabel("env steps")
    if ylabel:
        axis.set_ylabel(ylabel)


def shared_legend(figure, axes, title: Optional[str] = None, where: str = "outside lower center"):
    """One legend for the whole figure, outside every axes, one entry per label."""
    entries = {}
    for axis in np.ravel(axes):
        for handle, label in zip(*axis.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if not entries:
        return None
    longest = max(len(label) for label in entries)
    fitting = int(figure.get_figwidth() // (0.065 * longest + 0.6))  # inches per entry at 8 pt
    columns = 1 if "right" in where else max(1, min(3, len(entries), fitting))
    return figure.legend(list(entries.values()), list(entries.keys()), loc=where,
                         ncols=columns, fontsize=8, title=title, title_fontsize=8, frameon=False)


def figure_title(figure, groups: List[Group], what: str):
    """Suptitle naming what is drawn and the label parts shared by all groups."""
    shared = common_label(groups) if len(groups) > 1 else groups[0].name
    seeds = sorted({len(group.trials) for group in groups})
    pooled = f"; mean of {'/'.join(map(str, seeds))} trial(s) per line" if seeds != [1] else ""
    wrapped_title(figure, f"{what}: {shared}{pooled}" if shared else f"{what}{pooled}")


def wrapped_title(figure, text: str):
    """A suptitle wrapped to the figure's width."""
    width = max(30, int(figure.get_figwidth() * 13))  # characters per line at 10 pt
    figure.suptitle("\n".join(textwrap.fill(line, width) for line in text.split("\n")), fontsize=10)


def log_scale_if_wide(axes, ratio: float = 100.0):
    """Logarithmic y axes when all drawn values are positive and span over ``ratio``x."""
    values = np.concatenate([line.get_ydata() for axis in np.ravel(axes) for line in axis.lines] or [[]])
    if len(values) and values.min() > 0 and values.max() / values.min() > ratio:
        for axis in np.ravel(axes):
            axis.set_yscale("log")


def learning_curves(groups: List[Group], out: str) -> Optional[str]:
    """Fig. 2: training and evaluation return, one line per group."""
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained", sharey=True)
    drawn = [False, False]
    for group, colour in zip(groups, colours(len(groups))):
        drawn[0] |= plot_band(axes[0], [series(r, "env_runners", "episode_return_mean")
                                        for r in group.trials], group.legend, colour)
        evaluations = [series(evaluation_rows(r), "evaluation", "env_runners", "episode_return_mean")
                       for r in group.trials]
        points = min((len(s) for s, _ in evaluations if len(s)), default=0)
        drawn[1] |= plot_band(axes[1], evaluations, group.legend, colour, markers=True,
                              points=max(points, 1))
    if not drawn[0]:
        plt.close(figure)
        return None
    axes[1].yaxis.set_tick_params(labelleft=True)
    for axis, title, has_lines in zip(
        axes, ("training episode return", "deterministic evaluation return"), drawn
    ):
        axis.set_title(title, fontsize=10)
        style_time_axis(axis, "episode return (mean)")
        if not has_lines:
            axis.text(0.5, 0.5, "no evaluation results", ha="center", transform=axis.transAxes)
    figure_title(figure, groups, "Episode return")
    if len(groups) > 1:
        shared_legend(figure, axes)
    return save(figure, out, "learning_curves.png")


def per_agent_figure(groups: List[Group], metrics, titles, out, name, log_when_wide=False) -> Optional[str]:
    """Figs. 3-4: one group: a panel per metric, a line per agent;
    several groups: a panel per (metric, agent), a line per group.

    ``log_when_wide``: logarithmic y axes when the values span over 100x (delta_i
    between clip bounds such as 0.01 and 100).
    """
    agents = sorted({agent for group in groups for rows in group.trials for agent in agent_ids(rows)})
    if not agents:
        return None
    if len(groups) == 1:
        return _one_group_per_agent(groups, agents, metrics, titles, out, name, log_when_wide)
    columns = min(PANELS_PER_ROW, len(agents))
    rows_per_metric = math.ceil(len(agents) / columns)
    figure, axes = plt.subplots(
        rows_per_metric * len(metrics), columns, squeeze=False, sharex=True, layout="constrained",
        figsize=(3.6 * columns, 2.6 * rows_per_metric * len(metrics) + 0.4 + 0.2 * len(groups)),
    )
    drawn = False
    for m, (metric, title) in enumerate(zip(metrics, titles)):
        block = axes[m * rows_per_metric:(m + 1) * rows_per_metric].ravel()
        for position, axis in enumerate(block):
            if position >= len(agents):
                axis.set_visible(False)
                continue
            agent = agents[position]
            for group, colour in zip(groups, colours(len(groups))):
                drawn |= plot_band(axis, [series(r, "learners", agent, metric) for r in group.trials],
                                   group.legend, colour)
            axis.set_title(f"{agent}: {title}", fontsize=9)
            style_time_axis(axis, title if position % columns == 0 else None,
                            xlabel=m == len(metrics) - 1 and position + columns >= len(agents))
            if position > 0:
                axis.sharey(block[0])
    if not drawn:
        plt.close(figure)
        return None
    if log_when_wide:
        log_scale_if_wide(axes)
    figure_title(figure, groups, " and ".join(titles))
    shared_legend(figure, axes)
    return save(figure, out, name)


def _one_group_per_agent(groups, agents, metrics, titles, out, name, log_when_wide) -> Optional[str]:
    """A panel per metric, a line per agent, the agent legend right of the panels."""
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.8 * len(metrics) + 1.5, 4),
                                squeeze=False, layout="constrained")
    drawn = False
    for agent, colour in zip(agents, colours(len(agents))):
        for axis, metric in zip(axes[0], metrics):
            drawn |= plot_band(axis, [series(r, "learners", agent, metric) for r in groups[0].trials],
                               agent, colour)
    if not drawn:
        plt.close(figure)
        return None
    for axis, title in zip(axes[0], titles):
        axis.set_title(title, fontsize=10)
        style_time_axis(axis, title)
    for axis in axes[0] if log_when_wide else ():
        log_scale_if_wide([axis])
    figure_title(figure, groups, " and ".join(titles))
    shared_legend(figure, axes, where="outside right upper")
    return save(figure, out, name)


def coordination_matrix(rows: List[dict]):
    """(agents, mean over the last half of training of each C_ij), or None.

    The diagonal (an agent with itself, never logged) is NaN.
    """
    agents = agent_ids(rows)
    samples = []
    for row in rows[len(rows) // 2:]:
        matrix = np.full((len(agents), len(agents)), np.nan)
        found = False
        for i, agent in enumerate(agents):
            for j, other in enumerate(agents):
                value = nested(row, "learners", agent, "coordination", other)
                if i != j and isinstance(value, (int, float)):
                    matrix[i, j] = value
                    found = True
                elif i != j:
                    matrix[i, j] = 0.0
        if found:
            samples.append(matrix)
    if not samples:
        return None
    return agents, np.mean(samples, 0)


def coordination_heat_maps(groups: List[Group], out, name: str = "coordination.png") -> Optional[str]:
    """Fig. 5: a heat map of mean C_ij per group on one colour scale; cells show
    the value (and +- the std over seeds when a group has several); written
    as ``out/name``."""
    maps = []
    for group in groups:
        found = [f for f in map(coordination_matrix, group.trials) if f is not None]
        if found and all(f[0] == found[0][0] for f in found):
            stack = np.stack([f[1] for f in found])
            maps.append((group, found[0][0], stack.mean(0), stack.std(0) if len(found) > 1 else None))
    if not maps:
        return None
    columns = min(3 if len(maps) > 4 else PANELS_PER_ROW, len(maps))
    rows = math.ceil(len(maps) / columns)
    size = max(3.2, 0.45 * max(len(agents) for _, agents, _, _ in maps) + 1.2)
    figure, axes = plt.subplots(rows, columns, squeeze=False, layout="constrained",
                                figsize=(size * columns + 1.0, (size + 0.5) * rows + 0.5))
    top = max(float(np.nanmax(mean)) for _, _, mean, _ in maps) or 1.0
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    image = None
    for axis, (group, agents, mean, std) in zip(axes.ravel(), maps):
        image = axis.imshow(mean, cmap=cmap, vmin=0.0, vmax=top)
        short = [agent.replace("agent_", "") for agent in agents]
        axis.set_xticks(range(len(agents)), short, fontsize=7)
        axis.set_yticks(range(len(agents)), short, fontsize=7)
        axis.set_xlabel("agent j", fontsize=8)
        axis.set_ylabel("agent i", fontsize=8)
        title = group.legend if len(maps) > 1 else "mean C_ij"
        axis.set_title("\n".join(textwrap.wrap(title, 38)), fontsize=8)
        if len(agents) <= ANNOTATE_MAX_AGENTS:
            annotate(axis, mean, std, top)
    for axis in axes.ravel()[len(maps):]:
        axis.set_visible(False)
    figure.colorbar(image, ax=axes, shrink=min(0.8, 3.0 / rows), label="C_ij")
    seeds = "; cells: mean \u00b1 std over seeds" if any(s is not None for *_, s in maps) else ""
    wrapped_title(figure, f"Coordination coefficients C_ij (row i, column j), mean over the last half "
                          f"of training{seeds}\n{common_label([g for g, *_ in maps])}")
    return save(figure, out, name)


def annotate(axis, mean, std, top):
    """Writes each off-diagonal cell's value (and +- std) in a readable colour."""
    size = 7 if len(mean) <= 6 else 5.5
    for i in range(len(mean)):
        for j in range(len(mean)):
            if np.isnan(mean[i, j]):
                continue
            text = f"{mean[i, j]:.2f}"
            if std is not None:
                text += f"\n\u00b1{std[i, j]:.2f}"
            axis.text(j, i, text, ha="center", va="center", fontsize=size,
                      color="black" if mean[i, j] > 0.6 * top else "white")


def save(figure, out, name) -> str:
    """Writes the figure as ``out/name`` and closes it."""
    path = os.path.join(out, name)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_results(results_dir: str, out: str) -> List[str]:
    """Writes every figure that the results support; returns their paths.

    Raises:
        NoResultsError: (a ``FileNotFoundError``) no ``result.json`` under
            ``results_dir``, or none with anything to plot.
    """
    groups = group_trials(results_dir)
    os.makedirs(out, exist_ok=True)
    written = [
        learning_curves(groups, out),
        per_agent_figure(groups, ["kl_to_old_policy", "non_stationarity"],
                         ["KL(pi_i || pi_i_old)", "D_ns,i"], out, "kl_per_agent.png"),
        per_agent_figure(groups, ["trust_region_delta"], ["trust region delta_i"], out,
                         "trust_regions.png", log_when_wide=True),
        coordination_heat_maps(groups, out),
    ]
    written = [path for path in written if path]
    if not written:
        raise NoResultsError(
            f"no results to plot under {results_dir!r}: no episode return, per-agent learner "
            "metric or coordination coefficient in any result.json"
        )
    return written


def main(argv=None) -> int:
    """``python -m rllib_mamt.plotting``: prints the written figure paths; exit 2 on no results."""
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
