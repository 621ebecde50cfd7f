"""Table of ``delta_horizon.py`` results over several minibatch draws.

    python benchmarks/delta_horizon_report.py benchmarks/recorded/delta_horizon/*.json

Per shifted agent and horizon K: the median over draws of dV_j and dD (per unit
log δ_j), the number of draws in which dD > 0 (a looser region adds drift), and
the median value/drift ratio; then the learner's one-step ratio (median over
draws of its mean over the K steps). Markdown on stdout.
"""

import argparse
import json
import statistics


def rows(results):
    """Markdown lines of the table."""
    horizons = results[0]["horizons"]
    agents = [agent for agent in results[0]["agents"] if all(agent in r["agents"] for r in results)]
    lines = ["| agent | δ | K | dV_j (median) | dD (median) | draws with dD > 0 | "
             "value/drift (median) | one-step value/drift (median) |",
             "|---|---|---|---|---|---|---|---|"]
    for agent in agents:
        per_draw = [r["agents"][agent] for r in results]
        one_step = statistics.median(d["one_step_ratio"] for d in per_draw)
        for k in horizons:
            cells = [d[str(k)] for d in per_draw]
            value = statistics.median(c["own_value_slope"] for c in cells)
            drift = statistics.median(c["drift_slope"] for c in cells)
            positive = sum(c["drift_slope"] > 0 for c in cells)
            ratio = statistics.median(c["own_value_slope"] / c["drift_slope"] for c in cells
                                      if c["drift_slope"])
            lines.append(f"| {agent} | {per_draw[0]['delta']:.3f} | {k} | {value:+.2e} | "
                         f"{drift:+.2e} | {positive} of {len(cells)} | {ratio:+.3f} | "
                         f"{one_step:+.3f} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+")
    args = parser.parse_args()
    results = []
    for path in args.results:
        with open(path) as handle:
            results.append(json.load(handle))
    print("\n".join(rows(results)))


if __name__ == "__main__":
    main()
