"""Sampling throughput: env steps per second, bare env loop vs MAMT's sampling.

    python benchmarks/sampling_throughput.py [--envs spread] [--seconds 20] \
        [--envs-per-runner 1 8] [--compare-ppo]

For each env: (1) the bare env stepped in a loop with random actions (the upper
limit), (2) MAMT sampling into its joint replay buffer (learning disabled)
with 1 and 2 EnvRunners for each `--envs-per-runner` value, and (3) with
`--compare-ppo`, RLlib's stock PPO sampling the same env with the same
runner/env settings (one module per agent). Prints env steps/s, agent steps/s
and the ratio to the bare loop; writes JSON.
"""

import argparse
import json
import os
import time

import ray

from rllib_mamt import MAMTConfig
from rllib_mamt.envs.registry import make_rllib_env


def bare_rate(env_name, seconds):
    env = make_rllib_env(env_name, {})
    agents = len(env.possible_agents)
    observations, _ = env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        actions = {a: env.action_spaces[a].sample() for a in observations}
        observations, _, terminateds, truncateds, _ = env.step(actions)
        steps += 1
        if terminateds["__all__"] or truncateds["__all__"]:
            observations, _ = env.reset()
    rate = steps / (time.perf_counter() - start)
    return {"env_steps_per_s": rate, "agent_steps_per_s": rate * agents}


def algorithm_rate(env_name, runners, envs_per_runner, seconds):
    config = (
        MAMTConfig()
        .environment(env_name)
        .env_runners(num_env_runners=runners, num_envs_per_env_runner=envs_per_runner)
        .training(num_steps_sampled_before_learning_starts=10**12,
                  env_steps_per_update=1000, replay_buffer_capacity=200_000)
    )
    algo = config.build_algo()
    agents = len(algo.config.agent_ids())
    algo.sample_into_buffer()  # warm-up
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        steps += algo.sample_into_buffer()
    rate = steps / (time.perf_counter() - start)
    algo.stop()
    return {"env_steps_per_s": rate, "agent_steps_per_s": rate * agents}


def ppo_rate(env_name, runners, envs_per_runner, seconds):
    """Env steps/s of RLlib's stock PPO EnvRunners on the same env and settings."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.execution.rollout_ops import synchronous_parallel_sample

    agents = make_rllib_env(env_name, {}).possible_agents
    config = (
        PPOConfig()
        .environment(env_name)
        .env_runners(num_env_runners=runners, num_envs_per_env_runner=envs_per_runner,
                     rollout_fragment_length=max(1, 1000 // envs_per_runner))
        .multi_agent(policies=set(agents), policy_mapping_fn=lambda agent, *a, **k: agent)
    )
    algo = config.build_algo()
    group = algo.env_runner_group

    def sample():
        episodes = synchronous_parallel_sample(
            worker_set=group, max_env_steps=1000, _uses_new_env_runners=True
        )
        return sum(len(e) for e in episodes)

    sample()  # warm-up
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        steps += sample()
    rate = steps / (time.perf_counter() - start)
    algo.stop()
    return {"env_steps_per_s": rate, "agent_steps_per_s": rate * len(agents)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="*", default=["spread"])
    parser.add_argument("--runners", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--envs-per-runner", type=int, nargs="*", default=[1])
    parser.add_argument("--compare-ppo", action="store_true")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", default="benchmarks/results/sampling_throughput.json")
    args = parser.parse_args()
    ray.init(num_cpus=max(args.runners) + 1, include_dashboard=False, log_to_driver=False)
    rows = []
    for env_name in args.envs:
        bare = bare_rate(env_name, args.seconds)
        rows.append({"env": env_name, "sampler": "bare loop", **bare, "ratio_to_bare": 1.0})
        for envs in args.envs_per_runner:
            for runners in args.runners:
                samplers = [("MAMT", algorithm_rate)] + ([("PPO", ppo_rate)] if args.compare_ppo else [])
                for name, measure in samplers:
                    rate = measure(env_name, runners, envs, args.seconds)
                    rows.append({
                        "env": env_name,
                        "sampler": f"{name} {runners} runner(s) x {envs} env(s)",
                        **rate,
                        "ratio_to_bare": rate["env_steps_per_s"] / bare["env_steps_per_s"],
                    })
    print(f"{'env':<12} {'sampler':<28} {'env steps/s':>12} {'agent steps/s':>14} {'/ bare':>7}")
    for row in rows:
        print(f"{row['env']:<12} {row['sampler']:<28} {row['env_steps_per_s']:>12.0f} "
              f"{row['agent_steps_per_s']:>14.0f} {row['ratio_to_bare']:>7.2f}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump({"seconds": args.seconds, "rows": rows}, handle, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
