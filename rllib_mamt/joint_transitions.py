"""Joint transitions as handed from MAMT's EnvRunners to the joint replay buffer."""

from typing import Dict

import numpy as np

# Columns the JointEnvRunner adds for on-policy learners (the replay buffer
# ignores them): which sub-env of the runner stepped a row, and whether the
# row's step ended its episode (terminated or truncated). Within one chunk, the
# rows of one sub-env are in time order.
ENV_INDICES = "env_indices"
EPISODE_ENDS = "episode_ends"


class JointTransitions:
    """A chunk of joint transitions ``({o_i}, {a_i}, {r_i}, {o'_i}, d)``, one row per
    environment step, in the column layout of :class:`JointReplayBuffer`.

    :class:`rllib_mamt.joint_env_runner.JointEnvRunner` returns a list of these
    from ``sample()`` instead of ``MultiAgentEpisode`` objects; like episodes, they
    report ``env_steps()`` and ``agent_steps()`` so RLlib's sampling and evaluation
    loops can count them.

    Args:
        rows: Column name -> array with one row per environment step.
        num_agents: Number of agents acting at every step.
    """

    def __init__(self, rows: Dict[str, np.ndarray], num_agents: int):
        self.rows = rows
        self.num_agents = int(num_agents)

    def __len__(self) -> int:
        return len(next(iter(self.rows.values())))

    def env_steps(self) -> int:
        """Number of environment steps (rows) in this chunk."""
        return len(self)

    def agent_steps(self) -> int:
        """Number of agent steps: the agents alive at each step (all of them
        when the chunk has no ``alive`` mask)."""
        alive = self.rows.get("alive")
        if alive is None:
            return len(self) * self.num_agents
        return int(alive.sum())
