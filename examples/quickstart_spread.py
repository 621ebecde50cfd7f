"""Quickstart: train MAMD on Spread for a few minutes and watch it learn.

    python examples/quickstart_spread.py [--iterations 60] [--env-runners 1]

Each iteration samples 1,000 joint env steps (40 Spread episodes); the return
of a random policy is about -87 and climbs past -60 within the 60 iterations
(-49 to -55 at 60,000 steps over three seeds; the deterministic evaluation is
usually a few points better).
Every 10 iterations the deterministic policy is evaluated on 10 episodes (the
paper's metric). The final checkpoint goes to ./results/quickstart_spread.

How this differs from the paper's Table 3, to learn visibly in minutes: 8
updates of 512 rows per 100 env steps (one update per 12.5 steps) instead of 4
updates of 1,024 (one per 25). Everything else is Table 3. The paper's
budgets are far larger (e.g. 1.25M steps on Rover-Tower): see tuned_examples/.
"""

import argparse
import os
import time

import ray

from rllib_mamt import MAMTConfig


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--env-runners", type=int, default=1)
    parser.add_argument("--mode", default="equal", choices=["none", "equal", "learned"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-dir", default=os.path.join("results", "quickstart_spread"))
    parser.add_argument("--no-checkpoint", action="store_true")
    parser.add_argument("--learner-torch-threads", type=int, default=None,
                        help="torch threads of the learner (default: the CPUs it was given)")
    args = parser.parse_args()

    ray.init(num_cpus=2 + args.env_runners, include_dashboard=False, log_to_driver=False)
    evaluation_interval = 10
    config = (
        MAMTConfig()
        .environment("spread")
        .env_runners(num_env_runners=args.env_runners)
        .training(
            trust_region_mode=args.mode,
            train_batch_size_per_learner=512,
            num_updates_per_round=8,
            learner_torch_threads=args.learner_torch_threads,
        )
        .evaluation(evaluation_interval=evaluation_interval, evaluation_num_env_runners=0)
        .debugging(seed=args.seed)
    )
    algo = config.build_algo()
    start = time.time()
    print(f"MAMT ({args.mode!r} trust regions) on Spread: {args.iterations} iterations")
    print(f"{'iter':>4} {'env steps':>9} {'return':>8} {'eval':>8} {'critic':>8} "
          f"{'KL_0':>7} {'delta_0':>7} {'time':>6}")
    for _ in range(args.iterations):
        result = algo.train()
        iteration = result["training_iteration"]
        learners = result.get("learners", {})
        agent = learners.get("agent_0", {})
        evaluated = iteration % evaluation_interval == 0
        evaluation = result.get("evaluation", {}).get("env_runners", {}) if evaluated else {}
        evaluation_return = evaluation.get("episode_return_mean")
        evaluation_text = "-" if evaluation_return is None else f"{evaluation_return:.2f}"
        print(
            f"{iteration:>4} "
            f"{int(result['num_env_steps_sampled_lifetime']):>9} "
            f"{result['env_runners'].get('episode_return_mean', float('nan')):>8.2f} "
            f"{evaluation_text:>8} "
            f"{learners.get('mamt_central', {}).get('critic_loss', float('nan')):>8.3f} "
            f"{agent.get('kl_to_old_policy', float('nan')):>7.4f} "
            f"{agent.get('trust_region_delta', float('nan')):>7.2f} "
            f"{time.time() - start:>5.0f}s",
            flush=True,
        )
    if not args.no_checkpoint:
        path = algo.save(os.path.abspath(args.checkpoint_dir)).checkpoint.path
        print(f"checkpoint: {path}  (rllib evaluate {path})")
    algo.stop()
    ray.shutdown()


if __name__ == "__main__":
    main()
