"""Cost of seeding every episode's reset (JointEnvRunner's ``episode_seed``).

    python benchmarks/reset_seeding_cost.py [--envs spread spread3_mix rover_tower]

Times one ``reset()`` of each env unseeded (how RLlib's runner resets after
the first episode) and with a fresh ``episode_seed`` (how JointEnvRunner
resets every episode, for exact resume), alternating, best of 5 repeats of
``--number`` resets; prints microseconds per reset and the difference.
"""

import argparse
import itertools
import timeit

from rllib_mamt.envs.registry import make_rllib_env
from rllib_mamt.joint_env_runner import episode_seed


def reset_costs(name, number, repeats=5):
    """(unseeded, seeded) microseconds per reset of env ``name``."""
    env = make_rllib_env(name, {})
    env.reset(seed=0)
    episodes = itertools.count(1)

    def unseeded():
        env.reset(seed=None)

    def seeded():
        env.reset(seed=episode_seed(0, 0, next(episodes)))

    best = {unseeded: float("inf"), seeded: float("inf")}
    for _ in range(repeats):
        for reset in (unseeded, seeded):
            best[reset] = min(best[reset], timeit.timeit(reset, number=number) / number)
    return best[unseeded] * 1e6, best[seeded] * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="*", default=["spread", "spread3_mix", "rover_tower"])
    parser.add_argument("--number", type=int, default=300)
    args = parser.parse_args()
    print(f"{'env':<14}{'unseeded us':>12}{'seeded us':>11}{'added us':>10}")
    for name in args.envs:
        unseeded, seeded = reset_costs(name, args.number)
        print(f"{name:<14}{unseeded:>12.1f}{seeded:>11.1f}{seeded - unseeded:>10.1f}")


if __name__ == "__main__":
    main()
