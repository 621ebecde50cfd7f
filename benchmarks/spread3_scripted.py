"""A scripted reference for Spread-3: how close do the learned agents come to the task's best?

    python benchmarks/spread3_scripted.py [--episodes 100] [--seed 0]
        [--out benchmarks/recorded/spread3_scripted.json]

Fig. 8's rows can only differ if the task leaves room: if every row's agents
already reach their landmarks about as fast as physics allows, no trust-region
allocation can show. This plays a hand-written controller on each Spread-3
variant over the same episodes as ``checkpoint_agent_returns.py`` (reset seeds
``seed .. seed + episodes - 1``) and records each agent's mean return, so the
report puts the learned agents' per-agent returns beside it.

The controller knows the dependency graph (Fig. 7): every agent is given one
landmark at reset, the assignment that minimises the summed distance among the
agents that share a reward (Mix: agents 0 and 2 over landmarks 0 and 2; Ful:
all three), its own landmark otherwise. Each step it takes the discrete action
whose stopping point (where MPE's damped dynamics, ``v <- (1 - damping) v + a
dt``, would bring it with no further force) lies closest to its landmark. It
ignores collisions, so it is a reference, not a proven optimum.
"""

import argparse
import itertools
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

#: MPE's discrete moves: no-op, -x, +x, -y, +y (``simple_env._set_action``).
MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=float)
#: Agents that share a reward and so split their landmarks between them.
SHARED = {"sep": [], "mix": [0, 2], "ful": [0, 1, 2]}


def assignment(positions, landmarks, agents):
    """``{agent index: landmark index}``: own landmarks, except that ``agents``
    split theirs by the permutation with the least summed distance."""
    targets = {m: m for m in range(len(positions))}
    best = None
    for permutation in itertools.permutations(agents):
        cost = sum(np.linalg.norm(positions[a] - landmarks[l]) for a, l in zip(agents, permutation))
        if best is None or cost < best[0]:
            best = (cost, permutation)
    if best:
        targets.update(zip(agents, best[1]))
    return targets


def stopping_action(position, velocity, target, world, agent):
    """The move whose stopping point after this step lies closest to ``target``."""
    sensitivity = 5.0 if agent.accel is None else agent.accel
    keep = 1.0 - world.damping
    velocities = velocity * keep + MOVES * sensitivity / agent.mass * world.dt
    stops = position + velocities * world.dt * (1.0 + keep / (1.0 - keep))
    return int(np.argmin(np.linalg.norm(stops - target, axis=1)))


def play(variant, episodes, seed):
    """Each agent's mean return over ``episodes`` scripted episodes of Spread-3-``variant``."""
    from rllib_mamt.envs.spread3 import make_spread3

    env = make_spread3(variant)
    totals = {}
    for episode in range(episodes):
        observations, _ = env.reset(seed=seed + episode)
        world = env.unwrapped.world
        landmarks = np.array([landmark.state.p_pos for landmark in world.landmarks])
        targets = assignment(np.array([a.state.p_pos for a in world.agents]), landmarks,
                             SHARED[variant])
        while observations:
            actions = {agent.name: stopping_action(agent.state.p_pos, agent.state.p_vel,
                                                   landmarks[targets[m]], world, agent)
                       for m, agent in enumerate(world.agents) if agent.name in observations}
            observations, rewards, terminations, truncations, _ = env.step(actions)
            for agent, reward in rewards.items():
                totals[agent] = totals.get(agent, 0.0) + reward
            observations = {a: o for a, o in observations.items()
                            if not (terminations[a] or truncations[a])}
    env.close()
    per_agent = {agent: total / episodes for agent, total in sorted(totals.items())}
    return {"return_mean": sum(per_agent.values()), "agent_return_mean": per_agent}


def main():
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(HERE, "recorded", "spread3_scripted.json"))
    args = parser.parse_args()
    if args.episodes < 1:
        raise SystemExit(f"--episodes is {args.episodes}; allowed: an int >= 1")
    result = {"episodes": args.episodes, "seed": args.seed,
              "controller": "stopping-point greedy toward an assigned landmark (module docstring)",
              "variants": {variant: play(variant, args.episodes, args.seed) for variant in SHARED}}
    for variant, measured in result["variants"].items():
        print(f"spread3_{variant}: {measured['return_mean']:.2f} (" + ", ".join(
            f"{agent} {value:.2f}" for agent, value in measured["agent_return_mean"].items()) + ")")
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1)


if __name__ == "__main__":
    main()
