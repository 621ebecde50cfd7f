"""Sampling throughput: env steps per second, bare env loop vs MAMT's sampling.

    python benchmarks/sampling_throughput.py [--envs spread] [--seconds 20] \
        [--runners 1 2] [--envs-per-runner 1 8] [--compare-ppo] \
        [--compare-rllib-runner] [--windows 5]

For each env: (1) the bare env stepped in a loop with random actions (the upper
limit), (2) MAMT sampling into its joint replay buffer (learning disabled)
with its default JointEnvRunner, for each number of EnvRunners and each
`--envs-per-runner` value, (3) with `--compare-rllib-runner`, MAMT sampling
through RLlib's own MultiAgentEnvRunner (the path before JointEnvRunner), and
(4) with `--compare-ppo`, RLlib's stock PPO sampling the same env with the same
runner/env settings (one module per agent). Each rate is the median over
`--windows` consecutive windows of `--seconds / --windows`. Prints env
steps/s, agent steps/s, the ratio to the bare loop and to PPO; writes JSON.
"""

import argparse
import json
import os
import statistics
import time

import ray
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner

from rllib_mamt import MAMTConfig
from rllib_mamt.joint_env_runner import JointEnvRunner
from rllib_mamt.envs.registry import make_rllib_env


def median_rate(step_once, seconds, windows):
    """Median env steps/s of ``step_once()`` (returns steps) over time windows."""
    rates = []
    for _ in range(windows):
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / windows:
            steps += step_once()
        rates.append(steps / (time.perf_counter() - start))
    return statistics.median(rates)


def bare_rate(env_name, seconds, windows):
    env = make_rllib_env(env_name, {})
    agents = len(env.possible_agents)
    state = {"observations": env.reset(seed=0)[0]}

    def step_once():
        actions = {a: env.action_spaces[a].sample() for a in state["observations"]}
        state["observations"], _, terminateds, truncateds, _ = env.step(actions)
        if terminateds["__all__"] or truncateds["__all__"]:
            state["observations"], _ = env.reset()
        return 1

    rate = median_rate(step_once, seconds, windows)
    return {"env_steps_per_s": rate, "agent_steps_per_s": rate * agents}


def algorithm_rate(env_name, runners, envs_per_runner, seconds, windows,
                   runner_class=JointEnvRunner):
    config = (
        MAMTConfig()
        .environment(env_name)
        .env_runners(num_env_runners=runners, num_envs_per_env_runner=envs_per_runner,
                     env_runner_cls=runner_class)
        .training(num_steps_sampled_before_learning_starts=10**12,
                  env_steps_per_update=1000, replay_buffer_capacity=200_000)
    )
    algo = config.build_algo()
    agents = len(algo.config.agent_ids())
    algo.sample_into_buffer()  # warm-up
    rate = median_rate(algo.sample_into_buffer, seconds, windows)
    algo.stop()
    return {"env_steps_per_s": rate, "agent_steps_per_s": rate * agents}


def rllib_runner_rate(env_name, runners, envs_per_runner, seconds, windows):
    """MAMT sampling through RLlib's own MultiAgentEnvRunner (episodes + connectors)."""
    return algorithm_rate(env_name, runners, envs_per_runner, seconds, windows,
                          runner_class=MultiAgentEnvRunner)


def ppo_rate(env_name, runners, envs_per_runner, seconds, windows):
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
    rate = median_rate(sample, seconds, windows)
    algo.stop()
    return {"env_steps_per_s": rate, "agent_steps_per_s": rate * len(agents)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="*", default=["spread"])
    parser.add_argument("--runners", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--envs-per-runner", type=int, nargs="*", default=[1])
    parser.add_argument("--compare-ppo", action="store_true")
    parser.add_argument("--compare-rllib-runner", action="store_true")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/sampling_throughput.json")
    args = parser.parse_args()
    ray.init(num_cpus=max(args.runners) + 1, include_dashboard=False, log_to_driver=False)
    rows = []
    for env_name in args.envs:
        bare = bare_rate(env_name, args.seconds, args.windows)
        rows.append({"env": env_name, "sampler": "bare loop", **bare, "ratio_to_bare": 1.0})
        samplers = [("MAMT", algorithm_rate)]
        if args.compare_rllib_runner:
            samplers.append(("MAMT-RLlib-runner", rllib_runner_rate))
        if args.compare_ppo:
            samplers.append(("PPO", ppo_rate))
        for envs in args.envs_per_runner:
            for runners in args.runners:
                measured = {}
                for name, measure in samplers:
                    rate = measure(env_name, runners, envs, args.seconds, args.windows)
                    measured[name] = rate["env_steps_per_s"]
                    rows.append({
                        "env": env_name,
                        "sampler": f"{name} {runners}x{envs}",
                        "runners": runners,
                        "envs_per_runner": envs,
                        **rate,
                        "ratio_to_bare": rate["env_steps_per_s"] / bare["env_steps_per_s"],
                    })
                if "PPO" in measured:
                    for row in rows[-len(samplers):]:
                        row["ratio_to_ppo"] = row["env_steps_per_s"] / measured["PPO"]
    print(f"{'env':<12} {'sampler (runners x envs)':<26} {'env steps/s':>12} "
          f"{'agent steps/s':>14} {'/ bare':>7} {'/ PPO':>6}")
    for row in rows:
        to_ppo = f"{row['ratio_to_ppo']:>6.2f}" if "ratio_to_ppo" in row else f"{'':>6}"
        print(f"{row['env']:<12} {row['sampler']:<26} {row['env_steps_per_s']:>12.0f} "
              f"{row['agent_steps_per_s']:>14.0f} {row['ratio_to_bare']:>7.2f} {to_ppo}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump({"seconds": args.seconds, "windows": args.windows, "rows": rows},
                  handle, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
