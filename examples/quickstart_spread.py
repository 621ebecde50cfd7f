"""Quickstart: train MAMD on Spread for a few minutes and watch it learn.

    python examples/quickstart_spread.py [--iterations 30] [--env-runners 1]

Each iteration samples 1,000 joint env steps (40 Spread episodes) and makes
40 learner updates with the paper's Table 3 settings. Every 10 iterations the
deterministic policy is evaluated on 10 episodes (the paper's metric).
"""

import argparse
import time

import ray

from rllib_mamt import MAMTConfig


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--env-runners", type=int, default=1)
    parser.add_argument("--mode", default="equal", choices=["none", "equal"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    ray.init(num_cpus=2 + args.env_runners, include_dashboard=False, log_to_driver=False)
    config = (
        MAMTConfig()
        .environment("spread")
        .env_runners(num_env_runners=args.env_runners)
        .training(trust_region_mode=args.mode)
        .evaluation(evaluation_interval=10, evaluation_num_env_runners=0)
        .debugging(seed=args.seed)
    )
    algo = config.build_algo()
    start = time.time()
    print(f"MAMT ({args.mode!r} trust regions) on Spread: {args.iterations} iterations")
    print(f"{'iter':>4} {'env steps':>9} {'return':>8} {'eval':>8} {'critic':>8} "
          f"{'KL_0':>7} {'delta_0':>7} {'time':>6}")
    for _ in range(args.iterations):
        result = algo.train()
        learners = result.get("learners", {})
        agent = learners.get("agent_0", {})
        evaluation = result.get("evaluation", {}).get("env_runners", {})
        print(
            f"{result['training_iteration']:>4} "
            f"{int(result['num_env_steps_sampled_lifetime']):>9} "
            f"{result['env_runners'].get('episode_return_mean', float('nan')):>8.2f} "
            f"{evaluation.get('episode_return_mean', float('nan')):>8.2f} "
            f"{learners.get('mamt_central', {}).get('critic_loss', float('nan')):>8.3f} "
            f"{agent.get('kl_to_old_policy', float('nan')):>7.4f} "
            f"{agent.get('trust_region_delta', float('nan')):>7.2f} "
            f"{time.time() - start:>5.0f}s",
            flush=True,
        )
    checkpoint = algo.save()
    print(f"checkpoint: {checkpoint.checkpoint.path}")
    algo.stop()
    ray.shutdown()


if __name__ == "__main__":
    main()
