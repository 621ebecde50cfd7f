"""Spread-3 variants of the trust-region decomposition dilemma (paper Appendix D).

Three agents (i = agent_0, j = agent_1, k = agent_2) and three landmarks with
MPE physics from ``mpe2``'s simple_spread; only the rewards differ, which
changes which agents depend on each other (the Markov random fields of Fig. 7):

- ``sep``: each agent m is rewarded by minus its own distance to landmark m;
  no collision penalty. Dependency graph: no edges.
- ``mix``: agent_1 as in ``sep``; agent_0 and agent_2 share minus the sum, over
  landmarks 0 and 2, of the distance from the closer of the two to it, and -1
  each when they collide. Dependency graph: agent_0 - agent_2.
- ``ful``: standard Spread with 3 agents (global coverage reward plus each
  agent's own collision penalties, as :mod:`rllib_mamt.envs.spread`).
  Dependency graph: all pairs.

Each env exposes its ground-truth graph as ``dependency_graph``: a symmetric
3 x 3 0/1 numpy array with zero diagonal, in agent order, to compare learned
coordination coefficients against.
"""

from typing import Any, Mapping, Optional

import numpy as np
from mpe2 import simple_spread_v3
from pettingzoo.utils.wrappers import BaseParallelWrapper

from rllib_mamt.envs.env_config_validation import EnvKey, validate_env_config
from rllib_mamt.envs.spread import GlobalPlusLocalReward

VARIANTS = ("sep", "mix", "ful")
DEPENDENCY_GRAPHS = {
    "sep": np.zeros((3, 3), dtype=np.int64),
    "mix": np.array([[0, 0, 1], [0, 0, 0], [1, 0, 0]], dtype=np.int64),
    "ful": np.ones((3, 3), dtype=np.int64) - np.eye(3, dtype=np.int64),
}
SPREAD3_KEYS = {
    "max_cycles": EnvKey(25, (int,), lambda v: v >= 1, "an int >= 1"),
    "render_mode": EnvKey(
        None, (str, type(None)), lambda v: v in (None, "rgb_array"), "None or 'rgb_array'"
    ),
}


class DependencyRewards(BaseParallelWrapper):
    """Replaces simple_spread's rewards by those of the ``sep`` or ``mix`` variant."""

    def __init__(self, env, variant: str):
        super().__init__(env)
        self.variant = variant

    def _variant_rewards(self):
        world = self.env.unwrapped.world
        positions = np.array([agent.state.p_pos for agent in world.agents])
        landmarks = np.array([landmark.state.p_pos for landmark in world.landmarks])
        own_distance = np.linalg.norm(positions - landmarks, axis=-1)
        rewards = -own_distance
        if self.variant == "mix":
            pair = [0, 2]
            distances = np.linalg.norm(
                positions[pair][:, None, :] - landmarks[pair][None, :, :], axis=-1
            )
            shared = -distances.min(axis=0).sum()
            gap = np.linalg.norm(positions[0] - positions[2])
            collided = gap < world.agents[0].size + world.agents[2].size
            rewards[0] = rewards[2] = shared - float(collided)
        return {agent.name: float(rewards[m]) for m, agent in enumerate(world.agents)}

    def step(self, actions):
        observations, _, terminations, truncations, infos = self.env.step(actions)
        rewards = self._variant_rewards()
        return observations, {a: rewards[a] for a in observations}, terminations, truncations, infos


def make_spread3(variant: str, env_config: Optional[Mapping[str, Any]] = None):
    """Builds Spread-3-``variant`` ("sep", "mix" or "ful") with ``dependency_graph``."""
    if variant not in VARIANTS:
        raise ValueError(f"Spread-3 variant {variant!r} is unknown; allowed: {list(VARIANTS)}.")
    settings = validate_env_config(f"spread3_{variant}", env_config, SPREAD3_KEYS)
    base = simple_spread_v3.parallel_env(
        N=3, local_ratio=0.5, max_cycles=settings["max_cycles"],
        continuous_actions=False, render_mode=settings["render_mode"],
    )
    env = GlobalPlusLocalReward(base) if variant == "ful" else DependencyRewards(base, variant)
    env.dependency_graph = DEPENDENCY_GRAPHS[variant].copy()
    return env
