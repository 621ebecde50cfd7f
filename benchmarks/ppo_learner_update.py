"""Learner cost of the PPO backbones: seconds per iteration update of MAPPO and
MAMT_PPO on the same on-policy batch.

    python benchmarks/ppo_learner_update.py [--env spread] [--repeats 5] [--threads 1]

Both algorithms are built with their defaults (Table 6: batch 4096, 15 epochs of
one whole-batch minibatch; MAMT_PPO adds the Q critic, opponent models, TRD-Net
and the delta step of every minibatch); one batch sampled by MAPPO's random
initial actors is given to both learners, timed alternately so that machine
noise hits both alike. Prints the median seconds and the ratio; writes JSON.
"""

import argparse
import json
import os
import statistics
import time

import ray

from rllib_mamt import MAMTPPOConfig, MAPPOConfig

ALGORITHMS = {"MAPPO": MAPPOConfig, "MAMT_PPO": MAMTPPOConfig}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="spread")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="learner_torch_threads")
    parser.add_argument("--out", default="benchmarks/results/ppo_learner_update.json")
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    algos = {
        name: config_class().environment(args.env)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=12)
        .training(learner_torch_threads=args.threads).debugging(seed=0).build_algo()
        for name, config_class in ALGORITHMS.items()
    }
    batch = algos["MAPPO"].sample_train_batch()
    seconds = {name: [] for name in algos}
    for _ in range(args.repeats):
        for name, algo in algos.items():
            config = algo.config
            start = time.perf_counter()
            algo.learner_group.update(batch=batch, minibatch_size=config.minibatch_size,
                                      num_epochs=config.num_epochs,
                                      shuffle_batch_per_epoch=config.shuffle_batch_per_epoch)
            seconds[name].append(time.perf_counter() - start)
    for algo in algos.values():
        algo.stop()
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    summary = {"env": args.env, "rows": batch.env_steps(), "threads": args.threads,
               "seconds": seconds, "median_seconds": medians,
               "ratio_mamt_ppo_to_mappo": medians["MAMT_PPO"] / medians["MAPPO"]}
    print(f"{args.env}, {batch.env_steps()} rows, {args.threads} torch thread(s), "
          f"{args.repeats} updates each")
    for name, median in medians.items():
        print(f"  {name:9s} {median:6.2f} s per iteration update")
    print(f"  MAMT_PPO / MAPPO: {summary['ratio_mamt_ppo_to_mappo']:.2f}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(summary, handle, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
