"""Random-policy return of Spread in our unit and in the paper's unit, per variant.

    python benchmarks/spread_units.py [--episodes 500] [--seed 0]

Our unit (what RLlib logs as ``episode_return_mean`` and every table of ours
reports): the sum over agents of each agent's episode return. The paper's unit
(what the authors' logger writes, DESIGN.md "Spread: ours versus the paper's"):
each agent's mean per-step reward x episode length, i.e. the per-agent episode
return, averaged here over agents. Prints mean and standard error over episodes
for ``variant`` ``mpe2`` (ours) and ``paper`` (the MPE fork the paper ran).
"""

import argparse
import statistics

import numpy as np

from rllib_mamt.envs.spread import make_spread


def random_episode_returns(variant, episodes, seed):
    """Per-agent episode returns (episodes x agents) of uniformly random actions."""
    env = make_spread({"variant": variant})
    rng = np.random.default_rng(seed)
    returns = []
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        totals = dict.fromkeys(env.possible_agents, 0.0)
        while env.agents:
            actions = {agent: int(rng.integers(env.action_space(agent).n)) for agent in env.agents}
            _, rewards, _, _, _ = env.step(actions)
            for agent, reward in rewards.items():
                totals[agent] += reward
        returns.append([totals[agent] for agent in env.possible_agents])
    return np.array(returns)


def describe(values):
    """``mean ± standard error`` of a 1-D sample."""
    return f"{statistics.fmean(values):8.2f} ± {statistics.stdev(values) / len(values) ** 0.5:.2f}"


def main():
    """Prints the random policy's return of both variants in both units."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"random policy, {args.episodes} episodes of 25 steps, 2 agents")
    print(f"{'variant':<8} {'ours: sum over agents':>24} {'paper: mean over agents':>26}")
    for variant in ("mpe2", "paper"):
        returns = random_episode_returns(variant, args.episodes, args.seed)
        print(f"{variant:<8} {describe(returns.sum(axis=1)):>24} {describe(returns.mean(axis=1)):>26}")


if __name__ == "__main__":
    main()
