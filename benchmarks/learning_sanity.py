"""Learning sanity check: does a short training beat a random policy?

    python benchmarks/learning_sanity.py [--algorithm MAMT] [--mode equal] [--env-steps 30000] [--seeds 0]
    python benchmarks/learning_sanity.py --algorithm LOLA --lookahead-lr 0  # naive learners

Trains the given algorithm (MAMT in the given mode, MADDPG, MAPPO, MAMT_PPO or
LOLA) on Spread for a fixed env-step budget with the paper's settings (Table 3;
Table 5 for MADDPG, Table 6 for MAPPO and MAMT_PPO's PPO part, Table 7 for LOLA),
then evaluates the deterministic policy on 10 episodes (the
paper's metric) and compares it with a uniformly random policy on 100 episodes
of the same env. Prints a table and writes JSON.
"""

import argparse
import json
import os
import statistics
import time

import numpy as np
import ray

from rllib_mamt import LOLAConfig, MADDPGConfig, MAMTConfig, MAMTPPOConfig, MAPPOConfig
from rllib_mamt.envs.registry import make_rllib_env


def random_policy_returns(env_name, env_config, episodes, seed):
    env = make_rllib_env(env_name, env_config)
    returns = []
    for episode in range(episodes):
        observations, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            actions = {a: env.action_spaces[a].sample() for a in observations}
            observations, rewards, terminateds, truncateds, _ = env.step(actions)
            total += sum(rewards.values())
            done = terminateds["__all__"] or truncateds["__all__"]
        returns.append(total)
    return returns


def train_and_evaluate(env_name, env_config, algorithm, mode, env_steps, seed, training,
                       num_envs=1):
    if algorithm == "MAPPO":
        config = MAPPOConfig().training(**training)
    elif algorithm == "MAMT_PPO":
        config = MAMTPPOConfig().training(**training)
    elif algorithm == "MADDPG":
        config = MADDPGConfig().training(**training)
    elif algorithm == "LOLA":
        config = LOLAConfig().training(**training)
    else:
        config = MAMTConfig().training(trust_region_mode=mode, **training)
    config = (
        config
        .environment(env_name, env_config=env_config)
        .env_runners(num_env_runners=1, num_envs_per_env_runner=num_envs)
        # Built now, run once at the end (algo.evaluate()), never during training.
        .evaluation(evaluation_interval=10**6, evaluation_num_env_runners=0,
                    evaluation_duration=10)
        .debugging(seed=seed)
    )
    algo = config.build_algo()
    start = time.time()
    result = {}
    while result.get("num_env_steps_sampled_lifetime", 0) < env_steps:
        result = algo.train()
    evaluation = algo.evaluate()["env_runners"]
    algo.stop()
    deltas = {agent: values["trust_region_delta"]
              for agent, values in result.get("learners", {}).items()
              if isinstance(values, dict) and "trust_region_delta" in values}
    return {
        "final_trust_region_deltas": deltas or None,
        "train_return_last": result["env_runners"].get("episode_return_mean"),
        "eval_return_mean": evaluation["episode_return_mean"],
        "env_steps": result["num_env_steps_sampled_lifetime"],
        "seconds": time.time() - start,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="spread")
    parser.add_argument("--algorithm", default="MAMT", choices=["MAMT", "MADDPG", "MAPPO", "MAMT_PPO", "LOLA"])
    parser.add_argument("--mode", default="equal", help="MAMT's trust_region_mode")
    parser.add_argument("--env-steps", type=int, default=30000)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--train-batch-size", type=int, default=None,
                        help="train_batch_size_per_learner (default: the algorithm's; "
                             "Table 3: 1024, Table 6 (MAPPO): 4096)")
    parser.add_argument("--env-steps-per-update", type=int, default=100,
                        help="env_steps_per_update of the off-policy algorithms (Table 3: 100)")
    parser.add_argument("--minibatch-size", type=int, default=None,
                        help="MAPPO's / MAMT_PPO's minibatch_size (default: the whole batch)")
    parser.add_argument("--learner-torch-threads", type=int, default=None,
                        help="MAPPO's / MAMT_PPO's learner_torch_threads (default: the CPUs "
                             "the learner was given)")
    parser.add_argument("--num-envs", type=int, default=1,
                        help="num_envs_per_env_runner (Table 6: 12 parallel envs)")
    parser.add_argument("--lookahead-lr", type=float, default=None,
                        help="LOLA's lookahead_lr eta (default: LOLAConfig's; "
                             "0 makes both agents naive learners)")
    parser.add_argument("--num-cpus", type=int, default=3, help="CPUs Ray may use")
    parser.add_argument("--out", default="benchmarks/results/learning_sanity.json")
    args = parser.parse_args()
    if args.lookahead_lr is not None and args.algorithm != "LOLA":
        parser.error(f"--lookahead-lr {args.lookahead_lr}: only allowed with --algorithm LOLA "
                     f"(got --algorithm {args.algorithm})")
    if args.lookahead_lr is not None and args.lookahead_lr < 0:
        parser.error(f"--lookahead-lr {args.lookahead_lr}: must be >= 0")
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    random_returns = random_policy_returns(args.env, {}, 100, seed=1000)
    if args.algorithm in ("MAPPO", "MAMT_PPO"):
        training = {"train_batch_size_per_learner": args.train_batch_size or 4096,
                    "minibatch_size": args.minibatch_size,
                    "learner_torch_threads": args.learner_torch_threads}
    else:
        training = {"train_batch_size_per_learner": args.train_batch_size or 1024,
                    "env_steps_per_update": args.env_steps_per_update}
    if args.lookahead_lr is not None:
        training["lookahead_lr"] = args.lookahead_lr
    runs = [train_and_evaluate(args.env, {}, args.algorithm, args.mode, args.env_steps, s,
                               training, args.num_envs)
            for s in args.seeds]
    evaluation = [r["eval_return_mean"] for r in runs]
    summary = {
        "env": args.env, "algorithm": args.algorithm, "mode": args.mode, "env_steps": args.env_steps, "seeds": args.seeds,
        "training": training, "num_envs_per_env_runner": args.num_envs,
        "random_return_mean": statistics.mean(random_returns),
        "random_return_std": statistics.pstdev(random_returns),
        "trained_eval_return_mean": statistics.mean(evaluation),
        "trained_eval_return_std": statistics.pstdev(evaluation) if len(evaluation) > 1 else 0.0,
        "runs": runs,
    }
    mode = f", mode {args.mode!r}" if args.algorithm == "MAMT" else ""
    print(f"{args.env}, {args.algorithm}{mode}, {args.env_steps} env steps, seeds {args.seeds}, {training}")
    print(f"  random policy (100 episodes):   {summary['random_return_mean']:8.2f} ± {summary['random_return_std']:.2f}")
    print(f"  trained, deterministic (10 ep): {summary['trained_eval_return_mean']:8.2f} ± {summary['trained_eval_return_std']:.2f}")
    for seed, run in zip(args.seeds, runs):
        print(f"    seed {seed}: eval {run['eval_return_mean']:.2f}, last train {run['train_return_last']:.2f}, {run['seconds']:.0f} s")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(summary, handle, indent=2, default=float)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
