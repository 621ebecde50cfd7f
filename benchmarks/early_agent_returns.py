"""Each agent's own training return over the first episodes of Spread-3 runs.

Appendix D's dilemma is a claim per agent and about speed: equal trust regions
(MAMD) slow the agent that depends on no one (Mix's agent 1), no trust region
(MAAC) leaves the joined agents non-stationary, and the decomposition from the
known graph (MAMD-OP) avoids both. This compares the rows agent by agent over
the first ``--episodes`` (default 5,000, the report's "first 20 %") of every run
whose per-agent record starts at episode 0 (summary key ``agents``):

- each agent's mean return over that window, weighted by bin width;
- the episodes until the agent's return first comes within ``--margin`` of
  the scripted controller's (``spread3_scripted.py``, a known reference);
- the independent and the joined agents' mean curves (``--figure``);
- per group, rliable's probability of improvement between rows, with its
  95 % stratified-bootstrap CI, on the window means;
- for rows with learned trust regions (MAMT), which agent's δ_i first falls
  to ``--frozen-below`` (default 0.1, a tenth of the equal share δ̄ = 1)
  within the window, and whether that agent is independent or joined: the
  allocation the known graph asks for freezes no independent agent.

Runs from several plans' directories are pooled by row, a run with a record
from its start being taken over one without. Where a directory holds a
rerun of a run another holds (same row and seed), ``rerun_difference`` gives
the largest gap between their total curves over the window: 0 when training
repeats exactly for a seed.

    python benchmarks/early_agent_returns.py                  # Mix
    python benchmarks/early_agent_returns.py --variant ful    # or sep
"""

import argparse
import glob
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run_summary  # noqa: E402
import table10_report  # noqa: E402

SCRIPTED = os.path.join(HERE, "recorded", "spread3_scripted.json")
# A learned δ_i at or below this counts as frozen: a tenth of the equal share δ̄ = 1.
FROZEN_BELOW = 0.1


def default_directories(variant, recorded=os.path.join(HERE, "recorded")):
    """The variant's Fig. 8 plan directory, then those of its diagnostic plans
    that exist: its from-the-start plan's first, then the others by name
    (``recorded/fig8_spread3_<variant>_start``, ``..._<variant>_*``). A
    diagnostic run of a seed that an earlier directory also holds is compared
    with it as a rerun."""
    main = os.path.join(recorded, f"fig8_spread3_{variant}")
    start = main + "_start"
    others = sorted(path for path in glob.glob(main + "_*")
                    if path != start and os.path.isdir(path))
    return [main] + ([start] if os.path.isdir(start) else []) + others


def default_out(variant):
    """``recorded/early_agent_returns_spread3_<variant>.json``."""
    return os.path.join(HERE, "recorded", f"early_agent_returns_spread3_{variant}.json")


def default_figure(variant):
    """``figures/table10/early_agents_spread3_<variant>.png``."""
    return os.path.join(HERE, "figures", "table10", f"early_agents_spread3_{variant}.png")


def load_runs(directories):
    """{row: {seed: [summary, ...]}} over ``directories``, in their order."""
    runs = {}
    for directory in directories:
        for path in sorted(glob.glob(os.path.join(directory, "*", "seed_*.json"))):
            summary = run_summary.load(path)
            runs.setdefault(summary["row"], {}).setdefault(summary["seed"], []).append(summary)
    return runs


def started_runs(runs):
    """{row: [per seed, its first run with a record from its start]}, rows
    without any such run left out."""
    started = {}
    for row, seeds in sorted(runs.items()):
        chosen = [next((s for s in summaries if run_summary.agents_from_start(s)), None)
                  for _, summaries in sorted(seeds.items())]
        if any(chosen):
            started[row] = [s for s in chosen if s]
    return started


def window_mean(binned, episodes):
    """Bin-width-weighted mean return over the first ``episodes``, or None."""
    mean = run_summary.first_episodes_mean(binned, episodes)
    return None if np.isnan(mean) else mean


def episodes_to_reference(binned, episodes, reference, margin):
    """The first bin end (within ``episodes``) whose return is at least
    ``reference - margin``, or None if the window has none."""
    ends, _, returns = run_summary.first_episodes_bins(binned, episodes)
    reached = np.flatnonzero(returns >= reference - margin)
    return int(ends[reached[0]]) if len(reached) else None


def rerun_difference(first, second, episodes):
    """Largest |difference| between two total curves at their common bin ends
    within ``episodes``, or None if they share none."""
    ends_a, _, returns_a = run_summary.first_episodes_bins(first["curve"], episodes)
    ends_b, _, returns_b = run_summary.first_episodes_bins(second["curve"], episodes)
    common, index_a, index_b = np.intersect1d(ends_a, ends_b, return_indices=True)
    if not len(common):
        return None
    return float(np.max(np.abs(returns_a[index_a] - returns_b[index_b])))


def agent_groups(graph, agents):
    """{"independent": agents with no edge, "joined": the others} of a 0/1
    graph, an empty group left out (Sep has no joined agent, Ful no independent one)."""
    degree = np.asarray(graph).sum(axis=1)
    groups = {"independent": [a for a, d in zip(agents, degree) if d == 0],
              "joined": [a for a, d in zip(agents, degree) if d > 0]}
    return {group: members for group, members in groups.items() if members}


def window_deltas(summary, episodes):
    """[(episodes, {agent: δ_i})] of the run's decomposition records within
    ``episodes`` (empty without ``summary["decomposition"]``)."""
    return [(record["episodes"],
             {agent: values["trust_region_delta"] for agent, values in record["learners"].items()
              if "trust_region_delta" in values})
            for record in summary.get("decomposition") or [] if record["episodes"] <= episodes]


def delta_learned(summary, episodes):
    """Whether some agent's δ_i takes more than one value within ``episodes``
    (MAMT; MAMD's, MAMD-OP's and MAAC's are fixed)."""
    seen = {}
    for _, deltas in window_deltas(summary, episodes):
        for agent, delta in deltas.items():
            seen.setdefault(agent, set()).add(delta)
    return any(len(values) > 1 for values in seen.values())


def first_frozen(summary, episodes, threshold):
    """{"agent", "episodes", "delta"} of the first decomposition record within
    ``episodes`` where an agent's δ_i is at most ``threshold`` (the lowest δ
    if several agents are), or None: no record has one, or the run has no
    learned δ (``summary["decomposition"]``)."""
    for at, deltas in window_deltas(summary, episodes):
        frozen = {agent: delta for agent, delta in deltas.items() if delta <= threshold}
        if frozen:
            agent = min(frozen, key=frozen.get)
            return {"agent": agent, "episodes": at, "delta": frozen[agent]}
    return None


def seed_record(summary, episodes, reference, margin, frozen_below):
    """One run's per-agent window means, episodes to the reference and first
    frozen agent."""
    curves = summary["agents"]["curve"]
    return {"seed": summary["seed"],
            "window_mean": {a: window_mean(c, episodes) for a, c in curves.items()},
            "episodes_to_reference": {a: episodes_to_reference(c, episodes, reference[a], margin)
                                      for a, c in curves.items()},
            "delta_learned": delta_learned(summary, episodes),
            "first_frozen": first_frozen(summary, episodes, frozen_below)}


def frozen_counts(result, groups):
    """Per row with learned δ: in how many seeds the first frozen agent is in
    each group, and in how many no agent froze within the window."""
    group_of = {agent: group for group, agents in groups.items() for agent in agents}
    counts = {}
    for row, entry in result["rows"].items():
        if not any(r["delta_learned"] for r in entry["records"]):
            continue
        tally = dict.fromkeys(list(groups) + ["none"], 0)
        for record in entry["records"]:
            frozen = record["first_frozen"]
            tally[group_of[frozen["agent"]] if frozen else "none"] += 1
        counts[row] = tally
    return counts


def mean_std(values):
    """{"mean", "std" (``table10_report.sample_std``), "n"} of the non-None
    values, or None."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"mean": float(np.mean(values)), "n": len(values),
            "std": table10_report.sample_std(values)}


def compare(runs, episodes, reference, margin, frozen_below=FROZEN_BELOW):
    """The comparison: per row its seeds' records and their mean ± std per agent,
    and the rerun differences."""
    reruns = [{"row": row, "seed": seed,
               "max_abs_difference": rerun_difference(summaries[0], other, episodes)}
              for row, seeds in runs.items() for seed, summaries in sorted(seeds.items())
              for other in summaries[1:]]
    rows = {}
    for row, summaries in started_runs(runs).items():
        records = [seed_record(s, episodes, reference, margin, frozen_below) for s in summaries]
        agents = sorted(records[0]["window_mean"])
        rows[row] = {
            "seeds": [r["seed"] for r in records], "records": records,
            "window_mean": {a: mean_std([r["window_mean"][a] for r in records]) for a in agents},
            "episodes_to_reference": {
                a: {**(mean_std([r["episodes_to_reference"][a] for r in records]) or {}),
                    "reached": sum(r["episodes_to_reference"][a] is not None for r in records)}
                for a in agents}}
    return {"episodes": episodes, "margin": margin, "frozen_below": frozen_below,
            "reference": reference, "rows": rows, "rerun_difference": reruns}


def group_improvement(result, groups, reps=2000, seed=0):
    """Per agent group, rliable's probability that one row's window mean (the
    group's agents averaged) beats another's, with its 95 % CI
    (``table10_report.probability_of_improvement``)."""
    out = {}
    for group, agents in groups.items():
        scores = {row: np.array([[np.mean([r["window_mean"][a] for a in agents])]
                                 for r in entry["records"]])
                  for row, entry in result["rows"].items()}
        out[group] = table10_report.probability_of_improvement(scores, reps, seed)
    return out


def plot(runs, episodes, groups, reference, path, task=None):
    """One panel per agent group (independent, joined): the group's mean own
    return, mean ± std over each row's seeds with a record from the start;
    rows named with the rows they also are on ``task`` ("MAAC = MAMD-OP" on
    Sep, ``table10_report.row_label``)."""
    from rllib_mamt.plotting import plot_band, plt, save, shared_legend

    figure, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False,
                                layout="constrained")
    axes = axes[0]
    drawn = started_runs(runs)
    for axis, (group, agents) in zip(axes, groups.items()):
        for row, summaries in drawn.items():
            trials = []
            for summary in summaries:
                curves = [run_summary.first_episodes_bins(summary["agents"]["curve"][a], episodes)
                          for a in agents]
                trials.append((curves[0][0], np.mean([c[2] for c in curves], axis=0)))
            label = table10_report.row_label(task, row, drawn)
            plot_band(axis, trials, f"{label} ({table10_report.seed_count(len(trials))})",
                      table10_report.row_colour(row))
        axis.axhline(np.mean([reference[a] for a in agents]), color="black", linestyle="--",
                     linewidth=1, label="scripted controller")
        axis.set_title(f"{group} agent(s): {', '.join(agents)}", fontsize=9)
        axis.set_xlabel("training episodes")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("own training return, group mean")
    shared_legend(figure, axes)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return save(figure, os.path.dirname(path), os.path.basename(path))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directories", nargs="*",
                        help="run-summary directories (ROW/seed_S.json), pooled by row; "
                             "default: recorded/fig8_spread3_<variant>[_start]")
    parser.add_argument("--variant", default="mix", choices=["sep", "mix", "ful"])
    parser.add_argument("--episodes", type=int, default=5000)
    parser.add_argument("--margin", type=float, default=1.0)
    parser.add_argument("--frozen-below", type=float, default=FROZEN_BELOW,
                        help="a learned δ_i at or below this counts as frozen")
    parser.add_argument("--out", help="default: recorded/early_agent_returns_spread3_<variant>.json")
    parser.add_argument("--figure", help="default: figures/table10/early_agents_spread3_<variant>.png")
    args = parser.parse_args()
    args.directories = args.directories or default_directories(args.variant)
    args.out = args.out or default_out(args.variant)
    args.figure = args.figure or default_figure(args.variant)
    if args.episodes < 1 or args.margin < 0:
        raise SystemExit(f"--episodes {args.episodes} / --margin {args.margin}: allowed: "
                         "an int >= 1 and a number >= 0")
    if not args.frozen_below > 0:
        raise SystemExit(f"--frozen-below {args.frozen_below}: allowed: a number > 0")
    from rllib_mamt.envs.spread3 import DEPENDENCY_GRAPHS

    with open(SCRIPTED) as handle:
        reference = json.load(handle)["variants"][args.variant]["agent_return_mean"]
    runs = load_runs(args.directories)
    result = compare(runs, args.episodes, reference, args.margin, args.frozen_below)
    result["groups"] = agent_groups(DEPENDENCY_GRAPHS[args.variant], sorted(reference))
    result["probability_of_improvement"] = group_improvement(result, result["groups"])
    result["first_frozen_group"] = frozen_counts(result, result["groups"])
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1)
    task = f"spread3_{args.variant}"
    plot(runs, args.episodes, result["groups"], reference, args.figure, task)
    for row, entry in result["rows"].items():
        reached = entry["episodes_to_reference"]
        cells = "  ".join(f"{a}: {entry['window_mean'][a]['mean']:.2f}, "
                          f"to ref {reached[a].get('mean', float('nan')):.0f} "
                          f"({reached[a]['reached']}/{len(entry['seeds'])})"
                          for a in sorted(entry["window_mean"]))
        print(f"{table10_report.row_label(task, row, result['rows']):<14} "
              f"seeds {entry['seeds']}  {cells}")
    for group, pairs in result["probability_of_improvement"].items():
        for pair, value in pairs.items():
            print(f"{group}: P({pair.replace(',', ' > ')}) = {value['probability']:.2f} "
                  f"[{value['ci95'][0]:.2f}, {value['ci95'][1]:.2f}]")
    for row, tally in result["first_frozen_group"].items():
        firsts = ", ".join(f"seed {r['seed']}: {r['first_frozen']['agent']} at "
                           f"{r['first_frozen']['episodes']}" if r["first_frozen"]
                           else f"seed {r['seed']}: none" for r in result["rows"][row]["records"])
        print(f"{row}: first agent with delta <= {args.frozen_below} per group {tally} ({firsts})")
    for rerun in result["rerun_difference"]:
        print(f"rerun {rerun['row']} seed {rerun['seed']}: max |difference| "
              f"{rerun['max_abs_difference']}")
    print(f"wrote {os.path.relpath(args.out)} and {os.path.relpath(args.figure)}")


if __name__ == "__main__":
    main()
