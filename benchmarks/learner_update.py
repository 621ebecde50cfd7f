"""Learner cost: median seconds per update of MAAC, MAMD and MAMT on the same batches.

    python benchmarks/learner_update.py [--env spread --agents 2 3 8] [--repeats 15]
    python benchmarks/learner_update.py --env rover_tower

For each agent count, one algorithm per mode is built on the same env and its
buffer filled with the same random-policy transitions; then rounds of
``num_updates_per_round`` (4) updates with the paper's batch of 1024 are timed,
interleaving the modes so that machine noise hits all of them alike. Prints a
table (median seconds per update and ratio to MAAC) and writes JSON.
"""

import argparse
import json
import os
import platform
import statistics
import time

import ray
import torch

from rllib_mamt import MAMTConfig

MODES = {"MAAC": "none", "MAMD": "equal", "MAMT": "learned"}


def build(env, env_config, mode, seed):
    config = (
        MAMTConfig()
        .environment(env, env_config=env_config)
        .env_runners(num_env_runners=0)
        .training(
            trust_region_mode=mode,
            env_steps_per_update=2048,
            num_steps_sampled_before_learning_starts=10**9,
        )
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    algo.sample_into_buffer()
    return algo


def measure(env, env_config, repeats, seed=0):
    algos = {name: build(env, env_config, mode, seed) for name, mode in MODES.items()}
    for algo in algos.values():
        algo.update_from_buffer()  # warm-up
    samples = {name: [] for name in algos}
    for _ in range(repeats):
        for name, algo in algos.items():
            start = time.perf_counter()
            algo.update_from_buffer()
            samples[name].append(
                (time.perf_counter() - start) / algo.config.num_updates_per_round
            )
    agents = len(algos["MAAC"].config.agent_ids())
    for algo in algos.values():
        algo.stop()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "env": env,
        "env_config": env_config,
        "agents": agents,
        "median_seconds_per_update": medians,
        "ratio_to_maac": {name: medians[name] / medians["MAAC"] for name in medians},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="spread")
    parser.add_argument("--agents", type=int, nargs="*", default=[2, 3, 8],
                        help="n_agents values (envs with an n_agents key only)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default="benchmarks/results/learner_update.json")
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    configs = [{"n_agents": n} for n in args.agents] if args.env == "spread" else [{}]
    rows = [measure(args.env, env_config, args.repeats) for env_config in configs]
    print(f"{'env':<12} {'n':>2} " + " ".join(f"{m + ' s':>9}" for m in MODES)
          + " " + " ".join(f"{m + '/MAAC':>10}" for m in MODES))
    for row in rows:
        medians, ratios = row["median_seconds_per_update"], row["ratio_to_maac"]
        print(f"{row['env']:<12} {row['agents']:>2} "
              + " ".join(f"{medians[m]:>9.4f}" for m in MODES) + " "
              + " ".join(f"{ratios[m]:>10.2f}" for m in MODES))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump({
            "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                        "processor": platform.processor() or platform.machine()},
            "batch_size": 1024,
            "rows": rows,
        }, handle, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
