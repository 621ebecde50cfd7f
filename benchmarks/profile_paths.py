"""Profile MAMT's sampling path or learner update once with cProfile.

    python benchmarks/profile_paths.py sampling [--env rover_tower] [--top 25] [--rllib-runner]
    python benchmarks/profile_paths.py learner  [--env rover_tower] [--mode learned]

sampling: 4 calls of ``sample_into_buffer()`` with 500-step samples on a local
EnvRunner (learning disabled), with MAMT's JointEnvRunner or, with
--rllib-runner, RLlib's MultiAgentEnvRunner. learner: 4 rounds of ``update_from_buffer()``
(4 updates of batch 1024 each) after filling the buffer. Prints the functions
with the most internal time.
"""

import argparse
import cProfile
import json
import pstats

import ray
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner

from rllib_mamt import MAMTConfig


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", choices=["sampling", "learner"])
    parser.add_argument("--env", default="rover_tower")
    parser.add_argument("--env-config", default="{}", help="JSON env_config")
    parser.add_argument("--mode", default="learned")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--rllib-runner", action="store_true",
                        help="sample with RLlib's MultiAgentEnvRunner instead")
    args = parser.parse_args()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    config = (
        MAMTConfig()
        .environment(args.env, env_config=json.loads(args.env_config))
        .env_runners(num_env_runners=0)
        .env_runners(**(
            {"env_runner_cls": MultiAgentEnvRunner} if args.rllib_runner else {}
        ))
        .training(
            trust_region_mode=args.mode,
            num_steps_sampled_before_learning_starts=10**12,
            env_steps_per_update=500 if args.path == "sampling" else 2048,
        )
    )
    algo = config.build_algo()
    algo.sample_into_buffer()
    work = algo.sample_into_buffer if args.path == "sampling" else algo.update_from_buffer
    work()  # warm-up
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(4):
        work()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)
    algo.stop()


if __name__ == "__main__":
    main()
