"""Learning comparison of MAAC, MAMD and MAMT, and the decomposition-dilemma check.

    python benchmarks/learning_comparison.py --envs spread spread3_mix rover_tower \\
        --seeds 0 1 2 --env-steps 40000 [--train-batch-size 512 --env-steps-per-update 50]

For every (env, mode, seed): train to the env-step budget, record the training
curve, then evaluate the deterministic policy on 10 episodes (the paper's
metric). For MAMT on the Spread-3 variants, also report how well the learned
coordination coefficients recover the env's ground-truth dependency graph
(Appendix D): the mean C_ij over the second half of training on true edges vs
on non-edges, and the same for Eq. 5's unnormalised counterfactual influence
|Q_i(a_\\j) - Q_i(a)|. Writes JSON, a table, and learning curves (mean ± std
over seeds) as PNG.

    python benchmarks/learning_comparison.py --merge A/records.json B/records.json \
        --out benchmarks/figures/learning_comparison.png

summarises and plots earlier runs together (e.g. two halves run side by side).
"""

import argparse
import json
import os
import statistics
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import ray  # noqa: E402
import torch  # noqa: E402

from rllib_mamt import MAMTConfig  # noqa: E402
from rllib_mamt.envs.registry import make_rllib_env  # noqa: E402

MODES = {"MAAC": "none", "MAMD": "equal", "MAMT": "learned"}


def coordination_snapshot(learners, agents, metric="coordination"):
    """The mean C (or counterfactual-influence) matrix logged this iteration, or None."""
    matrix = np.zeros((len(agents), len(agents)))
    for i, agent in enumerate(agents):
        row = learners.get(agent, {}).get(metric)
        if row is None:
            return None
        for j, other in enumerate(agents):
            if other != agent:
                matrix[i, j] = row[other]
    return matrix


def run(env, mode, seed, env_steps, training):
    config = (
        MAMTConfig()
        .environment(env)
        # Sampling in the driver: with the JointEnvRunner it is cheap, and each
        # run then occupies one process (runs can go two at a time on 2 cores).
        .env_runners(num_env_runners=0)
        .training(trust_region_mode=mode, **training)
        # Built now, run once at the end (algo.evaluate()), never during training.
        .evaluation(evaluation_interval=10**6, evaluation_num_env_runners=0, evaluation_duration=10)
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    agents = algo.config.agent_ids()
    curve, coefficients, influences, result = [], [], [], {}
    start = time.time()
    while result.get("num_env_steps_sampled_lifetime", 0) < env_steps:
        result = algo.train()
        curve.append((result["num_env_steps_sampled_lifetime"],
                      result["env_runners"].get("episode_return_mean", float("nan"))))
        snapshot = coordination_snapshot(result.get("learners", {}), agents)
        if snapshot is not None:
            coefficients.append(snapshot)
        influence = coordination_snapshot(
            result.get("learners", {}), agents, "counterfactual_influence"
        )
        if influence is not None:
            influences.append(influence)
    evaluation = algo.evaluate()["env_runners"]["episode_return_mean"]
    algo.stop()
    record = {"env": env, "mode": mode, "seed": seed, "eval_return": evaluation,
              "curve": curve, "seconds": time.time() - start}
    if coefficients:
        recent = np.mean(coefficients[len(coefficients) // 2:], axis=0)
        record["coordination_mean"] = recent.tolist()
        graph = getattr(make_rllib_env(env), "dependency_graph", None)
        if graph is not None:
            off_diagonal = ~np.eye(len(agents), dtype=bool)
            edges = (graph == 1) & off_diagonal
            non_edges = (graph == 0) & off_diagonal
            record["c_on_true_edges"] = float(recent[edges].mean()) if edges.any() else None
            record["c_on_non_edges"] = float(recent[non_edges].mean()) if non_edges.any() else None
            if influences:
                raw = np.mean(influences[len(influences) // 2:], axis=0)
                record["influence_mean"] = raw.tolist()
                record["influence_on_true_edges"] = (
                    float(raw[edges].mean()) if edges.any() else None
                )
                record["influence_on_non_edges"] = (
                    float(raw[non_edges].mean()) if non_edges.any() else None
                )
    return record


def plot_curves(records, out):
    envs = sorted({r["env"] for r in records})
    figure, axes = plt.subplots(1, len(envs), figsize=(5.5 * len(envs), 4), squeeze=False)
    for axis, env in zip(axes[0], envs):
        for name, mode in MODES.items():
            runs = [r for r in records if r["env"] == env and r["mode"] == mode]
            if not runs:
                continue
            end = min(r["curve"][-1][0] for r in runs)
            grid = np.linspace(runs[0]["curve"][0][0], end, 50)
            curves = np.stack([np.interp(grid, *zip(*r["curve"])) for r in runs])
            axis.plot(grid, curves.mean(0), label=f"{name} ({len(runs)} seeds)")
            axis.fill_between(grid, curves.mean(0) - curves.std(0), curves.mean(0) + curves.std(0), alpha=0.2)
        axis.set_title(env)
        axis.set_xlabel("env steps")
        axis.set_ylabel("training episode return")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="*", default=["spread", "spread3_mix", "rover_tower"])
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--env-steps", type=int, default=40000)
    parser.add_argument("--env-steps-for", nargs="*", default=[], metavar="ENV=STEPS",
                        help="per-env budgets overriding --env-steps, e.g. rover_tower=30000")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads (1 when two scripts share 2 cores)")
    parser.add_argument("--train-batch-size", type=int, default=1024)
    parser.add_argument("--env-steps-per-update", type=int, default=100)
    parser.add_argument("--training", default="{}", metavar="JSON",
                        help='extra MAMTConfig.training() settings for every run, '
                             'e.g. \'{"coordination_threshold": 0.02}\'')
    parser.add_argument("--out", default="benchmarks/results/learning_comparison")
    parser.add_argument("--merge", nargs="*", metavar="RECORDS_JSON",
                        help="no training: summarise and plot these records.json files "
                             "together into --out (a .png path)")
    args = parser.parse_args()
    if args.merge:
        return merge(args.merge, args.out)
    budgets = {}
    for item in args.env_steps_for:
        env, _, steps = item.partition("=")
        if not steps.isdigit():
            parser.error(f"--env-steps-for: {item!r} is not ENV=STEPS")
        budgets[env] = int(steps)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    training = {"train_batch_size_per_learner": args.train_batch_size,
                "env_steps_per_update": args.env_steps_per_update,
                **json.loads(args.training)}
    os.makedirs(args.out, exist_ok=True)
    records = []
    for env in args.envs:
        for name in args.modes:
            for seed in args.seeds:
                record = run(env, MODES[name], seed, budgets.get(env, args.env_steps), training)
                records.append(record)
                extra = ""
                if "c_on_true_edges" in record:
                    extra = (f", C on edges {record.get('c_on_true_edges')}, off edges "
                             f"{record.get('c_on_non_edges')}, influence on edges "
                             f"{record.get('influence_on_true_edges')}, off edges "
                             f"{record.get('influence_on_non_edges')}")
                print(f"{env} {name} seed {seed}: eval {record['eval_return']:.2f} "
                      f"({record['seconds']:.0f} s){extra}", flush=True)
                with open(os.path.join(args.out, "records.json"), "w") as handle:
                    json.dump({"training": training, "env_steps": args.env_steps,
                               "env_steps_for": budgets, "records": records}, handle)
    summarize(records)
    plot_curves(records, os.path.join(args.out, "learning_curves.png"))
    print(f"wrote {args.out}/records.json and learning_curves.png")


def mean_and_std(values):
    return statistics.mean(values), (statistics.pstdev(values) if len(values) > 1 else 0.0)


def final_training_return(record):
    """Mean training-episode return over the last tenth of the run's curve
    (each point is RLlib's running mean over recent episodes, exploring)."""
    returns = [value for _, value in record["curve"] if value == value]
    tail = returns[-max(1, len(returns) // 10):]
    return statistics.mean(tail)


def grouped_runs(records):
    """(env, mode name, runs) for every env (in record order) and mode with runs."""
    for env in dict.fromkeys(r["env"] for r in records):
        for name, mode in MODES.items():
            runs = [r for r in records if r["env"] == env and r["mode"] == mode]
            if runs:
                yield env, name, runs


def summarize(records):
    """Prints the evaluation table and, where a ground-truth graph exists, the
    dilemma check (C and counterfactual influence on true edges vs non-edges)."""
    print(f"\n{'env':<13} {'mode':<5} {'steps':>7} {'seeds':>5} "
          f"{'eval return':>18} {'final training return':>22}   (mean ± std over seeds)")
    for env, name, runs in grouped_runs(records):
        mean, std = mean_and_std([r["eval_return"] for r in runs])
        final_mean, final_std = mean_and_std([final_training_return(r) for r in runs])
        steps = runs[0]["curve"][-1][0]
        print(f"{env:<13} {name:<5} {steps:>7.0f} {len(runs):>5} "
              f"{mean:>9.2f} ± {std:<6.2f} {final_mean:>13.2f} ± {final_std:<6.2f}")
    graph_runs = [r for r in records if "c_on_true_edges" in r]
    if not graph_runs:
        return
    print(f"\n{'env':<13} {'mode':<5} {'C true edges':>13} {'C non-edges':>12} "
          f"{'infl. true edges':>17} {'infl. non-edges':>16}   (mean over seeds)")
    for env, name, runs in grouped_runs(graph_runs):
        cells = []
        for key in ("c_on_true_edges", "c_on_non_edges",
                    "influence_on_true_edges", "influence_on_non_edges"):
            values = [r[key] for r in runs if r.get(key) is not None]
            cells.append(f"{statistics.mean(values):.4f}" if values else "—")
        print(f"{env:<13} {name:<5} {cells[0]:>13} {cells[1]:>12} "
              f"{cells[2]:>17} {cells[3]:>16}")


def merge(paths, out):
    """Summarises and plots the records of several earlier runs together."""
    records = []
    for path in paths:
        with open(path) as handle:
            records.extend(json.load(handle)["records"])
    summarize(records)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    plot_curves(records, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
