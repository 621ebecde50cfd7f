"""Spread (MPE ``simple_spread`` from ``mpe2``) as used in the paper.

Paper, Appendix G.1: 2 agents, 2 landmarks, 25 steps. "Each agent is globally
rewarded based on how far the closest agent is to each landmark (sum of the
minimum distances). Locally, the agents are penalized if they collide with
other agents (-1 for each collision)." ``mpe2`` mixes the two parts as
``(1 - local_ratio) * global + local_ratio * local``; with ``local_ratio = 0.5``
that is exactly half the paper's ``global + local``, so rewards are doubled.
"""

from typing import Any, Mapping, Optional

from mpe2 import simple_spread_v3
from pettingzoo.utils.wrappers import BaseParallelWrapper

from rllib_mamt.envs.env_config_validation import EnvKey, validate_env_config
from rllib_mamt.envs.spread_paper_variant import apply_paper_variant

SPREAD_VARIANTS = ("mpe2", "paper")
SPREAD_KEYS = {
    "variant": EnvKey(
        "mpe2", (str,), lambda v: v in SPREAD_VARIANTS, f"one of {list(SPREAD_VARIANTS)}"
    ),
    "n_agents": EnvKey(2, (int,), lambda v: v >= 2, "an int >= 2"),
    "max_cycles": EnvKey(25, (int,), lambda v: v >= 1, "an int >= 1"),
    "render_mode": EnvKey(
        None, (str, type(None)), lambda v: v in (None, "rgb_array"),
        "None or 'rgb_array'",
    ),
}


class GlobalPlusLocalReward(BaseParallelWrapper):
    """Doubles ``mpe2``'s 50/50 reward mix into the paper's global + local sum."""

    def step(self, actions):
        observations, rewards, terminations, truncations, infos = self.env.step(actions)
        rewards = {agent: 2.0 * reward for agent, reward in rewards.items()}
        return observations, rewards, terminations, truncations, infos


def make_spread(env_config: Optional[Mapping[str, Any]] = None):
    """Builds the paper's Spread: ``n_agents`` agents and as many landmarks.

    Args:
        env_config: Optional keys ``variant`` (``"mpe2"``, the default:
            ``mpe2``'s simple_spread; ``"paper"``: the MPE fork the paper's
            code ran, with the -1 per agent per step self-collision penalty and
            the original integration order, see
            :mod:`rllib_mamt.envs.spread_paper_variant`), ``n_agents``
            (default 2), ``max_cycles`` (episode length, default 25) and
            ``render_mode``.
    """
    settings = validate_env_config("spread", env_config, SPREAD_KEYS)
    env = simple_spread_v3.parallel_env(
        N=settings["n_agents"],
        local_ratio=0.5,
        max_cycles=settings["max_cycles"],
        continuous_actions=False,
        render_mode=settings["render_mode"],
    )
    env = GlobalPlusLocalReward(env)
    return apply_paper_variant(env) if settings["variant"] == "paper" else env
