"""Replay-buffer memory per joint row for each registered environment.

    python benchmarks/buffer_memory.py [--steps 2000] [--capacity 1000000]

Steps each env with random actions, stores the rows in a ``JointReplayBuffer``
and reports bytes per row as stored (observations in the narrowest lossless
dtype) against all-float32 storage, and what Table 3's capacity of 1,000,000
rows would take. A checkpoint stores the same arrays, so it is about the same
size. Writes JSON.
"""

import argparse
import json

import numpy as np
from ray.rllib.env.env_context import EnvContext
from ray.tune.registry import ENV_CREATOR, _global_registry

import rllib_mamt  # noqa: F401  (registers the envs)
from rllib_mamt.joint_replay_buffer import (
    ACTIONS, REWARDS, TERMINATEDS, JointReplayBuffer, next_obs_key, obs_key,
)
from rllib_mamt.modules.actor import flat_size

ENVS = ("spread", "spread3_mix", "rover_tower", "pursuit", "multiwalker")


def random_rows(env, agents, steps, seed):
    rng = np.random.default_rng(seed)
    observations, _ = env.reset(seed=seed)
    columns = {key: [] for key in (ACTIONS, REWARDS, TERMINATEDS)}
    for index in range(len(agents)):
        columns[obs_key(index)], columns[next_obs_key(index)] = [], []
    for _ in range(steps):
        actions = {a: int(rng.integers(env.get_action_space(a).n)) for a in agents}
        next_observations, rewards, terminateds, truncateds, _ = env.step(actions)
        done = terminateds["__all__"] or truncateds["__all__"]
        for index, agent in enumerate(agents):
            columns[obs_key(index)].append(np.ravel(observations[agent]))
            columns[next_obs_key(index)].append(np.ravel(next_observations[agent]))
        columns[ACTIONS].append([actions[a] for a in agents])
        columns[REWARDS].append([rewards[a] for a in agents])
        columns[TERMINATEDS].append(float(terminateds["__all__"]))
        observations = env.reset()[0] if done else next_observations
    return {key: np.asarray(value, np.float32 if key != ACTIONS else np.int64)
            for key, value in columns.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--capacity", type=int, default=1_000_000)
    parser.add_argument("--envs", nargs="+", default=list(ENVS))
    parser.add_argument("--out", default="buffer_memory.json")
    args = parser.parse_args()
    results = {}
    print(f"{'env':<14} {'agents':>6} {'bytes/row':>10} {'float32':>8} "
          f"{'GB at ' + format(args.capacity, ','):>16}")
    for name in args.envs:
        env = _global_registry.get(ENV_CREATOR, name)(EnvContext({}, 0))
        agents = sorted(env.possible_agents)
        sizes = {a: flat_size(env.get_observation_space(a)) for a in agents}
        buffer = JointReplayBuffer(args.steps, agents, sizes, seed=0)
        buffer.add(random_rows(env, agents, args.steps, seed=0))
        # o and o' as float32; actions int64, rewards and two alive masks float32; d.
        float32_bytes = sum(8 * s for s in sizes.values()) + len(agents) * 20 + 4
        stored = buffer.bytes_per_row()
        results[name] = {"agents": len(agents), "bytes_per_row": stored,
                         "float32_bytes_per_row": float32_bytes,
                         "gb_at_capacity": stored * args.capacity / 1e9}
        print(f"{name:<14} {len(agents):>6} {stored:>10,} {float32_bytes:>8,} "
              f"{stored * args.capacity / 1e9:>16.2f}")
    with open(args.out, "w") as handle:
        json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
