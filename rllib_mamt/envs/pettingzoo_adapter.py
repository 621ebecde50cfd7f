"""Adapter from a PettingZoo ParallelEnv to RLlib's MultiAgentEnv.

RLlib's own ``ParallelPettingZooEnv`` builds its agent list from a set, so the
agent order depends on ``PYTHONHASHSEED`` (DESIGN.md §4). MAMT's joint replay
buffer and centralized critic index agents by position, so this adapter keeps
the environment's agents in sorted order, always.
"""

from typing import Any, Dict, Optional

import gymnasium as gym
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from rllib_mamt.episode_end import all_flags


class PettingZooMultiAgentEnv(MultiAgentEnv):
    """Wraps a PettingZoo ``ParallelEnv`` for RLlib with agents in sorted order.

    Args:
        parallel_env: The PettingZoo parallel environment to wrap.
    """

    def __init__(self, parallel_env):
        super().__init__()
        self.par_env = parallel_env
        self.possible_agents = sorted(parallel_env.possible_agents)
        self.agents = list(self.possible_agents)
        self.observation_spaces = {
            agent: parallel_env.observation_space(agent)
            for agent in self.possible_agents
        }
        self.action_spaces = {
            agent: parallel_env.action_space(agent) for agent in self.possible_agents
        }
        self.observation_space = gym.spaces.Dict(self.observation_spaces)
        self.action_space = gym.spaces.Dict(self.action_spaces)
        self.render_mode = getattr(parallel_env, "render_mode", None)
        self.dependency_graph = getattr(parallel_env, "dependency_graph", None)

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        observations, infos = self.par_env.reset(seed=seed, options=options)
        self.agents = sorted(self.par_env.agents)
        return observations, infos or {}

    def step(self, action_dict: Dict[Any, Any]):
        observations, rewards, terminateds, truncateds, infos = self.par_env.step(
            action_dict
        )
        acting = list(self.agents)
        terminateds = dict(terminateds)
        truncateds = dict(truncateds)
        if any(terminateds.values()) or any(truncateds.values()) or not acting:
            terminateds["__all__"], truncateds["__all__"] = all_flags(
                acting, terminateds, truncateds
            )
        else:
            terminateds["__all__"] = truncateds["__all__"] = False
        self.agents = sorted(self.par_env.agents)
        return observations, rewards, terminateds, truncateds, infos

    def render(self):
        return self.par_env.render()

    def close(self):
        self.par_env.close()

    def get_sub_environments(self):
        return self.par_env
