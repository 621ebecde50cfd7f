"""Pursuit and Multi-Walker (PettingZoo SISL) adapted for MAMT (paper Appendix G.1).

- Pursuit (``pursuit_v5``): 8 pursuers, 30 evaders, 16 x 16 grid, 500 cycles,
  Discrete(5) actions; the 7 x 7 x 3 observation is flattened to 147 floats.
  Pursuers never leave before the episode ends, so every agent acts every step.
- Multi-Walker (``multiwalker_v9``): 3 walkers, 31-float observations. With the
  default ``terminate_on_fall=True`` one walker falling ends the episode for all
  of them at once, so again every agent acts at every step.
  ``action_mode="discrete16"`` (default) is the paper authors' discretisation:
  action k selects a sign pattern s in {-1, +1}^4 (bit b of k set -> s_b = +1),
  and 0.2 * s is *added* to the walker's previous torques, clipped to [-1, 1]
  (torques start at 0 every episode). ``action_mode="continuous"`` keeps the
  native Box(4) torques in [-1, 1] (MAMT's learner needs discrete actions;
  MADDPG runs this mode, see ``tuned_examples/multiwalker_maddpg.yaml``).
"""

from typing import Any, Mapping, Optional

import gymnasium as gym
import numpy as np
from pettingzoo.utils.wrappers import BaseParallelWrapper

from rllib_mamt.envs.env_config_validation import EnvKey, validate_env_config

TORQUE_STEP = 0.2
SIGN_PATTERNS = np.array(
    [[1.0 if (k >> b) & 1 else -1.0 for b in range(4)] for k in range(16)], dtype=np.float32
)

PURSUIT_KEYS = {
    "n_pursuers": EnvKey(8, (int,), lambda v: v >= 2, "an int >= 2"),
    "n_evaders": EnvKey(30, (int,), lambda v: v >= 1, "an int >= 1"),
    "x_size": EnvKey(16, (int,), lambda v: v >= 3, "an int >= 3"),
    "y_size": EnvKey(16, (int,), lambda v: v >= 3, "an int >= 3"),
    "max_cycles": EnvKey(500, (int,), lambda v: v >= 1, "an int >= 1"),
    "obs_range": EnvKey(7, (int,), lambda v: v >= 1 and v % 2 == 1, "an odd int >= 1"),
    "n_catch": EnvKey(2, (int,), lambda v: v >= 1, "an int >= 1"),
    "shared_reward": EnvKey(True, (bool,), None, "True or False"),
}
MULTIWALKER_KEYS = {
    "n_walkers": EnvKey(3, (int,), lambda v: v >= 2, "an int >= 2"),
    "max_cycles": EnvKey(500, (int,), lambda v: v >= 1, "an int >= 1"),
    "shared_reward": EnvKey(True, (bool,), None, "True or False"),
    "action_mode": EnvKey(
        "discrete16", (str,), lambda v: v in ("discrete16", "continuous"),
        "'discrete16' or 'continuous'",
    ),
}


class FlattenObservations(BaseParallelWrapper):
    """Flattens every agent's observation into a float32 vector."""

    def __init__(self, env):
        super().__init__(env)
        self._observation_spaces = {}
        for agent in env.possible_agents:
            space = env.observation_space(agent)
            self._observation_spaces[agent] = gym.spaces.Box(
                low=np.asarray(space.low, np.float32).reshape(-1),
                high=np.asarray(space.high, np.float32).reshape(-1),
                dtype=np.float32,
            )

    def observation_space(self, agent):
        return self._observation_spaces[agent]

    def reset(self, seed=None, options=None):
        observations, infos = self.env.reset(seed=seed, options=options)
        return self._flat(observations), infos

    def step(self, actions):
        observations, rewards, terminations, truncations, infos = self.env.step(actions)
        return self._flat(observations), rewards, terminations, truncations, infos

    @staticmethod
    def _flat(observations):
        return {a: np.asarray(o, np.float32).reshape(-1) for a, o in observations.items()}


class IncrementalTorques(BaseParallelWrapper):
    """Multi-Walker's 16-action incremental discretisation (see module doc)."""

    def __init__(self, env):
        super().__init__(env)
        self._torques = {}
        self._action_spaces = {
            agent: gym.spaces.Discrete(len(SIGN_PATTERNS)) for agent in env.possible_agents
        }

    def action_space(self, agent):
        return self._action_spaces[agent]

    def reset(self, seed=None, options=None):
        observations, infos = self.env.reset(seed=seed, options=options)
        self._torques = {agent: np.zeros(4, np.float32) for agent in self.env.possible_agents}
        return observations, infos

    def step(self, actions):
        torques = {}
        for agent, action in actions.items():
            torque = np.clip(self._torques[agent] + TORQUE_STEP * SIGN_PATTERNS[int(action)], -1.0, 1.0)
            self._torques[agent] = torque
            torques[agent] = torque.astype(np.float32)
        return self.env.step(torques)


def make_pursuit(env_config: Optional[Mapping[str, Any]] = None):
    """Pursuit with flattened observations (keys: see ``PURSUIT_KEYS``)."""
    from pettingzoo.sisl import pursuit_v5

    settings = validate_env_config("pursuit", env_config, PURSUIT_KEYS)
    return FlattenObservations(pursuit_v5.parallel_env(**settings))


def make_multiwalker(env_config: Optional[Mapping[str, Any]] = None):
    """Multi-Walker, discrete16 (default) or continuous (keys: ``MULTIWALKER_KEYS``)."""
    from pettingzoo.sisl import multiwalker_v9

    settings = validate_env_config("multiwalker", env_config, MULTIWALKER_KEYS)
    action_mode = settings.pop("action_mode")
    env = multiwalker_v9.parallel_env(**settings)
    return IncrementalTorques(env) if action_mode == "discrete16" else env
