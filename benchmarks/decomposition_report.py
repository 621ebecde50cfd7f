"""Issue 10's report: learned δ_i and C against the Spread-3 ground-truth graphs.

    python benchmarks/decomposition_report.py [--recorded benchmarks/recorded]

Reads the runs of ``benchmarks/variants/issue10_spread3_{sep,mix,ful}.json``
(made by ``benchmarks/variant_runs.py``) and prints, per variant of the
environment (Appendix D, Fig. 7):

- returns of every algorithm (final training return, deterministic evaluation;
  mean ± std over seeds): the paper's Fig. 8 comparison plus MAMT;
- for every run that learns δ: δ_i per agent at a few points of training
  (mean over seeds) next to the ground-truth graph and MAMD-OP's prior
  allocation;
- the learner's mean C_ij over the last tenth of training (mean over seeds);
- the δ-collapse check: the smallest δ_i reached and whether training return
  was still improving when it was reached.

Writes ``issue10_decomposition.json`` and ``issue10_deltas.png`` (δ_i over
training per environment) into the recorded directory. Missing runs are
skipped, so it can be run while the runs are still going.
"""

import argparse
import glob
import json
import os
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = ("sep", "mix", "ful")
SECTIONS = ("sep", "mix", "mix_heldout", "ful")
"""mix_heldout: Spread-3-Mix on seeds 10-12, which no design decision looked at."""
AGENTS = ("agent_0", "agent_1", "agent_2")
GROUND_TRUTH = {
    "sep": "nobody depends on anybody: every δ loose",
    "mix": "agents 0 and 2 depend on each other, agent 1 on nobody: δ_1 loosest",
    "ful": "everybody depends on everybody: equal δ",
}
GROUND_TRUTH["mix_heldout"] = GROUND_TRUTH["mix"]
MAMD_OP_PRIOR = {
    "sep": "no constraint on anyone (= MAAC)",
    "mix": "δ_0 = δ_2 = 1, agent 1 unconstrained",
    "ful": "δ_i = 1 each (= MAMD)",
}
MAMD_OP_PRIOR["mix_heldout"] = MAMD_OP_PRIOR["mix"]
CHECKPOINTS = (10_000, 25_000, 50_000)
DELTA_MIN = 0.01


def load_runs(recorded, variant):
    runs = {}
    for path in sorted(glob.glob(os.path.join(recorded, f"issue10_spread3_{variant}", "*", "seed_*.json"))):
        with open(path) as handle:
            record = json.load(handle)
        runs.setdefault(record["variant"], []).append(record)
    return runs


def mean_std(values):
    return statistics.fmean(values), (statistics.pstdev(values) if len(values) > 1 else 0.0)


def delta_at(record, steps):
    """δ per agent at the recorded point closest to ``steps``."""
    points = record.get("trust_region_deltas") or []
    if not points:
        return None
    return min(points, key=lambda point: abs(point[0] - steps))[1]


def late_coefficients(record):
    """Mean C_ij per (i, j) over the last tenth of the recorded C curve."""
    points = record.get("coordination_coefficients") or []
    if not points:
        return None
    tail = points[-max(1, len(points) // 10):]
    return {
        agent: {other: statistics.fmean(p[1][agent][other] for p in tail)
                for other in tail[0][1][agent]}
        for agent in tail[0][1]
    }


def collapse_check(record):
    """Smallest δ_i reached, when, and the training return then and at the end."""
    points = record.get("trust_region_deltas") or []
    if not points:
        return None
    step, deltas = min(points, key=lambda point: min(point[1].values()))
    agent = min(deltas, key=deltas.get)
    curve = record["curve"]
    window = [r for s, r in curve if abs(s - step) <= 2_500]
    return {"seed": record["seed"], "agent": agent, "delta": deltas[agent], "steps": step,
            "return_then": statistics.fmean(window),
            "final_training_return": record["final_training_return"],
            "at_delta_min": deltas[agent] <= 1.05 * DELTA_MIN}


def report(recorded):
    summary = {}
    for variant in SECTIONS:
        runs = load_runs(recorded, variant)
        if not runs:
            continue
        print(f"\n== Spread-3-{variant.capitalize().replace('_', ', ')}: {GROUND_TRUTH[variant]}; "
              f"MAMD-OP: {MAMD_OP_PRIOR[variant]}")
        section = {"ground_truth": GROUND_TRUTH[variant], "mamd_op": MAMD_OP_PRIOR[variant],
                   "returns": {}, "deltas": {}, "coefficients": {}, "collapse": {}}
        print(f"{'algorithm':<26}{'seeds':>6}{'final training':>18}{'deterministic eval':>22}")
        for name, records in sorted(runs.items()):
            train = mean_std([r["final_training_return"] for r in records])
            evaluation = mean_std([r["eval_return"] for r in records])
            section["returns"][name] = {"seeds": [r["seed"] for r in records],
                                        "final_training_return": train, "eval_return": evaluation}
            print(f"{name:<26}{len(records):>6}{train[0]:>11.1f} ± {train[1]:<4.1f}"
                  f"{evaluation[0]:>15.1f} ± {evaluation[1]:<4.1f}")
        for name, records in sorted(runs.items()):
            if not name.startswith("mamt"):
                continue  # δ is not learned there (none, equal or set by hand)
            table = {}
            for steps in CHECKPOINTS:
                per_seed = [d for d in (delta_at(r, steps) for r in records) if d]
                table[steps] = {a: statistics.fmean(d[a] for d in per_seed) for a in AGENTS}
            section["deltas"][name] = table
            print(f"  δ of {name} (mean over {len(records)} seeds): " + "; ".join(
                f"{steps // 1000}k: " + " ".join(f"{table[steps][a]:.2f}" for a in AGENTS)
                for steps in CHECKPOINTS))
            coefficients = [c for c in (late_coefficients(r) for r in records) if c]
            if coefficients:
                matrix = {a: {o: statistics.fmean(c[a][o] for c in coefficients)
                              for o in coefficients[0][a]} for a in AGENTS}
                section["coefficients"][name] = matrix
                print(f"  C of {name}, last tenth (row i: C_ij for j != i): " + "; ".join(
                    f"{a[-1]}: " + " ".join(f"C{a[-1]}{o[-1]}={matrix[a][o]:.2f}"
                                            for o in sorted(matrix[a])) for a in AGENTS))
            checks = [c for c in (collapse_check(r) for r in records) if c]
            section["collapse"][name] = checks
            for check in checks:
                print(f"  smallest δ of {name} seed {check['seed']}: {check['agent']} "
                      f"{check['delta']:.3f} at {check['steps'] / 1000:.0f}k "
                      f"(return then {check['return_then']:.1f}, final {check['final_training_return']:.1f})"
                      + (" AT δ_min" if check["at_delta_min"] else ""))
        summary[variant] = section
    with open(os.path.join(recorded, "issue10_decomposition.json"), "w") as handle:
        json.dump(summary, handle, indent=2)
    return summary


def plot(recorded):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, 3, figsize=(13, 3.6), sharey=True)
    for axis, variant in zip(axes, VARIANTS):
        runs = load_runs(recorded, variant)
        for name, style in (("mamt_hypergradient", "-"), ("mamt_literal", ":"),
                            ("mamt_paper_coefficients", "--"), ("mamt_upper_bound", "-.")):
            for agent, colour in zip(AGENTS, ("tab:blue", "tab:orange", "tab:green")):
                for index, record in enumerate(runs.get(name, [])):
                    points = record.get("trust_region_deltas") or []
                    axis.plot([p[0] for p in points], [p[1][agent] for p in points], style,
                              color=colour, alpha=0.6, linewidth=1,
                              label=f"{name} {agent}" if index == 0 else None)
        axis.set_title(f"Spread-3-{variant.capitalize()}")
        axis.set_yscale("log")
        axis.set_xlabel("env steps")
    axes[0].set_ylabel("δ_i")
    handles, labels = axes[1].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=7)
    figure.tight_layout(rect=(0, 0.18, 1, 1))
    path = os.path.join(recorded, "issue10_deltas.png")
    figure.savefig(path, dpi=110)
    print(f"\nwrote {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recorded", default=os.path.join(HERE, "recorded"))
    args = parser.parse_args()
    report(args.recorded)
    plot(args.recorded)


if __name__ == "__main__":
    main()
